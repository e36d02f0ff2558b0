"""The paper's Tables 2-5 with our value beside the paper's in every cell: built from evaluation
folders (tools/evaluate.py) and the paper's values (docs/paper_values.csv); written as Markdown,
CSV (one line per cell) and LaTeX.

A cell holds our value (accuracies with their Wilson 95% interval), the paper's value and the
difference ours - paper. What is missing says why: "not run: <reason>" for ours, "paper: not
transcribed" for a paper value nobody has transcribed with a source yet.
"""
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from . import degrade, evaluation, neu, stats
from .errors import UserError

PAPER_FIELDS = ("table", "row", "column", "value", "unit", "source")
VARIANTS = ("SDC-SN", "SDC-SN-ELF", "SDC-SN-ELF-MRF")
RELEASED = "released/"
MODEL_ROWS = VARIANTS + tuple(RELEASED + v for v in VARIANTS)
TABLE5_MODELS = ("SDC-SN-ELF-MRF", RELEASED + "SDC-SN-ELF-MRF")
# Table 2's column order as issue 5 lists the paper's; summary.json keeps the project's subset order.
TABLE2_COLUMNS = ("original", "lum_0.4", "lum_1", "noise_20", "noise_35", "blur_2", "blur_5")
SUMMARY_KEYS = degrade.TEST_SUBSETS + (evaluation.POOLED,)
COLUMN_TITLES = {"original": "Original", "lum_0.4": "Lum ±0.4", "lum_1": "Lum ±1", "noise_20": "Noise 20 dB",
                 "noise_35": "Noise 35 dB", "blur_2": "Blur 2", "blur_5": "Blur 5",
                 "enhanced": "Enhanced (six subsets pooled)", "train_images": "Training images",
                 "latency_ms": "Running time (ms/image)", "device": "Device (ours)", "model_mb": "Model size (MB)"}
DIGITS = {"%": 1, "ms": 1, "MB": 2, "images": 0}
CAVEAT = ("† The authors' released caffemodels. Their training split is unknown (their list was neu_1400.txt), "
          "so they have probably seen some of our test images: these rows measure robustness to the "
          "degradations, not generalisation. Their paper values are the paper's rows of the same name.")
CELL_LEGEND = ("Cell: ours (95% Wilson interval) · the paper's value · Δ = ours - paper; accuracies in %, "
               "differences in percentage points.")


@dataclass(frozen=True)
class PaperValue:
    value: float
    text: str      # as transcribed ("3.1", "100"): printed with the paper's own precision
    source: str


@dataclass
class Cell:
    row: str
    column: str
    unit: str
    ours: object = None            # float, int or (unit "text") str; None when not run
    ci95: tuple = None             # (low, high) as fractions, accuracies only
    n: int = None                  # images behind an accuracy
    paper: PaperValue = None
    note: str = ""                 # why ours is missing, or a remark

    @property
    def difference(self):
        if self.paper is None or not isinstance(self.ours, (int, float)):
            return None
        return self.ours - self.paper.value


@dataclass
class Table:
    key: str                       # "2", "3", "4", "5 lum_0.4 SDC-SN-ELF-MRF", "2 McNemar"
    title: str
    row_title: str
    columns: tuple
    rows: list = field(default_factory=list)   # [(row label, [Cell])]
    notes: list = field(default_factory=list)


@dataclass
class PaperValues:
    values: dict      # {(table, row, column): PaperValue} of the transcribed cells
    rows: dict        # {table: [row names in file order]}, transcribed or not

    def get(self, key):
        return self.values.get(key)


def load_paper_values(path):
    """The paper-values file; lines with an empty value are cells still to transcribe."""
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
            rows.setdefault(record["table"], {})[record["row"]] = None
            if not record["value"].strip():
                continue
            try:
                value = float(record["value"])
            except ValueError:
                raise UserError(f"{path}:{line}: value {record['value']!r} is not a number") from None
            if not record["source"].strip():
                raise UserError(f"{path}:{line}: value {value} has no source: give the table, row and column "
                                "and where it was read, or leave the value empty")
            if key in values:
                raise UserError(f"{path}:{line}: cell {'/'.join(key)} is given twice")
            values[key] = PaperValue(value, record["value"].strip(), record["source"])
    return PaperValues(values, {table: list(names) for table, names in rows.items()})


