#!/usr/bin/env python3
"""Generate the diversity-enhanced test set from the held-out NEU-CLS images.

Six subsets (lum_0.4, lum_1, noise_35, noise_20, blur_2, blur_5), each with 5 random draws per
test image (60 x 5 = 300 per class), degraded at the network's 256x256 input size by default
(--size 200 degrades the native images instead). Output under --out:
  <subset>/<class folder>/<image>_<draw>.png   lossless 8-bit grey PNGs
  <subset>.txt                                 Caffe list files, paths relative to --out
  MANIFEST.sha256                              sha256sum of the PNG files (sha256sum -c works)
  PIXELS.sha256                                sha256 of each image's decoded pixels (zlib-independent)
  generation.json, provenance.json             seed and settings; what produced it
A seed gives the same pixels on any machine with the pinned numpy. Skips work when the output
already matches the inputs and settings.
"""
import argparse
import hashlib
import io
import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from sdc import atomic, cli, degrade, hashing, neu, paths, provenance, split
from sdc.errors import UserError, run_main

FORMAT_VERSION = 1  # bump when the generator's output changes for the same settings


def png_bytes(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def degrade_one_image(job):
    """All draws of all subsets of one test image, written under ``job['root']``."""
    name, source, label = job["name"], job["source"], job["label"]
    image = neu.load(source)
    if job["size"] != image.shape[0]:
        image = neu.resize_bilinear(image, job["size"])
    stem, folder = Path(name).stem, neu.CLASSES[label].folder
    rows = []
    for subset in degrade.SUBSETS:
        for draw in range(degrade.DRAWS):
            rng = degrade.rng_for(job["seed"], subset, name, draw)
            out = degrade.degrade(image, subset, rng, job["padding"])
            rel = f"{subset}/{folder}/{stem}_{draw}.png"
            data = png_bytes(out)
            (job["root"] / rel).write_bytes(data)
            rows.append((subset, rel, label, hashlib.sha256(data).hexdigest(),
                         hashlib.sha256(out.tobytes()).hexdigest()))
    return rows


def settings_fingerprint(settings, sources):
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for name, path in sources:
        digest.update(f"{name} {hashing.sha256_file(path)}\n".encode())
    return digest.hexdigest()


def generate(sources, root, settings, jobs):
    """Degrade every source image into ``root``; rows (subset, rel, label, file sha, pixel sha)."""
    for subset in degrade.SUBSETS:
        for c in neu.CLASSES:
            (root / subset / c.folder).mkdir(parents=True, exist_ok=True)
    work = [dict(settings, name=name, source=path, label=neu.label_of(name), root=root) for name, path in sources]
    with multiprocessing.Pool(jobs) as pool:
        results = pool.imap(degrade_one_image, work, chunksize=4)
        return [row for rows in tqdm(results, total=len(work), desc="enhanced set", unit="image") for row in rows]


def write_index(root, rows):
    """List files and both manifests; returns the sha256 of PIXELS.sha256 (the set's identity)."""
    for subset in degrade.SUBSETS:
        (root / f"{subset}.txt").write_text("".join(f"{rel} {label}\n" for s, rel, label, _, _ in rows
                                                    if s == subset))
    (root / "MANIFEST.sha256").write_text("".join(f"{fsha}  {rel}\n" for _, rel, _, fsha, _ in rows))
    pixels = "".join(f"{psha}  {rel}\n" for _, rel, _, _, psha in rows)
    (root / "PIXELS.sha256").write_text(pixels)
    return hashlib.sha256(pixels.encode()).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_test_images(parser, size_help="side at which images are degraded: 256 (network input, default) "
                                          "or 200 (native)")
    parser.add_argument("--out", type=Path, default=paths.ENHANCED_DIR, help="default: %(default)s")
    parser.add_argument("--padding", choices=degrade.PADDINGS, default="replicate",
                        help="motion-blur border: replicate (default) or zero (MATLAB imfilter's default)")
    parser.add_argument("--per-class", type=int, help="smoke test: only the first N test images per class")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes (default: %(default)s)")
    args = parser.parse_args()
    if args.size < 2:
        raise UserError(f"--size {args.size}: give the side in pixels, e.g. 256 or 200")
    files = neu.verified_files(neu.locate(args.neu_dir))
    entries = split.first_per_class(split.read_list(args.test_list), args.per_class)
    sources = [(Path(rel).name, files[Path(rel).name]) for rel, _ in entries]
    settings = dict(seed=args.seed, size=args.size, padding=args.padding, draws=degrade.DRAWS,
                    subsets=list(degrade.SUBSETS), numpy=np.__version__, format_version=FORMAT_VERSION)
    fingerprint = settings_fingerprint(settings, sources)
    info_path = args.out / "generation.json"
    if info_path.is_file() and json.loads(info_path.read_text()).get("fingerprint") == fingerprint:
        print(f"{args.out}: up to date (seed {args.seed}, size {args.size})")
        return 0
    start = time.time()
    with atomic.atomic_path(args.out) as root:
        rows = generate(sources, root, settings, args.jobs)
        set_id = write_index(root, rows)
        info = dict(settings, fingerprint=fingerprint, images=len(rows), source_images=len(sources),
                    test_list=str(args.test_list), pixels_sha256=set_id)
        (root / "generation.json").write_text(json.dumps(info, indent=2) + "\n")
        provenance.write(root, seeds={"enhanced": args.seed}, wall_times={"generate": round(time.time() - start, 2)},
                         command="tools/make_enhanced.py", settings=settings)
    print(f"wrote {len(rows)} images to {args.out} (seed {args.seed}, size {args.size}, pixels {set_id[:16]})")
    return 0


if __name__ == "__main__":
    run_main(main)
