"""The diversity-enhanced test set generator (CLI smoke runs) and its LMDBs."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdc import degrade, lmdb_io, neu

REPO = Path(__file__).resolve().parents[1]


def make_enhanced(neu_dir, out, *extra):
    run = subprocess.run([sys.executable, "tools/make_enhanced.py", "--neu-dir", str(neu_dir), "--out", str(out),
                          "--per-class", "1", *extra], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run


@pytest.fixture(scope="module")
def enhanced(neu_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("enhanced") / "seed7"
    make_enhanced(neu_dir, out, "--seed", "7", "--jobs", "2")
    return out


def test_layout_lists_and_records(enhanced):
    for subset in degrade.SUBSETS:
        lines = (enhanced / f"{subset}.txt").read_text().splitlines()
        assert len(lines) == 6 * degrade.DRAWS
        assert lines[0] == f"{subset}/crazing/Cr_1_0.png 0"
        assert re.fullmatch(rf"{subset}/scratches/Sc_\d+_4\.png 5", lines[-1])
    assert len((enhanced / "PIXELS.sha256").read_text().splitlines()) == 180
    info = json.loads((enhanced / "generation.json").read_text())
    assert info["seed"] == 7 and info["size"] == 256 and info["images"] == 180
    assert json.loads((enhanced / "provenance.json").read_text())["seeds"] == {"enhanced": 7}
    check = subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=enhanced, capture_output=True)
    assert check.returncode == 0


def test_images_are_the_degraded_256_inputs(enhanced, neu_dir):
    source = neu.resize_bilinear(neu.load(neu_dir / "crazing" / "Cr_1.bmp"), 256)
    for subset in degrade.SUBSETS:
        stored = neu.load(enhanced / subset / "crazing" / "Cr_1_3.png")
        expected = degrade.degrade(source, subset, degrade.rng_for(7, subset, "Cr_1.bmp", 3))
        np.testing.assert_array_equal(stored, expected)


def test_same_seed_same_manifest_any_worker_count_other_seed_differs(enhanced, neu_dir, tmp_path):
    make_enhanced(neu_dir, tmp_path / "again", "--seed", "7", "--jobs", "1")
    make_enhanced(neu_dir, tmp_path / "other", "--seed", "8")
    pixels = (enhanced / "PIXELS.sha256").read_text()
    assert (tmp_path / "again" / "PIXELS.sha256").read_text() == pixels
    assert (tmp_path / "again" / "MANIFEST.sha256").read_text() == (enhanced / "MANIFEST.sha256").read_text()
    other = (tmp_path / "other" / "PIXELS.sha256").read_text().splitlines()
    assert len(other) == 180
    # Nearly every image changes; a rare one can coincide (a vertical 3-tap blur of a vertical scratch).
    assert len(set(other) - set(pixels.splitlines())) >= 170


def test_unchanged_inputs_are_skipped_and_size_200_is_an_option(enhanced, neu_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(enhanced, copy)
    assert "up to date" in make_enhanced(neu_dir, copy, "--seed", "7").stdout
    make_enhanced(neu_dir, copy, "--seed", "7", "--size", "200", "--padding", "zero")
    first_blurred = (copy / "blur_5.txt").read_text().split()[0]
    assert neu.load(copy / first_blurred).shape == (200, 200)
    assert json.loads((copy / "generation.json").read_text())["padding"] == "zero"


def test_lmdb_from_the_enhanced_set_and_from_an_external_one(enhanced, neu_dir, tmp_path):
    out = tmp_path / "lmdb"
    run = subprocess.run([sys.executable, "tools/build_lmdb.py", "--enhanced", str(enhanced), "--out", str(out),
                          "--only", "noise_20", "blur_5", "--per-class", "1"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    noise = list(lmdb_io.LmdbSource(out / "test_noise_20_lmdb").read())
    assert len(noise) == 30 and [label for _, _, label in noise] == sorted([0, 1, 2, 3, 4, 5] * 5)
    np.testing.assert_array_equal(noise[0][1][2], neu.load(enhanced / "noise_20" / "crazing" / "Cr_1_0.png"))

    # An externally produced set (e.g. the authors'): any layout, labels from names or class folders.
    external = tmp_path / "authors" / "Gaussian noise"
    (external / "Rolled").mkdir(parents=True)
    shutil.copy(neu_dir / "crazing" / "Cr_1.bmp", external / "Cr_1.bmp")
    shutil.copy(neu_dir / "rolled-in_scale" / "RS_9.bmp", external / "Rolled" / "img9.bmp")
    run = subprocess.run([sys.executable, "tools/build_lmdb.py", "--external", f"noise_20={external}", "--out",
                          str(tmp_path / "authors_lmdb"), "--only", "noise_20"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    records = list(lmdb_io.LmdbSource(tmp_path / "authors_lmdb" / "test_noise_20_lmdb").read())
    assert [(key, label) for key, _, label in records] == [("00000000_Cr_1.bmp", 0), ("00000001_Rolled/img9.bmp", 4)]
    assert records[0][1].shape == (3, 256, 256)
