#!/usr/bin/env python3
"""How close each noisy test image comes to the paper's SNR (Fu et al. 2019, Eq. 5).

    tools/extra/noise_snr.py [--neu-dir DIR] [--seed 2019] [--size 256] [--per-class N]

Redraws the noise of the enhanced set's noise subsets exactly as tools/make_enhanced.py does (same
seed, same per-image streams) and prints, per subset, the distribution of SNR - target over the draws:
as drawn (Eq. 5 with the Gaussian noise itself) and as stored (Eq. 5 with the uint8 image minus the
original, after clipping to [0, 255] and rounding).
"""
import argparse
from pathlib import Path

import numpy as np

import _init_paths  # noqa: F401  (tools/ on sys.path)
from sdc import cli, degrade, neu, split
from sdc.errors import run_main


def snr_db(signal, noise):
    """Eq. 5: 10 log10(sum g^2 / sum r^2)."""
    return 10 * np.log10(np.sum(np.square(signal, dtype=np.float64)) / np.sum(np.square(noise, dtype=np.float64)))


def describe(deviations):
    d = np.asarray(deviations)
    return (f"mean {d.mean():+.4f} dB, s.d. {d.std():.4f} dB, range {d.min():+.3f} to {d.max():+.3f} dB, "
            f"{np.mean(np.abs(d) <= 0.05):.1%} within 0.05 dB, {np.mean(np.abs(d) < 1e-9):.1%} exact")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_test_images(parser)
    parser.add_argument("--per-class", type=int, help="only the first N test images per class")
    args = parser.parse_args()
    files = neu.verified_files(neu.locate(args.neu_dir))
    entries = split.first_per_class(split.read_list(args.test_list), args.per_class)
    for subset, (kind, target) in degrade.SUBSETS.items():
        if kind != "noise":
            continue
        drawn, stored = [], []
        for rel, _ in entries:
            name = Path(rel).name
            image = neu.load(files[name])
            if args.size != image.shape[0]:
                image = neu.resize_bilinear(image, args.size)
            for draw in range(degrade.DRAWS):
                noise = degrade.awgn_noise(image, degrade.rng_for(args.seed, subset, name, draw), target)
                out = degrade.to_uint8(image + noise)
                drawn.append(snr_db(image, noise) - target)
                stored.append(snr_db(image, out.astype(np.float64) - image) - target)
        print(f"{subset}, {len(drawn)} draws, SNR - {target:g} dB as drawn: {describe(drawn)}")
        print(f"{subset}, {len(stored)} draws, SNR - {target:g} dB as stored: {describe(stored)}")
    return 0


if __name__ == "__main__":
    run_main(main)
