"""tools/caffe/bundle_caffe.sh: the CPU build, bundled and unpacked elsewhere, runs with an empty
environment through its launcher, holds every library it needs and none the target supplies."""
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from sdc import caffe_env

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "caffe" / "bundle_caffe.sh"
MAX_BYTES = 20 * 1000 * 1000
# What the target machine supplies: the C/C++ runtime (glibc's libraries, libstdc++, libgcc_s) and
# NVIDIA's libraries.
TARGET_LIBS = re.compile(r"^(ld-linux|lib(c|m|mvec|pthread|dl|rt|resolv|util|anl|nsl|stdc\+\+|gcc_s"
                         r"|cuda|cudart|cublas|cublasLt|curand|cudnn|nvblas|nvrtc|nvJitLink)(\.so|_))")

TOY_NET = """
name: "toy"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 4 dim: 3 dim: 8 dim: 8 } shape { dim: 4 }
    data_filler { type: "constant" value: 0.5 } data_filler { type: "constant" value: 1 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: AVE global_pooling: true } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "pool" bottom: "label" top: "loss" }
"""
TOY_SOLVER = """net: "toy.prototxt"
type: "Adam"
base_lr: 0.01
momentum: 0.9
momentum2: 0.999
lr_policy: "fixed"
max_iter: 2
display: 1
snapshot_after_train: false
random_seed: 1
solver_mode: CPU
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "caffe.tar.xz"
    run = subprocess.run(["bash", str(SCRIPT), str(caffe_env.prefix()), "--out", str(out)],
                         capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == str(out)
    elsewhere = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(out) as tar:
        tar.extractall(elsewhere, filter="tar")
    (root,) = elsewhere.iterdir()
    return out, root


def launch(root, *args, cwd):
    """The launcher with an empty environment, as on a machine that knows nothing of this build."""
    return subprocess.run([str(root / "bin" / "caffe-run"), *args], capture_output=True, text=True,
                          env={}, cwd=cwd, timeout=300)


def test_bundle_is_small_and_names_its_build(bundle):
    tarball, root = bundle
    assert tarball.stat().st_size <= MAX_BYTES
    assert root.name == caffe_env.prefix().parent.name
    assert json.loads((root / "BUILD_INFO.json").read_text()) == caffe_env.build_info()
    assert (root / "cuda-libs.txt").read_text() == ""  # a CPU build needs no NVIDIA library
    listed = json.loads((root / "bundle.json").read_text())["sha256"]
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert on_disk - set(listed) == {"bundle.json", "bin/caffe-run"}
    assert (root / caffe_env.PB2_FILE).read_bytes() == (caffe_env.prefix() / caffe_env.PB2_FILE).read_bytes()


# In a process that never imports pycaffe (as on a GPU machine without it): caffe.proto, the build's
# record and the caffe tool, all from the bundle that CAFFE_PREFIX names.
WITHOUT_PYCAFFE = """
import json, sys
from sdc import caffe_env
pb2 = caffe_env.caffe_pb2()
solver = caffe_env.read_proto("solvers/SDC-SN_sgd_solver.prototxt", pb2.SolverParameter())
datum = pb2.Datum.FromString(pb2.Datum(channels=3, height=1, width=1, data=b"abc", label=4).SerializeToString())
print(json.dumps({"pb2": pb2.__file__, "pycaffe_imported": "caffe" in sys.modules, "type": solver.type,
                  "label": datum.label, "variant": caffe_env.build_info()["variant"],
                  "caffe": str(caffe_env.caffe_bin())}))
