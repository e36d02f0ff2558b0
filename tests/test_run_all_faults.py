"""tools/run_all.sh when things go wrong: a stop signal during training (as `docker stop` sends it to the
container's PID 1), a second run on the same results, a folder it cannot write, a corrupt weight file.

The stop-signal tests run the script as PID 1 of a new PID namespace (unshare), as in a container
without an init: there the kernel delivers SIGTERM only to a process that handles it."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from sdc import hashing, lock, paths, weights

REPO = Path(__file__).resolve().parents[1]
RUN_ALL = REPO / "tools" / "run_all.sh"
AS_PID_1 = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--kill-child"]


def run_all_command(out, *extra):
    return ["bash", str(RUN_ALL), "--profile", "smoke", "--per-class", "2", "--eval-per-class", "2",
            "--data-dir", str(out / "data"), "--runs-dir", str(out / "runs"), "--results-dir", str(out / "results"),
            *extra]


def environment(neu_dir, pretrained):
    return dict(os.environ, NEU_DIR=str(neu_dir), SDC_PRETRAINED_DIR=str(pretrained))


class Started:
    """A run_all.sh started as PID 1 of its own PID namespace, its output read line by line."""

    def __init__(self, command, env):
        self.unshare = subprocess.Popen(AS_PID_1 + command, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines = []

    @property
    def pid(self):
        """The script's pid as seen from here (the only child of unshare)."""
        children = Path(f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def read_until(self, text, timeout):
        deadline = time.monotonic() + timeout
        for line in self.unshare.stdout:
            self.lines.append(line)
            if text in line:
                return line
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s:\n" + "".join(self.lines[-30:])
        raise AssertionError(f"run_all.sh ended before {text!r}:\n" + "".join(self.lines[-30:]))

    def finish(self, timeout):
        output, _ = self.unshare.communicate(timeout=timeout)
        self.lines.append(output)
        return self.unshare.returncode, "".join(self.lines)

    def kill(self):
        if self.unshare.poll() is None:
            os.killpg(self.unshare.pid, signal.SIGKILL)
            self.unshare.wait()


@pytest.fixture(scope="module")
def training(tmp_path_factory, neu_dir, pretrained_src):
    """run_all.sh (smoke profile, 2 images per class, a 40-iteration schedule) stopped in its first training."""
    out = tmp_path_factory.mktemp("stopped_run")
    command = run_all_command(out, "--max-iter", "40")
    env = environment(neu_dir, pretrained_src)
    run = Started(command, env)
    run.read_until("== ", timeout=60)
    run.read_until("train SDC-SN (smoke profile)", timeout=900)
    run.read_until("Iteration 0, lr", timeout=300)
    yield out, command, env, run
    run.kill()


def test_a_second_run_on_the_same_results_stops_naming_the_first(training):
    out, command, env, first = training
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    results = out / "results" / "smoke"
    lock_file = lock.lock_path(results)
    assert second.returncode == 2 and second.stdout == ""
    message = second.stderr.splitlines()
    # The holder's pid as its own PID namespace numbers it: 1, as in a container.
    assert len(message) == 1 and message[0].startswith(f"run_all: error: results folder {results} is in use by "
                                                       "pid 1 since 20"), message
    assert f": tools/run_all.sh {' '.join(command[2:])} (lock {lock_file}): wait until it ends" in message[0]
    assert first.unshare.poll() is None


def test_sigterm_to_pid_1_snapshots_the_training_and_a_rerun_resumes_from_it(training):
    out, command, env, run = training
    os.kill(run.pid, signal.SIGTERM)
    status, output = run.finish(timeout=300)
    assert status == 128 + signal.SIGTERM, output[-3000:]
    assert "run_all: SIGTERM received: stopping the running step" in output
    snapshots = out / "runs" / "smoke" / "SDC-SN" / "snapshots"
    states = sorted(snapshots.glob("SDC-SN_iter_*.solverstate"))
    assert len(states) == 1, output[-3000:]
    reached = int(states[0].stem.rsplit("_", 1)[1])
    assert 1 <= reached < 40 and (snapshots / f"SDC-SN_iter_{reached}.caffemodel").is_file()
    assert "train SDC-SN-ELF" not in output  # the run stopped instead of going on to the next step

    again = Started(command, env)
    try:
        again.read_until(f"resuming from SDC-SN_iter_{reached}.solverstate", timeout=600)
        again.read_until("Iteration", timeout=300)
        os.kill(again.pid, signal.SIGTERM)
        status, output = again.finish(timeout=300)
    finally:
        again.kill()
    assert status == 128 + signal.SIGTERM, output[-3000:]
    later = sorted(int(p.stem.rsplit("_", 1)[1]) for p in snapshots.glob("SDC-SN_iter_*.solverstate"))
    assert later[0] == reached and later[-1] > reached


def test_a_folder_the_user_cannot_write_stops_the_run_in_one_line():
    """As `docker run --user` with a results volume owned by someone else: here the script runs as
    uid 65534 (nobody) when the tests run as root, else the folder is made read-only."""
    base = Path(tempfile.mkdtemp(prefix="run_all_perm_"))  # outside pytest's private tmp folder
    try:
        base.chmod(0o755)
        results, runs, data = base / "results", base / "runs", base / "data"
        for folder, mode in ((results, 0o755), (runs, 0o777), (data, 0o777)):
            folder.mkdir()
            folder.chmod(mode)
        command = ["bash", str(RUN_ALL), "--data-dir", str(data), "--runs-dir", str(runs),
                   "--results-dir", str(results)]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
            uid = 65534
        else:
            results.chmod(0o555)
            uid = os.geteuid()
        run = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and run.stdout == ""
        assert run.stderr == (f"run_all: error: cannot write to {results}/smoke: make it writable by uid {uid}, "
                              "or pass another folder (see --help)\n")
        assert list(results.iterdir()) == [] and list(runs.iterdir()) == [runs / "smoke"]
    finally:
        shutil.rmtree(base)


def test_a_corrupt_original_squeezenet_stops_before_training(tmp_path, neu_dir, pretrained_src):
    model = weights.read_manifest()["squeezenet_v1.0"]
    kept = paths.WEIGHTS_DIR / model.caffemodel
    if kept.exists() and hashing.sha1_file(kept) == model.sha1:
        pytest.skip(f"{kept} holds the verified original, which run_all uses whatever else is around")
    pretrained = tmp_path / "weights"
    pretrained.mkdir()
    for path in pretrained_src.rglob("*"):
        if path.is_file():
            (pretrained / path.name).symlink_to(path)
    corrupt = pretrained / model.caffemodel
    corrupt.write_bytes(b"a download cut short")
    run = subprocess.run(run_all_command(tmp_path), env=environment(neu_dir, pretrained), capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 2, run.stdout[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith(f"error: 1 file(s) not fetched: {model.caffemodel}: sha1 must be {model.sha1}, "
                           f"found only {corrupt} (sha1 {hashing.sha1_file(corrupt)})"), last
    assert "Deep-Compression" not in run.stdout and "== [" in run.stdout and "train SDC-SN" not in run.stdout
