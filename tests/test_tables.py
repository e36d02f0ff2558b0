"""make_tables on a small fixture gives exactly the expected Markdown and CSV; the paper-values file;
only this run's evaluations enter the tables; the start weights of every trained row are named."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdc import degrade, eval_folder, lmdb_io, neu, protocols, tables, training_origin, weights
from sdc.errors import UserError
from sdc.variants import VARIANTS

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "tables"
PAPER_VALUES = REPO / "docs" / "paper_values.csv"
Z = 1.959963984540054

# Each fixture subset holds six images, one per class (label i = image i), each a draw of base image
# <class>_1. Wrong answers per model and subset: {image index: predicted class}. SDC-SN is wrong three
# times on base image PS_1 (image 3), so its pooled errors cluster. SDC-SN-ELF-MRF is missing on purpose.
WRONG = {
    "SDC-SN": {"lum_1": {3: 1}, "noise_20": {0: 1, 3: 0}, "blur_5": {3: 4}},
    "SDC-SN-ELF": {"noise_20": {0: 1}},
    "released/SDC-SN-ELF-MRF": {"original": {}},
    "GLCM+SVM": {"original": {2: 3}},              # a baseline: a row of Table 3 only
    "GLCM+SVM (200 px)": {"original": {2: 3, 4: 1}},   # the same baseline under another protocol
}
ONLY = {"released/SDC-SN-ELF-MRF": ("original",), "GLCM+SVM": ("original",), "GLCM+SVM (200 px)": ("original",)}
NOT_RUN = {"DeCAF+MLR": "CaffeNet weights not available (fixture)"}
TIMING = {"device": "CPU: fixture (2 logical cores)", "batch": 50, "images": 42, "wall_s": 1.0,
          "ms_per_image": 23.8, "latency_ms_batch1": 41.25}
STAND_IN_SHA1 = "0c9a574c7629b33fe15b4fe384122634d4bcee7c"
SCHEDULE = "smoke profile: NOT the paper's schedule"


def record_key(subset, i):
    cls = neu.CLASSES[i]
    if subset == "original":
        return f"{i:08d}_{cls.folder}/{cls.prefix}_1.bmp"
    return f"{i:08d}_{subset}/{cls.folder}/{cls.prefix}_1_0.png"


def fixture_predictions(subset, wrong):
    labels = np.arange(6)
    preds = labels.copy()
    for index, pred in wrong.items():
        preds[index] = pred
    probs = np.eye(6, dtype=np.float32)[preds]
    return eval_folder.Predictions([record_key(subset, i) for i in labels], labels, probs)


def recorded_test_set(subsets, tag="this run"):
    return {s: {"source": f"test_{s}_lmdb", "fingerprint": f"{tag} {s}", "count": 6} for s in subsets}


def write_eval(results, name, wrong, subsets=degrade.TEST_SUBSETS, tag="this run"):
    preds = {s: fixture_predictions(s, wrong.get(s, {})) for s in subsets}
    inputs = {"model": f"{name}.caffemodel", "model_sha1": "0" * 40, "subsets": recorded_test_set(subsets, tag)}
    if not name.startswith(tables.RELEASED):
        inputs["train_images"] = 1440
    eval_folder.write_eval_dir(results / "eval" / name, name, inputs, 3_073_200, preds, TIMING)


def write_training_record(results, name, init, schedule=SCHEDULE):
    folder = results / "logs" / name
    folder.mkdir(parents=True)
    record = {"sessions": [], "weights": init, "schedule_label": schedule}
    (folder / "provenance.json").write_text(json.dumps(record))


def write_fixture_evals(results):
    for name, wrong in WRONG.items():
        write_eval(results, name, wrong, ONLY.get(name, degrade.TEST_SUBSETS))
    for name, reason in NOT_RUN.items():
        eval_folder.write_not_run(results / "eval" / name, name, reason)
    stand_in = {"path": f"/somewhere/{weights.DECODED_IMAGENET}", "sha1": STAND_IN_SHA1}
    write_training_record(results, "SDC-SN", stand_in)
    write_training_record(results, "SDC-SN-ELF", stand_in)


def make_tables(results, profile="paper", paper_values=FIXTURES / "paper_values.csv", *extra):
    return subprocess.run([sys.executable, str(REPO / "tools" / "make_tables.py"), "--profile", profile,
                           "--results", str(results), "--paper-values", str(paper_values), *extra],
                          capture_output=True, text=True)


def csv_line(results, table, row, column):
    return next(r for r in (results / "tables.csv").read_text().splitlines()
                if r.startswith(f"{table},{row},{column},"))


def wilson(p, n):
    """Wilson's score interval written out: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    centre, half = p + Z * Z / (2 * n), Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (centre - half) / (1 + Z * Z / n), (centre + half) / (1 + Z * Z / n)


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
    """Cells of the expected files recomputed by hand, so the golden files are not taken on trust."""
    rows = (FIXTURES / "expected_tables.csv").read_text().splitlines()

    def line(table, row, column):
        return next(r for r in rows if r.startswith(f"{table},{row},{column},"))
    # SDC-SN original: 6/6 independent images -> Wilson low 6/(6 + z^2) = 0.609666; paper 99.5 -> +0.5,
    # and 99.5 lies in [60.97, 100].
    assert line("2", "SDC-SN", "original").startswith("2,SDC-SN,original,%,100,60.9666,100,6,99.5,0.5,yes,yes,")
    # SDC-SN noise_20: 4/6, one draw per base image -> Wilson (0.299993, 0.903229); no paper value.
    assert line("2", "SDC-SN", "noise_20").startswith("2,SDC-SN,noise_20,%,66.6667,29.9993,90.3229,6,,,,,")
    # SDC-SN-ELF noise_20: 5/6 vs the paper's 80.0 -> +3.33 points: outside ±2, but inside (43.6, 97.0).
    assert line("2", "SDC-SN-ELF", "noise_20").startswith(
        "2,SDC-SN-ELF,noise_20,%,83.3333,43.6497,96.9947,6,80.0,3.33333,no,yes,")
    # Table 4, pooled: SDC-SN gets 32 of 36 right; per base image (6 records each) 5, 6, 6, 3, 6, 6
    # right. Ratio variance sum_i (c_i - p n_i)^2 / n^2 with p = 8/9, p n_i = 16/3:
    # (1/9 + 4 * 4/9 + 49/9) / 36^2 = 66/9 / 1296; n_eff = p(1 - p) / that = (8/81) * 3888 / 22 = 192/11.
    low, high = wilson(8 / 9, 192 / 11)
    assert line("4", "SDC-SN", "enhanced").startswith(
        f"4,SDC-SN,enhanced,%,88.8889,{100 * low:.6g},{100 * high:.6g},36,,,,,")
    # Paired, pooled: b=0, c=3 (lum_1, noise_20, blur_5 of image 3). All three come from base image PS_1:
    # one non-zero cluster difference (-3), so the sign-flip p = P(|+-3| >= 3) = 1 (McNemar would say 2/8).
    assert line("2 paired", "SDC-SN vs SDC-SN-ELF", "enhanced") == \
        "2 paired,SDC-SN vs SDC-SN-ELF,enhanced,p,1,,,36,,,,,,,b=0 c=3"
    # Paired on the original images: no discordant image -> exact McNemar p = 1.
    assert line("2 paired", "SDC-SN vs SDC-SN-ELF", "original") == \
        "2 paired,SDC-SN vs SDC-SN-ELF,original,p,1,,,6,,,,,,,b=0 c=0"
    assert line("4", "released/SDC-SN-ELF-MRF", "model_mb").startswith(
        "4,released/SDC-SN-ELF-MRF,model_mb,MB,3.0732,,,,3.1,-0.0268,,,,")
    # A baseline: 5/6 -> Wilson (0.436497, 0.969947) vs the paper's 90.0: -6.67, inside the interval.
    assert line("3", "GLCM+SVM", "original").startswith("3,GLCM+SVM,original,%,83.3333,43.6497,96.9947,6,90.0,")
    # The same baseline under a labelled protocol is compared with the paper's GLCM+SVM: 4/6 -> -23.3,
    # yet 90.0 is inside the wide interval of six images.
    assert line("3", "GLCM+SVM (200 px)", "original").startswith(
        "3,GLCM+SVM (200 px),original,%,66.6667,29.9993,90.3229,6,90.0,-23.3333,no,yes,")
    assert not any(r.startswith(("2,GLCM+SVM,", "4,GLCM+SVM,")) for r in rows)
    assert line("3", "DeCAF+MLR", "original").endswith(",not run: CaffeNet weights not available (fixture)")
    # Table 5, lum_0.4: SDC-SN-ELF-MRF is not evaluated; the paper's 1 of 300 Cr -> PS is 0.333 %.
    assert line("5 lum_0.4 SDC-SN-ELF-MRF", "lum_0.4 Cr", "PS").startswith(
        "5 lum_0.4 SDC-SN-ELF-MRF,lum_0.4 Cr,PS,%,,,,,0.3,,,,,test fixture")
    # The released MRF model was evaluated on the originals only: its Table 5 cells say so.
    assert line("5 lum_0.4 released/SDC-SN-ELF-MRF", "lum_0.4 Cr", "Cr").endswith(
        ",not run: released/SDC-SN-ELF-MRF was not evaluated on every test subset")