@dataclass
class Evaluation:
    name: str
    folder: Path
    record: dict

    @property
    def accuracy(self):
        return self.record["accuracy"]

    def confusion(self, subset):
        return json.loads((self.folder / evaluation.CONFUSION_FILE).read_text())["matrices"].get(subset)

    def correctness(self, subset):
        """(keys, per-image correctness) of one subset, or of all degraded subsets for POOLED."""
        subsets = evaluation.DEGRADED if subset == evaluation.POOLED else (subset,)
        keys, correct = [], []
        for s in subsets:
            k, labels, preds = evaluation.read_predictions(self.folder / evaluation.predictions_file(s))
            keys += [f"{s}/{key}" for key in k]
            correct += list(labels == preds)
        return keys, correct


def load_not_run(eval_dir):
    """{name: reason} of every not_run.json under ``eval_dir`` (models a tool could not evaluate)."""
    found = {}
    for path in sorted(Path(eval_dir).rglob(evaluation.NOT_RUN_FILE)):
        try:
            record = json.loads(path.read_text())
            found[record["name"]] = record["reason"]
        except (ValueError, KeyError) as e:
            raise UserError(f"{path} is not a not_run.json ({e}): run the tool that wrote it again") from e
    return found


def load_evaluations(eval_dir):
    """{name: Evaluation} of every accuracy.json under ``eval_dir`` (names may hold '/')."""
    found = {}
    for path in sorted(Path(eval_dir).rglob(evaluation.ACCURACY_FILE)):
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


def paper_row(row):
    return row[len(RELEASED):] if row.startswith(RELEASED) else row


def row_label(row):
    return row + " †" if row.startswith(RELEASED) else row


