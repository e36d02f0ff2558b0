"""Where the Caffe build lives: pycaffe, the ``caffe`` tool and the build's provenance.

install_caffe.sh links pycaffe into the venv with a .pth file; the prefix is the folder two
levels above the ``caffe`` package, and holds ``bin/caffe`` and (one level up) BUILD_INFO.json.
"""
import functools
import json
import os
from pathlib import Path

from .errors import UserError

_HOW = "run tools/install_caffe.sh --venv .venv (or tools/run_tests.sh, which does it)"


def import_caffe():
    """Import pycaffe with Caffe's own logging quietened (GLOG_minloglevel=2 unless set)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import caffe
    except ImportError as e:
        raise UserError(f"pycaffe is not importable ({e}): {_HOW}") from e
    return caffe


@functools.lru_cache(maxsize=None)
def prefix():
    """The install prefix of the Caffe build pycaffe comes from (CAFFE_PREFIX overrides)."""
    if os.environ.get("CAFFE_PREFIX"):
        return Path(os.environ["CAFFE_PREFIX"])
    return Path(import_caffe().__file__).resolve().parents[2]


def caffe_bin():
    """Path of the ``caffe`` command-line tool of that build."""
    path = prefix() / "bin" / "caffe"
    if not path.exists():
        raise UserError(f"no caffe tool at {path}: {_HOW}")
    return path


def caffe_pb2():
    """pycaffe's generated protobuf module (caffe.proto)."""
    import_caffe()
    from caffe.proto import caffe_pb2 as pb2
    return pb2


def read_proto(path, message, fix="fix the file"):
    """Parse the text proto at ``path`` into ``message``; Caffe itself would abort the process on an
    unreadable one, so a bad file becomes a one-line UserError ending in ``fix``."""
    from google.protobuf import text_format
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found: pass an existing file")
    try:
        text_format.Merge(path.read_text(), message)
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not a Caffe prototxt ({type(message).__name__}: {e}): {fix}") from e
    return message


def build_info():
    """The BUILD_INFO.json install_caffe.sh wrote (source hash, patches, flags); {} if absent."""
    path = prefix().parent / "BUILD_INFO.json"
    return json.loads(path.read_text()) if path.exists() else {}
