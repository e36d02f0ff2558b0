"""Uncertainty of an accuracy and the paired comparison of two classifiers on the same images.

- Wilson score interval (Wilson 1927; method 3 of Newcombe 1998), without continuity correction.
- Exact two-sided McNemar test: under H0 the b + c discordant images split Binomial(b + c, 1/2);
  p = min(1, 2 P[X <= min(b, c)]), computed in exact integer arithmetic.
"""
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal


def wilson_interval(successes, n, z=Z95):
    """(low, high) of the Wilson score interval for ``successes`` out of ``n`` trials."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    # At p = 0 or 1 the bound equals 0 or 1 exactly; computed it can land a rounding error beyond.
    low = 0.0 if successes == 0 else (centre - half) / denominator
    high = 1.0 if successes == n else (centre + half) / denominator
    return low, high


def mcnemar_exact_p(b, c):
    """Exact two-sided McNemar p-value for ``b`` and ``c`` discordant pairs."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got {b} and {c}")
    n = b + c
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2 ** n)))


@dataclass(frozen=True)
class McNemar:
    b: int      # images the first classifier gets right and the second wrong
    c: int      # images the first gets wrong and the second right
    p: float

    @property
    def n_discordant(self):
        return self.b + self.c


def mcnemar(correct_first, correct_second):
    """McNemar's test of two classifiers' per-image correctness on the same images (same order)."""
    first, second = np.asarray(correct_first, bool), np.asarray(correct_second, bool)
    if first.shape != second.shape:
        raise ValueError(f"the classifiers were scored on {first.size} and {second.size} images")
    b, c = int(np.sum(first & ~second)), int(np.sum(~first & second))
    return McNemar(b, c, mcnemar_exact_p(b, c))
