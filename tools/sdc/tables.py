"""The paper's Tables 2-5 with our value beside the paper's: built from the evaluation folders of one run
(tools/evaluate.py and the baseline tools) and the paper's values (docs/paper_values.csv); written as
Markdown, CSV (one line per cell) and LaTeX.

Markdown cells are short (ours / paper / Δ); the 95 % intervals go to a second table, the CSV and the
LaTeX. A value of ours that is missing is a dash with a footnote saying why; a cell the paper does not
have reads "not in the paper". Every comparison table ends with its verdict: how many cells lie within
±2 points of the paper and how many paper values our 95 % interval holds, naming the others.
"""
import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import eval_folder, lmdb_io, neu, stats
from .errors import UserError
from .variants import VARIANTS

PAPER_FIELDS = ("table", "row", "column", "value", "unit", "source")
RELEASED = "released/"
RELEASED_ROWS = tuple(RELEASED + v for v in VARIANTS)
TABLE5_MODELS = ("SDC-SN-ELF-MRF", RELEASED + "SDC-SN-ELF-MRF")
# The paper's column order (Tables 2 and 3): noise 20 dB before 35 dB.
TABLE2_COLUMNS = ("original", "lum_0.4", "lum_1", "noise_20", "noise_35", "blur_2", "blur_5")
DEGRADED = TABLE2_COLUMNS[1:]
POOLED = eval_folder.POOLED
SUMMARY_KEYS = TABLE2_COLUMNS + (POOLED,)
TABLE4_COLUMNS = ("train_images", "latency_ms", "model_mb", "original", POOLED)
CLASS_NAMES = tuple(c.prefix for c in neu.CLASSES)
COLUMN_TITLES = {"original": "Original", "lum_0.4": "Lum ±0.4", "lum_1": "Lum ±1", "noise_20": "Noise 20 dB",
                 "noise_35": "Noise 35 dB", "blur_2": "Blur 2", "blur_5": "Blur 5",
                 "enhanced": "Enhanced", "train_images": "Training images",
                 "latency_ms": "Running time (ms)", "model_mb": "Model size (MB)"}
DIGITS = {"%": 1, "ms": 1, "MB": 2, "images": 0}
TOLERANCE = 2.0  # percentage points: "within ±2 points of the paper"
# "<paper row> (<label>)": a variant of a paper row, e.g. a classical baseline under another protocol.
LABELLED_ROW = re.compile(r"^(?P<base>.+?) \((?P<label>[^()]+)\)$")
SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
NOT_IN_PAPER = "not in the paper"
CAVEAT = ("† The authors' released caffemodels. Their training split is unknown (their list was neu_1400.txt), "
          "so they have probably seen some of our test images: these rows measure robustness to the "
          "degradations, not generalisation. They are compared with the paper's row of the same variant.")
EXTRA_NOTE = "‡ Not a row of the paper's Table {key}; a row named \"<paper row> (<label>)\" is compared with that paper row."
LEGEND = ("Cell: ours / the paper's / Δ = ours − paper, accuracies in %, Δ in percentage points; **bold** Δ: "
          "more than 2 points off. Our 95 % intervals are in the table below and in tables.csv.")


@dataclass(frozen=True)
class PaperValue:
    value: float
    text: str      # as printed ("3.1", "100"): shown with the paper's own precision
    source: str

    @property
    def half_step(self):
        """Half the last printed digit: the paper's rounding (99.7 stands for 99.65-99.75)."""
        decimals = len(self.text.partition(".")[2])
        return 0.5 * 10 ** -decimals


@dataclass
class PaperValues:
    values: dict      # {(table, row, column): PaperValue}
    rows: dict        # {table: [row names in file order]}

    def get(self, key):
        return self.values.get(key)


