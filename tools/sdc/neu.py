"""The NEU-CLS database: where it is, what it must hold, and its images as network input.

Files are identified by name (``Cr_12.bmp``): the class prefix is the same in the official layout
(``crazing/Cr_12.bmp``) and in the Kaggle re-packaging (``train/Crazing/Cr_12.bmp``, ...), so any
folder layout is accepted and checked against the committed sha256 manifest keyed on file name.
"""
import contextlib
import os
import re
import warnings
from collections import namedtuple
from pathlib import Path

import numpy as np
from PIL import Image

from . import paths
from .errors import UserError
from .hashing import sha256_file

ENV_VAR = "NEU_DIR"
MANIFEST = paths.REPO / "datasets" / "NEU-CLS.sha256"
IMAGE_SIDE = 200
NETWORK_SIDE = 256

NeuClass = namedtuple("NeuClass", "prefix folder aliases")
# Label = position in this tuple (fixed project-wide).
CLASSES = (
    NeuClass("Cr", "crazing", ("crazing",)),
    NeuClass("In", "inclusion", ("inclusion",)),
    NeuClass("Pa", "patches", ("patches",)),
    NeuClass("PS", "pitted_surface", ("pitted_surface", "pitted", "pitted surface")),
    NeuClass("RS", "rolled-in_scale", ("rolled-in_scale", "rolled", "rolled-in scale", "rolled_in_scale")),
    NeuClass("Sc", "scratches", ("scratches",)),
)
_NAME = re.compile(r"^(Cr|In|Pa|PS|RS|Sc)_(\d+)\.", re.IGNORECASE)
_PREFIX_LABEL = {c.prefix.lower(): label for label, c in enumerate(CLASSES)}
_FOLDER_LABEL = {alias: label for label, c in enumerate(CLASSES) for alias in c.aliases}
_HOW = "download NEU-CLS (see datasets/README.md) and pass --neu-dir or set NEU_DIR"


def locate(neu_dir=None):
    """The NEU-CLS root: the flag, else $NEU_DIR, else datasets/NEU-CLS."""
    path = Path(neu_dir or os.environ.get(ENV_VAR) or paths.NEU_DIR)
    if not path.is_dir():
        raise UserError(f"NEU-CLS not found at {path}: {_HOW}")
    return path


def label_of(name):
    """Class label from a file name's prefix (``PS_7.bmp`` -> 3), or None."""
    match = _NAME.match(Path(name).name)
    return _PREFIX_LABEL[match.group(1).lower()] if match else None


def label_from_path(path):
    """Label from the file-name prefix, else from the nearest class-named folder, else None."""
    label = label_of(path)
    if label is not None:
        return label
    for folder in Path(path).parents:
        label = _FOLDER_LABEL.get(folder.name.lower())
        if label is not None:
            return label
    return None


def sort_key(name):
    """Label, then image number: Cr_1, Cr_2, ..., Sc_300."""
    match = _NAME.match(Path(name).name)
    return (_PREFIX_LABEL[match.group(1).lower()], int(match.group(2)))


def official_path(name):
    """``Cr_12.bmp`` -> ``crazing/Cr_12.bmp`` (the manifest's and the list files' relative path)."""
    return f"{CLASSES[label_of(name)].folder}/{name}"


def read_manifest(path=MANIFEST):
    """{file name: (relative path, sha256)} from a ``sha256sum`` file."""
    entries = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            entries[Path(rel.lstrip("*")).name] = (rel.lstrip("*"), digest)
    return entries


def scan(root):
    """{file name: [paths]} of every .bmp under ``root``, whatever the folder layout."""
    found = {}
    for path in sorted(Path(root).rglob("*")):
        if path.suffix.lower() == ".bmp" and path.is_file():
            found.setdefault(path.name, []).append(path)
    return found


class ImageError(Exception):
    """An image file Pillow cannot read."""


