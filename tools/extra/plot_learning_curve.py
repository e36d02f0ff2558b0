#!/usr/bin/env python3
"""Redraw learning_curve.csv and learning_curve.png of a run folder from its Caffe logs.

    tools/extra/plot_learning_curve.py runs/paper/SDC-SN

tools/train.py does this at the end of every session; run this to look at a training in progress
(it only reads the train-*.log files, so it is safe while `caffe train` is writing them).
"""
import argparse
from pathlib import Path

import _init_paths  # noqa: F401  (tools/ on sys.path)
from sdc import caffe_log
from sdc.errors import UserError, run_main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("run_dir", type=Path, help="a run folder written by tools/train.py")
    args = parser.parse_args(argv)
    if not caffe_log.run_logs(args.run_dir):
        raise UserError(f"no train-*.log in {args.run_dir}: pass a run folder of tools/train.py")
    rows = caffe_log.write_learning_curve(args.run_dir, args.run_dir.resolve().name)  # no machine path in a figure
    print(f"{args.run_dir / 'learning_curve.csv'}: {len(rows)} iterations, "
          f"last {rows[-1]['iteration'] if rows else 'none'}; {args.run_dir / 'learning_curve.png'}")
    return 0


if __name__ == "__main__":
    run_main(main)
