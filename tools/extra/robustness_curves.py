#!/usr/bin/env python3
"""Accuracy against the strength of each degradation (beyond the paper): luminance alpha 0-1.2,
noise SNR 10-50 dB, motion-blur length 1-9.

    tools/extra/robustness_curves.py --model SDC-SN-ELF-MRF runs/paper/SDC-SN-ELF-MRF/final.caffemodel \\
                                   prototxt/SDC-SN-ELF-MRF_deploy.prototxt \\
                               --model released/SDC-SN-ELF-MRF <caffemodel> <deploy> ... \\
                               --out results/paper/robustness [--lmdb-dir datasets/work/lmdb] [--draws 1]

The test images are those of <lmdb-dir>/test_original_lmdb (256x256, as the enhanced set is made);
each level degrades every image --draws times with sdc.degrade's functions (the enhanced set's), each
draw from its own seeded stream, so every model sees the same pixels. Writes to --out:
  curves.csv (model, degradation, level, correct, total, accuracy, 95% interval: Wilson's, or with
             --draws > 1 Wilson's at the effective sample size of the test images, whose draws are
             not independent: sdc.stats.accuracy_interval),
  robustness_<degradation>.png and .pdf (dotted: the paper's levels), provenance.json, inputs.json.
Skips the sweep when --out holds all of these from the same inputs (--force redoes it).
"""
import argparse
import csv
import io
import json
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import _init_paths  # noqa: F401  (tools/ on sys.path)
from sdc import atomic, cli, degrade, hashing, inference, lmdb_io, plotting, provenance, stats
from sdc.errors import UserError, run_main

DEFAULT_SEED = 2019
# degradation -> (levels, axis label, the levels of the paper's test subsets), in the paper's column order
SWEEPS = {
    "luminance": (tuple(round(0.1 * i, 1) for i in range(13)), "luminance range ±α", (0.4, 1.0)),
    "noise": (tuple(range(10, 51, 5)), "SNR (dB)", (20, 35)),
    "blur": (tuple(range(1, 10)), "motion-blur length (pixels)", (2, 5)),
}
RELEASED = "released/"  # name prefix of the authors' caffemodels (as in the tables)
CSV_FIELDS = ("model", "degradation", "level", "correct", "total", "accuracy", "ci95_low", "ci95_high")


def degrade_one(image, degradation, level, rng):
    if degradation == "noise":
        return degrade.add_noise(image, rng, level)
    if degradation == "luminance":
        return degrade.vary_luminance(image, rng, level)
    return degrade.motion_blur(image, rng, level)


def degraded_images(originals, degradation, level, draws, seed):
    """(key, 3 x H x W uint8, label) of every original image degraded ``draws`` times at ``level``."""
    for key, image, label in originals:
        for draw in range(draws):
            rng = degrade.rng_for(seed, f"curve/{degradation}/{level}", key, draw)
            grey = degrade_one(image[0], degradation, level, rng)
            yield f"{key}#{draw}", np.broadcast_to(grey, image.shape), label


def parse_models(values):
    models = {}
    for name, model, deploy in values:
        for path in (model, deploy):
            if not Path(path).is_file():
                raise UserError(f"--model {name}: {path} not found")
        if name in models:
            raise UserError(f"--model {name} is given twice")
        models[name] = (Path(model), Path(deploy))
    return models


_state = {}


def read_originals(lmdb_dir, per_class):
    originals, seen = [], {}
    for key, image, label in lmdb_io.LmdbSource(Path(lmdb_dir) / lmdb_io.test_name("original")).read():
        seen[label] = seen.get(label, 0) + 1
        if per_class is None or seen[label] <= per_class:
            originals.append((key, image, label))
    return originals


def set_up(models, batch, lmdb_dir, per_class, gpu=None):
    """Load the nets and the test images (in each worker process, or in this one)."""
    _state["nets"] = {name: inference.load_net(deploy, model, batch, gpu) for name, (model, deploy) in models.items()}
    _state["originals"] = read_originals(lmdb_dir, per_class)


def sweep_level(job):
    """Rows (model, degradation, level, correct, total, accuracy, low, high) of one level, every model."""
    degradation, level, draws, seed = job
    images = list(degraded_images(_state["originals"], degradation, level, draws, seed))
    rows = []
    for name, net in _state["nets"].items():
        predictions = inference.predict(net, images, f"{degradation} {level}")
        interval = stats.accuracy_interval(predictions.correct, clusters(predictions.keys, draws))
        correct, n = int(predictions.correct.sum()), len(predictions)
        rows.append((name, degradation, level, correct, n, correct / n, interval.low, interval.high))
    return rows


def clusters(keys, draws):
    """The test image of each record when it was drawn more than once (None: independent records)."""
    return [stats.cluster_of(key) for key in keys] if draws > 1 else None


def sweep(args, models):
    """Every level of every asked degradation, over the worker processes (or here, on a GPU)."""
    jobs = [(d, level, args.draws, args.seed) for d in args.degradations for level in SWEEPS[d][0]]
    setup = (models, args.batch, args.lmdb_dir, args.per_class)
    if args.gpu is not None or args.workers <= 1:
        set_up(*setup, args.gpu)
        with inference.blas_threads(inference.WORKER_BLAS_THREADS):
            return collect(map(sweep_level, jobs), len(jobs))
    with inference.worker_pool(args.workers, set_up, setup) as pool:
        return collect(pool.imap(sweep_level, jobs), len(jobs))


