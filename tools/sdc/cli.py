"""Command-line argument types shared by the tools."""
import argparse
from pathlib import Path


def labelled_path(metavar):
    """An argparse type for ``LABEL=PATH``, giving (label, Path); the last '=' splits, so a label may hold one."""
    def parse(text):
        label, sep, path = text.rpartition("=")
        if not sep or not label or not path:
            raise argparse.ArgumentTypeError(f"expected {metavar}, got {text!r}")
        return label, Path(path)
    return parse