def test_markdown_is_compact_with_footnotes_and_verdicts(tmp_path):
    write_fixture_evals(tmp_path)
    assert make_tables(tmp_path).returncode == 0
    text = (tmp_path / "tables.md").read_text()
    assert "not transcribed" not in text
    # ours / paper / Δ; a Δ beyond ±2 points in bold; a missing value is a dash and one footnote.
    assert "| SDC-SN¹ | 100.0 / 99.5 / +0.5 |" in text
    assert "| SDC-SN-ELF¹ | 100.0 / not in the paper | 100.0 / not in the paper | 100.0 / not in the paper | " \
           "83.3 / 80.0 / **+3.3** |" in text
    assert "| SDC-SN-ELF-MRF | –² / 100 | –² / not in the paper |" in text
    assert text.count("² not run: no eval/SDC-SN-ELF-MRF/accuracy.json") == 2  # Tables 2 and 4
    # Table 2's verdict: four paper values, two of them in SDC-SN-ELF-MRF's row, which did not run; of the
    # other two, SDC-SN's is within ±2 points, SDC-SN-ELF's is not; both lie in our intervals.
    assert ("**Verdict, our rows of the paper's table:** 1 of 2 cells within ±2 points of the paper; 2 of 2 paper "
            "values inside our 95 % interval. More than 2 points off: SDC-SN-ELF: Noise 20 dB +3.3. "
            "Not run: 2 cells (footnotes).") in text
    # The same counts at a glance, at the top.
    assert text.index("| Table 2 | our rows of the paper's table | 1 of 2 | 2 of 2 | 2 |") < text.index("## Table 2")
    # Table 3: the paper's rows first, then ours that are not in it, the labelled protocol row marked ‡.
    table3 = text.split("## Table 3")[1].split("## Table 4")[0]
    order = [line.split(" |")[0][2:] for line in table3.splitlines() if line.startswith("| ") and "/" in line]
    assert order[:4] == ["GLCM+SVM", "ETE", "DeCAF+MLR", "SDC-SN-ELF-MRF"]
    assert order.index("GLCM+SVM (200 px) ‡") > order.index("released/SDC-SN-ELF-MRF †")


