"""tools/train.py: real `caffe train` runs in a run folder, resume after a kill, the schedules, the errors."""
import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import numpy as np
import pytest
from caffe.proto import caffe_pb2

import train as train_tool
from sdc import caffe_log, lock, training
from sdc.errors import UserError
from sdc.variants import VARIANTS

REPO = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, str(REPO / "tools" / "train.py")]
TINY_NET = """name: "tiny"
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TRAIN }}
  transform_param {{ mean_value: 104 mean_value: 117 mean_value: 123 scale: 0.01 }}
  data_param {{ source: "{lmdb}/train_lmdb" batch_size: 2 backend: LMDB }} }}
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TEST }}
  transform_param {{ mean_value: 104 mean_value: 117 mean_value: 123 scale: 0.01 }}
  data_param {{ source: "{lmdb}/test_original_lmdb" batch_size: 4 backend: LMDB }} }}
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param {{ num_output: 32 kernel_size: 3 pad: 1 weight_filler {{ type: "gaussian" std: 0.01 }} }} }}
layer {{ name: "relu" type: "ReLU" bottom: "conv" top: "conv" }}
layer {{ name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param {{ pool: AVE global_pooling: true }} }}
layer {{ name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param {{ num_output: 6 weight_filler {{ type: "gaussian" std: 0.1 }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }}
layer {{ name: "accuracy" type: "Accuracy" bottom: "fc" bottom: "label" top: "accuracy" include {{ phase: TEST }} }}
"""
# 4 training records, batch 2, a snapshot every 10 iterations: every snapshot falls on an epoch
# boundary, so a resumed run (Caffe restarts the LMDB cursor) reads what the uninterrupted one reads.
TINY_SOLVER = """net: "{net}"
type: "Adam" base_lr: 0.01 momentum: 0.9 momentum2: 0.999 lr_policy: "step" gamma: 0.1 stepsize: 40
max_iter: 100 snapshot: 10 test_interval: 10 test_iter: 1 display: 5 average_loss: 5 random_seed: 7
snapshot_prefix: "ignored" solver_mode: CPU
"""


def write_lmdb(path, count, side, seed):
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    env = lmdb.open(str(path), map_size=1 << 28)
    with env.begin(write=True) as txn:
        for i in range(count):
            pixels = rng.integers(0, 256, (3, side, side), dtype=np.uint8)
            datum = caffe_pb2.Datum(channels=3, height=side, width=side, data=pixels.tobytes(), label=i % 6)
            txn.put(f"{i:08d}".encode(), datum.SerializeToString())
    env.close()


def write_count_only_lmdb(path, count):
    """An LMDB with ``count`` 1x1 records: enough for the code that only counts them."""
    write_lmdb(path, count, 1, 0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, caffe):
    """A small trainable net (Data 3x128x128 -> conv -> global pool -> 6 classes), its LMDBs, solver and init."""
    root = tmp_path_factory.mktemp("tiny")
    write_lmdb(root / "lmdb" / "train_lmdb", 4, 128, 1)
    write_lmdb(root / "lmdb" / "test_original_lmdb", 3, 128, 2)
    (root / "train_val.prototxt").write_text(TINY_NET.format(lmdb=root / "lmdb"))
    (root / "solver.prototxt").write_text(TINY_SOLVER.format(net=root / "train_val.prototxt"))
    caffe.Net(str(root / "train_val.prototxt"), caffe.TEST).save(str(root / "init.caffemodel"))
    return root


def tiny_args(tiny, run_dir, *extra):
    return ["--variant", "SDC-SN", "--solver", str(tiny / "solver.prototxt"), "--run-dir", str(run_dir),
            "--weights", str(tiny / "init.caffemodel"), "--lmdb-dir", str(tiny / "lmdb"), *extra]


def train(*args):
    return subprocess.run(TRAIN + list(args), capture_output=True, text=True, timeout=300)


