#!/usr/bin/env python3
"""Decode the Deep-Compression SqueezeNet v1.0 (compressed_SqueezeNet.net) into a standard caffemodel.

The result, with SqueezeNet v1.0's layer names, is the offline ImageNet initialization for fine-tuning
(pretrained/weights/squeezenet_v1.0_dc.caffemodel). The .net file is fetched and sha1-checked like
every pretrained file (see tools/fetch_pretrained.py).
"""
import argparse
from pathlib import Path

from sdc import deep_compression, hashing, paths, weights
from sdc.errors import run_main

DEPLOY = paths.deploy_prototxt("squeezenet_v1.0")


def decode_stand_in(dest=paths.WEIGHTS_DIR, from_dir=None, offline=False):
    """Fetch the verified .net into ``dest``, decode it there; returns the caffemodel's path."""
    dest = Path(dest)
    source = weights.fetch(weights.read_manifest()["compressed_SqueezeNet"], dest, from_dir, offline)
    decoded = deep_compression.decode(source.read_bytes(), source=str(source))
    out = deep_compression.write_caffemodel(decoded, DEPLOY, dest / weights.DECODED_IMAGENET)
    print(f"decoded {source}: {decoded.bytes_consumed:,} bytes, {decoded.n_params:,} parameters, "
          f"{decoded.stored_nonzero:,} non-zero stored weights -> {out} (sha1 {hashing.sha1_file(out)})")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="from_dir", metavar="DIR",
                        help=f"local directory holding compressed_SqueezeNet.net (default: ${weights.ENV_DIR})")
    parser.add_argument("--offline", action="store_true", help="never download")
    parser.add_argument("--dest", type=Path, default=paths.WEIGHTS_DIR, metavar="DIR",
                        help="where the verified .net is kept and the caffemodel "
                             f"{weights.DECODED_IMAGENET} is written (default: pretrained/weights)")
    args = parser.parse_args()
    decode_stand_in(args.dest, args.from_dir, args.offline)
    return 0


if __name__ == "__main__":
    run_main(main)
