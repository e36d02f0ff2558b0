#!/usr/bin/env python3
"""Evaluate one caffemodel with its deploy net on the test subsets (pycaffe, batched).

    tools/evaluate.py --model runs/paper/SDC-SN-ELF-MRF/final.caffemodel \\
        --deploy prototxt/SDC-SN-ELF-MRF_deploy.prototxt --name SDC-SN-ELF-MRF \\
        --out results/paper/eval/SDC-SN-ELF-MRF [--lmdb-dir datasets/work/lmdb] [--subsets ...] [--gpu N]
        [--train-lmdb datasets/work/lmdb/train_lmdb]

Input per subset: the LMDB <lmdb-dir>/test_<subset>_lmdb (tools/build_lmdb.py), or a Caffe list file
given with --list SUBSET=LIST (images resized to 256 like the LMDB builder does). Output in --out,
replaced as a whole only when every subset is done:
  predictions_<subset>.csv  index, key, label, pred, prob_pred, prob_label (one row per image)
  confusion_<subset>.csv    6x6 counts, rows = true class, columns = predicted (0 Cr .. 5 Sc)
  confusion.json            the same for every subset and for "enhanced"
  accuracy.json             correct/total/accuracy/Wilson 95% CI per subset, and "enhanced" = the six
                            degraded subsets pooled (when all six were evaluated); model size and sha1;
                            throughput and batch-1 latency with the device named; with --train-lmdb,
                            the number of images the model was trained on (Table 4)
  provenance.json
Skips the work when accuracy.json already records the same model, deploy net and inputs (--force redoes it).
"""
import argparse
import json
import os
import time
from pathlib import Path

from tqdm import tqdm

from sdc import cli, degrade, eval_folder, hashing, inference, list_source, lmdb_io, lock, provenance
from sdc.errors import UserError, run_main


def plan_inputs(args):
    """{subset: (source, fingerprint, count)} in the order asked."""
    lists = {subset: Path(path) for subset, path in degrade.parse_subset_options(args.list, "--list", "LIST").items()}
    plan = {}
    for subset in args.subsets or degrade.TEST_SUBSETS:
        if subset in lists:
            source = list_source.ListSource(lists[subset], args.image_root)
            plan[subset] = (source, hashing.sha256_file(source.path), source.count())
            continue
        path = args.lmdb_dir / lmdb_io.test_name(subset)
        info = lmdb_io.require_info(path, f"run tools/build_lmdb.py (or pass --lmdb-dir, or --list {subset}=LIST)")
        plan[subset] = (lmdb_io.LmdbSource(path), info.get("fingerprint"), info.get("count"))
    return plan


def evaluate(args, plan, inputs):
    """Evaluate unless args.out already holds the evaluation of ``inputs``; 0."""
    previous = args.out / eval_folder.ACCURACY_FILE
    if not args.force and previous.is_file() and json.loads(previous.read_text()).get("inputs") == inputs:
        print(f"{args.out}: up to date ({args.name})")
        return 0

    sources = {subset: source for subset, (source, _, _) in plan.items()}
    start = time.perf_counter()
    with tqdm(total=sum(n for _, _, n in plan.values()), desc=args.name, unit="image") as bar:
        results = inference.predict_sources(args.deploy, args.model, sources, args.batch, args.workers, args.gpu, bar)
    wall = time.perf_counter() - start
    n_images = sum(len(p) for p in results.values())
    timing = {"device": provenance.device_description(args.gpu), "batch": args.batch,
              "workers": 1 if args.gpu is not None else args.workers, "images": n_images,
              "wall_s": round(wall, 2), "ms_per_image": 1000 * wall / n_images}
    if args.latency_repeats > 0:
        first_image = next(iter(next(iter(sources.values())).read(0, 1)))[1]
        timing["latency_ms_batch1"] = inference.latency_ms(args.deploy, args.model, first_image,
                                                            args.latency_repeats, args.gpu)
        timing["latency_repeats"] = args.latency_repeats
    accuracy = eval_folder.write_eval_dir(args.out, args.name, inputs, args.model.stat().st_size, results, timing,
                                         args.gpu)
    eval_folder.print_accuracy(args.name, accuracy)
    print(f"{n_images} images in {wall:.1f} s ({timing['ms_per_image']:.1f} ms/image, batch {args.batch}, "
          f"{timing['workers']} worker(s), {timing['device']}); results in {args.out}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="the .caffemodel to evaluate")
    parser.add_argument("--deploy", type=Path, required=True, help="its prototxt/<variant>_deploy.prototxt")
    parser.add_argument("--name", required=True, help="row name in the tables, e.g. SDC-SN or released/SDC-SN")
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. results/paper/eval/<name>")
    cli.add_lmdb_dir(parser)
    parser.add_argument("--subsets", nargs="+", choices=degrade.TEST_SUBSETS, help="default: all seven")
    parser.add_argument("--list", action="append", default=[], metavar="SUBSET=LIST",
                        help="read SUBSET from a Caffe list file instead of its LMDB (repeatable)")
    parser.add_argument("--image-root", type=Path, help="folder the --list paths are relative to "
                        "(default: each list file's folder)")
    parser.add_argument("--batch", type=int, default=inference.DEFAULT_BATCH, help="default: %(default)s")
    parser.add_argument("--latency-repeats", type=int, default=20,
                        help="batch-1 forward passes timed for the ms/image latency (0: skip; default %(default)s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="CPU only: processes with one BLAS thread each (default: the %(default)s cores)")
    parser.add_argument("--train-lmdb", type=Path, help="the LMDB the model was trained on: its record count "
                        "goes into Table 4 (omit for models trained elsewhere)")
    cli.add_gpu(parser)
    parser.add_argument("--force", action="store_true", help="evaluate even if --out is up to date")
    args = parser.parse_args()
    if args.batch < 1 or args.workers < 1:
        raise UserError(f"--batch {args.batch} --workers {args.workers}: give positive numbers, e.g. 50 and 2")
    if args.gpu is not None:
        from sdc import gpu
        gpu.require(args.gpu)
    for path, what in ((args.model, "--model"), (args.deploy, "--deploy")):
        if not path.is_file():
            raise UserError(f"{what} {path} not found: pass an existing file")
    plan = plan_inputs(args)
    inputs = {"model": provenance.shown(args.model), "model_sha1": hashing.sha1_file(args.model),
              "deploy": provenance.shown(args.deploy), "deploy_sha256": hashing.sha256_file(args.deploy),
              "subsets": {s: {"source": provenance.shown(src.path), "fingerprint": f, "count": n}
                          for s, (src, f, n) in plan.items()}}
    if args.train_lmdb is not None:
        inputs.update(train_lmdb=provenance.shown(args.train_lmdb), train_images=lmdb_io.require_info(
            args.train_lmdb, "pass the LMDB the model was trained on (tools/build_lmdb.py builds it)")["count"])
    with lock.held(args.out, "evaluation folder"):
        return evaluate(args, plan, inputs)


if __name__ == "__main__":
    run_main(main)
