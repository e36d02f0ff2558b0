#!/usr/bin/env bash
# The whole reproduction, from the NEU images to Tables 2-5 beside the paper's numbers: the three SDC
# variants fine-tuned and the Table 3 baselines (GLCM/AELTP/AECLBP x SVM/NNC/MLR, ETE, DeCAF+MLR).
#
#   tools/run_all.sh [--profile smoke|paper] [--gpu N] [--neu-dir DIR] [--pretrained-dir DIR]
#                    [--per-class N] [--max-iter N] [--eval-per-class N]
#                    [--data-dir DIR] [--runs-dir DIR] [--results-dir DIR]
#
# Profiles: `paper` trains with the committed solvers (GPU expected: ~6 h per model on 2 CPU cores);
# `smoke` (the default without --gpu) runs the same pipeline with a short schedule (tools/sdc/training.py)
# and evaluates on the first --eval-per-class test images per class (default 10; robustness curves on 5),
# in about 30 min on 2 CPU cores; its results are labelled as not the paper's schedule. --per-class N shrinks every data set
# (CI). Every stage skips work whose outputs are up to date, and training resumes from its last snapshot,
# so re-running after an interruption continues where it stopped. Results: <results-dir>/<profile>/.
set -euo pipefail
command_line="tools/run_all.sh $*"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { printf 'run_all: error: %s\n' "$*" >&2; exit 2; }

profile=""; gpu=""; per_class=""; max_iter=""; eval_per_class=""
data_dir=""; runs_dir=$repo/runs; results_dir=$repo/results
while [ $# -gt 0 ]; do
  case $1 in -h|--help) ;; -*) [ $# -ge 2 ] || die "$1 needs a value (see --help)" ;; esac
  case $1 in
    --profile) profile=$2; shift ;;
    --gpu) [[ $2 =~ ^[0-9]+$ ]] || die "--gpu must be a GPU number such as 0, not '$2'"; gpu=$2; shift ;;
    --neu-dir) export NEU_DIR=$2; shift ;;
    --pretrained-dir) export SDC_PRETRAINED_DIR=$2; shift ;;
    --per-class) per_class=$2; shift ;;
    --max-iter) max_iter=$2; shift ;;
    --eval-per-class) eval_per_class=$2; shift ;;
    --data-dir) data_dir=$2; shift ;;
    --runs-dir) runs_dir=$2; shift ;;
    --results-dir) results_dir=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
# The data paths a user gives are relative to where they typed them; the stages run in the repo.
for var in NEU_DIR SDC_PRETRAINED_DIR; do
  if [ -d "${!var:-}" ]; then export "$var=$(cd "${!var}" && pwd)"; fi
done
[ -n "$profile" ] || { if [ -n "$gpu" ]; then profile=paper; else profile=smoke; fi; }
case $profile in smoke|paper) ;; *) die "--profile must be smoke or paper, not '$profile'" ;; esac
[ -n "$eval_per_class" ] || { [ "$profile" = smoke ] && eval_per_class=10; }
[ -n "$data_dir" ] || data_dir=$repo/datasets/work${per_class:+/per-class-$per_class}
# A GPU run without a usable GPU stops here, in one line, before anything is built or written.
gpu_check() {  # $1 = the python, $2 = require_device (the driver) or require (also a CUDA build of Caffe)
  PYTHONPATH=$repo/tools "$1" -c 'import sys; from sdc import gpu; from sdc.errors import run_main
run_main(lambda: getattr(gpu, sys.argv[1])(int(sys.argv[2])))' "$2" "$gpu"
}
[ -z "$gpu" ] || gpu_check python3 require_device
# Every folder the run writes into must be writable by this user (docker run --user: see README.md);
# paths are made absolute: the tools run from other directories (Caffe trains inside its run dir).
writable_dir() {
  mkdir -p "$1" 2>/dev/null && [ -w "$1" ] && [ -x "$1" ] \
    || die "cannot write to $1: make it writable by uid $(id -u), or pass another folder (see --help)"
  cd "$1" && pwd
}
data_dir=$(writable_dir "$data_dir") || exit
runs=$(writable_dir "$runs_dir/$profile") || exit
results=$(writable_dir "$results_dir/$profile") || exit
(writable_dir "$repo/pretrained/weights" > /dev/null) || exit

# One run per results folder: a second stops here naming the first (the format of tools/sdc/lock.py).
results_lock=$(dirname "$results")/.$profile.lock
{ exec 8>> "$results_lock"; } 2>/dev/null || die "cannot write to $(dirname "$results"): make it writable by uid $(id -u)"
flock -n 8 || { holder=$(cat "$results_lock"); die "results folder $results is in use by ${holder:-another process}" \
  "(lock $results_lock): wait until it ends or stop it, then run this again"; }
printf 'pid %s since %s: %s\n' "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$command_line" > "$results_lock"

