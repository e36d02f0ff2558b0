"""Write files and directories so that a crash never leaves half-written output behind.

The temporary sibling ``.<name>.<random>/`` holds an flock on its ``.in-use`` file while it is
written; one whose lock is free belongs to a process that was killed (SIGKILL, out of memory)
before it could clean up, and the next atomic write of the same name removes it.
"""
import contextlib
import fcntl
import glob
import os
import shutil
import sys
import tempfile
from pathlib import Path

IN_USE = ".in-use"


def _lock_free(path):
    """True when no process holds an flock on ``path`` (the caller's own probe lock is dropped)."""
    with open(path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def remove_leftovers(dest):
    """Remove the temporary siblings of ``dest`` that no running process is writing; returns them."""
    dest = Path(dest)
    removed = []
    for tmp_dir in sorted(dest.parent.glob(f".{glob.escape(dest.name)}.*")):
        marker = tmp_dir / IN_USE
        if tmp_dir.is_dir() and not tmp_dir.is_symlink() and marker.is_file() and _lock_free(marker):
            shutil.rmtree(tmp_dir, ignore_errors=True)
            removed.append(tmp_dir)
    return removed


@contextlib.contextmanager
def atomic_path(dest):
    """Yield a temporary sibling path; on success it is renamed onto ``dest`` (file or directory)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for leftover in remove_leftovers(dest):
        print(f"removed {leftover}, left by an earlier run that was killed while writing {dest.name}",
              file=sys.stderr)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp = tmp_dir / dest.name
    try:
        with open(tmp_dir / IN_USE, "w") as in_use:
            fcntl.flock(in_use, fcntl.LOCK_EX)
            yield tmp
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_text(dest, text):
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def write_bytes(dest, data):
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
