"""The fixed train/test split of NEU-CLS and the Caffe list files that hold it.

List files are Caffe ImageData/convert_imageset lists: ``<relative path> <label>`` per line.
"""
from pathlib import Path

import numpy as np

from . import atomic, neu
from .errors import UserError

TEST_PER_CLASS = 60
TRAIN_PER_CLASS = 240
DEFAULT_SEED = 2019


def split_class(names, digests, n_test, rng):
    """(train, test) names of one class; byte-identical files stay on the same side.

    Groups of identical files are visited in a random order and go to the test side while they
    fit, so the test side gets exactly ``n_test`` files as long as enough single files exist.
    """
    groups = {}
    for name in sorted(names, key=neu.sort_key):
        groups.setdefault(digests[name], []).append(name)
    groups = list(groups.values())
    train, test = [], []
    for index in rng.permutation(len(groups)):
        group = groups[index]
        (test if len(test) + len(group) <= n_test else train).extend(group)
    if len(test) != n_test:
        prefix = neu.CLASSES[neu.label_of(names[0])].prefix
        raise UserError(f"cannot put exactly {n_test} {prefix} files on the test side: the manifest "
                        f"has too few distinct files of that class")
    return train, test


def make_split(manifest_entries, seed=DEFAULT_SEED, n_test=TEST_PER_CLASS):
    """(train, test) file names. Train is in one seeded random order (the Caffe training order,
    as convert_imageset --shuffle would give); test is sorted by class and number."""
    digests = {name: digest for name, (_, digest) in manifest_entries.items()}
    train, test = [], []
    for label in range(len(neu.CLASSES)):
        names = [n for n in digests if neu.label_of(n) == label]
        class_train, class_test = split_class(names, digests, n_test, np.random.default_rng([seed, label]))
        train += class_train
        test += sorted(class_test, key=neu.sort_key)
    order = np.random.default_rng([seed, len(neu.CLASSES)]).permutation(len(train))
    return [train[i] for i in order], test


def list_text(names):
    return "".join(f"{neu.official_path(n)} {neu.label_of(n)}\n" for n in names)


def write_list(path, names):
    atomic.write_text(path, list_text(names))


def read_list(path):
    """[(relative path, label)] of a Caffe list file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"list file {path} not found: run tools/make_split.py (or pass the right folder)")
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise UserError(f"{path}:{number}: expected '<relative path> <label>', got {line!r}")
        entries.append((parts[0], int(parts[1])))
    return entries


def first_per_class(entries, per_class):
    """The first ``per_class`` entries of each label, in list order (the CI smoke subset)."""
    if per_class is None:
        return list(entries)
    seen, kept = {}, []
    for rel, label in entries:
        if seen.get(label, 0) < per_class:
            seen[label] = seen.get(label, 0) + 1
            kept.append((rel, label))
    return kept
