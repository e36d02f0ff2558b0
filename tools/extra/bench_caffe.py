#!/usr/bin/env python3
"""Table 4 timings: `caffe time` per batch size, and pycaffe's time to classify one image.

    tools/extra/bench_caffe.py [--variants SDC-SN SDC-SN-ELF SDC-SN-ELF-MRF] [--batch 1 64]
                         [--iterations 20] [--pycaffe-repeats 50] [--weights-dir pretrained/weights]
                         [--image BMP | --neu-dir DIR] [--gpu N] [--per-layer] [--out docs/benchmark_cpu.md]

`caffe time` (TEST phase, 256x256 input): each deploy prototxt becomes a timing net whose Input
layer has the batch size and whose final Softmax is SoftmaxWithLoss on a constant label Input, so
the forward pass is the deploy net's and the backward pass is the one a training step runs (a net
without a loss has nothing to back-propagate). Inputs are Input layers (filled once), not gaussian
DummyData, which refills on the CPU every pass. Reported: forward ms/image and images/s per batch,
and forward+backward per batch.

pycaffe (batch 1, median of --pycaffe-repeats after one warm-up, with the authors' released weights
from --weights-dir; the values do not change the time): the forward pass alone
(sdc.inference.latency_ms, the number tools/evaluate.py puts in Table 4), and end to end, from the
BMP file to the class: read, resize 200->256, grey to BGR, mean, forward, argmax. --pycaffe-repeats 0
skips it. Writes the Markdown report and, beside it, a .json with the numbers and their provenance.
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

from tqdm import tqdm

import _init_paths  # noqa: F401  (tools/ on sys.path)
from sdc import atomic, caffe_env, cli, gpu, inference, neu, paths, provenance, split, tables, timing
from sdc.errors import UserError, run_main
from sdc.variants import VARIANTS

# The lines `caffe time` ends with (tools/caffe.cpp), one value each.
SUMMARY = {"forward_ms": re.compile(r"Average Forward pass: ([0-9.]+) ms"),
           "backward_ms": re.compile(r"Average Backward pass: ([0-9.]+) ms"),
           "forward_backward_ms": re.compile(r"Average Forward-Backward: ([0-9.]+) ms")}
LAYER_TIME = re.compile(r"\]\s+(\S+)\s+(forward|backward): ([0-9.]+) ms")


def parse_caffe_time(log):
    """The averages `caffe time` logged, with the summary lines they were read from, and per-layer times."""
    result, lines = {}, []
    for key, pattern in SUMMARY.items():
        match = pattern.search(log)
        if match is None:
            raise UserError(f"caffe time printed no '{pattern.pattern.split(':')[0]}' line: "
                            "check the Caffe build (tools/caffe/install_caffe.sh)")
        result[key] = float(match.group(1))
        lines.append(log[log.rfind("\n", 0, match.start()) + 1:log.find("\n", match.end())].strip())
    result["caffe_lines"] = lines
    result["layers"] = [(m.group(1), m.group(2), float(m.group(3))) for m in LAYER_TIME.finditer(log)]
    return result


def caffe_time(model_text, iterations, gpu_id):
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "timing.prototxt"
        model.write_text(model_text)
        cmd = [str(caffe_env.caffe_bin()), "time", f"-model={model}", "-phase=TEST", f"-iterations={iterations}"]
        if gpu_id is not None:
            cmd.append(f"-gpu={gpu_id}")
        run = subprocess.run(cmd, capture_output=True, text=True,
                             env={**os.environ, "GLOG_logtostderr": "1", "GLOG_minloglevel": "0"})
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"caffe time failed: {last}")
    return parse_caffe_time(run.stderr)


def released_model(weights_dir, variant):
    path = Path(weights_dir) / f"{variant}.caffemodel"
    if not path.is_file():
        raise UserError(f"{path} not found: run tools/fetch_pretrained.py {variant}, pass --weights-dir DIR "
                        "or --pycaffe-repeats 0")
    return path


def first_test_image(neu_dir):
    """The first image of the committed test split, wherever the NEU-CLS layout puts it."""
    name = Path(split.read_list(paths.SPLITS_DIR / "test.txt")[0][0]).name
    root = neu.locate(neu_dir)
    found = neu.scan(root).get(name)
    if not found:
        raise UserError(f"{name} not found under {root}: pass --image BMP or --neu-dir DIR")
    return found[0]


def end_to_end_ms(deploy, model, image_path, repeats, gpu_id):
    """Median wall time to classify the BMP at ``image_path`` (read, resize, mean, forward, argmax)
    after one warm-up, and the class it gets. Repeated reads come from the page cache."""
    net = inference.load_net(deploy, model, 1, gpu_id)
    data = net.blobs[inference.INPUT_BLOB].data

    def classify():
        data[0] = neu.network_input(image_path)
        data[0] -= inference.MEAN_BGR[:, None, None]
        return int(net.forward()[inference.OUTPUT_BLOB][0].argmax())

    return timing.median_ms(classify, repeats), classify()


def pycaffe_row(variant, model, image_path, repeats, gpu_id):
    deploy = paths.deploy_prototxt(variant)
    forward = inference.latency_ms(deploy, model, neu.network_input(image_path), repeats, gpu_id)
    end_to_end, predicted = end_to_end_ms(deploy, model, image_path, repeats, gpu_id)
    return {"variant": variant, "model": str(model), "image": str(image_path), "repeats": repeats,
            "forward_ms": forward, "end_to_end_ms": end_to_end, "predicted_class": neu.CLASSES[predicted].folder}


def paper_latency():
    """The paper's Table 4 running time of SDC-SN-ELF-MRF, with its source, from docs/paper_values.csv."""
    cell = tables.load_paper_values(paths.PAPER_VALUES).get(("4", "SDC-SN-ELF-MRF", "latency_ms"))
    return None if cell is None else {"ms_per_image": cell.value, "source": cell.source}


