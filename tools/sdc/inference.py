"""Batched pycaffe inference of a deploy net over images from an LMDB or a Caffe list file
(lmdb_io.LmdbSource, list_source.ListSource): the class probabilities of each image.

The deploy net's input is reshaped once to the batch size; the last, partial batch is zero-padded
and only its real rows are kept (in the TEST phase every image's output depends on that image only).
Preprocessing is what the training Data layer does: uint8 BGR C x H x W minus the mean 104/117/123.
"""
from pathlib import Path

import numpy as np

from . import netcheck, timing
from .caffe_env import caffe_pb2, import_caffe, read_proto
from .errors import UserError
from .eval_folder import NUM_CLASSES, Predictions

MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)
WORKER_BLAS_THREADS = 1  # per CPU evaluation process: the worker processes and the in-process path alike
DEFAULT_BATCH = 10  # on the CPU, batch 10 is as fast as 50 (Caffe loops over images) in a quarter of the memory
INPUT_BLOB = "data"
OUTPUT_BLOB = "prob"


def open_net(deploy, model, batch, gpu=None):
    """Any deploy net with ``model``'s weights (checked blob by blob first), its input reshaped to ``batch``."""
    for path, what in ((deploy, "deploy prototxt"), (model, "caffemodel")):
        if not Path(path).is_file():
            raise UserError(f"{what} {path} not found: pass an existing file")
    read_proto(deploy, caffe_pb2().NetParameter(), fix="pass a prototxt/*_deploy.prototxt")
    caffe = import_caffe()
    if gpu is None:
        caffe.set_mode_cpu()
    else:
        caffe.set_device(gpu)
        caffe.set_mode_gpu()
    net = netcheck.load(deploy, model)
    if INPUT_BLOB not in net.inputs:
        raise UserError(f"{deploy}: expected input blob '{INPUT_BLOB}', found inputs {net.inputs}: "
                        "pass a prototxt/*_deploy.prototxt")
    shape = net.blobs[INPUT_BLOB].data.shape
    net.blobs[INPUT_BLOB].reshape(batch, *shape[1:])
    net.reshape()
    return net


def load_net(deploy, model, batch, gpu=None):
    """open_net() of a NEU classifier: its output blob '{OUTPUT_BLOB}' holds the six class probabilities."""
    net = open_net(deploy, model, batch, gpu)
    if OUTPUT_BLOB not in net.outputs:
        raise UserError(f"{deploy}: expected output blob '{OUTPUT_BLOB}', found outputs {net.outputs}: "
                        "pass a prototxt/*_deploy.prototxt")
    if net.blobs[OUTPUT_BLOB].data.shape[1] != NUM_CLASSES:
        raise UserError(f"{deploy}: '{OUTPUT_BLOB}' has {net.blobs[OUTPUT_BLOB].data.shape[1]} classes, "
                        f"expected {NUM_CLASSES}")
    return net


def batches(images, batch):
    """Lists of up to ``batch`` (key, image, label) items."""
    chunk = []
    for item in images:
        chunk.append(item)
        if len(chunk) == batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def centre_crop(image, height, width):
    top, left = (image.shape[1] - height) // 2, (image.shape[2] - width) // 2
    return image[:, top:top + height, left:left + width]


def load_batch(data, chunk, source, keys, labels, crop=False):
    """Put a chunk of (key, uint8 C x H x W image, label) into the input blob ``data`` minus the mean
    (rows past the chunk zeroed), appending keys and labels; ``crop``: take the centre of larger
    images. ``source`` names the input in errors."""
    expected = data.shape[1:]
    for offset, (key, image, label) in enumerate(chunk):
        if crop and all(have >= need for have, need in zip(image.shape[1:], expected[1:])):
            image = centre_crop(image, *expected[1:])
        if image.shape != expected:
            raise UserError(f"{source}: {key} has shape {image.shape}, the net expects {expected}"
                            f"{' or larger' if crop else ''}: rebuild the input with tools/build_lmdb.py")
        if not 0 <= label < NUM_CLASSES:
            raise UserError(f"{source}: {key} has label {label}, expected 0..{NUM_CLASSES - 1}")
        data[offset] = image
        keys.append(key)
        labels.append(label)
    data[len(chunk):] = 0
    data -= MEAN_BGR[:, None, None]


