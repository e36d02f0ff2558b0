#!/usr/bin/env python3
"""Figures of the evaluation, each as PNG and PDF drawn at print size (7 in wide, no text under 8 pt).

    tools/make_figures.py --profile paper [--results results/paper] [--lmdb-dir datasets/work/lmdb]
                          [--paper-values docs/paper_values.csv] [--examples-model SDC-SN-ELF-MRF]
                          [--per-class 4]

Writes to <results>/figures/ (columns always in the paper's order: Original, Lum ±0.4, Lum ±1,
Noise 20 dB, Noise 35 dB, Blur 2, Blur 5):
  table2_ours_vs_paper   one panel per model of Table 2 (the three variants, then the released models
                         that were evaluated):
                         our accuracy on each subset with its 95 % interval beside the paper's value,
                         and our labelled rows "<paper row> (<label>)" in their paper row's panel
  table3_ours_vs_paper   the same for the paper's twelve Table 3 rows
  table5_<model>         Table 5: our confusion matrix beside the paper's on each degraded subset
                         (the models of the tables' Table 5 that were evaluated)
  confusion_<model>      one heat map per test subset and the pooled enhanced set, for every model
  examples_<model>       per class, test images the model gets wrong and right across the seven subsets
                         (title: subset, true -> predicted, probability); read from the test LMDBs
Heat maps: the count in each cell, the colour its share of the true class. '/' in a model name becomes '_'.
The evaluations are those tools/make_tables.py would tabulate: folders on other test images than most
(left-overs of an earlier run) are ignored with a warning.
"""
import argparse
import csv
import math
import sys
import textwrap
from pathlib import Path

import numpy as np

from sdc import cli, eval_folder, lmdb_io, paths, plotting, tables
from sdc.errors import UserError, run_main

CLASSES = tables.CLASS_NAMES
PANELS = tables.TABLE2_COLUMNS + (tables.POOLED,)
OURS_COLOUR, PAPER_COLOUR = "tab:blue", "tab:red"
OURS_LABEL, PAPER_LABEL = "ours, with its 95 % interval", "the paper's value"
LABELLED_COLOURS = ("tab:orange", "tab:green", "tab:purple")  # a paper row's labelled variants, in table order
EXAMPLES_DPI = 110  # photographs: keeps the committed PNG small
SHORT_TITLES = {"original": "Original", "lum_0.4": "Lum ±0.4", "lum_1": "Lum ±1", "noise_20": "Noise 20",
                "noise_35": "Noise 35", "blur_2": "Blur 2", "blur_5": "Blur 5", "enhanced": "Enhanced"}


def file_stem(name):
    return name.replace("/", "_")


def profile_line(profile):
    if profile == "paper":
        return "profile paper"
    return f"profile {profile}: a quick run of the pipeline, not the paper's setting"


# ---- ours vs the paper (Tables 2 and 3) -----------------------------------------------------------------

def y_floor(rows):
    """The lowest accuracy any panel shows (ours, our interval, the paper's), rounded down to 10 %."""
    values = [100.0]
    for row in rows:
        for c in row.cells:
            if c.ours is not None:
                values += [c.ours, 100 * c.interval.low if c.interval else c.ours]
            if c.paper is not None:
                values.append(c.paper.value)
    return max(0.0, 10 * math.floor((min(values) - 2) / 10))


def error_bars(ax, row, offset, **style):
    """Our accuracies of ``row`` with their 95 % intervals, at x = column index + ``offset``; False if none."""
    ours = [(i, c) for i, c in enumerate(row.cells) if c.ours is not None]
    if not ours:
        return False
    values = np.array([c.ours for _, c in ours])
    lows = np.array([100 * c.interval.low if c.interval else c.ours for _, c in ours])
    highs = np.array([100 * c.interval.high if c.interval else c.ours for _, c in ours])
    ax.errorbar([i + offset for i, _ in ours], values, yerr=[np.maximum(values - lows, 0), np.maximum(highs - values, 0)],
                markersize=3.5, elinewidth=1, capsize=2, linestyle="none", **style)
    return True