def markdown(record, per_layer):
    lines = [f"# Table 4 timings on {record['device']}", "",
             f"Command: `{record['command']}` (BLAS threads: {record['blas_threads']}; "
             f"wall time {record['wall_times_s']['benchmark']} s)", "",
             f"## `caffe time`, 256x256 input, TEST phase, iterations: {record['iterations']}", "",
             "| network | batch | forward ms/batch | forward ms/image | images/s (forward) "
             "| forward+backward ms/batch | training images/s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in record["caffe_time"]:
        lines.append(f"| {r['variant']} | {r['batch']} | {r['forward_ms']:.2f} | {r['forward_ms_per_image']:.2f} "
                     f"| {r['images_per_s']:.1f} | {r['forward_backward_ms']:.2f} "
                     f"| {1000 * r['batch'] / r['forward_backward_ms']:.1f} |")
    lines += ["", "forward+backward is one iteration of `caffe time` (no solver update; TEST phase, so "
              "dropout is off); training images/s = batch / that time."]
    if record["pycaffe"]:
        first = record["pycaffe"][0]
        lines += ["", f"## pycaffe, one image (batch 1), median of {first['repeats']} runs", "",
                  f"Image `{Path(first['image']).name}`; weights: the authors' released caffemodels "
                  "(the time does not depend on their values).", "",
                  "| network | forward ms/image | end to end ms/image (BMP -> class) | class given |",
                  "|---|---:|---:|---|"]
        lines += [f"| {r['variant']} | {r['forward_ms']:.2f} | {r['end_to_end_ms']:.2f} | {r['predicted_class']} |"
                  for r in record["pycaffe"]]
    paper = record["paper"]
    lines += ["", "Paper (Table 4): SDC-SN-ELF-MRF " + (
        f"{paper['ms_per_image']} ms/image on their GPU (source: {paper['source']})." if paper
        else "running time not transcribed in docs/paper_values.csv.")]
    if per_layer:
        for r in record["caffe_time"]:
            lines += ["", f"## {r['variant']}, batch {r['batch']}: per layer (ms)", "",
                      "| layer | pass | ms |", "|---|---|---:|"]
            lines += [f"| {name} | {kind} | {ms:.3f} |" for name, kind, ms in r["layers"]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    ap.add_argument("--batch", nargs="+", type=int, default=[1, 64])
    ap.add_argument("--iterations", type=int, default=20, help="`caffe time` iterations (default %(default)s)")
    ap.add_argument("--pycaffe-repeats", type=int, default=50,
                    help="timed pycaffe runs per network (0: skip pycaffe; default %(default)s)")
    ap.add_argument("--weights-dir", type=Path, default=paths.WEIGHTS_DIR,
                    help="folder with <variant>.caffemodel (default: pretrained/weights)")
    ap.add_argument("--image", type=Path, help="BMP to classify (default: the first test-split image in NEU-CLS)")
    cli.add_neu_dir(ap, ", for the default --image")
    cli.add_gpu(ap, "time on GPU N (default: CPU)")
    ap.add_argument("--per-layer", action="store_true", help="add the per-layer breakdown")
    ap.add_argument("--out", type=Path, help="markdown report (default docs/benchmark_<cpu|gpu>.md)")
    args = ap.parse_args(argv)
    if min(args.batch) < 1 or args.iterations < 1 or args.pycaffe_repeats < 0:
        raise UserError(f"--batch {args.batch} --iterations {args.iterations} --pycaffe-repeats "
                        f"{args.pycaffe_repeats}: give positive numbers (repeats may be 0)")
    if args.gpu is not None:
        gpu.require(args.gpu)
    caffe_env.import_caffe()
    out = args.out or paths.REPO / "docs" / f"benchmark_{'cpu' if args.gpu is None else 'gpu'}.md"
    models, image = {}, None
    if args.pycaffe_repeats:
        models = {variant: released_model(args.weights_dir, variant) for variant in args.variants}
        image = (args.image or first_test_image(args.neu_dir)).resolve()
        if not image.is_file():
            raise UserError(f"--image {args.image} not found: pass an existing BMP")
    started = time.time()
    rows, pycaffe = [], []
    with tqdm(total=len(args.variants) * (len(args.batch) + bool(models)), desc="benchmark", unit="run") as bar:
        for variant in args.variants:
            deploy = paths.deploy_prototxt(variant)
            for batch in args.batch:
                bar.set_postfix_str(f"caffe time {variant} batch {batch}")
                row = {"variant": variant, "batch": batch,
                       **caffe_time(timing.timing_net(deploy, batch), args.iterations, args.gpu)}
                row["forward_ms_per_image"] = row["forward_ms"] / batch
                row["images_per_s"] = 1000 * batch / row["forward_ms"]
                rows.append(row)
                bar.update()
            if models:
                bar.set_postfix_str(f"pycaffe {variant}")
                pycaffe.append(pycaffe_row(variant, models[variant], image, args.pycaffe_repeats, args.gpu))
                bar.update()
    command = " ".join(["tools/extra/bench_caffe.py", *(argv if argv is not None else sys.argv[1:])])
    record = provenance.collect(
        gpu=args.gpu, wall_times={"benchmark": round(time.time() - started, 1)}, command=command,
        blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", f"OpenBLAS default ({os.cpu_count()} cores)")
        if args.gpu is None else "n/a (GPU)",
        iterations=args.iterations, caffe_time=rows, pycaffe=pycaffe, paper=paper_latency())
    atomic.write_text(out, markdown(record, args.per_layer))
    for row in record["caffe_time"]:
        del row["layers"]
    atomic.write_text(out.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    run_main(main)
