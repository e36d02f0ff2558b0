"""Batched pycaffe inference of a deploy net over an LMDB or a Caffe list file; predictions and
confusion matrices.

The deploy net's input is reshaped once to the batch size; the last, partial batch is zero-padded
and only its real rows are kept (in the TEST phase every image's output depends on that image only).
Preprocessing is what the training Data layer does: uint8 BGR C x H x W minus the mean 104/117/123.
"""
import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import atomic, degrade, lmdb_io, neu, netcheck, provenance, split, stats
from .caffe_env import caffe_pb2, import_caffe, read_proto
from .errors import UserError

MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)
NUM_CLASSES = len(neu.CLASSES)
WORKER_BLAS_THREADS = 1  # per CPU evaluation process: the worker processes and the in-process path alike
DEFAULT_BATCH = 10  # on the CPU, batch 10 is as fast as 50 (Caffe loops over images) in a quarter of the memory
INPUT_BLOB = "data"
OUTPUT_BLOB = "prob"
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


def open_net(deploy, model, batch, gpu=None):
    """Any deploy net with ``model``'s weights (checked blob by blob first), its input reshaped to ``batch``."""
    for path, what in ((deploy, "deploy prototxt"), (model, "caffemodel")):
        if not Path(path).is_file():
            raise UserError(f"{what} {path} not found: pass an existing file")
    read_proto(deploy, caffe_pb2().NetParameter(), fix="pass a prototxt/*_deploy.prototxt")
    caffe = import_caffe()
    if gpu is None:
        caffe.set_mode_cpu()
    else:
        caffe.set_device(gpu)
        caffe.set_mode_gpu()
    net = netcheck.load(deploy, model)
    if INPUT_BLOB not in net.inputs:
        raise UserError(f"{deploy}: expected input blob '{INPUT_BLOB}', found inputs {net.inputs}: "
                        "pass a prototxt/*_deploy.prototxt")
    shape = net.blobs[INPUT_BLOB].data.shape
    net.blobs[INPUT_BLOB].reshape(batch, *shape[1:])
    net.reshape()
    return net


def load_net(deploy, model, batch, gpu=None):
    """open_net() of a NEU classifier: its output blob '{OUTPUT_BLOB}' holds the six class probabilities."""
    net = open_net(deploy, model, batch, gpu)
    if OUTPUT_BLOB not in net.outputs:
        raise UserError(f"{deploy}: expected output blob '{OUTPUT_BLOB}', found outputs {net.outputs}: "
                        "pass a prototxt/*_deploy.prototxt")
    if net.blobs[OUTPUT_BLOB].data.shape[1] != NUM_CLASSES:
        raise UserError(f"{deploy}: '{OUTPUT_BLOB}' has {net.blobs[OUTPUT_BLOB].data.shape[1]} classes, "
                        f"expected {NUM_CLASSES}")
    return net


class LmdbSource:
    """The records of a Caffe Datum LMDB, in key order: (key, uint8 C x H x W, label)."""

    def __init__(self, path):
        self.path = Path(path)

    def __str__(self):
        return str(self.path)

    def count(self):
        return sum(1 for _ in self._records(0, None, decode=False))

    def read(self, start=0, stop=None):
        return self._records(start, stop, decode=True)

    def _records(self, start, stop, decode):
        import lmdb
        from google.protobuf.message import DecodeError
        if not (self.path / "data.mdb").is_file():
            raise UserError(f"no LMDB at {self.path}: run tools/build_lmdb.py")
        try:
            env = lmdb.open(str(self.path), readonly=True, lock=False, subdir=True)
            try:
                with env.begin() as txn:
                    for index, (key, value) in enumerate(txn.cursor()):
                        if stop is not None and index >= stop:
                            break
                        if index >= start:
                            yield (key.decode(), *lmdb_io.decode(value)) if decode else key
            finally:
                env.close()
        except (lmdb.Error, DecodeError, ValueError) as e:
            raise UserError(f"{self.path} is not a readable Datum LMDB ({e}): rebuild it with "
                            "tools/build_lmdb.py") from e


class ListSource:
    """The images of a Caffe list file, paths relative to ``root`` (default: the list file's folder):
    (relative path, uint8 3 x 256 x 256, label). Images of another size get the LMDB builder's
    bilinear resize; grey is replicated into B, G, R."""

    def __init__(self, list_path, root=None):
        self.path = Path(list_path)
        self.root = Path(root) if root is not None else self.path.parent

    def __str__(self):
        return str(self.path)

    def count(self):
        return len(split.read_list(self.path))

    def read(self, start=0, stop=None):
        side = neu.NETWORK_SIDE
        for rel, label in split.read_list(self.path)[start:stop]:
            image = neu.load(self.root / rel)
            if image.shape != (side, side):
                image = neu.resize_bilinear(image, side)
            yield rel, np.broadcast_to(image, (3, side, side)), label


def batches(images, batch):
    """Lists of up to ``batch`` (key, image, label) items."""
    chunk = []
    for item in images:
        chunk.append(item)
        if len(chunk) == batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def centre_crop(image, height, width):
    top, left = (image.shape[1] - height) // 2, (image.shape[2] - width) // 2
    return image[:, top:top + height, left:left + width]


