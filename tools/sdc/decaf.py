"""DeCAF features (Donahue et al. 2014) of LMDB records, from the ImageNet CaffeNet: the DeCAF+MLR
baseline of Table 3 (Ren et al. 2018).

Each 256x256 record (grey replicated into B, G, R) is centre-cropped to CaffeNet's 227x227 input,
minus the mean 104/117/123 (the mean values Caffe's examples use in place of the ImageNet mean
image), and forwarded to fc6 after its in-place ReLU: "DeCAF6", 4096 values per image.
"""
import time

import numpy as np

from . import inference, lmdb_io, paths
from .features import FeatureSet

DEPLOY = paths.deploy_prototxt("CaffeNet")
WEIGHTS_ID = "bvlc_reference_caffenet"
FEATURE_BLOB = "fc6"
LAST_LAYER = "relu6"   # in place on fc6: once it ran, the blob holds the rectified values
BATCH = 10


def forward(net, chunk, source, keys, labels):
    """DeCAF6 rows (float32, len(chunk) x 4096) of a chunk of (key, uint8 image, label) records."""
    inference.load_batch(net.blobs[inference.INPUT_BLOB].data, chunk, source, keys, labels, crop=True)
    net.forward(end=LAST_LAYER)
    return net.blobs[FEATURE_BLOB].data[:len(chunk)].reshape(len(chunk), -1).copy()


def extract(net, path, progress=None):
    """The FeatureSet of the LMDB at ``path`` (records in key order); ``progress`` counts images."""
    info = lmdb_io.require_info(path)
    keys, labels, rows = [], [], []
    began = time.perf_counter()
    for chunk in inference.batches(lmdb_io.LmdbSource(path).read(), net.blobs[inference.INPUT_BLOB].num):
        rows.append(forward(net, chunk, path, keys, labels))
        if progress is not None:
            progress.update(len(chunk))
    record = {"source": str(path), "fingerprint": info.get("fingerprint"), "images": len(keys),
              "extraction_s": round(time.perf_counter() - began, 2), "workers": 1, "cached": False,
              "feature": f"CaffeNet {FEATURE_BLOB} after {LAST_LAYER} (DeCAF6), centre 227x227 crop"}
    return FeatureSet(keys, np.array(labels, np.int64), np.concatenate(rows), record)
