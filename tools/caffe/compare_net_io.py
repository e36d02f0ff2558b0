#!/usr/bin/env python3
"""Compare two folders of arrays written by Caffe's dump_net_io (outputs, input and parameter
gradients of one forward/backward pass), e.g. a GPU run against the CPU build's reference.

    tools/caffe/compare_net_io.py REFERENCE CANDIDATE [--rtol 1e-4] [--metric rel_max|rel_l2] [--json FILE] [--label NAME]

Per array: rel_max = max|c - r| / max|r| and rel_l2 = ||c - r|| / ||r|| (absolute where r is all
zero). The candidate passes when every array of the reference is there, with its shape, and its
--metric (default rel_max) is <= rtol. rel_l2 is the one that tolerates a few elements far off,
e.g. a ReLU input within rounding of 0 that flips sides, which rel_max reports as a large error.
Prints one line (the worst array by the metric); exit status 1 when it fails. Needs numpy only,
so that it runs on the GPU machine.
"""
import argparse
import json
from pathlib import Path

import numpy as np

import _init_paths  # noqa: F401  (tools/ on sys.path)
from sdc import atomic
from sdc.errors import UserError, run_main


def errors(reference, candidate):
    r = reference.astype(np.float64)
    c = candidate.astype(np.float64)
    scale_max, scale_l2 = np.abs(r).max(initial=0.0), np.linalg.norm(r)
    return {"rel_max": float(np.abs(c - r).max(initial=0.0) / (scale_max or 1.0)),
            "rel_l2": float(np.linalg.norm(c - r) / (scale_l2 or 1.0))}


METRICS = ("rel_max", "rel_l2")


def compare(reference_dir, candidate_dir, rtol, metric="rel_max"):
    arrays = sorted(Path(reference_dir).glob("*.npy"))
    if not arrays:
        raise UserError(f"{reference_dir}: no .npy files: pass a folder dump_net_io wrote")
    rows = {}
    for path in arrays:
        other = Path(candidate_dir) / path.name
        if not other.is_file():
            rows[path.stem] = {"problem": "missing"}
            continue
        r, c = np.load(path), np.load(other)
        if r.shape != c.shape:
            rows[path.stem] = {"problem": f"shape {c.shape} instead of {r.shape}"}
            continue
        rows[path.stem] = errors(r, c)
    failed = sorted(name for name, row in rows.items() if "problem" in row or row[metric] > rtol)
    worst = max((n for n in rows if "problem" not in rows[n]), key=lambda n: rows[n][metric], default=None)
    return {"rtol": rtol, "metric": metric, "passed": not failed, "failed": failed, "worst": worst,
            "arrays": rows}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reference", type=Path)
    ap.add_argument("candidate", type=Path)
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--metric", choices=METRICS, default="rel_max", help="what rtol bounds (default: %(default)s)")
    ap.add_argument("--json", type=Path, help="write the per-array errors here")
    ap.add_argument("--label", default=None, help="name for the printed line (default: CANDIDATE)")
    args = ap.parse_args(argv)
    result = compare(args.reference, args.candidate, args.rtol, args.metric)
    if args.json:
        atomic.write_text(args.json, json.dumps(result, indent=1) + "\n")
    worst = result["worst"]
    detail = (f"worst {worst}: rel_max {result['arrays'][worst]['rel_max']:.2e}, "
              f"rel_l2 {result['arrays'][worst]['rel_l2']:.2e}") if worst else "nothing comparable"
    status = "PASS" if result["passed"] else f"FAIL ({len(result['failed'])}: {', '.join(result['failed'][:5])})"
    print(f"{args.label or args.candidate}: {status}; {len(result['arrays'])} arrays, {detail} "
          f"({args.metric} <= {args.rtol:g})")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    run_main(main)
