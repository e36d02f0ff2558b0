#!/usr/bin/env python3
"""The classical Table 3 rows of every protocol beside the paper's: ours - paper in each of the 63
cells (9 rows x 7 columns), per protocol the mean absolute difference over its cells and the mean
signed difference of each column.

    tools/extra/compare_protocols.py --eval results/paper/eval [--paper-values docs/paper_values.csv]
        [--protocols network-input ...] [--out comparison.md]

Reads the evaluation folders tools/classical_baselines.py wrote under --eval (rows named by
sdc.protocols.row_name) and the paper's Table 3 values; a protocol whose rows are missing is left
out, a missing cell is not counted. Prints Markdown (and writes it to --out with a JSON beside it).
"""
import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import _init_paths  # noqa: F401  (tools/ on sys.path)
from sdc import atomic, classical, paths, protocols, tables, texture
from sdc.errors import UserError, run_main

COLUMNS = tables.TABLE2_COLUMNS  # the paper's column order of Tables 2 and 3
PAPER_TABLE = "3"


@dataclass
class Comparison:
    protocol: protocols.Protocol
    ours: dict          # {(paper row, column): our accuracy in %}
    paper: dict         # {(paper row, column): the paper's value}

    def difference(self, cell):
        return self.ours[cell] - self.paper[cell]

    @property
    def cells(self):
        return [cell for cell in self.ours if cell in self.paper]

    def mean_absolute(self):
        return float(np.mean([abs(self.difference(c)) for c in self.cells]))

    def mean_signed(self, column):
        values = [self.difference(c) for c in self.cells if c[1] == column]
        return float(np.mean(values)) if values else None


def compare(evaluations, paper, protocol):
    """Comparison of ``protocol``'s rows among ``evaluations`` (tables.load_evaluations), or None."""
    ours, values = {}, {}
    for feature in protocol.features:
        for classifier in classical.CLASSIFIERS:
            found = evaluations.get(protocols.row_name(feature, classifier, protocol))
            for column in COLUMNS:
                cell = (f"{feature}+{classifier}", column)
                entry = found and found.accuracy.get(column)
                if entry:
                    ours[cell] = 100 * entry["accuracy"]
                value = paper.get((PAPER_TABLE, *cell))
                if value is not None:
                    values[cell] = value.value
    return Comparison(protocol, ours, values) if ours else None


def signed(value):
    return "–" if value is None else f"{value:+.1f}"


def markdown(comparisons):
    titles = [tables.COLUMN_TITLES[c] for c in COLUMNS]
    lines = ["| protocol | cells | mean abs. diff. | " + " | ".join(f"mean Δ {t}" for t in titles) + " |",
             "|---" * (3 + len(COLUMNS)) + "|"]
    for c in sorted(comparisons, key=Comparison.mean_absolute):
        lines.append(f"| {c.protocol.name} | {len(c.cells)} | {c.mean_absolute():.1f} | "
                     + " | ".join(signed(c.mean_signed(column)) for column in COLUMNS) + " |")
    for c in comparisons:
        lines += ["", f"**{c.protocol.name}**: ours (ours - paper), %", "",
                  "| row | " + " | ".join(titles) + " |", "|---" * (1 + len(COLUMNS)) + "|"]
        for row in dict.fromkeys(cell[0] for cell in c.ours):
            texts = []
            for column in COLUMNS:
                cell = (row, column)
                ours = f"{c.ours[cell]:.1f}" if cell in c.ours else "not run"
                texts.append(f"{ours} ({signed(c.difference(cell))})" if cell in c.cells else ours)
            lines.append(f"| {row} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"


def summary_record(comparisons):
    return {c.protocol.name: {"cells": len(c.cells), "mean_absolute_difference": c.mean_absolute(),
                              "mean_signed_difference": {col: c.mean_signed(col) for col in COLUMNS},
                              "differences": {f"{row} / {col}": c.difference((row, col)) for row, col in c.cells}}
            for c in comparisons}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, required=True, help="folder of the evaluation folders")
    parser.add_argument("--paper-values", type=Path, default=paths.PAPER_VALUES,
                        help="default: %(default)s")
    parser.add_argument("--protocols", nargs="+", choices=tuple(protocols.PROTOCOLS), default=list(protocols.PROTOCOLS))
    parser.add_argument("--out", type=Path, help="also write the Markdown here, and <out>.json")
    args = parser.parse_args()
    paper = tables.load_paper_values(args.paper_values)
    if not any(key[0] == PAPER_TABLE and key[1].split("+")[0] in texture.FEATURES for key in paper.values):
        raise UserError(f"{args.paper_values} holds no classical Table 3 value: pass the file with them")
    evaluations = tables.load_evaluations(args.eval)
    comparisons = [c for c in (compare(evaluations, paper, protocols.PROTOCOLS[n]) for n in args.protocols) if c]
    if not comparisons:
        raise UserError(f"{args.eval} holds no classical row of the protocols {', '.join(args.protocols)}: "
                        "run tools/classical_baselines.py --out with it first")
    text = markdown(comparisons)
    print(text, end="")
    if args.out:
        atomic.write_text(args.out, text)
        atomic.write_text(args.out.with_suffix(".json"), json.dumps(summary_record(comparisons), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
