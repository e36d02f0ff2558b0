#!/usr/bin/env bash
# Everything that needs the GPU, as one command on a GPU machine that has no build tools and no
# pycaffe (e.g. an H100 or H200 with Python 3, numpy and the nvidia-* wheels under /opt).
#
#   tools/caffe/gpu_session.sh prepare [--cuda-prefix P] [--cpu-prefix P] [--kit DIR]     (here)
#   tools/caffe/gpu_session.sh run [--kit DIR] [--out DIR] [--budget SECONDS]             (GPU machine)
#   tools/caffe/gpu_session.sh dry-run [--out DIR]                                        (here, CPU only)
#
# prepare packs the kit (default .carry/gpu-session, git-ignored, carried to the GPU machine):
#   caffe-gpu.tar.xz  the CUDA build (tools/caffe/bundle_caffe.sh --with-unit-tests): caffe, dump_net_io,
#                     caffe_unit_tests, their libraries; the launcher finds cuBLAS/cuRAND/cuDNN/cudart
#   nets/             timing nets of the three variants, batch 1, 18, 64, engine cuDNN and CAFFE
#   equiv/            the same nets at batch 2, for the CPU/GPU comparison
#   reference.tar.xz  dump_net_io of each variant by the CPU build here (outputs and gradients)
#   KIT.json          which builds, commit and settings made the kit
# run (writes $OUT, default /tmp/gpu-session-out; at most 8 files come back from the GPU machine):
#   1. versions: GPU, driver, CUDA runtime, cuDNN, cuBLAS (wheel versions and the loaded libraries)
#   2. dump_net_io of each variant on the GPU (cuDNN and CAFFE engines, TF32 off; two passes, so
#      the cached cuDNN algorithm path is compared too), and on the CPU of the same bundle, each
#      compared with the reference (tools/caffe/compare_net_io.py, rel_max <= 1e-4); the batched CAFFE
#      engine against its per-image loops (CAFFE_CONV_BATCH_BYTES=0) on the GPU (<= 1e-5); cuDNN
#      with TF32 allowed against the reference, for information
#   3. Caffe's GPU unit tests for the layers our nets use (Convolution incl. CuDNN, Pooling, ReLU
#      and the other neuron layers incl. Dropout, Concat, Softmax, SoftmaxWithLoss, the solvers incl.
#      Adam) with NVIDIA_TF32_OVERRIDE=0; then the convolution tests again with TF32 allowed, to
#      show whether the gradient checks need the override
#   4. `caffe time -phase=TEST` of every timing net, in this order: cuDNN with TF32 allowed (cuDNN's
#      default), the CAFFE engine (batched), cuDNN with NVIDIA_TF32_OVERRIDE=0, the CAFFE engine
#      with Caffe's per-image loops; the logs hold the per-layer times
#   Steps that do not fit --budget (default 480 s) are skipped and say so.
#   Written: summary.txt (also printed), equivalence.json, logs.tar.xz (every log, gtest XML).
# dry-run: prepare a kit from the CPU build (batch 1 only) and run it on the CPU, into --out
#   (default a temporary folder): the same script end to end, without a GPU.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
log() { printf 'gpu_session: %s\n' "$*" >&2; }
die() { printf 'gpu_session: error: %s\n' "$*" >&2; exit 1; }
readonly VARIANTS="SDC-SN SDC-SN-ELF SDC-SN-ELF-MRF"