def caffemodel_params(path):
    net = caffe_pb2.NetParameter()
    net.ParseFromString(Path(path).read_bytes())
    return {layer.name: [np.array(blob.data) for blob in layer.blobs] for layer in net.layer if layer.blobs}


def kill_after_first_snapshot(command, run_dir, timeout=120):
    """Start ``command``; SIGKILL its process group once a complete solverstate exists."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            states = training.solverstates(run_dir, "SDC-SN")
            if any(training.usable(path, run_dir) for path in states.values()):
                break
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_killed_run_resumes_and_ends_as_the_uninterrupted_run(tiny, tmp_path):
    reference = train(*tiny_args(tiny, tmp_path / "uninterrupted"))
    assert reference.returncode == 0, reference.stderr + reference.stdout[-2000:]

    run = tmp_path / "killed"
    kill_after_first_snapshot(TRAIN + tiny_args(tiny, run), run)
    reached = max(training.solverstates(run, "SDC-SN"))
    assert 10 <= reached < 100, "the run finished before it could be killed: make the tiny net slower"
    assert not (run / "final.caffemodel").exists()

    resumed = train(*tiny_args(tiny, run))
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout[-2000:]
    assert f"resuming from SDC-SN_iter_{reached}.solverstate" in resumed.stdout
    first_log, last_log = caffe_log.run_logs(run)
    assert f"Resuming from snapshots/SDC-SN_iter_{reached}.solverstate" in last_log.read_text()
    assert "Resuming from" not in first_log.read_text()

    assert (run / "snapshots" / "SDC-SN_iter_100.caffemodel").is_file()
    curve = caffe_log.read_csv(run / "learning_curve.csv")
    assert [row["iteration"] for row in curve] == list(range(0, 101, 5))
    assert [row["iteration"] for row in curve if "test_accuracy" in row] == list(range(0, 101, 10))
    reference_curve = caffe_log.read_csv(tmp_path / "uninterrupted" / "learning_curve.csv")
    assert [row.get("test_loss") for row in curve] == pytest.approx([row.get("test_loss") for row in reference_curve],
                                                                     rel=1e-4)
    final, expected = caffemodel_params(run / "final.caffemodel"), caffemodel_params(
        tmp_path / "uninterrupted" / "final.caffemodel")
    assert final.keys() == expected.keys() == {"conv", "fc"}
    for name in final:
        for got, want in zip(final[name], expected[name]):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=name)
    assert not np.allclose(final["fc"][0], caffemodel_params(tiny / "init.caffemodel")["fc"][0])

    record = json.loads((run / "provenance.json").read_text())
    assert [s["resumed_from"] for s in record["sessions"]] == [None, f"SDC-SN_iter_{reached}.solverstate"]
    assert record["sessions"][0]["exit_status"] is None  # the killed session
    assert record["sessions"][1]["iteration_reached"] == 100 and record["seeds"] == {"solver_random_seed": 7}
    assert record["schedule"] == {"base_lr": 0.01, "max_iter": 100, "stop_after": None, "iter_size": 1,
                                  "train_batch": 2, "clip_gradients": -1.0, "stepsize": 40,
                                  "snapshot": 10, "test_interval": 10, "test_iter": 1}
    assert record["batching"] == "literal"
    assert record["solver_sha256"] and len(record["weights"]["sha1"]) == 40
    assert record["schedule_label"] == ("paper profile: the committed solver's schedule; Adam at base_lr 0.01 "
                                        "collapsed to one class in every measured run (docs/training.md)")

    again = train(*tiny_args(tiny, run))
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert len(caffe_log.run_logs(run)) == 2

    longer = train(*tiny_args(tiny, run, "--max-iter", "200"))
    assert longer.returncode == 2 and longer.stderr.count("\n") == 1
    # A longer schedule moves the lr step: not a continuation (only --stop-after may extend a run).
    assert "differs in stepsize from" in longer.stderr and "solver.prototxt" in longer.stderr


def test_stop_after_trains_the_first_updates_and_a_later_command_continues(tiny, tmp_path):
    reference = train(*tiny_args(tiny, tmp_path / "uninterrupted"))
    assert reference.returncode == 0, reference.stderr + reference.stdout[-2000:]
    run = tmp_path / "staged"
    first = train(*tiny_args(tiny, run, "--stop-after", "30", "--display", "1"))
    assert first.returncode == 0, first.stderr + first.stdout[-2000:]
    assert f"done: {run / 'snapshots' / 'SDC-SN_iter_30.caffemodel'}" in first.stdout
    assert not (run / "final.caffemodel").exists()  # the schedule is not complete
    solver = training.read_proto(run / "solver.prototxt", caffe_pb2.SolverParameter())
    assert (solver.max_iter, solver.stepsize, solver.display, solver.average_loss) == (30, 40, 1, 1)
    record = json.loads((run / "provenance.json").read_text())
    assert record["schedule"]["max_iter"] == 100 and record["schedule"]["stop_after"] == 30
    assert record["schedule_label"].endswith("(docs/training.md); first 30 updates")
    # --display 1: the loss of every update, not a 5-update average.
    assert [row["iteration"] for row in caffe_log.read_csv(run / "learning_curve.csv")] == list(range(31))

    again = train(*tiny_args(tiny, run, "--stop-after", "30", "--display", "1"))
    assert again.returncode == 0 and "nothing to do" in again.stdout
    rest = train(*tiny_args(tiny, run, "--display", "5", "--test-interval", "50"))  # logging may change
    assert rest.returncode == 0, rest.stderr + rest.stdout[-2000:]
    assert "resuming from SDC-SN_iter_30.solverstate" in rest.stdout
    final, expected = (caffemodel_params(run / "final.caffemodel"),
                       caffemodel_params(tmp_path / "uninterrupted" / "final.caffemodel"))
    for name in final:
        for got, want in zip(final[name], expected[name]):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=name)
    too_far = train(*tiny_args(tiny, tmp_path / "far", "--stop-after", "101"))
    assert "--stop-after 101 is beyond the schedule's max_iter 100" in one_line_error(too_far)


def test_keep_snapshots_leaves_the_newest(tiny, tmp_path):
    run = tmp_path / "run"
    result = train(*tiny_args(tiny, run, "--keep-snapshots", "2", "--snapshot-interval", "20"))
    assert result.returncode == 0, result.stderr + result.stdout[-2000:]
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == [
        f"SDC-SN_iter_{i}.{ext}" for i in (100, 80) for ext in ("caffemodel", "solverstate")]
    assert (run / "final.caffemodel").is_file()


def test_sigterm_makes_caffe_snapshot_and_a_rerun_resumes(tiny, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(TRAIN + tiny_args(tiny, run), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not training.solverstates(run, "SDC-SN"):
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)  # to train.py alone, as an init or run_all.sh forwards it
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == train_tool.INTERRUPTED, err + out[-2000:]
    reached = max(training.solverstates(run, "SDC-SN"))
    assert 10 <= reached < 100 and f"stopped at iteration {reached} of 100" in out
    assert f"Snapshotting to binary proto file snapshots/SDC-SN_iter_{reached}.caffemodel" in out
    resumed = train(*tiny_args(tiny, run))
    assert resumed.returncode == 0 and f"resuming from SDC-SN_iter_{reached}.solverstate" in resumed.stdout


def test_labels_name_the_update_rule_and_the_batching_form(tmp_path, caffe):
    lmdb_dir = tmp_path / "lmdb"
    write_count_only_lmdb(lmdb_dir / "train_lmdb", 1440)
    write_count_only_lmdb(lmdb_dir / "test_original_lmdb", 360)
    args = train_tool.parse_args(["--variant", "SDC-SN-ELF-MRF", "--batching", "equivalent"])
    sgd = REPO / "solvers" / "SDC-SN-ELF-MRF_sgd_solver.prototxt"
    solver, net = training.prepare(sgd, "SDC-SN-ELF-MRF", "paper", lmdb_dir)
    batching = training.adjust(solver, net, "equivalent")
    assert train_tool.schedule_label(args, [train_tool.solver_note(solver, "SDC-SN-ELF-MRF"), batching]) == (
        "paper profile: the committed solver's schedule; paper values, SGD instead of the stated Adam; "
        "update-equivalent batching 180×1, clip 3.5")
    adam, net = training.prepare(training.default_solver("SDC-SN"), "SDC-SN", "smoke", lmdb_dir)
    assert training.adjust(adam, net, "equivalent") is None  # the smoke profile's iter_size is already 1
    assert train_tool.solver_note(adam, "SDC-SN") is None  # base_lr 1e-4
    paper_adam, _ = training.prepare(training.default_solver("SDC-SN"), "SDC-SN", "paper", lmdb_dir)
    assert train_tool.solver_note(paper_adam, "SDC-SN") == (
        "Adam at base_lr 0.01 collapsed to one class in every measured run (docs/training.md)")


def test_run_folder_files(tiny, tmp_path):
    run = tmp_path / "run"
    result = train(*tiny_args(tiny, run, "--max-iter", "10", "--iter-size", "2"))
    assert result.returncode == 0, result.stderr + result.stdout[-2000:]
    assert "done:" in result.stdout.splitlines()[-1]
    logs = list(run.glob("train-*.log"))
    assert len(logs) == 1 and len(logs[0].stem) == len("train-YYYYmmdd-HHMMSS")
    assert "Optimization Done." in logs[0].read_text()
    solver = training.read_proto(run / "solver.prototxt", caffe_pb2.SolverParameter())
    # the tiny solver's shape (10 snapshots, 10 tests, lr step at 40%) at max_iter 10
    assert (solver.max_iter, solver.iter_size, solver.stepsize, solver.snapshot, solver.test_interval) == (10, 2, 4, 1, 1)
    assert (solver.net, solver.snapshot_prefix, list(solver.test_iter)) == ("train_val.prototxt", "snapshots/SDC-SN", [1])
    net = training.read_proto(run / "train_val.prototxt", caffe_pb2.NetParameter())
    test_data = [layer for layer in net.layer if layer.type == "Data"][1]
    assert test_data.data_param.batch_size == 3 and test_data.data_param.source == str(tiny / "lmdb/test_original_lmdb")
    assert filecmp.cmp(run / "final.caffemodel", run / "snapshots" / "SDC-SN_iter_10.caffemodel", shallow=False)
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["final.caffemodel", "learning_curve.csv", "learning_curve.png", "provenance.json", "snapshots",
         "solver.prototxt", "train_val.prototxt", logs[0].name])


def test_squeezenet_smoke_profile_trains_with_the_committed_solver_and_net(tmp_path, caffe):
    """SDC-SN at 256x256 with the real ImageNet-shaped init: 1 iteration of the smoke schedule."""
    write_lmdb(tmp_path / "lmdb" / "train_lmdb", 2, 256, 3)
    write_lmdb(tmp_path / "lmdb" / "test_original_lmdb", 2, 256, 4)
    init = tmp_path / "imagenet_like.caffemodel"
    caffe.Net(str(REPO / "prototxt" / "squeezenet_v1.0_deploy.prototxt"), caffe.TEST).save(str(init))
    run = tmp_path / "run"
    result = train("--variant", "SDC-SN", "--profile", "smoke", "--max-iter", "1", "--run-dir", str(run),
                   "--weights", str(init), "--lmdb-dir", str(tmp_path / "lmdb"))
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    log = next(run.glob("train-*.log")).read_text()
    assert "Ignoring source layer conv10" in log  # the 1000-class ImageNet head is not copied
    assert "Ignoring source layer conv1\n" not in log
    curve = caffe_log.read_csv(run / "learning_curve.csv")
    assert [row["iteration"] for row in curve if "test_accuracy" in row] == [0, 1]
    assert "conv10b" in caffemodel_params(run / "final.caffemodel")
    label = "smoke profile --max-iter 1: NOT the paper's schedule"
    assert json.loads((run / "provenance.json").read_text())["schedule_label"] == label
    assert f"# Schedule: {label}.\n" in (run / "solver.prototxt").read_text() and label in result.stdout


def test_smoke_and_paper_schedules_of_the_committed_solvers(tmp_path, caffe):
    write_count_only_lmdb(tmp_path / "train_lmdb", 1440)
    write_count_only_lmdb(tmp_path / "test_original_lmdb", 360)
    schedule = lambda s: (s.max_iter, s.iter_size, s.stepsize, s.snapshot, s.test_interval, list(s.test_iter))  # noqa: E731
    for variant in VARIANTS:
        solver_path = training.default_solver(variant)
        paper, net = training.prepare(solver_path, variant, "paper", tmp_path)
        assert schedule(paper) == (2400, 10, 800, 200, 100, [20])
        smoke, _ = training.prepare(solver_path, variant, "smoke", tmp_path)
        assert schedule(smoke) == (120, 1, 40, 30, 60, [20])
        short, _ = training.prepare(solver_path, variant, "paper", tmp_path, max_iter=600, iter_size=5)
        assert schedule(short) == (600, 5, 200, 50, 25, [20])
        committed = training.read_proto(solver_path, caffe_pb2.SolverParameter())
        for field in ("net", "snapshot_prefix"):
            paper.ClearField(field)
            committed.ClearField(field)
        assert paper == committed and paper.base_lr == pytest.approx(0.01)
        sources = [layer.data_param.source for layer in net.layer if layer.type == "Data"]
        assert sources == [str(tmp_path / "train_lmdb"), str(tmp_path / "test_original_lmdb")]


def test_ete_trains_from_scratch_with_its_own_schedule_shortened_by_smoke(tmp_path, caffe):
    write_count_only_lmdb(tmp_path / "train_aug8_lmdb", 11520)
    write_count_only_lmdb(tmp_path / "test_original_lmdb", 360)
    schedule = lambda s: (s.type, s.base_lr, s.max_iter, s.iter_size, s.stepsize, s.snapshot,  # noqa: E731
                          s.test_interval, list(s.test_iter))
    solver_path = training.default_solver("ETE")
    paper, net = training.prepare(solver_path, "ETE", "paper", tmp_path)
    assert schedule(paper) == ("SGD", pytest.approx(0.01), 5400, 1, 2160, 540, 540, [6])
    smoke, _ = training.prepare(solver_path, "ETE", "smoke", tmp_path)
    assert schedule(smoke) == ("SGD", pytest.approx(0.01), 90, 1, 36, 30, 30, [6])
    assert [layer.data_param.source for layer in net.layer if layer.type == "Data"] == [
        str(tmp_path / "train_aug8_lmdb"), str(tmp_path / "test_original_lmdb")]
    assert train_tool.init_weights(None, "ETE") is None
    with pytest.raises(UserError, match="ETE is trained from scratch: drop --weights"):
        train_tool.init_weights(Path("squeezenet.caffemodel"), "ETE")


def test_smoke_profile_writes_its_own_base_lr_and_paper_keeps_the_solver(tmp_path, caffe):
    """The smoke profile's 18-image updates diverge at the paper's Adam 0.01 (docs/training.md), so its
    run-folder solver carries base_lr 1e-4; the paper profile's is the committed solver, base_lr included."""
    lmdb_dir = tmp_path / "lmdb"
    write_count_only_lmdb(lmdb_dir / "train_lmdb", 1440)
    write_count_only_lmdb(lmdb_dir / "test_original_lmdb", 360)
    assert training.PROFILES["smoke"].base_lr == 1e-4 and training.PROFILES["paper"].base_lr is None
    for variant in VARIANTS:
        committed = training.read_proto(training.default_solver(variant), caffe_pb2.SolverParameter())
        for profile, expected in (("smoke", 1e-4), ("paper", committed.base_lr)):
            solver, net = training.prepare(training.default_solver(variant), variant, profile, lmdb_dir)
            run = tmp_path / profile / variant
            training.write_run_files(run, solver, net, ["header"])
            written = training.read_proto(run / training.SOLVER_FILE, caffe_pb2.SolverParameter())
            assert written.base_lr == pytest.approx(expected, rel=1e-6)
            assert (written.type, written.lr_policy, written.gamma) == (committed.type, committed.lr_policy,
                                                                         committed.gamma)
        flag, _ = training.prepare(training.default_solver(variant), variant, "paper", lmdb_dir, base_lr=3e-5)
        assert flag.base_lr == pytest.approx(3e-5)
        flag, _ = training.prepare(training.default_solver(variant), variant, "smoke", lmdb_dir, base_lr=0.01)
        assert flag.base_lr == pytest.approx(0.01)


