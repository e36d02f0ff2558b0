"""Timing the nets: the net `caffe time` runs for a deploy net, and the median wall time of a call."""
import time

import numpy as np
from google.protobuf import text_format

from .caffe_env import caffe_pb2, read_proto
from .errors import UserError


def median_ms(function, repeats):
    """Median wall time of ``function()`` in ms over ``repeats`` calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def timing_net(deploy_path, batch):
    """The deploy net with batch-size inputs and a loss, as NetParameter text."""
    net = read_proto(deploy_path, caffe_pb2().NetParameter())
    data = next(layer for layer in net.layer if layer.type == "Input")
    data.input_param.shape[0].dim[0] = batch
    label = net.layer.add(name="label", type="Input", top=["label"])
    label.input_param.shape.add(dim=[batch])
    net.layer.insert(1, label)
    del net.layer[-1]
    softmax = net.layer[-1]
    if softmax.type != "Softmax":
        raise UserError(f"{deploy_path}: expected the last layer to be Softmax, found {softmax.type}")
    softmax.type = "SoftmaxWithLoss"
    softmax.name = softmax.top[0] = "loss"
    softmax.bottom.append("label")
    return text_format.MessageToString(net)
