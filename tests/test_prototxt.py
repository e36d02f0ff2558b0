"""The hand-written prototxts: structure, shapes, learning-rate multipliers, and faithfulness to the
nets stored inside the authors' released caffemodels (compared as parsed protos, never as text)."""
from pathlib import Path

import numpy as np
import pytest
from caffe.proto import caffe_pb2
from google.protobuf import text_format
from PIL import Image

from sdc import netcheck
from sdc.variants import VARIANTS

REPO = Path(__file__).resolve().parents[1]
PROTOTXT = REPO / "prototxt"
FILES = {f"{v}_{kind}.prototxt" for v in VARIANTS + ("ETE",) for kind in ("train_val", "deploy")} | {
    "squeezenet_v1.0_deploy.prototxt", "CaffeNet_deploy.prototxt"}  # ETE, CaffeNet: tests/test_baseline_nets.py
# SqueezeNet v1.0 (Iandola et al. 2016, Table 1): fire module -> (squeeze1x1, expand1x1 = expand3x3).
FIRES = {2: (16, 64), 3: (16, 64), 4: (32, 128), 5: (32, 128), 6: (48, 192), 7: (48, 192), 8: (64, 256), 9: (64, 256)}
FIRE_BOTTOMS = {2: "pool1", 3: "fire2/concat", 4: "fire3/concat", 5: "pool4", 6: "fire5/concat",
                7: "fire6/concat", 8: "fire7/concat", 9: "pool8"}
ELF_LAYERS = {"conv1"} | {f"fire{n}/{c}" for n in (2, 3) for c in ("squeeze1x1", "expand1x1", "expand3x3")}
ELF_PARAMS = [(9.0, 6.0), (9.0, 0.0)]  # (lr_mult, decay_mult) of weights, biases
HEADS = {"SDC-SN": ["conv10b", "relu_conv10", "pool10"],
         "SDC-SN-ELF": ["conv10b", "relu_conv10", "pool10"],
         "SDC-SN-ELF-MRF": ["conv10a", "relu_conv10a", "conv10b", "relu_conv10", "pool10s", "pool10", "conv11"]}
# Blob shapes (C, H, W) at 256x256 input, as Caffe computes them (convolutions round down, pooling up).
BACKBONE_SHAPES = {"conv1": (96, 125, 125), "pool1": (96, 62, 62), "fire2/concat": (128, 62, 62),
                   "fire3/concat": (128, 62, 62), "fire4/concat": (256, 62, 62), "pool4": (256, 31, 31),
                   "fire5/concat": (256, 31, 31), "fire6/concat": (384, 31, 31), "fire7/concat": (384, 31, 31),
                   "fire8/concat": (512, 31, 31), "pool8": (512, 15, 15), "fire9/concat": (512, 15, 15)}
HEAD_SHAPES = {"SDC-SN": {"conv10b": (6, 17, 17), "pool10": (6, 1, 1)},
               "SDC-SN-ELF": {"conv10b": (6, 17, 17), "pool10": (6, 1, 1)},
               "SDC-SN-ELF-MRF": {"conv10a": (6, 15, 15), "conv10b": (6, 15, 15), "pool10s": (12, 15, 15),
                                  "pool10": (12, 1, 1), "conv11": (6, 1, 1)}}
PARAM_COUNTS = {"SDC-SN": 738_502, "SDC-SN-ELF": 738_502, "SDC-SN-ELF-MRF": 766_234,
                "squeezenet_v1.0": 1_248_424, "ETE": 461_382, "CaffeNet": 60_965_224}


def parse(name):
    net = caffe_pb2.NetParameter()
    text_format.Parse((PROTOTXT / name).read_text(), net)
    return net


def layers(net):
    return {layer.name: layer for layer in net.layer}


def without(layer, *fields):
    copy = caffe_pb2.LayerParameter()
    copy.CopyFrom(layer)
    for name in fields:
        if name == "weight_filler":
            copy.convolution_param.ClearField(name)
        else:
            copy.ClearField(name)
    return copy


def shapes(net):
    return {name: blob.data.shape[1:] for name, blob in net.blobs.items()}


@pytest.fixture
def train_val_net(lmdb_root, caffe, monkeypatch):
    monkeypatch.chdir(lmdb_root)
    return lambda variant, phase: caffe.Net(str(PROTOTXT / f"{variant}_train_val.prototxt"), phase)


def test_the_prototxt_folder_holds_exactly_the_checked_files():
    assert {p.name for p in PROTOTXT.glob("*.prototxt")} == FILES
    for name in FILES:
        assert parse(name).layer, name


