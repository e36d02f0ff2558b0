#!/usr/bin/env python3
"""The DeCAF+MLR baseline of Table 3 (Ren et al. 2018): ImageNet CaffeNet features + multinomial
logistic regression.

    tools/decaf_mlr.py --out results/paper/eval/DeCAF+MLR [--weights bvlc_reference_caffenet.caffemodel]
        [--train-lmdb datasets/work/lmdb/train_lmdb] [--lmdb-dir datasets/work/lmdb] [--gpu N]

Features: DeCAF6 of prototxt/CaffeNet_deploy.prototxt (tools/sdc/decaf.py), classifier: the MLR of
tools/sdc/classical.py (C by cross-validation on the training features only). Output: the
evaluation folder --out in the format of tools/evaluate.py. The weights (244 MB, sha1 in
pretrained/readme.md) come from --weights, else from SDC_PRETRAINED_DIR or the Model Zoo URL; when
none of these has them, --out gets a not_run.json saying so (the tables print the reason) and the
tool exits 0, because the rest of the reproduction does not depend on this row.
"""
import argparse
from pathlib import Path

from tqdm import tqdm

from sdc import (baseline_rows, classical, cli, decaf, eval_folder, hashing, inference, lmdb_io, paths, provenance,
                 timing, weights)
from sdc.errors import UserError, run_main

NAME = "DeCAF+MLR"
CLASSIFIER = "MLR"
NOT_AVAILABLE = ("CaffeNet weights not available (bvlc_reference_caffenet.caffemodel: pass --weights or put it "
                 "under SDC_PRETRAINED_DIR)")


def caffenet_weights(path, offline):
    """The CaffeNet caffemodel: --weights (must exist), else fetched; None when it cannot be had."""
    if path is not None:
        if not path.is_file():
            raise UserError(f"--weights {path} not found: pass bvlc_reference_caffenet.caffemodel "
                            "(sha1 in pretrained/readme.md) or omit --weights")
        return path
    try:
        return weights.fetch(weights.read_manifest()[decaf.WEIGHTS_ID], paths.WEIGHTS_DIR, offline=offline)
    except UserError as e:
        print(f"{NAME}: {e}")
        return None


def latency(deploy, model, record, gpu):
    """ms(fitted) to classify one (key, image, label) record: DeCAF6 at batch 1, then ``fitted``."""
    net = inference.open_net(deploy, model, 1, gpu)
    return lambda fitted: timing.median_ms(
        lambda: fitted.predict(decaf.forward(net, [record], "latency image", [], [])), baseline_rows.LATENCY_REPEATS)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="evaluation folder, e.g. results/paper/eval/DeCAF+MLR")
    parser.add_argument("--weights", type=Path, help="bvlc_reference_caffenet.caffemodel (default: fetched)")
    parser.add_argument("--offline", action="store_true", help="never download the weights")
    parser.add_argument("--deploy", type=Path, default=decaf.DEPLOY, help="default: %(default)s")
    parser.add_argument("--train-lmdb", type=Path, default=paths.LMDB_DIR / "train_lmdb", help="default: %(default)s")
    cli.add_lmdb_dir(parser)
    parser.add_argument("--batch", type=int, default=decaf.BATCH, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=0, help="cross-validation folds (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="cross-validation processes (default: %(default)s)")
    cli.add_gpu(parser)
    args = parser.parse_args()
    if args.gpu is not None:
        from sdc import gpu
        gpu.require(args.gpu)
    lmdbs = baseline_rows.lmdb_paths(args.train_lmdb, args.lmdb_dir)
    total = sum(lmdb_io.require_info(path)["count"] for path in lmdbs.values())
    model = caffenet_weights(args.weights, args.offline)
    if model is None:
        eval_folder.write_not_run(args.out, NAME, NOT_AVAILABLE)
        print(f"{NAME}: not run; {args.out / eval_folder.NOT_RUN_FILE} says why")
        return 0
    net = inference.open_net(args.deploy, model, args.batch, args.gpu)
    with tqdm(total=total, desc=f"{NAME} features", unit="image") as bar:
        sets = {label: decaf.extract(net, path, bar) for label, path in lmdbs.items()}
    inputs = {**baseline_rows.sources(sets, lmdbs), "model": provenance.shown(model), "model_sha1": hashing.sha1_file(model),
              "feature": {"name": "DeCAF6", "net": str(args.deploy), "blob": decaf.FEATURE_BLOB,
                          "dimension": sets[baseline_rows.TRAIN].features.shape[1]},
              "classifier": {"name": CLASSIFIER, "search": classical.grid_description(CLASSIFIER), "seed": args.seed}}
    record = next(lmdb_io.LmdbSource(lmdbs["original"]).read(0, 1))   # the image the latency is timed on
    baseline_rows.evaluate(args.out, NAME, CLASSIFIER, sets, inputs, latency(args.deploy, model, record, args.gpu),
                           "tools/decaf_mlr.py", seed=args.seed, workers=args.workers,
                           extra_bytes=model.stat().st_size)
    return 0


if __name__ == "__main__":
    run_main(main)
