"""Pretrained weight files: the manifest in pretrained/readme.md, sha1 checks, local copies, download.

A file is taken from a local directory (``--from DIR`` or SDC_PRETRAINED_DIR, searched recursively)
or downloaded from its manifest URL; either way its sha1 must match the manifest. Verified files are
copied into the git-ignored pretrained/weights/.
"""
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from . import paths
from .atomic import atomic_path
from .errors import UserError
from .hashing import sha1_file

MANIFEST = paths.REPO / "pretrained" / "readme.md"
DECODED_IMAGENET = "squeezenet_v1.0_dc.caffemodel"
ENV_DIR = "SDC_PRETRAINED_DIR"
FIELDS = ("name", "caffemodel", "caffemodel_url", "sha1", "license", "source")


class NotFound(UserError):
    """No file of the model's name anywhere (nor downloadable): unlike a wrong sha1, a stand-in may be used."""


@dataclass(frozen=True)
class Model:
    name: str
    caffemodel: str
    caffemodel_url: str
    sha1: str
    license: str
    source: str

    @property
    def id(self):
        return Path(self.caffemodel).stem


def read_manifest(path=MANIFEST):
    """{model id: Model} from the front-matter blocks (``---`` delimited ``key: value`` lines) of path."""
    parts = Path(path).read_text().split("\n---\n")
    if not parts[0].startswith("---\n"):
        raise UserError(f"{path} does not start with a '---' front-matter block")
    models = {}
    for block in [parts[0][4:]] + parts[1:-1]:
        lines = [line for line in block.splitlines() if line.strip()]
        entry = dict(line.split(": ", 1) for line in lines if ": " in line)
        if len(entry) != len(lines) or set(entry) != set(FIELDS):
            raise UserError(f"{path}: a front-matter block has keys {sorted(entry)}, needs exactly {list(FIELDS)}")
        model = Model(**entry)
        models[model.id] = model
    return models


def search_dirs(from_dir=None):
    """The local directories to search: ``--from DIR`` if given, else SDC_PRETRAINED_DIR if set."""
    chosen = from_dir or os.environ.get(ENV_DIR)
    if not chosen:
        return []
    if not Path(chosen).is_dir():
        source = "--from" if from_dir else ENV_DIR
        raise UserError(f"{source} {chosen} is not a directory: point it at the folder holding the weight files")
    return [Path(chosen)]


def find_local(model, dirs):
    """The file named model.caffemodel under dirs whose sha1 matches; None when no such name exists."""
    wrong = []
    for directory in dirs:
        for candidate in sorted(Path(directory).rglob(model.caffemodel)):
            actual = sha1_file(candidate)
            if actual == model.sha1:
                return candidate
            wrong.append(f"{candidate} (sha1 {actual})")
    if wrong:
        raise UserError(f"{model.caffemodel}: sha1 must be {model.sha1}, found only {', '.join(wrong)}; "
                        "file not used: replace it with the original")
    return None


def download(model, dest):
    """Download model.caffemodel_url to dest, keeping it only if its sha1 matches (URLError/OSError pass)."""
    with urllib.request.urlopen(model.caffemodel_url, timeout=60) as response, atomic_path(dest) as tmp:
        total = int(response.headers.get("Content-Length") or 0) or None
        with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=model.caffemodel) as bar:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                bar.update(len(chunk))
        actual = sha1_file(tmp)
        if actual != model.sha1:
            raise UserError(f"{model.caffemodel_url} gave sha1 {actual}, expected {model.sha1}; file not kept: "
                            f"get the original file and pass its folder with --from DIR or {ENV_DIR}")
    return dest


def wrong_sha1(model, path, actual):
    return UserError(f"{path} has sha1 {actual}, but {model.caffemodel} must have sha1 {model.sha1}: "
                     "replace it with the original file or delete it")


def fetch(model, dest_dir=paths.WEIGHTS_DIR, from_dir=None, offline=False):
    """The verified copy of ``model`` in dest_dir: kept if already there, else copied or downloaded.

    A file of the model's name whose sha1 differs is an error; NotFound when there is none at all."""
    dest = Path(dest_dir) / model.caffemodel
    dest_sha1 = sha1_file(dest) if dest.exists() else None
    if dest_sha1 == model.sha1:
        return dest
    dirs = search_dirs(from_dir)
    local = find_local(model, dirs)
    if local is not None:
        with atomic_path(dest) as tmp:
            shutil.copyfile(local, tmp)
        return dest
    why = "--offline forbids downloading"
    if not offline:
        try:
            return download(model, dest)
        except (urllib.error.URLError, OSError) as e:
            why = f"downloading failed ({getattr(e, 'reason', e)})"
    if dest_sha1 is not None:
        raise wrong_sha1(model, dest, dest_sha1)
    where = f"not under {', '.join(map(str, dirs))}" if dirs else f"no --from DIR or {ENV_DIR} given"
    raise NotFound(f"{model.caffemodel}: {where}, and {why}: download {model.caffemodel_url} yourself "
                    f"and pass its folder with --from DIR or set {ENV_DIR}=DIR")


def caffe_weights_arg(path, cwd):
    """``path`` as `caffe train --weights=` takes it from a process running in ``cwd``.

    Caffe splits that value at commas (a list of caffemodels), so a path with a comma is given relative
    to ``cwd`` when that drops the comma (a clone in ``/tmp/sdc caffe,1``), else refused."""
    for candidate in (str(path), os.path.relpath(path, cwd)):
        if "," not in candidate:
            return candidate
    raise UserError(f"{path}: Caffe splits --weights at commas, and this path keeps one even relative to {cwd}: "
                    "move the file, or the run folder, to a path without a comma")


def imagenet_weights(weights_dir=paths.WEIGHTS_DIR, manifest=MANIFEST):
    """The ImageNet init for fine-tuning: the original SqueezeNet v1.0 if present (a wrong sha1 is an
    error, never a reason to fall back), else the decoded Deep-Compression stand-in."""
    original = read_manifest(manifest)["squeezenet_v1.0"]
    path = Path(weights_dir) / original.caffemodel
    if path.exists():
        actual = sha1_file(path)
        if actual != original.sha1:
            raise wrong_sha1(original, path, actual)
        return path
    decoded = Path(weights_dir) / DECODED_IMAGENET
    if decoded.exists():
        return decoded
    raise UserError(f"no ImageNet weights in {weights_dir}: run tools/fetch_pretrained.py squeezenet_v1.0 "
                    "or, offline, tools/decode_deep_compression.py --from DIR")