def load_paper_values(path):
    """The paper-values file: one line per value the paper prints, each with its source."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"paper values {path} not found: pass --paper-values docs/paper_values.csv")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != PAPER_FIELDS:
            raise UserError(f"{path}: header must be {','.join(PAPER_FIELDS)}, found {reader.fieldnames}")
        values, rows = {}, {}
        for line, record in enumerate(reader, start=2):
            key = (record["table"], record["row"], record["column"])
            try:
                value = float(record["value"])
            except ValueError:
                raise UserError(f"{path}:{line}: value {record['value']!r} is not a number: give the value the "
                                "paper prints (a cell the paper does not have has no line)") from None
            if not record["source"].strip():
                raise UserError(f"{path}:{line}: value {value} has no source: give the table, row and column "
                                "where it was read")
            if key in values:
                raise UserError(f"{path}:{line}: cell {'/'.join(key)} is given twice")
            values[key] = PaperValue(value, record["value"].strip(), record["source"])
            rows.setdefault(record["table"], {})[record["row"]] = None
    return PaperValues(values, {table: list(names) for table, names in rows.items()})


@dataclass
class Evaluation:
    name: str
    folder: Path
    record: dict
    _predictions: dict = field(default_factory=dict, repr=False)

    @property
    def accuracy(self):
        return self.record["accuracy"]

    @property
    def test_records(self):
        """{subset: fingerprint of the test LMDB whose records were evaluated}: a classical protocol may
        have read those records' images rendered otherwise (e.g. the native 200 px files), which its
        "records" entry names."""
        return {s: entry.get("records", entry.get("fingerprint"))
                for s, entry in self.record["inputs"].get("subsets", {}).items()}

    def predictions(self, subset):
        """(keys, labels, preds) of one subset; for POOLED, the degraded subsets' records in the paper's
        column order, each key prefixed by its subset."""
        if subset not in self._predictions:
            if subset == POOLED:
                parts = [self.predictions(s) for s in DEGRADED]
                keys = [f"{s}/{k}" for s, (ks, _, _) in zip(DEGRADED, parts) for k in ks]
                self._predictions[subset] = (keys, np.concatenate([p[1] for p in parts]),
                                             np.concatenate([p[2] for p in parts]))
            else:
                self._predictions[subset] = eval_folder.read_predictions(
                    self.folder / eval_folder.predictions_file(subset))
        return self._predictions[subset]

    def scored(self, subset, label=None):
        """(keys, per-record correctness, clusters) of a subset (of its records of true class ``label``);
        clusters is None for the original images, which are independent, else each record's base image."""
        keys, labels, preds = self.predictions(subset)
        if label is not None:
            chosen = np.flatnonzero(labels == label)
            keys, labels, preds = [keys[i] for i in chosen], labels[chosen], preds[chosen]
        return keys, labels == preds, eval_folder.clusters_of(subset, keys)


def load_not_run(eval_dir):
    """{name: reason} of every not_run.json under ``eval_dir`` (models a tool could not evaluate)."""
    found = {}
    for path in sorted(Path(eval_dir).rglob(eval_folder.NOT_RUN_FILE)):
        try:
            record = json.loads(path.read_text())
            found[record["name"]] = record["reason"]
        except (ValueError, KeyError) as e:
            raise UserError(f"{path} is not a not_run.json ({e}): run the tool that wrote it again") from e
    return found


def load_evaluations(eval_dir):
    """{name: Evaluation} of every accuracy.json under ``eval_dir`` (names may hold '/')."""
    found = {}
    for path in sorted(Path(eval_dir).rglob(eval_folder.ACCURACY_FILE)):
        try:
            record = json.loads(path.read_text())
        except ValueError as e:
            raise UserError(f"{path} is not JSON ({e}): run tools/evaluate.py again") from e
        if not {"name", "accuracy", "timing", "inputs"} <= set(record):
            raise UserError(f"{path} is not an accuracy.json of tools/evaluate.py: run it again")
        name = record["name"]
        if name in found:
            raise UserError(f"{path} and {found[name].folder} both evaluate {name}: remove one")
        found[name] = Evaluation(name, path.parent, record)
    return found


def test_set_of_lmdbs(lmdb_dir):
    """{subset: fingerprint} of the test LMDBs in ``lmdb_dir`` (tools/build_lmdb.py's build.json)."""
    found = {}
    for subset in TABLE2_COLUMNS:
        info = lmdb_io.read_info(Path(lmdb_dir) / lmdb_io.test_name(subset))
        if info:
            found[subset] = info.get("fingerprint")
    if not found:
        raise UserError(f"no test LMDBs in {lmdb_dir}: pass the --lmdb-dir the evaluations read")
    return found


def shared_test_set(evaluations):
    """{subset: fingerprint} of the test LMDB that most evaluations read: the run's own test images."""
    reference = {}
    for subset in TABLE2_COLUMNS:
        counts = Counter(e.test_records[subset] for e in evaluations.values() if subset in e.test_records)
        ranked = counts.most_common(2)
        if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
            raise UserError(f"the evaluations disagree on the {subset} test images with no majority: pass "
                            "--lmdb-dir with the LMDBs of this run")
        if ranked:
            reference[subset] = ranked[0][0]
    return reference