"""


def test_bundle_serves_caffe_proto_build_info_and_the_tool_without_pycaffe(bundle):
    _, root = bundle
    env = dict(os.environ, CAFFE_PREFIX=str(root), PYTHONPATH=str(REPO / "tools"))
    run = subprocess.run([sys.executable, "-c", WITHOUT_PYCAFFE], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout) == {"pb2": str(root / caffe_env.PB2_FILE), "pycaffe_imported": False,
                                      "type": "SGD", "label": 4, "variant": caffe_env.build_info()["variant"],
                                      "caffe": str(root / "bin" / "caffe-run")}


def test_caffe_proto_from_a_prefix_is_the_module_pycaffe_then_uses():
    code = ("from sdc import caffe_env; pb2 = caffe_env.caffe_pb2(); import caffe; "
            "from caffe.proto import caffe_pb2; print(pb2 is caffe_pb2, caffe.io.caffe_pb2 is pb2)")
    env = dict(os.environ, CAFFE_PREFIX=str(caffe_env.prefix()), PYTHONPATH=str(REPO / "tools"), GLOG_minloglevel="2")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["True", "True"]


def test_bundle_holds_no_library_the_target_supplies(bundle):
    _, root = bundle
    libs = sorted(p.name for p in (root / "lib").iterdir())
    assert "libcaffe.so.1.0.0" in libs and "libopenblas.so.0" in libs and "libprotobuf.so.32" in libs
    assert [name for name in libs if TARGET_LIBS.match(name)] == []


def test_every_library_resolves_inside_the_bundle(bundle):
    _, root = bundle
    for program in ["caffe", "dump_net_io"]:
        ldd = subprocess.run(["ldd", str(root / "bin" / program)], capture_output=True, text=True,
                             env={"LD_LIBRARY_PATH": str(root / "lib")}, check=True).stdout
        resolved = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
        assert "not" not in resolved.values(), ldd
        outside = {name: path for name, path in resolved.items()
                   if not TARGET_LIBS.match(name) and not path.startswith(str(root))}
        assert outside == {}, ldd


def test_launcher_runs_caffe_with_an_empty_environment(bundle, tmp_path):
    _, root = bundle
    version = launch(root, "--version", cwd=tmp_path)
    assert version.returncode == 0 and "caffe version 1.0.0" in version.stdout + version.stderr
    (tmp_path / "toy.prototxt").write_text(TOY_NET)
    timed = launch(root, "time", "-model=toy.prototxt", "-iterations=2", cwd=tmp_path)
    assert timed.returncode == 0, timed.stderr[-2000:]
    assert re.search(r"Average Forward-Backward: [0-9.]+ ms", timed.stderr)
    (tmp_path / "solver.prototxt").write_text(TOY_SOLVER)
    trained = launch(root, "train", "-solver=solver.prototxt", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    losses = [float(x) for x in re.findall(r"\] Iteration \d+(?: \(.*\))?, loss = ([-0-9.e]+)", trained.stderr)]
    assert len(losses) == 3 and losses[2] < losses[0]  # iterations 0, 1, 2: two Adam steps on one batch
    assert "Optimization Done." in trained.stderr


def test_launcher_finds_nvidia_libraries_in_a_wheel_tree_or_names_what_is_missing(bundle, tmp_path):
    _, root = bundle
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(root), str(copy)], check=True)
    (copy / "cuda-libs.txt").write_text("libcudnn.so.99\n")  # a library no system has
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = subprocess.run([str(copy / "bin" / "caffe-run"), "--version"], capture_output=True, text=True,
                             env={"CAFFE_CUDA_SEARCH": str(empty)}, timeout=60)
    assert missing.returncode == 2
    assert missing.stdout == "" and len(missing.stderr.splitlines()) == 1
    assert "libcudnn.so.99 not found" in missing.stderr and "--cuda-libs" in missing.stderr
    wheel_lib = tmp_path / "opt" / "venv" / "site-packages" / "nvidia" / "cudnn" / "lib"
    wheel_lib.mkdir(parents=True)
    (wheel_lib / "libcudnn.so.99").write_bytes(b"")  # found by name; nothing loads it
    found = subprocess.run([str(copy / "bin" / "caffe-run"), "--version"], capture_output=True, text=True,
                           env={"CAFFE_CUDA_SEARCH": str(tmp_path / "opt")}, timeout=60)
    assert found.returncode == 0 and "caffe version 1.0.0" in found.stdout + found.stderr
    given = subprocess.run([str(copy / "bin" / "caffe-run"), "--cuda-libs", str(empty), "--version"],
                           capture_output=True, text=True, env={}, timeout=60)
    assert given.returncode == 2 and "not in --cuda-libs" in given.stderr


def test_not_a_build_is_one_line_error(tmp_path):
    run = subprocess.run(["bash", str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "is not a completed Caffe build" in run.stderr
    assert list(tmp_path.iterdir()) == []