def test_start_weights_and_schedule_are_named_per_trained_row(tmp_path):
    write_fixture_evals(tmp_path)
    original = training_origin.original_entry()
    (tmp_path / "logs" / "SDC-SN-ELF" / "provenance.json").write_text(json.dumps(
        {"sessions": [], "weights": {"path": "/x/renamed.caffemodel", "sha1": original.sha1}}))
    assert make_tables(tmp_path).returncode == 0
    text = (tmp_path / "tables.md").read_text()
    assert ("ImageNet start weights: SDC-SN: the decoded Deep-Compression stand-in (squeezenet_v1.0_dc.caffemodel, "
            "sha1 0c9a574c), not the original squeezenet_v1.0.caffemodel (sha1 579d0beb); SDC-SN-ELF: the original "
            "ImageNet SqueezeNet v1.0 (renamed.caffemodel, sha1 579d0beb).") in text
    # Tables 2, 2 paired, 3 and 4 show a trained row (Table 5's SDC-SN-ELF-MRF has no training record here).
    assert text.count("ImageNet start weights:") == 4
    assert f"¹ {SCHEDULE}" in text and "| SDC-SN-ELF |" in text  # its record has no schedule label
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["provenance"]["start_weights"] == {
        "SDC-SN": {"kind": "stand-in", "file": weights.DECODED_IMAGENET, "sha1": STAND_IN_SHA1},
        "SDC-SN-ELF": {"kind": "original", "file": "renamed.caffemodel", "sha1": original.sha1}}


def test_start_weights_kinds():
    original = training_origin.original_entry()
    kinds = [training_origin.start_weights(record, original).kind for record in (
        {"weights": {"path": "a/squeezenet_v1.0.caffemodel", "sha1": original.sha1}},
        {"weights": {"path": f"a/{weights.DECODED_IMAGENET}", "sha1": STAND_IN_SHA1}},
        {"weights": {"path": "a/squeezenet_v1.0.caffemodel", "sha1": STAND_IN_SHA1}},   # the name alone is not enough
        {"weights": "none: trained from scratch"})]
    assert kinds == ["original", "stand-in", "other", "none"]


