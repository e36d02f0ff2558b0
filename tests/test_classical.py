"""Classical baselines: classifiers (sdc.classical), the feature cache (sdc.features), the
tools/classical_baselines.py evaluation folders and the Song & Yan split protocol."""
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from sdc import classical, degrade, features, lmdb_io, protocols, tables, texture
from sdc.errors import UserError

REPO = Path(__file__).resolve().parents[1]
# Synthetic LMDBs have no native 200x200 files behind them: these runs take the records as stored.
RECORDS = protocols.PROTOCOLS["network-input"]
ROWS = {protocols.row_name(f, c, RECORDS): (f, c) for f in texture.FEATURES for c in classical.CLASSIFIERS}
SIDE = 48


# --- classifiers ------------------------------------------------------------------------------

def test_chi_square_nearest_neighbour_differs_from_euclidean():
    """q = (.8, .2, 0); A = (.8, .1, .1) is nearer in Euclidean distance (0.141 < 0.283), but
    chi-square weighs the small bins: chi2(q, A) = .01/.3 + .01/.1 = 0.133 > chi2(q, B) =
    .04/1.4 + .04/.6 = 0.095 for B = (.6, .4, 0)."""
    train = np.array([[0.8, 0.1, 0.1], [0.6, 0.4, 0.0]])
    query = np.array([[0.8, 0.2, 0.0]])
    assert np.linalg.norm(query - train, axis=1) == pytest.approx([0.1414, 0.2828], abs=1e-4)
    fitted = classical.fit("NNC", train, [2, 4], histogram=True)
    assert fitted.predict(query).tolist() == [4]
    assert fitted.probabilities(query).tolist() == [[0, 0, 0, 0, 1, 0]]
    assert classical.fit("NNC", train, [2, 4], histogram=False).predict(query).tolist() == [2]
    # an exact copy of a training histogram (distance 0, with 0/0 bins) is its own nearest neighbour
    assert fitted.predict(train).tolist() == [2, 4]


def toy_set(seed, per_class=12, labels=range(6), dims=5):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 1.5, (6, dims))
    y = np.repeat(list(labels), per_class)
    return centres[y] + rng.normal(0, 1, (len(y), dims)), y


@pytest.mark.parametrize("name", classical.CLASSIFIERS)
def test_probabilities_agree_with_the_predictions(name):
    x, y = toy_set(0, labels=(0, 2, 5))
    fitted = classical.fit(name, x, y, histogram=False)
    test_x, _ = toy_set(1, labels=(0, 2, 5))
    probs = fitted.probabilities(test_x)
    assert probs.shape == (len(test_x), 6)
    np.testing.assert_allclose(probs.sum(axis=1), 1)
    assert np.all(probs[:, [1, 3, 4]] == 0)   # labels absent from training
    np.testing.assert_array_equal(probs.argmax(axis=1), fitted.model.predict(test_x))
    assert fitted.size_bytes() > 0


