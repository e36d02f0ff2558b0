"""The degradations: MATLAB fspecial('motion') values, luminance field range, AWGN SNR, rounding."""
import numpy as np
import pytest

from sdc import degrade, neu

MATLAB_MOTION = {  # fspecial('motion', L, theta), 4 d.p.
    (2, 0): [[0.25, 0.5, 0.25]],
    (5, 0): [[0.2] * 5],
    (3, 90): [[1 / 3], [1 / 3], [1 / 3]],
    (5, 45): [[0, 0, 0, .0501, .0304],
              [0, 0, .0519, .1771, .0501],
              [0, .0519, .1771, .0519, 0],
              [.0501, .1771, .0519, 0, 0],
              [.0304, .0501, 0, 0, 0]],
}


def snr_db(signal, noisy):
    signal = signal.astype(np.float64)
    return 10 * np.log10(np.mean(signal ** 2) / np.mean((noisy - signal) ** 2))


@pytest.fixture(scope="module")
def test_images(neu_dir):
    """One held-out-style image per class at the network's 256 x 256 input."""
    names = ["Cr_1.bmp", "In_6.bmp", "Pa_11.bmp", "PS_16.bmp", "RS_21.bmp", "Sc_26.bmp"]
    return [neu.resize_bilinear(neu.load(neu_dir / neu.official_path(n)), 256) for n in names]


@pytest.mark.parametrize("length,theta", sorted(MATLAB_MOTION))
def test_motion_kernel_equals_matlab(length, theta):
    np.testing.assert_allclose(degrade.motion_kernel(length, theta), MATLAB_MOTION[length, theta], atol=1e-4)


@pytest.mark.parametrize("length", [2, 3, 5, 9])
@pytest.mark.parametrize("theta", [0, 17.5, 45, 90, 123.4, 180, 271, 359.9])
def test_motion_kernel_sums_to_one_and_is_point_symmetric(length, theta):
    kernel = degrade.motion_kernel(length, theta)
    assert kernel.sum() == pytest.approx(1, abs=1e-12)
    assert kernel.shape[0] % 2 == 1 and kernel.shape[1] % 2 == 1
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-15)
    np.testing.assert_allclose(kernel, degrade.motion_kernel(length, theta + 180), atol=1e-12)


def test_blur_padding_replicate_or_zero():
    flat = np.full((8, 8), 100, np.uint8)
    kernel = degrade.motion_kernel(5, 0)
    np.testing.assert_allclose(degrade.filter2d(flat, kernel, "replicate"), 100)
    zero = degrade.filter2d(flat, kernel, "zero")
    np.testing.assert_allclose(zero[:, 0], 60)   # 3 of the 5 taps inside
    np.testing.assert_allclose(zero[:, 1], 80)
    np.testing.assert_allclose(zero[:, 2:6], 100)


def test_blur_correlates_rather_than_convolves():
    image = np.zeros((5, 5))
    image[2, 2] = 1
    kernel = degrade.motion_kernel(5, 45)
    # Correlation of an impulse gives the kernel rotated by 180 degrees (this one is symmetric).
    np.testing.assert_allclose(degrade.filter2d(image, kernel, "zero"), kernel[::-1, ::-1], atol=1e-15)


@pytest.mark.parametrize("alpha", [0.4, 1.0])
def test_luminance_field_spans_exactly_one_plus_minus_alpha(alpha):
    rng = np.random.default_rng(3)
    for _ in range(20):
        field = degrade.luminance_field((256, 256), rng.uniform(-1, 1, 10), alpha)
        assert field.min() == 1 - alpha and field.max() == 1 + alpha


def test_luminance_field_is_the_stretched_cubic():
    coefficients = np.arange(1.0, 11.0)
    field = degrade.luminance_field((3, 3), coefficients, 0.5)
    x, y = np.meshgrid([-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0])
    poly = sum(c * x ** i * y ** j for c, (i, j) in zip(
        coefficients, [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2), (3, 0), (2, 1), (1, 2), (0, 3)]))
    np.testing.assert_allclose(field, 0.5 + (poly - poly.min()) / np.ptp(poly), atol=1e-15)


def test_luminance_alpha_1_blackens_and_saturates(test_images):
    image = test_images[0]
    out = degrade.vary_luminance(image, degrade.rng_for(0, "lum_1", "Cr_1.bmp", 0), 1.0)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255


def test_awgn_power_is_mean_square_over_snr(test_images):
    class UnitPowerRng:  # exposes the scale awgn applies to a unit-power draw
        def standard_normal(self, shape):
            return np.ones(shape)
    image = test_images[1]
    noise = degrade.awgn_noise(image, UnitPowerRng(), 20.0)
    assert np.mean(noise ** 2) == pytest.approx(np.mean(image.astype(float) ** 2) / 100, rel=1e-12)


@pytest.mark.parametrize("snr", [35.0, 20.0])
def test_awgn_measured_snr_before_clipping(test_images, snr):
    # Over 256^2 pixels the measured noise power scatters by sqrt(2/65536) = 0.55 %, i.e. 0.024 dB:
    # single draws sit within 0.05 dB about 96 % of the time; the mean is unbiased.
    deviations = []
    for index, image in enumerate(test_images):
        for draw in range(10):
            noise = degrade.awgn_noise(image, degrade.rng_for(0, f"noise_{snr}", str(index), draw), snr)
            deviations.append(snr_db(image, image + noise) - snr)
    deviations = np.array(deviations)
    assert abs(deviations.mean()) < 0.01
    assert np.abs(deviations).max() < 0.12
    assert np.mean(np.abs(deviations) < 0.05) >= 0.9


@pytest.mark.parametrize("snr", [35.0, 20.0])
def test_awgn_snr_after_clip_and_round(neu_dir, snr):
    for name in ["Cr_3.bmp", "In_1.bmp", "PS_1.bmp", "RS_1.bmp", "Sc_1.bmp"]:  # images far from 0 and 255
        image = neu.resize_bilinear(neu.load(neu_dir / neu.official_path(name)), 256)
        out = degrade.add_noise(image, degrade.rng_for(1, "noise", name, 0), snr)
        assert out.dtype == np.uint8
        assert np.mean((out == 0) | (out == 255)) < 0.001  # clipping would remove noise power
        assert abs(snr_db(image, out) - snr) < 0.5


def test_rounding_is_matlab_half_away_from_zero():
    np.testing.assert_array_equal(degrade.to_uint8(np.array([-7.0, 0.49, 0.5, 1.5, 2.5, 254.5, 255.2, 999.0])),
                                  [0, 0, 1, 2, 3, 255, 255, 255])


def test_streams_depend_on_every_part_of_the_key():
    def first(*key):
        return degrade.rng_for(*key).random()
    base = first(1, "noise_20", "Cr_1.bmp", 0)
    assert base == first(1, "noise_20", "Cr_1.bmp", 0)
    others = [first(2, "noise_20", "Cr_1.bmp", 0), first(1, "noise_35", "Cr_1.bmp", 0),
              first(1, "noise_20", "Cr_2.bmp", 0), first(1, "noise_20", "Cr_1.bmp", 1)]
    assert len({base, *others}) == 5


@pytest.mark.parametrize("subset", list(degrade.SUBSETS))
def test_every_subset_keeps_shape_and_type(test_images, subset):
    out = degrade.degrade(test_images[2], subset, degrade.rng_for(0, subset, "Pa_11.bmp", 0))
    assert out.shape == (256, 256) and out.dtype == np.uint8
    assert not np.array_equal(out, test_images[2])