log=$runs/run_all-$(date +%Y%m%d-%H%M%S).log
stages=${log%.log}.stages.tsv  # for the run's provenance.json
exec > >(tee -a "$log" 8>&-) 2>&1
started=$SECONDS
stage() {
  printf '\n== [%s, +%ss] %s\n' "$(date +%H:%M:%S)" "$((SECONDS - started))" "$*"
  printf '%s\t%s\n' "$((SECONDS - started))" "$*" >> "$stages"
}

# SIGTERM (docker stop, also with this script as PID 1 of a container) or SIGINT: the running step gets
# SIGTERM (tools/train.py has Caffe snapshot and stop), the run waits for it and stops; running the
# same command again resumes. Steps run in the background so that the trap runs at once.
step_pid=""
stop_run() {  # $1 = the signal's name
  trap '' TERM INT
  echo "run_all: SIG$1 received: stopping${step_pid:+ the running step (pid $step_pid) and} the run;" \
    "run the same command again to resume"
  if [ -n "$step_pid" ]; then kill -TERM "$step_pid" 2>/dev/null || true; wait "$step_pid" || true; fi
  exit $((128 + $(kill -l "$1")))
}
trap 'stop_run TERM' TERM
trap 'stop_run INT' INT

stage "bootstrap (venv, Caffe)"
. "$repo/tools/bootstrap.sh"
if [ -n "$gpu" ]; then bootstrap --cuda; else bootstrap; fi
py() {  # a step: the project's Python, without the results lock's descriptor
  "$SDC_PY" "$@" 8>&- &
  step_pid=$!
  local status=0
  wait "$step_pid" || status=$?
  step_pid=""
  return "$status"
}
cd "$repo"
variant_list=$(py -c "from sdc.variants import VARIANTS; print(*VARIANTS)")
read -ra variants <<< "$variant_list"
gpu_args=(); [ -z "$gpu" ] || gpu_args=(--gpu "$gpu")
if [ -n "$gpu" ]; then
  gpu_check "$SDC_PY" require
elif [ "$profile" = paper ]; then
  echo "run_all: note: the paper profile on the CPU takes about 6 h per model on 2 cores (pass --gpu N)"
fi
per_class_args=(); [ -z "$per_class" ] || per_class_args=(--per-class "$per_class")

stage "verify NEU-CLS against datasets/NEU-CLS.sha256"
py tools/verify_neu.py

stage "weights: ImageNet SqueezeNet v1.0 init and the authors' released models"
# A weight file found nowhere is left out; one with a wrong sha1 stops the run (fetch_pretrained.py).
py tools/fetch_pretrained.py --missing-ok squeezenet_v1.0 "${variants[@]}"
if [ ! -f pretrained/weights/squeezenet_v1.0.caffemodel ]; then
  echo "run_all: the original squeezenet_v1.0.caffemodel is absent: fine-tuning starts from the Deep-Compression" \
    "stand-in decoded from compressed_SqueezeNet.net instead (docs/networks.md); each run's provenance.json names it"
  py tools/decode_deep_compression.py
fi
imagenet=$(py -c "from sdc import weights; print(weights.imagenet_weights())")
echo "ImageNet init: $imagenet"
released=()
for model in "${variants[@]}"; do
  if [ -f "pretrained/weights/$model.caffemodel" ]; then released+=("$model")
  else echo "released $model unavailable: its rows will say so"; fi
done

stage "split: the committed lists must be what the seeded splitter derives"
split_check=$(mktemp -d)
py tools/make_split.py --out-dir "$split_check" >/dev/null
for list in train.txt test.txt; do
  cmp -s "datasets/splits/$list" "$split_check/$list" \
    || die "datasets/splits/$list differs from what tools/make_split.py derives: restore it with git checkout"
done
rm -rf "$split_check"
echo "datasets/splits/train.txt and test.txt: as derived"

stage "diversity-enhanced test set"
py tools/make_enhanced.py --out "$data_dir/enhanced" "${per_class_args[@]}"

stage "LMDBs"
py tools/build_lmdb.py --enhanced "$data_dir/enhanced" --out "$data_dir/lmdb" "${per_class_args[@]}"
py tools/build_lmdb.py --out "$data_dir/lmdb" --only train_aug8 "${per_class_args[@]}"
eval_lmdb=$data_dir/lmdb
if [ -n "$eval_per_class" ]; then
  eval_lmdb=$data_dir/lmdb-eval-$eval_per_class
  py tools/build_lmdb.py --enhanced "$data_dir/enhanced" --out "$eval_lmdb" --per-class "$eval_per_class" \
    --only original lum_0.4 lum_1 noise_35 noise_20 blur_2 blur_5
fi

