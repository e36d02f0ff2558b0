"""Datum LMDBs: round trip, verification, atomic builds, Caffe's own Data layer, the build tool."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdc import lmdb_io, neu
from sdc.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def records(images, labels, names=None):
    names = names or [f"img{i}.png" for i in range(len(images))]
    return [(lmdb_io.record_key(i, n), lmdb_io.encode(im, lab))
            for i, (im, lab, n) in enumerate(zip(images, labels, names))]


@pytest.fixture
def sample(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(5)]
    labels = [0, 3, 5, 1, 3]
    dest = tmp_path / "db"
    lmdb_io.write(dest, iter(records(images, labels)), labels, 8, "fp1", note="test")
    return dest, images, labels


def test_datum_is_three_equal_planes():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    planes, label = lmdb_io.decode(lmdb_io.encode(image, 4))
    assert planes.shape == (3, 3, 4) and label == 4
    for channel in planes:
        np.testing.assert_array_equal(channel, image)


def test_round_trip_reproduces_pixels_labels_and_order(sample):
    dest, images, labels = sample
    read = list(lmdb_io.LmdbSource(dest).read())
    assert [key for key, _, _ in read] == [f"{i:08d}_img{i}.png" for i in range(5)]
    assert [label for _, _, label in read] == labels
    for (_, planes, _), image in zip(read, images):
        np.testing.assert_array_equal(planes, np.stack([image] * 3))
    info = json.loads((dest / "build.json").read_text())
    assert info["count"] == 5 and info["fingerprint"] == "fp1" and info["note"] == "test"
    assert lmdb_io.is_current(dest, "fp1") and not lmdb_io.is_current(dest, "fp2")


def test_verify_names_the_mismatch(sample):
    dest, _, labels = sample
    assert lmdb_io.verify(dest, labels, 8) == {0: 1, 1: 1, 3: 2, 5: 1}
    with pytest.raises(UserError, match=r"record 1 \(00000001_img1.png\): label 3, expected 2"):
        lmdb_io.verify(dest, [0, 2, 5, 1, 3], 8)
    with pytest.raises(UserError, match="5 records, expected 6"):
        lmdb_io.verify(dest, labels + [0], 8)
    with pytest.raises(UserError, match=r"shape \(3, 8, 8\), expected \(3, 9, 9\)"):
        lmdb_io.verify(dest, labels, 9)


def test_failed_build_leaves_the_old_lmdb(sample):
    dest, images, labels = sample

    def broken():
        yield records(images, labels)[0]
        raise RuntimeError("decoder crashed")
    with pytest.raises(RuntimeError):
        lmdb_io.write(dest, broken(), labels, 8, "fp2")
    assert lmdb_io.is_current(dest, "fp1")
    assert [p.name for p in dest.parent.iterdir()] == ["db"]


def test_caffe_data_layer_reads_our_records(sample, caffe, tmp_path):
    dest, images, labels = sample
    net_file = tmp_path / "read.prototxt"
    net_file.write_text(f"""
layer {{ name: "data" type: "Data" top: "data" top: "label"
  data_param {{ source: "{dest}" backend: LMDB batch_size: 5 }} }}""")
    net = caffe.Net(str(net_file), caffe.TEST)
    net.forward()
    np.testing.assert_array_equal(net.blobs["data"].data, np.stack([[im] * 3 for im in images]).astype(np.float32))
    np.testing.assert_array_equal(net.blobs["label"].data, labels)


def test_build_tool_smoke_and_skip(neu_dir, tmp_path):
    command = [sys.executable, "tools/build_lmdb.py", "--neu-dir", str(neu_dir), "--out", str(tmp_path),
               "--only", "train", "original", "--per-class", "2", "--jobs", "2"]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    train = list(lmdb_io.LmdbSource(tmp_path / "train_lmdb").read())
    assert len(train) == 12 and train[0][1].shape == (3, 256, 256)
    key, planes, _ = train[0]
    resized = neu.resize_bilinear(neu.load(neu_dir / key.split("_", 1)[1]), 256)
    np.testing.assert_array_equal(planes, np.stack([resized] * 3))
    test_labels = [label for _, _, label in lmdb_io.LmdbSource(tmp_path / "test_original_lmdb").read()]
    assert test_labels == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.count("up to date") == 2


def test_dihedral_transforms_by_hand():
    import build_lmdb
    image = np.array([[1, 2], [3, 4]], np.uint8)
    expected = {"rot0": [[1, 2], [3, 4]], "rot90": [[2, 4], [1, 3]], "rot180": [[4, 3], [2, 1]],
                "rot270": [[3, 1], [4, 2]], "rot0_flip": [[2, 1], [4, 3]], "rot90_flip": [[4, 2], [3, 1]],
                "rot180_flip": [[3, 4], [1, 2]], "rot270_flip": [[1, 3], [2, 4]]}
    assert build_lmdb.DIHEDRAL == tuple(expected)
    for name, pixels in expected.items():
        np.testing.assert_array_equal(build_lmdb.dihedral(image, name), pixels, err_msg=name)


def test_augmented_training_lmdb_holds_every_image_eight_times_shuffled(neu_dir, tmp_path):
    command = [sys.executable, "tools/build_lmdb.py", "--neu-dir", str(neu_dir), "--out", str(tmp_path),
               "--only", "train", "train_aug8", "--per-class", "1", "--jobs", "2"]
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    plain = {key.split("_", 1)[1]: (planes, label)
             for key, planes, label in lmdb_io.LmdbSource(tmp_path / "train_lmdb").read()}
    augmented = list(lmdb_io.LmdbSource(tmp_path / "train_aug8_lmdb").read())
    assert len(augmented) == 48 and json.loads((tmp_path / "train_aug8_lmdb/build.json").read_text())["count"] == 48
    seen = {}
    for index, (key, planes, label) in enumerate(augmented):
        rel, transform = key.split("_", 1)[1].split("@")
        assert key.startswith(f"{index:08d}_")
        original, original_label = plain[rel]
        assert label == original_label
        k = int(transform[3:].removesuffix("_flip")) // 90
        expected = np.rot90(original, k, axes=(1, 2))
        np.testing.assert_array_equal(planes, expected[:, :, ::-1] if transform.endswith("_flip") else expected)
        seen.setdefault(rel, set()).add(transform)
    assert all(len(t) == 8 for t in seen.values()) and len(seen) == 6
    labels = [label for _, _, label in augmented]
    assert labels != sorted(labels)  # stored shuffled: Caffe's Data layer reads in key order


def test_provenance_keeps_both_calls_of_run_all(neu_dir, tmp_path):
    """run_all.sh builds the 8 LMDBs and then train_aug8 into one folder: one record must cover both."""
    for only in ("train", "train_aug8"):
        command = [sys.executable, "tools/build_lmdb.py", "--neu-dir", str(neu_dir), "--out", str(tmp_path),
                   "--only", only, "--per-class", "1", "--jobs", "2"]
        assert subprocess.run(command, cwd=REPO, capture_output=True, text=True).returncode == 0
    record = json.loads((tmp_path / "provenance.json").read_text())
    assert record["inputs"] == {"train": 6, "train_aug8": 48}
    assert sorted(record["wall_times_s"]) == ["train", "train_aug8"]
    assert record["seeds"] == {"train_aug8_order": 42}
