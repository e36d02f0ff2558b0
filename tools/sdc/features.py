"""Texture features (sdc.texture) of many images, computed in worker processes.

The features of a Datum LMDB are cached in ``<work_dir>/<feature>/<lmdb name>-<key>.npz``, the key
hashing the LMDB's build.json fingerprint and count with the feature's name, parameters and
version: an LMDB rebuilt from other images, or a changed parameter, gets a new file; an unchanged
one is read back instead of recomputed. Images are channel 0 of the records (grey replicated).
"""
import contextlib
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import atomic, evaluation, lmdb_io, texture
from .errors import UserError

CHUNK = 25  # images per message to a worker process


@dataclass
class FeatureSet:
    keys: list             # LMDB keys, in key order
    labels: np.ndarray     # int64 (N,)
    features: np.ndarray   # float32 (N, D)
    record: dict           # source, fingerprint, feature description, extraction wall and CPU time


def cache_file(work_dir, path, name, params):
    info = lmdb_io.require_info(path)
    identity = {"fingerprint": info.get("fingerprint"), "count": info.get("count"), **texture.describe(name, params)}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return Path(work_dir) / name / f"{Path(path).name}-{key}.npz", identity


def _extract_record(job):
    """(key, label, feature, CPU seconds) of one LMDB record (key, label, grey image)."""
    key, label, image, name, params = job
    began = time.process_time()
    row = texture.extract(name, image, params)
    return key, label, row, time.process_time() - began


def _extract_image(job):
    name, params, image = job
    return texture.extract(name, image, params)


@contextlib.contextmanager
def mapper(workers, chunksize=1):
    """A map function that runs in ``workers`` spawned processes (the builtin map for one)."""
    if workers <= 1:
        yield map
        return
    pool = evaluation.worker_pool(workers, None, ())
    try:
        yield lambda function, jobs: pool.imap(function, jobs, chunksize)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def extract_lmdb(path, name, params, map_=map, progress=None):
    """FeatureSet of every record of the LMDB at ``path``. This process reads the LMDB once, in key
    order; ``map_`` extracts the features (of channel 0) of its records."""
    count = lmdb_io.require_info(path)["count"]
    jobs = ((key, label, np.ascontiguousarray(image[0]), name, params)
            for key, image, label in evaluation.LmdbSource(path).read())
    keys, labels, rows, cpu_s = [], [], [], 0.0
    began = time.perf_counter()
    for key, label, row, row_cpu_s in map_(_extract_record, jobs):
        keys.append(key)
        labels.append(label)
        rows.append(row)
        cpu_s += row_cpu_s
        if progress is not None:
            progress.update(1)
    if not keys:
        raise UserError(f"{path} holds no images: rebuild it with tools/build_lmdb.py")
    if len(keys) != count:
        raise UserError(f"{path}: {len(keys)} records, build.json says {count}: rebuild it with tools/build_lmdb.py")
    record = {"source": str(path), "images": count, "extraction_s": round(time.perf_counter() - began, 2),
              "extraction_cpu_s": round(cpu_s, 2)}
    return FeatureSet(keys, np.array(labels, np.int64), np.stack(rows), record)


def save(dest, features):
    with atomic.atomic_path(dest) as tmp:
        np.savez(tmp, keys=np.array(features.keys), labels=features.labels, features=features.features,
                 record=np.array(json.dumps(features.record)))


def load(path):
    with np.load(path) as data:
        return FeatureSet(data["keys"].tolist(), data["labels"], data["features"], json.loads(str(data["record"])))


def lmdb_features(paths, name, params, work_dir, workers=1, progress=None):
    """{label: FeatureSet} of the LMDBs ``paths`` ({label: path}), from the cache where current;
    the others are extracted by ``workers`` processes and cached. ``progress`` (e.g. tqdm) counts
    extracted images; ``record["cached"]`` says which were read back."""
    plan = {label: cache_file(work_dir, path, name, params) for label, path in paths.items()}
    stale = [label for label, (file, _) in plan.items() if not file.is_file()]
    if progress is not None:
        progress.total = sum(plan[label][1]["count"] for label in stale)
        progress.refresh()
    found = {}
    with mapper(workers if stale else 1, CHUNK) as map_:
        for label, (file, identity) in plan.items():
            if label in stale:
                features = extract_lmdb(paths[label], name, params, map_, progress)
                features.record.update(identity, workers=workers)
                save(file, features)
                features.record["cached"] = False
            else:
                features = load(file)  # the same fingerprint, maybe under another path
                features.record.update(source=str(paths[label]), cached=True)
            found[label] = features
    return found


def image_features(images, name, params, workers=1, progress=None):
    """float32 (N, D) features of a list of grey uint8 images, in ``workers`` processes."""
    rows = []
    with mapper(workers, CHUNK) as map_:
        for row in map_(_extract_image, [(name, params, image) for image in images]):
            rows.append(row)
            if progress is not None:
                progress.update(1)
    return np.stack(rows)
