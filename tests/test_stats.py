"""Wilson intervals and the exact McNemar test against textbook values."""
import pytest

from sdc import stats


@pytest.mark.parametrize("successes, n, low, high", [
    # Newcombe (1998), Stat. Med. 17:857-872, Table II, method 3 (Wilson score, no continuity correction).
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_newcombe_1998(successes, n, low, high):
    assert stats.wilson_interval(successes, n) == pytest.approx((low, high), abs=5e-5)


def test_wilson_at_full_accuracy_has_exact_upper_bound_and_closed_form_lower_bound():
    # k = n: low = n / (n + z^2) exactly, the form the score interval takes at p = 1.
    low, high = stats.wilson_interval(360, 360)
    assert high == 1.0
    assert low == pytest.approx(360 / (360 + stats.Z95 ** 2), rel=1e-12)
    assert low == pytest.approx(0.98944, abs=1e-5)


def test_wilson_refuses_impossible_counts():
    with pytest.raises(ValueError):
        stats.wilson_interval(5, 4)
    with pytest.raises(ValueError):
        stats.wilson_interval(0, 0)


@pytest.mark.parametrize("b, c, p", [
    (1, 9, 2 * (1 + 10) / 2 ** 10),              # 2 * [C(10,0) + C(10,1)] / 2^10 = 0.021484375
    (9, 1, 2 * (1 + 10) / 2 ** 10),              # symmetric in b and c
    (0, 3, 2 / 2 ** 3),                          # 2 * C(3,0) / 8 = 0.25
    (0, 5, 2 / 2 ** 5),                          # 0.0625: five one-sided disagreements are not yet significant
    (0, 6, 2 / 2 ** 6),                          # 0.03125
    (2, 8, 2 * (1 + 10 + 45) / 2 ** 10),         # 0.109375
    (5, 5, 1.0),                                 # 2 * P[X <= 5] > 1 is capped at 1
    (0, 0, 1.0),                                 # no discordant pairs: no evidence
])
def test_mcnemar_exact_p_by_hand_from_the_binomial(b, c, p):
    assert stats.mcnemar_exact_p(b, c) == p


def test_mcnemar_exact_p_stays_exact_for_thousands_of_discordant_pairs():
    # scipy.stats.binomtest(2000, 4300, 0.5).pvalue = 5.0799355689240...e-06 (two-sided, symmetric case).
    assert stats.mcnemar_exact_p(2000, 2300) == pytest.approx(5.0799355689240e-06, rel=1e-12)


def test_mcnemar_counts_discordant_images():
    first = [True, True, True, False, False, True]
    second = [True, False, False, True, False, True]
    result = stats.mcnemar(first, second)
    assert (result.b, result.c, result.n_discordant) == (2, 1, 3)
    assert result.p == 1.0  # 2 * (1 + 3) / 8 = 1


def test_mcnemar_refuses_different_image_counts():
    with pytest.raises(ValueError):
        stats.mcnemar([True, False], [True])
