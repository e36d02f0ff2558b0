"""Atomic writes: a crash leaves no half-written output, and the next write of the same name removes
what a killed writer left behind, never what a running writer is still writing."""
import signal
import subprocess
import sys

import pytest

from sdc import atomic

# A writer that stops inside atomic_path, with 1 MB of half-written output, until it is killed.
WRITER = """
import sys, time
from sdc import atomic
with atomic.atomic_path(sys.argv[1]) as tmp:
    tmp.mkdir()
    (tmp / "data.mdb").write_bytes(bytes(1 << 20))
    print("writing", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def writer(tmp_path):
    """A running writer of tmp_path/out/train_lmdb, stopped inside atomic_path; killed at the end."""
    dest = tmp_path / "out" / "train_lmdb"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(dest)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "writing\n"
    yield dest, process
    process.kill()
    process.wait()


def leftovers(dest):
    return sorted(p.name for p in dest.parent.glob(f".{dest.name}.*"))


def test_exception_leaves_the_old_output_and_no_temporary(tmp_path):
    dest = tmp_path / "result.txt"
    atomic.write_text(dest, "old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert dest.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]


def test_the_next_write_removes_what_a_killed_writer_left(writer, capsys):
    dest, process = writer
    process.send_signal(signal.SIGKILL)
    process.wait()
    [left] = leftovers(dest)
    assert (dest.parent / left / "train_lmdb" / "data.mdb").stat().st_size == 1 << 20
    atomic.write_text(dest, "complete")
    assert dest.read_text() == "complete" and leftovers(dest) == []
    assert f"removed {dest.parent / left}, left by an earlier run that was killed" in capsys.readouterr().err


def test_a_running_writer_keeps_its_temporary(writer):
    dest, process = writer
    [running] = leftovers(dest)
    atomic.write_text(dest, "other")
    assert leftovers(dest) == [running] and process.poll() is None
    assert (dest.parent / running / "train_lmdb" / "data.mdb").is_file()


def test_only_temporaries_of_the_same_name_are_removed(writer, tmp_path):
    dest, process = writer
    process.send_signal(signal.SIGKILL)
    process.wait()
    atomic.write_text(dest.parent / "train", "a name that is a prefix of train_lmdb")
    assert len(leftovers(dest)) == 1