# ---- prepare (here) ---------------------------------------------------------------------------
prepare() {
  local cuda_prefix="" cpu_prefix="" kit=$repo/.carry/gpu-session batches="1 18 64"
  while [ $# -gt 0 ]; do
    case $1 in
      --cuda-prefix) cuda_prefix=$2; shift ;;
      --cpu-prefix) cpu_prefix=$2; shift ;;
      --kit) kit=$2; shift ;;
      --batch) batches=$2; shift ;;
      *) die "prepare: unknown option '$1'" ;;
    esac
    shift
  done
  local py=$repo/.venv/bin/python
  [ -x "$py" ] || die "no project venv at $repo/.venv: run tools/run_tests.sh once"
  if [ -z "$cpu_prefix" ]; then
    cpu_prefix=$("$py" -c 'from sdc import caffe_env; print(caffe_env.prefix())') \
      || die "no CPU build linked into .venv: run tools/caffe/install_caffe.sh --venv .venv"
  fi
  if [ -z "$cuda_prefix" ]; then
    cuda_prefix=$("$here/install_caffe.sh" --cuda --cuda-arch 90 --python "$py" --print-prefix) \
      || die "no CUDA build for sm_90: run tools/caffe/install_caffe.sh --cuda --cuda-arch 90 --python $py --with-caffe-tests"
  fi
  for p in "$cpu_prefix" "$cuda_prefix"; do
    [ -x "$p/bin/dump_net_io" ] || die "$p has no dump_net_io (tools/caffe/caffe-patches/0006): rebuild it with tools/caffe/install_caffe.sh"
  done
  local final=$kit
  kit=$final.partial   # renamed to $final when complete: a failed prepare leaves no half kit
  rm -rf "$kit"
  mkdir -p "$kit"
  log "timing and comparison nets"
  # shellcheck disable=SC2086
  "$py" "$here/make_session_nets.py" "$kit/nets" --batch $batches >/dev/null
  "$py" "$here/make_session_nets.py" "$kit/equiv" --batch 2 >/dev/null
  log "reference: one forward/backward per variant with the CPU build $cpu_prefix"
  local ref=$kit/.reference v
  for v in $VARIANTS; do
    mkdir -p "$ref/$v"
    GLOG_minloglevel=2 "$cpu_prefix/bin/dump_net_io" --model="$kit/equiv/${v}_b2_cudnn.prototxt" --out="$ref/$v" \
      || die "dump_net_io failed on $v with the CPU build"
  done
  tar -C "$ref" --sort=name --mtime=@0 --owner=0 --group=0 -cf - . | xz -9 -T0 > "$kit/reference.tar.xz"
  rm -rf "$ref"
  log "bundling the CUDA build $cuda_prefix"
  "$here/bundle_caffe.sh" "$cuda_prefix" --with-unit-tests --out "$kit/caffe-gpu.tar.xz" >/dev/null
  "$py" - "$kit" "$cuda_prefix" "$cpu_prefix" <<'EOF'
import json, sys
from pathlib import Path
from sdc import atomic, provenance
kit, cuda_prefix, cpu_prefix = sys.argv[1:]
info = {"git_commit": provenance.git_commit(),
        "cuda_build": json.loads((Path(cuda_prefix).parent / "BUILD_INFO.json").read_text()),
        "cpu_build_for_reference": json.loads((Path(cpu_prefix).parent / "BUILD_INFO.json").read_text()),
        "files": {p.name: p.stat().st_size for p in sorted(Path(kit).iterdir()) if p.is_file()}}
atomic.write_text(Path(kit) / "KIT.json", json.dumps(info, indent=1) + "\n")
EOF
  rm -rf "$final"
  mv "$kit" "$final"
  log "kit ready: $final ($(du -sh "$final" | cut -f1)); on the GPU machine: bash tools/caffe/gpu_session.sh run (carry ${final#"$repo"/})"
  echo "$final"
}

# ---- run (GPU machine) ------------------------------------------------------------------------
untar() {  # $1 = .tar.xz, $2 = folder; with Python's tarfile: the GPU machine may lack xz(1)
  python3 - "$1" "$2" <<'EOF'
import sys, tarfile
with tarfile.open(sys.argv[1]) as tar:
    try:
        tar.extractall(sys.argv[2], filter="tar")
    except TypeError:  # Python < 3.11.4 has no filter argument
        tar.extractall(sys.argv[2])
EOF
}

