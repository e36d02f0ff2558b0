"""Write files and directories so that a crash never leaves half-written output behind."""
import contextlib
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(dest):
    """Yield a temporary sibling path; on success it is renamed onto ``dest`` (file or directory)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent)) / dest.name
    try:
        yield tmp
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def write_text(dest, text):
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def write_bytes(dest, data):
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
