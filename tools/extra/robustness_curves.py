#!/usr/bin/env python3
"""Accuracy against the strength of each degradation (beyond the paper): luminance alpha 0-1.2,
noise SNR 10-50 dB, motion-blur length 1-9.

    tools/extra/robustness_curves.py --model SDC-SN-ELF-MRF runs/paper/SDC-SN-ELF-MRF/final.caffemodel \\
                                   prototxt/SDC-SN-ELF-MRF_deploy.prototxt \\
                               --model released/SDC-SN-ELF-MRF <caffemodel> <deploy> ... \\
                               --classical AECLBP+SVM native-200 [--classical ROW PROTOCOL ...] \\
                               --out results/paper/robustness [--lmdb-dir datasets/work/lmdb] [--draws 1] \\
                               [--train-lmdb datasets/work/lmdb/train_lmdb] [--neu-dir DIR] \\
                               [--work-dir datasets/work/features]

Models: Caffe nets (--model) and classical Table 3 rows (--classical FEATURE+CLASSIFIER PROTOCOL, a
protocol of tools/sdc/protocols.py), the latter named as their Table 3 row (AECLBP+SVM under
native-200, "AECLBP+SVM (all 200, degraded at 256)" under degraded-256-resized) and fitted once, as
tools/classical_baselines.py fits them: the protocol's training images, their features from the
--work-dir cache that tool fills, the same --fit-seed (tools/sdc/classical_curve.py).
The test images are those of <lmdb-dir>/test_original_lmdb; each level degrades every image --draws
times with sdc.degrade's functions (the enhanced set's), each draw from its own seeded stream (keyed by
the record and the draw), so every model sees the same degradation. The nets get the 256x256 records
degraded; a classical row the pixels its protocol uses for degraded subsets: the native 200x200 BMP
behind each record (native-200; NEU-CLS from --neu-dir), or the record (resized to 200x200 after the
degradation under degraded-256-resized). Writes to --out:
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

import _init_paths  # noqa: F401  (tools/ on sys.path)
from sdc import (atomic, classical_curve, cli, degrade, hashing, inference, lmdb_io, paths, plotting, provenance,
                 stats, tables)
from sdc.errors import UserError, run_main

DEFAULT_SEED = 2019
# degradation -> (levels, axis label, the levels of the paper's test subsets), in the paper's column order
SWEEPS = {
    "luminance": (tuple(round(0.1 * i, 1) for i in range(13)), "luminance range ±α", (0.4, 1.0)),
    "noise": (tuple(range(10, 51, 5)), "SNR (dB)", (20, 35)),
    "blur": (tuple(range(1, 10)), "motion-blur length (pixels)", (2, 5)),
}
LEGEND_ROW_IN = 0.2  # height of a legend row (8 pt text)
# classical rows: colours outside matplotlib's default cycle (the nets'), dash-dotted, square markers
CLASSICAL_COLOURS = ("black", "saddlebrown", "darkmagenta", "darkolivegreen", "dimgrey", "teal")
CSV_FIELDS = ("model", "degradation", "level", "correct", "total", "accuracy", "ci95_low", "ci95_high")


def degrade_one(image, degradation, level, rng):
    if degradation == "noise":
        return degrade.add_noise(image, rng, level)
    if degradation == "luminance":
        return degrade.vary_luminance(image, rng, level)
    return degrade.motion_blur(image, rng, level)


def degraded_images(originals, degradation, level, draws, seed):
    """(key, grey uint8 image, label) of every original (key, grey image, label), degraded ``draws`` times
    at ``level``."""
    for key, image, label in originals:
        for draw in range(draws):
            rng = degrade.rng_for(seed, f"curve/{degradation}/{level}", key, draw)
            yield f"{key}#{draw}", degrade_one(image, degradation, level, rng), label


_nets = {}  # (deploy, caffemodel) -> the net loaded in this process


@dataclass(frozen=True)
class NetCurve:
    """A Caffe net as a curve model (the interface of sdc.classical_curve): fed the degraded 256x256 records."""
    name: str
    model: Path
    deploy: Path
    batch: int
    gpu: int = None
    pixels = classical_curve.RECORDS

    def correct(self, images):
        if (self.deploy, self.model) not in _nets:
            _nets[self.deploy, self.model] = inference.load_net(self.deploy, self.model, self.batch, self.gpu)
        bgr = ((key, np.broadcast_to(image, (3, *image.shape)), label) for key, image, label in images)
        return inference.predict(_nets[self.deploy, self.model], bgr, f"{self.name}'s degraded images").correct


def parse_models(values, batch, gpu):
    models = []
    for name, model, deploy in values:
        for path in (model, deploy):
            if not Path(path).is_file():
                raise UserError(f"--model {name}: {path} not found")
        models.append(NetCurve(name, Path(model), Path(deploy), batch, gpu))
    return models


def read_originals(source, per_class):
    """(key, grey image, label) of the images of an ImageSource, the first ``per_class`` of each class if given."""
    originals, seen = [], {}
    for key, label, image in source.read():
        seen[label] = seen.get(label, 0) + 1
        if per_class is None or seen[label] <= per_class:
            originals.append((key, image, label))
    return originals


_state = {}


def set_up(models, originals):
    """The models and {pixels: originals} of the sweep (in each worker process, or in this one)."""
    _state.update(models=models, originals=originals)


def sweep_level(job):
    """Rows (model, degradation, level, correct, total, accuracy, low, high) of one level, every model."""
    degradation, level, draws, seed = job
    degraded = {pixels: list(degraded_images(originals, degradation, level, draws, seed))
                for pixels, originals in _state["originals"].items()}
    rows = []
    for model in _state["models"]:
        images = degraded[model.pixels]
        right = model.correct(images)
        interval = stats.accuracy_interval(right, clusters([key for key, _, _ in images], draws))
        correct, n = int(right.sum()), len(images)
        rows.append((model.name, degradation, level, correct, n, correct / n, interval.low, interval.high))
    return rows


def clusters(keys, draws):
    """The test image of each record when it was drawn more than once (None: independent records)."""
    return [stats.cluster_of(key) for key in keys] if draws > 1 else None


def sweep(args, models, originals):
    """Every level of every asked degradation, over the worker processes (or here, on a GPU)."""
    jobs = [(d, level, args.draws, args.seed) for d in args.degradations for level in SWEEPS[d][0]]
    setup = (models, originals)
    if args.gpu is not None or args.workers <= 1:
        set_up(*setup)
        with inference.blas_threads(inference.WORKER_BLAS_THREADS):
            return collect(map(sweep_level, jobs), len(jobs))
    with inference.worker_pool(args.workers, set_up, setup) as pool:
        return collect(pool.imap(sweep_level, jobs), len(jobs))


def collect(results, total):
    return [row for level_rows in tqdm(results, total=total, desc="robustness", unit="level") for row in level_rows]


def plot(rows, degradation, classical=()):
    """Accuracy against the level of ``degradation``, one curve per model with its 95 % band
    (``classical``: the names of the classical rows among the models)."""
    plt = plotting.pyplot()
    levels, label, paper_levels = SWEEPS[degradation]
    figure, ax = plt.subplots(figsize=(plotting.PAGE_WIDTH_IN / 2 + 0.5, 3.6), layout="constrained")
    colours = {}  # one colour per net variant: ours solid, the released model of the same variant dashed
    n_classical = 0
    for name in dict.fromkeys(r[0] for r in rows):
        if name in classical:
            colour = CLASSICAL_COLOURS[n_classical % len(CLASSICAL_COLOURS)]
            n_classical += 1
            style = {"color": colour, "linestyle": "-.", "marker": "s"}
        else:
            colour = colours.setdefault(name.removeprefix(tables.RELEASED), f"C{len(colours)}")
            style = {"color": colour, "linestyle": "--" if name.startswith(tables.RELEASED) else "-", "marker": "o"}
        mine = [r for r in rows if r[0] == name and r[1] == degradation]
        x = [r[2] for r in mine]
        ax.plot(x, [100 * r[5] for r in mine], markersize=3, label=name, **style)
        ax.fill_between(x, [100 * r[6] for r in mine], [100 * r[7] for r in mine], color=colour, alpha=0.12)
    for level in paper_levels:
        ax.axvline(level, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(label + (" (weaker to the right)" if degradation == "noise" else ""))
    ax.set_ylabel("accuracy (%), band: 95 % interval")
    ax.set_title(f"Accuracy vs {degradation} (dotted: the paper's levels)")
    ax.grid(alpha=0.3)
    legend = figure.legend(loc="outside lower center", ncol=2, frameon=False)
    if legend.get_window_extent().width > figure.bbox.width:  # long names (classical rows): one column,
        legend.remove()                                         # the figure taller by the rows it adds
        labels = len(legend.get_texts())
        figure.set_figheight(figure.get_figheight() + LEGEND_ROW_IN * (labels - (labels + 1) // 2))
        figure.legend(loc="outside lower center", ncol=1, frameon=False)
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


def check_inputs(args):
    """(nets, classical plans, {pixels: original test images}), every input checked before any work."""
    nets = parse_models(args.model, args.batch, args.gpu)
    plans = [classical_curve.plan(row, protocol, args.train_lmdb, args.lmdb_dir, args.neu_dir, args.fit_seed)
             for row, protocol in args.classical]
    names = [m.name for m in nets + plans]
    for name in names:
        if names.count(name) > 1:
            raise UserError(f"{name} is given twice: give each model once")
    test_lmdb = args.lmdb_dir / lmdb_io.test_name("original")
    needed = {m.pixels for m in nets + plans}
    originals = {pixels: read_originals(classical_curve.test_originals(pixels, test_lmdb, args.neu_dir), args.per_class)
                 for pixels in sorted(needed)}  # fails early on a bad LMDB or a missing file
    for net in nets:
        inference.load_net(net.deploy, net.model, 1)  # fails early, once, on a bad model
    return nets, plans, originals


def fit(args, plans):
    """The ClassicalCurve of each plan, fitted in this process with --workers for extraction and cross-validation."""
    with threadpool_limits(1):  # parallel processes instead, as tools/classical_baselines.py
        curves = classical_curve.fit(plans, args.work_dir, args.workers, lambda p: tqdm(
            desc=f"{p.feature} features of {p.train_lmdb.name} ({p.protocol.name})", unit="image"))
    for curve in curves:
        state = "cached" if curve.record["train_features"]["cached"] else "extracted"
        print(f"{curve.name}: fitted on {curve.record['train_images']} images ({state} features), "
              f"chosen {curve.record['chosen']}")
    return curves


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs=3, action="append", default=[], metavar=("NAME", "CAFFEMODEL", "DEPLOY"),
                        help="a Caffe net to sweep (repeatable)")
    parser.add_argument("--classical", nargs=2, action="append", default=[], metavar=("ROW", "PROTOCOL"),
                        help="a classical Table 3 row under a protocol, e.g. AECLBP+SVM native-200 (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. results/paper/robustness")
    cli.add_lmdb_dir(parser, "folder of test_original_lmdb (and, for --classical, the test LMDBs)")
    parser.add_argument("--train-lmdb", type=Path, default=paths.LMDB_DIR / "train_lmdb",
                        help="--classical: the training LMDB (default: %(default)s)")
    cli.add_neu_dir(parser, ", for --classical rows of protocols with native images")
    parser.add_argument("--work-dir", type=Path, default=paths.WORK_DIR / "features",
                        help="--classical: tools/classical_baselines.py's feature cache (default: %(default)s)")
    parser.add_argument("--fit-seed", type=int, default=0,
                        help="--classical: cross-validation folds, as classical_baselines' --seed "
                             "(default: %(default)s)")
    parser.add_argument("--degradations", nargs="+", choices=tuple(SWEEPS), default=tuple(SWEEPS),
                        help="default: all three")
    parser.add_argument("--draws", type=int, default=1, help="random draws per image and level (default: %(default)s)")
    parser.add_argument("--per-class", type=int, help="only the first N test images per class (quick runs)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="degradations (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=inference.DEFAULT_BATCH, help="default: %(default)s")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="CPU only: processes with one BLAS thread each, for the sweep, and for --classical "
                             "feature extraction and cross-validation (default: the %(default)s cores)")
    cli.add_gpu(parser)
    parser.add_argument("--force", action="store_true", help="sweep even if --out is up to date")
    args = parser.parse_args()
    if not args.model and not args.classical:
        raise UserError("nothing to sweep: pass --model NAME CAFFEMODEL DEPLOY or --classical ROW PROTOCOL")
    if min(args.draws, args.batch, args.workers) < 1:
        raise UserError("--draws, --batch and --workers must be positive")
    if args.gpu is not None:
        from sdc import gpu
        gpu.require(args.gpu)
    nets, plans, originals = check_inputs(args)
    inputs = {"models": {n.name: {"caffemodel_sha1": hashing.sha1_file(n.model),
                                  "deploy_sha256": hashing.sha256_file(n.deploy)} for n in nets},
              "test_original_lmdb": (lmdb_io.read_info(args.lmdb_dir / lmdb_io.test_name("original")) or {}
                                     ).get("fingerprint"),
              "per_class": args.per_class, "draws": args.draws, "seed": args.seed,
              "degradations": list(args.degradations)}
    if plans:
        inputs["classical"] = {p.name: p.inputs() for p in plans}
    previous = args.out / "inputs.json"
    if (not args.force and previous.is_file() and json.loads(previous.read_text()) == inputs
            and all((args.out / name).is_file() for name in output_files(args.degradations))):
        print(f"{args.out}: up to date")
        return 0
    start = time.perf_counter()
    curves = fit(args, plans)
    fit_s = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    rows = sweep(args, nets + curves, originals)
    wall = round(time.perf_counter() - start, 2)
    n_images = len(next(iter(originals.values())))
    classical = {c.name: {"protocol": p.protocol.name, "feature": p.inputs()["feature"], "classifier": p.classifier,
                          "seed": p.seed, "train_lmdb": provenance.shown(p.train_lmdb),
                          "pixels": p.protocol.describe()["pixels"], **c.record}
                 for p, c in zip(plans, curves)}
    with atomic.atomic_path(args.out) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "curves.csv").write_text(csv_text(rows))
        (tmp / "inputs.json").write_text(json.dumps(inputs, indent=2) + "\n")
        for degradation in args.degradations:
            plotting.save(plot(rows, degradation, classical), tmp / f"robustness_{degradation}")
        seeds, wall_times = {"degradations": args.seed}, {"sweep": wall}
        if plans:
            seeds["cv_split_seed"], wall_times["fit"] = args.fit_seed, fit_s
        provenance.write(tmp, gpu=args.gpu, seeds=seeds, wall_times=wall_times,
                         command="tools/extra/robustness_curves.py", lmdb_dir=provenance.shown(args.lmdb_dir),
                         images=n_images, draws=args.draws,
                         models={n.name: {"caffemodel": provenance.shown(n.model), "deploy": provenance.shown(n.deploy)}
                                 for n in nets},
                         **({"classical": classical, "work_dir": provenance.shown(args.work_dir)} if plans else {}))
    print(f"{len(rows)} points ({n_images} images x {args.draws} draws per level) in {wall} s"
          f"{f' (fits {fit_s} s)' if plans else ''} -> {args.out}")
    return 0


if __name__ == "__main__":
    run_main(main)