def test_base_lr_flag_must_be_positive():
    result = train("--variant", "SDC-SN", "--base-lr", "0")
    assert result.returncode == 2 and "--base-lr: must be > 0" in result.stderr


def test_test_pass_reads_every_test_record_once(tmp_path, caffe):
    write_count_only_lmdb(tmp_path / "train_lmdb", 10)
    write_count_only_lmdb(tmp_path / "test_original_lmdb", 100)
    solver, net = training.prepare(training.default_solver("SDC-SN"), "SDC-SN", "smoke", tmp_path)
    test_data = [layer for layer in net.layer if layer.type == "Data"][1]
    assert (test_data.data_param.batch_size, solver.test_iter[0]) == (10, 10)
    assert training.largest_divisor_up_to(360, 18) == 18 and training.largest_divisor_up_to(37, 18) == 1


def test_resume_point_skips_an_incomplete_solverstate(tmp_path):
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    for iteration in (10, 20, 30):
        (snapshots / f"SDC-SN_iter_{iteration}.caffemodel").write_bytes(b"model")
        state = caffe_pb2.SolverState(iter=iteration, learned_net=f"snapshots/SDC-SN_iter_{iteration}.caffemodel",
                                      current_step=0)
        (snapshots / f"SDC-SN_iter_{iteration}.solverstate").write_bytes(state.SerializeToString())
    assert training.resume_point(tmp_path, "SDC-SN", 30) == (snapshots / "SDC-SN_iter_30.solverstate", 30)
    complete = (snapshots / "SDC-SN_iter_30.solverstate").read_bytes()
    (snapshots / "SDC-SN_iter_30.solverstate").write_bytes(complete[:-2])  # cut inside the last field
    assert training.resume_point(tmp_path, "SDC-SN", 30) == (snapshots / "SDC-SN_iter_20.solverstate", 20)
    (snapshots / "SDC-SN_iter_20.caffemodel").unlink()
    assert training.resume_point(tmp_path, "SDC-SN", 30) == (snapshots / "SDC-SN_iter_10.solverstate", 10)
    assert training.resume_point(tmp_path, "SDC-SN-ELF", 30) == (None, 0)


