"""The degradations of the diversity-enhanced test set, MATLAB semantics, seeded per image.

Every degraded image takes its random numbers from its own stream, derived from
(seed, subset, image name, draw index), so the bytes do not depend on processing order or on
the number of workers.
"""
import functools
import hashlib
import math

import numpy as np
from scipy import ndimage

from .errors import UserError

DEFAULT_SEED = 2019
DRAWS = 5  # per test image and subset: 60 test images x 5 = 300 per class, as the paper's Table 5
# subset name -> (degradation, parameter); "original" is the held-out images themselves.
SUBSETS = {
    "lum_0.4": ("luminance", 0.4),
    "lum_1": ("luminance", 1.0),
    "noise_35": ("noise", 35.0),
    "noise_20": ("noise", 20.0),
    "blur_2": ("blur", 2),
    "blur_5": ("blur", 5),
}
TEST_SUBSETS = ("original",) + tuple(SUBSETS)
PADDINGS = ("replicate", "zero")


def parse_subset_options(values, option, what):
    """``["noise_20=DIR", ...]`` from a repeatable ``--option SUBSET=WHAT`` into {subset: str}."""
    parsed = {}
    for value in values:
        subset, sep, target = value.partition("=")
        if not sep or subset not in TEST_SUBSETS:
            raise UserError(f"{option} {value!r}: expected SUBSET={what} with SUBSET one of {', '.join(TEST_SUBSETS)}")
        parsed[subset] = target
    return parsed
_EPS = np.finfo(np.float64).eps  # MATLAB's eps


def to_uint8(values):
    """Clip to [0, 255] and round half away from zero, as MATLAB's uint8() conversion."""
    shifted = values + 0.5
    return np.clip(shifted, 0.0, 255.5, out=shifted).astype(np.uint8)  # truncation = floor here


def rng_for(seed, subset, name, draw):
    """The random stream of one degraded image."""
    key = hashlib.sha256(f"{subset}/{name}/{draw}".encode()).digest()
    words = np.frombuffer(key, dtype="<u4")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *words.tolist()])))


@functools.lru_cache(maxsize=4)
def cubic_monomials(shape):
    """The 10 monomials x^i y^j (i + j <= 3) on the pixel centres, x and y spanning [-1, 1],
    in the order 1, x, y, x^2, xy, y^2, x^3, x^2 y, x y^2, y^3."""
    y = np.linspace(-1.0, 1.0, shape[0])[:, None]
    x = np.linspace(-1.0, 1.0, shape[1])[None, :]
    powers = [(i, d - i) for d in range(4) for i in range(d, -1, -1)]
    return np.stack([np.broadcast_to(x ** i * y ** j, shape) for i, j in powers])


def luminance_field(shape, coefficients, alpha):
    """Random cubic polynomial field (``coefficients`` of cubic_monomials), min-max stretched onto
    [1 - alpha, 1 + alpha]."""
    # Element-wise sum in a fixed order (no BLAS): the same bits on every machine.
    field = sum(c * m for c, m in zip(coefficients, cubic_monomials(tuple(shape))))
    t = (field - field.min()) / (field.max() - field.min())
    # lo*(1-t) + hi*t hits both ends exactly in floating point.
    return (1 - alpha) * (1 - t) + (1 + alpha) * t


def vary_luminance(image, rng, alpha):
    field = luminance_field(image.shape, rng.uniform(-1.0, 1.0, 10), alpha)
    return to_uint8(image * field)


def awgn_noise(image, rng, snr_db):
    """White Gaussian noise at the measured SNR, as MATLAB's awgn(I, snr, 'measured').

    Signal power is the mean square of the image (not its variance).
    """
    power = np.mean(image.astype(np.float64) ** 2) / 10 ** (snr_db / 10)
    return rng.standard_normal(image.shape) * np.sqrt(power)


def add_noise(image, rng, snr_db):
    return to_uint8(image + awgn_noise(image, rng, snr_db))


def motion_kernel(length, theta_deg):
    """MATLAB's fspecial('motion', length, theta_deg), line for line."""
    length = max(1, length)
    half = (length - 1) / 2
    phi = (theta_deg % 180) / 180 * math.pi  # Python's % takes the divisor's sign, as MATLAB's mod
    cosphi, sinphi = math.cos(phi), math.sin(phi)
    xsign = int(np.sign(cosphi))
    linewdt = 1
    sx = int(np.fix(half * cosphi + linewdt * xsign - length * _EPS))
    sy = int(np.fix(half * sinphi + linewdt - length * _EPS))
    x, y = np.meshgrid(np.arange(0, sx + xsign, xsign), np.arange(0, sy + 1))
    x, y = x.astype(np.float64), y.astype(np.float64)
    dist2line = y * cosphi - x * sinphi
    rad = np.sqrt(x ** 2 + y ** 2)
    last = (rad >= half) & (np.abs(dist2line) <= linewdt)
    with np.errstate(divide="ignore", over="ignore"):  # cosphi ~ 6e-17 at 90 degrees, as in MATLAB
        x2last = half - np.abs((x[last] + dist2line[last] * sinphi) / cosphi)
        dist2line[last] = np.sqrt(dist2line[last] ** 2 + x2last ** 2)
    dist2line = linewdt + _EPS - np.abs(dist2line)
    dist2line[dist2line < 0] = 0
    rows, cols = dist2line.shape
    kernel = np.zeros((2 * rows - 1, 2 * cols - 1))
    kernel[:rows, :cols] = dist2line[::-1, ::-1]
    kernel[rows - 1:, cols - 1:] = dist2line
    kernel /= kernel.sum() + _EPS * length * length
    return kernel[::-1] if cosphi > 0 else kernel


def filter2d(image, kernel, padding="replicate"):
    """Correlation, same size, as MATLAB's imfilter with 'replicate' (or its default zero padding)."""
    mode = {"replicate": "nearest", "zero": "constant"}[padding]
    return ndimage.correlate(image.astype(np.float64), kernel, mode=mode, cval=0.0)


def motion_blur(image, rng, length, padding="replicate"):
    kernel = motion_kernel(length, rng.uniform(0.0, 360.0))
    return to_uint8(filter2d(image, kernel, padding))


def degrade(image, subset, rng, padding="replicate"):
    """One random draw of ``subset`` applied to a grey uint8 image."""
    kind, parameter = SUBSETS[subset]
    if kind == "luminance":
        return vary_luminance(image, rng, parameter)
    if kind == "noise":
        return add_noise(image, rng, parameter)
    return motion_blur(image, rng, parameter, padding)