def split_stale(evaluations, reference):
    """(the evaluations of this run, {name: why each other one is a left-over of an earlier run}).

    Every evaluation of one run reads the records of the same test LMDBs, whose fingerprints are
    ``reference``: an evaluation of other LMDBs comes from an earlier run (another --eval-per-class,
    another enhanced set)."""
    differing = {name: [s for s, records in found.test_records.items() if s in reference and records != reference[s]]
                 for name, found in evaluations.items()}
    current = {name: found for name, found in evaluations.items() if not differing[name]}
    stale = {name: f"evaluated on other test images than this run's ({', '.join(subsets)})"
             for name, subsets in differing.items() if subsets}
    return current, stale


def paper_row(row):
    """The paper row a row of ours is compared with: released/X -> X, "X (label)" -> X."""
    row = row[len(RELEASED):] if row.startswith(RELEASED) else row
    labelled = LABELLED_ROW.match(row)
    return labelled["base"] if labelled else row


def row_label(row):
    return row + " †" if row.startswith(RELEASED) else row


@dataclass
class Cell:
    row: str
    column: str
    unit: str
    ours: object = None         # float or int; None when not run
    interval: object = None     # stats.Interval (fractions) of an accuracy
    n: int = None               # records behind an accuracy
    paper: PaperValue = None
    missing: str = ""           # why ours is missing
    detail: str = ""            # the counts behind the value (paired tests, confusion cells)
    count: int = None           # Table 5: our count, and the paper's
    paper_count: int = None

    @property
    def difference(self):
        if self.paper is None or self.ours is None:
            return None
        return self.ours - self.paper.value

    @property
    def within_tolerance(self):
        return None if self.difference is None or self.unit != "%" else bool(abs(self.difference) <= TOLERANCE)

    @property
    def paper_inside(self):
        """Whether the paper's value, at its printed precision, meets our 95 % interval."""
        if self.paper is None or self.interval is None:
            return None
        half = self.paper.half_step
        low, high = 100 * float(self.interval.low), 100 * float(self.interval.high)
        return low <= self.paper.value + half and self.paper.value - half <= high


@dataclass
class Row:
    name: str
    cells: list
    kind: str = "paper"         # "paper": a row of the paper's table; "released" (†); "extra" (‡)
    notes: list = field(default_factory=list)   # footnotes attached to the row


@dataclass
class Table:
    key: str                    # "2", "2 paired", "3", "4", "5 lum_0.4 SDC-SN-ELF-MRF"
    title: str
    row_title: str
    columns: tuple
    layout: str = "compare"     # "compare", "paired" or "confusion"
    rows: list = field(default_factory=list)
    header: list = field(default_factory=list)  # lines under the title
    notes: list = field(default_factory=list)   # lines at the end
    models: tuple = ()          # the models a table's rows are not named after (paired, confusion tables)


