"""Caffe Datum LMDBs: written atomically, read back, verified.

A record is what Caffe's Data layer reads: Datum{channels 3, height, width, data (uint8, C x H x W),
label}, under the key ``<8-digit index>_<relative path>`` (convert_imageset's form), so key order
is list order. A ``build.json`` next to data.mdb records what the LMDB was built from.
"""
import contextlib
import json
from pathlib import Path

import lmdb
import numpy as np
from google.protobuf.message import DecodeError

from . import atomic
from .caffe_env import caffe_pb2
from .errors import UserError

INFO_FILE = "build.json"
CHANNELS = 3
AUGMENTED = "train_aug8"   # ETE's 8x augmented training set (tools/build_lmdb.py --only train_aug8)


def test_name(subset):
    """Folder name of a test subset's LMDB: tools/build_lmdb.py writes it, the evaluators read it."""
    return f"test_{subset}_lmdb"


def lmdb_name(target):
    """Folder name of the LMDB tools/build_lmdb.py writes for ``target`` (one of its --only names)."""
    return f"{target}_lmdb" if target in ("train", AUGMENTED) else test_name(target)


def record_key(index, rel):
    return f"{index:08d}_{rel}".encode()


def encode(gray, label):
    """Datum bytes of a grey uint8 image replicated into 3 channels (B = G = R)."""
    data = np.ascontiguousarray(gray, dtype=np.uint8).tobytes() * CHANNELS  # C x H x W planes
    return caffe_pb2().Datum(channels=CHANNELS, height=gray.shape[0], width=gray.shape[1],
                          data=data, label=int(label)).SerializeToString()


def decode(value):
    """(uint8 array C x H x W, label) of Datum bytes."""
    datum = caffe_pb2().Datum.FromString(value)
    if datum.encoded:
        raise UserError("encoded (compressed) Datum records are not supported by this reader")
    array = np.frombuffer(datum.data, dtype=np.uint8)
    return array.reshape(datum.channels, datum.height, datum.width), datum.label


def read_info(path):
    info = Path(path) / INFO_FILE
    return json.loads(info.read_text()) if info.is_file() else None


def require_info(path, fix="run tools/build_lmdb.py"):
    """build.json of the LMDB at ``path``; a UserError saying ``fix`` when there is no built LMDB there."""
    info = read_info(path)
    if not (Path(path) / "data.mdb").is_file() or info is None:
        raise UserError(f"no LMDB at {path}: {fix}")
    return info


def is_current(path, fingerprint):
    info = read_info(path)
    return bool(info) and info.get("fingerprint") == fingerprint


def write(dest, records, labels, side, fingerprint, **info):
    """Build the LMDB at ``dest`` from (key, Datum bytes) pairs in key order, verify it against
    ``labels`` and only then put it in place of ``dest``."""
    map_size = len(labels) * (CHANNELS * side * side + 4096) + (64 << 20)
    with atomic.atomic_path(dest) as tmp:
        env = lmdb.open(str(tmp), map_size=map_size, subdir=True, sync=False, metasync=False)
        try:
            txn = env.begin(write=True)
            for written, (key, value) in enumerate(records, 1):
                txn.put(key, value, append=True)
                if written % 512 == 0:
                    txn.commit()
                    txn = env.begin(write=True)
            txn.commit()
            env.sync(True)
        finally:
            env.close()
        counts = verify(tmp, labels, side)
        (tmp / INFO_FILE).write_text(json.dumps(dict(info, fingerprint=fingerprint, count=len(labels),
                                                     per_label=counts), indent=2) + "\n")


class LmdbSource:
    """The records of a Caffe Datum LMDB, in key order: (key, uint8 C x H x W, label). The package reads its
    LMDBs only through this class; ``fix`` ends the error when there is no LMDB at ``path``."""

    def __init__(self, path, fix="run tools/build_lmdb.py"):
        self.path = Path(path)
        self.fix = fix

    def __str__(self):
        return str(self.path)

    def count(self):
        with self._opened() as env:
            return env.stat()["entries"]

    def read(self, start=0, stop=None):
        with self._opened() as env, env.begin() as txn:
            for index, (key, value) in enumerate(txn.cursor()):
                if stop is not None and index >= stop:
                    break
                if index >= start:
                    yield (key.decode(), *decode(value))

    def get(self, key):
        """(image, label) of the record ``key``, or None when there is none."""
        with self._opened() as env, env.begin() as txn:
            value = txn.get(key.encode())
            return None if value is None else decode(value)

    @contextlib.contextmanager
    def _opened(self):
        if not (self.path / "data.mdb").is_file():
            raise UserError(f"no LMDB at {self.path}: {self.fix}")
        try:
            env = lmdb.open(str(self.path), readonly=True, lock=False, subdir=True)
            try:
                yield env
            finally:
                env.close()
        except (lmdb.Error, DecodeError, ValueError) as e:
            raise UserError(f"{self.path} is not a readable Datum LMDB ({e}): rebuild it with "
                            "tools/build_lmdb.py") from e


def verify(path, expected_labels, side):
    """Check count, shape, key order and labels against the list the LMDB was built from.

    Returns {label: count}; raises a UserError naming the first mismatch.
    """
    counts = {}
    index = -1
    for index, (key, image, label) in enumerate(LmdbSource(path).read()):
        where = f"{path}: record {index} ({key})"
        if index >= len(expected_labels):
            raise UserError(f"{where}: more records than the {len(expected_labels)} expected; rebuild it")
        if not key.startswith(f"{index:08d}_"):
            raise UserError(f"{where}: key out of order; rebuild it")
        if image.shape != (CHANNELS, side, side):
            raise UserError(f"{where}: shape {image.shape}, expected {(CHANNELS, side, side)}; rebuild it")
        if label != expected_labels[index]:
            raise UserError(f"{where}: label {label}, expected {expected_labels[index]}; rebuild it")
        counts[label] = counts.get(label, 0) + 1
    if index + 1 != len(expected_labels):
        raise UserError(f"{path}: {index + 1} records, expected {len(expected_labels)}; rebuild it")
    return counts
