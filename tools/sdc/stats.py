"""Uncertainty of an accuracy and the paired comparison of two classifiers on the same images,
for independent images and for images that come in clusters (the random draws of one base image).

Independent images (the original test set):
- Wilson score interval (Wilson 1927; method 3 of Newcombe 1998), without continuity correction.
- Exact two-sided McNemar test: under H0 the b + c discordant images split Binomial(b + c, 1/2);
  p = min(1, 2 P[X <= min(b, c)]), computed in exact integer arithmetic.

Clustered images (each degraded subset holds several draws of every base image, so the draws of one
base image are not independent; the base image is the unit of sampling):
- Interval: Wilson's score interval at the effective sample size n / deff (Kish's design effect
  deff = the variance of the accuracy over clusters / the binomial variance p(1 - p) / n; Korn and
  Graubard 1998 for proportions from clustered data, Dean and Pagano 2015 for Wilson's interval).
  The variance over clusters is that of the ratio estimator, sum_i (c_i - p n_i)^2 / n^2 (c_i right
  of n_i records in cluster i): the variance a cluster bootstrap converges to, computed in closed
  form instead of resampled. deff is taken >= 1 (the records never count for more than independent
  ones), and when every record is right (or every one wrong) the clusters give no variance to
  measure: the interval is then the Wilson interval of the K clusters as K independent images, the
  widest the clustered interval can be (with equal cluster sizes, n_eff lies between K and n). A
  percentile bootstrap would collapse to a zero-width interval there.
- Paired test: the exact two-sided sign-flip permutation test of the per-cluster differences
  d_i = (right by A) - (right by B) in cluster i (Fisher's randomisation test of paired differences,
  with the cluster as the unit). Under H0 the two classifiers are exchangeable within each base
  image, so every sign pattern of the d_i is equally likely; p = P(|sum_i +-d_i| >= |sum_i d_i|),
  computed exactly over the 2^K patterns by a convolution. With one record per cluster it is the
  exact McNemar test above; unlike Obuchowski's (1998) cluster-adjusted McNemar statistic it needs
  no large-sample chi-square approximation, which matters when few base images are discordant.
"""
import math
import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import degrade

Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal
_RECORD_INDEX = re.compile(r"^\d{8}_")  # an LMDB key's "<8-digit index>_" (convert_imageset's form)
_DRAW = re.compile(r"^(?P<base>.+)_\d+$")


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    method: str     # one line for the note under a table


@dataclass(frozen=True)
class PairedTest:
    p: float
    method: str     # one line for the note under a table
    b: int          # records the first classifier gets right and the second wrong
    c: int          # records the first gets wrong and the second right

    @property
    def n_discordant(self):
        return self.b + self.c


def _wilson(p, n, z):
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    # At p = 0 or 1 the bound equals 0 or 1 exactly; computed it can land a rounding error beyond.
    low = 0.0 if p == 0 else (centre - half) / denominator
    high = 1.0 if p == 1 else (centre + half) / denominator
    return low, high


def wilson_interval(successes, n, z=Z95):
    """(low, high) of the Wilson score interval for ``successes`` out of ``n`` trials."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    return _wilson(successes / n, n, z)


def mcnemar_exact_p(b, c):
    """Exact two-sided McNemar p-value for ``b`` and ``c`` discordant pairs."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got {b} and {c}")
    n = b + c
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2 ** n)))


def cluster_of(key):
    """The base test image of a prediction record, e.g. "crazing/Cr_1" for all of
    "00000000_crazing/Cr_1.bmp" (original), "00000001_noise_20/crazing/Cr_1_1.png" (draw 1 of a
    degraded subset), "noise_20/00000001_noise_20/crazing/Cr_1_1.png" (a record of the pooled subsets,
    prefixed by its subset) and "00000000_crazing/Cr_1.bmp#3" (draw 3 of a robustness sweep)."""
    path = key.partition("#")[0]
    segments = [_RECORD_INDEX.sub("", segment) for segment in path.split("/")]
    degraded = False
    while len(segments) > 1 and segments[0] in degrade.TEST_SUBSETS:
        degraded |= segments.pop(0) in degrade.SUBSETS
    *folders, name = segments
    stem = name.rpartition(".")[0] or name
    if degraded:
        draw = _DRAW.match(stem)
        if not draw:
            raise ValueError(f"{key}: a degraded record's file name should end in _<draw>.<extension>")
        stem = draw["base"]
    return "/".join([*folders, stem])


