"""The DeCAF+MLR baseline end to end on a randomly initialised CaffeNet (the real weights are 244 MB
and not on these machines): shapes and the evaluation folder, not accuracy. And its not-run record."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdc import decaf, degrade, inference, lmdb_io, tables

REPO = Path(__file__).resolve().parents[1]
TOOL = [sys.executable, str(REPO / "tools" / "decaf_mlr.py")]


def write_lmdb(path, per_class, seed):
    rng = np.random.default_rng(seed)
    labels = [label for label in range(6) for _ in range(per_class)]
    records = ((lmdb_io.record_key(i, f"img{i}.png"), lmdb_io.encode(rng.integers(0, 256, (256, 256), np.uint8), label))
               for i, label in enumerate(labels))
    lmdb_io.write(path, records, labels, 256, f"fixture {seed}")


@pytest.fixture(scope="module")
def lmdbs(tmp_path_factory):
    root = tmp_path_factory.mktemp("decaf_lmdb")
    write_lmdb(root / "train_lmdb", 5, 0)   # 5 per class: the 5-fold cross-validation of the MLR's C
    for seed, subset in enumerate(degrade.TEST_SUBSETS, 1):
        write_lmdb(root / f"test_{subset}_lmdb", 1, seed)
    return root


@pytest.fixture(scope="module")
def random_caffenet(caffe, tmp_path_factory):
    net = caffe.Net(str(decaf.DEPLOY), caffe.TEST)
    rng = np.random.default_rng(0)
    for blobs in net.params.values():
        for blob in blobs:
            blob.data[...] = rng.normal(0, 0.01, blob.data.shape)
    path = tmp_path_factory.mktemp("caffenet") / "caffenet_random.caffemodel"
    net.save(str(path))
    return path


def test_features_are_decaf6_of_the_centre_crop(caffe, random_caffenet, lmdbs):
    net = inference.open_net(decaf.DEPLOY, random_caffenet, 4)
    features = decaf.extract(net, lmdbs / "train_lmdb")
    assert features.features.shape == (30, 4096) and features.features.dtype == np.float32
    assert features.labels.tolist() == [label for label in range(6) for _ in range(5)]
    assert (features.features >= 0).all() and (features.features > 0).any()  # after relu6
    key, image, _ = next(lmdb_io.LmdbSource(lmdbs / "train_lmdb").read())
    net.blobs["data"].data[0] = image[:, 14:241, 14:241] - np.array([104, 117, 123])[:, None, None]
    net.forward(end="relu6")
    np.testing.assert_allclose(features.features[0], net.blobs["fc6"].data[0], rtol=1e-5, atol=1e-6)
    assert features.keys[0] == key


def test_pipeline_writes_an_evaluation_folder_the_tables_read(caffe, random_caffenet, lmdbs, tmp_path):
    out = tmp_path / "eval" / "DeCAF+MLR"
    run = subprocess.run(TOOL + ["--out", str(out), "--weights", str(random_caffenet), "--train-lmdb",
                                 str(lmdbs / "train_lmdb"), "--lmdb-dir", str(lmdbs)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads((out / "accuracy.json").read_text())
    assert record["name"] == "DeCAF+MLR" and record["inputs"]["train_images"] == 30
    assert record["inputs"]["feature"]["dimension"] == 4096
    assert {s: record["accuracy"][s]["total"] for s in degrade.TEST_SUBSETS} == {s: 6 for s in degrade.TEST_SUBSETS}
    assert record["accuracy"]["enhanced"]["total"] == 36
    assert record["model_bytes"] > random_caffenet.stat().st_size  # CaffeNet + the fitted classifier
    assert record["timing"]["latency_ms_batch1"] > 0
    assert "DeCAF+MLR" in tables.load_evaluations(tmp_path / "eval")


def test_without_weights_the_row_says_why_and_nothing_else_is_written(lmdbs, tmp_path):
    out = tmp_path / "eval" / "DeCAF+MLR"
    empty = tmp_path / "no_weights"
    empty.mkdir()
    run = subprocess.run(TOOL + ["--out", str(out), "--offline", "--train-lmdb", str(lmdbs / "train_lmdb"),
                                 "--lmdb-dir", str(lmdbs)], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "SDC_PRETRAINED_DIR": str(empty)})
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["not_run.json", "provenance.json"]
    assert tables.load_not_run(tmp_path / "eval") == {
        "DeCAF+MLR": "CaffeNet weights not available (bvlc_reference_caffenet.caffemodel: pass --weights or put "
                     "it under SDC_PRETRAINED_DIR)"}


def test_missing_weights_file_is_one_error_line(lmdbs, tmp_path):
    run = subprocess.run(TOOL + ["--out", str(tmp_path / "out"), "--weights", str(tmp_path / "nope.caffemodel"),
                                 "--train-lmdb", str(lmdbs / "train_lmdb"), "--lmdb-dir", str(lmdbs)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and not (tmp_path / "out").exists()
    assert run.stderr.strip().splitlines() == [
        f"error: --weights {tmp_path}/nope.caffemodel not found: pass bvlc_reference_caffenet.caffemodel "
        "(sha1 in pretrained/readme.md) or omit --weights"]