class Builder:
    """Makes the cells of every table from one run's evaluations and the paper values.

    ``start_weights`` {row: phrase} names each trained row's ImageNet initialisation; ``row_notes``
    {row: [text]} are footnotes attached to a row wherever it appears (e.g. a training schedule label).
    """

    def __init__(self, evaluations, paper, not_run=None, start_weights=None, row_notes=None, stale=()):
        self.evaluations, self.paper = evaluations, paper
        self.not_run = not_run or {}
        self.start_weights = start_weights or {}
        self.row_notes = row_notes or {}
        self.stale = stale   # rows whose evaluation folder is a left-over of an earlier run

    def missing(self, row):
        if row in self.stale:
            return f"not run: eval/{row} is a left-over of an earlier run (other test images)"
        return "not run: " + (self.not_run.get(row) or f"no eval/{row}/{eval_folder.ACCURACY_FILE}")

    def kind(self, table, row):
        if row.startswith(RELEASED):
            return "released"
        return "paper" if row in self.paper.rows.get(table, ()) else "extra"

    def table_rows(self, table, extras):
        """The paper's rows of ``table`` in its order, then ``extras``."""
        paper_rows = list(self.paper.rows.get(table, ()))
        return paper_rows + [r for r in extras if r not in paper_rows]

    def accuracy_cell(self, table, row, column):
        cell = Cell(row, column, "%", paper=self.paper.get((table, paper_row(row), column)))
        found = self.evaluations.get(row)
        if not found:
            cell.missing = self.missing(row)
        elif column not in found.accuracy:
            cell.missing = f"not run: {row} was not evaluated on every test subset"
        else:
            _, correct, clusters = found.scored(column)
            cell.ours, cell.n = 100 * float(np.mean(correct)), len(correct)
            cell.interval = stats.accuracy_interval(correct, clusters)
        return cell

    def make_row(self, table, row, cells):
        return Row(row, cells, self.kind(table, row), list(self.row_notes.get(row, ())))

    def headed(self, table):
        """``table`` with the start-weights line of its trained rows and its closing notes."""
        rows = table.models or [r.name for r in table.rows]
        weights = {}
        for row in rows:
            if row in self.start_weights:
                weights.setdefault(self.start_weights[row], []).append(row)
        if weights:
            table.header.append("ImageNet start weights: " + "; ".join(
                f"{', '.join(names)}: {phrase}" for phrase, names in weights.items()) + ".")
        if table.models:  # rows named otherwise: the models' notes go under the title
            notes = {}
            for row in table.models:
                for note in self.row_notes.get(row, ()):
                    notes.setdefault(note, []).append(row)
            table.header += [f"{', '.join(names)}: {note}." for note, names in notes.items()]
        if table.layout == "compare":
            table.notes.insert(0, LEGEND)
        if any(r.kind == "released" for r in table.rows):
            table.notes.append(CAVEAT)
        if any(r.kind == "extra" for r in table.rows) and table.layout == "compare":
            table.notes.append(EXTRA_NOTE.format(key=table.key))
        return table

    def accuracy_table(self, key, title, rows):
        table = Table(key, title, "Model", TABLE2_COLUMNS)
        table.rows = [self.make_row(key, r, [self.accuracy_cell(key, r, c) for c in TABLE2_COLUMNS]) for r in rows]
        return self.headed(table)

    def labelled_rows(self, bases):
        """Present rows "<paper row> (<label>)" whose paper row is one of ``bases``, in that order."""
        present = set(self.evaluations) | set(self.not_run) | set(self.stale)
        return sorted((r for r in present if LABELLED_ROW.match(r) and paper_row(r) in bases),
                      key=lambda r: (bases.index(paper_row(r)), r))

    def table2(self):
        """The paper's three rows, the released models, then the variants trained otherwise (e.g. with SGD)."""
        return self.accuracy_table("2", "Table 2: the three variants on the original and the degraded test images",
                                   self.table_rows("2", RELEASED_ROWS + tuple(self.labelled_rows(VARIANTS))))

    def table3(self):
        """The paper's 12 rows, then ours that are not in it: the other variants, the released models,
        labelled rows ("<paper row> (<label>)") after the paper row they vary, and any other evaluation."""
        present = sorted(set(self.evaluations) | set(self.not_run) | set(self.stale))
        labelled = self.labelled_rows(list(self.paper.rows.get("3", [])))
        extras = list(VARIANTS) + list(RELEASED_ROWS) + labelled + present
        table = self.accuracy_table("3", "Table 3: every method on the original and the degraded test images",
                                    self.table_rows("3", dict.fromkeys(extras)))
        table.notes.append("Baselines: docs/baselines.md says for each what is certain and what was reconstructed.")
        table.notes += [f"Classical rows {f'labelled ({label})' if label else 'with plain names'}: protocol {name} "
                        f"(docs/baselines.md), {summary}." for label, name, summary in self.protocols_of(table.rows)]
        return table

    def protocols_of(self, rows):
        """(label, name, summary) of each protocol under which a classical row of ``rows`` was run."""
        found = (self.evaluations.get(row.name) for row in rows)
        described = (e.record["inputs"].get("protocol") for e in found if e)
        return list(dict.fromkeys((p["label"], p["name"], p["summary"]) for p in described if p))

    def table4(self):
        table = Table("4", "Table 4: training images, running time, model size and accuracy", "Model", TABLE4_COLUMNS)
        for row in self.table_rows("4", ("SDC-SN", "SDC-SN-ELF") + RELEASED_ROWS):
            cells = [self.accuracy_cell("4", row, c) if c in ("original", POOLED) else self.table4_cell(row, c)
                     for c in TABLE4_COLUMNS]
            table.rows.append(self.make_row("4", row, cells))
        devices = {}
        for row in table.rows:
            found = self.evaluations.get(row.name)
            if found and "latency_ms_batch1" in found.record["timing"]:
                devices.setdefault(found.record["timing"]["device"], []).append(row.name)
        measured = "; ".join(f"{device} ({', '.join(rows)})" if len(devices) > 1 else device
                             for device, rows in devices.items())
        table.notes.append(
            f"Running time: median of batch-1 forward passes of the deploy net in pycaffe after a warm-up pass, "
            f"on {measured or 'no device (nothing timed)'}; the paper's times come from its own GPU, so Δ measures "
            "the hardware as much as the method. Model size: bytes of the caffemodel / 10^6. Enhanced: the six "
            "degraded subsets pooled, which equals the paper's mean of the six (equal sizes).")
        return self.headed(table)

    def table4_cell(self, row, column):
        unit = {"train_images": "images", "latency_ms": "ms", "model_mb": "MB"}[column]
        cell = Cell(row, column, unit, paper=self.paper.get(("4", paper_row(row), column)))
        found = self.evaluations.get(row)
        if column == "train_images" and row.startswith(RELEASED):
            cell.missing = "unknown: the authors' training list neu_1400.txt is not published"
        elif not found:
            cell.missing = self.missing(row)
        elif column == "train_images":
            cell.ours = found.record["inputs"].get("train_images")
            cell.missing = "" if cell.ours is not None else "unknown: evaluated without --train-lmdb"
        elif column == "model_mb":
            cell.ours = found.record["model_bytes"] / 1e6
        elif "latency_ms_batch1" in found.record["timing"]:
            cell.ours = found.record["timing"]["latency_ms_batch1"]
        else:
            cell.missing = "not run: evaluated with --latency-repeats 0"
        return cell

    def table5(self):
        tables = []
        for model in TABLE5_MODELS:
            for subset in DEGRADED:
                table = Table(f"5 {subset} {model}", f"Table 5 ({COLUMN_TITLES[subset]}): confusion matrix of "
                              f"{row_label(model)}, ours beside the paper's", "True class", CLASS_NAMES, "confusion",
                              models=(model,))
                found = self.evaluations.get(model)
                for label, true in enumerate(CLASS_NAMES):
                    paper_counts = [self.paper.get(("5", f"{subset} {true}", pred)) for pred in CLASS_NAMES]
                    paper_total = sum(p.value for p in paper_counts if p)
                    cells = [self.confusion_cell(found, model, subset, label, j, paper, paper_total)
                             for j, paper in enumerate(paper_counts)]
                    table.rows.append(Row(true, cells, "released" if model.startswith(RELEASED) else "paper"))
                table.notes = [f"Left: our counts (n = our images of the class); right: the paper's. Compared as "
                               f"shares of the class's images: ours − paper in percentage points."]
                tables.append(self.headed(table))
        return tables

    def confusion_cell(self, found, model, subset, label, pred, paper, paper_total):
        true = CLASS_NAMES[label]
        cell = Cell(f"{subset} {true}", CLASS_NAMES[pred], "%")
        if paper is not None and paper_total:
            cell.paper = PaperValue(100 * paper.value / paper_total, f"{100 * paper.value / paper_total:.1f}",
                                    paper.source)
            cell.paper_count = round(paper.value)
        if not found:
            cell.missing = self.missing(model)
        elif subset not in found.accuracy:
            cell.missing = f"not run: {model} was not evaluated on every test subset"
        else:
            keys, _, clusters = found.scored(subset, label)
            _, labels, preds = found.predictions(subset)
            predicted = preds[labels == label] == pred
            cell.count, cell.n = int(predicted.sum()), len(predicted)
            cell.ours = 100 * cell.count / cell.n
            cell.interval = stats.accuracy_interval(predicted, clusters)
            cell.detail = f"ours {cell.count} of {cell.n}" + (
                f", paper {cell.paper_count} of {round(paper_total)}" if cell.paper else "")
        return cell

    def paired_table(self):
        columns = TABLE2_COLUMNS + (POOLED,)
        table = Table("2 paired", "Table 2, paired: consecutive variants compared on the same test images",
                      "A vs B", columns, "paired", models=VARIANTS)
        methods = {}
        for prefix in ("", RELEASED):
            for a, b in zip(VARIANTS, VARIANTS[1:]):
                first, second = prefix + a, prefix + b
                cells = [self.paired_cell(f"{row_label(first)} vs {row_label(second)}", first, second, c, methods)
                         for c in columns]
                table.rows.append(Row(f"{row_label(first)} vs {row_label(second)}", cells,
                                      "released" if prefix else "paper"))
        table.notes = ["Cell: p-value; b = test images A gets right and B wrong, c = the reverse. "
                       "The paper reports no test."]
        table.notes += [f"{', '.join(COLUMN_TITLES[c] for c in cols)}: {method}." for method, cols in methods.items()]
        return self.headed(table)

    def paired_cell(self, label, first, second, column, methods):
        cell = Cell(label, column, "p")
        missing = [m for m in (first, second) if m not in self.evaluations]
        if missing:
            cell.missing = "; ".join(self.missing(m) for m in missing).replace("; not run:", ";")
            return cell
        if not all(column in self.evaluations[m].accuracy for m in (first, second)):
            cell.missing = "not run: not both evaluated on every test subset"
            return cell
        (keys_a, correct_a, clusters), (keys_b, correct_b, _) = (self.evaluations[m].scored(column)
                                                                 for m in (first, second))
        if keys_a != keys_b:
            cell.missing = "not comparable: different test images"
            return cell
        result = stats.paired_test(correct_a, correct_b, clusters)
        cell.ours, cell.n, cell.detail = result.p, len(correct_a), f"b={result.b} c={result.c}"
        methods.setdefault(result.method, dict())[column] = None  # an ordered set of columns
        return cell

    def all_tables(self):
        return [self.table2(), self.paired_table(), self.table3(), self.table4()] + self.table5()