run() {
  # Each step is checked on its own: one that fails is reported and the others still run.
  set +e
  local kit=$repo/.carry/gpu-session budget=480 cpu=0 iterations=30 unit_filter=""
  out=${OUT:-/tmp/gpu-session-out}   # globals: the EXIT trap (finish) reads them after run returns
  while [ $# -gt 0 ]; do
    case $1 in
      --kit) kit=$2; shift ;;
      --out) out=$2; shift ;;
      --budget) budget=$2; shift ;;
      --iterations) iterations=$2; shift ;;
      --unit-filter) unit_filter=$2; shift ;;
      --cpu) cpu=1 ;;   # dry run: the same steps in CPU mode
      *) die "run: unknown option '$1'" ;;
    esac
    shift
  done
  [ -f "$kit/caffe-gpu.tar.xz" ] || die "no kit at $kit: run 'tools/caffe/gpu_session.sh prepare' first and carry ${kit#"$repo"/}"
  export GLOG_logtostderr=1 GLOG_minloglevel=0   # full logs: `caffe time` reports at INFO level
  mkdir -p "$out" || die "cannot create $out"
  started=$SECONDS
  work=$(mktemp -d /tmp/gpu-session.XXXXXX)
  logs=$work/logs
  summary=$out/summary.txt
  mkdir -p "$logs"
  : > "$summary"
  say() { printf '%s\n' "$*" | tee -a "$summary" >&2; }
  fits() {  # $1 = seconds the next step may take
    if [ $((SECONDS - started + $1)) -gt "$budget" ]; then say "SKIPPED (budget $budget s): $2"; return 1; fi
  }
  finish() {
    python3 - "$work/logs" "$out/logs.tar.xz" <<'EOF'
import sys, tarfile
with tarfile.open(sys.argv[2], "w:xz") as tar:
    tar.add(sys.argv[1], arcname="logs")
EOF
    say "wall time: $((SECONDS - started)) s; logs: $out/logs.tar.xz"
    rm -rf "$work"
  }
  trap finish EXIT

  untar "$kit/caffe-gpu.tar.xz" "$work" || { say "FAIL: cannot unpack $kit/caffe-gpu.tar.xz"; return 1; }
  local bundle
  bundle=$(echo "$work"/caffe-*/)
  bundle=${bundle%/}
  local caffe=$bundle/bin/caffe-run gpu_flag=() mode=GPU
  [ "$cpu" = 1 ] && mode=CPU || gpu_flag=(-gpu=0)
  say "== sdc-caffe GPU session ($mode mode), kit $(basename "$kit"), build $(sed -n 's/.*"key": "\(.*\)".*/\1/p' "$bundle/BUILD_INFO.json")"

  # 1. versions, and the CUDA libraries the launcher will use
  {
    date -u; uname -a; python3 --version 2>&1 || true
    nvidia-smi 2>&1 || true
  } > "$logs/env.txt"
  if [ "$cpu" = 0 ]; then
    say "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
    local dirs="" soname hit
    for soname in $(cat "$bundle/cuda-libs.txt"); do
      hit=$(find /opt /usr/local /usr/lib -name "$soname" \( -type f -o -type l \) 2>/dev/null | sort | head -1)
      [ -n "$hit" ] || { say "FAIL: $soname not found under /opt /usr/local /usr/lib"; return 1; }
      case ":$dirs:" in *":$(dirname "$hit"):"*) ;; *) dirs=${dirs:+$dirs:}$(dirname "$hit") ;; esac
    done
    export CAFFE_CUDA_LIBS=$dirs
    say "CUDA libraries: $dirs"
    python3 - "$dirs" <<'EOF' 2>&1 | tee -a "$summary" >&2 || true
import ctypes, glob, os, sys
dirs = sys.argv[1].split(":")
def lib(name):
    for d in dirs:
        hits = sorted(glob.glob(os.path.join(d, name)))
        if hits:
            return ctypes.CDLL(hits[0])
rt, dnn = lib("libcudart.so.*"), lib("libcudnn.so.*")
v = ctypes.c_int()
rt.cudaDriverGetVersion(ctypes.byref(v)); driver = v.value
rt.cudaRuntimeGetVersion(ctypes.byref(v)); runtime = v.value
print(f"versions loaded: CUDA driver API {driver // 1000}.{driver % 1000 // 10}, "
      f"runtime {runtime // 1000}.{runtime % 1000 // 10}, cuDNN {dnn.cudnnGetVersion()}")
wheels = sorted({os.path.basename(p) for d in dirs
                 for p in glob.glob(os.path.join(d, "..", "..", "..", "nvidia_*.dist-info"))})
