"""tools/bench_caffe.py times the nets as a training step runs them."""
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_caffe", REPO / "tools" / "bench_caffe.py")
bench_caffe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_caffe)


@pytest.mark.parametrize("variant", bench_caffe.VARIANTS)
def test_timing_net_has_batch_inputs_and_a_loss(caffe, tmp_path, variant):
    text = bench_caffe.timing_net(REPO / "prototxt" / f"{variant}_deploy.prototxt", 3)
    (tmp_path / "timing.prototxt").write_text(text)
    net = caffe.Net(str(tmp_path / "timing.prototxt"), caffe.TEST)
    assert net.blobs["data"].data.shape == (3, 3, 256, 256)
    assert net.blobs["label"].data.shape == (3,)
    assert net.layers[-1].type == "SoftmaxWithLoss"
    assert net.outputs == ["loss"]
    net.forward()
    assert net.blobs["loss"].data.shape == ()  # a scalar loss, so `caffe time` back-propagates
