"""What a training did to a net: how many ReLU outputs are zero on real images, and how far each layer's
weights moved from the start weights.

A unit (channel) is dead when its ReLU output is 0 for every image and position: it passes no signal
forward and, as the ReLU's gradient is 0 there too, gets no gradient back.
"""
from dataclasses import dataclass

import numpy as np

from . import inference
from .caffe_env import caffe_pb2


@dataclass(frozen=True)
class ReluActivity:
    layer: str
    zero_fraction: float   # of all its outputs over the images
    dead_channels: int     # channels that are 0 on every image and position
    channels: int


@dataclass(frozen=True)
class WeightChange:
    layer: str
    norm: float            # L2 norm of the layer's weights (biases excluded)
    change: float          # ||w - w_start|| / ||w_start||; None where the start weights lack the layer


def relu_layers(net):
    """(layer name, top blob) of the ReLU layers of a pycaffe net, in order."""
    return [(name, net.top_names[name][0]) for name, layer in zip(net._layer_names, net.layers)
            if layer.type == "ReLU"]


def relu_activity(net, images):
    """ReluActivity of every ReLU layer of ``net`` over ``images`` ((key, uint8 image, label) items)."""
    data = net.blobs[inference.INPUT_BLOB].data
    layers = relu_layers(net)
    zeros = {name: 0 for name, _ in layers}
    totals = {name: 0 for name, _ in layers}
    alive = {name: np.zeros(net.blobs[top].data.shape[1], bool) for name, top in layers}
    for chunk in inference.batches(images, data.shape[0]):
        inference.load_batch(data, chunk, "test images", [], [])
        net.forward()
        for name, top in layers:
            out = net.blobs[top].data[:len(chunk)]
            zeros[name] += int(np.count_nonzero(out == 0))
            totals[name] += out.size
            alive[name] |= (out > 0).reshape(len(chunk), out.shape[1], -1).any(axis=(0, 2))
    return [ReluActivity(name, zeros[name] / totals[name], int((~alive[name]).sum()), alive[name].size)
            for name, _ in layers]


def weights(path):
    """{layer: weight array (blob 0)} of a caffemodel."""
    net = caffe_pb2().NetParameter()
    with open(path, "rb") as f:
        net.ParseFromString(f.read())
    return {layer.name: np.array(layer.blobs[0].data, np.float64) for layer in net.layer if layer.blobs}


def weight_change(model, start):
    """WeightChange of every layer of the caffemodel ``model`` against the caffemodel ``start``."""
    trained, initial = weights(model), weights(start)
    changes = []
    for layer, w in trained.items():
        w0 = initial.get(layer)
        moved = None if w0 is None or w0.shape != w.shape else float(np.linalg.norm(w - w0) / np.linalg.norm(w0))
        changes.append(WeightChange(layer, float(np.linalg.norm(w)), moved))
    return changes
