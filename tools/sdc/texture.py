"""Hand-crafted texture features of the classical Table 3 baselines: GLCM, AECLBP and AELTP.

Every extractor takes one grey uint8 image (H x W) and returns a float32 vector; all work is
array-wide (shifted slices, box filters, bincounts), never a Python loop over pixels.

GLCM (Haralick et al. 1973). The image is quantised to ``levels`` grey levels by
q = floor(v * levels / 256) (32 levels: q = v >> 3). One symmetric, normalised co-occurrence matrix
per offset (drow, dcol) = (0, d), (d, d), (d, 0), (d, -d) -- the 0, 45, 90 and 135 degree directions
as skimage orders them, rows counted downwards -- at each distance d (chessboard distance, so the
diagonal offset at d = 2 is (2, 2), not skimage's rounded (1, 1)). Per matrix: contrast,
dissimilarity, homogeneity (1 / (1 + (i-j)^2)), energy, ASM, correlation (skimage's definitions;
correlation is 1 for a matrix with zero variance) and entropy -sum p ln p. Vector order:
property, distance, angle.

AECLBP (Song & Yan 2013, "adjacent evaluation completed LBP"): Guo et al.'s (2010) completed LBP in
which the value of each circular neighbour g_p is replaced by a_p, the mean of an ``window`` x
``window`` "adjacent evaluation" window centred on that neighbour (``include_neighbour``: whether
g_p itself is part of the mean; by default it is not, the window's other w^2 - 1 pixels are
averaged). The image is first normalised to mean 128, standard deviation 20. For each scale (P, R),
with the P neighbours at (drow, dcol) = (-R sin(2 pi p / P), R cos(2 pi p / P)) sampled bilinearly
and d_p = a_p - g_c:
  S = riu2 code of the bits [d_p >= 0]
  M = riu2 code of the bits [|d_p| >= c_M], c_M = mean |d_p| over the whole image (this scale)
  C = [g_c >= c_I], c_I = mean grey level of the (normalised) image
riu2 = number of 1 bits if the circular bit string has at most 2 transitions, else P + 1 (P + 2
codes). The feature is Guo's CLBP_S/M/C: the joint 3-D histogram of (S, M, C), (P+2)^2 * 2 bins per
scale, each scale's histogram normalised to sum 1, scales concatenated: 200 + 648 + 1352 = 2200 bins
for (8,1), (16,2), (24,3). Codes are computed only for centres whose whole neighbourhood (circle
plus evaluation window) lies inside the image.

AELTP (reconstructed; no primary source was found): Tan & Triggs' (2010) local ternary pattern on
the same adjacent-evaluation neighbours a_p, with a threshold that adapts to the local contrast:
t = k * std_p(a_p), the (population) standard deviation of the P evaluated neighbours of the centre.
  upper = riu2 code of [d_p > t],  lower = riu2 code of [d_p < -t]
Per scale the upper and lower histograms (P + 2 bins each, each normalised to sum 1) are
concatenated, as Tan & Triggs do: 2 * (10 + 18 + 26) = 108 bins for the three scales.

Samples are float32; a difference within TIE = 1e-3 grey levels of its threshold counts as equal to
it, so that ties (common in flat and synthetic regions) do not depend on rounding.
"""
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

FEATURES = ("GLCM", "AECLBP", "AELTP")
HISTOGRAM_FEATURES = ("AECLBP", "AELTP")
GLCM_PROPERTIES = ("contrast", "dissimilarity", "homogeneity", "energy", "ASM", "correlation", "entropy")
NORMALISED_MEAN = 128.0
NORMALISED_STD = 20.0
TIE = 1e-3  # grey levels (of the normalised image, std 20): closer than this counts as equal
# Bump a feature's version when its output changes without a parameter change: cached features are keyed on it.
VERSIONS = {"GLCM": 1, "AECLBP": 1, "AELTP": 2}


@dataclass(frozen=True)
class GlcmParams:
    levels: int = 32
    distances: tuple = (1, 2, 4, 8)


@dataclass(frozen=True)
class AeclbpParams:
    scales: tuple = ((8, 1), (16, 2), (24, 3))
    window: int = 3
    include_neighbour: bool = False


@dataclass(frozen=True)
class AeltpParams:
    scales: tuple = ((8, 1), (16, 2), (24, 3))
    window: int = 3
    include_neighbour: bool = False
    k: float = 0.5


DEFAULT_PARAMS = {"GLCM": GlcmParams(), "AECLBP": AeclbpParams(), "AELTP": AeltpParams()}


def describe(name, params):
    """A JSON-able record of a feature and its parameters (cache key and evaluation inputs)."""
    return {"feature": name, "version": VERSIONS[name], "params": dataclasses.asdict(params)}


def extract(name, image, params=None):
    """The ``name`` feature vector (float32) of a grey uint8 image."""
    params = params or DEFAULT_PARAMS[name]
    extractor = {"GLCM": glcm, "AECLBP": aeclbp, "AELTP": aeltp}[name]
    return extractor(np.asarray(image), params).astype(np.float32)


# --- GLCM -------------------------------------------------------------------------------------

def quantise(image, levels):
    return (image.astype(np.uint32) * levels // 256).astype(np.uint8)


def glcm_matrices(image, params):
    """Symmetric normalised GLCMs, shape (levels, levels, distances, 4 angles)."""
    from skimage.feature import graycomatrix
    q = quantise(image, params.levels)
    distances = np.array(params.distances, np.float64)
    axial = graycomatrix(q, distances, [0, np.pi / 2], params.levels, symmetric=True, normed=True)
    # skimage rounds d * sin/cos(45 deg); asking for d * sqrt(2) gives the chessboard offset (d, d).
    diagonal = graycomatrix(q, distances * math.sqrt(2), [np.pi / 4, 3 * np.pi / 4], params.levels,
                            symmetric=True, normed=True)
    return np.stack([axial[..., 0], diagonal[..., 0], axial[..., 1], diagonal[..., 1]], axis=-1)


def glcm_entropy(matrices):
    """-sum p ln p of each matrix, 0 ln 0 = 0."""
    p = matrices
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=(0, 1))


