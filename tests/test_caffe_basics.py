"""The Caffe we run is the pinned, patched BVLC build, and its two faces (pycaffe, CLI) work."""
import hashlib
import os
import re
import subprocess
from pathlib import Path

import numpy as np

from sdc import caffe_env

PATCH_DIR = Path(__file__).resolve().parents[1] / "tools" / "caffe" / "caffe-patches"
LOUD = dict(os.environ, GLOG_minloglevel="0", GLOG_logtostderr="1")

TINY_NET = """
name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1
    weight_filler { type: "constant" value: 1 } bias_filler { type: "constant" value: 0.5 } } }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: AVE global_pooling: true } }
"""


def test_build_is_the_pinned_source_with_our_patches():
    info = caffe_env.build_info()
    assert info["orig_sha256"] == "e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c"
    built_with = {p.split(":")[0]: p.split("/")[-1] for p in info["patches"]}
    in_repo = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name for p in PATCH_DIR.glob("*.patch")}
    assert built_with == in_repo, "the Caffe build is stale: re-run tools/caffe/install_caffe.sh"
    assert "0002-protobuf-set-total-bytes-limit.patch" in in_repo.values()


def test_pycaffe_forward_gives_hand_computed_values(caffe, tmp_path):
    (tmp_path / "tiny.prototxt").write_text(TINY_NET)
    net = caffe.Net(str(tmp_path / "tiny.prototxt"), caffe.TEST)
    net.blobs["data"].data[...] = 1.0
    out = net.forward()["pool"]
    assert out.shape == (2, 4, 1, 1)
    # 3x3x3 ones kernel over ones with zero padding on 8x8: 36 corner-free interior sums of 27,
    # 24 edge positions of 18, 4 corners of 12; mean over 64 positions, plus the 0.5 bias.
    expected = (36 * 27 + 24 * 18 + 4 * 12) / 64 + 0.5
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_caffe_cli_times_a_tiny_net(tmp_path):
    (tmp_path / "tiny.prototxt").write_text(TINY_NET)
    run = subprocess.run([str(caffe_env.caffe_bin()), "time", f"-model={tmp_path / 'tiny.prototxt'}",
                          "-iterations=3"], capture_output=True, text=True, timeout=120, env=LOUD)
    assert run.returncode == 0, run.stderr[-2000:]
    log = run.stderr
    assert "Use CPU." in log
    forward = re.search(r"Average Forward pass: ([0-9.]+) ms", log)
    assert forward and float(forward.group(1)) >= 0
    assert re.search(r"conv\s+forward: [0-9.]+ ms", log)


def test_caffe_cli_reports_its_version():
    run = subprocess.run([str(caffe_env.caffe_bin()), "--version"], capture_output=True, text=True, timeout=60)
    assert "caffe version 1.0.0" in run.stdout + run.stderr
