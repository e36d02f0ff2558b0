"""Texture features pinned on synthetic images whose values follow by hand (sdc.texture)."""
import math

import numpy as np
import pytest

from sdc import texture

SIDE = 32
HIGH, LOW = 148.0, 108.0          # a 0/255 two-level image normalised to mean 128, std 20
DIAGONAL_SAME = (1 - math.sqrt(0.5)) ** 2 + 0.5  # bilinear weight of the centre's colour at 45 degrees


def constant(value=100, side=SIDE):
    return np.full((side, side), value, np.uint8)


def checkerboard(side=SIDE):
    rows, cols = np.indices((side, side))
    return np.where((rows + cols) % 2 == 0, 255, 0).astype(np.uint8)


def stripes(side=SIDE):
    """Vertical stripes one pixel wide: columns alternate 255, 0."""
    return np.tile(np.where(np.arange(side) % 2 == 0, 255, 0).astype(np.uint8), (side, 1))


def glcm_table(image):
    """GLCM features as [property][distance index][angle index]."""
    values = texture.glcm(image)
    return dict(zip(texture.GLCM_PROPERTIES, values.reshape(len(texture.GLCM_PROPERTIES), 4, 4)))


# --- GLCM -------------------------------------------------------------------------------------

def test_glcm_of_a_constant_image():
    matrices = texture.glcm_matrices(constant(100), texture.GlcmParams())
    assert matrices.shape == (32, 32, 4, 4)
    assert np.all(matrices[100 >> 3, 100 >> 3] == 1) and matrices.sum() == 16
    table = glcm_table(constant(100))
    expected = {"contrast": 0, "dissimilarity": 0, "homogeneity": 1, "energy": 1, "ASM": 1, "correlation": 1,
                "entropy": 0}
    for prop, value in expected.items():
        np.testing.assert_allclose(table[prop], value, atol=1e-12, err_msg=prop)


def two_level(prop, equal):
    """A GLCM of two equally frequent levels 0 and 31: pairs of equal levels or of opposite ones."""
    return {"contrast": 0 if equal else 31 ** 2, "dissimilarity": 0 if equal else 31,
            "homogeneity": 1 if equal else 1 / (1 + 31 ** 2), "energy": math.sqrt(0.5), "ASM": 0.5,
            "correlation": 1 if equal else -1, "entropy": math.log(2)}[prop]


def test_glcm_of_a_checkerboard():
    table = glcm_table(checkerboard())
    for prop in texture.GLCM_PROPERTIES:
        for d_index, distance in enumerate(texture.GlcmParams().distances):
            for angle in range(4):
                # Axis offsets at odd distances meet the other colour; diagonal offsets never do.
                # (A diagonal offset at odd d leaves an odd number of pairs, 481 of one colour
                # and 480 of the other at d = 1: ASM, energy and entropy are 1e-6 off the halves.)
                equal = angle in (1, 3) or distance % 2 == 0
                assert table[prop][d_index, angle] == pytest.approx(two_level(prop, equal), abs=1e-5), \
                    (prop, distance, angle)


def test_glcm_offsets_of_vertical_stripes():
    """Angles 0/45/90/135 are the offsets (0,d), (d,d), (d,0), (d,-d): the diagonal at d = 2 is (2,2)."""
    contrast = glcm_table(stripes())["contrast"]
    np.testing.assert_array_equal(contrast[:, 2], 0)                     # (d, 0): along the stripe
    for angle in (0, 1, 3):                                              # every offset with dcol = d
        np.testing.assert_allclose(contrast[:, angle], [961, 0, 0, 0], atol=1e-9)


def test_quantisation_is_uniform():
    values = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(texture.quantise(values, 32), values >> 3)
    np.testing.assert_array_equal(texture.quantise(values, 64), values >> 2)


# --- building blocks --------------------------------------------------------------------------

