#!/usr/bin/env python3
"""Data figures: one NEU-CLS sample per class (paper Fig. 3) and the 7 x 6 grid of the
diversity-enhanced test set, original plus six degradations per class (paper Fig. 4).

Samples are the first held-out image of each class; degraded panels are draw 0 with the given
seed, i.e. the same pixels as <subset>/<class>/<image>_0.png of make_enhanced.py.
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import _init_paths  # noqa: F401, E402  (tools/ on sys.path)
from sdc import atomic, cli, degrade, neu, paths, split  # noqa: E402
from sdc.errors import run_main  # noqa: E402

DEFAULT_OUT = paths.RESULTS_DIR / "figures"
ROW_TITLES = {"original": "original", "lum_0.4": "luminance α=0.4", "lum_1": "luminance α=1",
              "noise_35": "noise 35 dB", "noise_20": "noise 20 dB", "blur_2": "blur L=2", "blur_5": "blur L=5"}


def save(fig, dest):
    with atomic.atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def class_samples(files, test_list):
    """{label: file name} of the first test image of each class."""
    samples = {}
    for rel, label in split.read_list(test_list):
        samples.setdefault(label, Path(rel).name)
    return [samples[label] for label in range(len(neu.CLASSES))]


def show(ax, image):
    ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="antialiased")
    ax.set_xticks([])
    ax.set_yticks([])


def figure_classes(files, names, dest):
    fig, axes = plt.subplots(1, len(names), figsize=(1.7 * len(names), 2.0), layout="constrained")
    for ax, name in zip(axes, names):
        show(ax, neu.load(files[name]))
        cls = neu.CLASSES[neu.label_of(name)]
        ax.set_title(f"{cls.prefix}: {cls.folder}\n{name}", fontsize=8)
    save(fig, dest)


def figure_enhanced(files, names, seed, size, dest):
    subsets = degrade.TEST_SUBSETS
    fig, axes = plt.subplots(len(subsets), len(names), figsize=(1.5 * len(names), 1.5 * len(subsets)),
                             layout="constrained")
    for column, name in enumerate(names):
        image = neu.resize_bilinear(neu.load(files[name]), size)
        for row, subset in enumerate(subsets):
            panel = image if subset == "original" else degrade.degrade(
                image, subset, degrade.rng_for(seed, subset, name, 0))
            show(axes[row, column], panel)
            if row == 0:
                axes[row, column].set_title(neu.CLASSES[neu.label_of(name)].folder, fontsize=8)
            if column == 0:
                axes[row, column].set_ylabel(ROW_TITLES[subset], fontsize=8)
    save(fig, dest)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_test_images(parser, size_help="degradation side (default: %(default)s)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    args = parser.parse_args()
    files = neu.verified_files(neu.locate(args.neu_dir))
    names = class_samples(files, args.test_list)
    figure_classes(files, names, args.out_dir / "neu_classes.png")
    figure_enhanced(files, names, args.seed, args.size, args.out_dir / "enhanced_grid.png")
    print(f"wrote {args.out_dir}/neu_classes.png and enhanced_grid.png ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    run_main(main)
