#!/usr/bin/env sh
# Fine-tune SDC-SN-ELF with the plain Caffe CLI, BVLC-examples style (the paper schedule, no resume logic,
# no learning curve: tools/train.py --variant SDC-SN-ELF does all that). Run from the repo root, after
# tools/build_lmdb.py; extra arguments go to caffe (e.g. --gpu 0). WEIGHTS overrides the ImageNet init.
set -e
mkdir -p runs/paper/SDC-SN-ELF/snapshots
.venv/bin/caffe train --solver=solvers/SDC-SN-ELF_solver.prototxt \
  --weights="${WEIGHTS:-pretrained/weights/squeezenet_v1.0.caffemodel}" "$@"