def collect(results, total):
    return [row for level_rows in tqdm(results, total=total, desc="robustness", unit="level") for row in level_rows]


def plot(rows, degradation):
    """Accuracy against the level of ``degradation``, one curve per model with its 95 % band."""
    plt = plotting.pyplot()
    levels, label, paper_levels = SWEEPS[degradation]
    figure, ax = plt.subplots(figsize=(plotting.PAGE_WIDTH_IN / 2 + 0.5, 3.6), layout="constrained")
    colours = {}  # one colour per variant: ours solid, the released model of the same variant dashed
    for name in dict.fromkeys(r[0] for r in rows):
        released = name.startswith(RELEASED)
        colour = colours.setdefault(name.removeprefix(RELEASED), f"C{len(colours)}")
        mine = [r for r in rows if r[0] == name and r[1] == degradation]
        x = [r[2] for r in mine]
        ax.plot(x, [100 * r[5] for r in mine], marker="o", markersize=3, label=name, color=colour,
                linestyle="--" if released else "-")
        ax.fill_between(x, [100 * r[6] for r in mine], [100 * r[7] for r in mine], color=colour, alpha=0.12)
    for level in paper_levels:
        ax.axvline(level, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(label + (" (weaker to the right)" if degradation == "noise" else ""))
    ax.set_ylabel("accuracy (%), band: 95 % interval")
    ax.set_title(f"Accuracy vs {degradation} (dotted: the paper's levels)")
    ax.grid(alpha=0.3)
    figure.legend(loc="outside lower center", ncol=2, frameon=False)
    return figure


def output_files(degradations):
    """What a sweep writes besides inputs.json: a folder missing one of them is swept again."""
    plots = [path.name for d in degradations for path in plotting.paths(f"robustness_{d}")]
    return ["curves.csv", provenance.FILE_NAME, *plots]


def csv_text(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    writer.writerows([*r[:5], f"{r[5]:.6f}", f"{r[6]:.6f}", f"{r[7]:.6f}"] for r in rows)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs=3, action="append", required=True, metavar=("NAME", "CAFFEMODEL", "DEPLOY"),
                        help="a model to sweep (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. results/paper/robustness")
    cli.add_lmdb_dir(parser, "folder of test_original_lmdb")
    parser.add_argument("--degradations", nargs="+", choices=tuple(SWEEPS), default=tuple(SWEEPS),
                        help="default: all three")
    parser.add_argument("--draws", type=int, default=1, help="random draws per image and level (default: %(default)s)")
    parser.add_argument("--per-class", type=int, help="only the first N test images per class (quick runs)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="default: %(default)s")
    parser.add_argument("--batch", type=int, default=inference.DEFAULT_BATCH, help="default: %(default)s")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="CPU only: processes with one BLAS thread each (default: the %(default)s cores)")
    cli.add_gpu(parser)
    parser.add_argument("--force", action="store_true", help="sweep even if --out is up to date")
    args = parser.parse_args()
    if min(args.draws, args.batch, args.workers) < 1:
        raise UserError("--draws, --batch and --workers must be positive")
    if args.gpu is not None:
        from sdc import gpu
        gpu.require(args.gpu)
    models = parse_models(args.model)
    n_images = len(read_originals(args.lmdb_dir, args.per_class))  # fails early on a bad LMDB
    for name, (model, deploy) in models.items():
        inference.load_net(deploy, model, 1)  # fails early, once, on a bad model
    inputs = {"models": {name: {"caffemodel_sha1": hashing.sha1_file(model), "deploy_sha256": hashing.sha256_file(deploy)}
                         for name, (model, deploy) in models.items()},
              "test_original_lmdb": (lmdb_io.read_info(args.lmdb_dir / lmdb_io.test_name("original")) or {}).get("fingerprint"),
              "per_class": args.per_class, "draws": args.draws, "seed": args.seed,
              "degradations": list(args.degradations)}
    previous = args.out / "inputs.json"
    if (not args.force and previous.is_file() and json.loads(previous.read_text()) == inputs
            and all((args.out / name).is_file() for name in output_files(args.degradations))):
        print(f"{args.out}: up to date")
        return 0
    start = time.perf_counter()
    rows = sweep(args, models)
    wall = round(time.perf_counter() - start, 2)
    with atomic.atomic_path(args.out) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "curves.csv").write_text(csv_text(rows))
        (tmp / "inputs.json").write_text(json.dumps(inputs, indent=2) + "\n")
        for degradation in args.degradations:
            plotting.save(plot(rows, degradation), tmp / f"robustness_{degradation}")
        provenance.write(tmp, gpu=args.gpu, seeds={"degradations": args.seed}, wall_times={"sweep": wall},
                         command="tools/extra/robustness_curves.py", lmdb_dir=provenance.shown(args.lmdb_dir),
                         images=n_images, draws=args.draws,
                         models={n: {"caffemodel": provenance.shown(m), "deploy": provenance.shown(d)}
                                 for n, (m, d) in models.items()})
    print(f"{len(rows)} points ({n_images} images x {args.draws} draws per level) in {wall} s -> {args.out}")
    return 0


if __name__ == "__main__":
    run_main(main)
