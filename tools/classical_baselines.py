#!/usr/bin/env python3
"""The classical Table 3 baselines: {GLCM, AECLBP, AELTP} features x {SVM, NNC, MLR} classifiers.

    tools/classical_baselines.py --out results/paper/eval [--train-lmdb datasets/work/lmdb/train_lmdb]
        [--lmdb-dir datasets/work/lmdb] [--features ...] [--classifiers ...] [--seed 0] [--workers 2]

Trains on the training LMDB, evaluates on the seven test LMDBs <lmdb-dir>/test_<subset>_lmdb (channel
0 of each record). Feature definitions: tools/sdc/texture.py; classifiers: tools/sdc/classical.py;
both are documented in docs/baselines.md. Features are cached under --work-dir, keyed by each LMDB's
build.json fingerprint and the feature parameters, and extracted by --workers processes.

Output: one evaluation folder per row, <out>/<FEATURE>+<CLASSIFIER>/ (e.g. AECLBP+SVM), in the format
of tools/evaluate.py (accuracy.json, predictions_<subset>.csv, confusions, provenance.json). In
accuracy.json, "inputs" holds the LMDBs and their fingerprints, the feature parameters, the
classifier's search grid and the hyper-parameters it chose; "timing" holds the device, "wall_s"
(this row's fit, cross-validation included, plus predicting every test image, features given),
"fit_s", "predict_s", the feature extraction time of every LMDB (as measured when its features
were computed; cached ones say so) and "latency_ms_batch1": the median time to extract the feature
of one 256x256 image and classify it. "model_bytes" is the size of the pickled fitted classifier
(scaler included). A row whose inputs are unchanged is skipped (--force redoes it).
"""
import argparse
from pathlib import Path

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from sdc import baseline_rows, classical, features, neu, texture
from sdc.errors import UserError, run_main

DEFAULT_WORK_DIR = neu.WORK_DIR / "features"


def row_name(feature, classifier):
    return f"{feature}+{classifier}"


def run_row(args, feature, classifier, sets, latency_image):
    name = row_name(feature, classifier)
    out = args.out / name
    inputs = {**baseline_rows.sources(sets), "feature": texture.describe(feature, texture.DEFAULT_PARAMS[feature]),
              "classifier": {"name": classifier, "search": classical.grid_description(classifier), "seed": args.seed}}
    if not args.force and baseline_rows.is_current(out, inputs):
        print(f"{out}: up to date ({name})")
        return
    latency = lambda fitted: baseline_rows.median_ms(  # noqa: E731
        lambda: fitted.predict(texture.extract(feature, latency_image)[None]))
    baseline_rows.evaluate(out, name, classifier, sets, inputs, latency, "tools/classical_baselines.py",
                           histogram=feature in texture.HISTOGRAM_FEATURES, seed=args.seed, workers=args.workers)


def run_feature(args, feature, paths, latency_image):
    """The rows of one feature: its features of every LMDB (cached or extracted), then each classifier."""
    with tqdm(desc=f"{feature} features", unit="image") as bar:
        sets = features.lmdb_features(paths, feature, texture.DEFAULT_PARAMS[feature], args.work_dir, args.workers,
                                      bar)
    for label, feature_set in sets.items():
        record = feature_set.record
        state = ("cached" if record["cached"]
                 else f"{record['extraction_s']:.1f} s, {record['extraction_cpu_s']:.1f} CPU s")
        print(f"{feature:6s} {label:9s} {len(feature_set.keys):5d} images ({state})")
    for classifier in args.classifiers:
        run_row(args, feature, classifier, sets, latency_image)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True,
                        help="folder of the evaluation folders, e.g. results/smoke/eval")
    parser.add_argument("--train-lmdb", type=Path, default=neu.LMDB_DIR / "train_lmdb", help="default: %(default)s")
    parser.add_argument("--lmdb-dir", type=Path, default=neu.LMDB_DIR,
                        help="folder of the test_<subset>_lmdb (default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="feature cache (default: %(default)s)")
    parser.add_argument("--features", nargs="+", choices=texture.FEATURES, default=list(texture.FEATURES))
    parser.add_argument("--classifiers", nargs="+", choices=classical.CLASSIFIERS, default=list(classical.CLASSIFIERS))
    parser.add_argument("--seed", type=int, default=0, help="cross-validation folds (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes for feature extraction and cross-validation (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="redo rows whose outputs are up to date")
    args = parser.parse_args()
    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: give a positive number, e.g. 2")
    paths = baseline_rows.lmdb_paths(args.train_lmdb, args.lmdb_dir)
    latency_image = baseline_rows.latency_record(paths)[1][0]
    with threadpool_limits(1):  # parallel processes instead; BLAS threads only spin on a busy machine
        for feature in args.features:
            run_feature(args, feature, paths, latency_image)
    return 0


if __name__ == "__main__":
    run_main(main)
