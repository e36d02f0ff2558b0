"""Paths with a space and a comma (a clone in `/tmp/sdc caffe,1`): what Caffe's command line does with
them, and how the weights reach `caffe train` all the same."""
import subprocess
from pathlib import Path

import pytest

from sdc import caffe_env, weights
from sdc.errors import UserError

NET = """name: "tiny" force_backward: true
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } shape { dim: 2 }
                     data_filler { type: "gaussian" std: 1 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  inner_product_param { num_output: 6 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""
SOLVER = 'net: "net.prototxt" base_lr: 0.01 lr_policy: "fixed" max_iter: 1 display: 1 ' \
         'snapshot_after_train: false solver_mode: CPU random_seed: 1\n'


@pytest.fixture
def clone(tmp_path, caffe):
    """A clone in a folder named like `sdc caffe,1`: weights under it, a run folder under it."""
    root = tmp_path / "sdc caffe,1"
    run_dir = root / "runs" / "smoke" / "tiny"
    run_dir.mkdir(parents=True)
    (run_dir / "net.prototxt").write_text(NET)
    (run_dir / "solver.prototxt").write_text(SOLVER)
    init = root / "pretrained" / "weights" / "init.caffemodel"
    init.parent.mkdir(parents=True)
    caffe.Net(str(run_dir / "net.prototxt"), caffe.TRAIN).save(str(init))
    return root, run_dir, init


def caffe_train(run_dir, weights_arg):
    return subprocess.run([str(caffe_env.caffe_bin()), "train", "--solver=solver.prototxt",
                           f"--weights={weights_arg}"], cwd=run_dir, capture_output=True, text=True, timeout=120,
                          env={"GLOG_logtostderr": "1"})


def test_caffe_splits_weights_at_the_comma(clone):
    _, run_dir, init = clone
    run = caffe_train(run_dir, init)
    before_comma = str(init).split(",")[0]
    assert run.returncode != 0
    assert f"Finetuning from {before_comma}\n" in run.stderr and f"Couldn't open {before_comma}\n" in run.stderr


def test_the_weights_reach_caffe_relative_to_the_run_folder(clone):
    _, run_dir, init = clone
    arg = weights.caffe_weights_arg(init, run_dir)
    assert arg == "../../../pretrained/weights/init.caffemodel"
    run = caffe_train(run_dir, arg)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"Finetuning from {arg}" in run.stderr and "Optimization Done" in run.stderr


def test_a_path_without_a_comma_is_passed_as_it_is(tmp_path):
    assert weights.caffe_weights_arg(tmp_path / "a b" / "x.caffemodel", tmp_path / "run") == \
        str(tmp_path / "a b" / "x.caffemodel")


def test_a_comma_that_stays_is_refused_in_one_line(tmp_path):
    init = tmp_path / "weights,v2" / "x.caffemodel"
    with pytest.raises(UserError) as error:
        weights.caffe_weights_arg(init, tmp_path / "run")
    assert str(error.value) == (f"{init}: Caffe splits --weights at commas, and this path keeps one even relative "
                                f"to {tmp_path / 'run'}: move the file, or the run folder, to a path without a comma")
