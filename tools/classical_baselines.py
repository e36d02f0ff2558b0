#!/usr/bin/env python3
"""The classical Table 3 baselines: {GLCM, AECLBP, AELTP} features x {SVM, NNC, MLR} classifiers.

    tools/classical_baselines.py --out results/paper/eval [--train-lmdb datasets/work/lmdb/train_lmdb]
        [--lmdb-dir datasets/work/lmdb] [--protocols native-200 ...] [--neu-dir DIR]
        [--enhanced-200 datasets/work/enhanced-200] [--features ...] [--classifiers ...] [--seed 0] [--workers 2]

Trains on the images of the training LMDB, evaluates on those of the seven test LMDBs
<lmdb-dir>/test_<subset>_lmdb. A protocol (tools/sdc/protocols.py, docs/baselines.md) says which
pixels stand for each LMDB's records: the records themselves (256x256, channel 0), the records
resized to 200x200, or the native 200x200 files (the NEU-CLS BMPs from --neu-dir; the enhanced set
made at 200x200, --enhanced-200); whether the features are standardised; and feature parameters
that differ from the default. The default protocol, native-200, takes every image at 200x200 from
the files: the BMPs for training and the original test images, the enhanced set made at 200x200
for the degraded subsets.
Feature definitions: tools/sdc/texture.py; classifiers: tools/sdc/classical.py. Features are
cached under --work-dir, keyed by each source's identity and the feature parameters, and
extracted by --workers processes.

Output: one evaluation folder per row, <out>/<FEATURE>+<CLASSIFIER>/ (e.g. AECLBP+SVM), and
<out>/<FEATURE>+<CLASSIFIER> (<protocol label>)/ for the other protocols, in the format of
tools/evaluate.py (accuracy.json, predictions_<subset>.csv, confusions, provenance.json). In
accuracy.json, "inputs" holds the protocol, the sources and their fingerprints, the feature
parameters, the classifier's search grid and the hyper-parameters it chose; "timing" holds the
device, "wall_s" (this row's fit, cross-validation included, plus predicting every test image,
features given), "fit_s", "predict_s", the feature extraction time of every source (as measured
when its features were computed; cached ones say so) and "latency_ms_batch1": the median time to
extract the feature of the first original test image and classify it. "model_bytes" is the size of
the pickled fitted classifier (scaler included). A row whose inputs are unchanged is skipped
(--force redoes it).
"""
import argparse
from pathlib import Path

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from sdc import baseline_rows, classical, cli, features, paths, protocols, texture, timing
from sdc.errors import UserError, run_main

DEFAULT_WORK_DIR = paths.WORK_DIR / "features"


def run_row(args, protocol, feature, classifier, sets, lmdbs, latency_image):
    name = protocols.row_name(feature, classifier, protocol)
    out = args.out / name
    params = protocol.feature_params(feature)
    inputs = {"protocol": protocol.describe(), **baseline_rows.sources(sets, lmdbs),
              "feature": texture.describe(feature, params),
              "classifier": {"name": classifier, "search": classical.grid_description(classifier, protocol.standardise),
                             "seed": args.seed}}
    if not args.force and baseline_rows.is_current(out, inputs):
        print(f"{out}: up to date ({name})")
        return
    latency = lambda fitted: timing.median_ms(  # noqa: E731
        lambda: fitted.predict(texture.extract(feature, latency_image, params)[None]), baseline_rows.LATENCY_REPEATS)
    baseline_rows.evaluate(out, name, classifier, sets, inputs, latency, "tools/classical_baselines.py",
                           histogram=feature in texture.HISTOGRAM_FEATURES, seed=args.seed, workers=args.workers,
                           standardise=protocol.standardise)


def run_protocol(args, protocol, sources, lmdbs):
    """The rows of one protocol: each feature's features of every source (cached or extracted), then
    each classifier (``lmdbs``: the LMDBs whose records name the sources' images)."""
    latency_image = next(iter(sources["original"].read()))[2]
    for feature in (f for f in args.features if f in protocol.features):
        with tqdm(desc=f"{feature} features ({protocol.name})", unit="image") as bar:
            sets = features.source_features(sources, feature, protocol.feature_params(feature), args.work_dir,
                                            args.workers, bar)
        for label, feature_set in sets.items():
            record = feature_set.record
            state = ("cached" if record["cached"]
                     else f"{record['extraction_s']:.1f} s, {record['extraction_cpu_s']:.1f} CPU s")
            print(f"{feature:6s} {label:9s} {len(feature_set.keys):5d} images ({state})")
        for classifier in args.classifiers:
            run_row(args, protocol, feature, classifier, sets, lmdbs, latency_image)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True,
                        help="folder of the evaluation folders, e.g. results/smoke/eval")
    parser.add_argument("--train-lmdb", type=Path, default=paths.LMDB_DIR / "train_lmdb", help="default: %(default)s")
    cli.add_lmdb_dir(parser)
    parser.add_argument("--protocols", nargs="+", choices=tuple(protocols.PROTOCOLS), default=[protocols.DEFAULT],
                        help="default: %(default)s")
    cli.add_neu_dir(parser, ", for protocols with native training images")
    parser.add_argument("--enhanced-200", type=Path, default=paths.WORK_DIR / "enhanced-200",
                        help="the enhanced set made at 200x200 (tools/make_enhanced.py --size 200), for the "
                             "native-200 protocol (default: %(default)s)")
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
    lmdbs = baseline_rows.lmdb_paths(args.train_lmdb, args.lmdb_dir)
    # every protocol's inputs are checked before any work
    plans = [(protocols.PROTOCOLS[name], protocols.image_sources(protocols.PROTOCOLS[name], lmdbs, args.neu_dir,
                                                                 args.enhanced_200))
             for name in dict.fromkeys(args.protocols)]
    with threadpool_limits(1):  # parallel processes instead; BLAS threads only spin on a busy machine
        for protocol, sources in plans:
            run_protocol(args, protocol, sources, lmdbs)
    return 0


if __name__ == "__main__":
    run_main(main)
