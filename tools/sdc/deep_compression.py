"""Decode the Deep-Compression SqueezeNet v1.0 file into a standard caffemodel.

The input is ``compressed_SqueezeNet.net`` of github.com/songhan/SqueezeNet-Deep-Compression (pruned,
8-bit quantized ImageNet SqueezeNet v1.0). Its format, as that repository's decode.py reads it:
26 uint32 entry counts (one per conv layer, network order), then per layer a 256-float32 codebook,
the float32 biases, one uint8 code per stored entry and one 4-bit gap per entry (two per byte, low
nibble first). Entry k sits at flat OIHW position sum_{j<=k}(gap_j + 1) - 1; the positions between
entries take codebook[0] (0.0).
"""
from dataclasses import dataclass

import numpy as np

from .atomic import atomic_path
from .errors import UserError

CODEBOOK_SIZE = 256
# (squeeze1x1, expand1x1 = expand3x3) widths of fire2..fire9 (Iandola et al. 2016, Table 1).
FIRE_WIDTHS = ((16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256))


def squeezenet_v1_0_layers():
    """(layer name, OIHW weight shape) of SqueezeNet v1.0's 26 conv layers, in the file's order."""
    layers = [("conv1", (96, 3, 7, 7))]
    channels = 96
    for fire, (squeeze, expand) in enumerate(FIRE_WIDTHS, start=2):
        layers += [(f"fire{fire}/squeeze1x1", (squeeze, channels, 1, 1)),
                   (f"fire{fire}/expand1x1", (expand, squeeze, 1, 1)),
                   (f"fire{fire}/expand3x3", (expand, squeeze, 3, 3))]
        channels = 2 * expand
    layers.append(("conv10", (1000, channels, 1, 1)))
    return layers


@dataclass
class Decoded:
    params: dict          # layer name -> (weights float32 OIHW, biases float32)
    bytes_consumed: int
    stored_nonzero: int   # stored entries whose codebook value is not 0

    @property
    def n_params(self):
        return sum(w.size + b.size for w, b in self.params.values())


class _Reader:
    def __init__(self, data, source):
        self.data, self.source, self.offset = data, source, 0

    def take(self, dtype, count, what):
        n_bytes = np.dtype(dtype).itemsize * count
        if self.offset + n_bytes > len(self.data):
            raise UserError(f"{self.source} ends at byte {len(self.data)} but {what} needs bytes up to "
                            f"{self.offset + n_bytes}: the file is truncated, fetch it again")
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.offset)
        self.offset += n_bytes
        return values


def _unpack_nibbles(packed, count):
    nibbles = np.empty(2 * packed.size, np.uint8)
    nibbles[0::2] = packed & 0x0F
    nibbles[1::2] = packed >> 4
    return nibbles[:count]


def decode(data, source="compressed_SqueezeNet.net", layers=None):
    """Decode the bytes of a compressed SqueezeNet v1.0 file; every byte must be consumed."""
    layers = layers or squeezenet_v1_0_layers()
    reader = _Reader(data, source)
    counts = reader.take("<u4", len(layers), "the header")
    params, stored_nonzero = {}, 0
    for (name, shape), count in zip(layers, counts.astype(np.int64)):
        size = int(np.prod(shape))
        codebook = reader.take("<f4", CODEBOOK_SIZE, f"the codebook of {name}")
        bias = reader.take("<f4", shape[0], f"the biases of {name}")
        codes = reader.take(np.uint8, count, f"the codes of {name}")
        gaps = _unpack_nibbles(reader.take(np.uint8, (count + 1) // 2, f"the gaps of {name}"), count)
        positions = np.cumsum(gaps.astype(np.int64) + 1) - 1
        if count and positions[-1] >= size:
            raise UserError(f"{source}: layer {name} places an entry at {positions[-1]} but has only {size} "
                            "weights: not a compressed SqueezeNet v1.0 file")
        full_codes = np.zeros(size, np.uint8)
        full_codes[positions] = codes
        params[name] = (codebook[full_codes].reshape(shape).astype(np.float32), bias.astype(np.float32))
        stored_nonzero += int(np.count_nonzero(codebook[codes]))
    if reader.offset != len(data):
        raise UserError(f"{source} has {len(data) - reader.offset} bytes left after the last layer: "
                        "not a compressed SqueezeNet v1.0 file")
    return Decoded(params, reader.offset, stored_nonzero)


def write_caffemodel(decoded, deploy_prototxt, dest):
    """Fill the layers of ``deploy_prototxt`` (SqueezeNet v1.0 names) and save them as a caffemodel."""
    from .caffe_env import import_caffe
    caffe = import_caffe()
    net = caffe.Net(str(deploy_prototxt), caffe.TEST)
    if set(net.params) != set(decoded.params):
        raise UserError(f"{deploy_prototxt} has layers {sorted(net.params)}, the decoded file has "
                        f"{sorted(decoded.params)}: use the SqueezeNet v1.0 deploy prototxt")
    for name, (weights, bias) in decoded.params.items():
        for blob, value in zip(net.params[name], (weights, bias)):
            if blob.data.shape != value.shape:
                raise UserError(f"{deploy_prototxt}: layer {name} has shape {blob.data.shape}, the decoded "
                                f"file {value.shape}: use the SqueezeNet v1.0 deploy prototxt")
            blob.data[...] = value
    with atomic_path(dest) as tmp:
        net.save(str(tmp))
    return dest