# ---- text ---------------------------------------------------------------------------------------------

def number(value, unit):
    digits = DIGITS.get(unit, 1)
    return f"{value:.{digits}f}" if digits else f"{round(value)}"


def signed(value, unit):
    text = number(value, unit)
    return text if float(text) == 0 else f"{'+' if value > 0 else '−'}{text.lstrip('-')}"


def interval_text(cell):
    return f"{number(100 * cell.interval.low, '%')}–{number(100 * cell.interval.high, '%')}"


class Footnotes:
    """Numbered footnotes of one table: one number per distinct text, in order of first use."""

    def __init__(self):
        self.texts = {}

    def mark(self, text):
        number = self.texts.setdefault(text, len(self.texts) + 1)
        return str(number).translate(SUPERSCRIPTS)

    def lines(self):
        return [f"{str(n).translate(SUPERSCRIPTS)} {text}" for text, n in self.texts.items()]


def row_title(row, footnotes):
    label = row_label(row.name) + (" ‡" if row.kind == "extra" else "")
    return label + "".join(footnotes.mark(note) for note in row.notes)


def compare_text(cell, row, footnotes, detailed=False):
    """ours / paper / Δ; with ``detailed``, ours carries its interval."""
    if cell.ours is None:
        ours = "–" + footnotes.mark(cell.missing)
    else:
        ours = number(cell.ours, cell.unit)
        if detailed and cell.interval:
            ours += f" [{interval_text(cell)}]"
    if cell.paper is None:
        return ours if row.kind != "paper" else f"{ours} / {NOT_IN_PAPER}"
    text = f"{ours} / {cell.paper.text}"
    if cell.difference is not None:
        delta = signed(cell.difference, cell.unit)
        text += f" / **{delta}**" if cell.within_tolerance is False and not detailed else f" / {delta}"
    return text


