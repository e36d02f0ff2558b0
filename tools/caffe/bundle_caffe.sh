#!/usr/bin/env bash
# Pack a Caffe build into a relocatable, xz-compressed tarball that runs on a machine without
# build tools or the system packages it was built against.
#
#   tools/caffe/bundle_caffe.sh PREFIX [--out FILE.tar.xz] [--with-unit-tests]
#
# PREFIX is a build's prefix (tools/caffe/install_caffe.sh prints it). The tarball holds one folder,
# caffe-<variant>-<key>/, with
#   bin/            the Caffe tools (caffe, dump_net_io, upgrade_net_proto_text, ...)
#   bin/caffe-run   the launcher: sets LD_LIBRARY_PATH and runs a tool (default: caffe)
#   lib/            libcaffe and every library it and the tools need, except the C runtime
#                   (glibc, libstdc++, libgcc_s) and the NVIDIA libraries (driver, cudart, cuBLAS,
#                   cuRAND, cuDNN), which the target machine supplies
#   python/caffe/proto/caffe_pb2.py  the build's generated caffe.proto module: with CAFFE_PREFIX set to
#                   the bundle, the package's tools read and write Caffe's files without pycaffe
#   BUILD_INFO.json the build's source hash, patches and flags; bundle.json: what was bundled
#   cuda-libs.txt   the NVIDIA libraries the launcher must find (empty for a CPU build)
# --with-unit-tests adds bin/caffe_unit_tests and the test data it reads (src/caffe/test/test_data),
# for running Caffe's own tests on a GPU machine (tools/caffe/gpu_session.sh).
set -euo pipefail

log() { printf 'bundle_caffe: %s\n' "$*" >&2; }
die() { printf 'bundle_caffe: error: %s\n' "$*" >&2; exit 1; }

prefix=""; out=""; with_tests=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift ;;
    --with-unit-tests) with_tests=1 ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$prefix" ] || die "one PREFIX only (got '$prefix' and '$1')"; prefix=$1 ;;
  esac
  shift
done
[ -n "$prefix" ] || die "no PREFIX given: pass the build prefix tools/caffe/install_caffe.sh printed"
prefix=$(cd "$prefix" 2>/dev/null && pwd) || die "no such folder: $prefix"
entry=$(dirname "$prefix")
readonly PB2=python/caffe/proto/caffe_pb2.py
[ -x "$prefix/bin/caffe" ] && [ -f "$entry/BUILD_INFO.json" ] && [ -f "$prefix/$PB2" ] \
  || die "$prefix is not a completed Caffe build (needs bin/caffe, $PB2 and ../BUILD_INFO.json): run tools/caffe/install_caffe.sh"
name=$(basename "$entry")
[ -n "$out" ] || out=$PWD/$name.tar.xz
out=$(cd "$(dirname "$out")" 2>/dev/null && pwd)/$(basename "$out") || die "no folder for --out $out"
if [ "$with_tests" = 1 ]; then
  [ -x "$prefix/bin/caffe_unit_tests" ] \
    || die "$prefix has no caffe_unit_tests: rebuild with tools/caffe/install_caffe.sh --with-caffe-tests"
fi

# Libraries the target machine supplies: the C/C++ runtime, and NVIDIA's (its driver, and the CUDA
# libraries a user installs with the toolkit or takes from PyPI wheels).
readonly SYSTEM_LIBS='^(ld-linux.*|linux-vdso.*|lib(c|m|mvec|pthread|dl|rt|resolv|util|anl|nsl|BrokenLocale|stdc\+\+|gcc_s)\.so.*)$'
readonly NVIDIA_LIBS='^lib(cuda|cudart|cublas|cublasLt|curand|cudnn.*|nvblas|nvrtc.*|nvJitLink|nvidia-.*)\.so.*$'

stage=$(mktemp -d)
tmp_out=""
trap 'rm -rf "$stage" ${tmp_out:+"$tmp_out"}' EXIT
root=$stage/$name
mkdir -p "$root/bin" "$root/lib"

