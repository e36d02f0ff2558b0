"""Where things are: the repository root and the files and folders the tools use by default."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTOTXT_DIR = REPO / "prototxt"
SOLVERS_DIR = REPO / "solvers"
PAPER_VALUES = REPO / "docs" / "paper_values.csv"
NEU_DIR = REPO / "datasets" / "NEU-CLS"   # when neither --neu-dir nor $NEU_DIR names one
SPLITS_DIR = REPO / "datasets" / "splits"
# What the tools derive from the images (enhanced set, LMDBs, feature cache); git-ignored.
WORK_DIR = REPO / "datasets" / "work"
ENHANCED_DIR = WORK_DIR / "enhanced"
LMDB_DIR = WORK_DIR / "lmdb"
WEIGHTS_DIR = REPO / "pretrained" / "weights"
RUNS_DIR = REPO / "runs"
RESULTS_DIR = REPO / "results"


def deploy_prototxt(net):
    """prototxt/<net>_deploy.prototxt, e.g. net = "SDC-SN"."""
    return PROTOTXT_DIR / f"{net}_deploy.prototxt"
