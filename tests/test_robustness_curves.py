"""tools/extra/robustness_curves.py with real pycaffe on six NEU test images: every level swept, the interval
over the test images when each is drawn more than once, paths in provenance as results print them, and
the plots' legend clear of the curves."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

import robustness_curves
from sdc import lmdb_io, neu, plotting, stats
from test_evaluate import MRF_DEPLOY, SIX, network_input, write_lmdb

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lmdb_dir(caffe, tmp_path_factory, neu_dir):
    """test_original_lmdb with one image per class (PS_280, the one the released model gets wrong)."""
    files = {name: paths[0] for name, paths in neu.scan(neu_dir).items()}
    root = tmp_path_factory.mktemp("robustness") / "lmdb"
    write_lmdb(root / lmdb_io.test_name("original"), [(name, network_input(files, name), label) for name, label in SIX])
    return root


def command(lmdb_dir, out, model):
    return [sys.executable, str(REPO / "tools" / "extra" / "robustness_curves.py"),
            "--model", "released/SDC-SN-ELF-MRF", str(model), str(MRF_DEPLOY),
            "--lmdb-dir", str(lmdb_dir), "--out", str(out), "--degradations", "blur"]


def sweep(lmdb_dir, out, model, *args):
    run = subprocess.run(command(lmdb_dir, out, model) + list(args), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    with open(out / "curves.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_robustness_curves_sweep_every_level(lmdb_dir, released_dir, tmp_path):
    out = tmp_path / "robustness"
    rows = sweep(lmdb_dir, out, released_dir / "SDC-SN-ELF-MRF.caffemodel", "--batch", "6")
    assert [int(r["level"]) for r in rows] == list(range(1, 10))
    assert all(r["total"] == "6" for r in rows)
    assert rows[0]["correct"] == "5"  # blur length 1 leaves the images as they are: PS_280 stays wrong
    # one draw per image: the six images are independent, Wilson's interval of 5 of 6
    assert (float(rows[0]["ci95_low"]), float(rows[0]["ci95_high"])) == pytest.approx(
        stats.wilson_interval(5, 6), abs=1e-6)
    assert (out / "robustness_blur.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "robustness_blur.pdf").read_bytes()[:5] == b"%PDF-"
    record = json.loads((out / "provenance.json").read_text())
    assert record["models"]["released/SDC-SN-ELF-MRF"]["deploy"] == "prototxt/SDC-SN-ELF-MRF_deploy.prototxt"
    again = subprocess.run(command(lmdb_dir, out, released_dir / "SDC-SN-ELF-MRF.caffemodel") + ["--batch", "6"],
                           capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.strip() == f"{out}: up to date"
    # a folder without one of its plots (as written before the PDFs were) is swept again
    (out / "robustness_blur.pdf").unlink()
    redone = subprocess.run(command(lmdb_dir, out, released_dir / "SDC-SN-ELF-MRF.caffemodel") + ["--batch", "6"],
                            capture_output=True, text=True)
    assert redone.returncode == 0 and "up to date" not in redone.stdout
    assert (out / "robustness_blur.pdf").is_file()


def test_draws_of_one_image_count_as_that_image(lmdb_dir, released_dir, tmp_path):
    # Two draws of each image, in this process (--workers 1). At blur length 1 the two draws are the
    # image itself: 10 of 12 records right, but they hold no more than the 6 images, so the interval is
    # Wilson's of 5 of 6 and not the narrower one of 10 of 12.
    rows = sweep(lmdb_dir, tmp_path / "robustness", released_dir / "SDC-SN-ELF-MRF.caffemodel",
                 "--draws", "2", "--workers", "1")
    assert (rows[0]["level"], rows[0]["correct"], rows[0]["total"]) == ("1", "10", "12")
    assert (float(rows[0]["ci95_low"]), float(rows[0]["ci95_high"])) == pytest.approx(
        stats.wilson_interval(5, 6), abs=1e-6)
    assert float(rows[0]["ci95_low"]) < stats.wilson_interval(10, 12)[0] - 0.1


def test_the_legend_lies_below_the_curves():
    rows = [(name, "noise", level, 5, 6, 5 / 6, 0.4, 0.97) for name in ("SDC-SN", "released/SDC-SN")
            for level in robustness_curves.SWEEPS["noise"][0]]
    figure = robustness_curves.plot(rows, "noise")
    figure.canvas.draw()
    (ax,), (legend,) = figure.axes, figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["SDC-SN", "released/SDC-SN"]
    assert legend.get_window_extent().y1 <= ax.get_tightbbox().y0
    # one colour per variant: the released model dashed in the colour of ours
    ours, released = ax.get_lines()[:2]
    assert ours.get_color() == released.get_color() and released.get_linestyle() == "--"
    assert plotting.smallest_font(figure) >= plotting.MIN_FONT_PT
    plotting.pyplot().close(figure)


def test_the_sweeps_follow_the_papers_column_order():
    assert list(robustness_curves.SWEEPS) == ["luminance", "noise", "blur"]