def paired_text(cell, footnotes):
    if cell.ours is None:
        return "–" + footnotes.mark(cell.missing)
    return f"p={cell.ours:.2g} ({cell.detail})"


def cell_names(cells_by_row, with_delta):
    parts = []
    for row, cells in cells_by_row.items():
        names = [f"{COLUMN_TITLES.get(c.column, c.column)}" + (f" {signed(c.difference, c.unit)}" if with_delta else "")
                 for c in cells]
        parts.append(f"{row}: {', '.join(names)}")
    return "; ".join(parts)


KINDS = (("paper", "our rows of the paper's table"), ("released", "the authors' released models †"),
         ("extra", "our other rows ‡"))


@dataclass
class Tally:
    """Accuracy cells of one kind of row that have a paper value, against that value."""
    compared: int = 0           # cells with a paper value
    ran: int = 0                # ... and a value of ours
    within: int = 0             # ... within ±2 points
    with_interval: int = 0
    inside: int = 0             # paper value inside our 95 % interval
    off: dict = field(default_factory=dict)       # {row label: [cells more than 2 points off]}
    outside: dict = field(default_factory=dict)   # {row label: [cells whose paper value is outside]}

    def add(self, row, cell):
        self.compared += 1
        if cell.ours is None:
            return
        self.ran += 1
        self.within += cell.within_tolerance
        if not cell.within_tolerance:
            self.off.setdefault(row_label(row.name), []).append(cell)
        if cell.paper_inside is not None:
            self.with_interval += 1
            self.inside += cell.paper_inside
            if not cell.paper_inside:
                self.outside.setdefault(row_label(row.name), []).append(cell)

    def counts(self):
        return (f"{self.within} of {self.ran} cells within ±2 points of the paper; {self.inside} of "
                f"{self.with_interval} paper values inside our 95 % interval")


def tallies(table):
    """{kind: Tally} of the kinds of row in ``table`` that have cells to compare with the paper."""
    found = {}
    for row in table.rows:
        for cell in row.cells:
            if cell.unit == "%" and cell.paper is not None:
                found.setdefault(row.kind, Tally()).add(row, cell)
    return found