def one_line_error(result):
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    return result.stderr


def test_missing_weights_names_the_file_and_the_fix(tiny, tmp_path):
    run = tmp_path / "run"
    args = tiny_args(tiny, run)
    args[args.index("--weights") + 1] = str(tmp_path / "nope.caffemodel")
    message = one_line_error(train(*args))
    assert "nope.caffemodel not found" in message and "tools/fetch_pretrained.py" in message
    assert not run.exists()


def test_missing_lmdb_names_the_folder_and_the_tool(tiny, tmp_path):
    lmdb_dir = tmp_path / "lmdb"
    shutil.copytree(tiny / "lmdb" / "train_lmdb", lmdb_dir / "train_lmdb")
    args = tiny_args(tiny, tmp_path / "run")
    args[args.index("--lmdb-dir") + 1] = str(lmdb_dir)
    message = one_line_error(train(*args))
    assert f"no LMDB at {lmdb_dir / 'test_original_lmdb'}" in message and "tools/build_lmdb.py" in message
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA driver")
def test_gpu_without_a_gpu_fails_before_writing_anything(tiny, tmp_path):
    message = one_line_error(train(*tiny_args(tiny, tmp_path / "run", "--gpu", "0")))
    assert "--gpu 0" in message
    assert not (tmp_path / "run").exists()


