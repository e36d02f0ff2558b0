#!/usr/bin/env python3
"""Time the networks with `caffe time`: forward and forward+backward per batch size.

    tools/bench_caffe.py [--variants SDC-SN SDC-SN-ELF SDC-SN-ELF-MRF] [--batch 1 18]
                         [--iterations 20] [--gpu N] [--per-layer] [--out docs/benchmark_cpu.md]

Each deploy prototxt is turned into a timing net: its Input layer gets the batch size, and the
final Softmax becomes SoftmaxWithLoss on a constant label Input, so that `caffe time` runs the
backward pass a training step runs (a net without a loss has nothing to back-propagate).
Inputs are Input layers (filled once), not gaussian DummyData, which refills on the CPU every pass.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from google.protobuf import text_format

from sdc import atomic, caffe_env, gpu, provenance
from sdc.errors import UserError, run_main

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ["SDC-SN", "SDC-SN-ELF", "SDC-SN-ELF-MRF"]
TIMES = {"forward_ms": r"Average Forward pass: ([0-9.]+) ms",
         "backward_ms": r"Average Backward pass: ([0-9.]+) ms",
         "forward_backward_ms": r"Average Forward-Backward: ([0-9.]+) ms"}
LAYER_TIME = re.compile(r"\]\s+(\S+)\s+(forward|backward): ([0-9.]+) ms")


def timing_net(deploy_path, batch):
    """The deploy net with batch-size inputs and a loss, as NetParameter text."""
    net = caffe_env.read_proto(deploy_path, caffe_env.caffe_pb2().NetParameter())
    data = next(layer for layer in net.layer if layer.type == "Input")
    data.input_param.shape[0].dim[0] = batch
    label = net.layer.add(name="label", type="Input", top=["label"])
    label.input_param.shape.add(dim=[batch])
    net.layer.insert(1, label)
    del net.layer[-1]
    softmax = net.layer[-1]
    if softmax.type != "Softmax":
        raise UserError(f"{deploy_path}: expected the last layer to be Softmax, found {softmax.type}")
    softmax.type = "SoftmaxWithLoss"
    softmax.name = softmax.top[0] = "loss"
    softmax.bottom.append("label")
    return text_format.MessageToString(net)


def caffe_time(model_text, iterations, gpu_id):
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "timing.prototxt"
        model.write_text(model_text)
        cmd = [str(caffe_env.caffe_bin()), "time", f"-model={model}", f"-iterations={iterations}"]
        if gpu_id is not None:
            cmd.append(f"-gpu={gpu_id}")
        run = subprocess.run(cmd, capture_output=True, text=True,
                             env={**os.environ, "GLOG_logtostderr": "1", "GLOG_minloglevel": "0"})
    if run.returncode != 0:
        raise UserError(f"caffe time failed: {run.stderr.strip().splitlines()[-1]}")
    result = {key: float(re.search(pattern, run.stderr).group(1)) for key, pattern in TIMES.items()}
    result["layers"] = [(m.group(1), m.group(2), float(m.group(3))) for m in LAYER_TIME.finditer(run.stderr)]
    return result


def markdown(rows, device, command, per_layer):
    lines = [f"# Caffe timing on {device}", "", f"Command: `{command}`", "",
             "| network | batch | forward ms/batch | forward ms/image | images/s (forward) "
             "| forward+backward ms/batch | training images/s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        fwd, fb, b = r["forward_ms"], r["forward_backward_ms"], r["batch"]
        lines.append(f"| {r['variant']} | {b} | {fwd:.2f} | {fwd / b:.2f} | {1000 * b / fwd:.0f} "
                     f"| {fb:.2f} | {1000 * b / fb:.0f} |")
    lines += ["", "forward+backward is one iteration of `caffe time` (no solver update); "
              "training images/s = batch / that time."]
    if per_layer:
        for r in rows:
            lines += ["", f"## {r['variant']}, batch {r['batch']}: per layer (ms)", "",
                      "| layer | pass | ms |", "|---|---|---:|"]
            lines += [f"| {name} | {kind} | {ms:.3f} |" for name, kind, ms in r["layers"]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    ap.add_argument("--batch", nargs="+", type=int, default=[1, 18])
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--gpu", type=int, default=None, metavar="N", help="time on GPU N (default: CPU)")
    ap.add_argument("--per-layer", action="store_true", help="add the per-layer breakdown")
    ap.add_argument("--out", type=Path, help="markdown report (default docs/benchmark_<cpu|gpu>.md)")
    args = ap.parse_args(argv)
    if args.gpu is not None:
        gpu.require(args.gpu)
    caffe_env.import_caffe()
    out = args.out or REPO / "docs" / f"benchmark_{'cpu' if args.gpu is None else 'gpu'}.md"
    rows = []
    started = time.time()
    for variant in args.variants:
        deploy = REPO / "prototxt" / f"{variant}_deploy.prototxt"
        for batch in args.batch:
            print(f"timing {variant} batch {batch} ...", file=sys.stderr, flush=True)
            rows.append({"variant": variant, "batch": batch,
                         **caffe_time(timing_net(deploy, batch), args.iterations, args.gpu)})
    device = provenance.device_description(args.gpu)
    command = "tools/bench_caffe.py " + " ".join(argv if argv is not None else sys.argv[1:])
    atomic.write_text(out, markdown(rows, device, command.strip(), args.per_layer))
    record = provenance.collect(gpu=args.gpu, wall_times={"benchmark": round(time.time() - started, 1)},
                                command=command.strip(), results=[{k: v for k, v in r.items() if k != "layers"}
                                                                  for r in rows])
    atomic.write_text(out.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    run_main(main)
