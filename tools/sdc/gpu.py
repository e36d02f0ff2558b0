"""Check, before anything is written, that `--gpu N` can actually be honoured.

Standard library only (tools/run_all.sh checks the device with the system Python before any bootstrap).
"""
import shutil
import subprocess

from . import caffe_env
from .errors import UserError


def require_device(gpu_id):
    """Raise a one-line UserError unless the NVIDIA driver lists GPU ``gpu_id``."""
    if shutil.which("nvidia-smi") is None:
        raise UserError(f"--gpu {gpu_id} was asked but no NVIDIA driver was found (nvidia-smi is not on PATH); "
                        "run on a machine with an NVIDIA GPU and driver, or drop --gpu to use the CPU")
    run = subprocess.run(["nvidia-smi", "--query-gpu=index,name", "--format=csv,noheader"],
                         capture_output=True, text=True)
    found = [line.strip() for line in run.stdout.splitlines() if line.strip()]
    if run.returncode != 0 or not any(line.split(",")[0] == str(gpu_id) for line in found):
        raise UserError(f"--gpu {gpu_id} was asked but nvidia-smi lists {found or 'no GPU'}"
                        f"{'' if run.returncode == 0 else ' (' + run.stderr.strip() + ')'}")


def require(gpu_id):
    """Raise a one-line UserError unless GPU ``gpu_id`` is visible and Caffe was built with CUDA."""
    require_device(gpu_id)
    variant = caffe_env.build_info().get("variant")
    if variant != "cuda":
        raise UserError(f"--gpu {gpu_id} needs a CUDA build of Caffe, but {caffe_env.prefix()} is a "
                        f"{variant or 'unknown'} build: run tools/install_caffe.sh --cuda --venv .venv")
