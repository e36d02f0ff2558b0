#!/usr/bin/env python3
"""Write the fixed NEU-CLS split: 240 train / 60 test images per class, seeded, as Caffe lists.

The split is computed from the committed manifest alone (names and checksums; byte-identical
files such as Pa_101/Pa_105 stay on one side), so it needs no image data. Writes train.txt (in
a seeded random order: the training order) and test.txt, lines '<class folder>/<file> <label>'.
"""
import argparse

from sdc import neu, paths, split
from sdc.errors import run_main


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", default=neu.MANIFEST, help="sha256sum manifest (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=split.DEFAULT_SEED, help="default: %(default)s")
    parser.add_argument("--out-dir", default=paths.SPLITS_DIR, help="default: %(default)s")
    args = parser.parse_args()
    train, test = split.make_split(neu.read_manifest(args.manifest), seed=args.seed)
    split.write_list(f"{args.out_dir}/train.txt", train)
    split.write_list(f"{args.out_dir}/test.txt", test)
    print(f"wrote {args.out_dir}/train.txt ({len(train)}) and test.txt ({len(test)}), seed {args.seed}")
    return 0


if __name__ == "__main__":
    run_main(main)
