#!/usr/bin/env python3
"""Fetch and sha1-verify the pretrained weights listed in pretrained/readme.md into pretrained/weights/.

Each file is taken from a local directory (--from DIR, else SDC_PRETRAINED_DIR; searched recursively)
or downloaded from its manifest URL (not with --offline). A file whose sha1 differs is never used: it
is an error, also with --missing-ok, which lets only a file found nowhere pass (tools/run_all.sh then
uses the decoded Deep-Compression stand-in for an absent squeezenet_v1.0 and leaves out the rows of
absent released models).
"""
import argparse

from sdc import paths, weights
from sdc.errors import UserError, run_main


def main():
    models = weights.read_manifest()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"model ids (default: all): {', '.join(models)}")
    parser.add_argument("--from", dest="from_dir", metavar="DIR",
                        help=f"local directory holding the files (default: ${weights.ENV_DIR})")
    parser.add_argument("--dest", default=paths.WEIGHTS_DIR, metavar="DIR",
                        help="where verified files go (default: pretrained/weights)")
    parser.add_argument("--offline", action="store_true", help="never download")
    parser.add_argument("--missing-ok", action="store_true",
                        help="a model found nowhere is reported, not an error (a wrong sha1 still is)")
    args = parser.parse_args()
    unknown = sorted(set(args.models) - set(models))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(models)}")
    failures = []
    for model_id in args.models or models:
        try:
            path = weights.fetch(models[model_id], args.dest, args.from_dir, args.offline)
            print(f"ok {model_id}: {path} (sha1 {models[model_id].sha1})")
        except UserError as e:
            if args.missing_ok and isinstance(e, weights.NotFound):
                print(f"missing {model_id}: {e}")
            else:
                failures.append(str(e))
    if failures:
        raise UserError(f"{len(failures)} file(s) not fetched: " + " | ".join(failures))
    return 0


if __name__ == "__main__":
    run_main(main)
