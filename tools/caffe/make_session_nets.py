#!/usr/bin/env python3
"""Write the nets a GPU session runs with the bundled `caffe` (no pycaffe there), two per variant
and batch: the timing net of tools/extra/bench_caffe.py (sdc.timing.timing_net) as is (a cuDNN
build then uses cuDNN for convolution, average pooling, ReLU and softmax), and the same net with
every layer that has an engine set to CAFFE (Caffe's own CUDA kernels: the path without cuDNN).

    tools/caffe/make_session_nets.py OUT_DIR [--variants ...] [--batch 1 18 64]

Files: OUT_DIR/<variant>_b<batch>_<cudnn|caffe>.prototxt.
"""
import argparse
from pathlib import Path

from google.protobuf import text_format

import _init_paths  # noqa: F401  (tools/ on sys.path)
from sdc import atomic, caffe_env, paths, timing
from sdc.errors import run_main
from sdc.variants import VARIANTS

# Layer types with a cuDNN implementation, and the parameter that holds their engine.
# SoftmaxWithLoss builds its Softmax from its own softmax_param.
ENGINE_FIELD = {"Convolution": "convolution_param", "Deconvolution": "convolution_param",
                "Pooling": "pooling_param", "ReLU": "relu_param", "Sigmoid": "sigmoid_param",
                "TanH": "tanh_param", "LRN": "lrn_param", "Softmax": "softmax_param",
                "SoftmaxWithLoss": "softmax_param"}


def with_caffe_engine(net_text):
    """The net with engine: CAFFE on every layer that has a cuDNN implementation."""
    net = text_format.Parse(net_text, caffe_env.caffe_pb2().NetParameter())
    for layer in net.layer:
        if layer.type in ENGINE_FIELD:
            params = getattr(layer, ENGINE_FIELD[layer.type])
            params.engine = type(params).CAFFE
    return text_format.MessageToString(net)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    ap.add_argument("--batch", nargs="+", type=int, default=[1, 18, 64])
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for variant in args.variants:
        deploy = paths.deploy_prototxt(variant)
        for batch in args.batch:
            text = timing.timing_net(deploy, batch)
            atomic.write_text(args.out / f"{variant}_b{batch}_cudnn.prototxt", text)
            atomic.write_text(args.out / f"{variant}_b{batch}_caffe.prototxt", with_caffe_engine(text))
    print(args.out)


if __name__ == "__main__":
    run_main(main)
