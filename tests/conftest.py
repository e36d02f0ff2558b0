"""Shared fixtures. Tests (and .ci/run) are the only code that may point at ../shared."""
import os
from pathlib import Path

import lmdb
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _dir_or_skip(env, default, what):
    path = Path(os.environ.get(env) or default)
    if not path.is_dir():
        pytest.skip(f"{what} not found at {path} (set {env})")
    return path.resolve()  # session-wide: a relative $NEU_DIR must survive tests that chdir


@pytest.fixture(scope="session")
def neu_dir():
    """The real NEU-CLS database (1800 BMPs)."""
    return _dir_or_skip("NEU_DIR", SHARED / "datasets" / "NEU-CLS", "NEU-CLS")


@pytest.fixture(scope="session")
def pretrained_src():
    """A directory holding the weight files (searched recursively by the pretrained tools)."""
    return _dir_or_skip("SDC_PRETRAINED_DIR", SHARED / "pretrained", "pretrained weights")


@pytest.fixture(scope="session")
def released_dir(pretrained_src):
    """The paper authors' three released caffemodels."""
    hits = sorted(pretrained_src.rglob("SDC-SN-ELF-MRF.caffemodel"))
    if not hits:
        pytest.skip(f"the authors' released caffemodels are not under {pretrained_src}")
    return hits[0].parent


@pytest.fixture(scope="session")
def caffe():
    from sdc.caffe_env import import_caffe
    return import_caffe()


@pytest.fixture(scope="session")
def lmdb_root(tmp_path_factory, caffe):
    """A working directory holding the two LMDBs the committed train_val prototxts name."""
    from caffe.proto import caffe_pb2
    root = tmp_path_factory.mktemp("repo_root")
    rng = np.random.default_rng(0)
    for name in ("train_lmdb", "test_original_lmdb"):
        path = root / "datasets/work/lmdb" / name
        path.mkdir(parents=True)
        env = lmdb.open(str(path), map_size=1 << 24)
        with env.begin(write=True) as txn:
            for i in range(2):
                pixels = rng.integers(0, 256, (3, 256, 256), dtype=np.uint8)
                datum = caffe_pb2.Datum(channels=3, height=256, width=256, data=pixels.tobytes(), label=i)
                txn.put(f"{i:08d}".encode(), datum.SerializeToString())
        env.close()
    return root


@pytest.fixture(scope="session")
def net_file(pretrained_src):
    """ImageNet SqueezeNet v1.0 in the Deep-Compression format."""
    hits = sorted(pretrained_src.rglob("compressed_SqueezeNet.net"))
    if not hits:
        pytest.skip(f"compressed_SqueezeNet.net is not under {pretrained_src}")
    return hits[0]


@pytest.fixture(scope="session")
def decoded(net_file):
    from sdc import deep_compression
    return deep_compression.decode(net_file.read_bytes(), source=str(net_file))


@pytest.fixture(scope="session")
def decoded_caffemodel(decoded, tmp_path_factory):
    """The decoded ImageNet SqueezeNet v1.0 as a caffemodel: the offline start weights of fine-tuning."""
    from sdc import deep_compression
    return deep_compression.write_caffemodel(decoded, REPO / "prototxt" / "squeezenet_v1.0_deploy.prototxt",
                                             tmp_path_factory.mktemp("dc") / "squeezenet_v1.0_dc.caffemodel")