class Builder:
    """Makes the cells of every table from the evaluations and the paper values."""

    def __init__(self, evaluations, paper, not_run=None):
        self.evaluations, self.paper = evaluations, paper
        self.not_run = not_run or {}   # {row: why a tool did not evaluate it}

    def missing(self, row):
        return self.not_run.get(row) or f"no eval/{row}/{evaluation.ACCURACY_FILE}"

    def accuracy_cell(self, table, row, column):
        cell = Cell(row, column, "%", paper=self.paper.get((table, paper_row(row), column)))
        found = self.evaluations.get(row)
        entry = found and found.accuracy.get(column)
        if not found:
            cell.note = f"not run: {self.missing(row)}"
        elif not entry:
            cell.note = f"not run: {row} was not evaluated on {column}"
        else:
            cell.ours, cell.ci95, cell.n = 100 * entry["accuracy"], tuple(entry["ci95"]), entry["total"]
        return cell

    def rows(self, table, every_evaluation=False):
        """Our models, the paper's other rows of ``table`` in its order, then (``every_evaluation``)
        any other model a tool evaluated or said it could not."""
        rows = list(MODEL_ROWS) + [r for r in self.paper.rows.get(table, []) if r not in MODEL_ROWS]
        if every_evaluation:
            rows += sorted((set(self.evaluations) | set(self.not_run)) - set(rows))
        return rows

    def accuracy_table(self, key, title, columns, rows):
        table = Table(key, title, "Model", columns)
        table.rows = [(row_label(r), [self.accuracy_cell(key, r, c) for c in columns]) for r in rows]
        table.notes = [CELL_LEGEND, CAVEAT]
        return table

    def table2(self):
        return self.accuracy_table("2", "Table 2: accuracy of the three variants on the original test images and "
                                        "each degraded subset", TABLE2_COLUMNS, self.rows("2"))

    def table3(self):
        table = self.accuracy_table("3", "Table 3: accuracy of every method on the original test images and the "
                                         "enhanced set", ("original", evaluation.POOLED),
                                   self.rows("3", every_evaluation=True))
        table.notes.append("Baselines: docs/baselines.md says for each what is certain and what was reconstructed.")
        return table

    def table4(self):
        columns = ("train_images", "latency_ms", "device", "model_mb", "original", evaluation.POOLED)
        table = Table("4", "Table 4: training images, running time, model size and accuracy", "Model", columns)
        for row in self.rows("4"):
            cells = []
            for column in columns:
                if column in ("original", evaluation.POOLED):
                    cells.append(self.accuracy_cell("4", row, column))
                else:
                    cells.append(self.table4_cell(row, column))
            table.rows.append((row_label(row), cells))
        table.notes = [
            CELL_LEGEND,
            "Running time: median wall time of one batch-1 forward pass of the deploy net in pycaffe (after a "
            "warm-up pass), on the device named; the paper's times come from its own hardware, so their "
            "difference measures the hardware as much as the method. Model size: bytes of the caffemodel / 10^6.",
            CAVEAT]
        return table

    def table4_cell(self, row, column):
        unit = {"train_images": "images", "latency_ms": "ms", "device": "text", "model_mb": "MB"}[column]
        cell = Cell(row, column, unit, paper=self.paper.get(("4", paper_row(row), column)))
        found = self.evaluations.get(row)
        if column == "train_images":
            if row.startswith(RELEASED):
                cell.note = "unknown: the authors' training list neu_1400.txt is not published"
            elif not found:
                cell.note = f"not run: {self.missing(row)}"
            elif found.record["inputs"].get("train_images") is not None:
                cell.ours = found.record["inputs"]["train_images"]
            else:
                cell.note = "unknown: evaluated without --train-lmdb"
        elif not found:
            cell.note = f"not run: {self.missing(row)}"
        elif column == "model_mb":
            cell.ours = found.record["model_bytes"] / 1e6
        elif column == "device":
            cell.ours = found.record["timing"]["device"]
        elif "latency_ms_batch1" in found.record["timing"]:
            cell.ours = found.record["timing"]["latency_ms_batch1"]
        else:
            cell.note = "not run: evaluated with --latency-repeats 0"
        return cell

    def table5(self):
        tables = []
        classes = tuple(c.prefix for c in neu.CLASSES)
        for model in TABLE5_MODELS:
            for subset in evaluation.DEGRADED:
                key = f"5 {subset} {model}"
                table = Table(key, f"Table 5 ({COLUMN_TITLES[subset]}): confusion matrix of {row_label(model)}",
                              "True \\ predicted", classes)
                found = self.evaluations.get(model)
                matrix = found and found.confusion(subset)
                for i, true in enumerate(classes):
                    cells = []
                    for j, pred in enumerate(classes):
                        cell = Cell(f"{subset} {true}", pred, "images",
                                    paper=self.paper.get(("5", f"{subset} {true}", pred)))
                        if matrix:
                            cell.ours = matrix[i][j]
                        else:
                            cell.note = (f"not run: {self.missing(model)}" if not found
                                         else f"not run: {model} was not evaluated on {subset}")
                        cells.append(cell)
                    table.rows.append((true, cells))
                table.notes = ["Cell: our count of test images · the paper's count · Δ = ours - paper."]
                if model.startswith(RELEASED):
                    table.notes.append(CAVEAT)
                tables.append(table)
        return tables

    def mcnemar_table(self):
        columns = TABLE2_COLUMNS + (evaluation.POOLED,)
        table = Table("2 McNemar", "Table 2, paired: exact McNemar test between consecutive variants on the same "
                                   "test images", "Pair (A vs B)", columns)
        for prefix in ("", RELEASED):
            for a, b in zip(VARIANTS, VARIANTS[1:]):
                first, second = prefix + a, prefix + b
                label = f"{row_label(first)} vs {row_label(second)}"
                table.rows.append((label, [self.mcnemar_cell(label, first, second, c) for c in columns]))
        table.notes = ["Cell: b = images A gets right and B wrong, c = the reverse, p = exact two-sided McNemar "
                       "p-value (binomial on the b + c discordant images). The paper reports no test."]
        return table

    def mcnemar_cell(self, label, first, second, column):
        cell = Cell(label, column, "p")
        missing = [m for m in (first, second) if m not in self.evaluations]
        if missing:
            cell.note = "not run: " + "; ".join(self.missing(m) for m in missing)
            return cell
        if not all(column in self.evaluations[m].accuracy for m in (first, second)):
            cell.note = f"not run: not both evaluated on {column}"
            return cell
        (keys_a, correct_a), (keys_b, correct_b) = (self.evaluations[m].correctness(column) for m in (first, second))
        if keys_a != keys_b:
            cell.note = "not comparable: different test images"
            return cell
        result = stats.mcnemar(correct_a, correct_b)
        cell.ours, cell.n = result.p, result.n_discordant
        cell.note = f"b={result.b} c={result.c}"
        return cell

    def all_tables(self):
        return [self.table2(), self.mcnemar_table(), self.table3(), self.table4()] + self.table5()


