"""The images of a Caffe list file as network input: what tools/evaluate.py --list classifies instead of
an LMDB (lmdb_io.LmdbSource), with the same interface."""
from pathlib import Path

from . import neu, split


class ListSource:
    """The images of a Caffe list file, paths relative to ``root`` (default: the list file's folder):
    (relative path, uint8 3 x 256 x 256, label). Images of another size get the LMDB builder's
    bilinear resize; grey is replicated into B, G, R."""

    def __init__(self, list_path, root=None):
        self.path = Path(list_path)
        self.root = Path(root) if root is not None else self.path.parent

    def __str__(self):
        return str(self.path)

    def count(self):
        return len(split.read_list(self.path))

    def read(self, start=0, stop=None):
        for rel, label in split.read_list(self.path)[start:stop]:
            yield rel, neu.network_input(self.root / rel), label
