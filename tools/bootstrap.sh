# Sourced by tools/run_all.sh and tools/run_tests.sh: makes the project venv (.venv), installs the
# pinned Python packages, builds (or finds in its cache) Caffe and links pycaffe into the venv.
# Arguments given to the sourcing script's `bootstrap` call go to install_caffe.sh.
# Sets: SDC_REPO, SDC_PY (the venv's python), CAFFE_PREFIX.
# The pins install on Python 3.11 and 3.12 only (3.10 lacks contourpy 1.3.3, pillow 13, ...; 3.13 lacks
# numpy 1.26.4 wheels, and pycaffe needs numpy < 2): docs/reliability.md has the check.
SDC_PYTHON_VERSIONS="3.11 3.12"

# $1 = a python: stops with one line unless it is one of SDC_PYTHON_VERSIONS.
require_supported_python() {
  local version
  version=$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || version=unknown
  case " $SDC_PYTHON_VERSIONS " in *" $version "*) return 0 ;; esac
  echo "bootstrap: error: $1 is Python $version, but the pinned requirements install on Python" \
    "${SDC_PYTHON_VERSIONS// / and } only: install one of them (with its venv and dev packages) and run" \
    "again with PYTHON=python3.12 (or python3.11), after removing ${SDC_VENV:-.venv} if it was made with $version" >&2
  return 1
}

# $1 = a venv's python, $2 = a requirements file: pip-installs it unless the venv's stamp says it is in.
install_requirements() {
  local stamp want
  stamp=$(dirname "$(dirname "$1")")/.$(basename "${2%.txt}").sha256
  want=$(sha256sum "$2" | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || return 0
  echo "bootstrap: installing $(basename "$2") into $(dirname "$(dirname "$1")")" >&2
  "$1" -m pip install -q --disable-pip-version-check -r "$2" >&2 || return 1
  echo "$want" > "$stamp"
}

bootstrap() {
  SDC_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  local venv=${SDC_VENV:-$SDC_REPO/.venv} python=${PYTHON:-python3}
  if [ ! -x "$venv/bin/python" ]; then
    command -v "$python" >/dev/null || { echo "bootstrap: error: no $python on PATH (install python3, python3-venv and python3-dev)" >&2; return 1; }
    require_supported_python "$python" || return 1
    echo "bootstrap: creating $venv" >&2
    "$python" -m venv "$venv" || { echo "bootstrap: error: '$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; return 1; }
  fi
  require_supported_python "$venv/bin/python" || return 1
  install_requirements "$venv/bin/python" "$SDC_REPO/requirements.txt" || return 1
  CAFFE_PREFIX=$("$SDC_REPO/tools/caffe/install_caffe.sh" --venv "$venv" "$@" | tail -1) || return 1
  SDC_PY=$venv/bin/python
  export SDC_REPO SDC_PY CAFFE_PREFIX
}
