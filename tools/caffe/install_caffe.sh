#!/usr/bin/env bash
# Build pinned, patched BVLC Caffe into a cache outside the clone and print its prefix.
#
#   tools/caffe/install_caffe.sh [--cuda [--cuda-arch "75 80 86 89 90"]] [--with-caffe-tests]
#                          [--python PY] [--venv DIR] [--cache DIR] [--jobs N] [--no-apt]
#                          [--source caffe_1.0.0+git20180821.99bd997.orig.tar.gz | caffe-99bd997.tar.gz]
#                          [--check-source]   (fetch and verify the source, build nothing)
#                          [--print-prefix]   (print the prefix of the build these options name; exit 1 if not built)
#
# Source: Debian bullseye's `caffe` source package 1.0.0+git20180821.99bd997-8, whose orig
# tarball is BVLC/caffe commit 99bd997 (sha256 checked). Where no Debian mirror is configured
# (Ubuntu, Docker) the GitHub archive of that commit is used and checked file by file against
# tools/caffe/caffe-source.sha256 (made from the Debian tarball). Patches: tools/caffe/caffe-patches/*.patch.
#
# The cache entry is keyed by source hash + patches + build flags + Python; a second call with
# the same key only re-links pycaffe into the venv and returns. An entry is complete only when
# its BUILD_INFO.json exists (written last); a failed build removes the entry.
#
# --cuda: CUDA + cuDNN build. Toolkit from CUDA_HOME, the nvcc on PATH or /usr/local/cuda;
# cuBLAS/cuRAND/cuDNN from it (or /usr, as in nvidia/cuda:*-cudnn-devel images), else from PyPI
# wheels (nvidia-cublas, nvidia-curand, nvidia-cudnn-cuNN==9.19.0.56) unpacked into the cache.
# --cuda-arch: SASS targets; the last also gets PTX (newer GPUs JIT it). CUDA 13 dropped sm_70/72.
set -euo pipefail

readonly CAFFE_DEB_VERSION="1.0.0+git20180821.99bd997-8"
readonly CAFFE_COMMIT="99bd997"
readonly ORIG_SHA256="e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c"
readonly BUILD_SCHEMA=1   # bump when this script changes how it builds
# Caffe C++ unit-test files built by --with-caffe-tests. test_data_layer.cpp needs OpenCV (off here);
# Caffe's LMDB Data layer is exercised by tests/test_solver_semantics.py instead.
# softmax_layer: SoftmaxWithLoss builds its Softmax through the layer factory, i.e. cuDNN's in a cuDNN build.
readonly TESTS="caffe_main,convolution_layer,pooling_layer,concat_layer,neuron_layer,softmax_layer,softmax_with_loss_layer,gradient_based_solver"
readonly CUDNN_WHEEL_VERSION="9.19.0.56"   # the cuDNN PyTorch 2.11 (cu130) pins

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
log() { printf 'install_caffe: %s\n' "$*" >&2; }
die() { printf 'install_caffe: error: %s\n' "$*" >&2; exit 1; }

cuda=0; cuda_arch="75 80 86 89 90";  # CUDA 13 dropped sm_70/72; the last one also gets PTX
 with_tests=0; jobs=$(nproc); use_apt=1
python=""; venv=""; source_tarball=""; check_source=0; print_prefix=0
cache=${SDC_CAFFE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sdc-caffe}
while [ $# -gt 0 ]; do
  case $1 in
    --cuda) cuda=1 ;;
    --cuda-arch) cuda_arch=$2; shift ;;
    --with-caffe-tests) with_tests=1 ;;
    --python) python=$2; shift ;;
    --venv) venv=$2; shift ;;
    --cache) cache=$2; shift ;;
    --source) source_tarball=$(readlink -f "$2"); shift ;;
    --check-source) check_source=1 ;;
    --print-prefix) print_prefix=1 ;;
    --jobs) jobs=$2; shift ;;
    --no-apt) use_apt=0 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
if [ -n "$venv" ]; then
  venv=$(cd "$venv" 2>/dev/null && pwd) || die "no virtualenv at '$venv'"