def comparison_figure(table, rows, title, labelled=None):
    """One panel per row: x = the table's columns, our accuracy (dot, 95 % interval) and the paper's (diamond);
    ``labelled``: {row name: its labelled rows} drawn in the same panel (squares), e.g. another protocol."""
    labelled = labelled or {}
    plt = plotting.pyplot()
    ncols = min(3, len(rows))
    nrows = math.ceil(len(rows) / ncols)
    figure, axes = plt.subplots(nrows, ncols, figsize=(plotting.PAGE_WIDTH_IN, 1.75 * nrows + 1.2),
                                sharex=True, sharey=True, squeeze=False, layout="constrained")
    x = np.arange(len(table.columns))
    bottom = y_floor(rows)
    for index, (ax, row) in enumerate(zip(axes.flat, rows)):
        if not error_bars(ax, row, -0.15, marker="o", color=OURS_COLOUR, label=OURS_LABEL):
            why = next((c.missing for c in row.cells if c.missing), "not run").split(" (")[0]  # details: tables.md
            ax.text(0.5, 0.5, textwrap.fill(f"ours: {why}", 34, break_long_words=False), transform=ax.transAxes, ha="center", va="center",
                    fontsize=8)
        paper = [(i, c.paper.value) for i, c in enumerate(row.cells) if c.paper is not None]
        if paper:
            ax.plot([i + 0.15 for i, _ in paper], [v for _, v in paper], linestyle="none", marker="D",
                    markersize=3.5, markerfacecolor="none", color=PAPER_COLOUR, label=PAPER_LABEL)
        for variant, colour in zip(labelled.get(row.name, ()), LABELLED_COLOURS):
            error_bars(ax, variant, 0.0, marker="s", color=colour,
                       label=f"ours, {tables.LABELLED_ROW.match(variant.name)['label']}")
        ax.set_title(tables.row_label(row.name))
        ax.set_ylim(bottom, 101)
        ax.grid(axis="y", alpha=0.3)
        if index % ncols == 0:
            ax.set_ylabel("accuracy (%)")
        if index + ncols >= len(rows):  # no panel below: this one carries the column names
            ax.tick_params(labelbottom=True)
            ax.set_xticks(x, [SHORT_TITLES[c] for c in table.columns], rotation=90)
    for ax in axes.flat[len(rows):]:
        ax.axis("off")
    handles = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    labels = [OURS_LABEL, *sorted(set(handles) - {OURS_LABEL, PAPER_LABEL}), PAPER_LABEL]
    labels = [label for label in labels if label in handles]
    figure.legend([handles[label] for label in labels], labels, loc="outside lower center", ncol=2, frameon=False)
    figure.suptitle(title)
    return figure


def evaluated(row):
    return any(c.ours is not None for c in row.cells)


def labelled_variants(table):
    """{paper row: its evaluated labelled rows "<paper row> (<label>)"} of ``table``."""
    found = {}
    for row in table.rows:
        if tables.LABELLED_ROW.match(row.name) and evaluated(row):
            found.setdefault(tables.paper_row(row.name), []).append(row)
    return found


def table_figures(builder, profile):
    """{file stem: figure} of Tables 2 and 3."""
    table2, table3 = builder.table2(), builder.table3()
    return {
        "table2_ours_vs_paper": comparison_figure(
            table2, [r for r in table2.rows if r.kind == "paper" or (r.kind == "released" and evaluated(r))],
            f"Table 2, ours beside the paper's ({profile_line(profile)}; † released models)", labelled_variants(table2)),
        "table3_ours_vs_paper": comparison_figure(
            table3, [r for r in table3.rows if r.kind == "paper"],
            f"Table 3, ours beside the paper's ({profile_line(profile)})", labelled_variants(table3)),
    }


