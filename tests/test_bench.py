"""tools/extra/bench_caffe.py: the timing nets, the parsing of `caffe time`, and a real (tiny) benchmark run.
No assertion is about speed: only that the report holds what Caffe and pycaffe measured."""
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sdc import timing
from sdc.variants import VARIANTS

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_caffe", REPO / "tools" / "extra" / "bench_caffe.py")
bench_caffe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_caffe)

# The closing lines of a real `caffe time` run (format of tools/caffe.cpp; numbers edited).
CAFFE_TIME_TAIL = """\
I20261126 10:59:59.800990 21626 caffe.cpp:401]      conv1\tforward: 12.5 ms.
I20261126 10:59:59.800995 21626 caffe.cpp:404]      conv1\tbackward: 20.25 ms.
I20261126 10:59:59.801028 21626 caffe.cpp:408] Average Forward pass: 45.216 ms.
I20261126 10:59:59.801045 21626 caffe.cpp:410] Average Backward pass: 53.811 ms.
I20261126 10:59:59.801057 21626 caffe.cpp:412] Average Forward-Backward: 101 ms.
I20261126 10:59:59.801063 21626 caffe.cpp:414] Total Time: 101 ms.
"""


@pytest.mark.parametrize("variant", VARIANTS)
def test_timing_net_has_batch_inputs_and_a_loss(caffe, tmp_path, variant):
    text = timing.timing_net(REPO / "prototxt" / f"{variant}_deploy.prototxt", 3)
    (tmp_path / "timing.prototxt").write_text(text)
    net = caffe.Net(str(tmp_path / "timing.prototxt"), caffe.TEST)
    assert net.blobs["data"].data.shape == (3, 3, 256, 256)
    assert net.blobs["label"].data.shape == (3,)
    assert net.layers[-1].type == "SoftmaxWithLoss"
    assert net.outputs == ["loss"]
    net.forward()
    assert net.blobs["loss"].data.shape == ()  # a scalar loss, so `caffe time` back-propagates


def test_parse_caffe_time_reads_the_summary_and_layer_lines():
    parsed = bench_caffe.parse_caffe_time(CAFFE_TIME_TAIL)
    assert (parsed["forward_ms"], parsed["backward_ms"], parsed["forward_backward_ms"]) == (45.216, 53.811, 101.0)
    assert parsed["caffe_lines"] == CAFFE_TIME_TAIL.splitlines()[2:5]
    assert parsed["layers"] == [("conv1", "forward", 12.5), ("conv1", "backward", 20.25)]


def test_parse_caffe_time_without_a_summary_is_a_one_line_error():
    with pytest.raises(bench_caffe.UserError, match="no 'Average Forward pass' line"):
        bench_caffe.parse_caffe_time(CAFFE_TIME_TAIL.replace("Average Forward pass", "Forward"))


@pytest.fixture(scope="module")
def tiny_benchmark(tmp_path_factory, caffe, released_dir, neu_dir):
    out = tmp_path_factory.mktemp("bench") / "bench.md"
    image = sorted(neu_dir.rglob("Cr_1.bmp"))[0]
    argv = ["--variants", "SDC-SN", "SDC-SN-ELF-MRF", "--batch", "1", "2", "--iterations", "1",
            "--pycaffe-repeats", "2", "--weights-dir", str(released_dir), "--image", str(image), "--out", str(out)]
    bench_caffe.main(argv)
    return out, json.loads(out.with_suffix(".json").read_text())


def test_caffe_time_numbers_are_the_ones_caffe_printed(tiny_benchmark):
    _, record = tiny_benchmark
    assert [(r["variant"], r["batch"]) for r in record["caffe_time"]] == [
        ("SDC-SN", 1), ("SDC-SN", 2), ("SDC-SN-ELF-MRF", 1), ("SDC-SN-ELF-MRF", 2)]
    for row in record["caffe_time"]:
        printed = [float(re.search(r": ([0-9.]+) ms\.$", line).group(1)) for line in row["caffe_lines"]]
        assert printed == [row["forward_ms"], row["backward_ms"], row["forward_backward_ms"]]
        assert all("caffe.cpp" in line for line in row["caffe_lines"])
        assert row["forward_ms"] > 0 and row["backward_ms"] > 0
        assert row["forward_ms_per_image"] == pytest.approx(row["forward_ms"] / row["batch"])
        assert row["images_per_s"] == pytest.approx(1000 * row["batch"] / row["forward_ms"])


def test_pycaffe_times_one_image_and_classifies_it(tiny_benchmark):
    _, record = tiny_benchmark
    assert [r["variant"] for r in record["pycaffe"]] == ["SDC-SN", "SDC-SN-ELF-MRF"]
    for row in record["pycaffe"]:
        assert row["forward_ms"] > 0 and row["end_to_end_ms"] > 0 and row["repeats"] == 2
        assert Path(row["image"]).name == "Cr_1.bmp"
        # the released nets put this clean crazing image in its class (tests/test_evaluate.py checks more)
        assert row["predicted_class"] == "crazing"


def test_report_names_the_device_and_the_papers_value(tiny_benchmark):
    out, record = tiny_benchmark
    assert record["device"].startswith("CPU: ") and record["iterations"] == 1
    assert record["caffe_build"]["variant"] in ("cpu", "cuda")
    assert record["paper"]["ms_per_image"] == 8.0  # docs/paper_values.csv, Table 4, SDC-SN-ELF-MRF
    text = out.read_text()
    assert text.startswith(f"# Table 4 timings on {record['device']}\n")
    assert "| SDC-SN-ELF-MRF | 2 |" in text and "| SDC-SN | " in text and "8.0 ms/image" in text


def test_missing_weights_stop_before_anything_is_timed_or_written(tmp_path):
    out = tmp_path / "bench.md"
    run = subprocess.run([sys.executable, str(REPO / "tools" / "extra" / "bench_caffe.py"), "--weights-dir", str(tmp_path),
                          "--image", str(tmp_path / "x.bmp"), "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: {tmp_path}/SDC-SN.caffemodel not found: run tools/fetch_pretrained.py SDC-SN, "
        "pass --weights-dir DIR or --pycaffe-repeats 0"]
    assert list(tmp_path.iterdir()) == []
