"""tools/extra/robustness_curves.py with real pycaffe on six NEU test images: every level swept, the interval
over the test images when each is drawn more than once, paths in provenance as results print them, and
the plots' legend clear of the curves. Classical rows (--classical, sdc.classical_curve) on synthetic and
NEU-keyed LMDBs: the value at one level against the same pieces put together by hand, the pixels each
protocol degrades, the row names, the early errors and the up-to-date check."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import robustness_curves
from sdc import classical, classical_curve, degrade, lmdb_io, neu, paths, plotting, stats, texture
from test_classical import write_lmdb as write_classical_lmdb
from test_classical import write_test_lmdbs
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


# --- classical rows (--classical ROW PROTOCOL) -------------------------------------------------

@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """test_classical's synthetic 48x48 LMDBs (6 training and 3 test images per class) and the feature
    cache that tools/classical_baselines.py fills when it evaluates AECLBP+SVM under network-input on them."""
    root = tmp_path_factory.mktemp("classical_curves")
    write_classical_lmdb(root / "lmdb" / "train_lmdb", 6, 0)
    write_test_lmdbs(root / "lmdb", 100)
    run = subprocess.run([sys.executable, str(REPO / "tools" / "classical_baselines.py"), "--train-lmdb",
                          str(root / "lmdb" / "train_lmdb"), "--lmdb-dir", str(root / "lmdb"), "--work-dir",
                          str(root / "features"), "--out", str(root / "eval"), "--protocols", "network-input",
                          "--features", "AECLBP", "--classifiers", "SVM", "--workers", "1"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return root


def classical_command(root, out, *args, row=("AECLBP+SVM", "network-input")):
    return [sys.executable, str(REPO / "tools" / "extra" / "robustness_curves.py"), "--classical", *row,
            "--train-lmdb", str(root / "lmdb" / "train_lmdb"), "--lmdb-dir", str(root / "lmdb"),
            "--work-dir", str(root / "features"), "--out", str(out), "--degradations", "noise", *map(str, args)]


def cached_features(root):
    return {path: path.stat().st_mtime_ns for path in (root / "features").rglob("*.npz")}


def test_a_classical_curve_is_the_rows_fit_on_the_degraded_records(synthetic, tmp_path):
    """AECLBP+SVM under network-input, swept by two worker processes: its features come from
    classical_baselines' cache (none extracted), its fit is the row's (same choice of C and gamma), and
    at 15 dB SNR it gets right exactly the records that the same pieces, put together here, get right:
    the row's classifier on the AECLBP features of the 256x256 records (48x48 here) with the sweep's noise."""
    cache = cached_features(synthetic)
    out = tmp_path / "curves"
    run = subprocess.run(classical_command(synthetic, out, "--workers", 2), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert cached_features(synthetic) == cache
    assert "AECLBP+SVM (all 256): fitted on 36 images (cached features)" in run.stdout
    with open(out / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], int(r["level"])) for r in rows] == [("AECLBP+SVM (all 256)", level)
                                                             for level in robustness_curves.SWEEPS["noise"][0]]
    train = [(image[0], label) for _, image, label in lmdb_io.LmdbSource(synthetic / "lmdb" / "train_lmdb").read()]
    fitted = classical.fit("SVM", np.stack([texture.extract("AECLBP", image) for image, _ in train]),
                           np.array([label for _, label in train]), histogram=True, seed=0, workers=1)
    row = json.loads((synthetic / "eval" / "AECLBP+SVM (all 256)" / "accuracy.json").read_text())
    assert fitted.chosen == row["inputs"]["chosen"]
    assert json.loads((out / "provenance.json").read_text())["classical"]["AECLBP+SVM (all 256)"]["chosen"] == (
        row["inputs"]["chosen"])
    right = []
    for key, image, label in lmdb_io.LmdbSource(synthetic / "lmdb" / lmdb_io.test_name("original")).read():
        noisy = degrade.add_noise(image[0], degrade.rng_for(robustness_curves.DEFAULT_SEED, "curve/noise/15", key, 0), 15)
        right.append(fitted.predict(texture.extract("AECLBP", noisy)[None])[0] == label)
    at_15 = next(r for r in rows if r["level"] == "15")
    assert (int(at_15["correct"]), int(at_15["total"])) == (sum(right), 18)
    assert 0 < sum(right) < 18  # noise at 15 dB costs this row some of the images, not all
    assert float(at_15["accuracy"]) == pytest.approx(sum(right) / 18, abs=1e-6)
    assert (float(at_15["ci95_low"]), float(at_15["ci95_high"])) == pytest.approx(
        stats.wilson_interval(sum(right), 18), abs=1e-6)


def test_a_classical_curve_is_up_to_date_until_its_fit_changes(synthetic, tmp_path):
    out = tmp_path / "curves"
    first = subprocess.run(classical_command(synthetic, out, "--workers", 1), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    inputs = json.loads((out / "inputs.json").read_text())["classical"]["AECLBP+SVM (all 256)"]
    assert inputs["protocol"]["name"] == "network-input"
    assert inputs["classifier"]["name"] == "SVM" and inputs["classifier"]["seed"] == 0
    assert inputs["feature"]["params"] == {"scales": [[8, 1], [16, 2], [24, 3]], "window": 3,
                                           "include_neighbour": False}
    assert inputs["train"] == {"fingerprint": "synthetic train_lmdb 0", "count": 36}
    again = subprocess.run(classical_command(synthetic, out, "--workers", 1), capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.strip() == f"{out}: up to date"
    reseeded = subprocess.run(classical_command(synthetic, out, "--workers", 1, "--fit-seed", 1),
                              capture_output=True, text=True)
    assert reseeded.returncode == 0 and "up to date" not in reseeded.stdout
    assert json.loads((out / "inputs.json").read_text())["classical"]["AECLBP+SVM (all 256)"]["classifier"][
        "seed"] == 1
    other = subprocess.run(classical_command(synthetic, out, "--workers", 1, "--fit-seed", 1,
                                             row=("AECLBP+NNC", "network-input")), capture_output=True, text=True)
    assert other.returncode == 0 and "up to date" not in other.stdout


@pytest.fixture(scope="module")
def neu_lmdbs(tmp_path_factory, neu_dir):
    """A training LMDB and seven test LMDBs of the same two images per class of crazing, inclusion and
    scratches, resized to 256 and keyed by their list paths (as build_lmdb keys them)."""
    root = tmp_path_factory.mktemp("neu_curves") / "lmdb"
    files = neu.verified_files(neu_dir)
    names = [f"{folder}/{prefix}_{i}.bmp" for folder, prefix in (("crazing", "Cr"), ("inclusion", "In"),
                                                                  ("scratches", "Sc")) for i in (1, 2)]
    images = [neu.resize_bilinear(neu.load(files[Path(rel).name]), neu.NETWORK_SIDE) for rel in names]
    labels = [neu.label_of(rel) for rel in names]
    records = [(lmdb_io.record_key(i, rel), lmdb_io.encode(image, label))
               for i, (rel, image, label) in enumerate(zip(names, images, labels))]
    for name in ["train_lmdb"] + [lmdb_io.test_name(s) for s in degrade.TEST_SUBSETS]:
        lmdb_io.write(root / name, records, labels, neu.NETWORK_SIDE, "six NEU images")
    return root, {lmdb_io.record_key(i, rel).decode(): files[Path(rel).name] for i, rel in enumerate(names)}


@pytest.mark.parametrize("protocol, pixels, side", [("native-200", "native", 200), ("network-input", "records", 256),
                                                    ("degraded-256-resized", "records", 200)])
def test_each_protocol_degrades_its_own_pixels(neu_lmdbs, neu_dir, protocol, pixels, side):
    """native-200 degrades the native 200x200 BMP behind each record, network-input the 256x256 record,
    degraded-256-resized the record, resized to 200x200 after the degradation; the features are of those."""
    root, bmps = neu_lmdbs
    plan = classical_curve.plan("GLCM+NNC", protocol, root / "train_lmdb", root, neu_dir)
    assert plan.pixels == pixels
    source = classical_curve.test_originals(pixels, root / lmdb_io.test_name("original"), neu_dir)
    originals = robustness_curves.read_originals(source, None)
    records = list(lmdb_io.LmdbSource(root / lmdb_io.test_name("original")).read())
    assert [key for key, _, _ in originals] == [key for key, _, _ in records] == list(bmps)
    for (key, image, _), (_, record, _) in zip(originals, records):
        np.testing.assert_array_equal(image, neu.load(bmps[key]) if pixels == "native" else record[0])
    (key, degraded, label), = list(robustness_curves.degraded_images(originals[:1], "blur", 5, 1, 7))
    expected = degrade.motion_blur(originals[0][1], degrade.rng_for(7, "curve/blur/5", originals[0][0], 0), 5)
    np.testing.assert_array_equal(degraded, expected)
    curve, = classical_curve.fit([plan], root.parent / "features")
    if side != degraded.shape[0]:
        expected = neu.resize_bilinear(expected, side)
    np.testing.assert_array_equal(curve.feature_of(degraded), texture.extract("GLCM", expected))
    assert curve.correct([(key, degraded, label)]).tolist() == [
        curve.fitted.predict(texture.extract("GLCM", expected)[None])[0] == label]


def test_native_and_resized_rows_share_one_fit_and_keep_their_table_names(neu_lmdbs, neu_dir, tmp_path):
    """AECLBP+NNC under native-200 and degraded-256-resized, end to end: both train on the native BMPs
    (one fit, no enhanced set needed), and are named as their Table 3 rows."""
    root, bmps = neu_lmdbs
    out = tmp_path / "curves"
    run = subprocess.run([sys.executable, str(REPO / "tools" / "extra" / "robustness_curves.py"),
                          "--classical", "AECLBP+NNC", "native-200", "--classical", "AECLBP+NNC", "degraded-256-resized",
                          "--train-lmdb", str(root / "train_lmdb"), "--lmdb-dir", str(root), "--neu-dir", str(neu_dir),
                          "--work-dir", str(tmp_path / "features"), "--out", str(out), "--degradations", "blur",
                          "--workers", "1"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    with open(out / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(dict.fromkeys(r["model"] for r in rows)) == ["AECLBP+NNC", "AECLBP+NNC (all 200, degraded at 256)"]
    assert len(list((tmp_path / "features").rglob("*.npz"))) == 1  # the native training features, once
    record = json.loads((out / "provenance.json").read_text())["classical"]
    assert record["AECLBP+NNC"]["pixels"]["degraded"] == "the native 200x200 images"
    assert record["AECLBP+NNC (all 200, degraded at 256)"]["pixels"]["degraded"] == (
        "the 256x256 LMDB records resized to 200x200")
    # blur length 1 leaves the images unchanged: the native ones are the training images themselves,
    # the resized records went 200 -> 256 -> 200, and a nearest neighbour of each is still right
    first = {r["model"]: r["correct"] for r in rows if r["level"] == "1"}
    assert first == {"AECLBP+NNC": "6", "AECLBP+NNC (all 200, degraded at 256)": "6"}


@pytest.mark.parametrize("row, env_neu, message", [
    (("AECLBP+KNN", "native-200"), True, "error: --classical AECLBP+KNN: unknown row; pass FEATURE+CLASSIFIER with "
                                         "FEATURE one of GLCM, AECLBP, AELTP and CLASSIFIER one of SVM, NNC, MLR, "
                                         "e.g. AECLBP+SVM\n"),
    (("AECLBP+SVM", "native-300"), True, "error: --classical AECLBP+SVM native-300: unknown protocol; pass one of "
                                         "native-200, network-input, scale-mismatch, test-256, degraded-256-resized, "
                                         "raw-features, glcm-8-levels (tools/sdc/protocols.py)\n"),
    (("AECLBP+SVM", "glcm-8-levels"), True, "error: --classical AECLBP+SVM glcm-8-levels: that protocol has GLCM "
                                            "rows only; pass another protocol\n"),
    (("AECLBP+SVM", "native-200"), False, "error: NEU-CLS not found at {default}: download NEU-CLS (see "
                                          "datasets/README.md) and pass --neu-dir or set NEU_DIR\n"),
])
def test_classical_inputs_are_checked_before_any_work(synthetic, tmp_path, row, env_neu, message):
    """A bad row or protocol name, or NEU-CLS missing for a protocol that trains on the native images,
    is one error line naming the fix, with no features extracted and nothing written."""
    if not env_neu and paths.NEU_DIR.is_dir():
        pytest.skip(f"{paths.NEU_DIR} exists: the native protocols find NEU-CLS there")
    env = {k: v for k, v in os.environ.items() if env_neu or k != neu.ENV_VAR}
    out = tmp_path / "curves"
    command = classical_command(synthetic, out, row=row)
    command[command.index("--work-dir") + 1] = str(tmp_path / "features")
    run = subprocess.run(command, capture_output=True, text=True, env=env)
    assert run.returncode == 2
    assert run.stderr == message.format(default=paths.NEU_DIR)
    assert not out.exists() and not (tmp_path / "features").exists()


def test_classical_curves_have_their_own_colours():
    names = ("SDC-SN", "released/SDC-SN", "AECLBP+SVM", "AECLBP+SVM (all 200, degraded at 256)")
    rows = [(name, "blur", level, 5, 6, 5 / 6, 0.4, 0.97) for name in names
            for level in robustness_curves.SWEEPS["blur"][0]]
    figure = robustness_curves.plot(rows, "blur", names[2:])
    figure.canvas.draw()
    (ax,), (legend,) = figure.axes, figure.legends
    assert [t.get_text() for t in legend.get_texts()] == list(names)
    lines = ax.get_lines()[:4]
    assert [line.get_color() for line in lines] == ["C0", "C0", *robustness_curves.CLASSICAL_COLOURS[:2]]
    assert [line.get_linestyle() for line in lines] == ["-", "--", "-.", "-."]
    # the long row name does not fit two columns: one column, inside the figure, below the axes
    assert legend.get_window_extent().x0 >= 0 and legend.get_window_extent().x1 <= figure.bbox.width
    assert legend.get_window_extent().y1 <= ax.get_tightbbox().y0
    assert plotting.smallest_font(figure) >= plotting.MIN_FONT_PT
    plotting.pyplot().close(figure)
