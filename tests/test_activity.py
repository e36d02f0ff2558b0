"""tools/extra/relu_census.py and sdc.activity: dead ReLU channels and weight movement, on a net built by hand."""
import csv
import subprocess
import sys
from pathlib import Path

import lmdb
import numpy as np
import pytest
from caffe.proto import caffe_pb2

from sdc import activity, lmdb_io

REPO = Path(__file__).resolve().parents[1]
# Two 1x1 filters on the grey input: +1 (passes the bright images) and -1 (0 after the ReLU everywhere).
DEPLOY = """name: "two_units"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "prob" pooling_param { pool: AVE global_pooling: true } }
"""


@pytest.fixture
def two_units(tmp_path, caffe):
    (tmp_path / "deploy.prototxt").write_text(DEPLOY)
    net = caffe.Net(str(tmp_path / "deploy.prototxt"), caffe.TEST)
    net.params["conv"][0].data[...] = np.array([[1, 0, 0], [-1, 0, 0]], np.float32).reshape(2, 3, 1, 1)
    net.params["conv"][1].data[...] = 0
    net.save(str(tmp_path / "trained.caffemodel"))
    net.params["conv"][0].data[...] *= 0.5  # the "start": every weight half as large
    net.save(str(tmp_path / "start.caffemodel"))
    env = lmdb.open(str(tmp_path / "images"), map_size=1 << 20)
    with env.begin(write=True) as txn:
        for i in range(3):  # 250 > every mean value (104/117/123): channel 0 is positive everywhere
            datum = caffe_pb2.Datum(channels=3, height=4, width=4, data=bytes([250]) * 48, label=i)
            txn.put(f"{i:08d}".encode(), datum.SerializeToString())
    env.close()
    return tmp_path


def test_a_unit_that_is_zero_everywhere_is_dead(two_units, caffe):
    net = caffe.Net(str(two_units / "deploy.prototxt"), str(two_units / "trained.caffemodel"), caffe.TEST)
    images = lmdb_io.LmdbSource(two_units / "images").read()
    [relu] = activity.relu_activity(net, images)
    assert (relu.layer, relu.zero_fraction, relu.dead_channels, relu.channels) == ("relu", 0.5, 1, 2)
    [change] = activity.weight_change(two_units / "trained.caffemodel", two_units / "start.caffemodel")
    # ||w - w/2|| / ||w/2|| = 1; ||w|| = sqrt(1 + 1)
    assert change.layer == "conv" and change.change == pytest.approx(1.0) and change.norm == pytest.approx(2 ** 0.5)


def test_census_tool_writes_a_row_per_layer(two_units):
    out = two_units / "census.csv"
    run = subprocess.run([sys.executable, str(REPO / "tools" / "extra" / "relu_census.py"), "--deploy",
                          str(two_units / "deploy.prototxt"), "--start", str(two_units / "start.caffemodel"),
                          "--model", f"hand={two_units / 'trained.caffemodel'}", "--lmdb", str(two_units / "images"),
                          "--images", "2", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "hand: zero ReLU outputs 50%..50% per layer; dead channels: relu 1/2" in run.stdout
    rows = list(csv.DictReader(out.open()))
    assert [(r["layer"], r["kind"], r["zero_fraction"], r["dead_channels"], r["weight_change"]) for r in rows] == [
        ("relu", "relu", "0.5000", "1", ""), ("conv", "weights", "", "", "1")]


def test_census_refuses_a_missing_snapshot(two_units):
    run = subprocess.run([sys.executable, str(REPO / "tools" / "extra" / "relu_census.py"), "--deploy",
                          str(two_units / "deploy.prototxt"), "--start", str(two_units / "start.caffemodel"),
                          "--model", "gone=nope.caffemodel", "--out", str(two_units / "x.csv")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr == "error: caffemodel nope.caffemodel not found: pass an existing snapshot\n"
    assert not (two_units / "x.csv").exists()
