"""The committed 240/60-per-class split and its list files."""
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from sdc import neu, split
from sdc.errors import UserError

SPLITS = Path(__file__).resolve().parents[1] / "datasets" / "splits"


@pytest.fixture(scope="module")
def committed():
    return split.read_list(SPLITS / "train.txt"), split.read_list(SPLITS / "test.txt")


def test_240_train_60_test_per_class_and_disjoint(committed):
    train, test = committed
    assert Counter(label for _, label in train) == {label: 240 for label in range(6)}
    assert Counter(label for _, label in test) == {label: 60 for label in range(6)}
    train_names = {Path(rel).name for rel, _ in train}
    test_names = {Path(rel).name for rel, _ in test}
    assert len(train_names) == 1440 and len(test_names) == 360
    assert not train_names & test_names
    assert train_names | test_names == set(neu.read_manifest())


def test_lines_are_official_paths_with_the_fixed_labels(committed):
    for rel, label in committed[0] + committed[1]:
        assert rel == neu.official_path(Path(rel).name)
        assert label == neu.label_of(rel)


def test_identical_files_stay_on_one_side(committed):
    sides = {Path(rel).name: side for side, entries in zip("train test".split(), committed) for rel, _ in entries}
    digests = {}
    for name, (_, digest) in neu.read_manifest().items():
        digests.setdefault(digest, set()).add(sides[name])
    assert all(len(s) == 1 for s in digests.values())
    assert sides["Pa_101.bmp"] == sides["Pa_105.bmp"]


def test_committed_lists_are_what_the_code_makes():
    train, test = split.make_split(neu.read_manifest(), seed=split.DEFAULT_SEED)
    assert split.list_text(train) == (SPLITS / "train.txt").read_text()
    assert split.list_text(test) == (SPLITS / "test.txt").read_text()


def test_train_order_is_shuffled_across_classes(committed):
    labels = [label for _, label in committed[0]]
    assert max(Counter(labels[:60]).values()) < 30  # a class-sorted list would give 60 of one class


def test_another_seed_gives_another_valid_split():
    train, test = split.make_split(neu.read_manifest(), seed=7)
    reference = split.make_split(neu.read_manifest(), seed=split.DEFAULT_SEED)[1]
    assert set(test) != set(reference)
    assert Counter(neu.label_of(n) for n in test) == {label: 60 for label in range(6)}
    assert not set(train) & set(test)


def test_duplicate_group_is_never_cut():
    names = [f"Cr_{i}.bmp" for i in range(1, 11)]
    digests = {n: n for n in names}
    digests["Cr_2.bmp"] = digests["Cr_3.bmp"] = "same"
    for seed in range(30):
        train, test = split.split_class(names, digests, 5, np.random.default_rng(seed))
        assert len(test) == 5 and len(train) == 5
        assert ("Cr_2.bmp" in test) == ("Cr_3.bmp" in test)


def test_malformed_list_line_is_reported(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("crazing/Cr_1.bmp 0\ncrazing/Cr_2.bmp\n")
    with pytest.raises(UserError, match=r"bad.txt:2: expected '<relative path> <label>'"):
        split.read_list(bad)


def test_first_per_class_keeps_list_order():
    entries = [("a", 0), ("b", 1), ("c", 0), ("d", 0), ("e", 1)]
    assert split.first_per_class(entries, 2) == [("a", 0), ("b", 1), ("c", 0), ("e", 1)]
    assert split.first_per_class(entries, None) == entries
