"""Protocols of the classical baselines (sdc.protocols): which pixels stand for each LMDB's records,
the classifiers without standardisation, the rows each protocol writes, and tools/extra/compare_protocols.py."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdc import classical, degrade, features, lmdb_io, neu, protocols, tables, texture
from sdc.errors import UserError

from test_classical import toy_set, write_lmdb, write_test_lmdbs

REPO = Path(__file__).resolve().parents[1]
NEU_NAMES = ("crazing/Cr_1.bmp", "inclusion/In_7.bmp", "scratches/Sc_300.bmp")


def neu_keyed_lmdb(dest, neu_dir):
    """An LMDB of three NEU-CLS images resized to 256, keyed by their list paths (as build_lmdb keys them)."""
    files = neu.verified_files(neu_dir)
    images = [neu.resize_bilinear(neu.load(files[Path(rel).name]), neu.NETWORK_SIDE) for rel in NEU_NAMES]
    labels = [neu.label_of(Path(rel).name) for rel in NEU_NAMES]
    records = [(lmdb_io.record_key(i, rel), lmdb_io.encode(image, label))
               for i, (rel, image, label) in enumerate(zip(NEU_NAMES, images, labels))]
    lmdb_io.write(dest, records, labels, neu.NETWORK_SIDE, f"three NEU images {dest.name}")
    return dest, files


def test_native_pixels_are_the_files_behind_the_records(tmp_path, neu_dir):
    """test-256: the training split is read from the BMPs the records were resized from (200x200,
    same keys and labels, same order); the test subsets are the 256x256 records themselves."""
    lmdb, files = neu_keyed_lmdb(tmp_path / "train_lmdb", neu_dir)
    paths = {split: lmdb for split in ("train",) + degrade.TEST_SUBSETS}
    sources = protocols.image_sources(protocols.PROTOCOLS["test-256"], paths, neu_dir)
    native = list(sources["train"].read())
    stored = list(sources["original"].read())
    assert [k for k, _, _ in native] == [k for k, _, _ in stored] == [lmdb_io.record_key(i, r).decode()
                                                                      for i, r in enumerate(NEU_NAMES)]
    assert [label for _, label, _ in native] == [0, 1, 5]
    for (_, _, image), (_, _, record), rel in zip(native, stored, NEU_NAMES):
        np.testing.assert_array_equal(image, neu.load(files[Path(rel).name]))
        assert image.shape == (200, 200) and record.shape == (256, 256)
        np.testing.assert_array_equal(record, neu.resize_bilinear(image, 256))
    assert sources["train"].identity["count"] == 3
    assert sources["train"].identity["fingerprint"] != sources["original"].identity["fingerprint"]


def test_records_resized_to_200(tmp_path):
    lmdb = write_lmdb(tmp_path / "test_blur_2_lmdb", 1, 0)
    plain, resized = features.lmdb_images(lmdb), features.lmdb_images(lmdb, 20)
    (key, label, record), = list(plain.read())[:1]
    (key2, label2, small), = list(resized.read())[:1]
    assert (key2, label2) == (key, label) and small.shape == (20, 20)
    np.testing.assert_array_equal(small, neu.resize_bilinear(record, 20))
    assert resized.identity == {**plain.identity, "side": 20}
    params = texture.GlcmParams()
    assert (features.cache_file(tmp_path, plain, "GLCM", params)[0]
            != features.cache_file(tmp_path, resized, "GLCM", params)[0])


def test_enhanced_files_and_their_errors(tmp_path):
    """The enhanced set made at 200 is read by the records' relative paths; a set made at 256, a
    missing set or a missing file is one UserError naming the fix."""
    lmdb = write_lmdb(tmp_path / "test_noise_20_lmdb", 1, 0)   # keys 0000000i_img<i>.png
    root = tmp_path / "enhanced-200"
    root.mkdir()
    with pytest.raises(UserError, match="generation.json not found: make it with tools/make_enhanced.py --size 200"):
        protocols.enhanced_locator(root)
    (root / "generation.json").write_text(json.dumps({"size": 256, "fingerprint": "f" * 64}))
    with pytest.raises(UserError, match="was made at 256x256, not 200x200"):
        protocols.enhanced_locator(root)
    (root / "generation.json").write_text(json.dumps({"size": 200, "fingerprint": "a" * 64}))
    locate, identity = protocols.enhanced_locator(root)
    assert identity == "enhanced set " + "a" * 16
    images = [np.full((7, 9), 10 * i, np.uint8) for i in range(6)]
    for i, image in enumerate(images[:5]):
        Image.fromarray(image).save(root / f"img{i}.png")
    source = features.file_images(lmdb, locate, identity, "the enhanced set at 200")
    read = source.read()
    for i in range(5):
        key, label, image = next(read)
        assert key == f"{i:08d}_img{i}.png" and label == i
        np.testing.assert_array_equal(image, images[i])
    with pytest.raises(UserError, match=r"img5.png not found \(record 00000005_img5.png of .*test_noise_20_lmdb\)"):
        next(read)


def test_unscaled_svm_gamma_is_relative_to_the_feature_variance():
    """Without standardisation the pipeline is the SVC alone and its gamma one of the grid's
    values / (n_features * variance); the chosen model predicts as a plain SVC with those values."""
    from sklearn.svm import SVC
    x, y = toy_set(4)
    x = x * 100 + 7
    fitted = classical.fit("SVM", x, y, histogram=False, standardise=False)
    assert [name for name, _ in fitted.model.steps] == ["svc"]
    unit = x.shape[1] * x.var()
    assert min(abs(fitted.chosen["gamma"] * unit - g) for g in classical.SVM_GAMMA_SCALE) < 1e-9
    plain = SVC(C=fitted.chosen["C"], gamma=fitted.chosen["gamma"], break_ties=True).fit(x, y)
    test_x, _ = toy_set(5)
    test_x = test_x * 100 + 7
    np.testing.assert_array_equal(fitted.predict(test_x), plain.predict(test_x))
    assert [name for name, _ in classical.fit("MLR", x, y, histogram=False, standardise=False).model.steps] == [
        "logisticregression"]
    assert classical.fit("NNC", x, y, histogram=False, standardise=False).chosen == {
        "distance": "euclidean on unscaled features"}


def run_tool(path, *args):
    return subprocess.run([sys.executable, str(REPO / "tools" / path), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO)


@pytest.fixture(scope="module")
def two_protocols(tmp_path_factory):
    """The synthetic LMDBs of test_classical under network-input and glcm-8-levels (GLCM rows only)."""
    root = tmp_path_factory.mktemp("protocols")
    train = write_lmdb(root / "lmdb" / "train_lmdb", 6, 0)
    write_test_lmdbs(root / "lmdb", 100)
    run = run_tool("classical_baselines.py", "--train-lmdb", train, "--lmdb-dir", root / "lmdb",
                   "--work-dir", root / "features", "--out", root / "eval", "--workers", 1, "--features", "GLCM",
                   "--protocols", "network-input", "glcm-8-levels")
    assert run.returncode == 0, run.stderr
    return root


def test_each_protocol_writes_its_labelled_rows(two_protocols):
    found = tables.load_evaluations(two_protocols / "eval")
    labelled = [f"GLCM+{c} (8 grey levels, distance 1)" for c in classical.CLASSIFIERS]
    assert sorted(found) == sorted([f"GLCM+{c} (all 256)" for c in classical.CLASSIFIERS] + labelled)
    record = found[labelled[0]].record
    assert record["inputs"]["feature"]["params"] == {"levels": 8, "distances": [1]}
    assert record["inputs"]["protocol"]["name"] == "glcm-8-levels"
    assert record["inputs"]["protocol"]["pixels"]["train"] == "the 256x256 LMDB records"
    assert found["GLCM+MLR (all 256)"].record["inputs"]["feature"]["params"] == {"levels": 32,
                                                                                 "distances": [1, 2, 4, 8]}
    # each row names the test LMDBs whose records it classified, which make_tables checks against the run's
    lmdbs = tables.test_set_of_lmdbs(two_protocols / "lmdb")
    assert all(row.test_records == lmdbs for row in found.values())


def test_the_default_protocol_keeps_the_plain_row_names():
    default = protocols.PROTOCOLS[protocols.DEFAULT]
    assert protocols.row_name("AECLBP", "SVM", default) == "AECLBP+SVM"
    native = "the native 200x200 images"
    assert default.describe()["pixels"] == {"train": native, "original": native, "degraded": native}
    assert [p.name for p in protocols.PROTOCOLS.values() if not p.label] == [protocols.DEFAULT]


@pytest.mark.parametrize("protocol_args, message", [
    (["network-input", "native-200"], "error: {tmp}/none/generation.json not found: make it with "
                                      "tools/make_enhanced.py --size 200 --out {tmp}/none"),
    (["test-256"], "error: {tmp} is not the NEU-CLS database"),
])
def test_protocol_inputs_are_checked_before_any_work(two_protocols, neu_dir, tmp_path, protocol_args, message):
    """A protocol's missing inputs stop the run with one error line before any row is written, even
    when the protocol is not the first asked for."""
    root = two_protocols
    neu_arg = tmp_path if protocol_args == ["test-256"] else neu_dir
    run = run_tool("classical_baselines.py", "--train-lmdb", root / "lmdb" / "train_lmdb", "--lmdb-dir", root / "lmdb",
                   "--work-dir", root / "features", "--out", tmp_path / "eval", "--protocols", *protocol_args,
                   "--neu-dir", neu_arg, "--enhanced-200", tmp_path / "none")
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert run.stderr.startswith(message.format(tmp=tmp_path))
    assert not (tmp_path / "eval").exists()


def write_paper_values(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(tables.PAPER_FIELDS)
        for (row, column), value in rows.items():
            writer.writerow(["3", row, column, value, "%", "a test value"])
    return path


def test_comparison_is_ours_minus_paper_per_cell(two_protocols, tmp_path):
    """Paper values 50 in every cell of GLCM+SVM and GLCM+NNC, none for GLCM+MLR: the mean absolute
    difference is the mean of |ours - 50| over those 14 cells, per protocol."""
    eval_dir = two_protocols / "eval"
    columns = tables.TABLE2_COLUMNS
    paper = write_paper_values(tmp_path / "paper.csv", {(f"GLCM+{c}", col): 50 for c in ("SVM", "NNC")
                                                        for col in columns})
    out = tmp_path / "comparison.md"
    run = run_tool("extra/compare_protocols.py", "--eval", eval_dir, "--paper-values", paper, "--out", out)
    assert run.returncode == 0, run.stderr
    summary = json.loads(out.with_suffix(".json").read_text())
    assert sorted(summary) == ["glcm-8-levels", "network-input"]
    for name, suffix in (("network-input", " (all 256)"), ("glcm-8-levels", " (8 grey levels, distance 1)")):
        ours = {(c, col): 100 * json.loads((eval_dir / f"GLCM+{c}{suffix}" / "accuracy.json").read_text())
                ["accuracy"][col]["accuracy"] for c in ("SVM", "NNC") for col in columns}
        assert summary[name]["cells"] == 14
        expected = np.mean([abs(v - 50) for v in ours.values()])
        assert summary[name]["mean_absolute_difference"] == pytest.approx(expected)
        assert summary[name]["mean_signed_difference"]["blur_5"] == pytest.approx(
            (ours[("SVM", "blur_5")] + ours[("NNC", "blur_5")]) / 2 - 50)
        assert summary[name]["differences"]["GLCM+NNC / lum_1"] == pytest.approx(ours[("NNC", "lum_1")] - 50)
    assert out.read_text() == run.stdout
    assert "| GLCM+MLR |" in run.stdout and "not run" not in run.stdout


def test_comparison_without_classical_paper_values_is_one_error_line(two_protocols, tmp_path):
    paper = write_paper_values(tmp_path / "paper.csv", {("ETE", "original"): 95.8})
    run = run_tool("extra/compare_protocols.py", "--eval", two_protocols / "eval", "--paper-values", paper)
    assert run.returncode == 2
    assert run.stderr == f"error: {paper} holds no classical Table 3 value: pass the file with them\n"
