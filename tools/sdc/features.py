"""Texture features (sdc.texture) of many images, computed in worker processes.

Images come from an ImageSource: the records of a Datum LMDB (channel 0, grey replicated), those
records resized to another side, or the files the records were made from (same keys, same order).
The features of a source are cached in ``<work_dir>/<feature>/<source name>-<key>.npz``, the key
hashing the source's identity (the LMDB's build.json fingerprint and count, and for a resized or
file-backed source what changes its pixels) with the feature's name, parameters and version: an
LMDB rebuilt from other images, or a changed parameter, gets a new file; an unchanged one is read
back instead of recomputed.
"""
import contextlib
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import atomic, inference, lmdb_io, neu, provenance, texture
from .errors import UserError

CHUNK = 25  # images per message to a worker process


@dataclass
class FeatureSet:
    keys: list             # LMDB keys, in key order
    labels: np.ndarray     # int64 (N,)
    features: np.ndarray   # float32 (N, D)
    record: dict           # source, fingerprint, feature description, extraction wall and CPU time


@dataclass(frozen=True)
class ImageSource:
    """Grey uint8 images to compute features of. ``identity`` is what the cache key hashes (always a
    "fingerprint" and a "count"); ``read()`` yields (key, label, image) in a fixed order."""
    name: str              # file-name stem of its cache files
    description: str       # where the pixels come from, for the records
    identity: dict
    read: Callable


def _resized(image, side):
    return image if side is None or image.shape == (side, side) else neu.resize_bilinear(image, side)


def relative_path(key):
    """The list-file path inside an LMDB key (the inverse of lmdb_io.record_key)."""
    return key.split("_", 1)[1]


def lmdb_images(path, side=None):
    """Channel 0 of the records of the Datum LMDB at ``path``, bilinearly resized to ``side`` x
    ``side`` when given (the records as stored otherwise)."""
    info = lmdb_io.require_info(path)
    identity = {"fingerprint": info.get("fingerprint"), "count": info.get("count")}
    if side is not None:
        identity["side"] = side

    def read():
        for key, image, label in lmdb_io.LmdbSource(path).read():
            yield key, label, _resized(np.ascontiguousarray(image[0]), side)
    shown = provenance.shown(path)
    where = shown if side is None else f"{shown}, resized to {side}x{side}"
    return ImageSource(Path(path).name, where, identity, read)


def file_images(path, locate, files_identity, files_description):
    """The images the records of the LMDB at ``path`` stand for, read from files instead (as they
    are, no resize): same keys, labels and order; ``locate(relative path)`` gives a record's file (None: not there).
    ``files_identity`` names the file set's content (a manifest or generation fingerprint)."""
    info = lmdb_io.require_info(path)
    fingerprint = hashlib.sha256(json.dumps([info.get("fingerprint"), files_identity]).encode()).hexdigest()
    identity = {"fingerprint": fingerprint, "count": info.get("count"), "files": files_identity}

    def read():
        for key, _, label in lmdb_io.LmdbSource(path).read():
            file = locate(relative_path(key))
            if file is None or not Path(file).is_file():
                raise UserError(f"{file or relative_path(key)} not found (record {key} of {path}): pass the "
                                "folder its LMDB was built from")
            yield key, label, neu.load(file)
    return ImageSource(Path(path).name, f"{files_description} (the records of {provenance.shown(path)})", identity, read)


def cache_file(work_dir, source, name, params):
    identity = {**source.identity, **texture.describe(name, params)}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return Path(work_dir) / name / f"{source.name}-{key}.npz", identity


def _extract_record(job):
    """(key, label, feature, CPU seconds) of one record (key, label, grey image)."""
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
    pool = inference.worker_pool(workers, None, ())
    try:
        yield lambda function, jobs: pool.imap(function, jobs, chunksize)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def extract(source, name, params, map_=map, progress=None):
    """FeatureSet of every image of ``source``. This process reads the source once, in its order;
    ``map_`` extracts the features."""
    count = source.identity["count"]
    jobs = ((key, label, image, name, params) for key, label, image in source.read())
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
        raise UserError(f"{source.description} holds no images: rebuild it with tools/build_lmdb.py")
    if len(keys) != count:
        raise UserError(f"{source.description}: {len(keys)} records, build.json says {count}: "
                        "rebuild it with tools/build_lmdb.py")
    record = {"source": source.description, "images": count, "extraction_s": round(time.perf_counter() - began, 2),
              "extraction_cpu_s": round(cpu_s, 2)}
    return FeatureSet(keys, np.array(labels, np.int64), np.stack(rows), record)


def save(dest, features):
    with atomic.atomic_path(dest) as tmp:
        np.savez(tmp, keys=np.array(features.keys), labels=features.labels, features=features.features,
                 record=np.array(json.dumps(features.record)))


def load(path):
    with np.load(path) as data:
        return FeatureSet(data["keys"].tolist(), data["labels"], data["features"], json.loads(str(data["record"])))


def source_features(sources, name, params, work_dir, workers=1, progress=None):
    """{label: FeatureSet} of the ImageSources ``sources`` ({label: source}), from the cache where
    current; the others are extracted by ``workers`` processes and cached. ``progress`` (e.g. tqdm)
    counts extracted images; ``record["cached"]`` says which were read back."""
    plan = {label: cache_file(work_dir, source, name, params) for label, source in sources.items()}
    stale = [label for label, (file, _) in plan.items() if not file.is_file()]
    if progress is not None:
        progress.total = sum(plan[label][1]["count"] for label in stale)
        progress.refresh()
    found = {}
    with mapper(workers if stale else 1, CHUNK) as map_:
        for label, (file, identity) in plan.items():
            if label in stale:
                features = extract(sources[label], name, params, map_, progress)
                features.record.update(identity, workers=workers)
                save(file, features)
                features.record["cached"] = False
            else:
                features = load(file)  # the same identity, maybe under another path
                features.record.update(source=sources[label].description, cached=True)
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
