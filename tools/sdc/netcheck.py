"""Does a caffemodel fit a prototxt? Compare their parameter blobs layer by layer, by name and shape.

Caffe's Net::CopyTrainedLayersFrom copies by layer name, silently skips caffemodel layers the prototxt
lacks, leaves prototxt layers the caffemodel lacks at their fillers, and aborts the whole process on
the first blob-count or shape mismatch. This module reports all three kinds at once, before Caffe runs.
"""
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError


@dataclass
class Mismatches:
    missing: list = field(default_factory=list)  # layers with parameters in the prototxt only
    extra: list = field(default_factory=list)    # layers with parameters in the caffemodel only
    shape: list = field(default_factory=list)    # (layer, caffemodel shapes, prototxt shapes)

    def __bool__(self):
        return bool(self.missing or self.extra or self.shape)


def _is_legacy(blob):
    return any(blob.HasField(axis) for axis in ("num", "channels", "height", "width"))


def _shape(blob):
    """A BlobProto's shape; legacy blobs as their four (num, channels, height, width) axes."""
    return (blob.num, blob.channels, blob.height, blob.width) if _is_legacy(blob) else tuple(blob.shape.dim)


def _fits(blob, net_shape):
    """Caffe's Blob::ShapeEquals: a legacy blob matches the net shape left-padded with 1s to four axes."""
    if _is_legacy(blob):
        return len(net_shape) <= 4 and _shape(blob) == (1,) * (4 - len(net_shape)) + net_shape
    return _shape(blob) == net_shape


def caffemodel_layers(caffemodel):
    """{layer name: [BlobProto, ...]} of every layer stored in a caffemodel (V1 or current format)."""
    from caffe.proto import caffe_pb2
    from google.protobuf.message import DecodeError
    param = caffe_pb2.NetParameter()
    try:
        param.ParseFromString(Path(caffemodel).read_bytes())
    except OSError as e:
        raise UserError(f"cannot read {caffemodel}: {e.strerror}") from e
    except DecodeError as e:
        raise UserError(f"{caffemodel} is not a caffemodel ({e}): fetch it again") from e
    return {layer.name: list(layer.blobs) for layer in list(param.layers) + list(param.layer)}


def prototxt_layers(prototxt, phase="TEST"):
    """{layer name: [shape, ...]} of every layer of the net Caffe builds from ``prototxt`` in ``phase``.

    Caffe builds the net, so the data sources a train_val prototxt names must exist.
    """
    from .caffe_env import import_caffe
    caffe = import_caffe()
    net = caffe.Net(str(prototxt), getattr(caffe, phase))
    return {name: [tuple(blob.data.shape) for blob in layer.blobs]
            for name, layer in zip(net._layer_names, net.layers)}


def compare(prototxt, caffemodel, phase="TEST"):
    model = caffemodel_layers(caffemodel)
    net = prototxt_layers(prototxt, phase)
    found = Mismatches()
    for name, shapes in net.items():
        if name not in model:
            if shapes:
                found.missing.append(name)
        elif len(model[name]) != len(shapes) or not all(map(_fits, model[name], shapes)):
            found.shape.append((name, [_shape(b) for b in model[name]], shapes))
    found.extra = [name for name, blobs in model.items() if blobs and name not in net]
    return found


def _dims(shapes):
    return ", ".join("x".join(map(str, s)) for s in shapes) or "no blobs"


def check(prototxt, caffemodel, allow_missing=(), allow_extra=(), phase="TEST"):
    """Raise a UserError listing every mismatch not allowed; return the Mismatches otherwise.

    Fine-tuning from ImageNet allows the new head as missing and ImageNet's conv10 as extra.
    """
    found = compare(prototxt, caffemodel, phase)
    problems = [f"{name}: caffemodel {_dims(ours)} vs prototxt {_dims(theirs)}" for name, ours, theirs in found.shape]
    missing = [n for n in found.missing if n not in allow_missing]
    extra = [n for n in found.extra if n not in allow_extra]
    if missing:
        problems.append("not in the caffemodel: " + ", ".join(missing))
    if extra:
        problems.append("not in the prototxt: " + ", ".join(extra))
    if problems:
        raise UserError(f"{caffemodel} does not fit {prototxt}: " + "; ".join(problems)
                        + " (use the caffemodel trained with this prototxt, or rename/resize the layer)")
    return found


def load(prototxt, caffemodel, allow_missing=(), allow_extra=(), phase="TEST"):
    """check(), then the pycaffe Net of ``prototxt`` with the caffemodel's weights copied in."""
    check(prototxt, caffemodel, allow_missing, allow_extra, phase)
    from .caffe_env import import_caffe
    caffe = import_caffe()
    return caffe.Net(str(prototxt), getattr(caffe, phase), weights=str(caffemodel))
