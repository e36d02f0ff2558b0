#!/usr/bin/env python3
"""Build the Caffe LMDBs: train_lmdb and test_<subset>_lmdb for the 7 test subsets.

Records are Caffe Datums, 3 x 256 x 256 uint8 (grey replicated into B, G, R), keyed
'<8-digit index>_<path>' in list order. The 200x200 originals (train, test 'original') get one
bilinear resize to 256 (OpenCV INTER_LINEAR sampling, see docs/data.md); images that are already
256x256 (the enhanced set) are stored as they are. Each LMDB is built in a temporary folder,
verified (count, shape, labels) and renamed into place; it is skipped when its inputs are unchanged.

--only train_aug8 builds train_aug8_lmdb, the ETE baseline's training set: every training image
x {rot0, rot90, rot180, rot270} x {as is, mirrored left-right} (1440 x 8 = 11,520), keyed
'<index>_<path>@<transform>' and stored in a seeded random order, because Caffe's Data layer reads
in key order and never shuffles. It is not built by default.

--external SUBSET=DIR builds test_<SUBSET>_lmdb from another enhanced set instead (e.g. the
authors' published one): every image under DIR, labelled by its file-name prefix (Cr_, In_, ...)
or its class folder name.
"""
import argparse
import hashlib
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sdc import cli, degrade, hashing, lmdb_io, lock, neu, paths, provenance, split
from sdc.errors import UserError, run_main

TARGETS = ("train",) + degrade.TEST_SUBSETS
DIHEDRAL = tuple(f"rot{90 * k}{flip}" for flip in ("", "_flip") for k in range(4))
AUGMENT_SEED = 42
IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"}
FORMAT_VERSION = 1  # bump when the records change for the same inputs