def test_cross_validation_sees_the_training_features_only_and_is_seeded():
    """fit() is given the training split alone; its choice is what a seeded stratified 5-fold grid
    search on those features picks, and is the same on every call."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    x, y = toy_set(2)
    fitted = classical.fit("SVM", x, y, histogram=False, seed=3)
    search = GridSearchCV(make_pipeline(StandardScaler(), SVC(break_ties=True)),
                          {"svc__C": classical.SVM_C, "svc__gamma": [g / 5 for g in classical.SVM_GAMMA_SCALE]},
                          cv=StratifiedKFold(5, shuffle=True, random_state=3)).fit(x, y)
    assert fitted.chosen == {"C": search.best_params_["svc__C"], "gamma": search.best_params_["svc__gamma"],
                             "cv_accuracy": search.best_score_, "cv_folds": 5}
    assert classical.fit("SVM", x, y, histogram=False, seed=3).chosen == fitted.chosen
    assert set(classical.fit("MLR", x, y, histogram=False).chosen) == {"C", "cv_accuracy", "cv_folds", "converged"}
    # a reduced training set (2 images per class) gets 2-fold cross-validation; 1 per class is refused
    two = np.concatenate([np.flatnonzero(y == label)[:2] for label in np.unique(y)])
    assert classical.fit("MLR", x[two], y[two], histogram=False).chosen["cv_folds"] == 2
    one = np.concatenate([np.flatnonzero(y == label)[:1] for label in np.unique(y)])
    with pytest.raises(UserError, match="at least 2 training images of every class"):
        classical.fit("MLR", x[one], y[one], histogram=False)


# --- synthetic LMDBs --------------------------------------------------------------------------

def texture_image(label, rng):
    """A 48x48 image of one of six synthetic textures that differ in scale and structure (not only
    in orientation: the local-pattern features are rotation invariant), random phase and noise."""
    rows, cols = np.indices((SIDE, SIDE))
    rows, cols = rows + rng.integers(0, 10), cols + rng.integers(0, 10)
    pattern = {0: cols % 4 < 2, 1: rows % 10 < 5, 2: (rows // 2 + cols // 2) % 2 == 0,
               3: (rows // 5 + cols // 5) % 2 == 0, 4: rng.random((SIDE, SIDE)) < 0.5,
               5: np.zeros((SIDE, SIDE), bool)}[label]
    image = 80 + 100 * pattern + rng.normal(0, 12, (SIDE, SIDE))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_lmdb(dest, per_class, seed):
    rng = np.random.default_rng(seed)
    labels = [label for label in range(6) for _ in range(per_class)]
    records = [(lmdb_io.record_key(i, f"img{i}.png"), lmdb_io.encode(texture_image(label, rng), label))
               for i, label in enumerate(labels)]
    lmdb_io.write(dest, records, labels, SIDE, f"synthetic {dest.name} {seed}")
    return dest


def write_test_lmdbs(lmdb_dir, seed):
    for offset, subset in enumerate(degrade.TEST_SUBSETS):
        write_lmdb(lmdb_dir / f"test_{subset}_lmdb", 3, seed + offset)
    return lmdb_dir


def run_tool(*args):
    return subprocess.run([sys.executable, str(REPO / "tools" / "classical_baselines.py"), *map(str, args),
                           "--protocols", RECORDS.name], capture_output=True, text=True, cwd=REPO)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("classical")
    train = write_lmdb(root / "lmdb" / "train_lmdb", 6, 0)
    write_test_lmdbs(root / "lmdb", 100)
    args = ("--train-lmdb", train, "--lmdb-dir", root / "lmdb", "--work-dir", root / "features",
            "--out", root / "eval", "--workers", 1)
    run = run_tool(*args)
    assert run.returncode == 0, run.stderr
    return root, args, run


def test_every_row_writes_an_evaluation_folder(evaluated):
    root, _, _ = evaluated
    assert sorted(p.name for p in (root / "eval").iterdir()) == sorted(ROWS)
    for row, (feature, classifier) in ROWS.items():
        folder = root / "eval" / row
        record = json.loads((folder / "accuracy.json").read_text())
        assert record["name"] == row
        assert list(record["accuracy"]) == list(degrade.TEST_SUBSETS) + ["enhanced"]
        assert record["accuracy"]["original"]["total"] == 18 and record["accuracy"]["enhanced"]["total"] == 108
        assert record["model_bytes"] > 0
        timing = record["timing"]
        assert timing["device"].startswith("CPU") and timing["latency_ms_batch1"] > 0 and timing["wall_s"] >= 0
        assert timing["feature_extraction"]["train"]["images"] == 36
        inputs = record["inputs"]
        assert inputs["train"]["count"] == 36 and inputs["train"]["fingerprint"] == "synthetic train_lmdb 0"
        assert inputs["subsets"]["blur_5"]["fingerprint"] == "synthetic test_blur_5_lmdb 106"
        assert inputs["feature"]["feature"] == feature
        assert inputs["classifier"]["name"] == classifier
        chosen = {"NNC": {"distance"}, "SVM": {"C", "gamma", "cv_accuracy", "cv_folds"},
                  "MLR": {"C", "cv_accuracy", "cv_folds", "converged"}}
        assert set(inputs["chosen"]) == chosen[classifier]
        for subset in degrade.TEST_SUBSETS:
            lines = (folder / f"predictions_{subset}.csv").read_text().splitlines()
            assert len(lines) == 19 and lines[1].startswith("0,00000000_img0.png,0,")
        provenance = json.loads((folder / "provenance.json").read_text())
        assert provenance["command"] == "tools/classical_baselines.py"
        assert provenance["seeds"] == {"cv_split_seed": 0}  # the folds' shuffle; "cv_folds" is their number


def test_tables_read_the_rows(evaluated):
    root, _, _ = evaluated
    found = tables.load_evaluations(root / "eval")
    assert sorted(found) == sorted(ROWS)
    assert all(0 <= e.accuracy["enhanced"]["accuracy"] <= 1 for e in found.values())


def test_synthetic_textures_are_told_apart(evaluated):
    """The six synthetic textures differ plainly: every feature separates them with its SVM."""
    root, _, _ = evaluated
    for feature in texture.FEATURES:
        folder = root / "eval" / protocols.row_name(feature, "SVM", RECORDS)
        record = json.loads((folder / "accuracy.json").read_text())
        assert record["accuracy"]["original"]["accuracy"] >= 0.8, feature


def test_unchanged_rows_are_skipped(evaluated):
    root, args, _ = evaluated
    again = run_tool(*args)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("up to date") == 9
    assert "(cached)" in again.stdout


def test_choices_do_not_depend_on_the_test_sets(evaluated):
    """Other test images, two worker processes: the training features come from the cache and the
    cross-validated choices are the same."""
    root, args, _ = evaluated
    other = write_test_lmdbs(root / "other_lmdb", 500)
    out = root / "other_eval"
    run = run_tool("--train-lmdb", root / "lmdb" / "train_lmdb", "--lmdb-dir", other, "--work-dir", root / "features",
                   "--out", out, "--workers", 2, "--features", "AECLBP", "--classifiers", "SVM")
    assert run.returncode == 0, run.stderr
    row = protocols.row_name("AECLBP", "SVM", RECORDS)
    assert [p.name for p in out.iterdir()] == [row]
    first = json.loads((root / "eval" / row / "accuracy.json").read_text())
    second = json.loads((out / row / "accuracy.json").read_text())
    assert second["inputs"]["chosen"] == first["inputs"]["chosen"]
    extraction = second["timing"]["feature_extraction"]
    assert extraction["train"]["cached"] and not extraction["original"]["cached"]
    assert extraction["original"]["workers"] == 2


def test_missing_lmdb_is_one_error_line(tmp_path):
    train = write_lmdb(tmp_path / "train_lmdb", 1, 0)
    run = run_tool("--train-lmdb", train, "--lmdb-dir", tmp_path / "none", "--out", tmp_path / "out")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: no LMDB at {tmp_path}/none/test_original_lmdb: run tools/build_lmdb.py"]
    assert not (tmp_path / "out").exists()


# --- feature cache ----------------------------------------------------------------------------

def cached_glcm(path, params, work_dir):
    return features.source_features({"train": features.lmdb_images(path)}, "GLCM", params, work_dir)["train"]


def test_cache_is_keyed_by_fingerprint_and_parameters(tmp_path):
    path = write_lmdb(tmp_path / "train_lmdb", 1, 0)
    params = texture.GlcmParams()
    first = cached_glcm(path, params, tmp_path / "cache")
    assert not first.record["cached"] and first.features.shape == (6, 112)
    _, image, _ = next(lmdb_io.LmdbSource(path).read())
    np.testing.assert_array_equal(first.features[0], texture.extract("GLCM", image[0]))
    again = cached_glcm(path, params, tmp_path / "cache")
    assert again.record["cached"] and again.keys == first.keys
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.labels, np.arange(6))
    other = cached_glcm(path, texture.GlcmParams(levels=64), tmp_path / "cache")
    assert not other.record["cached"]
    write_lmdb(path, 1, 1)   # rebuilt from other images: a new fingerprint
    rebuilt = cached_glcm(path, params, tmp_path / "cache")
    assert not rebuilt.record["cached"] and not np.array_equal(rebuilt.features, first.features)
    assert len(list((tmp_path / "cache" / "GLCM").glob("train_lmdb-*.npz"))) == 3


def test_cache_of_a_missing_lmdb_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="run tools/build_lmdb.py"):
        cached_glcm(tmp_path / "nothing", texture.GlcmParams(), tmp_path)


# --- Song & Yan protocol ----------------------------------------------------------------------

def test_random_splits_take_per_class_images_for_training():
    import song_yan_protocol
    labels = np.repeat(np.arange(6), 300)
    splits = list(song_yan_protocol.random_splits(labels, 150, 3, seed=0))
    assert len(splits) == 3
    for train, test in splits:
        assert Counter(labels[train]) == Counter(labels[test]) == {k: 150 for k in range(6)}
        assert sorted(np.concatenate([train, test]).tolist()) == list(range(1800))
    assert not np.array_equal(splits[0][0], splits[1][0])
    again = list(song_yan_protocol.random_splits(labels, 150, 3, seed=0))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(splits, again))


def test_song_yan_window_options_are_checked_before_any_work():
    for args, message in ((["--feature", "GLCM", "--window", "3"], "apply to AECLBP and AELTP, not GLCM"),
                          (["--window", "4"], "--window 4: give an odd size")):
        run = subprocess.run([sys.executable, str(REPO / "tools" / "extra" / "song_yan_protocol.py"), *args,
                              "--neu-dir", "/nonexistent"], capture_output=True, text=True)
        assert run.returncode == 2 and run.stderr.count("\n") == 1 and message in run.stderr
