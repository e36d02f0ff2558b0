"""`--gpu N` is checked before anything is written: a number, a GPU the driver lists, and one that
CUDA_VISIBLE_DEVICES leaves visible under that number (the driver is replaced by a stand-in nvidia-smi
that prints what a two-GPU machine's prints)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdc import gpu
from sdc.errors import UserError

REPO = Path(__file__).resolve().parents[1]
ROWS = [("0", "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6"), ("1", "GPU-2b1d1e0a-5b4c-4f44-9d54-7c4ca1d3e3a1")]


@pytest.fixture
def two_gpus(tmp_path, monkeypatch):
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text("#!/bin/sh\n" + "".join(f"echo '{index}, {uuid}, NVIDIA H200'\n" for index, uuid in ROWS))
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{smi.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv(gpu.VISIBLE_ENV, raising=False)
    return smi.parent


@pytest.mark.parametrize("visible, expected", [
    (None, ROWS), ("1", ROWS[1:]), ("1,0", ROWS[::-1]), ("", []), ("-1", []), ("0,7,1", ROWS[:1]),
    ("GPU-2b1d", ROWS[1:]), ("GPU-", []), ("0,0", ROWS[:1]),
])
def test_visible_gpus_follow_cuda_numbering(visible, expected):
    assert gpu.visible_gpus(ROWS, visible) == expected


def test_a_listed_gpu_passes(two_gpus, monkeypatch):
    gpu.require_device(1)
    monkeypatch.setenv(gpu.VISIBLE_ENV, "1")
    gpu.require_device(0)  # CUDA's device 0 is then the driver's GPU 1


def test_a_gpu_hidden_by_cuda_visible_devices_is_refused(two_gpus, monkeypatch):
    monkeypatch.setenv(gpu.VISIBLE_ENV, "0")
    with pytest.raises(UserError) as error:
        gpu.require_device(1)
    message = str(error.value)
    assert "--gpu 1" in message and "CUDA_VISIBLE_DEVICES='0' leaves 1 of the GPUs" in message
    assert "pass --gpu below 1" in message


def test_a_gpu_the_driver_does_not_list_is_refused(two_gpus):
    with pytest.raises(UserError, match=r"--gpu 2 was asked but nvidia-smi lists \['0: NVIDIA H200', '1: NVIDIA H200'\]"):
        gpu.require_device(2)


def test_a_cpu_build_is_refused_even_with_a_gpu(two_gpus, caffe):
    with pytest.raises(UserError, match="--gpu 0 needs a CUDA build of Caffe, but .* is a cpu build"):
        gpu.require(0)


def run_all(*args, env=None):
    return subprocess.run(["bash", str(REPO / "tools" / "run_all.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("value", ["abc", "0x1", "-1", "1.0", ""])
def test_run_all_refuses_a_gpu_that_is_not_a_number(value, tmp_path):
    run = run_all("--gpu", value, "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results"))
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == f"run_all: error: --gpu must be a GPU number such as 0, not '{value}'\n"
    assert list(tmp_path.iterdir()) == []


def test_run_all_never_runs_the_gpu_argument_as_code(tmp_path, two_gpus):
    marker = tmp_path / "ran"
    run = run_all("--gpu", f"0 if open({str(marker)!r}, 'w') else 0", "--runs-dir", str(tmp_path / "runs"))
    assert run.returncode == 2 and not marker.exists() and "--gpu must be a GPU number" in run.stderr


def test_run_all_checks_cuda_visible_devices_before_writing(tmp_path, two_gpus):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="1")
    run = run_all("--gpu", "1", "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results"),
                  env=env)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("error: --gpu 1 was asked but CUDA_VISIBLE_DEVICES='1' leaves 1 of")
    assert len(run.stderr.splitlines()) == 1 and [p.name for p in tmp_path.iterdir()] == ["bin"]
