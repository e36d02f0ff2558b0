"""Output-folder locks: a second writer stops in one line naming the holder; a killed holder blocks no one."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sdc import lock
from sdc.errors import UserError

REPO = Path(__file__).resolve().parents[1]

HOLDER = """
import sys, time
from sdc import lock
with lock.held(sys.argv[1], "run folder"):
    print("holding", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    folder = tmp_path / "runs" / "SDC-SN"
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), "--tag", "first run"],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "holding\n"
    yield folder, process
    process.kill()
    process.wait()


def test_lock_file_is_beside_the_folder(tmp_path):
    assert lock.lock_path(tmp_path / "eval" / "released" / "SDC-SN") == tmp_path / "eval" / "released" / ".SDC-SN.lock"


def test_second_writer_is_told_who_holds_the_folder(holder):
    folder, process = holder
    with pytest.raises(UserError) as error:
        with lock.held(folder, "run folder"):
            pytest.fail("took a lock another process holds")
    message = str(error.value)
    assert message.startswith(f"run folder {folder} is in use by pid {process.pid} since 20")
    assert "--tag 'first run'" in message and str(lock.lock_path(folder)) in message
    assert "\n" not in message


def test_a_killed_holder_leaves_the_folder_free(holder):
    folder, process = holder
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert lock.lock_path(folder).read_text().startswith(f"pid {process.pid} ")  # its line stays...
    with lock.held(folder) as path:  # ...but the kernel dropped its lock
        assert path.read_text().startswith(f"pid {os.getpid()} since ")
    assert path.read_text() == ""


def test_flock_tool_and_python_exclude_each_other(tmp_path):
    """tools/run_all.sh takes the results lock with flock(1); Python must see it as held, and vice versa."""
    folder = tmp_path / "smoke"
    path = lock.lock_path(folder)
    # As run_all.sh does it: flock on an open descriptor, kept by the process that then waits.
    shell = subprocess.Popen(["bash", "-c", 'exec 8>>"$0"; flock -n 8 && echo locked && exec sleep 600', path],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert shell.stdout.readline() == "locked\n"
        with pytest.raises(UserError, match="is in use by"):
            with lock.held(folder):
                pass
    finally:
        shell.kill()
        shell.wait()
    with lock.held(folder):
        assert subprocess.run(["flock", "-n", str(path), "true"]).returncode == 1


def test_build_lmdb_and_evaluate_stop_while_their_folder_is_held(holder, tmp_path):
    """The LMDB folder and an evaluation folder: the tool stops before reading any input."""
    folder, process = holder
    commands = {
        "LMDB folder": ["tools/build_lmdb.py", "--out", str(folder), "--only", "blur_2",
                        "--external", f"blur_2={tmp_path}"],
        "evaluation folder": ["tools/evaluate.py", "--model", __file__, "--deploy", __file__, "--name", "x",
                              "--out", str(folder), "--list", f"original={tmp_path / 'list.txt'}", "--subsets", "original"],
    }
    (tmp_path / "Cr_1.png").write_bytes(b"")
    (tmp_path / "list.txt").write_text("Cr_1.png 0\n")
    for what, command in commands.items():
        run = subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True)
        assert run.returncode == 2, run.stderr
        assert run.stderr.startswith(f"error: {what} {folder} is in use by pid {process.pid} since "), run.stderr
        assert run.stderr.count("\n") == 1
