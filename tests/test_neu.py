"""Locating and verifying NEU-CLS in either layout, labels, and the 200 -> 256 resize."""
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdc import hashing, neu
from sdc.errors import UserError

REPO = Path(__file__).resolve().parents[1]
ONE_PER_CLASS = ["Cr_1.bmp", "In_2.bmp", "Pa_3.bmp", "PS_4.bmp", "RS_5.bmp", "Sc_6.bmp"]
KAGGLE_FOLDERS = ["Crazing", "Inclusion", "Patches", "Pitted", "Rolled", "Scratches"]


@pytest.fixture
def tiny_neu(tmp_path):
    """Six synthetic 200x200 grey BMPs (one per class) in the official layout, and their manifest."""
    root = tmp_path / "NEU-CLS"
    lines = []
    rng = np.random.default_rng(0)
    for name in ONE_PER_CLASS:
        rel = neu.official_path(name)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (200, 200), dtype=np.uint8)).save(root / rel, format="BMP")
        lines.append(f"{hashing.sha256_file(root / rel)}  {rel}\n")
    manifest = tmp_path / "tiny.sha256"
    manifest.write_text("".join(lines))
    return root, manifest


def test_committed_manifest_lists_1800_files_300_per_class():
    entries = neu.read_manifest()
    assert len(entries) == 1800
    assert Counter(neu.label_of(n) for n in entries) == {label: 300 for label in range(6)}
    assert all(rel == neu.official_path(name) for name, (rel, _) in entries.items())
    assert entries["Pa_101.bmp"][1] == entries["Pa_105.bmp"][1]  # the known duplicate


def test_real_database_verifies(neu_dir):
    files, problems = neu.check(neu_dir)
    assert problems == []
    assert len(files) == 1800
    image = neu.load(files["Sc_300.bmp"])
    assert image.shape == (200, 200) and image.dtype == np.uint8


def test_labels_follow_the_fixed_order():
    assert [neu.label_of(f"{c.prefix}_1.bmp") for c in neu.CLASSES] == [0, 1, 2, 3, 4, 5]
    assert [c.prefix for c in neu.CLASSES] == ["Cr", "In", "Pa", "PS", "RS", "Sc"]
    assert neu.label_of("README.md") is None
    assert neu.label_from_path("valid/Pitted/img_7.png") == 3
    assert neu.label_from_path("Rolled/x.png") == 4
    assert neu.official_path("RS_12.bmp") == "rolled-in_scale/RS_12.bmp"