@contextlib.contextmanager
def _opened(path):
    """Image.open(path), every way it can fail (a cut-off or damaged file, a header claiming more pixels
    than Pillow's decompression-bomb limit) raised as one ImageError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                yield im
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{e}".strip() or type(e).__name__) from None


def _image_problem(path, rel):
    try:
        with _opened(path) as im:
            size, mode = im.size, im.mode
    except ImageError as e:
        return f"unreadable image: {rel} ({e})"
    if size != (IMAGE_SIDE, IMAGE_SIDE):
        return f"wrong size: {rel} is {size[0]}x{size[1]}, expected {IMAGE_SIDE}x{IMAGE_SIDE}"
    if mode != "L":
        return f"wrong format: {rel} is Pillow mode {mode}, expected 8-bit grey"
    return None


def check(root, manifest=MANIFEST):
    """Compare the tree at ``root`` with the manifest: ({name: path}, [one line per problem])."""
    root = Path(root)
    expected = read_manifest(manifest)
    found = scan(root)
    problems, files = [], {}
    present_labels = {label_of(n) for n in found}
    for label, cls in enumerate(CLASSES):
        if label not in present_labels:
            problems.append(f"missing class {cls.prefix} ({cls.folder}): no {cls.prefix}_*.bmp under {root}")
    for name, (rel, digest) in sorted(expected.items(), key=lambda kv: sort_key(kv[0])):
        copies = found.get(name)
        if not copies:
            if label_of(name) in present_labels:
                problems.append(f"missing file: {rel}")
            continue
        if len(copies) > 1:
            shown = ", ".join(str(p.relative_to(root)) for p in copies)
            problems.append(f"duplicate file name: {name} at {shown}")
            continue
        path = copies[0]
        shown = path.relative_to(root)
        problem = _image_problem(path, shown)
        if problem is None and sha256_file(path) != digest:
            problem = f"bad checksum: {shown} (sha256 differs from the manifest)"
        if problem:
            problems.append(problem)
        else:
            files[name] = path
    for name in sorted(set(found) - set(expected)):
        problems.extend(f"extra file: {p.relative_to(root)} (not in the manifest)" for p in found[name])
    return files, problems


def verified_files(root, manifest=MANIFEST):
    """{file name: path} of a NEU-CLS tree that matches the manifest exactly; else a UserError."""
    files, problems = check(root, manifest)
    if problems:
        raise UserError(f"{root} is not the NEU-CLS database ({len(problems)} problems, first: "
                        f"{problems[0]}): run tools/verify_neu.py --neu-dir {root} for the full report")
    return files


def load(path):
    """An 8-bit grey image as a 2-D uint8 array (grey stored as palette or RGB is converted)."""
    try:
        with _opened(path) as im:
            if im.mode not in ("L", "P", "RGB"):
                raise UserError(f"{path} is not an 8-bit grey image (Pillow mode {im.mode})")
            return np.asarray(im.convert("L"))
    except ImageError as e:
        raise UserError(f"{path} is not a readable image ({e}): replace it or leave it out") from None


def _bilinear_taps(n_out, n_in):
    """Left source index and weight of the right neighbour for each output pixel: pixel centres
    aligned (half-pixel offset), source positions clamped to the border pixels."""
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    left = np.minimum(np.floor(src).astype(int), n_in - 2)
    return left, src - left


def _interpolate_rows(image, n_out):
    left, frac = _bilinear_taps(n_out, image.shape[0])
    frac = frac[:, None]
    return image[left] * (1 - frac) + image[left + 1] * frac


def resize_bilinear(image, side):
    """Bilinear resize of a grey uint8 image to side x side, rounded half up.

    Same sampling as OpenCV's INTER_LINEAR (what Caffe's convert_imageset uses): half-pixel
    centres, border pixels replicated, no antialiasing. For 200 -> 256 every weight is a multiple
    of 1/64, so the float64 result is exact and only the final rounding matters.
    """
    rows = _interpolate_rows(image.astype(np.float64), side)
    out = _interpolate_rows(rows.T, side).T
    return np.floor(out + 0.5).astype(np.uint8)


def network_input(path):
    """The image at ``path`` as the nets take it, uint8 3 x NETWORK_SIDE x NETWORK_SIDE: resized as the LMDB
    builder does when it has another size, grey replicated into B, G, R."""
    image = load(path)
    if image.shape != (NETWORK_SIDE, NETWORK_SIDE):
        image = resize_bilinear(image, NETWORK_SIDE)
    return np.broadcast_to(image, (3, NETWORK_SIDE, NETWORK_SIDE))
