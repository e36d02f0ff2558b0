#!/usr/bin/env python3
"""Figures of the evaluation: confusion-matrix heat maps and a Fig.-5-like grid of examples.

    tools/make_figures.py --profile paper [--results results/paper] [--lmdb-dir datasets/work/lmdb]
                          [--examples-model SDC-SN-ELF-MRF] [--per-class 4]

Writes to <results>/figures/:
  confusion_<model>.png   one heat map per test subset and the pooled enhanced set (counts written in
                          the cells, colour = fraction of the true class); '/' in a model name becomes '_'
  examples_<model>.png    per class, test images the model gets right and wrong across the seven subsets
                          (title: subset, true -> predicted, probability); read from the test LMDBs
"""
import argparse
import csv
from pathlib import Path

import lmdb
import numpy as np

from sdc import atomic, degrade, evaluation, lmdb_io, neu, tables
from sdc.errors import UserError, run_main

CLASSES = [c.prefix for c in neu.CLASSES]
PANELS = degrade.TEST_SUBSETS + (evaluation.POOLED,)


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(figure, dest, dpi=120):
    with atomic.atomic_path(dest) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(figure)


def file_stem(name):
    return name.replace("/", "_")


def confusion_figure(found, dest):
    plt = pyplot()
    subsets = [s for s in PANELS if s in found.accuracy]
    figure, axes = plt.subplots(2, 4, figsize=(16, 8.4))
    for ax in axes.flat[len(subsets):]:
        ax.axis("off")
    for ax, subset in zip(axes.flat, subsets):
        matrix = np.array(found.confusion(subset))
        fraction = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if fraction[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(CLASSES)), CLASSES)
        ax.set_yticks(range(len(CLASSES)), CLASSES)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        entry = found.accuracy[subset]
        ax.set_title(f"{tables.COLUMN_TITLES[subset]}: {100 * entry['accuracy']:.1f}% of {entry['total']}",
                     fontsize=10)
    figure.suptitle(f"Confusion matrices of {tables.row_label(found.name)}")
    save(figure, dest)


def choose_examples(found, per_class, rng):
    """{label: [(subset, key, label, pred, prob)]}: up to per_class wrong ones, filled with right ones."""
    chosen = {}
    for label in range(len(CLASSES)):
        wrong, right = [], []
        for subset in degrade.TEST_SUBSETS:
            path = found.folder / evaluation.predictions_file(subset)
            if not path.is_file():
                continue
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    if int(row["label"]) == label:
                        item = (subset, row["key"], label, int(row["pred"]), float(row["prob_pred"]))
                        (right if item[3] == label else wrong).append(item)
        picks = [wrong[i] for i in sorted(rng.permutation(len(wrong))[:per_class])]
        picks += [right[i] for i in sorted(rng.permutation(len(right))[:2 * per_class - len(picks)])]
        chosen[label] = picks
    return chosen


def read_image(lmdb_dir, subset, key):
    path = Path(lmdb_dir) / lmdb_io.test_name(subset)
    if not (path / "data.mdb").is_file():
        raise UserError(f"no LMDB at {path}: the example grid reads the images from the test LMDBs (--lmdb-dir)")
    env = lmdb.open(str(path), readonly=True, lock=False, subdir=True)
    try:
        with env.begin() as txn:
            value = txn.get(key.encode())
    finally:
        env.close()
    if value is None:
        raise UserError(f"{path} has no record {key}: the LMDB changed since the evaluation; run it again")
    return lmdb_io.decode(value)[0][0]


def examples_figure(found, lmdb_dir, per_class, dest, seed=0):
    plt = pyplot()
    chosen = choose_examples(found, per_class, np.random.default_rng(seed))
    columns = 2 * per_class
    figure, axes = plt.subplots(len(CLASSES), columns, figsize=(1.9 * columns, 2.1 * len(CLASSES)))
    for label, items in chosen.items():
        for column in range(columns):
            ax = axes[label, column]
            ax.axis("off")
            if column >= len(items):
                continue
            subset, key, true, pred, prob = items[column]
            ax.imshow(read_image(lmdb_dir, subset, key), cmap="gray", vmin=0, vmax=255)
            ok = pred == true
            ax.set_title(f"{subset}\n{CLASSES[true]} → {CLASSES[pred]} ({prob:.2f})", fontsize=7,
                         color="black" if ok else "red")
    figure.suptitle(f"{tables.row_label(found.name)}: per class, wrong answers (red) first, then right ones",
                    fontsize=10)
    save(figure, dest, dpi=80)  # photographs: keep the committed PNG small


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="paper", help="default: %(default)s")
    parser.add_argument("--results", type=Path, help="results folder (default: results/<profile>)")
    parser.add_argument("--lmdb-dir", type=Path, default=neu.LMDB_DIR, help="default: %(default)s")
    parser.add_argument("--examples-model", default="SDC-SN-ELF-MRF",
                        help="model of the example grid (default: %(default)s; skipped when not evaluated)")
    parser.add_argument("--per-class", type=int, default=4, help="wrong examples per class (default: %(default)s)")
    args = parser.parse_args()
    results = args.results or neu.REPO / "results" / args.profile
    evaluations = tables.load_evaluations(results / "eval")
    if not evaluations:
        raise UserError(f"no evaluations under {results / 'eval'}: run tools/evaluate.py first")
    figures = results / "figures"
    for name, found in sorted(evaluations.items()):
        confusion_figure(found, figures / f"confusion_{file_stem(name)}.png")
    written = len(evaluations)
    if args.examples_model in evaluations:
        examples_figure(evaluations[args.examples_model], args.lmdb_dir, args.per_class,
                        figures / f"examples_{file_stem(args.examples_model)}.png")
        written += 1
    else:
        print(f"no evaluation of {args.examples_model}: example grid skipped")
    print(f"{written} figures in {figures}")
    return 0


if __name__ == "__main__":
    run_main(main)
