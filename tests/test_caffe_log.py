"""The Caffe log parser on pinned excerpts of real `caffe train` logs, and the learning-curve files."""
import math

import pytest

from sdc import caffe_log

# A run killed during its test pass at iteration 10, just after the snapshot at 10 (lines kept verbatim,
# the solver/net dumps and data-layer chatter left out).
FIRST_RUN = """\
I20261126 08:35:05.852478 19659 caffe.cpp:239] Starting Optimization
I20261126 08:35:05.852500 19659 solver.cpp:347] Iteration 0, Testing net (#0)
I20261126 08:35:05.872524 19659 solver.cpp:414]     Test net output #0: accuracy = 0
I20261126 08:35:05.873991 19659 solver.cpp:414]     Test net output #1: loss = 1.79331 (* 1 = 1.79331 loss)
I20261126 08:35:05.903928 19659 solver.cpp:239] Iteration 0 (-0.0107313 iter/s, 0.051s/5 iters), loss = 1.79653
I20261126 08:35:05.903990 19659 solver.cpp:258]     Train net output #0: loss = 1.79653 (* 1 = 1.79653 loss)
I20261126 08:35:05.904253 19659 sgd_solver.cpp:112] Iteration 0, lr = 0.01
I20261126 08:35:05.999332 19659 solver.cpp:239] Iteration 5 (52.6316 iter/s, 0.095s/5 iters), loss = 1.76568
I20261126 08:35:05.999584 19659 sgd_solver.cpp:112] Iteration 5, lr = 0.01
I20261126 08:35:06.072834 19659 solver.cpp:464] Snapshotting to binary proto file snapshots/SDC-SN_iter_10.caffemodel
I20261126 08:35:06.073467 19659 sgd_solver.cpp:284] Snapshotting solver state to binary proto file snapshots/SDC-SN_iter_10.solverstate
I20261126 08:35:06.074481 19659 solver.cpp:347] Iteration 10, Testing net (#0)
I20261126 08:35:06.080000 19659 solver.cpp:414]     Test net output #0: accuracy = 0.2
"""
# The same run resumed: Caffe prints a garbage rate on the first display after a restore, and a
# final "Iteration N, loss" line (no rate) after the last step.
RESUMED_RUN = """\
I20261126 08:35:06.865952 19672 caffe.cpp:235] Resuming from snapshots/SDC-SN_iter_10.solverstate
I20261126 08:35:06.866119 19672 solver.cpp:347] Iteration 10, Testing net (#0)
I20261126 08:35:06.874186 19672 solver.cpp:414]     Test net output #0: accuracy = 0.333333
I20261126 08:35:06.874248 19672 solver.cpp:414]     Test net output #1: loss = 1.61083 (* 1 = 1.61083 loss)
I20261126 08:35:06.888235 19672 solver.cpp:239] Iteration 10 (-1.55269e+33 iter/s, 0.022s/5 iters), loss = 1.60302
I20261126 08:35:06.888332 19672 sgd_solver.cpp:112] Iteration 10, lr = 0.01
I20261126 08:35:06.936969 19672 solver.cpp:239] Iteration 15 (104.167 iter/s, 0.048s/5 iters), loss = nan
I20261126 08:35:06.937052 19672 sgd_solver.cpp:112] Iteration 15, lr = 1e-05
I20261126 08:35:07.186480 19672 solver.cpp:327] Iteration 20, loss = 1.43095
I20261126 08:35:07.186558 19672 solver.cpp:347] Iteration 20, Testing net (#0)
I20261126 08:35:07.191000 19672 solver.cpp:414]     Test net output #0: accuracy = 0.95
I20261126 08:35:07.192000 19672 solver.cpp:414]     Test net output #1: loss = 0.123 (* 1 = 0.123 loss)
I20261126 08:35:07.193000 19672 solver.cpp:332] Optimization Done.
"""


def test_parse_reads_loss_lr_and_test_outputs_per_iteration():
    rows = caffe_log.parse(FIRST_RUN.splitlines())
    assert rows == {0: {"test_accuracy": 0.0, "test_loss": 1.79331, "loss": 1.79653, "lr": 0.01},
                    5: {"loss": 1.76568, "lr": 0.01},
                    10: {"test_accuracy": 0.2}}