def _paired(first, second):
    first, second = np.asarray(first, bool), np.asarray(second, bool)
    if first.shape != second.shape:
        raise ValueError(f"the classifiers were scored on {first.size} and {second.size} images")
    return first, second


def _cluster_sums(values, clusters):
    """Per-cluster sums of ``values`` and per-cluster record counts (clusters in sorted order)."""
    values = np.asarray(values)
    if len(clusters) != values.size:
        raise ValueError(f"{values.size} records but {len(clusters)} cluster names")
    _, index = np.unique(np.asarray(clusters, str), return_inverse=True)
    return np.bincount(index, weights=values), np.bincount(index)


def effective_size(right, sizes):
    """n / deff of a clustered accuracy from the clusters' right answers and record counts (see the
    module's docstring)."""
    right, sizes = np.asarray(right, float), np.asarray(sizes, float)
    n = sizes.sum()
    p = right.sum() / n
    if p in (0.0, 1.0):
        return float(sizes.size)
    cluster_variance = np.sum((right - p * sizes) ** 2) / n ** 2
    if cluster_variance == 0:
        return float(n)
    return float(min(n, p * (1 - p) / cluster_variance))


def accuracy_interval(correct, clusters=None):
    """95 % interval of the accuracy of per-record ``correct``: Wilson's when the records are independent
    (``clusters`` None), else Wilson's at the effective sample size of the clusters (one name per record)."""
    correct = np.asarray(correct, bool)
    if correct.size == 0:
        raise ValueError("no records")
    if clusters is None:
        low, high = wilson_interval(int(correct.sum()), correct.size)
        return Interval(low, high, f"95 % Wilson score interval over {correct.size} independent images")
    right, sizes = _cluster_sums(correct, clusters)
    low, high = _wilson(correct.mean(), effective_size(right, sizes), Z95)
    return Interval(low, high, f"95 % Wilson score interval at the effective sample size of {sizes.size} "
                               "base-image clusters (design effect of the draws of each base image)")


def sign_flip_p(differences):
    """Exact two-sided p-value of the sign-flip test: P(|sum_i s_i d_i| >= |sum_i d_i|) over the 2^K
    equally likely sign vectors s, for integer ``differences`` d_i."""
    d = np.abs(np.asarray(differences, np.int64))
    observed = abs(int(np.sum(differences)))
    d = d[d > 0]
    total = int(d.sum())
    # distribution of the sum of the d_i whose sign is +; the signed sum is 2 * that - total
    positive = np.zeros(total + 1)
    positive[0] = 1.0
    for value in d:
        positive[value:] = 0.5 * positive[value:] + 0.5 * positive[:-value]
        positive[:value] *= 0.5
    signed = 2 * np.arange(total + 1) - total
    return float(min(1.0, positive[np.abs(signed) >= observed].sum()))


def paired_test(correct_a, correct_b, clusters=None):
    """Two-sided test that classifiers A and B are equally accurate on the same records (same order):
    exact McNemar when the records are independent (``clusters`` None), else the exact sign-flip test
    of the per-cluster differences (one cluster name per record)."""
    first, second = _paired(correct_a, correct_b)
    b, c = int(np.sum(first & ~second)), int(np.sum(~first & second))
    if clusters is None:
        return PairedTest(mcnemar_exact_p(b, c), f"exact two-sided McNemar test over {first.size} independent "
                                                 "images", b, c)
    differences, _ = _cluster_sums(first.astype(np.int64) - second.astype(np.int64), clusters)
    return PairedTest(sign_flip_p(np.rint(differences).astype(np.int64)),
                      f"exact two-sided sign-flip permutation test of the per-base-image differences "
                      f"({differences.size} base-image clusters)", b, c)
