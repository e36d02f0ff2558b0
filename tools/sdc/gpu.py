"""Check, before anything is written, that `--gpu N` can actually be honoured.

Standard library only (tools/run_all.sh checks the device with the system Python before any bootstrap).
"""
import os
import shutil
import subprocess

from . import caffe_env
from .errors import UserError

VISIBLE_ENV = "CUDA_VISIBLE_DEVICES"


def visible_gpus(listed, visible=None):
    """The GPUs CUDA numbers 0, 1, ... given nvidia-smi's (index, uuid) rows and CUDA_VISIBLE_DEVICES.

    CUDA takes the comma-separated entries (an index, or a GPU UUID or its prefix) in order and stops
    at the first one that names no GPU; unset means every GPU in nvidia-smi's order.
    """
    if visible is None:
        return list(listed)
    chosen = []
    for entry in (e.strip() for e in visible.split(",")):
        match = [row for row in listed if entry and (row[0] == entry or
                                                      (entry.startswith("GPU-") and row[1].startswith(entry)))]
        if len(match) != 1 or match[0] in chosen:
            break
        chosen.append(match[0])
    return chosen


def require_device(gpu_id):
    """Raise a one-line UserError unless the NVIDIA driver lists GPU ``gpu_id`` and CUDA_VISIBLE_DEVICES
    leaves it visible under that number."""
    if isinstance(gpu_id, bool) or not isinstance(gpu_id, int) or gpu_id < 0:
        raise UserError(f"--gpu {gpu_id!r}: give a GPU number such as 0")
    if shutil.which("nvidia-smi") is None:
        raise UserError(f"--gpu {gpu_id} was asked but no NVIDIA driver was found (nvidia-smi is not on PATH); "
                        "run on a machine with an NVIDIA GPU and driver, or drop --gpu to use the CPU")
    run = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid,name", "--format=csv,noheader"],
                         capture_output=True, text=True)
    rows = [[part.strip() for part in line.split(",", 2)] for line in run.stdout.splitlines() if line.strip()]
    listed = [(row[0], row[1] if len(row) > 1 else "") for row in rows]
    found = [f"{row[0]}: {row[-1]}" for row in rows]
    if run.returncode != 0 or not listed:
        raise UserError(f"--gpu {gpu_id} was asked but nvidia-smi lists {found or 'no GPU'}"
                        f"{'' if run.returncode == 0 else ' (' + run.stderr.strip() + ')'}")
    visible = os.environ.get(VISIBLE_ENV)
    numbered = visible_gpus(listed, visible)
    if gpu_id >= len(numbered):
        if visible is None:
            raise UserError(f"--gpu {gpu_id} was asked but nvidia-smi lists {found}: pass one of their indices")
        raise UserError(f"--gpu {gpu_id} was asked but {VISIBLE_ENV}={visible!r} leaves {len(numbered)} of the "
                        f"GPUs nvidia-smi lists ({found}) visible, numbered from 0: pass --gpu below "
                        f"{len(numbered)} or change {VISIBLE_ENV}")


def require(gpu_id):
    """Raise a one-line UserError unless GPU ``gpu_id`` is visible and Caffe was built with CUDA."""
    require_device(gpu_id)
    variant = caffe_env.build_info().get("variant")
    if variant != "cuda":
        raise UserError(f"--gpu {gpu_id} needs a CUDA build of Caffe, but {caffe_env.prefix()} is a "
                        f"{variant or 'unknown'} build: run tools/caffe/install_caffe.sh --cuda --venv .venv")
