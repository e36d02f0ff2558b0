#!/usr/bin/env bash
# The project's test command: bootstraps (venv, Caffe), adds the test tools (requirements-test.txt)
# and runs pytest.
#   tools/run_tests.sh [--with-caffe-tests] [pytest args...]
# --with-caffe-tests also builds Caffe's own C++ unit-test subset, which tests/test_caffe_cpp.py runs.
# Data and weights are found through NEU_DIR and SDC_PRETRAINED_DIR (see README.md).
set -euo pipefail
install_args=()
if [ "${1:-}" = --with-caffe-tests ]; then install_args+=(--with-caffe-tests); shift; fi
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
bootstrap "${install_args[@]}"
install_requirements "$SDC_PY" "$SDC_REPO/requirements-test.txt"
cd "$SDC_REPO"
exec "$SDC_PY" -m pytest "$@"