print("wheels:", " ".join(w.removesuffix(".dist-info") for w in wheels))
EOF
    "$caffe" device_query -gpu=0 > "$logs/device_query.txt" 2>&1 || say "FAIL: caffe device_query (see logs/device_query.txt)"
  fi

  # 2. CPU/GPU equivalence against the CPU build's reference
  if fits 120 "CPU/GPU equivalence"; then
    mkdir -p "$work/ref" "$logs/equiv"
    untar "$kit/reference.tar.xz" "$work/ref"
    local v engine label
    dump() {  # $1 = label, $2 = net, then dump_net_io's flags; environment from the caller
      mkdir -p "$work/dumps/$1"
      "$caffe" dump_net_io --model="$2" --out="$work/dumps/$1" "${@:3}" \
        > "$logs/equiv/$1.log" 2>&1 || { say "FAIL: dump_net_io $1 (logs/equiv/$1.log)"; return 1; }
    }
    compare() {  # $1 = label, $2 = reference dir, $3 = candidate dir, $4 = rtol
      python3 "$here/compare_net_io.py" "$2" "$3" --rtol "$4" --label "$1" --json "$logs/equiv/$1.json" 2>&1 \
        | tee -a "$summary" >&2
    }
    for v in $VARIANTS; do
      for engine in cudnn caffe; do
        [ "$cpu" = 1 ] && [ "$engine" = cudnn ] && continue   # one CPU path: the engine is ignored there
        label=$v.$engine.$mode.tf32-off
        # Two passes: the second takes the cached cuDNN algorithms (patch 0005).
        NVIDIA_TF32_OVERRIDE=0 dump "$label" "$kit/equiv/${v}_b2_$engine.prototxt" --passes=2 "${gpu_flag[@]}" || continue
        compare "$label" "$work/ref/$v" "$work/dumps/$label" 1e-4
        compare "$label.pass2" "$work/ref/$v" "$work/dumps/$label/pass2" 1e-4
      done
      [ "$cpu" = 1 ] && continue
      # Batched GPU convolution (patch 0007) against Caffe's own per-image loops, same GPU.
      label=$v.caffe.GPU.per-image
      CAFFE_CONV_BATCH_BYTES=0 NVIDIA_TF32_OVERRIDE=0 dump "$label" "$kit/equiv/${v}_b2_caffe.prototxt" -gpu=0 \
        && compare "$v.caffe.GPU.batched-vs-per-image" "$work/dumps/$label" "$work/dumps/$v.caffe.GPU.tf32-off" 1e-5
      label=$v.cudnn.GPU.tf32-default
      dump "$label" "$kit/equiv/${v}_b2_cudnn.prototxt" -gpu=0 \
        && compare "$label (information only)" "$work/ref/$v" "$work/dumps/$label" 1e-4
      label=$v.bundle-CPU   # the CUDA build's own CPU code (engine CAFFE: cuDNN layers have none)
      dump "$label" "$kit/equiv/${v}_b2_caffe.prototxt" && compare "$label" "$work/ref/$v" "$work/dumps/$label" 1e-4
    done
    python3 - "$logs/equiv" "$out/equivalence.json" <<'EOF'