def test_locate_prefers_flag_then_env_then_default(tmp_path, monkeypatch):
    monkeypatch.setenv("NEU_DIR", str(tmp_path))
    assert neu.locate() == tmp_path
    assert neu.locate(tmp_path / "..") == tmp_path / ".."
    monkeypatch.setenv("NEU_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="NEU-CLS not found at .*nowhere.*NEU_DIR"):
        neu.locate()


def test_kaggle_layout_is_accepted(tiny_neu, tmp_path):
    root, manifest = tiny_neu
    kaggle = tmp_path / "kaggle"
    for name, folder, split in zip(ONE_PER_CLASS, KAGGLE_FOLDERS, ["train", "valid", "test"] * 2):
        (kaggle / "NEU-CLS" / split / "images" / folder).mkdir(parents=True)
        shutil.copy(root / neu.official_path(name), kaggle / "NEU-CLS" / split / "images" / folder / name)
    files, problems = neu.check(kaggle, manifest)
    assert problems == []
    assert sorted(files) == sorted(ONE_PER_CLASS)


def test_flipped_byte_is_a_bad_checksum(tiny_neu):
    root, manifest = tiny_neu
    path = root / "inclusion" / "In_2.bmp"
    data = bytearray(path.read_bytes())
    data[5000] ^= 0x01
    path.write_bytes(bytes(data))
    assert neu.check(root, manifest)[1] == [
        "bad checksum: inclusion/In_2.bmp (sha256 differs from the manifest)"]


def test_missing_file_and_missing_class(tiny_neu):
    root, manifest = tiny_neu
    (root / "patches" / "Pa_3.bmp").unlink()
    assert neu.check(root, manifest)[1] == [
        f"missing class Pa (patches): no Pa_*.bmp under {root}"]
    extra_manifest = manifest.parent / "more.sha256"
    extra_manifest.write_text(manifest.read_text() + "0" * 64 + "  crazing/Cr_2.bmp\n")
    assert "missing file: crazing/Cr_2.bmp" in neu.check(root, extra_manifest)[1]


def test_wrong_size_and_extra_file(tiny_neu):
    root, manifest = tiny_neu
    Image.fromarray(np.zeros((200, 199), np.uint8)).save(root / "scratches" / "Sc_6.bmp")
    Image.fromarray(np.zeros((200, 200), np.uint8)).save(root / "scratches" / "Sc_7.bmp")
    assert neu.check(root, manifest)[1] == [
        "wrong size: scratches/Sc_6.bmp is 199x200, expected 200x200",
        "extra file: scratches/Sc_7.bmp (not in the manifest)"]
    with pytest.raises(UserError, match=r"2 problems, first: wrong size.*verify_neu.py"):
        neu.verified_files(root, manifest)


def test_verify_tool_reports_and_exits_2(tiny_neu):
    root, manifest = tiny_neu
    (root / "crazing" / "Cr_1.bmp").write_bytes(b"not a bmp")
    run = subprocess.run([sys.executable, "tools/verify_neu.py", "--neu-dir", str(root), "--manifest",
                          str(manifest)], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stdout.startswith("unreadable image: crazing/Cr_1.bmp")
    assert run.stderr.startswith("error: ") and run.stderr.count("\n") == 1


def test_resize_matches_a_hand_computed_case():
    # 2 -> 4: source positions (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped to [0, 1].
    image = np.array([[0, 100], [200, 40]], np.uint8)
    expected = [[0, 25, 75, 100],
                [50, 59, 76, 85],      # 58.75, 76.25
                [150, 126, 79, 55],    # 126.25, 78.75
                [200, 160, 80, 40]]
    np.testing.assert_array_equal(neu.resize_bilinear(image, 4), expected)
    # Ties round up (0.5 -> 1, 1.5 -> 2), as OpenCV's fixed-point rounding does.
    np.testing.assert_array_equal(neu.resize_bilinear(np.array([[0, 2]] * 2, np.uint8), 4)[0], [0, 1, 2, 2])


def test_resize_equals_skimage_bilinear_with_edge_mode(neu_dir):
    from skimage.transform import resize
    image = neu.load(neu_dir / "crazing" / "Cr_1.bmp")
    reference = resize(image.astype(float), (256, 256), order=1, mode="edge", anti_aliasing=False,
                       preserve_range=True)
    np.testing.assert_array_equal(neu.resize_bilinear(image, 256), np.floor(reference + 0.5))


def bad_images(folder):
    """{what: path} of three image files Pillow cannot read, named as NEU images: a PNG cut in half, a BMP cut
    short, and a BMP whose header claims 30000x30000 pixels (beyond Pillow's decompression-bomb limit)."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(1).integers(0, 256, (200, 200), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "whole.png")
    Image.fromarray(pixels).save(folder / "whole.bmp")
    png, bmp = (folder / "whole.png").read_bytes(), (folder / "whole.bmp").read_bytes()
    paths = {"truncated png": folder / "Cr_1.png", "truncated bmp": folder / "In_2.bmp", "bomb": folder / "Pa_3.bmp"}
    paths["truncated png"].write_bytes(png[:len(png) // 2])
    paths["truncated bmp"].write_bytes(bmp[:len(bmp) // 2])
    header = bytearray(bmp)
    header[18:26] = (30000).to_bytes(4, "little") * 2  # BITMAPINFOHEADER width, height
    paths["bomb"].write_bytes(bytes(header))
    for name in ("whole.png", "whole.bmp"):
        (folder / name).unlink()
    return paths


def test_unreadable_images_are_one_line_errors_naming_the_file(tmp_path):
    for what, path in bad_images(tmp_path).items():
        with pytest.raises(UserError) as error:
            neu.load(path)
        message = str(error.value)
        assert message.startswith(f"{path} is not a readable image (") and "\n" not in message, what
        assert message.endswith("): replace it or leave it out"), what
    assert "exceeds limit" in str(pytest.raises(UserError, neu.load, tmp_path / "Pa_3.bmp").value)


def test_a_decompression_bomb_inside_neu_dir_is_a_problem_line(tiny_neu):
    root, manifest = tiny_neu
    bomb = bad_images(root.parent / "bad")["bomb"]
    shutil.copyfile(bomb, root / "patches" / "Pa_3.bmp")
    run = subprocess.run([sys.executable, "tools/verify_neu.py", "--neu-dir", str(root), "--manifest",
                          str(manifest)], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stdout.startswith("unreadable image: patches/Pa_3.bmp (Image size (900000000 pixels) exceeds limit")


@pytest.mark.parametrize("what", ["truncated png", "truncated bmp", "bomb"])
def test_build_lmdb_external_stops_at_an_unreadable_image(what, tmp_path):
    bad = bad_images(tmp_path / "bad")[what]
    path = tmp_path / "external" / bad.name
    path.parent.mkdir()
    shutil.copyfile(bad, path)
    run = subprocess.run([sys.executable, "tools/build_lmdb.py", "--out", str(tmp_path / "lmdb"), "--only", "blur_2",
                          "--external", f"blur_2={path.parent}", "--jobs", "1"],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.splitlines()[-1].startswith(f"error: {path} is not a readable image (")
    assert not (tmp_path / "lmdb" / "test_blur_2_lmdb").exists()


def test_evaluate_list_stops_at_an_unreadable_image(released_dir, tmp_path):
    path = bad_images(tmp_path / "images")["truncated png"]
    listing = path.parent / "original.txt"  # list paths are relative to the list file
    listing.write_text(f"{path.name} 0\n")
    run = subprocess.run([sys.executable, "tools/evaluate.py", "--model", str(released_dir / "SDC-SN.caffemodel"),
                          "--deploy", "prototxt/SDC-SN_deploy.prototxt", "--name", "SDC-SN", "--out",
                          str(tmp_path / "eval"), "--subsets", "original", "--list", f"original={listing}",
                          "--workers", "1", "--latency-repeats", "0"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.splitlines()[-1].startswith(f"error: {path} is not a readable image (")
    assert not (tmp_path / "eval").exists()
