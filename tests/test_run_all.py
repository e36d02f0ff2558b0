"""tools/run_all.sh end to end on a reduced subset: every stage runs for real (real NEU images,
the real `caffe train`, pycaffe evaluation of our three nets and the authors' released ones)."""
import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from sdc import hashing, paths, weights

REPO = Path(__file__).resolve().parents[1]
TABLE_HEADINGS = ["Table 2", "Table 3", "Table 4", "Table 5"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, neu_dir, pretrained_src):
    out = tmp_path_factory.mktemp("run_all")
    # Run from elsewhere with paths relative to there, as a user would type them (links, so that the
    # paths mean nothing from the repo root).
    (out / "neu").symlink_to(neu_dir)
    (out / "weights").symlink_to(pretrained_src)
    env = dict(os.environ, NEU_DIR="neu", SDC_PRETRAINED_DIR="weights")
    cmd = ["bash", str(REPO / "tools" / "run_all.sh"), "--profile", "smoke", "--per-class", "2",
           "--max-iter", "4", "--eval-per-class", "2", "--data-dir", "data",
           "--runs-dir", "runs", "--results-dir", "results"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out, timeout=1800)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return out, run, cmd, env


def test_smoke_profile_produces_every_table(smoke_run):
    out, run, _, _ = smoke_run
    tables = (out / "results" / "smoke" / "tables.md").read_text()
    for heading in TABLE_HEADINGS:
        assert heading in tables
    assert "results:" in run.stdout
    # The classical rows read the test records as the native 200 px files (other fingerprints), yet they
    # are this run's evaluations, not left-overs.
    summary = json.loads((out / "results" / "smoke" / "summary.json").read_text())
    assert summary["provenance"]["ignored_stale"] == {}
    assert {"GLCM+SVM", "AECLBP+MLR", "AELTP+NNC", "AECLBP+SVM (all 200, degraded at 256)"} <= set(summary["models"])
    with open(out / "results" / "smoke" / "robustness" / "curves.csv", newline="") as f:
        curves = {row["model"] for row in csv.DictReader(f)}
    assert {"SDC-SN", "released/SDC-SN", "AECLBP+SVM", "AECLBP+SVM (all 200, degraded at 256)"} <= curves


def test_summary_has_our_three_variants_and_the_released_models(smoke_run):
    out, _, _, _ = smoke_run
    summary = json.loads((out / "results" / "smoke" / "summary.json").read_text())
    assert summary["profile"] == "smoke"
    for name in ["SDC-SN", "SDC-SN-ELF", "SDC-SN-ELF-MRF", "released/SDC-SN-ELF-MRF"]:
        row = summary["models"][name]
        for subset in ["original", "lum_0.4", "lum_1", "noise_35", "noise_20", "blur_2", "blur_5", "enhanced"]:
            assert 0.0 <= row[subset] <= 1.0, (name, subset)
    # The released MRF model classifies all 12 clean test images (2 per class) correctly.
    assert summary["models"]["released/SDC-SN-ELF-MRF"]["original"] == 1.0


def test_training_ran_the_requested_schedule(smoke_run):
    out, _, _, _ = smoke_run
    for variant in ["SDC-SN", "SDC-SN-ELF", "SDC-SN-ELF-MRF"]:
        run_dir = out / "runs" / "smoke" / variant
        assert (run_dir / "snapshots" / f"{variant}_iter_4.caffemodel").is_file()
        assert (run_dir / "final.caffemodel").is_file()
        assert json.loads((run_dir / "provenance.json").read_text())["git_commit"]


def test_the_start_weights_are_named_in_the_output_and_the_training_provenance(smoke_run, pretrained_src):
    """The original SqueezeNet v1.0 when there is one, else the Deep-Compression stand-in, said as such."""
    out, run, _, _ = smoke_run
    original = weights.read_manifest()["squeezenet_v1.0"]
    has_original = any(pretrained_src.rglob(original.caffemodel)) or \
        (paths.WEIGHTS_DIR / original.caffemodel).is_file()
    for variant in ["SDC-SN", "SDC-SN-ELF", "SDC-SN-ELF-MRF"]:
        start = json.loads((out / "runs" / "smoke" / variant / "provenance.json").read_text())["weights"]
        assert Path(start["path"]).name == (original.caffemodel if has_original else weights.DECODED_IMAGENET)
        assert start["sha1"] == hashing.sha1_file(start["path"])
    absent = "run_all: the original squeezenet_v1.0.caffemodel is absent: fine-tuning starts from the " \
             "Deep-Compression stand-in"
    assert (absent in run.stdout) != has_original


def test_run_provenance_has_stage_times_and_every_seed(smoke_run):
    out, _, cmd, _ = smoke_run
    record = json.loads((out / "results" / "smoke" / "provenance.json").read_text())
    assert record["command"] == "tools/run_all.sh " + " ".join(cmd[2:])
    assert {"LMDBs", "train SDC-SN (smoke profile)", "tables and figures", "total"} <= set(record["wall_times_s"])
    seeds = record["seeds"]  # keyed relative to the parent of each --from folder: results/, the data folder's
    assert seeds["smoke/logs/SDC-SN"] == {"solver_random_seed": 42}
    assert seeds["data/enhanced"] == {"enhanced": 2019}
    assert seeds["data/lmdb"] == {"train_aug8_order": 42}


def test_rerun_skips_finished_stages(smoke_run):
    out, _, cmd, env = smoke_run
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "nothing to do" in run.stdout
    assert "Iteration 0" not in run.stdout  # no training restarted
