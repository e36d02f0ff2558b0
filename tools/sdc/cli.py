"""Command-line arguments shared by the tools."""
import argparse
from pathlib import Path

from . import degrade, neu, paths


def labelled_path(metavar):
    """An argparse type for ``LABEL=PATH``, giving (label, Path); the last '=' splits, so a label may hold one."""
    def parse(text):
        label, sep, path = text.rpartition("=")
        if not sep or not label or not path:
            raise argparse.ArgumentTypeError(f"expected {metavar}, got {text!r}")
        return label, Path(path)
    return parse


def add_neu_dir(parser, purpose=""):
    """--neu-dir, the NEU-CLS root that neu.locate resolves; ``purpose`` is said after "NEU-CLS root"."""
    parser.add_argument("--neu-dir", help=f"NEU-CLS root{purpose} (default: ${neu.ENV_VAR}, else datasets/NEU-CLS)")


def add_test_images(parser, size_help="default: %(default)s"):
    """--neu-dir, --test-list, --seed and --size: which test images, and the seed and side at which
    tools/make_enhanced.py degrades them."""
    add_neu_dir(parser)
    parser.add_argument("--test-list", default=paths.SPLITS_DIR / "test.txt", help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=degrade.DEFAULT_SEED, help="default: %(default)s")
    parser.add_argument("--size", type=int, default=neu.NETWORK_SIDE, help=size_help)


def add_lmdb_dir(parser, what="folder of the test_<subset>_lmdb"):
    """--lmdb-dir, the folder of the LMDBs tools/build_lmdb.py wrote (default: datasets/work/lmdb)."""
    parser.add_argument("--lmdb-dir", type=Path, default=paths.LMDB_DIR, help=f"{what} (default: %(default)s)")


def add_gpu(parser, what="GPU id (default: CPU)"):
    """--gpu N; None means the CPU."""
    parser.add_argument("--gpu", type=int, metavar="N", help=what)
