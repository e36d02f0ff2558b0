"""One Table 3 baseline row from features: fit a classifier on the training FeatureSet, classify every
test subset, write the evaluation folder in tools/evaluate.py's format (shared by
tools/classical_baselines.py and tools/decaf_mlr.py)."""
import json
import time
from pathlib import Path

from . import classical, degrade, eval_folder, lmdb_io, provenance

TRAIN = "train"
LATENCY_REPEATS = 20
EXTRACTION_KEYS = ("images", "extraction_s", "extraction_cpu_s", "workers", "cached")


def lmdb_paths(train_lmdb, lmdb_dir):
    """{TRAIN: ``train_lmdb``, subset: its test LMDB under ``lmdb_dir``}, each checked to exist."""
    paths = {TRAIN: Path(train_lmdb), **{s: Path(lmdb_dir) / lmdb_io.test_name(s) for s in degrade.TEST_SUBSETS}}
    for path in paths.values():
        lmdb_io.require_info(path)
    return paths


def source_record(feature_set, lmdb_path):
    """Where a feature set's pixels came from; "records": the fingerprint of the LMDB whose records name
    its images (the pixels themselves may be those records rendered otherwise, e.g. the native 200 px files)."""
    record = feature_set.record
    return {"source": record["source"], "fingerprint": record["fingerprint"], "count": record["images"],
            "records": lmdb_io.require_info(lmdb_path).get("fingerprint")}


def sources(sets, paths):
    """The "train" and "subsets" part of a row's inputs: what its features were computed from
    (``paths``: lmdb_paths, the LMDBs whose records name the images)."""
    return {"train": source_record(sets[TRAIN], paths[TRAIN]), "train_images": sets[TRAIN].record["images"],
            "subsets": {s: source_record(sets[s], paths[s]) for s in degrade.TEST_SUBSETS}}


def is_current(out, inputs):
    """Does ``out`` hold an evaluation of exactly these inputs (the chosen hyper-parameters aside)?"""
    previous = out / eval_folder.ACCURACY_FILE
    if not previous.is_file():
        return False
    recorded = json.loads(previous.read_text()).get("inputs", {})
    return {k: v for k, v in recorded.items() if k != "chosen"} == json.loads(json.dumps(inputs))


def evaluate(out, name, classifier, sets, inputs, latency, command, histogram=False, seed=0, workers=1,
             extra_bytes=0, standardise=True):
    """Fit ``classifier`` on sets[TRAIN], classify each test subset, write ``out``; returns the accuracies.

    ``latency(fitted)``: ms to classify one image from its pixels; ``extra_bytes``: model bytes besides
    the pickled classifier (DeCAF's CaffeNet); ``standardise``: see classical.fit."""
    train = sets[TRAIN]
    start = time.perf_counter()
    fitted = classical.fit(classifier, train.features, train.labels, histogram, seed, workers, standardise)
    fit_s = time.perf_counter() - start
    results = {s: eval_folder.Predictions(sets[s].keys, sets[s].labels, fitted.probabilities(sets[s].features))
               for s in degrade.TEST_SUBSETS}
    predict_s = time.perf_counter() - start - fit_s
    timing = {"device": provenance.device_description(), "wall_s": round(fit_s + predict_s, 2),
              "fit_s": round(fit_s, 2), "predict_s": round(predict_s, 2),
              "images": sum(len(p) for p in results.values()), "cv_workers": workers,
              "feature_extraction": {label: {key: s.record.get(key) for key in EXTRACTION_KEYS}
                                     for label, s in sets.items()},
              "latency_ms_batch1": latency(fitted), "latency_repeats": LATENCY_REPEATS}
    inputs = {**inputs, "chosen": fitted.chosen}
    accuracy = eval_folder.write_eval_dir(out, name, inputs, fitted.size_bytes() + extra_bytes, results, timing,
                                         command=command, seeds={"cv_split_seed": seed},
                                         wall_times={"fit": timing["fit_s"], "predict": timing["predict_s"]})
    eval_folder.print_accuracy(name, accuracy)
    print(f"{name}: fit {fit_s:.1f} s (chosen {fitted.chosen}), predict {predict_s:.1f} s, "
          f"latency {timing['latency_ms_batch1']:.1f} ms/image; results in {out}")
    return accuracy
