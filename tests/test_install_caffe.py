"""tools/install_caffe.sh: cached builds are reused, bad source never reaches the cache."""
import subprocess
import sys
import tarfile
from pathlib import Path

from sdc import caffe_env

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "install_caffe.sh"


def install(*args):
    return subprocess.run(["bash", str(SCRIPT), "--no-apt", "--python", sys.executable, *args],
                          capture_output=True, text=True, timeout=600)


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