def test_riu2_maps_the_256_patterns_of_8_bits_to_10_codes():
    patterns = np.arange(256)
    bits = (patterns[None, :] >> np.arange(8)[:, None]) & 1 == 1
    codes = texture.riu2(bits)
    counts = np.bincount(codes)
    assert len(counts) == 8 + 2
    # 0 and 8 ones: one pattern each; 1..7 ones in one run: 8 rotations each; the 198 others: P + 1.
    assert counts.tolist() == [1] + [8] * 7 + [1, 198]
    assert codes[0b00001111] == codes[0b11110000] == codes[0b00111100] == 4
    assert codes[0b01010101] == codes[0b00010001] == 9


@pytest.mark.parametrize("points", [16, 24])
def test_riu2_has_p_plus_2_codes(points):
    """Runs of k = 0..P ones (any rotation) code k; anything with more than 2 transitions codes P + 1."""
    runs = np.arange(points)[:, None] < np.arange(points + 1)[None, :]          # column k: k ones
    runs = np.roll(runs, 3, axis=0)
    alternating = (np.arange(points) % 2 == 0)[:, None]
    codes = texture.riu2(np.concatenate([runs, alternating], axis=1))
    assert codes.tolist() == list(range(points + 2))


def test_adjacent_evaluation_window():
    image = np.zeros((5, 5))
    image[2, 2] = 9.0
    without = texture.adjacent_mean(image, 3, include_neighbour=False)
    assert without.shape == (3, 3)
    expected = np.full((3, 3), 9 / 8)
    expected[1, 1] = 0   # the centre's own value is left out of its window
    np.testing.assert_allclose(without, expected)
    np.testing.assert_allclose(texture.adjacent_mean(image, 3, include_neighbour=True), np.ones((3, 3)))
    np.testing.assert_array_equal(texture.adjacent_mean(image, 1, False), image)
    five = texture.adjacent_mean(np.arange(49.0).reshape(7, 7), 5, include_neighbour=False)
    assert five.shape == (3, 3) and five[0, 0] == pytest.approx((np.arange(49.0).reshape(7, 7)[:5, :5].sum() - 16) / 24)
    with pytest.raises(ValueError, match="odd size"):
        texture.adjacent_mean(image, 4, False)


