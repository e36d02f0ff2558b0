"""make_tables on a small fixture gives exactly the expected Markdown and CSV; the paper-values file."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdc import degrade, evaluation, tables
from sdc.errors import UserError

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "tables"
PAPER_VALUES = REPO / "docs" / "paper_values.csv"

# Each fixture subset holds six images, one per class (label i = image i). Wrong answers per model
# and subset: {image index: predicted class}. SDC-SN-ELF-MRF is missing on purpose (cells "not run").
WRONG = {
    "SDC-SN": {"lum_1": {3: 1}, "noise_20": {0: 1, 1: 0}, "blur_5": {5: 4}},
    "SDC-SN-ELF": {"noise_20": {0: 1}},
    "released/SDC-SN-ELF-MRF": {"original": {}},
    "GLCM+SVM": {"original": {2: 3}},   # a baseline: a row of Table 3 only
}
ONLY = {"released/SDC-SN-ELF-MRF": ("original",), "GLCM+SVM": ("original",)}
NOT_RUN = {"DeCAF+MLR": "CaffeNet weights not available (fixture)"}
TIMING = {"device": "CPU: fixture (2 logical cores)", "batch": 50, "images": 42, "wall_s": 1.0,
          "ms_per_image": 23.8, "latency_ms_batch1": 41.25}


def fixture_predictions(wrong):
    labels = np.arange(6)
    preds = labels.copy()
    for index, pred in wrong.items():
        preds[index] = pred
    probs = np.eye(6, dtype=np.float32)[preds]
    return evaluation.Predictions([f"{i:08d}_img{i}.bmp" for i in labels], labels, probs)


def write_fixture_evals(results):
    for name, wrong in WRONG.items():
        subsets = ONLY.get(name, degrade.TEST_SUBSETS)
        preds = {s: fixture_predictions(wrong.get(s, {})) for s in subsets}
        inputs = {"model": f"{name}.caffemodel", "model_sha1": "0" * 40}
        if not name.startswith(tables.RELEASED):
            inputs["train_images"] = 1440
        evaluation.write_eval_dir(results / "eval" / name, name, inputs, 3_073_200, preds, TIMING)
    for name, reason in NOT_RUN.items():
        evaluation.write_not_run(results / "eval" / name, name, reason)


def make_tables(results, profile="paper", paper_values=FIXTURES / "paper_values.csv"):
    return subprocess.run([sys.executable, str(REPO / "tools" / "make_tables.py"), "--profile", profile,
                           "--results", str(results), "--paper-values", str(paper_values)],
                          capture_output=True, text=True)


def test_fixture_gives_exactly_the_expected_markdown_and_csv(tmp_path):
    write_fixture_evals(tmp_path)
    run = make_tables(tmp_path)
    assert run.returncode == 0, run.stderr
    # To regenerate after an intended change: copy tables.md/tables.csv of this run over the expected
    # files and review the diff cell by cell.
    assert (tmp_path / "tables.md").read_text() == (FIXTURES / "expected_tables.md").read_text()
    assert (tmp_path / "tables.csv").read_text() == (FIXTURES / "expected_tables.csv").read_text()
    assert (tmp_path / "tables.tex").read_text().count(r"\begin{table}") == 4 + 12


def test_expected_cells_are_right_by_hand():
    """A few cells of the expected files recomputed by hand, so the golden files are not taken on trust."""
    rows = (FIXTURES / "expected_tables.csv").read_text().splitlines()

    def line(table, row, column):
        return next(r for r in rows if r.startswith(f"{table},{row},{column},"))
    # SDC-SN original: 6/6 -> Wilson low 6/(6 + z^2) = 0.609666; paper 99.5 -> +0.5.
    assert line("2", "SDC-SN", "original") == \
        "2,SDC-SN,original,%,100,60.9666,100,6,99.5,0.5,test fixture (not the paper),"
    # SDC-SN noise_20: 4/6 -> Wilson (0.299993, 0.903229).
    assert line("2", "SDC-SN", "noise_20").startswith("2,SDC-SN,noise_20,%,66.6667,29.9993,90.3229,6,,,,")
    # Pooled degraded subsets: SDC-SN 32/36 right, SDC-SN-ELF 35/36; discordant b=0, c=3 -> p = 2/8.
    assert line("2 McNemar", "SDC-SN vs SDC-SN-ELF", "enhanced") == \
        "2 McNemar,SDC-SN vs SDC-SN-ELF,enhanced,p,0.25,,,3,,,,b=0 c=3"
    assert line("3", "SDC-SN", "enhanced").startswith("3,SDC-SN,enhanced,%,88.8889,")
    assert line("4", "SDC-SN-ELF-MRF", "latency_ms").endswith(
        "ms,,,,,8.0,,test fixture (not the paper),not run: no eval/SDC-SN-ELF-MRF/accuracy.json")
    assert line("4", "released/SDC-SN-ELF-MRF", "model_mb") == \
        "4,released/SDC-SN-ELF-MRF,model_mb,MB,3.0732,,,,3.1,-0.0268,test fixture (not the paper),"
    # A baseline: 5/6 -> Wilson (0.436497, 0.969947); only Table 3 lists it. A not_run.json gives its reason.
    assert line("3", "GLCM+SVM", "original") == "3,GLCM+SVM,original,%,83.3333,43.6497,96.9947,6,,,,"
    assert not any(r.startswith(("2,GLCM+SVM,", "4,GLCM+SVM,")) for r in rows)
    assert line("3", "DeCAF+MLR", "enhanced").endswith(",not run: CaffeNet weights not available (fixture)")
    assert line("5 lum_0.4 SDC-SN-ELF-MRF", "lum_0.4 Cr", "Cr").endswith(
        "images,,,,,300,,test fixture (not the paper),not run: no eval/SDC-SN-ELF-MRF/accuracy.json")


def test_summary_json_has_the_issue_shape(tmp_path):
    write_fixture_evals(tmp_path)
    assert make_tables(tmp_path, profile="smoke").returncode == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert list(summary) == ["profile", "models", "provenance"] and summary["profile"] == "smoke"
    assert summary["models"]["SDC-SN"] == {"original": 1.0, "lum_0.4": 1.0, "lum_1": 5 / 6, "noise_35": 1.0,
                                           "noise_20": 4 / 6, "blur_2": 1.0, "blur_5": 5 / 6, "enhanced": 32 / 36}
    assert summary["models"]["released/SDC-SN-ELF-MRF"]["original"] == 1.0
    assert summary["models"]["released/SDC-SN-ELF-MRF"]["enhanced"] is None
    assert "SDC-SN-ELF-MRF" not in summary["models"]
    assert summary["provenance"]["paper_values"]["path"] == "tests/fixtures/tables/paper_values.csv"
    assert "not the paper's" in (tmp_path / "tables.md").read_text()


def test_different_test_images_are_not_compared(tmp_path):
    write_fixture_evals(tmp_path)
    other = tmp_path / "eval" / "SDC-SN-ELF" / evaluation.predictions_file("original")
    other.write_text(other.read_text().replace("img5", "imgX"))
    builder = tables.Builder(tables.load_evaluations(tmp_path / "eval"),
                             tables.load_paper_values(FIXTURES / "paper_values.csv"))
    cell = builder.mcnemar_cell("x", "SDC-SN", "SDC-SN-ELF", "original")
    assert cell.ours is None and cell.note == "not comparable: different test images"


def test_no_eval_folder_is_one_error_line(tmp_path):
    run = make_tables(tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: no evaluations at {tmp_path}/eval: run tools/evaluate.py --out {tmp_path}/eval/<name> first"]


@pytest.mark.parametrize("line, message", [
    ("2,SDC-SN,original,99.5,%,", r"bad.csv:2: value 99.5 has no source"),
    ("2,SDC-SN,original,ninety,%,somewhere", r"bad.csv:2: value 'ninety' is not a number"),
])
def test_paper_values_without_source_or_number_are_refused(tmp_path, line, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(tables.PAPER_FIELDS) + "\n" + line + "\n")
    with pytest.raises(UserError, match=message):
        tables.load_paper_values(bad)


def test_paper_values_file_holds_only_sourced_values():
    """docs/paper_values.csv: every cell of Tables 2-5 has a line; only the 12 values of the authors'
    README are transcribed so far (ETE, DeCAF+MLR, SDC-SN-ELF-MRF x time, size, NEU, enhanced)."""
    paper = tables.load_paper_values(PAPER_VALUES)
    assert {key: v.value for key, v in paper.values.items()} == {
        ("4", "ETE", "latency_ms"): 5.3, ("4", "ETE", "model_mb"): 1.9,
        ("4", "ETE", "original"): 95.8, ("4", "ETE", "enhanced"): 80.3,
        ("4", "DeCAF+MLR", "latency_ms"): 10.3, ("4", "DeCAF+MLR", "model_mb"): 244.0,
        ("4", "DeCAF+MLR", "original"): 99.7, ("4", "DeCAF+MLR", "enhanced"): 91.3,
        ("4", "SDC-SN-ELF-MRF", "latency_ms"): 8.0, ("4", "SDC-SN-ELF-MRF", "model_mb"): 3.1,
        ("4", "SDC-SN-ELF-MRF", "original"): 100.0, ("4", "SDC-SN-ELF-MRF", "enhanced"): 97.5}
    assert all("Xavierman" in v.source for v in paper.values.values())
    assert paper.rows["2"] == list(tables.VARIANTS)
    assert len(paper.rows["5"]) == 36  # 6 subsets x 6 true classes, 6 predicted-class columns each


def test_committed_paper_values_render_in_table_4(tmp_path):
    write_fixture_evals(tmp_path)
    assert make_tables(tmp_path, paper_values=PAPER_VALUES).returncode == 0
    text = (tmp_path / "tables.md").read_text()
    ete = "not run: no eval/ETE/accuracy.json"
    assert f"| ETE | {ete} · paper: not transcribed |" in text  # Table 3: no ETE value transcribed
    assert f"| ETE | {ete} · paper: not transcribed | {ete} · paper 5.3 |" in text  # Table 4
    assert "3.07 · paper 3.1 · Δ -0.03" in text
