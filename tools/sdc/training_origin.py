"""Where a trained row of the tables comes from: the provenance.json tools/train.py wrote for the
evaluated model, and its ImageNet start weights named by sha1 against the manifest (pretrained/readme.md).
"""
from dataclasses import dataclass
from pathlib import Path

from . import paths, provenance, weights

ORIGINAL = "squeezenet_v1.0"  # the paper's initialisation, by its manifest id


def training_record(inputs, logs_dir, name):
    """The training provenance of an evaluated model: the one next to the model (tools/train.py's run
    folder), else run_all's copy in ``logs_dir/<name>/``; {} when neither is a training record."""
    # A relative model path is relative to the repository, where run_all.sh runs every tool.
    folders = [(paths.REPO / inputs["model"]).parent] if inputs.get("model") else []
    for folder in folders + [Path(logs_dir) / name]:
        record = provenance.read(folder)
        if "sessions" in record:  # what tools/train.py writes, not another tool's provenance
            return record
    return {}


@dataclass(frozen=True)
class StartWeights:
    kind: str       # "original", "stand-in", "other" or "none" (trained from scratch)
    file: str       # the file's name, never its machine path
    sha1: str

    def text(self, original):
        """One phrase for a table header; ``original`` is the manifest's entry of the paper's weights."""
        if self.kind == "none":
            return "none (trained from scratch)"
        if self.kind == "original":
            return f"the original ImageNet SqueezeNet v1.0 ({self.file}, sha1 {self.sha1[:8]})"
        what = "the decoded Deep-Compression stand-in" if self.kind == "stand-in" else "unlisted weights"
        return f"{what} ({self.file}, sha1 {self.sha1[:8]}), not the original {original.caffemodel} " \
               f"(sha1 {original.sha1[:8]})"


def start_weights(record, original):
    """The start weights of a training record: the original when its sha1 is the manifest's; otherwise
    the stand-in when it carries the decoder's file name (the manifest lists only the stand-in's
    compressed source, not the decoded file)."""
    init = record.get("weights")
    if not isinstance(init, dict):  # tools/train.py writes "none: trained from scratch" then
        return StartWeights("none", "", "")
    file = Path(init["path"]).name
    if init["sha1"] == original.sha1:
        kind = "original"
    elif file == weights.DECODED_IMAGENET:
        kind = "stand-in"
    else:
        kind = "other"
    return StartWeights(kind, file, init["sha1"])


def original_entry(manifest=weights.MANIFEST):
    return weights.read_manifest(manifest)[ORIGINAL]