def load_batch(data, chunk, source, keys, labels, crop=False):
    """Put a chunk of (key, uint8 C x H x W image, label) into the input blob ``data`` minus the mean
    (rows past the chunk zeroed), appending keys and labels; ``crop``: take the centre of larger
    images. ``source`` names the input in errors."""
    expected = data.shape[1:]
    for offset, (key, image, label) in enumerate(chunk):
        if crop and all(have >= need for have, need in zip(image.shape[1:], expected[1:])):
            image = centre_crop(image, *expected[1:])
        if image.shape != expected:
            raise UserError(f"{source}: {key} has shape {image.shape}, the net expects {expected}"
                            f"{' or larger' if crop else ''}: rebuild the input with tools/build_lmdb.py")
        if not 0 <= label < NUM_CLASSES:
            raise UserError(f"{source}: {key} has label {label}, expected 0..{NUM_CLASSES - 1}")
        data[offset] = image
        keys.append(key)
        labels.append(label)
    data[len(chunk):] = 0
    data -= MEAN_BGR[:, None, None]


def predict(net, images, source, progress=None):
    """Forward every (key, image, label) of ``images`` through ``net``; ``source`` names the input in
    errors. ``progress`` (e.g. a tqdm bar) is updated by the number of images of each batch."""
    data = net.blobs[INPUT_BLOB].data
    keys, labels, probs = [], [], []
    for chunk in batches(images, data.shape[0]):
        load_batch(data, chunk, source, keys, labels)
        out = net.forward()[OUTPUT_BLOB]
        probs.append(out[:len(chunk)].reshape(len(chunk), NUM_CLASSES).copy())
        if progress is not None:
            progress.update(len(chunk))
    if not keys:
        raise UserError(f"{source} holds no images")
    return Predictions(keys, np.array(labels, np.int64), np.concatenate(probs))


def median_ms(function, repeats):
    """Median wall time of ``function()`` in ms over ``repeats`` calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def latency_ms(deploy, model, image, repeats, gpu=None):
    """Median wall time of one batch-1 forward pass (preprocessed ``image``), after one warm-up pass."""
    net = open_net(deploy, model, 1, gpu)
    net.blobs[INPUT_BLOB].data[0] = image - MEAN_BGR[:, None, None]
    return median_ms(net.forward, repeats)


def blas_threads(count):
    """A ``with`` context in which the BLAS libraries loaded in this process (Caffe's OpenBLAS among
    them) use ``count`` threads."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(count, user_api="blas")


def worker_pool(workers, initializer, initargs):
    """A pool of ``workers`` fresh processes with WORKER_BLAS_THREADS BLAS threads, each set up by ``initializer``.

    Caffe's CPU layers run one image at a time and only the matrix products use BLAS threads, so
    one single-threaded process per core is faster than one process with a thread per core.
    Processes are spawned, not forked: a fork of a process with BLAS threads can deadlock.
    """
    import multiprocessing
    import os
    saved = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = str(WORKER_BLAS_THREADS)
    try:
        return multiprocessing.get_context("spawn").Pool(workers, initializer, initargs)
    finally:
        if saved is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = saved


_worker_net = []


def _load_worker_net(deploy, model, batch):
    _worker_net.append(load_net(deploy, model, batch))


def _predict_shard(job):
    source, start, stop = job
    return predict(_worker_net[0], source.read(start, stop), str(source))


def predict_sources(deploy, model, sources, batch, workers=1, gpu=None, progress=None, shard=None):
    """{name: Predictions} of every source ({name: LmdbSource or ListSource}), in order.

    On the CPU with ``workers`` > 1, shards of ``shard`` images (default 10 batches) go to that many
    worker processes; on a GPU, or with one worker, the net runs in this process, with the workers'
    BLAS thread count: a matrix product split over another number of threads sums in another order,
    so the probabilities would depend on ``workers`` in their last bits.
    """
    if gpu is not None or workers <= 1:
        net = load_net(deploy, model, batch, gpu)
        with blas_threads(WORKER_BLAS_THREADS):
            return {name: predict(net, source.read(), str(source), progress) for name, source in sources.items()}
    load_net(deploy, model, 1)  # fail here, with one clear error, rather than in every worker
    shard = shard or 10 * batch
    jobs = []
    for name, source in sources.items():
        count = source.count()
        if count == 0:
            raise UserError(f"{source} holds no images")
        jobs += [(name, (source, start, start + shard)) for start in range(0, count, shard)]
    parts = {name: [] for name in sources}
    with worker_pool(workers, _load_worker_net, (str(deploy), str(model), batch)) as pool:
        for (name, _), part in zip(jobs, pool.imap(_predict_shard, [job for _, job in jobs])):
            parts[name].append(part)
            if progress is not None:
                progress.update(len(part))
    return {name: Predictions(sum((p.keys for p in ps), []), np.concatenate([p.labels for p in ps]),
                              np.concatenate([p.probs for p in ps]))
            for name, ps in parts.items()}


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