# ---- confusion matrices -------------------------------------------------------------------------------

def draw_matrix(ax, matrix, title, class_labels=True):
    matrix = np.asarray(matrix)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(CLASSES)), CLASSES)
    ax.set_yticks(range(len(CLASSES)), CLASSES if class_labels else [])
    ax.tick_params(length=0)
    ax.set_title(title)


def confusion_of(found, subset):
    _, labels, preds = found.predictions(subset)
    return eval_folder.confusion_matrix(labels, preds)


def confusion_figure(found, profile):
    plt = plotting.pyplot()
    subsets = [s for s in PANELS if s in found.accuracy]
    figure, axes = plt.subplots(2, 4, figsize=(plotting.PAGE_WIDTH_IN, 4.8), layout="constrained")
    for ax in axes.flat[len(subsets):]:
        ax.axis("off")
    for index, (ax, subset) in enumerate(zip(axes.flat, subsets)):
        entry = found.accuracy[subset]
        draw_matrix(ax, confusion_of(found, subset),
                    f"{SHORT_TITLES[subset]}: {100 * entry['accuracy']:.1f} % of {entry['total']}", index % 4 == 0)
    figure.supxlabel("predicted class", fontsize=9)
    figure.supylabel("true class", fontsize=9)
    figure.suptitle(f"Confusion matrices of {tables.row_label(found.name)}\n({profile_line(profile)})")
    return figure


def paper_confusion(paper, subset):
    """The paper's Table 5 matrix of ``subset`` (rows true, columns predicted), None if not all transcribed."""
    values = [[paper.get(("5", f"{subset} {true}", pred)) for pred in CLASSES] for true in CLASSES]
    if any(v is None for row in values for v in row):
        return None
    return np.array([[round(v.value) for v in row] for row in values])


def table5_figure(found, paper, profile):
    """Ours beside the paper's Table 5 matrix on each degraded subset: three rows of two pairs."""
    plt = plotting.pyplot()
    figure, axes = plt.subplots(3, 4, figsize=(plotting.PAGE_WIDTH_IN, 6.6), layout="constrained")
    for index, subset in enumerate(tables.DEGRADED):
        ours_ax, paper_ax = axes.flat[2 * index], axes.flat[2 * index + 1]
        if subset in found.accuracy:
            draw_matrix(ours_ax, confusion_of(found, subset), f"{SHORT_TITLES[subset]}: ours", index % 2 == 0)
        else:
            ours_ax.axis("off")
            ours_ax.text(0.5, 0.5, f"{SHORT_TITLES[subset]}: ours not run", ha="center", fontsize=8)
        matrix = paper_confusion(paper, subset)
        if matrix is not None:
            draw_matrix(paper_ax, matrix, f"{SHORT_TITLES[subset]}: paper", False)
        else:
            paper_ax.axis("off")
            paper_ax.text(0.5, 0.5, f"{SHORT_TITLES[subset]}:\nnot in the paper values", ha="center", fontsize=8)
    figure.supxlabel("predicted class", fontsize=9)
    figure.supylabel("true class", fontsize=9)
    figure.suptitle(f"Table 5, {tables.row_label(found.name)}: our confusion matrices beside the paper's\n"
                    f"({profile_line(profile)}; colour = share of the true class)")
    return figure


# ---- examples -----------------------------------------------------------------------------------------

def choose_examples(found, per_class, rng):
    """{label: [(subset, key, label, pred, prob)]}: up to per_class wrong ones, filled with right ones."""
    chosen = {}
    for label in range(len(CLASSES)):
        wrong, right = [], []
        for subset in tables.TABLE2_COLUMNS:
            path = found.folder / eval_folder.predictions_file(subset)
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
    source = lmdb_io.LmdbSource(Path(lmdb_dir) / lmdb_io.test_name(subset),
                                fix="the example grid reads the images from the test LMDBs (--lmdb-dir)")
    record = source.get(key)
    if record is None:
        raise UserError(f"{source} has no record {key}: the LMDB changed since the evaluation; run it again")
    return record[0][0]


