#!/usr/bin/env python3
"""Dead ReLUs and weight movement of trained snapshots: why a training collapsed to one class.

    tools/extra/relu_census.py --deploy prototxt/SDC-SN-ELF-MRF_deploy.prototxt --start START.caffemodel \
                         --model NAME=SNAPSHOT.caffemodel [--model ...] [--lmdb datasets/work/lmdb/test_original_lmdb]
                         [--images 60] --out results/solver_study/relu_census.csv

For each model: the fraction of each ReLU layer's outputs that are 0 over the first --images test images,
the channels that are 0 on all of them (dead), and each layer's weight norm and its move from --start,
||w - w_start|| / ||w_start||. Writes one CSV (a row per model and layer) and prints a summary.
"""
import argparse
import csv
import io
from pathlib import Path

import _init_paths  # noqa: F401  (tools/ on sys.path)
from sdc import activity, atomic, cli, inference, lmdb_io, paths
from sdc.errors import UserError, run_main

FIELDS = ("model", "layer", "kind", "zero_fraction", "dead_channels", "channels", "weight_norm", "weight_change")


def rows_of(name, relus, changes):
    for r in relus:
        yield {"model": name, "layer": r.layer, "kind": "relu", "zero_fraction": f"{r.zero_fraction:.4f}",
               "dead_channels": r.dead_channels, "channels": r.channels}
    for c in changes:
        yield {"model": name, "layer": c.layer, "kind": "weights", "weight_norm": f"{c.norm:.5g}",
               "weight_change": "" if c.change is None else f"{c.change:.5g}"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--deploy", type=Path, required=True)
    parser.add_argument("--start", type=Path, required=True, help="the start weights the changes are measured from")
    parser.add_argument("--model", type=cli.labelled_path("NAME=FILE.caffemodel"), action="append", required=True,
                        metavar="NAME=FILE")
    parser.add_argument("--lmdb", type=Path, default=paths.LMDB_DIR / "test_original_lmdb")
    parser.add_argument("--images", type=int, default=60, help="how many test images (default 60)")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    args = parser.parse_args(argv)
    if args.images < 1:
        raise UserError(f"--images must be >= 1, got {args.images}")
    for path in [args.start, *(path for _, path in args.model)]:
        if not path.is_file():
            raise UserError(f"caffemodel {path} not found: pass an existing snapshot")
    rows = []
    for name, path in args.model:
        net = inference.open_net(args.deploy, path, batch=10)
        relus = activity.relu_activity(net, lmdb_io.LmdbSource(args.lmdb).read(0, args.images))
        changes = activity.weight_change(path, args.start)
        rows.extend(rows_of(name, relus, changes))
        dead = ", ".join(f"{r.layer} {r.dead_channels}/{r.channels}" for r in relus if r.dead_channels)
        print(f"{name}: zero ReLU outputs {min(r.zero_fraction for r in relus):.0%}.."
              f"{max(r.zero_fraction for r in relus):.0%} per layer; dead channels: {dead or 'none'}")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(args.out, out.getvalue())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    run_main(main)
