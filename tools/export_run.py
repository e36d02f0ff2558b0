#!/usr/bin/env python3
"""Copy what a reader needs of a training run folder (or one log file) into results/, without this
machine's paths.

    tools/export_run.py RUN_DIR DEST     # a run folder of tools/train.py
    tools/export_run.py LOG_FILE DEST    # one log, e.g. tools/run_all.sh's

Of a run folder: learning_curve.csv/.png, provenance.json, solver.prototxt, train_val.prototxt and the
train-*.log files (not the snapshots). In the text files, paths inside the repository become
repository-relative, the run folder itself becomes "<run>", the folders $NEU_DIR and $SDC_PRETRAINED_DIR
name their variables, and the home folder becomes "~".
"""
import argparse
import os
import shutil
from pathlib import Path

from sdc import atomic, caffe_log, neu, paths, weights
from sdc.errors import UserError, run_main

TEXT = ("learning_curve.csv", "provenance.json", "solver.prototxt", "train_val.prototxt")


def without_machine_paths(text, run_dir=None):
    """``text`` with the run folder, the repository, the data folders named by the environment and the home
    folder written independently of this machine."""
    data_dirs = [(os.environ.get(var), f"${var}") for var in (neu.ENV_VAR, weights.ENV_DIR)]
    for path, shown in [(run_dir, "<run>"), (paths.REPO, "."), *data_dirs, (Path.home(), "~")]:
        if path:
            text = text.replace(f"{path}/", f"{shown}/").replace(str(path), shown)
    return text


def export_text(path, dest, run_dir=None):
    atomic.write_text(dest / path.name, without_machine_paths(path.read_text(errors="replace"), run_dir))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("source", type=Path, help="a run folder of tools/train.py, or one log file")
    parser.add_argument("dest", type=Path, help="the folder to copy into")
    args = parser.parse_args(argv)
    if args.source.is_file():
        args.dest.mkdir(parents=True, exist_ok=True)
        export_text(args.source, args.dest)
        print(f"{args.dest / args.source.name}: {args.source.name}")
        return 0
    run_dir = args.source.resolve()
    logs = caffe_log.run_logs(run_dir)
    if not logs or not (run_dir / "provenance.json").is_file():
        raise UserError(f"{args.source} has no train-*.log or provenance.json: pass a run folder of tools/train.py")
    args.dest.mkdir(parents=True, exist_ok=True)
    for path in [run_dir / name for name in TEXT if (run_dir / name).is_file()] + logs:
        export_text(path, args.dest, run_dir)
    if (run_dir / "learning_curve.png").is_file():
        shutil.copyfile(run_dir / "learning_curve.png", args.dest / "learning_curve.png")
    print(f"{args.dest}: {len(logs)} log(s), curve, provenance, solver and net of {run_dir.name}")
    return 0


if __name__ == "__main__":
    run_main(main)