import json, sys
from pathlib import Path
folder, out = Path(sys.argv[1]), Path(sys.argv[2])
merged = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
out.write_text(json.dumps(merged, indent=1) + "\n")
EOF
  fi

  # 3. Caffe's own unit tests
  local listing
  listing=$(cd "$bundle" && "$caffe" caffe_unit_tests --gtest_list_tests 2>/dev/null) || { say "FAIL: caffe_unit_tests does not start"; return 1; }
  if [ -z "$unit_filter" ]; then
    # The GPU instances: suites typed on TestDtypesAndDevices (CPU float, CPU double, GPU float,
    # GPU double: /2 and /3), and every instance of the GPU-only CuDNN* and *GPU* suites.
    unit_filter=$(printf '%s\n' "$listing" | awk '
      /^[A-Za-z][A-Za-z0-9_]*\/[0-9]+\.$/ { split($1, p, "/"); n[p[1]]++; suite[++k] = p[1]; at[k] = p[2] + 0 }
      END { for (i = 1; i <= k; i++)
              if (suite[i] ~ /GPU|^CuDNN/ || (n[suite[i]] == 4 && at[i] >= 2)) print suite[i] "/" at[i] ".*" }' \
      | paste -sd:)
  fi
  if fits 240 "unit tests"; then
    (cd "$bundle" && NVIDIA_TF32_OVERRIDE=0 GLOG_minloglevel=2 timeout 240 "$caffe" caffe_unit_tests \
       --gtest_filter="$unit_filter" --gtest_output="xml:$logs/unit_tests.xml") > "$logs/unit_tests.txt" 2>&1 \
      && say "unit tests (NVIDIA_TF32_OVERRIDE=0): $(grep -E '^\[  PASSED  \]' "$logs/unit_tests.txt")" \
      || say "FAIL unit tests (NVIDIA_TF32_OVERRIDE=0): $(grep -E '^\[  (PASSED|FAILED)  \] [0-9]' "$logs/unit_tests.txt" | paste -sd' ') $(tail -1 "$logs/unit_tests.txt"); failed: $(grep -E '^\[  FAILED  \] [A-Za-z]' "$logs/unit_tests.txt" | sed 's/^.*\] //; s/ .*//' | sort -u | head -30 | paste -sd' ')"
  fi
  if [ "$cpu" = 0 ] && fits 90 "convolution unit tests with TF32 allowed"; then
    local conv_filter
    conv_filter=$(printf '%s\n' "$unit_filter" | tr ':' '\n' | grep -i convolution | paste -sd:)
    (cd "$bundle" && GLOG_minloglevel=2 timeout 90 "$caffe" caffe_unit_tests --gtest_filter="$conv_filter") \
      > "$logs/unit_tests_tf32.txt" 2>&1 \
      && say "convolution unit tests with TF32 allowed: $(grep -E '^\[  PASSED  \]' "$logs/unit_tests_tf32.txt")" \
      || say "convolution unit tests with TF32 allowed (information only): $(grep -E '^\[  (PASSED|FAILED)  \] [0-9]' "$logs/unit_tests_tf32.txt" | paste -sd' ') (failures: logs/unit_tests_tf32.txt)"
  fi

  # 4. caffe time of every timing net, the most wanted settings first (the budget may end it):
  #    net engine, setting, environment
  local settings=("cudnn tf32-default" "caffe batched" "cudnn tf32-off NVIDIA_TF32_OVERRIDE=0"
                  "caffe per-image CAFFE_CONV_BATCH_BYTES=0")
  [ "$cpu" = 1 ] && settings=("cudnn cpu" "caffe cpu")
  local entry net_engine tag environment net name
  for entry in "${settings[@]}"; do
    read -r net_engine tag environment <<< "$entry"
    for net in "$kit"/nets/*_"$net_engine".prototxt; do
      name=$(basename "$net" .prototxt)
      fits 30 "caffe time $name $tag" || continue
      # shellcheck disable=SC2086
      if env $environment timeout 120 "$caffe" time -model="$net" -phase=TEST \
          -iterations="$iterations" "${gpu_flag[@]}" > "$logs/time_${name}_$tag.log" 2>&1; then
        say "time $name $tag: $(grep -oE 'Average (Forward pass|Backward pass|Forward-Backward): [0-9.]+ ms' \
              "$logs/time_${name}_$tag.log" | sed 's/Average //' | paste -sd';')"
      else
        say "FAIL: caffe time $name $tag ($(tail -1 "$logs/time_${name}_$tag.log"))"
      fi
    done
  done
  cp "$kit/KIT.json" "$logs/" 2>/dev/null || true
  awk '/information only/ {next} /^FAIL|: FAIL/ {failed = 1} END {exit failed}' "$summary"
}

# ---- dry run (here, CPU) ----------------------------------------------------------------------
dry_run() {
  local dry_out=""  # not "out": run sets that global, which its EXIT trap reads
  while [ $# -gt 0 ]; do
    case $1 in
      --out) dry_out=$2; shift ;;
      *) die "dry-run: unknown option '$1'" ;;
    esac
    shift
  done
  local cpu_prefix kit
  cpu_prefix=$("$repo/.venv/bin/python" -c 'from sdc import caffe_env; print(caffe_env.prefix())') \
    || die "no CPU build linked into .venv: run tools/caffe/install_caffe.sh --venv .venv --with-caffe-tests"
  [ -x "$cpu_prefix/bin/caffe_unit_tests" ] || die "$cpu_prefix has no unit tests: rebuild with --with-caffe-tests"
  kit=$(mktemp -d /tmp/gpu-session-kit.XXXXXX)
  [ -n "$dry_out" ] || dry_out=$(mktemp -d /tmp/gpu-session-out.XXXXXX)
  prepare --cuda-prefix "$cpu_prefix" --cpu-prefix "$cpu_prefix" --kit "$kit" --batch 1 >/dev/null
  local status=0
  run --kit "$kit" --out "$dry_out" --cpu --iterations 2 --unit-filter 'ConcatLayerTest/0.*:SoftmaxWithLossLayerTest/0.*:ConvolutionLayerTest/0.TestSimpleConvolution' \
    || status=$?
  rm -rf "$kit"
  log "dry run wrote $dry_out"
  return $status
}

case ${1:-} in
  prepare) shift; prepare "$@" ;;
  run) shift; run "$@" ;;
  dry-run) shift; dry_run "$@" ;;
  *) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0"; exit 2 ;;
esac
