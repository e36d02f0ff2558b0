"""tools/caffe/install_caffe.sh: cached builds are reused, bad source never reaches the cache, and a CUDA
build that lacks its toolkit or libraries says how to get them."""
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from sdc import caffe_env

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "caffe" / "install_caffe.sh"


def install(*args, env=None):
    return subprocess.run(["bash", str(SCRIPT), "--no-apt", "--python", sys.executable, *args],
                          capture_output=True, text=True, timeout=600, env=env)


def test_second_call_reuses_the_cached_build():
    cache = str(caffe_env.prefix().parents[1])
    keyed = install("--cache", cache, "--print-prefix")  # never builds: a stale build fails here, fast
    assert keyed.returncode == 0 and Path(keyed.stdout.strip()) == caffe_env.prefix(), keyed.stderr
    run = install("--cache", cache)
    assert run.returncode == 0, run.stderr
    assert "cached build found" in run.stderr
    assert Path(run.stdout.strip().splitlines()[-1]) == caffe_env.prefix()


def test_wrong_source_stops_before_building_and_leaves_no_cache_entry(tmp_path):
    fake = tmp_path / "src" / "caffe-99bd997"
    fake.mkdir(parents=True)
    (fake / "CMakeLists.txt").write_text("project(not_caffe)\n")
    tarball = tmp_path / "caffe-99bd997.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(fake, arcname="caffe-99bd997")
    cache = tmp_path / "cache"
    run = install("--cache", str(cache), "--source", str(tarball))
    assert run.returncode != 0
    assert "checksum mismatch" in run.stderr
    assert "e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c" in run.stderr
    assert "configuring" not in run.stderr
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def test_cuda_build_without_a_toolkit_names_both_ways_to_get_one(tmp_path):
    env = dict(os.environ, CUDA_HOME=str(tmp_path / "no-toolkit"))
    run = install("--cuda", "--cache", str(tmp_path / "cache"), env=env)
    assert run.returncode != 0
    assert run.stderr.count("\n") == 1, run.stderr
    assert "--cuda needs the CUDA toolkit" in run.stderr
    assert "nvidia/cuda:*-devel image" in run.stderr and "pip install nvidia-cuda-nvcc" in run.stderr
    assert not (tmp_path / "cache").exists()


def test_cuda_libraries_pip_cannot_fetch_are_named_and_leave_nothing(tmp_path):
    # A toolkit with nvcc 13 but without cuBLAS/cuRAND/cuDNN, and a pip that may not download.
    toolkit = tmp_path / "toolkit"
    (toolkit / "bin").mkdir(parents=True)
    (toolkit / "include").mkdir()
    (toolkit / "include" / "cuda_runtime.h").write_text("")
    nvcc = toolkit / "bin" / "nvcc"
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 13.0, V13.0.88'\necho 'Build cuda_13.0'\n")
    nvcc.chmod(0o755)
    env = dict(os.environ, CUDA_HOME=str(toolkit), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path))
    cache = tmp_path / "cache"
    run = install("--cuda", "--cache", str(cache), env=env)
    assert run.returncode != 0
    assert "could not get nvidia-cublas==13.* nvidia-curand nvidia-cudnn-cu13==9.19.0.56" in run.stderr
    assert "nvidia/cuda:*-cudnn-devel image" in run.stderr
    assert "configuring" not in run.stderr
    assert not cache.exists() or list(cache.iterdir()) == []


def read_only(*folders):
    """A command prefix under which ``folders`` are read-only bind mounts (user and mount namespaces: no root
    needed), as a cache and venv made by another uid look to `docker run --user`."""
    mounts = " && ".join(f"mount --bind {f} {f} && mount -o remount,bind,ro {f}" for f in folders)
    return ["unshare", "--user", "--map-root-user", "--mount", "bash", "-c", f'{mounts} && exec "$0" "$@"']


def test_a_completed_build_is_used_from_a_read_only_cache_and_venv():
    cache, venv = caffe_env.prefix().parents[1], Path(sys.executable).parents[1]
    run = subprocess.run(read_only(cache, venv) + ["bash", str(SCRIPT), "--no-apt", "--cache", str(cache),
                                                   "--venv", str(venv)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "cached build found" in run.stderr and "pycaffe and the caffe tool are now in" in run.stderr
    assert Path(run.stdout.strip().splitlines()[-1]) == caffe_env.prefix()


def test_a_read_only_cache_without_the_build_stops_in_one_line(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    run = subprocess.run(read_only(cache) + ["bash", str(SCRIPT), "--no-apt", "--python", sys.executable,
                                             "--cache", str(cache)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith(f"install_caffe: error: no build for these options in {cache}, which uid 0 cannot "
                                 "write: set SDC_CAFFE_CACHE (or --cache) to a writable folder")
    assert run.stderr.count("\n") == 1 and list(cache.iterdir()) == []
