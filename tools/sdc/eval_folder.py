"""The evaluation folder: what tools/evaluate.py and the baseline tools write per model and the tables and
figures read. Predictions per test subset (predictions_<subset>.csv), confusion matrices, accuracy.json
(accuracy with its 95 % interval per subset) and provenance.json; or, for a model that was not
evaluated, not_run.json saying why."""
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import atomic, degrade, neu, provenance, stats
from .errors import UserError

NUM_CLASSES = len(neu.CLASSES)
PREDICTION_FIELDS = ("index", "key", "label", "pred", "prob_pred", "prob_label")
DEGRADED = tuple(degrade.SUBSETS)
POOLED = "enhanced"  # the six degraded subsets together
ACCURACY_FILE = "accuracy.json"
NOT_RUN_FILE = "not_run.json"
CONFUSION_FILE = "confusion.json"


@dataclass
class Predictions:
    keys: list            # LMDB key or list-file path of each image, in input order
    labels: np.ndarray    # int, (N,)
    probs: np.ndarray     # float32, (N, NUM_CLASSES)

    @property
    def preds(self):
        return self.probs.argmax(axis=1)

    @property
    def correct(self):
        return self.preds == self.labels

    def confusion(self):
        return confusion_matrix(self.labels, self.preds)

    def __len__(self):
        return len(self.keys)


def confusion_matrix(labels, preds, n=NUM_CLASSES):
    """Counts, rows = true class, columns = predicted class."""
    matrix = np.zeros((n, n), np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(preds)), 1)
    return matrix


def write_predictions(dest, predictions):
    with atomic.atomic_path(dest) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(PREDICTION_FIELDS)
        rows = np.arange(len(predictions))
        for i, key, label, pred in zip(rows, predictions.keys, predictions.labels, predictions.preds):
            probs = predictions.probs[i]
            writer.writerow([i, key, label, pred, f"{probs[pred]:.6f}", f"{probs[label]:.6f}"])


def read_predictions(path):
    """(keys, labels, preds) of a predictions CSV written by write_predictions."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}; run tools/evaluate.py") from e
    if not rows or tuple(rows[0]) != PREDICTION_FIELDS:
        raise UserError(f"{path} is not a predictions file of tools/evaluate.py: run it again")
    return ([r["key"] for r in rows], np.array([int(r["label"]) for r in rows]),
            np.array([int(r["pred"]) for r in rows]))


def confusion_csv(matrix):
    names = [c.prefix for c in neu.CLASSES]
    lines = ["true\\pred," + ",".join(names)]
    lines += [f"{name}," + ",".join(str(v) for v in row) for name, row in zip(names, matrix)]
    return "\n".join(lines) + "\n"


def predictions_file(subset):
    return f"predictions_{subset}.csv"


def clusters_of(subset, keys):
    """What the statistics treat as one sampling unit, per record of ``subset`` (POOLED included): None
    for the original images (each independent), else the base test image of each degraded draw."""
    if subset not in DEGRADED and subset != POOLED:
        return None
    try:
        return [stats.cluster_of(key) for key in keys]
    except ValueError as e:
        raise UserError(f"{subset}: {e}: the draws of one test image must be recognisable to pool them "
                        "(rebuild the subset with tools/make_enhanced.py and tools/build_lmdb.py)") from e


def accuracy_entry(subset, keys, correct):
    """Correct, total, accuracy and the 95 % interval (independent or clustered, see clusters_of) of
    the records ``keys`` of ``subset`` with per-record ``correct``."""
    correct = np.asarray(correct, bool)
    interval = stats.accuracy_interval(correct, clusters_of(subset, keys))
    return {"correct": int(correct.sum()), "total": int(correct.size), "accuracy": float(correct.mean()),
            "ci95": [interval.low, interval.high], "ci95_method": interval.method}


def summarise(results):
    """({subset: accuracy entry}, {subset: confusion}) of {subset: Predictions}, plus POOLED when
    every degraded subset is there."""
    accuracy = {s: accuracy_entry(s, p.keys, p.correct) for s, p in results.items()}
    confusion = {s: p.confusion() for s, p in results.items()}
    if all(s in results for s in DEGRADED):
        accuracy[POOLED] = accuracy_entry(POOLED, sum((results[s].keys for s in DEGRADED), []),
                                          np.concatenate([results[s].correct for s in DEGRADED]))
        confusion[POOLED] = sum(confusion[s] for s in DEGRADED)
    return accuracy, confusion


def write_eval_dir(out, name, inputs, model_bytes, results, timing, gpu=None, command="tools/evaluate.py",
                   seeds=None, wall_times=None):
    """Write an evaluation folder (predictions, confusions, accuracy.json, provenance) as a whole;
    ``command``, ``seeds`` and ``wall_times`` (default: the evaluation's wall_s) go into provenance.json."""
    accuracy, confusion = summarise(results)
    with atomic.atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for subset, predictions in results.items():
            write_predictions(tmp / predictions_file(subset), predictions)
            (tmp / f"confusion_{subset}.csv").write_text(confusion_csv(confusion[subset]))
        (tmp / CONFUSION_FILE).write_text(json.dumps(
            {"classes": [c.prefix for c in neu.CLASSES], "rows": "true class", "columns": "predicted class",
             "matrices": {s: m.tolist() for s, m in confusion.items()}}, indent=1) + "\n")
        record = {"name": name, "inputs": inputs, "model_bytes": model_bytes, "accuracy": accuracy, "timing": timing}
        (tmp / ACCURACY_FILE).write_text(json.dumps(record, indent=2) + "\n")
        provenance.write(tmp, gpu=gpu, seeds=seeds, wall_times=wall_times or {"evaluate": timing.get("wall_s")},
                         command=command, name=name, inputs=inputs)
    return accuracy


def print_accuracy(name, accuracy):
    """One line per subset: accuracy, 95% interval (accuracy_entry), counts."""
    for subset, entry in accuracy.items():
        low, high = entry["ci95"]
        print(f"{name:24s} {subset:9s} {100 * entry['accuracy']:6.2f}%  [{100 * low:.2f}, {100 * high:.2f}]  "
              f"({entry['correct']}/{entry['total']})")


def write_not_run(out, name, reason):
    """An evaluation folder saying only why ``name`` was not evaluated (the tables print the reason)."""
    with atomic.atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        (tmp / NOT_RUN_FILE).write_text(json.dumps({"name": name, "reason": reason}, indent=2) + "\n")
        provenance.write(tmp, command="not run", name=name, reason=reason)
