"""tools/run_provenance.py: the run-level provenance.json that tools/run_all.sh writes next to its tables."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import run_provenance
from sdc.errors import UserError

REPO = Path(__file__).resolve().parents[1]
STAGES = "0\tbootstrap (venv, Caffe)\n2\tLMDBs\n71\ttrain SDC-SN (smoke profile)\n335\tdone in 335 s\n"


def test_stage_times_are_the_gaps_between_stage_lines(tmp_path):
    (tmp_path / "stages.tsv").write_text(STAGES)
    assert run_provenance.stage_times(tmp_path / "stages.tsv") == {
        "bootstrap (venv, Caffe)": 2, "LMDBs": 69, "train SDC-SN (smoke profile)": 264, "total": 335}


def test_a_malformed_stage_record_is_one_error(tmp_path):
    (tmp_path / "stages.tsv").write_text("bootstrap\n")
    with pytest.raises(UserError, match="stages.tsv: not a run_all.sh stage record"):
        run_provenance.stage_times(tmp_path / "stages.tsv")


def test_tool_gathers_every_steps_seeds_but_its_own(tmp_path):
    results, data = tmp_path / "results", tmp_path / "data"
    for folder, seeds in [(results / "logs" / "SDC-SN", {"solver_random_seed": 42}),
                          (results / "eval" / "released", {}), (data / "enhanced", {"enhanced": 2019}),
                          (results, {"stale": 1})]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "provenance.json").write_text(json.dumps({"seeds": seeds}))
    (tmp_path / "stages.tsv").write_text(STAGES)
    run = subprocess.run([sys.executable, "tools/run_provenance.py", "--out", str(results), "--stages",
                          str(tmp_path / "stages.tsv"), "--command", "tools/run_all.sh --profile smoke",
                          "--from", str(results), str(data)], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"provenance: {results}/provenance.json (335 s in 3 stages)"
    record = json.loads((results / "provenance.json").read_text())
    assert record["seeds"] == {"results/logs/SDC-SN": {"solver_random_seed": 42},
                               "data/enhanced": {"enhanced": 2019}}
    assert str(tmp_path) not in json.dumps(record)
    assert record["wall_times_s"]["total"] == 335 and record["command"] == "tools/run_all.sh --profile smoke"
    assert record["git_commit"] and record["device"].startswith("CPU")


def test_folders_of_the_same_name_are_refused(tmp_path):
    for root in ("a", "b"):
        (tmp_path / root / "data" / "enhanced").mkdir(parents=True)
        (tmp_path / root / "data" / "enhanced" / "provenance.json").write_text(json.dumps({"seeds": {"x": 1}}))
    with pytest.raises(UserError, match="two --from folders hold data/enhanced"):
        run_provenance.gathered_seeds([tmp_path / "a" / "data", tmp_path / "b" / "data"], tmp_path / "own.json")