def verdict(table):
    """One line per kind of row compared with the paper: cells within ±2 points, paper values inside our
    95 % interval, and which are not (a confusion table lists its differing cells on a line of its own)."""
    lines, found = [], tallies(table)
    for kind, what in KINDS:
        if kind not in found:
            continue
        tally = found[kind]
        line = f"**Verdict, {what}:** {tally.counts()}."
        if tally.off and table.layout != "confusion":
            line += f" More than 2 points off: {cell_names(tally.off, True)}."
        if tally.outside:
            line += f" Paper value outside our interval: {cell_names(tally.outside, False)}."
        if tally.ran < tally.compared:
            line += f" Not run: {tally.compared - tally.ran} cells (footnotes)."
        lines.append(line)
    return lines


def glance(tables):
    """The table at the top of tables.md: each table's verdict in two numbers, Table 5's six subsets
    summed per model."""
    groups = {}
    for table in tables:
        name = table.title.partition(":")[0].partition(" (")[0]
        for kind, tally in tallies(table).items():
            what = dict(KINDS)[kind]
            total = groups.setdefault((name, what), Tally())
            for key in ("compared", "ran", "within", "with_interval", "inside"):
                setattr(total, key, getattr(total, key) + getattr(tally, key))
    lines = [[name, what, f"{t.within} of {t.ran}", f"{t.inside} of {t.with_interval}", str(t.compared - t.ran)]
             for (name, what), t in groups.items()]
    return ["", "## At a glance", ""] + md_table(
        ["Table", "Rows", "Within ±2 points of the paper", "Paper value inside our 95 % interval", "Not run"],
        lines) + ["", "Counted over the cells where the paper prints an accuracy (Table 5: shares of each "
                      "class, six subsets); the verdict under each table names the cells that differ."]


def interval_methods(table):
    """One line per interval method of ``table``'s cells, naming its columns in a comparison table."""
    methods = {}
    for row in table.rows:
        for c in row.cells:
            if c.interval:
                methods.setdefault(c.interval.method, {})[COLUMN_TITLES.get(c.column, c.column)] = None
    if table.layout != "compare":
        return [f"Intervals: {'; '.join(methods)}."] if methods else []
    return [f"Intervals, {', '.join(columns)}: {method}." for method, columns in methods.items()]


def md_table(titles, lines):
    out = ["| " + " | ".join(titles) + " |", "|---" * len(titles) + "|"]
    return out + ["| " + " | ".join(line) + " |" for line in lines]


def markdown_table(table):
    footnotes = Footnotes()
    out = ["", f"## {table.title}", ""] + [line for line in table.header for line in (line, "")]
    if table.layout == "confusion":
        titles = [table.row_title] + list(table.columns) + ["n", "│"] + [f"{c} (paper)" for c in table.columns]
        lines = []
        for row in table.rows:
            ours = [str(c.count) if c.count is not None else "–" + footnotes.mark(c.missing) for c in row.cells]
            n = next((str(c.n) for c in row.cells if c.n is not None), "–")
            lines.append([row.name] + ours + [n, "│"] + [str(c.paper_count) if c.paper else NOT_IN_PAPER
                                                         for c in row.cells])
        out += md_table(titles, lines)
    elif table.layout == "paired":
        out += md_table([table.row_title] + [COLUMN_TITLES[c] for c in table.columns],
                        [[row.name] + [paired_text(c, footnotes) for c in row.cells] for row in table.rows])
    else:
        titles = [table.row_title] + [COLUMN_TITLES[c] for c in table.columns]
        out += md_table(titles, [[row_title(row, footnotes)] + [compare_text(c, row, footnotes) for c in row.cells]
                                 for row in table.rows])
    for line in verdict(table):
        out += ["", line]
    if table.layout == "confusion":
        differ = [f"{row.name} → {c.column} {number(c.ours, '%')} vs {c.paper.text}"
                  for row in table.rows for c in row.cells if c.within_tolerance is False]
        if differ:
            out += ["", "Where they differ (share of the class's images, ours vs the paper's, %): "
                    + "; ".join(differ) + "."]
    for note in table.notes:
        out += ["", note]
    if table.layout == "compare":
        out += interval_section(table)
    elif table.layout == "confusion":
        out += [line for method in interval_methods(table) for line in ("", method)]
    if footnotes.texts:
        out += [""] + ["  \n".join(footnotes.lines())]
    return out


def interval_section(table):
    """The second table: our 95 % intervals, ✓ where the paper's value is inside, ✗ where not."""
    mark = {True: " ✓", False: " ✗", None: ""}
    lines = [[row_label(row.name)] + [interval_text(c) + mark[c.paper_inside] if c.interval else "–"
                                      for c in row.cells] for row in table.rows
             if any(c.interval for c in row.cells)]
    if not lines:
        return []
    columns = [c for c in table.columns if any(cell.unit == "%" for row in table.rows for cell in row.cells
                                               if cell.column == c)]
    index = [table.columns.index(c) for c in columns]
    lines = [[line[0]] + [line[1 + i] for i in index] for line in lines]
    out = ["", f"Our 95 % intervals ({table.title.partition(':')[0]}; ✓ the paper's value inside, ✗ outside):", ""]
    out += md_table([table.row_title] + [COLUMN_TITLES[c] for c in columns], lines)
    return out + [line for m in interval_methods(table) for line in ("", m)]