@pytest.mark.parametrize("variant", VARIANTS)
def test_deploy_blob_shapes_at_256(caffe, variant):
    net = caffe.Net(str(PROTOTXT / f"{variant}_deploy.prototxt"), caffe.TEST)
    assert net.blobs["data"].data.shape == (1, 3, 256, 256)
    got = shapes(net)
    assert {k: got[k] for k in BACKBONE_SHAPES} == BACKBONE_SHAPES
    assert {k: got[k] for k in HEAD_SHAPES[variant]} == HEAD_SHAPES[variant]
    assert net.outputs == ["prob"] and got["prob"] == (6, 1, 1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_train_val_blob_shapes_in_both_phases(train_val_net, caffe, variant):
    for phase, outputs in ((caffe.TRAIN, ["loss"]), (caffe.TEST, ["accuracy", "loss"])):
        net = train_val_net(variant, phase)
        assert net.blobs["data"].data.shape == (18, 3, 256, 256)
        got = shapes(net)
        assert {k: got[k] for k in BACKBONE_SHAPES} == BACKBONE_SHAPES
        assert {k: got[k] for k in HEAD_SHAPES[variant]} == HEAD_SHAPES[variant]
        assert sorted(net.outputs) == outputs


@pytest.mark.parametrize("variant", VARIANTS)
def test_train_net_is_the_net_stored_in_the_released_caffemodel(train_val_net, caffe, released_dir, tmp_path,
                                                                 variant):
    """Caffe stores the layer definitions of the TRAIN net it ran in every caffemodel (after filtering
    by phase and inserting Split layers); ours, saved the same way, must be identical but for the data
    layer (theirs ImageData on a file list, ours LMDB) and the loss layer's phase rule (ours also tests)."""
    train_val_net(variant, caffe.TRAIN).save(str(tmp_path / "ours.caffemodel"))
    ours, theirs = caffe_pb2.NetParameter(), caffe_pb2.NetParameter()
    ours.ParseFromString((tmp_path / "ours.caffemodel").read_bytes())
    theirs.ParseFromString((released_dir / f"{variant}.caffemodel").read_bytes())
    ours_data, theirs_data = ours.layer[0], theirs.layer[0]
    assert (ours_data.type, theirs_data.type) == ("Data", "ImageData")
    assert ours_data.transform_param == theirs_data.transform_param
    assert ours_data.data_param.batch_size == theirs_data.image_data_param.batch_size == 18
    ours_rest = [text_format.MessageToString(without(layer, "blobs", "include")) for layer in ours.layer[1:]]
    theirs_rest = [text_format.MessageToString(without(layer, "blobs", "include")) for layer in theirs.layer[1:]]
    assert ours_rest == theirs_rest


@pytest.mark.parametrize("variant", VARIANTS)
def test_released_caffemodel_loads_into_our_deploy_and_classifies_neu(caffe, released_dir, neu_dir, variant):
    deploy, weights = PROTOTXT / f"{variant}_deploy.prototxt", released_dir / f"{variant}.caffemodel"
    assert not netcheck.compare(deploy, weights)  # every blob matched by name and shape, none missing or extra
    net = netcheck.load(deploy, weights)
    folders = ("crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches")
    prefixes = ("Cr", "In", "Pa", "PS", "RS", "Sc")
    batch = []
    for folder, prefix in zip(folders, prefixes):
        for number in (1, 150):
            grey = Image.open(neu_dir / folder / f"{prefix}_{number}.bmp").convert("L")
            pixels = np.asarray(grey.resize((256, 256), Image.BILINEAR), np.float32)
            batch.append(np.stack([pixels - 104, pixels - 117, pixels - 123]))
    net.blobs["data"].reshape(len(batch), 3, 256, 256)
    net.blobs["data"].data[...] = np.stack(batch)
    predicted = net.forward()["prob"].reshape(len(batch), 6).argmax(axis=1)
    assert predicted.tolist() == [label for label in range(6) for _ in (1, 150)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_lr_and_decay_multipliers(variant):
    for name, layer in layers(parse(f"{variant}_train_val.prototxt")).items():
        got = [(p.lr_mult, p.decay_mult) for p in layer.param]
        expected = ELF_PARAMS if variant != "SDC-SN" and name in ELF_LAYERS else []
        assert got == expected, name


def test_variants_differ_only_in_elf_params_and_head():
    for kind in ("train_val", "deploy"):
        nets = {v: parse(f"{v}_{kind}.prototxt") for v in VARIANTS}
        assert [n.name for n in nets.values()] == list(VARIANTS)
        base = [without(layer, "param") for layer in nets["SDC-SN"].layer]
        elf = [without(layer, "param") for layer in nets["SDC-SN-ELF"].layer]
        assert elf == base
        mrf = [without(layer, "param") for layer in nets["SDC-SN-ELF-MRF"].layer]
        [head_start] = [i for i, layer in enumerate(base) if layer.name == "drop9"]
        assert mrf[:head_start + 1] == base[:head_start + 1]
        assert [layer.param for layer in nets["SDC-SN-ELF-MRF"].layer[:head_start + 1]] == \
               [layer.param for layer in nets["SDC-SN-ELF"].layer[:head_start + 1]]
        for variant, net in nets.items():
            names = [layer.name for layer in net.layer[head_start + 1:]]
            tail = ["loss", "accuracy"] if kind == "train_val" else ["prob"]
            assert names == HEADS[variant] + tail


def test_heads_as_released():
    heads = {v: layers(parse(f"{v}_train_val.prototxt")) for v in VARIANTS}
    for variant, net in heads.items():
        for name in HEADS[variant]:
            layer = net[name]
            if layer.type == "Convolution":
                filler = layer.convolution_param.weight_filler
                assert (filler.type, filler.mean, filler.std) == ("gaussian", 0.0, pytest.approx(0.01))
                assert list(layer.bottom) == (["pool10"] if name == "conv11" else ["fire9/concat"])
    conv = lambda v, n: heads[v][n].convolution_param
    for variant in ("SDC-SN", "SDC-SN-ELF"):
        assert (conv(variant, "conv10b").num_output, conv(variant, "conv10b").kernel_size,
                conv(variant, "conv10b").pad) == (6, [1], [1])
    mrf = "SDC-SN-ELF-MRF"
    assert (conv(mrf, "conv10a").kernel_size, conv(mrf, "conv10a").pad) == ([3], [1])
    assert (conv(mrf, "conv10b").kernel_size, conv(mrf, "conv10b").pad) == ([1], [0])
    assert (conv(mrf, "conv11").num_output, conv(mrf, "conv11").kernel_size, conv(mrf, "conv11").pad) == (6, [1], [0])
    assert list(heads[mrf]["pool10s"].bottom) == ["conv10a", "conv10b"]
    assert "conv10" not in set().union(*(net.keys() for net in heads.values()))  # ImageNet's conv10 is never copied


@pytest.mark.parametrize("name", sorted(f for f in FILES if f.startswith(("SDC-", "squeezenet"))))
def test_fire_modules_are_squeezenet_v1_0(name):
    """Guards the hand-written repetition: every fire module in every file has SqueezeNet v1.0's wiring."""
    net = layers(parse(name))
    for n, (squeeze, expand) in FIRES.items():
        fire = f"fire{n}/"
        for conv, bottom, width, kernel, pad in (("squeeze1x1", FIRE_BOTTOMS[n], squeeze, 1, []),
                                                 ("expand1x1", fire + "squeeze1x1", expand, 1, []),
                                                 ("expand3x3", fire + "squeeze1x1", expand, 3, [1])):
            layer = net[fire + conv]
            p = layer.convolution_param
            assert (layer.type, list(layer.bottom), list(layer.top)) == ("Convolution", [bottom], [fire + conv])
            assert (p.num_output, list(p.kernel_size), list(p.pad), list(p.stride)) == (width, [kernel], pad, [])
            relu = net[fire + "relu_" + conv]
            assert (relu.type, list(relu.bottom), list(relu.top)) == ("ReLU", [fire + conv], [fire + conv])
        concat = net[fire + "concat"]
        assert (concat.type, list(concat.bottom)) == ("Concat", [fire + "expand1x1", fire + "expand3x3"])
    conv1 = net["conv1"].convolution_param
    assert (conv1.num_output, list(conv1.kernel_size), list(conv1.stride)) == (96, [7], [2])
    for pool, bottom in (("pool1", "conv1"), ("pool4", "fire4/concat"), ("pool8", "fire8/concat")):
        p = net[pool].pooling_param
        assert (list(net[pool].bottom), p.pool, p.kernel_size, p.stride) == ([bottom], p.MAX, 3, 2)
    assert net["drop9"].dropout_param.dropout_ratio == pytest.approx(0.5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_train_val_and_deploy_share_every_layer_but_data_and_outputs(variant):
    strip = ("param", "weight_filler", "include")
    train = [without(layer, *strip) for layer in parse(f"{variant}_train_val.prototxt").layer
             if layer.type not in ("Data", "SoftmaxWithLoss", "Accuracy")]
    deploy = [without(layer, *strip) for layer in parse(f"{variant}_deploy.prototxt").layer
              if layer.type not in ("Input", "Softmax")]
    assert train == deploy
    backbone = [without(layer, *strip) for layer in parse("squeezenet_v1.0_deploy.prototxt").layer
                if layer.type != "Input"]
    assert deploy[:len(backbone) - 4] == backbone[:-4]  # all but conv10, relu_conv10, pool10, prob


@pytest.mark.parametrize("model", sorted(PARAM_COUNTS))
def test_parameter_counts(caffe, model):
    net = caffe.Net(str(PROTOTXT / f"{model}_deploy.prototxt"), caffe.TEST)
    count = lambda names: sum(blob.data.size for name in names for blob in net.params[name])
    assert count(net.params) == PARAM_COUNTS[model]
    if model == "SDC-SN-ELF-MRF":
        assert [count([n]) for n in ("conv10a", "conv10b", "conv11")] == [27_654, 3_078, 78]
        assert count(["conv10a", "conv10b", "conv11"]) == 30_810
