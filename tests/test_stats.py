"""Intervals and paired tests: Wilson and exact McNemar against textbook values and scipy, the clustered
interval and the sign-flip test against small cases computed by hand, the base image of every key form."""
import numpy as np
import pytest
from scipy.stats import binomtest

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


@pytest.mark.parametrize("successes, n", [(81, 263), (342, 360), (359, 360), (360, 360), (0, 20), (1799, 1800)])
def test_wilson_matches_scipy(successes, n):
    expected = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert stats.wilson_interval(successes, n) == pytest.approx((expected.low, expected.high), rel=1e-12, abs=1e-15)


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


@pytest.mark.parametrize("b, c", [(1, 9), (3, 1), (0, 6), (5, 5), (40, 70), (2000, 2300)])
def test_mcnemar_exact_p_matches_scipy_binomtest(b, c):
    # McNemar's exact test is the two-sided binomial test of b successes in b + c trials at 1/2.
    assert stats.mcnemar_exact_p(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-12)


def test_paired_test_without_clusters_is_exact_mcnemar():
    first = [True, True, True, False, False, True]
    second = [True, False, False, True, False, True]
    result = stats.paired_test(first, second)
    assert (result.b, result.c, result.n_discordant) == (2, 1, 3)
    assert result.p == 1.0  # 2 * (1 + 3) / 8 = 1
    assert result.method == "exact two-sided McNemar test over 6 independent images"


@pytest.mark.parametrize("call", [lambda: stats.paired_test([True, False], [True]),
                                  lambda: stats.paired_test([True, False], [True, True], clusters=["a"]),
                                  lambda: stats.accuracy_interval([True, False], clusters=["a", "b", "c"]),
                                  lambda: stats.accuracy_interval([])])
def test_mismatched_inputs_are_refused(call):
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize("key", [
    "00000000_crazing/Cr_1.bmp",                          # original LMDB record
    "crazing/Cr_1.bmp",                                   # original, from a list file
    "original/00000000_crazing/Cr_1.bmp",                 # a subset's record with its subset in front
    "00000001_noise_20/crazing/Cr_1_1.png",               # draw 1 of noise_20
    "00000004_lum_0.4/crazing/Cr_1_4.png",                # draw 4 of lum_0.4 (a subset name with a dot)
    "noise_20/crazing/Cr_1_0.png",                        # a degraded list file's path
    "blur_5/00001234_blur_5/crazing/Cr_1_2.png",          # a record of the pooled degraded subsets
    "00000000_crazing/Cr_1.bmp#3",                        # draw 3 of a robustness sweep
])
def test_every_record_of_one_base_image_has_its_cluster(key):
    assert stats.cluster_of(key) == "crazing/Cr_1"


def test_clusters_keep_distinct_base_images_apart():
    # Cr_1_0 is draw 0 of Cr_1 in a degraded subset, but Cr_10 and Cr_1 are different images.
    assert stats.cluster_of("00000000_noise_20/crazing/Cr_10_0.png") == "crazing/Cr_10"
    assert stats.cluster_of("00000000_Cr_1.bmp") == "Cr_1"
    assert stats.cluster_of("00000000_scratches/Sc_300.bmp") == "scratches/Sc_300"


def test_a_degraded_record_without_a_draw_number_is_refused():
    with pytest.raises(ValueError, match="_<draw>"):
        stats.cluster_of("00000000_noise_20/crazing/Cr.png")


def records(per_cluster):
    """(correct, clusters) of clusters given as lists of per-record correctness."""
    correct = [c for cluster in per_cluster for c in cluster]
    clusters = [f"base{i}" for i, cluster in enumerate(per_cluster) for _ in cluster]
    return correct, clusters


def satisfies_score_equation(p, n, bound):
    # Wilson's bounds are the two proportions pi with (p - pi)^2 = z^2 pi (1 - pi) / n.
    return (p - bound) ** 2 == pytest.approx(stats.Z95 ** 2 * bound * (1 - bound) / n, rel=1e-9)


def test_effective_size_by_hand():
    # Four base images with two draws each, right answers 2, 2, 1, 0: n = 8, p = 5/8.
    # c_i - p n_i = 0.75, 0.75, -0.25, -1.25; squares sum to 0.5625 + 0.5625 + 0.0625 + 1.5625 = 2.75.
    # Cluster variance = 2.75 / 8^2; binomial p(1 - p) = 15/64; n_eff = (15/64) / (2.75/64) = 60/11.
    correct, clusters = records([[1, 1], [1, 1], [1, 0], [0, 0]])
    assert stats.effective_size([2, 2, 1, 0], [2, 2, 2, 2]) == pytest.approx(60 / 11, rel=1e-12)
    interval = stats.accuracy_interval(correct, clusters)
    assert satisfies_score_equation(5 / 8, 60 / 11, interval.low)
    assert satisfies_score_equation(5 / 8, 60 / 11, interval.high)
    assert interval.low < 5 / 8 < interval.high
    assert interval.method.startswith("95 % Wilson score interval at the effective sample size of 4 base-image")


