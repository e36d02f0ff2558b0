# sdc-caffe in a container: CUDA build of the pinned BVLC Caffe + the project venv.
#   docker build -t sdc-caffe .
#   docker run --gpus all -v /path/to/NEU-CLS:/data/NEU-CLS:ro -v /path/to/weights:/data/weights:ro \
#              -v "$PWD/results:/opt/sdc-caffe/results" sdc-caffe                # paper profile on GPU 0
# Ubuntu has no Debian source mirror, so install_caffe.sh takes the GitHub archive of BVLC/caffe 99bd997
# and checks every file against tools/caffe-source.sha256.
FROM nvidia/cuda:13.0.1-cudnn-devel-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    NEU_DIR=/data/NEU-CLS \
    SDC_PRETRAINED_DIR=/data/weights
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev git ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/sdc-caffe
COPY . .
# The same bootstrap tools/run_all.sh and tools/run_tests.sh run (apt packages, .venv, Caffe build).
RUN bash -c '. tools/bootstrap.sh && bootstrap --cuda'

ENTRYPOINT ["tools/run_all.sh"]
CMD ["--profile", "paper", "--gpu", "0"]
