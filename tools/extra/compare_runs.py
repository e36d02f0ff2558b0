#!/usr/bin/env python3
"""Several training runs on one figure, and their numbers at chosen updates: training loss and test accuracy.

    tools/extra/compare_runs.py --run "Adam 0.01, 180x1=runs/a" --run "SGD=runs/b" --out results/x/curves.png \
                          [--at 10 50 100 150] [--until UPDATE] [--title TEXT]

Each --run is LABEL=RUN_DIR (a tools/train.py run folder; its curve is rebuilt from its logs). Writes the
figure (PNG and, beside it, PDF) and a CSV of the values at the --at updates (training loss of that update,
the test accuracy of the test pass at that update), and prints that table.
"""
import argparse
import csv
import io
from pathlib import Path

import _init_paths  # noqa: F401  (tools/ on sys.path)
from sdc import atomic, caffe_log, cli
from sdc.errors import UserError, run_main


def value_at(rows, iteration, key):
    row = next((row for row in rows if row["iteration"] == iteration), {})
    return row.get(key)


def table(curves, updates):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", "update", "training_loss", "test_accuracy"])
    for label, rows in curves.items():
        for update in updates:
            loss, accuracy = value_at(rows, update, "loss"), value_at(rows, update, "test_accuracy")
            writer.writerow([label, update, "" if loss is None else f"{loss:.4g}",
                             "" if accuracy is None else f"{accuracy:.4f}"])
    return out.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--run", type=cli.labelled_path("LABEL=RUN_DIR"), action="append", required=True,
                        metavar="LABEL=RUN_DIR")
    parser.add_argument("--out", type=Path, required=True, help="figure (.png); a .pdf and a .csv are written beside")
    parser.add_argument("--at", type=int, nargs="+", default=[], metavar="UPDATE")
    parser.add_argument("--until", type=int, metavar="UPDATE", help="only the updates up to this one")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    curves = {}
    for label, run_dir in args.run:
        logs = caffe_log.run_logs(run_dir)
        if not logs:
            raise UserError(f"no train-*.log in {run_dir}: pass a run folder of tools/train.py")
        curves[label] = [row for row in caffe_log.learning_curve(logs)
                         if args.until is None or row["iteration"] <= args.until]
    for dest in (args.out.with_suffix(".png"), args.out.with_suffix(".pdf")):
        caffe_log.plot_runs(curves, dest, args.title)
    text = table(curves, args.at)
    atomic.write_text(args.out.with_suffix(".csv"), text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    run_main(main)
