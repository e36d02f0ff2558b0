"""The paper-schedule GPU kit (tools/caffe/gpu_paper_run.py, tools/caffe/adopt_gpu_runs.py): what trains, in which
order, and what travels to the GPU machine and back.

Standard library only at import time: the GPU machine imports it before the carried lmdb wheel is
installed (``records_sha256`` imports lmdb when called).
"""
import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from . import atomic, paths
from .errors import UserError

KIT_DIR = paths.REPO / ".carry" / "gpu-paper"
# Between windows: <job>.tar.gz (the unfinished run folder a window returned; the next one resumes
# it) or <job>.finished.json (done; the run folder is under RUNS_DIR). Committed, so that a window
# prepared in another clone finds it; it travels with the working tree.
PARTIAL_DIR = paths.RESULTS_DIR / "paper" / "partial"
RUNS_DIR = paths.RUNS_DIR / "gpu-paper"
# On the GPU machine. The same path in every window: a resumed run folder's train_val.prototxt names
# its LMDBs by absolute path, and tools/train.py continues a run folder only with an identical net.
WORK_DIR = Path("/tmp/sdc-paper")

KIT_FILE = "KIT.json"
BUNDLE = "caffe.tar.xz"
NEU_ARCHIVE = "neu-cls.tar.xz"
WHEELS = "wheels"
WEIGHTS = "weights"
GATE = "gate"
SESSION_FILE = "session.json"
SUMMARY_FILE = "summary.txt"
LOGS_FILE = "logs.tar.gz"
WINDOWS_FILE = "gpu_windows.json"   # in each run folder: one record per GPU window that trained it

MIB = 1 << 20
TRAVEL_LIMIT = 64 * MIB             # working tree + carry, per call
RETURN_FILES = 8                    # files back from $OUT per call
RETURN_FILE_LIMIT = 16 * MIB
LMDB_TARGETS = ("train", "original", "train_aug8")   # tools/build_lmdb.py --only names


@dataclass(frozen=True)
class Job:
    """One training run of the window. ``stop_after``: the run is done at that iteration (the
    paper's Adam, run only long enough to show what it does)."""
    name: str
    variant: str
    solver: str
    batching: str
    stop_after: int = None

    @property
    def from_scratch(self):
        return self.variant == "ETE"

    @property
    def lmdbs(self):
        return ("train_aug8", "original") if self.from_scratch else ("train", "original")

    @property
    def returned_file(self):
        return f"{self.name}.tar.gz"


_SGD = "paper values, SGD instead of the stated Adam"
# In priority order: the window starts them in this order, --concurrency at a time.
JOBS = (
    Job("SDC-SN-ELF-MRF", "SDC-SN-ELF-MRF", "solvers/SDC-SN-ELF-MRF_sgd_solver.prototxt", "equivalent"),
    Job("SDC-SN-ELF", "SDC-SN-ELF", "solvers/SDC-SN-ELF_sgd_solver.prototxt", "equivalent"),
    Job("SDC-SN", "SDC-SN", "solvers/SDC-SN_sgd_solver.prototxt", "equivalent"),
    Job("ETE", "ETE", "solvers/ETE_solver.prototxt", "literal"),
    Job("SDC-SN-ELF-MRF_adam", "SDC-SN-ELF-MRF", "solvers/SDC-SN-ELF-MRF_solver.prototxt", "equivalent",
        stop_after=16),
)
SOLVER_LABELS = {"SDC-SN-ELF-MRF": _SGD, "SDC-SN-ELF": _SGD, "SDC-SN": _SGD,
                 "ETE": "its own solver (trained from scratch)",
                 "SDC-SN-ELF-MRF_adam": "the paper's Adam as written, 16 updates only"}


def job_named(name):
    for job in JOBS:
        if job.name == name:
            return job
    raise UserError(f"no job {name!r}: the jobs are {', '.join(j.name for j in JOBS)}")


def state(partial_dir, job):
    """'finished', 'resume' (a returned run folder waits in ``partial_dir``) or 'fresh'."""
    partial_dir = Path(partial_dir)
    if (partial_dir / f"{job.name}.finished.json").is_file():
        return "finished"
    if (partial_dir / job.returned_file).is_file():
        return "resume"
    return "fresh"


def records_sha256(path):
    """sha256 over every (key, value) of the LMDB at ``path`` in key order: equal digests mean
    byte-identical training data, whatever built it."""
    import lmdb
    digest = hashlib.sha256()
    env = lmdb.open(str(path), readonly=True, lock=False, subdir=True)
    try:
        with env.begin() as txn:
            for key, value in txn.cursor():
                digest.update(len(key).to_bytes(4, "little") + key + len(value).to_bytes(8, "little"))
                digest.update(value)
    finally:
        env.close()
    return digest.hexdigest()


def lmdb_identity(path):
    """What the kit records of an LMDB and the window checks: the builder's input fingerprint,
    the record count and the digest of the records themselves."""
    info_path = Path(path) / "build.json"
    if not info_path.is_file():
        raise UserError(f"no LMDB at {path}: build it with tools/build_lmdb.py")
    info = json.loads(info_path.read_text())
    return {"fingerprint": info["fingerprint"], "count": info["count"], "records_sha256": records_sha256(path)}


def epoch_snapshot(iterations, interval):
    """The latest of ``iterations`` on an epoch boundary (a multiple of ``interval``), or None.
    Caffe's Data layer does not store its read position: a run resumed there reads the same
    images in the same order as one that never stopped."""
    boundaries = [i for i in iterations if i % interval == 0]
    return max(boundaries, default=None)


def pack_folder(folder, dest):
    """``folder`` as dest (.tar.gz, one top folder named like ``folder``), written atomically."""
    with atomic.atomic_path(dest) as tmp:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            tar.add(folder, arcname=Path(folder).name)
    return dest


def unpack(archive, dest_dir):
    """Extract ``archive`` (any tar compression) into ``dest_dir``; returns the top-level names."""
    with tarfile.open(archive) as tar:
        names = sorted({Path(m.name).parts[0] for m in tar.getmembers()})
        try:
            tar.extractall(dest_dir, filter="tar")
        except TypeError:  # Python < 3.11.4 has no filter argument
            tar.extractall(dest_dir)
    return names


def read_json(path, default=None):
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else default
