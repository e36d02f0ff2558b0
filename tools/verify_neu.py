#!/usr/bin/env python3
"""Check a NEU-CLS copy against the committed manifest (datasets/NEU-CLS.sha256).

Accepts any folder layout (official class folders, Kaggle train/valid/test): files are matched
by name. Prints one line per problem (missing class or file, extra file, bad checksum, wrong size).
"""
import argparse
from collections import Counter

from sdc import cli, neu
from sdc.errors import UserError, run_main


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_neu_dir(parser)
    parser.add_argument("--manifest", default=neu.MANIFEST, help="sha256sum manifest (default: %(default)s)")
    args = parser.parse_args()
    root = neu.locate(args.neu_dir)
    files, problems = neu.check(root, args.manifest)
    for problem in problems:
        print(problem)
    if problems:
        raise UserError(f"{root}: {len(problems)} problems (listed above); re-download NEU-CLS "
                        f"or point --neu-dir at an intact copy")
    per_class = Counter(neu.label_of(name) for name in files)
    counts = ", ".join(f"{c.prefix} {per_class[label]}" for label, c in enumerate(neu.CLASSES))
    print(f"{root}: OK, {len(files)} files match {args.manifest} ({counts})")
    return 0


if __name__ == "__main__":
    run_main(main)
