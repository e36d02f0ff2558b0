"""Where the Caffe build lives: pycaffe, the ``caffe`` tool and the build's provenance.

install_caffe.sh links pycaffe into the venv with a .pth file; the prefix is the folder two
levels above the ``caffe`` package, and holds ``bin/caffe``, ``python/caffe/proto/caffe_pb2.py``
and (one level up) BUILD_INFO.json. A relocatable bundle (tools/caffe/bundle_caffe.sh) has the same
``bin/`` and ``python/`` folders and BUILD_INFO.json at its root; with CAFFE_PREFIX pointing at it,
the tools that need only the ``caffe`` tool and caffe.proto run without pycaffe (a GPU machine).
"""
import functools
import importlib.util
import json
import os
import sys
from pathlib import Path

from .errors import UserError

_HOW = "run tools/caffe/install_caffe.sh --venv .venv (or tools/run_tests.sh, which does it)"


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
    """Path of the ``caffe`` command-line tool of that build; in a bundle, its launcher (bin/caffe-run
    runs bin/caffe with the bundle's libraries and the NVIDIA ones it finds, see $CAFFE_CUDA_LIBS)."""
    launcher = prefix() / "bin" / "caffe-run"
    path = launcher if launcher.is_file() else prefix() / "bin" / "caffe"
    if not path.exists():
        raise UserError(f"no caffe tool at {path}: {_HOW}")
    return path


PB2_MODULE = "caffe.proto.caffe_pb2"
PB2_FILE = Path("python") / "caffe" / "proto" / "caffe_pb2.py"


def caffe_pb2():
    """The generated protobuf module of caffe.proto, under pycaffe's module name: with CAFFE_PREFIX
    set, the build's own copy (no pycaffe needed), else pycaffe's. One module per process either
    way: protobuf refuses to register caffe.proto twice, and a later ``import caffe`` reuses it."""
    if PB2_MODULE in sys.modules:
        return sys.modules[PB2_MODULE]
    copy = Path(os.environ["CAFFE_PREFIX"]) / PB2_FILE if os.environ.get("CAFFE_PREFIX") else None
    if copy is None or not copy.is_file():
        import_caffe()
        from caffe.proto import caffe_pb2 as pb2
        return pb2
    spec = importlib.util.spec_from_file_location(PB2_MODULE, copy)
    module = importlib.util.module_from_spec(spec)
    sys.modules[PB2_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[PB2_MODULE]
        raise UserError(f"{copy} does not load with this protobuf ({type(e).__name__}: {e}): "
                        "install the protobuf version of requirements.txt") from e
    return module


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
    """The BUILD_INFO.json install_caffe.sh wrote (source hash, patches, flags): beside an install
    prefix, or at a bundle's root; {} if absent."""
    for path in (prefix().parent / "BUILD_INFO.json", prefix() / "BUILD_INFO.json"):
        if path.is_file():
            return json.loads(path.read_text())
    return {}
