"""tools/make_figures.py on evaluation folders written by sdc.eval_folder from known predictions (no Caffe):
what each figure draws, the paper's column order, print-size fonts, legends clear of the data, no paths."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.text import Text

import make_figures
from sdc import eval_folder, lmdb_io, neu, plotting, stats, tables
from sdc.variants import VARIANTS

REPO = Path(__file__).resolve().parents[1]

CLASSES = tables.CLASS_NAMES
FOLDERS = [c.folder for c in neu.CLASSES]
IMAGES = [(label, f"{CLASSES[label]}_{n}") for label in range(6) for n in (1, 2)]  # 12 test images
DRAWS = 2
SIDE = 8
PAPER_ROWS = [  # table, row, column, value: Table 2 for the three variants, Table 3 for two rows
    *[("2", v, c, 90.0 + i) for v in VARIANTS for i, c in enumerate(tables.TABLE2_COLUMNS)],
    *[("3", "GLCM+SVM", c, 50.5) for c in tables.TABLE2_COLUMNS],
    *[("3", "DeCAF+MLR", c, 99.7) for c in tables.TABLE2_COLUMNS],
    *[("3", "SDC-SN-ELF-MRF", c, 90.0 + i) for i, c in enumerate(tables.TABLE2_COLUMNS)],
]
LABELLED = "GLCM+SVM (200 px)"  # the same baseline under another protocol: drawn in GLCM+SVM's panel
LUM_04_PAPER = np.array([[299, 0, 0, 1, 0, 0], [0, 300, 0, 0, 0, 0], [0, 0, 300, 0, 0, 0],  # Fu et al. 2019, Table 5(a)
                         [0, 1, 0, 299, 0, 0], [0, 0, 0, 0, 300, 0], [0, 0, 0, 0, 0, 300]])


def records(subset):
    """(relative path, label) of every record of ``subset``, as tools/build_lmdb.py names them."""
    if subset == "original":
        return [(f"{FOLDERS[label]}/{name}.bmp", label) for label, name in IMAGES]
    return [(f"{subset}/{FOLDERS[label]}/{name}_{draw}.png", label) for label, name in IMAGES for draw in range(DRAWS)]


def wrong(model, subset, index):
    """Which records a model gets wrong: SDC-SN-ELF-MRF both draws of image 0 in each degraded subset
    (and none of the originals), the labelled GLCM+SVM row every fourth record, every other model every third."""
    if model == "SDC-SN-ELF-MRF":
        return subset != "original" and index < DRAWS
    if model == LABELLED:
        return index % 4 == 0
    return index % 3 == 0


def predictions(model, subset):
    rels = records(subset)
    keys = [lmdb_io.record_key(i, rel).decode() for i, (rel, _) in enumerate(rels)]
    labels = np.array([label for _, label in rels])
    preds = np.array([(label + 1) % 6 if wrong(model, subset, i) else label for i, (_, label) in enumerate(rels)])
    probs = np.full((len(rels), 6), 0.02, np.float32)
    probs[np.arange(len(rels)), preds] = 0.9
    return eval_folder.Predictions(keys, labels, probs)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """results/ with evaluations of the three variants and GLCM+SVM, DeCAF+MLR not run, and the test LMDBs."""
    root = tmp_path_factory.mktemp("figures")
    for model in (*VARIANTS, "GLCM+SVM", LABELLED):
        eval_folder.write_eval_dir(root / "results" / "eval" / model, model, {}, 1000,
                                  {s: predictions(model, s) for s in tables.TABLE2_COLUMNS}, {"wall_s": 1.0})
    eval_folder.write_not_run(root / "results" / "eval" / "DeCAF+MLR", "DeCAF+MLR", "CaffeNet weights not available")
    for subset in tables.TABLE2_COLUMNS:
        rels = records(subset)
        lmdb_io.write(root / "lmdb" / lmdb_io.test_name(subset),
                      [(lmdb_io.record_key(i, rel), lmdb_io.encode(np.full((SIDE, SIDE), 10 * i, np.uint8), label))
                       for i, (rel, label) in enumerate(rels)], [label for _, label in rels], SIDE, "test")
    lines = ["table,row,column,value,unit,source"]
    lines += [f"{t},{r},{c},{v},%,test value" for t, r, c, v in PAPER_ROWS]
    lines += [f"5,lum_0.4 {true},{pred},{LUM_04_PAPER[i, j]},images,test value"
              for i, true in enumerate(CLASSES) for j, pred in enumerate(CLASSES)]
    (root / "paper_values.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def figures(results):
    """{file stem: figure} of make_figures on ``results`` (profile smoke)."""
    args = make_figures.argparse.Namespace(profile="smoke", lmdb_dir=results / "lmdb", examples_model="SDC-SN-ELF-MRF",
                                           per_class=1)
    paper = tables.load_paper_values(results / "paper_values.csv")
    evaluations, not_run = make_figures.run_evaluations(results / "results")
    drawn = dict(make_figures.figures_of(args, paper, evaluations, not_run))
    for figure in drawn.values():
        figure.canvas.draw()
    yield drawn
    plt = plotting.pyplot()
    for figure in drawn.values():
        plt.close(figure)


def panel(figure, title):
    return next(ax for ax in figure.axes if ax.get_title() == title)


def test_every_figure_is_drawn(figures):
    assert sorted(figures) == sorted(["table2_ours_vs_paper", "table3_ours_vs_paper", "table5_SDC-SN-ELF-MRF",
                                      *[f"confusion_{m}" for m in (*VARIANTS, "GLCM+SVM", LABELLED)],
                                      "examples_SDC-SN-ELF-MRF"])


def test_table2_panels_show_our_accuracy_with_its_interval_beside_the_paper(figures):
    figure = figures["table2_ours_vs_paper"]
    # the released models were not evaluated here: no panels of theirs
    assert [ax.get_title() for ax in figure.axes if ax.get_title()] == list(VARIANTS)
    ax = panel(figure, "SDC-SN-ELF-MRF")
    # The paper's order, noise 20 dB before 35 dB, as the x axis of every panel.
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Original", "Lum ±0.4", "Lum ±1", "Noise 20", "Noise 35",
                                                            "Blur 2", "Blur 5"]
    ours = ax.containers[0]          # the error bar container: dots and interval bars
    x, y = ours.lines[0].get_data()
    # SDC-SN-ELF-MRF: 12 of 12 originals; in each degraded subset 22 of 24 records right.
    assert np.asarray(y, float) == pytest.approx([100] + [100 * 22 / 24] * 6)
    assert np.asarray(x, float) == pytest.approx(np.arange(7) - 0.15)
    # The bar of a degraded subset is the clustered interval over the 12 test images, not Wilson's of 24.
    correct = np.ones(24, bool)
    correct[:2] = False
    clusters = [stats.cluster_of(k) for k in predictions("SDC-SN-ELF-MRF", "noise_20").keys]
    expected = stats.accuracy_interval(correct, clusters)
    segments = ours.lines[2][0].get_segments()
    assert segments[3][:, 1] == pytest.approx([100 * expected.low, 100 * expected.high])
    assert 100 * expected.low < 100 * stats.wilson_interval(22, 24)[0] - 5
    paper_x, paper_y = next(line for line in ax.get_lines() if line.get_marker() == "D").get_data()
    assert np.asarray(paper_y, float) == pytest.approx([90, 91, 92, 93, 94, 95, 96])
    assert np.asarray(paper_x, float) == pytest.approx(np.arange(7) + 0.15)


def test_table3_shows_the_paper_rows_and_says_why_ours_is_missing(figures):
    figure = figures["table3_ours_vs_paper"]
    assert [ax.get_title() for ax in figure.axes if ax.get_title()] == ["GLCM+SVM", "DeCAF+MLR", "SDC-SN-ELF-MRF"]
    glcm = panel(figure, "GLCM+SVM").containers[0].lines[0].get_data()[1]
    # every third record wrong: originals 8 of 12 right, degraded subsets 16 of 24
    assert np.asarray(glcm, float) == pytest.approx([100 * 8 / 12] + [100 * 16 / 24] * 6)
    # the labelled row of the same baseline in the same panel, between ours and the paper's: 9 of 12, 18 of 24
    labelled_x, labelled_y = panel(figure, "GLCM+SVM").containers[1].lines[0].get_data()
    assert np.asarray(labelled_y, float) == pytest.approx([75] * 7)
    assert np.asarray(labelled_x, float) == pytest.approx(np.arange(7))
    decaf = panel(figure, "DeCAF+MLR")
    assert not decaf.containers
    assert [t.get_text() for t in decaf.texts] == ["ours: not run: CaffeNet weights\nnot available"]


def test_legends_lie_outside_every_panel(figures):
    for stem in ("table2_ours_vs_paper", "table3_ours_vs_paper"):
        figure = figures[stem]
        (legend,) = figure.legends
        box = legend.get_window_extent()
        labelled = ["ours, 200 px"] if stem == "table3_ours_vs_paper" else []
        assert [t.get_text() for t in legend.get_texts()] == ["ours, with its 95 % interval", *labelled,
                                                              "the paper's value"]
        assert all(box.y1 <= ax.get_tightbbox().y0 for ax in figure.axes), stem


def test_table5_puts_our_matrix_beside_the_papers(figures):
    figure = figures["table5_SDC-SN-ELF-MRF"]
    def counts(title):
        return np.array([int(t.get_text()) for t in panel(figure, title).texts]).reshape(6, 6)
    ours = eval_folder.confusion_matrix(predictions("SDC-SN-ELF-MRF", "lum_0.4").labels,
                                       predictions("SDC-SN-ELF-MRF", "lum_0.4").preds)
    assert ours[0, 1] == 2 and ours.trace() == 22
    np.testing.assert_array_equal(counts("Lum ±0.4: ours"), ours)
    np.testing.assert_array_equal(counts("Lum ±0.4: paper"), LUM_04_PAPER)
    assert [ax.get_title() for ax in figure.axes if ax.get_title().endswith(": ours")] == [
        "Lum ±0.4: ours", "Lum ±1: ours", "Noise 20: ours", "Noise 35: ours", "Blur 2: ours", "Blur 5: ours"]
    # subsets the paper values do not cover say so instead of drawing a matrix
    assert any("Noise 20:\nnot in the paper values" == t.get_text() for ax in figure.axes for t in ax.texts)


def test_confusion_figure_titles_give_each_subsets_accuracy_in_the_papers_order(figures):
    titles = [ax.get_title() for ax in figures["confusion_GLCM+SVM"].axes if ax.get_title()]
    assert titles == ["Original: 66.7 % of 12", "Lum ±0.4: 66.7 % of 24", "Lum ±1: 66.7 % of 24",
                      "Noise 20: 66.7 % of 24", "Noise 35: 66.7 % of 24", "Blur 2: 66.7 % of 24",
                      "Blur 5: 66.7 % of 24", "Enhanced: 66.7 % of 144"]


def test_every_text_is_legible_in_print_and_names_no_folder(figures, results):
    for stem, figure in figures.items():
        assert figure.get_figwidth() <= plotting.PAGE_WIDTH_IN, stem
        assert plotting.smallest_font(figure) >= plotting.MIN_FONT_PT, stem
        texts = [t.get_text() for t in figure.findobj(Text)]
        assert not [t for t in texts if str(results) in t or str(REPO) in t or "/tmp" in t], stem


def test_save_refuses_text_too_small_to_print(tmp_path):
    plt = plotting.pyplot()
    figure, ax = plt.subplots(figsize=(3, 2))
    ax.set_title("small", fontsize=6)
    with pytest.raises(ValueError, match="text of 6.0 pt"):
        plotting.save(figure, tmp_path / "small")
    assert list(tmp_path.iterdir()) == []


def test_save_writes_png_and_pdf_keeping_dots_in_the_name(tmp_path):
    plt = plotting.pyplot()
    figure, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    plotting.save(figure, tmp_path / "robustness_lum_0.4")
    assert (tmp_path / "robustness_lum_0.4.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "robustness_lum_0.4.pdf").read_bytes()[:5] == b"%PDF-"


def test_cli_writes_every_figure_as_png_and_pdf(results):
    run = subprocess.run([sys.executable, str(REPO / "tools" / "make_figures.py"), "--profile", "smoke",
                          "--results", str(results / "results"), "--lmdb-dir", str(results / "lmdb"),
                          "--paper-values", str(results / "paper_values.csv"), "--per-class", "1"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    written = sorted(p.name for p in (results / "results" / "figures").iterdir())
    stems = ["confusion_GLCM+SVM", f"confusion_{LABELLED}", "confusion_SDC-SN", "confusion_SDC-SN-ELF",
             "confusion_SDC-SN-ELF-MRF", "examples_SDC-SN-ELF-MRF", "table2_ours_vs_paper", "table3_ours_vs_paper",
             "table5_SDC-SN-ELF-MRF"]
    assert written == sorted(f"{s}.{fmt}" for s in stems for fmt in ("pdf", "png"))
    assert run.stdout.strip().splitlines()[-1] == f"9 figures (PNG and PDF) in {results / 'results' / 'figures'}"


def test_cli_without_evaluations_is_one_error_line(tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "tools" / "make_figures.py"), "--results", str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: no evaluations under {tmp_path / 'eval'}: run tools/evaluate.py first"]
    assert not (tmp_path / "figures").exists()