def test_correlated_draws_widen_the_interval_by_the_design_effect():
    # 360 base images with 5 draws: 300 always right, 60 right in 2 draws of 5. n = 1800, right = 1620, p = 0.9.
    # c_i - 5 p = 0.5 (300 times) and -2.5 (60 times): sum of squares 300 * 0.25 + 60 * 6.25 = 450.
    # n_eff = p(1 - p) n^2 / 450 = 0.09 * 1800^2 / 450 = 648 (design effect 1800 / 648 = 2.78).
    correct, clusters = records([[1] * 5] * 300 + [[1, 1, 0, 0, 0]] * 60)
    assert stats.effective_size([5] * 300 + [2] * 60, [5] * 360) == pytest.approx(648, rel=1e-12)
    clustered = stats.accuracy_interval(correct, clusters)
    assert (clustered.low, clustered.high) == pytest.approx(stats.wilson_interval(0.9 * 648, 648), rel=1e-12)
    independent = stats.accuracy_interval(correct)
    assert (independent.low, independent.high) == pytest.approx(stats.wilson_interval(1620, 1800), rel=1e-12)
    assert clustered.low < independent.low - 0.008 and clustered.high > independent.high + 0.007
    assert clustered.method.startswith("95 % Wilson score interval at the effective sample size of 360 base-image")


def test_identical_draws_count_as_the_base_images_alone():
    # 342 of 360 base images right, every draw of a base image the same: the 1800 records hold no more
    # than the 360 images. Sum of squares = 342 * (5 - 5p)^2 + 18 * (5p)^2 = 25 * 360 p (1 - p), so n_eff = 360.
    base = [True] * 342 + [False] * 18
    correct, clusters = records([[b] * 5 for b in base])
    clustered = stats.accuracy_interval(correct, clusters)
    assert (clustered.low, clustered.high) == pytest.approx(stats.wilson_interval(342, 360), rel=1e-12)


def test_without_errors_the_clustered_interval_is_that_of_the_base_images():
    # No variance to measure: the interval is Wilson's for K = 360 independent images, not a zero-width one.
    correct, clusters = records([[True] * 5] * 360)
    clustered = stats.accuracy_interval(correct, clusters)
    assert (clustered.low, clustered.high) == (stats.wilson_interval(360, 360)[0], 1.0)
    assert clustered.low == pytest.approx(0.98944, abs=1e-5)


def test_draws_less_alike_than_chance_count_no_more_than_independent_images():
    # Every base image right in exactly one of two draws: the cluster variance is 0 (deff 0), capped at deff 1.
    correct, clusters = records([[True, False]] * 50)
    clustered = stats.accuracy_interval(correct, clusters)
    assert (clustered.low, clustered.high) == pytest.approx(stats.wilson_interval(50, 100), rel=1e-12)


def test_the_closed_form_variance_is_what_a_cluster_bootstrap_estimates():
    # The 648 case above: resampling the 360 base images with replacement (all their draws kept) gives
    # accuracies whose variance approaches 450 / 1800^2 = 1.389e-4.
    right, sizes = np.array([5] * 300 + [2] * 60), np.full(360, 5)
    weights = np.random.default_rng(0).multinomial(360, np.full(360, 1 / 360), size=20000)
    accuracies = (weights @ right) / (weights @ sizes)
    assert accuracies.var() == pytest.approx(450 / 1800 ** 2, rel=0.03)


def test_sign_flip_p_by_hand():
    # Differences 2, 1, 0, -1 (sum 2). The 0 does not matter; the 2^3 signs of (2, 1, 1) give the sums
    # 4, 2, 2, 0, 0, -2, -2, -4: six of the eight have |sum| >= 2, p = 6/8.
    assert stats.sign_flip_p([2, 1, 0, -1]) == 0.75
    # Ten base images with A right and B wrong in all 5 draws: only the two all-equal sign vectors of
    # 2^10 reach |sum| = 50, p = 2 / 1024.
    assert stats.sign_flip_p([5] * 10) == 2 / 1024
    assert stats.sign_flip_p([0, 0]) == 1.0
    assert stats.sign_flip_p([3, -3]) == 1.0   # sum 0: every sign vector reaches |sum| >= 0


@pytest.mark.parametrize("b, c", [(1, 9), (3, 1), (0, 6), (5, 5), (40, 70), (2000, 2300)])
def test_sign_flip_over_single_image_clusters_is_exact_mcnemar(b, c):
    differences = [1] * b + [-1] * c + [0] * 7
    assert stats.sign_flip_p(differences) == pytest.approx(stats.mcnemar_exact_p(b, c), rel=1e-12)


def test_clustered_paired_test_by_hand():
    # Base images with two draws; A and B right per draw:
    #   base0: A 1 1, B 0 0 -> d = 2;  base1: A 1 0, B 0 0 -> d = 1
    #   base2: A 1 1, B 1 1 -> d = 0;  base3: A 0 1, B 1 1 -> d = -1
    # b = 3 records A alone gets right, c = 1 record B alone; McNemar 2 (1 + 4) / 16 = 0.625;
    # clustered: sign flips of (2, 1, -1) as in test_sign_flip_p_by_hand, p = 0.75.
    a, clusters = records([[1, 1], [1, 0], [1, 1], [0, 1]])
    b, _ = records([[0, 0], [0, 0], [1, 1], [1, 1]])
    clustered = stats.paired_test(a, b, clusters)
    assert (clustered.b, clustered.c, clustered.p) == (3, 1, 0.75)
    assert clustered.method == ("exact two-sided sign-flip permutation test of the per-base-image differences "
                                "(4 base-image clusters)")
    assert stats.paired_test(a, b).p == 0.625


def test_clustered_paired_test_is_not_fooled_by_repeated_draws():
    # Ten base images, A right and B wrong in all five draws of each: as 50 independent images McNemar
    # gives 2 / 2^50 = 1.8e-15; as ten base images the evidence is ten agreeing signs, p = 2 / 2^10.
    a, clusters = records([[True] * 5] * 10 + [[True] * 5] * 50)
    b, _ = records([[False] * 5] * 10 + [[True] * 5] * 50)
    assert stats.paired_test(a, b).p == 2 / 2 ** 50
    assert stats.paired_test(a, b, clusters).p == 2 / 2 ** 10
