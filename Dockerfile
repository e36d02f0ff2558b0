# sdc-caffe in a container: the CUDA build of the pinned BVLC Caffe, the project's venv, and
# tools/run_all.sh as the entry point (default: the paper profile on GPU 0). See README.md, "Docker":
#   docker build -t sdc-caffe .
#   docker run --gpus all --name sdc-paper -v /path/to/NEU-CLS:/data/NEU-CLS:ro \
#     -v /path/to/weights:/data/weights:ro -v "$PWD/results:/opt/sdc-caffe/results" \
#     -v "$PWD/runs:/opt/sdc-caffe/runs" sdc-caffe
# run_all.sh handles SIGTERM itself, also as the container's PID 1: `docker stop` makes the running
# training snapshot, and `docker start` resumes from that snapshot.
# tests/test_dockerfile.py lints this file (hadolint) and runs or checks every command it runs.
FROM nvidia/cuda:13.0.2-cudnn-devel-ubuntu24.04

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# As root: Python for the venv, git for the commit in provenance.json, the build packages
# tools/caffe/install_caffe.sh checks for (it can install them only as root), and the project folder,
# owned by the base image's unprivileged user `ubuntu` (uid 1000, named by number for the host).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv python3-dev git \
      build-essential cmake pkg-config ca-certificates curl xz-utils \
      libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-python-dev \
      libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev \
      libhdf5-dev liblmdb-dev libopenblas-dev \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o 1000 -g 1000 /opt/sdc-caffe /opt/sdc-caffe-cache

USER 1000:1000
WORKDIR /opt/sdc-caffe
# The Caffe build cache at a fixed path instead of under $HOME, so that `docker run --user` with
# another uid (whose HOME is /) finds the build; tools/caffe/install_caffe.sh only reads a completed one.
ENV SDC_CAFFE_CACHE=/opt/sdc-caffe-cache
# Caffe first, from only the files its build reads, so that a change elsewhere in the project keeps
# this layer. It is the bootstrap `tools/run_all.sh --gpu N` starts with, which then finds this
# build in its cache (~/.cache/sdc-caffe) instead of compiling again. Ubuntu has no Debian source
# mirror: install_caffe.sh takes the GitHub archive of BVLC/caffe 99bd997, checked file by file.
COPY --chown=1000:1000 requirements.txt ./
COPY --chown=1000:1000 tools/bootstrap.sh tools/
COPY --chown=1000:1000 tools/caffe/install_caffe.sh tools/caffe/caffe-source.sha256 tools/caffe/
COPY --chown=1000:1000 tools/caffe/caffe-patches tools/caffe/caffe-patches/
RUN . tools/bootstrap.sh && bootstrap --cuda

COPY --chown=1000:1000 . .
ENV NEU_DIR=/data/NEU-CLS \
    SDC_PRETRAINED_DIR=/data/weights
ENTRYPOINT ["tools/run_all.sh"]
CMD ["--profile", "paper", "--gpu", "0"]