def test_help():
    result = train("--help")
    assert result.returncode == 0 and "--variant" in result.stdout and "resumes" in result.stdout


def test_a_folder_with_foreign_snapshots_is_not_trained_over(tmp_path, caffe):
    """tools/examples/*.sh snapshot into runs/paper/<variant>/snapshots without a solver.prototxt."""
    write_count_only_lmdb(tmp_path / "lmdb" / "train_lmdb", 4)
    write_count_only_lmdb(tmp_path / "lmdb" / "test_original_lmdb", 4)
    solver, net = training.prepare(training.default_solver("SDC-SN"), "SDC-SN", "paper", tmp_path / "lmdb")
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    (run / "snapshots" / "SDC-SN_iter_200.solverstate").write_bytes(b"")
    with pytest.raises(UserError, match="not a tools/train.py run folder"):
        training.check_same_run(run, solver, net)
    training.write_run_files(run, solver, net, ["header"])
    training.check_same_run(run, solver, net)
    solver.base_lr = 0.001
    with pytest.raises(UserError, match="solver.prototxt differs in base_lr from"):
        training.check_same_run(run, solver, net)


@pytest.mark.parametrize("variant", VARIANTS)
def test_example_scripts_call_caffe_train_with_the_committed_solver(variant):
    script = REPO / "tools" / "examples" / f"train_{variant}.sh"
    text = script.read_text()
    assert os.access(script, os.X_OK) and subprocess.run(["sh", "-n", str(script)]).returncode == 0
    assert f"caffe train --solver=solvers/{variant}_solver.prototxt" in text and '"$@"' in text
    solver = training.read_proto(REPO / "solvers" / f"{variant}_solver.prototxt", caffe_pb2.SolverParameter())
    assert f"mkdir -p {Path(solver.snapshot_prefix).parent}\n" in text


