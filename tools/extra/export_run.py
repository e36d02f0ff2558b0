#!/usr/bin/env python3
"""Copy what a reader needs of a training run folder into results/, without this machine's paths.

    tools/extra/export_run.py RUN_DIR DEST

Copies learning_curve.csv/.png, provenance.json, solver.prototxt, train_val.prototxt and the train-*.log
files (not the snapshots). In the text files, paths inside the repository become repository-relative,
the run folder itself becomes "<run>", and the home folder "~".
"""
import argparse
import shutil
from pathlib import Path

import _init_paths  # noqa: F401  (tools/ on sys.path)
from sdc import atomic, caffe_log, paths
from sdc.errors import UserError, run_main

TEXT = ("learning_curve.csv", "provenance.json", "solver.prototxt", "train_val.prototxt")


def without_machine_paths(text, run_dir):
    """``text`` with the run folder, the repository and the home folder written independently of this machine."""
    for path, shown in ((run_dir, "<run>"), (paths.REPO, "."), (Path.home(), "~")):
        text = text.replace(f"{path}/", f"{shown}/").replace(str(path), shown)
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    run_dir = args.run_dir.resolve()
    logs = caffe_log.run_logs(run_dir)
    if not logs or not (run_dir / "provenance.json").is_file():
        raise UserError(f"{args.run_dir} has no train-*.log or provenance.json: pass a run folder of tools/train.py")
    args.dest.mkdir(parents=True, exist_ok=True)
    for path in [run_dir / name for name in TEXT if (run_dir / name).is_file()] + logs:
        atomic.write_text(args.dest / path.name, without_machine_paths(path.read_text(errors="replace"), run_dir))
    if (run_dir / "learning_curve.png").is_file():
        shutil.copyfile(run_dir / "learning_curve.png", args.dest / "learning_curve.png")
    print(f"{args.dest}: {len(logs)} log(s), curve, provenance, solver and net of {run_dir.name}")
    return 0


if __name__ == "__main__":
    run_main(main)