def dihedral(image, transform):
    """``image`` rotated counter-clockwise by the angle of a DIHEDRAL name, then mirrored for *_flip."""
    rotated = np.rot90(image, int(transform[3:].removesuffix("_flip")) // 90)
    return np.fliplr(rotated) if transform.endswith("_flip") else rotated


def encode_record(item):
    """(key, Datum bytes) of one list entry, resized to the network side when it is not already,
    then transformed when its path ends in '@<DIHEDRAL name>'."""
    index, rel, path, label = item
    image = neu.load(path)
    if image.shape != (neu.NETWORK_SIDE, neu.NETWORK_SIDE):
        image = neu.resize_bilinear(image, neu.NETWORK_SIDE)
    _, _, transform = rel.partition("@")
    if transform:
        image = dihedral(image, transform)
    return lmdb_io.record_key(index, rel), lmdb_io.encode(image, label)


def augmented_entries(entries):
    """Every entry under each DIHEDRAL transform, in a seeded random order."""
    augmented = [(f"{rel}@{transform}", path, label) for rel, path, label in entries for transform in DIHEDRAL]
    order = np.random.default_rng(AUGMENT_SEED).permutation(len(augmented))
    return [augmented[i] for i in order]


def neu_entries(list_path, files, per_class):
    entries = split.first_per_class(split.read_list(list_path), per_class)
    return [(rel, files[Path(rel).name], label) for rel, label in entries]


def enhanced_entries(root, subset, per_class):
    list_path = Path(root) / f"{subset}.txt"
    if not list_path.is_file():
        raise UserError(f"{list_path} not found: run tools/make_enhanced.py (or pass --enhanced)")
    entries = split.first_per_class(split.read_list(list_path), per_class and per_class * degrade.DRAWS)
    return [(rel, Path(root) / rel, label) for rel, label in entries]


def external_entries(root, per_class):
    """Every image under ``root``, sorted by label and name, labelled from its path."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"--external folder {root} not found")
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        label = neu.label_from_path(path.relative_to(root))
        if label is None:
            raise UserError(f"{path}: no class in its name or folders (expected a Cr_/In_/Pa_/PS_/RS_/Sc_ "
                            f"prefix or a class folder such as crazing/)")
        entries.append((str(path.relative_to(root)), path, label))
    if not entries:
        raise UserError(f"--external folder {root} holds no images")
    entries.sort(key=lambda e: (e[2], e[0]))
    kept = set(split.first_per_class([(rel, label) for rel, _, label in entries], per_class))
    return [e for e in entries if (e[0], e[2]) in kept]


def fingerprint(entries):
    digest = hashlib.sha256(f"format {FORMAT_VERSION} side {neu.NETWORK_SIDE}\n".encode())
    for rel, path, label in entries:
        digest.update(f"{rel} {label} {hashing.sha256_file(path)}\n".encode())
    return digest.hexdigest()


def collect(args):
    """{target: [(relative path, file, label)]} of the LMDBs to build."""
    external = degrade.parse_subset_options(args.external, "--external", "DIR")
    targets = args.only or TARGETS
    needs_neu = any(t in ("train", lmdb_io.AUGMENTED, "original") and t not in external for t in targets)
    files = neu.verified_files(neu.locate(args.neu_dir)) if needs_neu else {}
    plan = {}
    for target in targets:
        if target in external:
            plan[target] = external_entries(external[target], args.per_class)
        elif target == lmdb_io.AUGMENTED:
            plan[target] = augmented_entries(neu_entries(Path(args.splits) / "train.txt", files, args.per_class))
        elif target in ("train", "original"):
            list_name = "train.txt" if target == "train" else "test.txt"
            plan[target] = neu_entries(Path(args.splits) / list_name, files, args.per_class)
        else:
            plan[target] = enhanced_entries(args.enhanced, target, args.per_class)
    return plan


def build(dest, entries, digest, pool):
    items = [(index, rel, path, label) for index, (rel, path, label) in enumerate(entries)]
    records = pool.imap(encode_record, items, chunksize=16)
    labels = [label for _, _, label in entries]
    lmdb_io.write(dest, tqdm(records, total=len(items), desc=dest.name, unit="image"), labels,
                  neu.NETWORK_SIDE, digest, first=entries[0][0], last=entries[-1][0])


def build_all(args, plan):
    """Build (or with --check verify) every LMDB of ``plan`` in args.out; one provenance record for the folder."""
    times = {}
    with multiprocessing.Pool(args.jobs) as pool:
        for target, entries in plan.items():
            dest = args.out / lmdb_io.lmdb_name(target)
            labels = [label for _, _, label in entries]
            start = time.time()
            if args.check:
                counts = lmdb_io.verify(dest, labels, neu.NETWORK_SIDE)
                print(f"{dest}: OK, {sum(counts.values())} records, per label {dict(sorted(counts.items()))}")
                continue
            digest = fingerprint(entries)
            if lmdb_io.is_current(dest, digest):
                print(f"{dest}: up to date ({len(entries)} records)")
            else:
                build(dest, entries, digest, pool)
                times[target] = round(time.time() - start, 2)
    if times:
        # One record per folder, which run_all.sh fills in two calls (the 8 LMDBs, then train_aug8).
        earlier = provenance.read(args.out)
        seeds = {**earlier.get("seeds", {}), **({"train_aug8_order": AUGMENT_SEED} if lmdb_io.AUGMENTED in plan else {})}
        provenance.write(args.out, wall_times={**earlier.get("wall_times_s", {}), **times}, seeds=seeds,
                         command="tools/build_lmdb.py",
                         inputs={**earlier.get("inputs", {}), **{t: len(e) for t, e in plan.items()}},
                         per_class=args.per_class,
                         external=degrade.parse_subset_options(args.external, "--external", "DIR"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_neu_dir(parser)
    parser.add_argument("--splits", default=paths.SPLITS_DIR, help="folder of train.txt/test.txt (default: %(default)s)")
    parser.add_argument("--enhanced", default=paths.ENHANCED_DIR, help="make_enhanced.py output (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=paths.LMDB_DIR, help="default: %(default)s")
    parser.add_argument("--only", nargs="+", choices=TARGETS + (lmdb_io.AUGMENTED,),
                        help=f"build only these (default: the 8 of {', '.join(TARGETS)})")
    parser.add_argument("--external", action="append", default=[], metavar="SUBSET=DIR",
                        help="take test subset SUBSET from the images under DIR (repeatable)")
    parser.add_argument("--per-class", type=int, help="smoke test: only the first N images per class "
                        "(N x 5 draws for the enhanced subsets)")
    parser.add_argument("--check", action="store_true", help="only verify the existing LMDBs against their lists")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes (default: %(default)s)")
    args = parser.parse_args()
    plan = collect(args)
    with lock.held(args.out, "LMDB folder"):
        build_all(args, plan)
    return 0


if __name__ == "__main__":
    run_main(main)