def number(value, unit):
    digits = DIGITS.get(unit, 1)
    return f"{value:.{digits}f}" if digits else f"{round(value)}"


def signed(value, unit):
    text = number(value, unit)
    return text if float(text) == 0 else f"{'+' if value > 0 else ''}{text}"


def ours_text(cell):
    if cell.ours is None:
        return cell.note
    if cell.unit == "text":
        return cell.ours
    if cell.unit == "p":
        return f"{cell.note}, p={cell.ours:.3g}"
    text = number(cell.ours, cell.unit)
    if cell.ci95:
        text += f" ({number(100 * cell.ci95[0], '%')}–{number(100 * cell.ci95[1], '%')})"
    if cell.note:
        text += f" [{cell.note}]"
    return text


def cell_text(cell):
    if cell.unit in ("text", "p"):
        return ours_text(cell)
    if cell.paper is None:
        return f"{ours_text(cell)} · paper: not transcribed"
    text = f"{ours_text(cell)} · paper {cell.paper.text}"
    if cell.difference is not None:
        text += f" · Δ {signed(cell.difference, cell.unit)}"
    return text


def markdown(tables, header_lines):
    out = list(header_lines)
    for table in tables:
        out += ["", f"## {table.title}", "",
                f"| {table.row_title} | " + " | ".join(COLUMN_TITLES.get(c, c) for c in table.columns) + " |",
                "|---" * (len(table.columns) + 1) + "|"]
        out += [f"| {label} | " + " | ".join(cell_text(c) for c in cells) + " |" for label, cells in table.rows]
        for note in table.notes:
            out += ["", note]
    return "\n".join(out) + "\n"


CSV_FIELDS = ("table", "row", "column", "unit", "ours", "ci95_low", "ci95_high", "n", "paper", "difference",
              "paper_source", "note")


def csv_text(tables):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for table in tables:
        for _, cells in table.rows:
            for c in cells:
                ours = c.ours if c.unit == "text" or c.ours is None else _plain(c.ours)
                low, high = (_plain(100 * x) for x in c.ci95) if c.ci95 else ("", "")
                writer.writerow([table.key, c.row, c.column, c.unit, "" if ours is None else ours, low, high,
                                 "" if c.n is None else c.n, "" if c.paper is None else c.paper.text,
                                 "" if c.difference is None else _plain(c.difference),
                                 "" if c.paper is None else c.paper.source, c.note])
    return buffer.getvalue()


def _plain(value):
    return f"{value:.6g}" if isinstance(value, float) else str(value)


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "±": r"$\pm$", "†": r"$^\dagger$", "Δ": r"$\Delta$", "·": r"$\cdot$", "–": "--"}


def latex_escape(text):
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex(tables, header_lines):
    out = [f"% {line}" for line in header_lines if line]
    out.append("% Needs \\usepackage{booktabs}.")
    for table in tables:
        out += ["", r"\begin{table}[ht]", r"\centering\scriptsize", f"\\caption{{{latex_escape(table.title)}}}",
                r"\begin{tabular}{l" + "l" * len(table.columns) + "}", r"\toprule",
                " & ".join(latex_escape(x) for x in (table.row_title, *(COLUMN_TITLES.get(c, c)
                                                                        for c in table.columns))) + r" \\",
                r"\midrule"]
        out += [" & ".join([latex_escape(label)] + [latex_escape(cell_text(c)) for c in cells]) + r" \\"
                for label, cells in table.rows]
        out += [r"\bottomrule", r"\end{tabular}"]
        out += [f"\\par\\smallskip {latex_escape(note)}" for note in table.notes]
        out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def summary_models(evaluations):
    """{name: {subset: accuracy fraction or None}} in summary.json's shape."""
    return {name: {key: (e.accuracy[key]["accuracy"] if key in e.accuracy else None) for key in SUMMARY_KEYS}
            for name, e in sorted(evaluations.items())}
