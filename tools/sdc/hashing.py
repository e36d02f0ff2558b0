"""Digests of files, read in chunks."""
import hashlib

CHUNK = 1 << 20


def _digest(path, algorithm):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path):
    return _digest(path, "sha256")


def sha1_file(path):
    return _digest(path, "sha1")