def examples_figure(found, lmdb_dir, per_class, seed=0):
    plt = plotting.pyplot()
    chosen = choose_examples(found, per_class, np.random.default_rng(seed))
    columns = 2 * per_class
    side = plotting.PAGE_WIDTH_IN / columns
    figure, axes = plt.subplots(len(CLASSES), columns, figsize=(plotting.PAGE_WIDTH_IN, 1.25 * side * len(CLASSES)),
                                squeeze=False, layout="constrained")
    for label, items in chosen.items():
        for column in range(columns):
            ax = axes[label, column]
            ax.axis("off")
            if column >= len(items):
                continue
            subset, key, true, pred, prob = items[column]
            ax.imshow(read_image(lmdb_dir, subset, key), cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{SHORT_TITLES[subset]}\n{CLASSES[true]} → {CLASSES[pred]} ({prob:.2f})", fontsize=8,
                         color="black" if pred == true else "red")
    figure.suptitle(f"{tables.row_label(found.name)}: per class, wrong answers (red) first, then right ones")
    return figure


# ---- main ---------------------------------------------------------------------------------------------

def figures_of(args, paper, evaluations, not_run):
    """(file stem, figure) of every figure, one at a time (each is saved and closed before the next)."""
    yield from table_figures(tables.Builder(evaluations, paper, not_run=not_run), args.profile).items()
    for name in tables.TABLE5_MODELS:
        if name in evaluations:
            yield f"table5_{file_stem(name)}", table5_figure(evaluations[name], paper, args.profile)
    for name, found in sorted(evaluations.items()):
        yield f"confusion_{file_stem(name)}", confusion_figure(found, args.profile)
    if args.examples_model in evaluations:
        yield f"examples_{file_stem(args.examples_model)}", examples_figure(
            evaluations[args.examples_model], args.lmdb_dir, args.per_class)
    else:
        print(f"no evaluation of {args.examples_model}: example grid skipped")


def run_evaluations(results):
    """The evaluations make_tables.py tabulates, and the reasons of the models a tool could not run."""
    eval_dir = results / "eval"
    found = tables.load_evaluations(eval_dir)
    if not found:
        raise UserError(f"no evaluations under {eval_dir}: run tools/evaluate.py first")
    evaluations, stale = tables.split_stale(found, tables.shared_test_set(found))
    for name, why in stale.items():
        print(f"warning: no figures of {found[name].folder}: {why}", file=sys.stderr)
    return evaluations, tables.load_not_run(eval_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="paper", help="default: %(default)s")
    parser.add_argument("--results", type=Path, help="results folder (default: results/<profile>)")
    cli.add_lmdb_dir(parser, "the test LMDBs the evaluations read, for the example grid")
    parser.add_argument("--paper-values", type=Path, default=paths.PAPER_VALUES,
                        help="default: %(default)s")
    parser.add_argument("--examples-model", default="SDC-SN-ELF-MRF",
                        help="model of the example grid (default: %(default)s; skipped when not evaluated)")
    parser.add_argument("--per-class", type=int, default=4, help="wrong examples per class (default: %(default)s)")
    args = parser.parse_args()
    if args.per_class < 1:
        raise UserError("--per-class must be positive")
    results = args.results or paths.RESULTS_DIR / args.profile
    paper = tables.load_paper_values(args.paper_values)
    evaluations, not_run = run_evaluations(results)
    out = results / "figures"
    written = 0
    for stem, figure in figures_of(args, paper, evaluations, not_run):
        plotting.save(figure, out / stem, dpi=EXAMPLES_DPI if stem.startswith("examples_") else plotting.PNG_DPI)
        written += 1
    print(f"{written} figures (PNG and PDF) in {out}")
    return 0


if __name__ == "__main__":
    run_main(main)
