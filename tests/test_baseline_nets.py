"""The baseline nets of Tables 3-4: ETE (a reconstruction, trained from scratch) and CaffeNet (DeCAF)."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from caffe.proto import caffe_pb2
from google.protobuf import text_format

REPO = Path(__file__).resolve().parents[1]
PROTOTXT = REPO / "prototxt"
# (C, H, W) of every ETE blob at 256x256 input: 5 conv + 2 fc learned layers.
ETE_SHAPES = {"data": (3, 256, 256), "scaled": (3, 256, 256), "conv1": (32, 128, 128), "pool1": (32, 64, 64),
              "conv2": (64, 64, 64), "pool2": (64, 32, 32), "conv3": (128, 32, 32), "pool3": (128, 16, 16),
              "conv4": (128, 16, 16), "pool4": (128, 8, 8), "conv5": (128, 8, 8), "pool5": (128, 1, 1),
              "fc6": (512,), "fc7": (6,), "prob": (6,)}
# BVLC/caffe 99bd997 models/bvlc_reference_caffenet/deploy.prototxt
CAFFENET_SHA256 = "922248a4d2f6aac1cc8e7e5dbd996cc2ecd3356480d67c198f6cf96b12311a04"


def parse(name):
    net = caffe_pb2.NetParameter()
    text_format.Parse((PROTOTXT / name).read_text(), net)
    return net


def test_ete_deploy_shapes_and_learned_layers(caffe):
    net = caffe.Net(str(PROTOTXT / "ETE_deploy.prototxt"), caffe.TEST)
    assert {name: blob.data.shape[1:] for name, blob in net.blobs.items()} == ETE_SHAPES
    assert list(net.params) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
    # 1.85 MB of float32: the paper's ETE model is 1.9 MB
    assert 4 * sum(b.data.size for p in net.params.values() for b in p) == 1_845_528


def test_ete_train_val_and_deploy_share_every_layer_but_data_and_outputs():
    def core(name, skip):
        layers = []
        for layer in parse(name).layer:
            if layer.type in skip:
                continue
            copy = caffe_pb2.LayerParameter()
            copy.CopyFrom(layer)
            for param in (copy.convolution_param, copy.inner_product_param):
                param.ClearField("weight_filler")
            layers.append(copy)
        return layers
    assert core("ETE_train_val.prototxt", ("Data", "SoftmaxWithLoss", "Accuracy")) == \
        core("ETE_deploy.prototxt", ("Input", "Softmax"))


def test_ete_reads_the_augmented_lmdb_and_every_test_image_once():
    data = {rule.phase: layer for layer in parse("ETE_train_val.prototxt").layer if layer.type == "Data"
            for rule in layer.include}
    assert data[caffe_pb2.TRAIN].data_param.source == "datasets/work/lmdb/train_aug8_lmdb"
    assert data[caffe_pb2.TEST].data_param.source == "datasets/work/lmdb/test_original_lmdb"
    solver = caffe_pb2.SolverParameter()
    text_format.Parse((REPO / "solvers" / "ETE_solver.prototxt").read_text(), solver)
    assert solver.test_iter[0] * data[caffe_pb2.TEST].data_param.batch_size == 360
    # 30 epochs of 11,520 images; lr steps at 12 and 24 epochs
    assert solver.max_iter * data[caffe_pb2.TRAIN].data_param.batch_size == 30 * 11_520
    assert solver.stepsize * data[caffe_pb2.TRAIN].data_param.batch_size == 12 * 11_520
    assert (solver.type, solver.iter_size, solver.snapshot_prefix) == ("SGD", 1, "runs/paper/ETE/snapshots/ETE")


def test_caffenet_is_the_bvlc_reference_deploy_below_its_header():
    lines = (PROTOTXT / "CaffeNet_deploy.prototxt").read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#")]
    assert lines[:len(header)] == header
    assert hashlib.sha256("".join(lines[len(header):]).encode()).hexdigest() == CAFFENET_SHA256


def test_caffenet_decaf6_shape(caffe):
    net = caffe.Net(str(PROTOTXT / "CaffeNet_deploy.prototxt"), caffe.TEST)
    assert net.blobs["data"].data.shape[1:] == (3, 227, 227)
    assert net.blobs["fc6"].data.shape[1:] == (4096,)
    assert [name for name in net._layer_names if name in ("fc6", "relu6", "drop6")] == ["fc6", "relu6", "drop6"]
    assert list(net.top_names["relu6"]) == ["fc6"]  # in place: after relu6 the fc6 blob is rectified


def write_lmdb(path, count, seed):
    from sdc import lmdb_io
    rng = np.random.default_rng(seed)
    labels = [i % 6 for i in range(count)]
    records = ((lmdb_io.record_key(i, f"img{i}.png"), lmdb_io.encode(rng.integers(0, 256, (256, 256), np.uint8), label))
               for i, label in enumerate(labels))
    lmdb_io.write(path, records, labels, 256, f"fixture {seed}")


def test_ete_trains_from_scratch_with_tools_train(caffe, tmp_path):
    lmdb_dir = tmp_path / "lmdb"
    write_lmdb(lmdb_dir / "train_aug8_lmdb", 8, 0)
    write_lmdb(lmdb_dir / "test_original_lmdb", 6, 1)
    run_dir = tmp_path / "run"
    run = subprocess.run([sys.executable, str(REPO / "tools" / "train.py"), "--variant", "ETE", "--profile", "smoke",
                          "--max-iter", "2", "--lmdb-dir", str(lmdb_dir), "--run-dir", str(run_dir)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "starting from scratch" in run.stdout
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["weights"] == "none: trained from scratch"
    assert "--weights" not in " ".join(provenance["sessions"][0]["caffe_command"])
    net = caffe.Net(str(PROTOTXT / "ETE_deploy.prototxt"), caffe.TEST, weights=str(run_dir / "final.caffemodel"))
    assert net.params["conv1"][0].data.std() > 0 and net.params["fc7"][0].data.shape == (6, 512)