def glcm(image, params=GlcmParams()):
    from skimage.feature import graycoprops
    matrices = glcm_matrices(image, params)
    values = [graycoprops(matrices, prop) for prop in GLCM_PROPERTIES[:-1]] + [glcm_entropy(matrices)]
    return np.stack(values).ravel()


# --- local patterns ---------------------------------------------------------------------------

def normalise(image):
    """Grey levels scaled to mean 128, standard deviation 20 (a flat image becomes 128 everywhere)."""
    image = image.astype(np.float64)
    std = image.std()
    centred = image - image.mean()
    return NORMALISED_MEAN + (centred * (NORMALISED_STD / std) if std > 0 else centred)


def adjacent_mean(image, window, include_neighbour):
    """Mean of the ``window`` x ``window`` square around every pixel (without the pixel itself
    unless ``include_neighbour``), for the pixels whose square lies inside: shape shrinks by
    window - 1."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"adjacent-evaluation window must be an odd size >= 1, not {window}")
    half = window // 2
    inner = (slice(half, image.shape[0] - half), slice(half, image.shape[1] - half))
    if window == 1:
        return image[inner]
    sums = ndimage.uniform_filter(image, window, mode="nearest")[inner] * window ** 2
    if include_neighbour:
        return sums / window ** 2
    return (sums - image[inner]) / (window ** 2 - 1)


def neighbour_offsets(points, radius):
    """(drow, dcol) of the P circular neighbours, exact integers where the circle meets pixels."""
    angles = 2 * np.pi * np.arange(points) / points
    offsets = np.stack([-radius * np.sin(angles), radius * np.cos(angles)], axis=1)
    return np.round(offsets, 9)


def circular_samples(values, points, radius):
    """Bilinearly sampled neighbours of every centre at least ``radius`` pixels from the border:
    float32, shape (P, H - 2r, W - 2r), r = ceil(radius). Interpolates along rows, then columns."""
    r = math.ceil(radius)
    height, width = values.shape[0] - 2 * r, values.shape[1] - 2 * r
    samples = np.empty((points, height, width), np.float32)
    for p, (dy, dx) in enumerate(neighbour_offsets(points, radius)):
        y0, x0 = math.floor(dy), math.floor(dx)
        fy, fx = np.float32(dy - y0), np.float32(dx - x0)
        rows = values[r + y0:r + y0 + height]
        if fy > 0:
            rows = rows + fy * (values[r + y0 + 1:r + y0 + 1 + height] - rows)
        left = rows[:, r + x0:r + x0 + width]
        if fx > 0:
            np.subtract(rows[:, r + x0 + 1:r + x0 + 1 + width], left, out=samples[p])
            samples[p] *= fx
            samples[p] += left
        else:
            samples[p] = left
    return samples


def riu2(bits):
    """Rotation-invariant uniform code of circular bit strings along axis 0: the number of 1s when
    there are at most 2 transitions 0/1 around the circle, else P + 1."""
    points = bits.shape[0]
    transitions = (bits[1:] != bits[:-1]).sum(axis=0, dtype=np.uint8) + (bits[0] != bits[-1])
    return np.where(transitions <= 2, bits.sum(axis=0, dtype=np.uint8), np.uint8(points + 1)).astype(np.intp)


def normalised_histogram(codes, bins):
    counts = np.bincount(codes.ravel(), minlength=bins).astype(np.float64)
    return counts / counts.sum()


def scales_of(image, params):
    """Yield (P, the adjacent-evaluation neighbours a_p, shape (P, h, w); the centres g_c, shape
    (h, w)) of the normalised ``image`` at each scale of ``params``."""
    half = params.window // 2
    evaluated = adjacent_mean(image, params.window, params.include_neighbour).astype(np.float32)
    for points, radius in params.scales:
        r = math.ceil(radius) + half
        centres = image[r:image.shape[0] - r, r:image.shape[1] - r].astype(np.float32)
        yield points, circular_samples(evaluated, points, radius), centres


def aeclbp(image, params=AeclbpParams()):
    image = normalise(image)
    image_mean = image.mean()
    histograms = []
    for points, differences, centres in scales_of(image, params):
        differences -= centres
        sign = riu2(differences >= -TIE)
        magnitudes = np.abs(differences, out=differences)
        magnitude = riu2(magnitudes >= magnitudes.mean(dtype=np.float64) - TIE)
        centre = centres >= image_mean - TIE
        codes = (sign * (points + 2) + magnitude) * 2 + centre
        histograms.append(normalised_histogram(codes, (points + 2) ** 2 * 2))
    return np.concatenate(histograms)


def spread(values):
    """Population standard deviation along axis 0, in one pass over the squares."""
    mean = values.mean(axis=0)
    squares = np.einsum("i...,i...->...", values, values) / values.shape[0]
    return np.sqrt(np.maximum(squares - mean * mean, 0))


def aeltp(image, params=AeltpParams()):
    histograms = []
    for points, differences, centres in scales_of(normalise(image), params):
        differences -= centres
        threshold = params.k * spread(differences) + TIE  # the spread of a_p = that of a_p - g_c
        histograms.append(normalised_histogram(riu2(differences > threshold), points + 2))
        histograms.append(normalised_histogram(riu2(differences < -threshold), points + 2))
    return np.concatenate(histograms)

