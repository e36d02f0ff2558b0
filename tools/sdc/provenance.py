"""provenance.json next to every result: code version, Caffe build, device, seeds, wall times."""
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from . import atomic
from .paths import REPO

FILE_NAME = "provenance.json"


def shown(path):
    """A path as results print it: relative to the repository when inside it (stable across clones)."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def git_commit():
    try:
        out = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def device_description(gpu=None):
    if gpu is None:
        return f"CPU: {cpu_name()} ({os.cpu_count()} logical cores)"
    try:
        out = subprocess.run(["nvidia-smi", "-i", str(gpu), "--query-gpu=name,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True, check=True)
        return f"GPU {gpu}: {out.stdout.strip()}"
    except (OSError, subprocess.CalledProcessError):
        return f"GPU {gpu}: nvidia-smi unavailable"


def collect(gpu=None, seeds=None, wall_times=None, **extra):
    """A provenance record; ``extra`` keys (inputs, commands, ...) are added as they are."""
    from . import caffe_env
    try:
        build = caffe_env.build_info()
    except Exception as e:  # provenance must not hide the result it describes
        build = {"error": str(e)}
    record = {
        "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": git_commit(),
        "caffe_build": build,
        "device": device_description(gpu),
        "host": platform.node(),
        "python": platform.python_version(),
        "seeds": seeds or {},
        "wall_times_s": wall_times or {},
    }
    record.update(extra)
    return record


def read(directory):
    """The provenance record in ``directory``, or {} when there is none."""
    path = Path(directory) / FILE_NAME
    return json.loads(path.read_text()) if path.is_file() else {}


def write(directory, **kwargs):
    """Write ``directory/provenance.json`` atomically and return the record."""
    record = collect(**kwargs)
    atomic.write_text(Path(directory) / FILE_NAME, json.dumps(record, indent=2) + "\n")
    return record
