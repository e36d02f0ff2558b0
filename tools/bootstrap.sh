# Sourced by tools/run_all.sh and tools/run_tests.sh: makes the project venv (.venv), installs the
# pinned Python packages, builds (or finds in its cache) Caffe and links pycaffe into the venv.
# Arguments given to the sourcing script's `bootstrap` call go to install_caffe.sh.
# Sets: SDC_REPO, SDC_PY (the venv's python), CAFFE_PREFIX.
bootstrap() {
  SDC_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  local venv=${SDC_VENV:-$SDC_REPO/.venv} python=${PYTHON:-python3}
  if [ ! -x "$venv/bin/python" ]; then
    command -v "$python" >/dev/null || { echo "bootstrap: error: no $python on PATH (install python3, python3-venv and python3-dev)" >&2; return 1; }
    echo "bootstrap: creating $venv" >&2
    "$python" -m venv "$venv" || { echo "bootstrap: error: '$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; return 1; }
  fi
  local stamp=$venv/.requirements.sha256 want
  want=$(sha256sum "$SDC_REPO/requirements.txt" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: installing requirements.txt into $venv" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$SDC_REPO/requirements.txt" >&2 || return 1
    echo "$want" > "$stamp"
  fi
  CAFFE_PREFIX=$("$SDC_REPO/tools/install_caffe.sh" --venv "$venv" "$@" | tail -1) || return 1
  SDC_PY=$venv/bin/python
  export SDC_REPO SDC_PY CAFFE_PREFIX
}