# A run is named for its folder: <variant>, or <variant>_sgd for the SGD solvers (solvers/<variant>_sgd_solver.prototxt).
# The paper's Adam at base_lr 0.01 collapses to one class within a few 180-image updates (docs/training.md),
# so the paper profile also trains each variant with SGD and the paper's other values, rows labelled so.
trained=("${variants[@]}" ETE)
[ "$profile" != paper ] || trained+=("${variants[@]/%/_sgd}")
variant_of() { echo "${1%_sgd}"; }
row_of() { case $1 in *_sgd) echo "${1%_sgd} (SGD instead of Adam)" ;; *) echo "$1" ;; esac; }
train_lmdb() { if [ "$1" = ETE ]; then echo "$data_dir/lmdb/train_aug8_lmdb"; else echo "$data_dir/lmdb/train_lmdb"; fi; }
for run in "${trained[@]}"; do
  stage "train $(row_of "$run") ($profile profile)"
  init=(--weights "$imagenet"); [ "$run" != ETE ] || init=()  # ETE trains from scratch
  solver=(); [ "$run" = "$(variant_of "$run")" ] || solver=(--solver "solvers/${run}_solver.prototxt")
  py tools/train.py --variant "$(variant_of "$run")" "${solver[@]}" --profile "$profile" --run-dir "$runs/$run" \
    "${init[@]}" --lmdb-dir "$data_dir/lmdb" ${max_iter:+--max-iter "$max_iter"} "${gpu_args[@]}"
done

evaluate() {  # $1 = row name, $2 = caffemodel, $3 = variant, [$4 = the LMDB it was trained on]
  py tools/evaluate.py --name "$1" --model "$2" --deploy "prototxt/$3_deploy.prototxt" \
    --lmdb-dir "$eval_lmdb" --out "$results/eval/$1" ${4:+--train-lmdb "$4"} "${gpu_args[@]}"
}
for run in "${trained[@]}"; do
  stage "evaluate $(row_of "$run")"
  evaluate "$(row_of "$run")" "$runs/$run/final.caffemodel" "$(variant_of "$run")" "$(train_lmdb "$run")"
done
for model in "${released[@]}"; do
  stage "evaluate released/$model (the authors' weights)"
  evaluate "released/$model" "pretrained/weights/$model.caffemodel" "$model"
done

stage "Table 3 baselines: GLCM, AELTP, AECLBP x SVM, NNC, MLR"
# native-200 (every image at the NEU size, degraded at 200x200) gives the plain rows; degraded-256-resized, the
# protocol that comes closest to the paper's numbers, the labelled ones (docs/baselines.md).
protocols=(native-200 degraded-256-resized)
py tools/make_enhanced.py --size 200 --out "$data_dir/enhanced-200" "${per_class_args[@]}"
py tools/classical_baselines.py --out "$results/eval" --train-lmdb "$data_dir/lmdb/train_lmdb" \
  --lmdb-dir "$eval_lmdb" --work-dir "$data_dir/features" --enhanced-200 "$data_dir/enhanced-200" \
  --protocols "${protocols[@]}"

stage "Table 3 baseline: DeCAF+MLR (ImageNet CaffeNet fc6 + multinomial logistic regression)"
py tools/decaf_mlr.py --out "$results/eval/DeCAF+MLR" --train-lmdb "$data_dir/lmdb/train_lmdb" \
  --lmdb-dir "$eval_lmdb" "${gpu_args[@]}"

stage "robustness curves (beyond the paper): accuracy vs SNR, alpha, blur length"
curve_models=()
for variant in "${variants[@]}"; do
  curve_models+=(--model "$variant" "$runs/$variant/final.caffemodel" "prototxt/${variant}_deploy.prototxt")
done
for model in "${released[@]}"; do
  curve_models+=(--model "released/$model" "pretrained/weights/$model.caffemodel" "prototxt/${model}_deploy.prototxt")
done
# one classical row under both Table 3 protocols, fitted as classical_baselines fits it (its feature cache)
for protocol in "${protocols[@]}"; do curve_models+=(--classical AECLBP+SVM "$protocol"); done
curve_per_class=${per_class:-$([ "$profile" = smoke ] && echo 5 || true)}
py tools/extra/robustness_curves.py "${curve_models[@]}" --out "$results/robustness" --lmdb-dir "$data_dir/lmdb" \
  --train-lmdb "$data_dir/lmdb/train_lmdb" --work-dir "$data_dir/features" \
  ${curve_per_class:+--per-class "$curve_per_class"} "${gpu_args[@]}"

stage "tables and figures"
py tools/make_tables.py --profile "$profile" --results "$results" --lmdb-dir "$eval_lmdb"
py tools/make_figures.py --profile "$profile" --results "$results" --lmdb-dir "$eval_lmdb"
for run in "${trained[@]}"; do  # each run's curve, logs, solver, net and provenance, without machine paths
  py tools/export_run.py "$runs/$run" "$results/logs/$(row_of "$run")"
done

stage "done in $((SECONDS - started)) s"
py tools/run_provenance.py --out "$results" --stages "$stages" --command "$command_line" "${gpu_args[@]}" \
  --from "$results" "$data_dir"
py tools/export_run.py "$log" "$results/logs" >/dev/null
echo "results: $results/tables.md (log: $log)"