fi
if [ -z "$python" ]; then
  if [ -n "$venv" ]; then python=$venv/bin/python; else python=$(command -v python3 || true); fi
fi
[ -x "$python" ] || die "no Python interpreter at '$python'; pass --python PATH or --venv DIR"
python=$(cd "$(dirname "$python")" && pwd)/$(basename "$python")   # cmake runs in another directory

# ---- system packages ---------------------------------------------------------------------
apt_packages=(build-essential cmake pkg-config ca-certificates curl xz-utils
  libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-python-dev
  libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev
  libhdf5-dev liblmdb-dev libopenblas-dev)
ensure_apt_packages() {
  local missing=() p
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$use_apt" = 0 ] || ! command -v apt-get >/dev/null; then
    die "missing system packages: ${missing[*]} (install them with your package manager: this script knows Debian 12 and Ubuntu 22.04/24.04)"
  fi
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  log "installing ${missing[*]}"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get could not install: ${missing[*]}"
}
command -v dpkg-query >/dev/null || [ "$use_apt" = 0 ] \
  || die "no dpkg/apt on this system: install the equivalents of ${apt_packages[*]} and re-run with --no-apt"
[ "$use_apt" = 0 ] || ensure_apt_packages

# ---- build flags and cache key -----------------------------------------------------------
py_include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
py_library=$("$python" -c 'import os, sysconfig as s; print(os.path.join(s.get_config_var("LIBDIR"), s.get_config_var("LDLIBRARY")))')
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
"$python" -c 'import numpy' 2>/dev/null \
  || die "numpy is not importable by $python (pycaffe compiles against it): pip install -r requirements.txt first"
flags=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DBUILD_docs=OFF -DBUILD_matlab=OFF
  -DBUILD_python=ON -DBUILD_python_layer=OFF -Dpython_version=3
  -DUSE_OPENCV=OFF -DUSE_LEVELDB=OFF -DUSE_LMDB=ON -DUSE_HDF5=ON -DBLAS=Open
  "-DBUILD_only_tests=$TESTS")
