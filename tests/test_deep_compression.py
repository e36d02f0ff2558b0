"""The Deep-Compression SqueezeNet v1.0 decoder: exact byte accounting, the parameter counts, an
independent re-decode of one layer, and ImageNet classification by real Caffe with the result."""
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from skimage import data as photos

from sdc import deep_compression, netcheck
from sdc.errors import UserError

REPO = Path(__file__).resolve().parents[1]
PROTOTXT = REPO / "prototxt"
IMAGENET_DEPLOY = PROTOTXT / "squeezenet_v1.0_deploy.prototxt"


def test_decoder_consumes_the_file_and_yields_squeezenet_v1_0(decoded):
    assert decoded.bytes_consumed == 675_763
    assert decoded.n_params == 1_248_424
    assert sum(w.size for w, _ in decoded.params.values()) == 1_244_448
    assert sum(b.size for _, b in decoded.params.values()) == 3_976
    assert decoded.stored_nonzero == 415_921
    assert sum(np.count_nonzero(w) for w, _ in decoded.params.values()) == 415_921
    assert list(decoded.params) == [name for name, _ in deep_compression.squeezenet_v1_0_layers()]
    assert decoded.params["conv1"][0].shape == (96, 3, 7, 7)
    assert decoded.params["fire9/expand3x3"][0].shape == (256, 64, 3, 3)
    assert decoded.params["conv10"][0].shape == (1000, 512, 1, 1)


def test_first_layer_matches_a_byte_by_byte_reading(net_file, decoded):
    """conv1 re-decoded with plain struct reads and a running position, independent of the numpy code."""
    raw = net_file.read_bytes()
    count = struct.unpack_from("<I", raw, 0)[0]
    offset = 26 * 4
    codebook = struct.unpack_from("<256f", raw, offset)
    offset += 256 * 4
    bias = struct.unpack_from("<96f", raw, offset)
    offset += 96 * 4
    codes = raw[offset:offset + count]
    offset += count
    weights, position = [0.0] * (96 * 3 * 7 * 7), -1
    for k in range(count):
        byte = raw[offset + k // 2]
        gap = byte & 0x0F if k % 2 == 0 else byte >> 4
        position += gap + 1
        weights[position] = codebook[codes[k]]
    assert codebook[0] == 0.0
    np.testing.assert_array_equal(decoded.params["conv1"][0].ravel(), np.float32(weights))
    np.testing.assert_array_equal(decoded.params["conv1"][1], np.float32(bias))


def test_truncated_or_padded_files_are_refused(net_file):
    raw = net_file.read_bytes()
    with pytest.raises(UserError, match="truncated"):
        deep_compression.decode(raw[:-1], source="short.net")
    with pytest.raises(UserError, match="1 bytes left after the last layer"):
        deep_compression.decode(raw + b"\0", source="long.net")


def test_decoded_model_loads_by_name_and_fits_the_sdc_nets_as_a_finetuning_init(decoded_caffemodel):
    assert not netcheck.compare(IMAGENET_DEPLOY, decoded_caffemodel)
    for variant, head in (("SDC-SN", ["conv10b"]), ("SDC-SN-ELF-MRF", ["conv10a", "conv10b", "conv11"])):
        found = netcheck.check(PROTOTXT / f"{variant}_deploy.prototxt", decoded_caffemodel,
                               allow_missing=head, allow_extra=["conv10"])
        assert (sorted(found.missing), found.extra, found.shape) == (sorted(head), ["conv10"], [])


def test_decoded_model_classifies_imagenet_photos(caffe, decoded_caffemodel):
    """Caffe preprocessing as in BVLC's classification example: RGB [0,1] -> 227x227, BGR, x255, - mean."""
    net = netcheck.load(IMAGENET_DEPLOY, decoded_caffemodel)
    transformer = caffe.io.Transformer({"data": net.blobs["data"].data.shape})
    transformer.set_transpose("data", (2, 0, 1))
    transformer.set_channel_swap("data", (2, 1, 0))
    transformer.set_raw_scale("data", 255)
    transformer.set_mean("data", np.array([104.0, 117.0, 123.0]))
    predicted = {}
    for photo in (photos.chelsea, photos.coffee):
        net.blobs["data"].data[0] = transformer.preprocess("data", photo().astype(np.float32) / 255)
        predicted[photo.__name__] = int(net.forward()["prob"].argmax())
    assert predicted == {"chelsea": 285, "coffee": 967}  # Egyptian cat, espresso


def test_cli_writes_the_caffemodel(pretrained_src, tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "tools" / "decode_deep_compression.py"),
                           "--from", str(pretrained_src), "--offline", "--dest", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "675,763 bytes, 1,248,424 parameters, 415,921 non-zero" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compressed_SqueezeNet.net", "squeezenet_v1.0_dc.caffemodel"]
    assert not netcheck.compare(IMAGENET_DEPLOY, tmp_path / "squeezenet_v1.0_dc.caffemodel")