def markdown(tables, header_lines):
    out = list(header_lines) + glance(tables)
    for table in tables:
        out += markdown_table(table)
    return "\n".join(out) + "\n"


CSV_FIELDS = ("table", "row", "column", "unit", "ours", "ci95_low", "ci95_high", "n", "paper", "difference",
              "within_2_points", "paper_in_ci95", "method", "paper_source", "note")


def csv_text(tables):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    flag = {True: "yes", False: "no", None: ""}
    for table in tables:
        for row in table.rows:
            for c in row.cells:
                low, high = (_plain(100 * x) for x in (c.interval.low, c.interval.high)) if c.interval else ("", "")
                method = c.interval.method if c.interval else ""
                writer.writerow([table.key, row.name if table.layout != "confusion" else c.row, c.column, c.unit,
                                 "" if c.ours is None else _plain(c.ours), low, high, "" if c.n is None else c.n,
                                 "" if c.paper is None else c.paper.text,
                                 "" if c.difference is None else _plain(c.difference),
                                 flag[c.within_tolerance], flag[c.paper_inside], method,
                                 NOT_IN_PAPER if c.paper is None and table.layout != "paired" else
                                 ("" if c.paper is None else c.paper.source),
                                 "; ".join(x for x in (c.missing, c.detail) if x)])
    return buffer.getvalue()


def _plain(value):
    return f"{value:.6g}" if isinstance(value, float) else str(value)


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "±": r"$\pm$", "†": r"$^\dagger$", "‡": r"$^\ddagger$", "Δ": r"$\Delta$", "·": r"$\cdot$",
                 "–": "--", "−": "$-$", "→": r"$\to$", "✓": r"$\checkmark$", "✗": r"$\times$", "│": "|",
                 "*": ""}
LATEX_SPECIAL.update({sup: f"\\textsuperscript{{{digit}}}" for digit, sup in zip("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")})


def latex_escape(text):
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex_table(table):
    footnotes = Footnotes()
    if table.layout == "confusion":
        titles = [table.row_title] + [f"{c} ours/paper" for c in table.columns]
        lines = [[row.name] + [f"{c.count if c.count is not None else '–' + footnotes.mark(c.missing)}/"
                               f"{c.paper_count if c.paper else '–'}" for c in row.cells] for row in table.rows]
    elif table.layout == "paired":
        titles = [table.row_title] + [COLUMN_TITLES[c] for c in table.columns]
        lines = [[row.name] + [paired_text(c, footnotes) for c in row.cells] for row in table.rows]
    else:
        titles = [table.row_title] + [COLUMN_TITLES[c] for c in table.columns]
        lines = [[row_title(row, footnotes)] + [compare_text(c, row, footnotes, detailed=True) for c in row.cells]
                 for row in table.rows]
    out = ["", r"\begin{table}[ht]", r"\centering\scriptsize", f"\\caption{{{latex_escape(table.title)}}}",
           r"\begin{tabular}{l" + "l" * (len(titles) - 1) + "}", r"\toprule",
           " & ".join(latex_escape(t) for t in titles) + r" \\", r"\midrule"]
    out += [" & ".join(latex_escape(x) for x in line) + r" \\" for line in lines]
    out += [r"\bottomrule", r"\end{tabular}"]
    notes = table.header + verdict(table) + table.notes + interval_methods(table) + footnotes.lines()
    notes = [n.replace(LEGEND, "Cell: ours [our 95 % interval] / the paper's / Δ = ours − paper, in % and "
                               "percentage points.") for n in notes]
    out += [f"\\par\\smallskip {latex_escape(note)}" for note in notes]
    out.append(r"\end{table}")
    return out


def latex(tables, header_lines):
    out = [f"% {line}" for line in header_lines if line]
    out.append("% Needs \\usepackage{booktabs} and \\usepackage{amssymb}.")
    for table in tables:
        out += latex_table(table)
    return "\n".join(out) + "\n"


def summary_models(evaluations):
    """{name: {column: accuracy fraction or None}} in summary.json's shape, columns in the paper's order."""
    return {name: {key: (e.accuracy[key]["accuracy"] if key in e.accuracy else None) for key in SUMMARY_KEYS}
            for name, e in sorted(evaluations.items())}
