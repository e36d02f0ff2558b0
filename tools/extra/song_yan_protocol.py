#!/usr/bin/env python3
"""Song & Yan's (2013) protocol on clean NEU-CLS: random splits of each class's 300 images into
--per-class images for training (150) and the rest for testing; accuracy mean ± standard deviation
over --splits splits. Published for AECLBP + SVM: 98.93 ± 0.63 %.

    tools/extra/song_yan_protocol.py [--neu-dir DIR] [--splits 10] [--seed 0] [--feature AECLBP]
        [--classifiers SVM NNC] [--window 3] [--include-neighbour] [--out song_yan.json]

The images are the 200x200 BMPs as they are (no resize to 256). The feature is extracted once per
image with the parameters of tools/sdc/texture.py; each split's classifier picks its
hyper-parameters by cross-validation on that split's training images only. The standard deviation
is the sample one (n - 1).
"""
import argparse
import dataclasses
import json
import time

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

import _init_paths  # noqa: F401  (tools/ on sys.path)
from sdc import atomic, classical, cli, features, neu, provenance, texture
from sdc.errors import UserError, run_main


def load_neu(neu_dir):
    """(grey 200x200 images, labels) of the verified NEU-CLS tree, in name order."""
    files = neu.verified_files(neu.locate(neu_dir))
    names = sorted(files, key=neu.sort_key)
    return [neu.load(files[name]) for name in names], np.array([neu.label_of(n) for n in names])


def random_splits(labels, per_class, count, seed):
    """``count`` (train indices, test indices) pairs: ``per_class`` random images of every class
    for training, the rest for testing."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        train, test = [], []
        for label in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == label))
            train.append(members[:per_class])
            test.append(members[per_class:])
        yield np.concatenate(train), np.concatenate(test)


def feature_params(args):
    params = texture.DEFAULT_PARAMS[args.feature]
    if args.window is None and not args.include_neighbour:
        return params
    if args.feature not in texture.HISTOGRAM_FEATURES:
        raise UserError(f"--window/--include-neighbour apply to {' and '.join(texture.HISTOGRAM_FEATURES)}, "
                        f"not {args.feature}: leave them out")
    if args.window is not None and (args.window < 1 or args.window % 2 == 0):
        raise UserError(f"--window {args.window}: give an odd size, e.g. 3 (1 = no adjacent evaluation)")
    return dataclasses.replace(params, window=params.window if args.window is None else args.window,
                               include_neighbour=args.include_neighbour)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_neu_dir(parser)
    parser.add_argument("--splits", type=int, default=10, help="default: %(default)s")
    parser.add_argument("--per-class", type=int, default=150, help="training images per class (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="splits and cross-validation folds (default: %(default)s)")
    parser.add_argument("--feature", choices=texture.FEATURES, default="AECLBP")
    parser.add_argument("--classifiers", nargs="+", choices=classical.CLASSIFIERS, default=["SVM"])
    parser.add_argument("--window", type=int, help="AECLBP/AELTP adjacent-evaluation window side (default: "
                        f"{texture.AeclbpParams().window}; 1 = plain CLBP/LTP)")
    parser.add_argument("--include-neighbour", action="store_true",
                        help="AECLBP/AELTP: average the neighbour itself into its evaluation window")
    parser.add_argument("--workers", type=int, default=2, help="processes (default: %(default)s)")
    parser.add_argument("--out", help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.splits < 2 or not 0 < args.per_class < 300 or args.workers < 1:
        raise UserError(f"--splits {args.splits} --per-class {args.per_class} --workers {args.workers}: "
                        "give at least 2 splits, 1..299 images per class and 1 or more workers")
    params = feature_params(args)
    images, labels = load_neu(args.neu_dir)
    start = time.perf_counter()
    with tqdm(total=len(images), desc=f"{args.feature} features", unit="image") as bar:
        matrix = features.image_features(images, args.feature, params, args.workers, bar)
    extraction_s = time.perf_counter() - start
    histogram = args.feature in texture.HISTOGRAM_FEATURES
    accuracies = {c: [] for c in args.classifiers}
    chosen = {c: [] for c in args.classifiers}
    splits = random_splits(labels, args.per_class, args.splits, args.seed)
    with threadpool_limits(1):  # parallel processes instead; BLAS threads only spin on a busy machine
        for index, (train, test) in enumerate(splits):
            for classifier in args.classifiers:
                fitted = classical.fit(classifier, matrix[train], labels[train], histogram, args.seed, args.workers)
                accuracy = float((fitted.predict(matrix[test]) == labels[test]).mean())
                accuracies[classifier].append(accuracy)
                chosen[classifier].append(fitted.chosen)
                print(f"split {index + 1:2d}  {args.feature}+{classifier}  {100 * accuracy:6.2f}%  "
                      f"({len(train)} train / {len(test)} test, chosen {fitted.chosen})", flush=True)
    summary = {}
    for classifier, values in accuracies.items():
        mean, std = 100 * np.mean(values), 100 * np.std(values, ddof=1)
        summary[classifier] = {"mean_percent": mean, "std_percent": std, "accuracies": values,
                               "chosen": chosen[classifier]}
        print(f"{args.feature}+{classifier}: {mean:.2f} ± {std:.2f} % over {args.splits} splits "
              f"({args.per_class} training images per class; {texture.describe(args.feature, params)['params']})")
    print(f"feature extraction: {len(images)} images in {extraction_s:.1f} s ({args.workers} workers)")
    if args.out:
        record = provenance.collect(seeds={"splits_and_folds": args.seed}, wall_times={"extraction": extraction_s},
                                    command="tools/extra/song_yan_protocol.py",
                                    feature=texture.describe(args.feature, params), splits=args.splits,
                                    per_class=args.per_class, results=summary)
        atomic.write_text(args.out, json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