for tool in "$prefix"/bin/*; do
  [ "$(basename "$tool")" = caffe_unit_tests ] && continue
  cp "$tool" "$root/bin/"
done
if [ "$with_tests" = 1 ]; then
  cp -L "$prefix/bin/caffe_unit_tests" "$root/bin/"
  mkdir -p "$root/src/caffe/test"   # the tests name their data relative to the source root
  cp -r "$entry/src/src/caffe/test/test_data" "$root/src/caffe/test/"
fi
cp -L "$prefix"/lib/libcaffe.so.* "$root/lib/"
mkdir -p "$root/$(dirname "$PB2")"
cp "$prefix/$PB2" "$root/$PB2"

# The dependency closure as the build's own loader resolves it (RUNPATHs included).
: > "$stage/cuda-libs"
: > "$stage/bundled"
for elf in "$root"/bin/* "$prefix"/lib/libcaffe.so; do
  { ldd "$elf" 2>/dev/null || true; } | awk '$2 == "=>" {print $1, $3}'
done | sort -u | while read -r soname path; do
  if [[ $soname =~ $SYSTEM_LIBS ]]; then continue; fi
  if [[ $soname =~ $NVIDIA_LIBS ]]; then echo "$soname" >> "$stage/cuda-libs"; continue; fi
  [ "$path" != "not" ] || die "the build's own loader cannot find $soname (ldd says 'not found')"
  [[ $soname == libcaffe.so* ]] && continue
  cp -L "$path" "$root/lib/$soname"
  echo "$soname $(readlink -f "$path")" >> "$stage/bundled"
done
sort -u "$stage/cuda-libs" > "$root/cuda-libs.txt"
cp "$entry/BUILD_INFO.json" "$root/"
python3 - "$root" "$stage/bundled" <<'EOF'
import hashlib, json, os, sys
root, bundled = sys.argv[1:]
files = {}
for folder, _, names in os.walk(root):
    for n in sorted(names):
        path = os.path.join(folder, n)
        with open(path, "rb") as f:
            files[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
origin = dict(line.split() for line in open(bundled))
info = {"libraries_from": origin, "sha256": files}
with open(os.path.join(root, "bundle.json"), "w") as f:
    json.dump(info, f, indent=1, sort_keys=True)
EOF

cat > "$root/bin/caffe-run" <<'EOF'
#!/bin/sh
# Run a tool of this Caffe bundle with the bundle's libraries.
#   caffe-run [--cuda-libs DIR[:DIR...]] [TOOL] ARGS...   (TOOL: a program in bin/, default caffe)
# The NVIDIA libraries named in cuda-libs.txt (a CUDA build's cudart, cuBLAS, cuRAND, cuDNN) are
# taken from --cuda-libs, else $CAFFE_CUDA_LIBS, else the system's loader cache, else the first
# folder under $CAFFE_CUDA_SEARCH (default: /opt /usr/local /usr/lib $HOME/.local) that holds
# them, such as a Python environment's site-packages/nvidia/*/lib from PyPI's nvidia-* wheels.
PATH=${PATH:-/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin}
here=$(cd "$(dirname "$0")/.." && pwd)
cuda_libs=${CAFFE_CUDA_LIBS:-}
if [ "${1:-}" = --cuda-libs ]; then cuda_libs=$2; shift 2; fi
tool=caffe
if [ $# -gt 0 ] && [ -x "$here/bin/$1" ] && [ "$1" != caffe-run ]; then tool=$1; shift; fi

found_in() {  # $1 = soname, $2 = colon-separated folders
  old_ifs=$IFS; IFS=:
  for d in $2; do
    if [ -e "$d/$1" ]; then IFS=$old_ifs; return 0; fi
  done
  IFS=$old_ifs; return 1
}
search=${CAFFE_CUDA_SEARCH:-/opt /usr/local /usr/lib ${HOME:+$HOME/.local}}
extra=$cuda_libs
for soname in $(cat "$here/cuda-libs.txt"); do
  found_in "$soname" "$extra" && continue
  [ -n "$cuda_libs" ] && { echo "caffe-run: $soname is not in --cuda-libs/CAFFE_CUDA_LIBS ($cuda_libs)" >&2; exit 2; }
  ldconfig -p 2>/dev/null | grep -q " $soname " && continue
  # shellcheck disable=SC2086
  hit=$(find $search -name "$soname" \( -type f -o -type l \) 2>/dev/null | sort | head -1)
  if [ -z "$hit" ]; then
    echo "caffe-run: $soname not found (searched the loader cache and $search): pass --cuda-libs DIR or set CAFFE_CUDA_LIBS to the folder(s) holding $(tr '\n' ' ' < "$here/cuda-libs.txt")(e.g. pip install nvidia-cublas nvidia-curand nvidia-cudnn-cu13 nvidia-cuda-runtime and use their site-packages/nvidia/*/lib)" >&2
    exit 2
  fi
  extra=${extra:+$extra:}$(dirname "$hit")
done
LD_LIBRARY_PATH=$here/lib${extra:+:$extra}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
exec "$here/bin/$tool" "$@"
EOF
chmod +x "$root/bin/caffe-run"

log "packing $(du -sh "$root" | cut -f1) from $prefix ($(wc -l < "$stage/bundled") libraries bundled; needs from the target: $(tr '\n' ' ' < "$root/cuda-libs.txt")C runtime)"
tmp_out=$(mktemp "$out.XXXXXX")
tar -C "$stage" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - "$name" \
  | xz -9 -c > "$tmp_out"
chmod 644 "$tmp_out"
mv "$tmp_out" "$out"
tmp_out=""
log "wrote $out ($(du -h "$out" | cut -f1))"
echo "$out"