@pytest.mark.parametrize("points,radius", [(8, 1), (16, 2), (24, 3)])
def test_bilinear_circular_samples_are_exact_on_a_plane(points, radius):
    rows, cols = np.indices((20, 20))
    plane = (3.0 * rows + 5.0 * cols).astype(np.float32)
    samples = texture.circular_samples(plane, points, radius)
    r = math.ceil(radius)
    centres = plane[r:20 - r, r:20 - r]
    for p, (dy, dx) in enumerate(texture.neighbour_offsets(points, radius)):
        np.testing.assert_allclose(samples[p], centres + 3 * dy + 5 * dx, atol=1e-4)
    # neighbour 0 lies on the right of the centre, neighbour P/4 above it (rows grow downwards)
    np.testing.assert_allclose(texture.neighbour_offsets(points, radius)[[0, points // 4]],
                               [[0, radius], [-radius, 0]], atol=1e-12)


def test_normalise_to_mean_128_std_20():
    normalised = texture.normalise(checkerboard())
    assert normalised.mean() == pytest.approx(128) and normalised.std() == pytest.approx(20)
    assert set(np.round(normalised, 9).ravel()) == {HIGH, LOW}
    np.testing.assert_array_equal(texture.normalise(constant(7)), 128.0)


# --- AECLBP -----------------------------------------------------------------------------------

def clbp_blocks(vector, scales):
    """Per-scale joint histograms, shape (P+2, P+2, 2) = [S, M, C]."""
    pieces = split(vector, [(points + 2) ** 2 * 2 for points, _ in scales])
    return [piece.reshape(points + 2, points + 2, 2) for piece, (points, _) in zip(pieces, scales)]


def split(vector, sizes):
    """Consecutive pieces of ``vector`` with these sizes, which must add up to its length."""
    assert sum(sizes) == len(vector)
    return np.split(vector, np.cumsum(sizes)[:-1])


def only_bins(block, bins):
    expected = np.zeros_like(block)
    for index, weight in bins.items():
        expected[index] = weight
    np.testing.assert_allclose(block, expected, atol=1e-12)


def test_aeclbp_size_and_normalisation():
    rng = np.random.default_rng(0)
    vector = texture.extract("AECLBP", rng.integers(0, 256, (40, 40), dtype=np.uint8))
    assert vector.dtype == np.float32 and vector.shape == (200 + 648 + 1352,)
    for block in clbp_blocks(vector, texture.AeclbpParams().scales):
        assert block.sum() == pytest.approx(1)


def test_aeclbp_of_a_constant_image():
    """Every difference is 0 (sign bits 1), every magnitude equals the mean 0 (bits 1), the centre
    equals the image mean (bit 1): S = M = P, C = 1 everywhere."""
    scales = texture.AeclbpParams().scales
    for block, (points, _) in zip(clbp_blocks(texture.extract("AECLBP", constant()), scales), scales):
        only_bins(block, {(points, points, 1): 1.0})


def test_aeclbp_of_a_checkerboard():
    """Without the neighbour itself, a 3x3 window of a checkerboard averages 4 pixels of each colour:
    every evaluated neighbour is 128. A 148 centre: all signs 0; a 108 centre: all 1. Every
    magnitude is 20 = the mean magnitude: M = P. C = 1 for 148 centres."""
    scales = texture.AeclbpParams().scales
    for block, (points, _) in zip(clbp_blocks(texture.extract("AECLBP", checkerboard()), scales), scales):
        only_bins(block, {(0, points, 1): 0.5, (points, points, 0): 0.5})


def test_plain_clbp_of_a_checkerboard_is_non_uniform_in_magnitude():
    """Window 1 (no adjacent evaluation), (8, 1): edge neighbours differ from the centre by 40,
    bilinear diagonal ones by 40 * (1 - DIAGONAL_SAME) = 16.57; the mean magnitude 28.28 lies
    between, so the magnitude bits alternate 1010...: M = P + 1 = 9."""
    params = texture.AeclbpParams(scales=((8, 1),), window=1)
    assert 40 > (40 + 40 * (1 - DIAGONAL_SAME)) / 2 > 40 * (1 - DIAGONAL_SAME)
    [block] = clbp_blocks(texture.extract("AECLBP", checkerboard(), params), params.scales)
    only_bins(block, {(0, 9, 1): 0.5, (8, 9, 0): 0.5})


def stripe_neighbours(centre):
    """The (8, 1) evaluated neighbours of a stripe pixel, by hand: a 3x3 window without its centre
    holds 2 pixels of its own column and 6 of the others, so evaluated columns are
    0.25 v + 0.75 v' (118 on 148 columns, 138 on 108 columns); diagonal samples mix the two columns
    by cos 45 degrees."""
    own, other = (118.0, 138.0) if centre == HIGH else (138.0, 118.0)
    diagonal = (1 - math.sqrt(0.5)) * own + math.sqrt(0.5) * other
    return np.array([other, diagonal, own, diagonal, other, diagonal, own, diagonal])


def test_aeclbp_of_stripes():
    """148 centres see neighbours 138/132.1/118 (signs 0), 108 centres 118/123.9/138 (signs 1);
    magnitudes 10, 15.86, 30 around a mean of 17.93: bits 1 only at the two neighbours along the
    stripe (0010 0010), non-uniform: M = 9."""
    high = stripe_neighbours(HIGH) - HIGH
    assert np.all(high < 0) and np.all(stripe_neighbours(LOW) - LOW > 0)
    magnitude_bits = np.abs(high) >= np.abs(high).mean()
    assert magnitude_bits.tolist() == [False, False, True, False, False, False, True, False]
    params = texture.AeclbpParams(scales=((8, 1),))
    [block] = clbp_blocks(texture.extract("AECLBP", stripes(), params), params.scales)
    only_bins(block, {(0, 9, 1): 0.5, (8, 9, 0): 0.5})


def test_including_the_neighbour_changes_the_evaluation():
    """With the neighbour, a checkerboard's evaluated values are no longer flat (5 pixels of the
    neighbour's colour, 4 of the other): edge and diagonal magnitudes differ and M is non-uniform."""
    params = texture.AeclbpParams(scales=((8, 1),), include_neighbour=True)
    [block] = clbp_blocks(texture.extract("AECLBP", checkerboard(), params), params.scales)
    only_bins(block, {(0, 9, 1): 0.5, (8, 9, 0): 0.5})


# --- AELTP ------------------------------------------------------------------------------------

def ltp_blocks(vector, scales):
    """Per-scale (upper, lower) histograms."""
    pieces = split(vector, [points + 2 for points, _ in scales for _half in (0, 1)])
    return list(zip(pieces[::2], pieces[1::2]))


def one_hot(size, weights):
    histogram = np.zeros(size)
    for index, weight in weights.items():
        histogram[index] = weight
    return histogram


def test_aeltp_size_and_normalisation():
    rng = np.random.default_rng(1)
    vector = texture.extract("AELTP", rng.integers(0, 256, (40, 40), dtype=np.uint8))
    assert vector.shape == (2 * (10 + 18 + 26),)
    for upper, lower in ltp_blocks(vector, texture.AeltpParams().scales):
        assert upper.sum() == pytest.approx(1) and lower.sum() == pytest.approx(1)


def test_aeltp_of_a_constant_image_has_no_upper_or_lower_bits():
    scales = texture.AeltpParams().scales
    for (upper, lower), (points, _) in zip(ltp_blocks(texture.extract("AELTP", constant()), scales), scales):
        np.testing.assert_allclose(upper, one_hot(points + 2, {0: 1}))
        np.testing.assert_allclose(lower, one_hot(points + 2, {0: 1}))


def test_aeltp_of_a_checkerboard():
    """Evaluated neighbours are all 128 (std 0, threshold 0): 148 centres have P lower bits, 108
    centres P upper bits."""
    scales = texture.AeltpParams().scales
    for (upper, lower), (points, _) in zip(ltp_blocks(texture.extract("AELTP", checkerboard()), scales), scales):
        np.testing.assert_allclose(upper, one_hot(points + 2, {0: 0.5, points: 0.5}), atol=1e-7)
        np.testing.assert_allclose(lower, one_hot(points + 2, {0: 0.5, points: 0.5}), atol=1e-7)


def test_aeltp_threshold_adapts_to_the_local_spread():
    """On stripes the 8 evaluated neighbours have a spread sigma = 7.37: with k = 0.5 every
    difference (10, 15.86, 30 in size) passes the threshold; with k = 2 (t = 14.7) the two
    differences of 10 do not, which breaks the lower pattern into two runs (non-uniform, 9)."""
    sigma = stripe_neighbours(HIGH).std()
    assert sigma == pytest.approx(7.37, abs=0.01)
    diagonal = abs(stripe_neighbours(HIGH)[1] - HIGH)
    assert 0.5 * sigma < 10 < 2 * sigma < diagonal == pytest.approx(15.86, abs=0.01)
    scales = ((8, 1),)
    [(upper, lower)] = ltp_blocks(texture.extract("AELTP", stripes(), texture.AeltpParams(scales=scales)), scales)
    np.testing.assert_allclose(upper, one_hot(10, {0: 0.5, 8: 0.5}), atol=1e-7)
    np.testing.assert_allclose(lower, one_hot(10, {0: 0.5, 8: 0.5}), atol=1e-7)
    strict = texture.extract("AELTP", stripes(), texture.AeltpParams(scales=scales, k=2.0))
    [(upper, lower)] = ltp_blocks(strict, scales)
    np.testing.assert_allclose(upper, one_hot(10, {0: 0.5, 9: 0.5}), atol=1e-7)
    np.testing.assert_allclose(lower, one_hot(10, {0: 0.5, 9: 0.5}), atol=1e-7)

