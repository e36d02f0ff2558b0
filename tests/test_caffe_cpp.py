"""Caffe's own C++ unit tests for the layers and solver our networks use.

Built by `tools/run_tests.sh --with-caffe-tests` (CI does), which links the gtest binary into the
Caffe prefix as bin/caffe_unit_tests; the subset of test files is set in tools/caffe/install_caffe.sh.
"""
import os
import re
import subprocess

import pytest

from sdc import caffe_env

REQUIRED_SUITES = ["ConvolutionLayerTest", "PoolingLayerTest", "ConcatLayerTest", "NeuronLayerTest",
                   "SoftmaxWithLossLayerTest", "AdamSolverTest", "SGDSolverTest"]


@pytest.fixture(scope="module")
def unit_tests():
    path = caffe_env.prefix() / "bin" / "caffe_unit_tests"
    if not path.exists():
        pytest.skip("Caffe's C++ unit tests are not built: run tools/run_tests.sh --with-caffe-tests")
    return path


def gtest(path, *args):
    # Run from the Caffe source root, as `make runtest` does: the solver tests' HDF5 list names
    # its data file relative to it.
    return subprocess.run([str(path), "--gtest_filter=-*GPU*", *args], capture_output=True, text=True,
                          timeout=900, cwd=caffe_env.prefix().parent / "src",
                          env=dict(os.environ, GLOG_minloglevel="2"))


def test_subset_contains_the_suites_our_nets_rely_on(unit_tests):
    listing = gtest(unit_tests, "--gtest_list_tests").stdout
    suites = {line.split("/")[0].rstrip(".") for line in listing.splitlines() if not line.startswith(" ")}
    for suite in REQUIRED_SUITES:
        assert suite in suites, f"{suite} missing from the built unit tests"
    assert "  TestDropoutHalf" in listing


def test_caffe_cpu_unit_tests_pass(unit_tests):
    listed = sum(line.startswith("  ") for line in gtest(unit_tests, "--gtest_list_tests").stdout.splitlines())
    run = gtest(unit_tests)
    assert run.returncode == 0, run.stdout[-3000:]
    passed = re.search(r"\[  PASSED  \] (\d+) tests?\.", run.stdout)
    assert passed and int(passed.group(1)) == listed >= 300
