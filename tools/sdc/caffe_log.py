"""Learning curves from the logs of `caffe train`: parse, merge resumed runs, CSV and figure.

The lines read (BVLC Caffe, solver.cpp / sgd_solver.cpp, after the glog prefix):
    Iteration 20 (0.5 iter/s, 20s/10 iters), loss = 1.23     smoothed training loss (average_loss)
    Iteration 20, lr = 0.01                                  learning rate of the update at 20
    Iteration 100, Testing net (#0)                          a test pass at 100; its outputs follow:
        Test net output #0: accuracy = 0.95
        Test net output #1: loss = 0.2 (* 1 = 0.2 loss)
"""
import csv
import io
import math
import re
from pathlib import Path

from . import atomic

NUMBER = r"([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))"
TRAIN_LOSS = re.compile(r"\bIteration (\d+)(?: \([^)]*\))?, loss = " + NUMBER)
LEARNING_RATE = re.compile(r"\bIteration (\d+), lr = " + NUMBER)
TESTING = re.compile(r"\bIteration (\d+), Testing net \(#(\d+)\)")
TEST_OUTPUT = re.compile(r"\bTest net output #\d+: (\S+) = " + NUMBER)
FIXED_COLUMNS = ("iteration", "loss", "lr")


def parse(lines):
    """{iteration: {column: value}} of one log; test outputs become test_<name> (test<k>_<name> for net k > 0)."""
    rows = {}
    test_iteration, test_prefix = None, None
    for line in lines:
        if match := TRAIN_LOSS.search(line):
            rows.setdefault(int(match[1]), {})["loss"] = float(match[2])
        elif match := LEARNING_RATE.search(line):
            rows.setdefault(int(match[1]), {})["lr"] = float(match[2])
        elif match := TESTING.search(line):
            test_iteration = int(match[1])
            test_prefix = "test_" if match[2] == "0" else f"test{match[2]}_"
        elif (match := TEST_OUTPUT.search(line)) and test_iteration is not None:
            rows.setdefault(test_iteration, {})[test_prefix + match[1]] = float(match[2])
    return rows


def merge(parsed_logs):
    """One curve from the logs of successive runs in the same folder, oldest first: a later log
    (resumed from a snapshot, or restarted) replaces everything from its first iteration on."""
    merged = {}
    for rows in parsed_logs:
        if rows:
            start = min(rows)
            merged = {it: row for it, row in merged.items() if it < start}
            merged.update(rows)
    return [dict(row, iteration=it) for it, row in sorted(merged.items())]


def run_logs(run_dir):
    """The train-*.log files of a run folder, oldest first (by modification time)."""
    return sorted(Path(run_dir).glob("train-*.log"), key=lambda p: (p.stat().st_mtime_ns, p.name))


def learning_curve(log_paths):
    return merge(parse(Path(p).read_text(errors="replace").splitlines()) for p in log_paths)


def columns(rows):
    tests = sorted({key for row in rows for key in row} - set(FIXED_COLUMNS))
    return list(FIXED_COLUMNS) + tests


def to_csv(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_csv(path):
    with open(path, newline="") as f:
        return [{key: (int(value) if key == "iteration" else float(value)) for key, value in row.items() if value}
                for row in csv.DictReader(f)]


def _series(rows, key):
    points = [(row["iteration"], row[key]) for row in rows if key in row and math.isfinite(row[key])]
    return tuple(zip(*points)) if points else ((), ())


def plot(rows, dest, title):
    """Training loss and learning rate (top), test accuracy (bottom) against iteration, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    top.plot(*_series(rows, "loss"), label="training loss (smoothed)", color="tab:blue")
    top.plot(*_series(rows, "test_loss"), "o-", label="test loss", color="tab:orange")
    top.set_ylabel("loss")
    top.legend(loc="upper right")
    rate = top.twinx()
    rate.step(*_series(rows, "lr"), where="post", color="tab:gray", linestyle="--")
    rate.set_ylabel("learning rate (dashed)")
    if _series(rows, "lr")[0]:
        rate.set_yscale("log")
        rate.yaxis.set_major_formatter(ticker.LogFormatter())  # plain labels: no mathtext to parse
        rate.yaxis.set_minor_formatter(ticker.NullFormatter())
    bottom.plot(*_series(rows, "test_accuracy"), "o-", color="tab:green")
    bottom.set_ylabel("test accuracy")
    bottom.set_xlabel("iteration")
    bottom.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic.atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def plot_runs(curves, dest, title):
    """Several runs on one figure: training loss (log scale, top) and test accuracy (bottom) against
    iteration; ``curves`` maps a label to the rows of learning_curve(). PNG, or PDF by suffix."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True)
    for label, rows in curves.items():
        line, = top.plot(*_series(rows, "loss"), label=label, linewidth=1.2)
        bottom.plot(*_series(rows, "test_accuracy"), "o-", color=line.get_color(), markersize=3, label=label)
    top.set_yscale("log")
    top.set_ylabel("training loss")
    top.grid(alpha=0.3, which="both")
    bottom.set_ylabel("test accuracy")
    bottom.set_xlabel("iteration (update)")
    bottom.set_ylim(0, 1.02)
    bottom.axhline(1 / 6, color="gray", linestyle=":", linewidth=1)  # one class predicted for every image
    bottom.grid(alpha=0.3)
    bottom.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic.atomic_path(dest) as tmp:
        fig.savefig(tmp, format=Path(dest).suffix.lstrip(".") or "png", dpi=150)
    plt.close(fig)


def write_learning_curve(run_dir, title):
    """learning_curve.csv and learning_curve.png of all the logs in ``run_dir``; returns the rows."""
    rows = learning_curve(run_logs(run_dir))
    atomic.write_text(Path(run_dir) / "learning_curve.csv", to_csv(rows))
    plot(rows, Path(run_dir) / "learning_curve.png", title)
    return rows