def predict(net, images, source, progress=None):
    """Forward every (key, image, label) of ``images`` through ``net``; ``source`` names the input in
    errors. ``progress`` (e.g. a tqdm bar) is updated by the number of images of each batch."""
    data = net.blobs[INPUT_BLOB].data
    keys, labels, probs = [], [], []
    for chunk in batches(images, data.shape[0]):
        load_batch(data, chunk, source, keys, labels)
        out = net.forward()[OUTPUT_BLOB]
        probs.append(out[:len(chunk)].reshape(len(chunk), NUM_CLASSES).copy())
        if progress is not None:
            progress.update(len(chunk))
    if not keys:
        raise UserError(f"{source} holds no images")
    return Predictions(keys, np.array(labels, np.int64), np.concatenate(probs))


def latency_ms(deploy, model, image, repeats, gpu=None):
    """Median wall time of one batch-1 forward pass (preprocessed ``image``), after one warm-up pass."""
    net = open_net(deploy, model, 1, gpu)
    net.blobs[INPUT_BLOB].data[0] = image - MEAN_BGR[:, None, None]
    return timing.median_ms(net.forward, repeats)


def blas_threads(count):
    """A ``with`` context in which the BLAS libraries loaded in this process (Caffe's OpenBLAS among
    them) use ``count`` threads."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(count, user_api="blas")


def worker_pool(workers, initializer, initargs):
    """A pool of ``workers`` fresh processes with WORKER_BLAS_THREADS BLAS threads, each set up by ``initializer``.

    Caffe's CPU layers run one image at a time and only the matrix products use BLAS threads, so
    one single-threaded process per core is faster than one process with a thread per core.
    Processes are spawned, not forked: a fork of a process with BLAS threads can deadlock.
    """
    import multiprocessing
    import os
    saved = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = str(WORKER_BLAS_THREADS)
    try:
        return multiprocessing.get_context("spawn").Pool(workers, initializer, initargs)
    finally:
        if saved is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = saved


_worker_net = []


def _load_worker_net(deploy, model, batch):
    _worker_net.append(load_net(deploy, model, batch))


def _predict_shard(job):
    source, start, stop = job
    return predict(_worker_net[0], source.read(start, stop), str(source))


def predict_sources(deploy, model, sources, batch, workers=1, gpu=None, progress=None, shard=None):
    """{name: Predictions} of every source ({name: LmdbSource or ListSource}), in order.

    On the CPU with ``workers`` > 1, shards of ``shard`` images (default 10 batches) go to that many
    worker processes; on a GPU, or with one worker, the net runs in this process, with the workers'
    BLAS thread count: a matrix product split over another number of threads sums in another order,
    so the probabilities would depend on ``workers`` in their last bits.
    """
    if gpu is not None or workers <= 1:
        net = load_net(deploy, model, batch, gpu)
        with blas_threads(WORKER_BLAS_THREADS):
            return {name: predict(net, source.read(), str(source), progress) for name, source in sources.items()}
    load_net(deploy, model, 1)  # fail here, with one clear error, rather than in every worker
    shard = shard or 10 * batch
    jobs = []
    for name, source in sources.items():
        count = source.count()
        if count == 0:
            raise UserError(f"{source} holds no images")
        jobs += [(name, (source, start, start + shard)) for start in range(0, count, shard)]
    parts = {name: [] for name in sources}
    with worker_pool(workers, _load_worker_net, (str(deploy), str(model), batch)) as pool:
        for (name, _), part in zip(jobs, pool.imap(_predict_shard, [job for _, job in jobs])):
            parts[name].append(part)
            if progress is not None:
                progress.update(len(part))
    return {name: Predictions(sum((p.keys for p in ps), []), np.concatenate([p.labels for p in ps]),
                              np.concatenate([p.probs for p in ps]))
            for name, ps in parts.items()}