def test_parse_handles_the_resume_rate_the_final_loss_line_and_nan():
    rows = caffe_log.parse(RESUMED_RUN.splitlines())
    assert sorted(rows) == [10, 15, 20]
    assert rows[10] == {"test_accuracy": 0.333333, "test_loss": 1.61083, "loss": 1.60302, "lr": 0.01}
    assert math.isnan(rows[15]["loss"]) and rows[15]["lr"] == 1e-05
    assert rows[20] == {"loss": 1.43095, "test_accuracy": 0.95, "test_loss": 0.123}


def test_parse_names_outputs_of_a_second_test_net_apart():
    lines = ["I0 solver.cpp:347] Iteration 4, Testing net (#1)",
             "I0 solver.cpp:414]     Test net output #0: accuracy = 0.5"]
    assert caffe_log.parse(lines) == {4: {"test1_accuracy": 0.5}}


def test_a_resumed_log_replaces_the_killed_run_from_its_first_iteration():
    rows = caffe_log.merge([caffe_log.parse(FIRST_RUN.splitlines()), caffe_log.parse(RESUMED_RUN.splitlines())])
    assert [row["iteration"] for row in rows] == [0, 5, 10, 15, 20]
    assert rows[1] == {"iteration": 5, "loss": 1.76568, "lr": 0.01}
    assert rows[2]["test_accuracy"] == 0.333333  # not the killed run's partial 0.2
    assert caffe_log.merge([caffe_log.parse(FIRST_RUN.splitlines()), {}]) == \
        caffe_log.merge([caffe_log.parse(FIRST_RUN.splitlines())])


def test_a_restart_from_scratch_replaces_everything():
    first = caffe_log.parse(FIRST_RUN.splitlines())
    restart = {0: {"loss": 2.0}}
    assert caffe_log.merge([first, restart]) == [{"iteration": 0, "loss": 2.0}]


def test_csv_round_trip(tmp_path):
    rows = caffe_log.merge([caffe_log.parse(FIRST_RUN.splitlines()), caffe_log.parse(RESUMED_RUN.splitlines())])
    text = caffe_log.to_csv(rows)
    assert text.splitlines()[:3] == ["iteration,loss,lr,test_accuracy,test_loss",
                                     "0,1.79653,0.01,0.0,1.79331",
                                     "5,1.76568,0.01,,"]
    (tmp_path / "curve.csv").write_text(text)
    back = caffe_log.read_csv(tmp_path / "curve.csv")
    assert [r["iteration"] for r in back] == [0, 5, 10, 15, 20]
    assert back[0] == rows[0] and back[4] == rows[4] and math.isnan(back[3]["loss"])


def test_write_learning_curve_reads_the_logs_of_a_run_folder_oldest_first(tmp_path):
    import os
    first, resumed = tmp_path / "train-20261126-083505.log", tmp_path / "train-20261126-083506.log"
    first.write_text(FIRST_RUN)
    resumed.write_text(RESUMED_RUN)
    os.utime(first, ns=(1, 1))
    os.utime(resumed, ns=(2, 2))
    assert caffe_log.run_logs(tmp_path) == [first, resumed]
    rows = caffe_log.write_learning_curve(tmp_path, "test")
    assert rows[-1] == {"iteration": 20, "loss": 1.43095, "test_accuracy": 0.95, "test_loss": 0.123}
    assert caffe_log.read_csv(tmp_path / "learning_curve.csv")[-1] == rows[-1]
    png = (tmp_path / "learning_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


@pytest.mark.parametrize("line", [
    "I0 solver.cpp:239] Iteration 7 (3 iter/s, 3.3s/10 iters), loss = 2.5e-03",
    "Iteration 7, loss = 0.0025",  # pre-2016 Caffe, no rate
])
def test_loss_line_forms(line):
    assert caffe_log.parse([line]) == {7: {"loss": pytest.approx(0.0025)}}
