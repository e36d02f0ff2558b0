"""The GPU session's parts that run here: Caffe's dump_net_io (patch 0006), tools/compare_net_io.py,
tools/make_session_nets.py, and tools/gpu_session.sh end to end in its CPU dry-run mode."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import compare_net_io
import make_session_nets
from sdc import caffe_env

REPO = Path(__file__).resolve().parents[1]
QUIET = dict(os.environ, GLOG_minloglevel="2")

LINEAR_NET = """
name: "linear"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 5 } } }
layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def dump(model, out, *flags):
    out.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([str(caffe_env.prefix() / "bin" / "dump_net_io"), f"--model={model}", f"--out={out}",
                          *flags], capture_output=True, text=True, env=QUIET, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return {p.stem: np.load(p) for p in out.glob("*.npy")}


def test_dump_net_io_writes_a_pass_that_checks_by_hand(tmp_path):
    (tmp_path / "linear.prototxt").write_text(LINEAR_NET)
    arrays = dump(tmp_path / "linear.prototxt", tmp_path / "dump", "--blobs=ip")
    assert sorted(arrays) == ["data__ip", "grad__data", "out__loss", "param_grad__ip__0", "param_grad__ip__1"]
    x = np.sin(0.731 * np.arange(5, dtype=np.float32) + 0.3)  # the documented input
    logits, db, dw = arrays["data__ip"][0], arrays["param_grad__ip__1"], arrays["param_grad__ip__0"]
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    # label of image 0 is 0 % 2 = 0: softmax loss gradients are p - onehot(0), W's is that times x.
    np.testing.assert_allclose(db, p - [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(dw, np.outer(db, x), atol=1e-6)
    np.testing.assert_allclose(arrays["out__loss"], -np.log(p[0]), rtol=1e-5)
    assert dw.shape == (3, 5) and arrays["grad__data"].shape == (1, 5)
    assert np.abs(dw).max() > 0.01  # weights were filled (not zero), so the checks above bite


def test_dump_net_io_passes_repeat_exactly_on_the_cpu(tmp_path):
    (tmp_path / "linear.prototxt").write_text(LINEAR_NET)
    first = dump(tmp_path / "linear.prototxt", tmp_path / "a", "--passes=3")
    third = {p.stem: np.load(p) for p in (tmp_path / "a" / "pass3").glob("*.npy")}
    assert sorted(first) == sorted(third)
    for name in first:
        np.testing.assert_array_equal(first[name], third[name])


def test_compare_reports_relative_errors(tmp_path):
    (tmp_path / "ref").mkdir()
    (tmp_path / "gpu").mkdir()
    np.save(tmp_path / "ref" / "a.npy", np.array([1.0, -2.0, 4.0], np.float32))
    np.save(tmp_path / "gpu" / "a.npy", np.array([1.0, -2.0, 4.0004], np.float32))
    np.save(tmp_path / "ref" / "b.npy", np.zeros((2, 2), np.float32))
    np.save(tmp_path / "gpu" / "b.npy", np.zeros((2, 2), np.float32))
    result = compare_net_io.compare(tmp_path / "ref", tmp_path / "gpu", rtol=2e-4)
    assert result["passed"] and result["worst"] == "a"
    assert result["arrays"]["a"]["rel_max"] == pytest.approx(0.0004 / 4, rel=1e-3)
    assert result["arrays"]["a"]["rel_l2"] == pytest.approx(0.0004 / np.sqrt(21), rel=1e-3)
    assert result["arrays"]["b"] == {"rel_max": 0.0, "rel_l2": 0.0}
    assert compare_net_io.compare(tmp_path / "ref", tmp_path / "gpu", rtol=5e-5)["failed"] == ["a"]
    np.save(tmp_path / "gpu" / "b.npy", np.zeros((4,), np.float32))
    (tmp_path / "ref" / "c.npy").write_bytes((tmp_path / "ref" / "a.npy").read_bytes())
    result = compare_net_io.compare(tmp_path / "ref", tmp_path / "gpu", rtol=2e-4)
    assert result["failed"] == ["b", "c"]
    assert result["arrays"]["c"] == {"problem": "missing"}
    run = subprocess.run([sys.executable, str(REPO / "tools" / "compare_net_io.py"), str(tmp_path / "ref"),
                          str(tmp_path / "gpu"), "--rtol", "2e-4", "--label", "x"], capture_output=True, text=True)
    assert run.returncode == 1 and run.stdout.startswith("x: FAIL (2: b, c)")


def test_caffe_engine_nets_differ_only_in_engines(caffe):
    from google.protobuf import text_format
    text = make_session_nets.bench_caffe.timing_net(REPO / "prototxt" / "SDC-SN_deploy.prototxt", 2)
    pb2 = caffe_env.caffe_pb2()
    default = text_format.Parse(text, pb2.NetParameter())
    engined = text_format.Parse(make_session_nets.with_caffe_engine(text), pb2.NetParameter())
    changed = 0
    for before, after in zip(default.layer, engined.layer, strict=True):
        field = make_session_nets.ENGINE_FIELD.get(before.type)
        if field:
            params = getattr(after, field)
            assert params.engine == type(params).CAFFE, before.name
            changed += 1
            params.ClearField("engine")
            if not before.HasField(field):
                after.ClearField(field)
        assert before == after, before.name
    assert {layer.type for layer in default.layer} >= {"Convolution", "Pooling", "ReLU", "SoftmaxWithLoss"}
    assert changed > 50


def test_dry_run_runs_every_step_on_the_cpu(tmp_path):
    run = subprocess.run(["bash", str(REPO / "tools" / "gpu_session.sh"), "dry-run", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=3600)
    summary = (tmp_path / "summary.txt").read_text()
    assert run.returncode == 0, summary + run.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["equivalence.json", "logs.tar.xz", "summary.txt"]
    assert "FAIL" not in summary and "SKIPPED" not in summary
    assert "unit tests (NVIDIA_TF32_OVERRIDE=0): [  PASSED  ]" in summary
    equivalence = json.loads((tmp_path / "equivalence.json").read_text())
    # CPU mode: one engine per variant, first and second pass, each identical to the CPU reference.
    assert len(equivalence) == 6
    for result in equivalence.values():
        assert result["passed"] and all(row["rel_max"] == 0.0 for row in result["arrays"].values())
    timed = [line for line in summary.splitlines() if line.startswith("time SDC-SN")]
    assert len(timed) == 6 and all("Forward-Backward:" in line for line in timed), summary