# CUDA libraries the toolkit lacks come from PyPI wheels unpacked into the cache. Their layout
# differs by CUDA version (nvidia/cu13/, nvidia/cudnn/, ...) and they ship only lib*.so.N, so one
# include/ and one lib/ of links is made. The directory is redone when the wanted set changes.
cuda_libs_from_wheels() {  # $@ = pip requirements; prints the directory holding include/ and lib/
  local dir=$cache/cuda$cuda_major-wheels so
  if [ "$(cat "$dir/.complete" 2>/dev/null)" != "$*" ]; then
    log "installing PyPI wheels $* into $dir (the CUDA toolkit here lacks them)"
    rm -rf "$dir"
    "$python" -m pip install -q --disable-pip-version-check --no-deps --target "$dir" "$@" >&2 \
      || { rm -rf "$dir"; die "could not get $*: install the CUDA toolkit's cuBLAS/cuRAND and cuDNN dev packages (or use an nvidia/cuda:*-cudnn-devel image), or allow pip to fetch these wheels"; }
    mkdir -p "$dir/include" "$dir/lib"
    for so in "$dir"/nvidia/*/include; do cp -rs "$so"/. "$dir/include/"; done
    for so in "$dir"/nvidia/*/lib/lib*.so.*; do  # lib*.so for the linker, lib*.so.N for NEEDED entries
      ln -sf "$so" "$dir/lib/$(basename "${so%%.so.*}").so"
      ln -sf "$so" "$dir/lib/$(basename "$so")"
    done
    echo "$*" > "$dir/.complete"
  fi
  echo "$dir"
}
system_cudnn() {  # prints "include-dir library" of a cuDNN >= 8 installed with the toolkit or the system
  local inc lib
  for inc in "$cuda_root/include" /usr/include /usr/include/x86_64-linux-gnu; do
    [ -f "$inc/cudnn_version.h" ] || continue
    for lib in "$cuda_root/lib64" "$cuda_root/lib" /usr/lib/x86_64-linux-gnu /usr/lib64; do
      [ -e "$lib/libcudnn.so" ] && { echo "$inc $lib/libcudnn.so"; return 0; }
    done
  done
  return 1
}
if [ "$cuda" = 1 ]; then
  # The toolkit: CUDA_HOME (or CUDA_PATH) if set, else the one around the nvcc on PATH, else /usr/local/cuda.
  cuda_root=${CUDA_HOME:-${CUDA_PATH:-}}
  if [ -z "$cuda_root" ]; then
    candidates=(/usr/local/cuda)
    nvcc_path=$(command -v nvcc || true)
    [ -z "$nvcc_path" ] || candidates=("$(dirname "$(dirname "$(readlink -f "$nvcc_path")")")" "${candidates[@]}")
    for c in "${candidates[@]}"; do
      [ -x "$c/bin/nvcc" ] && [ -f "$c/include/cuda_runtime.h" ] && { cuda_root=$c; break; }
    done
  fi
  [ -n "$cuda_root" ] && [ -x "$cuda_root/bin/nvcc" ] && [ -f "$cuda_root/include/cuda_runtime.h" ] \
    || die "--cuda needs the CUDA toolkit (bin/nvcc and include/cuda_runtime.h) but found none (CUDA_HOME='${CUDA_HOME:-}', nvcc on PATH: '$(command -v nvcc || true)', /usr/local/cuda): install it from NVIDIA (or build in an nvidia/cuda:*-devel image), or pip install nvidia-cuda-nvcc nvidia-cuda-runtime and set CUDA_HOME to a folder holding their bin/nvcc and include/"
  export PATH="$cuda_root/bin:$PATH"   # FindCUDA looks for nvcc there
  cuda_major=$(nvcc --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
  flags+=(-DCPU_ONLY=OFF -DUSE_CUDNN=ON "-DCUDA_TOOLKIT_ROOT_DIR=$cuda_root" -DCUDA_ARCH_NAME=Manual
    "-DCUDA_ARCH_BIN=$cuda_arch" "-DCUDA_ARCH_PTX=${cuda_arch##* }")
  # nvcc 13 hides device entities and stubs templates by default; Caffe's test binary then fails to link.
  nvcc_flags="-std=c++17;-static-global-template-stub=false;-device-entity-has-hidden-visibility=false"
  wanted=()
  [ -f "$cuda_root/include/cublas_v2.h" ] || wanted+=("nvidia-cublas==$cuda_major.*" nvidia-curand)
  if cudnn=$(system_cudnn); then
    cudnn_include=${cudnn% *}; cudnn_library=${cudnn#* }
  else
    wanted+=("nvidia-cudnn-cu$cuda_major==$CUDNN_WHEEL_VERSION")
  fi
  if [ ${#wanted[@]} -gt 0 ]; then
    wheels=$(cuda_libs_from_wheels "${wanted[@]}") && [ -n "$wheels" ] || exit 1
    flags+=("-DCMAKE_CXX_FLAGS=-I$wheels/include" "-DCMAKE_LIBRARY_PATH=$wheels/lib"
      "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$wheels/lib")
    nvcc_flags+=";-I$wheels/include"
    [ -n "${cudnn_include:-}" ] || { cudnn_include=$wheels/include; cudnn_library=$wheels/lib/libcudnn.so; }
  fi
  flags+=("-DCUDA_NVCC_FLAGS=$nvcc_flags" "-DCUDNN_INCLUDE=$cudnn_include" "-DCUDNN_LIBRARY=$cudnn_library")
  cudnn_version=$(sed -n 's/^#define CUDNN_\(MAJOR\|MINOR\|PATCHLEVEL\) *\([0-9]*\).*/\2/p' "$cudnn_include/cudnn_version.h" | paste -sd.)
  nvcc_version=$(nvcc --version | tail -1)
  log "CUDA $(nvcc --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p') from $cuda_root, cuDNN $cudnn_version from $cudnn_include, SASS for sm_${cuda_arch// /, sm_} + PTX"
else
  flags+=(-DCPU_ONLY=ON)
  nvcc_version=none
  cudnn_version=none
fi
patches=("$here"/caffe-patches/*.patch)
key=$( {
  echo "schema $BUILD_SCHEMA source $ORIG_SHA256"
  sha256sum "${patches[@]}" | cut -d' ' -f1
  printf '%s\n' "${flags[@]}" "python $py_version $py_include" "nvcc $nvcc_version" "cudnn $cudnn_version"
  c++ --version | head -1
} | sha256sum | cut -c1-16)
variant=cpu; [ "$cuda" = 1 ] && variant=cuda
entry=$cache/caffe-$variant-$key
prefix=$entry/prefix

# ---- source --------------------------------------------------------------------------------
fetch_debian_orig() {  # $1 = download dir; prints the tarball path
  local dl=$1 uri
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1=="deb" && $0 ~ /debian/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -1)
  [ -n "$uri" ] || return 1
  local conf=$dl/apt
  mkdir -p "$conf/parts" "$conf/lists/partial"
  printf 'Types: deb-src\nURIs: %s\nSuites: bullseye\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" > "$conf/parts/caffe-src.sources"
  local o=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$conf/parts" -o "Dir::State::Lists=$conf/lists"
    -o "APT::Sandbox::User=root")
  apt-get "${o[@]}" -qq update >&2 || return 1
  (cd "$dl" && apt-get "${o[@]}" -qq source --download-only "caffe=$CAFFE_DEB_VERSION" >&2) || return 1
  ls "$dl"/caffe_*.orig.tar.gz
}
unpack_verified() {  # $1 = tarball, $2 = empty dir: the Debian orig by sha256, else any archive file by file
  local tarball=$1 dest=$2 got
  got=$(sha256sum "$tarball" | cut -d' ' -f1)
  if [ "$got" = "$ORIG_SHA256" ]; then
    tar xzf "$tarball" -C "$dest"
    log "source: $(basename "$tarball") = Debian caffe $CAFFE_DEB_VERSION orig (sha256 verified)"
    return
  fi
  tar xzf "$tarball" -C "$dest" --strip-components=1 2>/dev/null \
    && (cd "$dest" && sha256sum --quiet --strict -c "$here/caffe-source.sha256" >&2 2>/dev/null) \
    || die "Caffe source checksum mismatch for $tarball: expected sha256 $ORIG_SHA256 (Debian orig) or a tree matching tools/caffe/caffe-source.sha256 (GitHub archive of $CAFFE_COMMIT), got $got"
  log "source: $(basename "$tarball") (all $(wc -l < "$here/caffe-source.sha256") files verified)"
}
fetch_source() {  # $1 = empty dir to fill with the pristine tree
  local dest=$1 dl tarball
  dl=$(mktemp -d)
  if [ -n "$source_tarball" ]; then
    tarball=$source_tarball
  elif command -v apt-get >/dev/null && tarball=$(fetch_debian_orig "$dl"); then
    :
  else
    log "no Debian source mirror reachable; downloading the GitHub archive of BVLC/caffe $CAFFE_COMMIT"
    tarball=$dl/caffe-$CAFFE_COMMIT.tar.gz
    curl -fsSL "https://github.com/BVLC/caffe/archive/$CAFFE_COMMIT.tar.gz" -o "$tarball" \
      || die "could not download the Caffe source (no Debian mirror, no GitHub access): pass --source FILE"
  fi
  unpack_verified "$tarball" "$dest"
  rm -rf "$dl"
}

build_entry() {
  rm -rf "$entry"
  mkdir -p "$entry/src" "$entry/build"
  fetch_source "$entry/src"
  local p
  for p in "${patches[@]}"; do
    patch -d "$entry/src" -p1 --forward --quiet < "$p" >&2 || die "patch $(basename "$p") does not apply"
  done
  log "configuring ($variant, key $key)"
  (cd "$entry/build" && cmake "$entry/src" "${flags[@]}" -DCMAKE_INSTALL_PREFIX="$prefix" \
      -DPYTHON_EXECUTABLE="$python" -DPYTHON_INCLUDE_DIR="$py_include" -DPYTHON_LIBRARY="$py_library" \
      > cmake.log 2>&1) || { tail -30 "$entry/build/cmake.log" >&2; die "cmake failed (log above)"; }
  log "building with $jobs jobs (a CPU build takes ~3 min on 2 cores; log: $entry/build/make.log)"
  (cd "$entry/build" && make -j"$jobs" install > make.log 2>&1) \
    || { grep -m20 -E 'error|Error' "$entry/build/make.log" >&2 || true; die "build failed (first errors above)"; }
  "$python" - "$entry" "$key" "$variant" "$(c++ --version | head -1)" "$nvcc_version" "$cudnn_version" "${flags[@]}" <<'EOF'
import json, os, sys
entry, key, variant, compiler, nvcc, cudnn, *flags = sys.argv[1:]
info = {"key": key, "variant": variant, "cmake_flags": flags, "compiler": compiler, "nvcc": nvcc, "cudnn": cudnn,
        "source": "BVLC/caffe 99bd997 = Debian caffe 1.0.0+git20180821.99bd997-8 orig tarball",
        "orig_sha256": "e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c",
        "patches": sorted(os.environ["SDC_PATCHES"].split())}
tmp = os.path.join(entry, "BUILD_INFO.json.tmp")
with open(tmp, "w") as f:
    json.dump(info, f, indent=2)
os.replace(tmp, os.path.join(entry, "BUILD_INFO.json"))
EOF
}

if [ "$print_prefix" = 1 ]; then
  [ -f "$entry/BUILD_INFO.json" ] || die "no completed build at $entry"
  echo "$prefix"
  exit 0
fi
if [ "$check_source" = 1 ]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  fetch_source "$scratch"
  exit 0
fi

discard_failed_entry() {  # no half-built entry survives a failure or Ctrl-C; its logs are kept
  local f
  for f in "$entry"/build/*.log; do
    [ -f "$f" ] && cp "$f" "$cache/failed-$variant-$key-$(basename "$f")" && log "kept $cache/failed-$variant-$key-$(basename "$f")"
  done
  rm -rf "$entry"
}

# A completed entry is only read, so a cache (and venv) that this user cannot write still serve
# (docker run --user); building takes the entry's lock.
if [ -f "$entry/BUILD_INFO.json" ]; then
  log "cached build found: $entry"
else
  { mkdir -p "$cache" && [ -w "$cache" ]; } 2>/dev/null \
    || die "no build for these options in $cache, which uid $(id -u) cannot write: set SDC_CAFFE_CACHE (or --cache) to a writable folder"
  exec 9> "$entry.lock"
  flock 9
  if [ -f "$entry/BUILD_INFO.json" ]; then
    log "cached build found: $entry (another call built it meanwhile)"
  else
    trap discard_failed_entry EXIT
    SDC_PATCHES="$(cd "$here/caffe-patches" && sha256sum ./*.patch | tr -s ' ' ':')" build_entry
    trap - EXIT
    log "built in $SECONDS s"
  fi
fi

if [ "$with_tests" = 1 ]; then
  log "building Caffe's C++ unit tests ($TESTS)"
  (cd "$entry/build" && make -j"$jobs" test.testbin > make-tests.log 2>&1) \
    || { grep -m20 -E 'error|Error' "$entry/build/make-tests.log" >&2 || true; die "unit-test build failed"; }
  ln -sfn ../../build/test/test.testbin "$prefix/bin/caffe_unit_tests"
fi

if [ -n "$venv" ]; then
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  pth=$(printf '%s\n' "$prefix/python" "$repo/tools")
  { [ "$(cat "$site/sdc-caffe.pth" 2>/dev/null)" = "$pth" ] || echo "$pth" > "$site/sdc-caffe.pth"; } 2>/dev/null \
    && { [ "$(readlink "$venv/bin/caffe")" = "$prefix/bin/caffe" ] || ln -sfn "$prefix/bin/caffe" "$venv/bin/caffe"; } 2>/dev/null \
    || die "cannot link pycaffe into $venv, which uid $(id -u) cannot write: make it writable or pass another --venv"
  log "pycaffe and the caffe tool are now in $venv"
fi
echo "$prefix"
