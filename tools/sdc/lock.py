"""One writer at a time per output folder: an flock on a lock file beside the folder that names its holder.

The lock file of ``<parent>/<name>`` is ``<parent>/.<name>.lock`` (beside, not inside, so that a folder
replaced as a whole keeps its lock). It holds one line, ``pid <pid> since <UTC time>: <command>``,
written by the holder; tools/run_all.sh writes the same line with flock(1). The kernel drops the lock
when its holder exits, however it exits, so a leftover lock file never blocks anyone.
"""
import contextlib
import fcntl
import os
import shlex
import sys
import time
from pathlib import Path

from .errors import UserError


def lock_path(folder):
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


def holder_line(command=None):
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"pid {os.getpid()} since {started}: {command or shlex.join(sys.argv)}\n"


@contextlib.contextmanager
def held(folder, what="folder"):
    """Hold the lock of ``folder`` (a ``what``, e.g. "run folder") for the ``with`` block; a UserError
    naming the holder when another process has it."""
    path = lock_path(Path(folder).resolve())
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise UserError(f"{what} {folder} is in use by {holder} (lock {path}): wait until it ends "
                            "or stop it, then run this again") from None
        f.seek(0)
        f.truncate()
        f.write(holder_line())
        f.flush()
        try:
            yield path
        finally:
            f.truncate(0)