def test_a_run_folder_in_use_is_one_line_naming_the_holder(tiny, tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); "
                               "from sdc import lock; cm = lock.held(sys.argv[2], 'run folder'); cm.__enter__(); "
                               "print('held', flush=True); time.sleep(60)", str(REPO / "tools"), str(run)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        message = one_line_error(train(*tiny_args(tiny, run)))
        assert f"run folder {run} is in use by pid {holder.pid} since " in message
        assert not run.exists()
    finally:
        holder.kill()
        holder.wait()
    assert train(*tiny_args(tiny, run, "--max-iter", "2")).returncode == 0  # the kernel dropped the lock
    assert lock.lock_path(run).is_file()


def test_weights_and_run_folder_under_a_path_with_a_space_and_a_comma(tiny, tmp_path):
    """Caffe splits --weights at commas: the path goes relative to the run folder, which drops the comma."""
    home = tmp_path / "sdc caffe,1"
    shutil.copytree(tiny, home)
    run = home / "run"
    result = train("--variant", "SDC-SN", "--solver", str(home / "solver.prototxt"), "--run-dir", str(run),
                   "--weights", str(home / "init.caffemodel"), "--lmdb-dir", str(tiny / "lmdb"), "--max-iter", "2")
    assert result.returncode == 0, result.stderr + result.stdout[-2000:]
    record = json.loads((run / "provenance.json").read_text())
    assert record["sessions"][0]["caffe_command"][-1] == "--weights=../init.caffemodel"