def test_a_left_over_evaluation_of_an_earlier_run_is_ignored(tmp_path):
    write_fixture_evals(tmp_path)
    # An earlier run evaluated the released SDC-SN on other test images; this run could not fetch it.
    write_eval(tmp_path, "released/SDC-SN", {}, tag="earlier run")
    run = make_tables(tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == [
        "warning: ignoring eval/released/SDC-SN: evaluated on other test images than this run's (original, lum_0.4, "
        "lum_1, noise_35, noise_20, blur_2, blur_5) (a left-over of an earlier run: delete it)"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "released/SDC-SN" not in summary["models"]
    assert summary["provenance"]["ignored_stale"] == {"eval/released/SDC-SN": run.stderr.split(": ", 2)[2].split(
        " (a left-over")[0]}
    assert "| released/SDC-SN † | –³ / 99.5 | –³ |" in (tmp_path / "tables.md").read_text()
    assert "³ not run: eval/released/SDC-SN is a left-over of an earlier run (other test images)" in \
        (tmp_path / "tables.md").read_text()


def write_rendered_eval(results, name, records_tag, protocol=None):
    """A classical row that read the records of the ``records_tag`` run's original test LMDB as the native
    200 px files: its own fingerprint differs from the LMDB's, its "records" names the LMDB."""
    subsets = {"original": {"source": "the native 200x200 images (the records of test_original_lmdb)",
                            "fingerprint": "native files", "count": 6,
                            "records": recorded_test_set(("original",), records_tag)["original"]["fingerprint"]}}
    inputs = {"subsets": subsets, **({"protocol": protocol.describe()} if protocol else {})}
    eval_folder.write_eval_dir(results / "eval" / name, name, inputs, 1,
                               {"original": fixture_predictions("original", {})}, TIMING)


def test_a_row_may_render_the_run_s_test_records_otherwise(tmp_path):
    """A baseline that read this run's test records as other pixels (the default protocol's native 200 px
    files: plain name; another protocol: labelled) is kept; one that rendered an earlier run's records is a
    left-over, whatever its name."""
    write_fixture_evals(tmp_path)
    write_rendered_eval(tmp_path, "GLCM+NNC", "this run")
    write_rendered_eval(tmp_path, "GLCM+MLR (200 px)", "this run")
    write_rendered_eval(tmp_path, "AELTP+SVM", "earlier run")
    run = make_tables(tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == [
        "warning: ignoring eval/AELTP+SVM: evaluated on other test images than this run's (original) "
        "(a left-over of an earlier run: delete it)"]
    models = json.loads((tmp_path / "summary.json").read_text())["models"]
    assert {"GLCM+NNC", "GLCM+MLR (200 px)"} <= set(models) and "AELTP+SVM" not in models


def test_rendered_rows_alone_agree_on_the_run_s_test_records(tmp_path):
    """Nine classical rows of the default protocol (other fingerprints, this run's records) outnumber the
    nets; the test set they share is still the run's LMDBs, so nothing is ignored."""
    write_fixture_evals(tmp_path)
    for feature in ("GLCM", "AELTP", "AECLBP"):
        for classifier in ("NNC", "MLR", "SVM"):
            if f"{feature}+{classifier}" not in WRONG:
                write_rendered_eval(tmp_path, f"{feature}+{classifier}", "this run")
    run = make_tables(tmp_path)
    assert run.returncode == 0 and run.stderr == "", run.stderr


def write_lmdb_info(lmdb_dir, tag):
    for subset, entry in recorded_test_set(degrade.TEST_SUBSETS, tag).items():
        folder = lmdb_dir / lmdb_io.test_name(subset)
        folder.mkdir(parents=True)
        (folder / lmdb_io.INFO_FILE).write_text(json.dumps({"fingerprint": entry["fingerprint"], "count": 6}))


def test_lmdb_dir_names_this_runs_test_images_when_left_overs_outnumber_them(tmp_path):
    """Three evaluations of an earlier run outnumber this run's two: only --lmdb-dir tells them apart."""
    for name in ("SDC-SN", "SDC-SN-ELF"):
        write_eval(tmp_path, name, {})
    for name in ("GLCM+SVM", "GLCM+NNC", "GLCM+MLR"):
        write_eval(tmp_path, name, {}, tag="earlier run")
    write_lmdb_info(tmp_path / "lmdb", "this run")
    run = make_tables(tmp_path, "paper", FIXTURES / "paper_values.csv", "--lmdb-dir", str(tmp_path / "lmdb"))
    assert run.returncode == 0, run.stderr
    assert sorted(json.loads((tmp_path / "summary.json").read_text())["models"]) == ["SDC-SN", "SDC-SN-ELF"]
    assert len(run.stderr.splitlines()) == 3
    without = make_tables(tmp_path)
    assert sorted(json.loads((tmp_path / "summary.json").read_text())["models"]) == ["GLCM+MLR", "GLCM+NNC",
                                                                                     "GLCM+SVM"]
    assert len(without.stderr.splitlines()) == 2


def test_summary_json_has_the_paper_column_order_and_no_machine_paths(tmp_path):
    write_fixture_evals(tmp_path)
    assert make_tables(tmp_path, profile="smoke").returncode == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert list(summary) == ["profile", "models", "provenance"] and summary["profile"] == "smoke"
    assert list(summary["models"]["SDC-SN"].items()) == [
        ("original", 1.0), ("lum_0.4", 1.0), ("lum_1", 5 / 6), ("noise_20", 4 / 6), ("noise_35", 1.0),
        ("blur_2", 1.0), ("blur_5", 5 / 6), ("enhanced", 32 / 36)]
    assert summary["models"]["released/SDC-SN-ELF-MRF"]["enhanced"] is None
    assert "SDC-SN-ELF-MRF" not in summary["models"]
    assert summary["provenance"]["paper_values"]["path"] == "tests/fixtures/tables/paper_values.csv"
    assert summary["provenance"]["evaluations"]["SDC-SN"]["folder"] == "eval/SDC-SN"
    assert str(tmp_path) not in json.dumps(summary)
    assert "not the paper's" in (tmp_path / "tables.md").read_text()


def test_different_test_images_are_not_compared(tmp_path):
    write_fixture_evals(tmp_path)
    other = tmp_path / "eval" / "SDC-SN-ELF" / eval_folder.predictions_file("original")
    other.write_text(other.read_text().replace("Sc_1", "Sc_2"))
    builder = tables.Builder(tables.load_evaluations(tmp_path / "eval"),
                             tables.load_paper_values(FIXTURES / "paper_values.csv"))
    cell = builder.paired_cell("x", "SDC-SN", "SDC-SN-ELF", "original", {})
    assert cell.ours is None and cell.missing == "not comparable: different test images"


def test_no_eval_folder_is_one_error_line(tmp_path):
    run = make_tables(tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: no evaluations at {tmp_path}/eval: run tools/evaluate.py --out {tmp_path}/eval/<name> first"]


@pytest.mark.parametrize("line, message", [
    ("2,SDC-SN,original,99.5,%,", r"bad.csv:2: value 99.5 has no source"),
    ("2,SDC-SN,original,ninety,%,somewhere", r"bad.csv:2: value 'ninety' is not a number"),
    ("2,SDC-SN,original,,%,", r"bad.csv:2: value '' is not a number"),
])
def test_paper_values_without_source_or_number_are_refused(tmp_path, line, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(tables.PAPER_FIELDS) + "\n" + line + "\n")
    with pytest.raises(UserError, match=message):
        tables.load_paper_values(bad)


def test_a_cell_given_twice_is_refused(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(tables.PAPER_FIELDS) + "\n2,SDC-SN,original,99.7,%,a\n2,SDC-SN,original,99.5,%,b\n")
    with pytest.raises(UserError, match=r"bad.csv:3: cell 2/SDC-SN/original is given twice"):
        tables.load_paper_values(bad)


def test_paper_values_file_holds_the_papers_336_values():
    """docs/paper_values.csv: every value of Tables 2-5, each sourced to the paper's table, row and column,
    and consistent where the paper is (Table 5's rows of 300 images, Table 4's enhanced = Table 3's mean)."""
    paper = tables.load_paper_values(PAPER_VALUES)
    values = {key: v.value for key, v in paper.values.items()}
    assert len(values) == 336
    assert all(v.source.startswith("Fu et al. 2019") for v in paper.values.values())
    assert paper.rows["2"] == list(VARIANTS)
    assert paper.rows["3"] == ["GLCM+SVM", "GLCM+NNC", "GLCM+MLR", "AELTP+SVM", "AELTP+NNC", "AELTP+MLR",
                               "AECLBP+SVM", "AECLBP+NNC", "AECLBP+MLR", "ETE", "DeCAF+MLR", "SDC-SN-ELF-MRF"]
    assert paper.rows["4"] == ["ETE", "DeCAF+MLR", "SDC-SN-ELF-MRF"]
    assert {column for (table, _, column) in values if table == "3"} == set(tables.TABLE2_COLUMNS)
    # Where the paper contradicts itself the file holds the tables' own values (docs/paper.md).
    assert values[("2", "SDC-SN-ELF", "noise_20")] == 92.9      # the text says 92.8
    assert values[("4", "DeCAF+MLR", "enhanced")] == 91.3       # the mean of its Table 3 subsets is 91.13
    assert values[("2", "SDC-SN-ELF-MRF", "blur_5")] == 97.2    # Table 5(f)'s diagonal gives 97.28
    for subset in tables.DEGRADED:
        for true in tables.CLASS_NAMES:
            assert sum(values[("5", f"{subset} {true}", pred)] for pred in tables.CLASS_NAMES) == 300
    assert sum(values[("5", f"blur_5 {c}", c)] for c in tables.CLASS_NAMES) == 1751
    for row in ("ETE", "SDC-SN-ELF-MRF"):
        mean = sum(values[("3", row, s)] for s in tables.DEGRADED) / 6
        assert round(mean, 1) == values[("4", row, "enhanced")]


def test_committed_paper_values_fill_every_cell_of_the_papers_tables(tmp_path):
    write_fixture_evals(tmp_path)
    assert make_tables(tmp_path, "paper", PAPER_VALUES).returncode == 0
    text = (tmp_path / "tables.md").read_text()
    assert "not transcribed" not in text
    assert "| ETE | –¹⁰ / 95.8 | –¹⁰ / 92.8 | –¹⁰ / 84.3 | –¹⁰ / 47.6 | –¹⁰ / 84.6 | –¹⁰ / 93.4 | –¹⁰ / 79.1 |" in text
    assert "| ETE | –¹ / 11520 | –¹ / 5.3 | –¹ / 1.9 | –¹ / 95.8 | –¹ / 80.3 |" in text
    assert "| Model | Training images | Running time (ms) | Model size (MB) | Original | Enhanced |" in text
    assert "| released/SDC-SN-ELF-MRF † | –⁵ / 1440 | 41.2 / 8.0 / +33.2 | 3.07 / 3.1 / −0.03 | " \
           "100.0 / 100 / 0.0 | –⁸ / 97.5 |" in text


def test_a_variant_trained_otherwise_is_a_row_of_table_2_compared_with_the_paper_s(tmp_path):
    """The paper profile's SGD rows: "<variant> (SGD instead of Adam)" follows the released models in Table 2."""
    write_fixture_evals(tmp_path)
    write_eval(tmp_path, "SDC-SN (SGD instead of Adam)", {"noise_20": {0: 1}})
    assert make_tables(tmp_path).returncode == 0
    # 5 of 6 on noise 20 dB, compared with the paper's SDC-SN value of the fixture.
    assert csv_line(tmp_path, "2", "SDC-SN (SGD instead of Adam)", "noise_20").startswith(
        "2,SDC-SN (SGD instead of Adam),noise_20,%,83.3333,")
    table2 = (tmp_path / "tables.md").read_text().split("## Table 2")[1].split("## Table 3")[0]
    order = [line.split(" |")[0][2:] for line in table2.splitlines() if line.startswith("| ") and "/" in line]
    assert order.index("SDC-SN (SGD instead of Adam) ‡") > order.index("released/SDC-SN-ELF-MRF †")


def test_table_3_names_the_protocol_of_each_classical_row(tmp_path):
    write_fixture_evals(tmp_path)
    write_rendered_eval(tmp_path, "GLCM+NNC", "this run", protocols.PROTOCOLS["native-200"])
    write_rendered_eval(tmp_path, "GLCM+NNC (all 200, degraded at 256)", "this run",
                        protocols.PROTOCOLS["degraded-256-resized"])
    assert make_tables(tmp_path).returncode == 0
    text = (tmp_path / "tables.md").read_text()
    assert ("Classical rows with plain names: protocol native-200 (docs/baselines.md), everything at 200x200; the "
            "degraded subsets made at 200x200 (tools/make_enhanced.py --size 200).") in text
    assert ("Classical rows labelled (all 200, degraded at 256): protocol degraded-256-resized (docs/baselines.md), "
            "everything at 200x200; the degraded subsets made at 256x256 and resized back to 200x200.") in text
