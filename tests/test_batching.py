"""Update-equivalent batching: B x iter_size K with clip C trains the same weights as one forward of
B*K images with clip C/K (tools/train.py --batching equivalent), on the real SDC-SN-ELF-MRF net.

Caffe's SGDSolver::ApplyUpdate (Adam inherits it) clips the gradient summed over the K forwards and
only then divides it by K; each forward's loss is a mean over its batch. Dropout is removed here, since
its masks are drawn per forward; the per-forward batch is 2 instead of 18 to keep three updates cheap
(the committed iter_size 10 and clip 35 are kept)."""
import re
import subprocess
import sys
from pathlib import Path

import lmdb
import numpy as np
import pytest
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from sdc import lmdb_io, neu, paths, split, training
from test_train import caffemodel_params, write_lmdb

REPO = Path(__file__).resolve().parents[1]
VARIANT = "SDC-SN-ELF-MRF"
BATCH, UPDATES = 2, 3
CLIP_LINE = re.compile(r"Gradient clipping: scaling down gradients \(L2 norm ([\d.e+-]+) > ([\d.e+-]+)\)")


def write_neu_lmdb(path, neu_dir, count):
    """The first ``count`` images of the committed training list, as tools/build_lmdb.py stores them."""
    path.mkdir(parents=True)
    env = lmdb.open(str(path), map_size=1 << 30)
    with env.begin(write=True) as txn:
        for index, (rel, label) in enumerate(split.read_list(paths.SPLITS_DIR / "train.txt")[:count]):
            gray = neu.resize_bilinear(neu.load(neu_dir / rel), 256)
            txn.put(lmdb_io.record_key(index, rel), lmdb_io.encode(gray, label))
    env.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, caffe, neu_dir, decoded_caffemodel):
    """The committed net without dropout at batch 2, the committed Adam and SGD solvers pointing at it,
    the first 60 NEU training images (three updates of 20), and the ImageNet start weights (the new head
    layers are drawn from the solver's random_seed, so every run starts from the same weights)."""
    root = tmp_path_factory.mktemp("batching")
    committed = training.read_proto(training.default_solver(VARIANT), caffe_pb2.SolverParameter())
    write_neu_lmdb(root / "lmdb" / "train_lmdb", neu_dir, BATCH * committed.iter_size * UPDATES)
    write_lmdb(root / "lmdb" / "test_original_lmdb", 2, 256, 12)
    net = training.read_proto(REPO / committed.net, caffe_pb2.NetParameter())
    kept = [layer for layer in net.layer if layer.type != "Dropout"]
    assert len(kept) == len(net.layer) - 1  # drop9
    del net.layer[:]
    net.layer.extend(kept)
    for layer in net.layer:
        if layer.type == "Data":
            layer.data_param.source = str(root / "lmdb" / Path(layer.data_param.source).name)
            if layer.include[0].phase == caffe_pb2.TRAIN:
                layer.data_param.batch_size = BATCH
    (root / "net.prototxt").write_text(text_format.MessageToString(net))
    for name in (VARIANT, f"{VARIANT}_sgd"):
        solver = training.read_proto(REPO / "solvers" / f"{name}_solver.prototxt", caffe_pb2.SolverParameter())
        solver.net = str(root / "net.prototxt")
        (root / f"{name}.prototxt").write_text(text_format.MessageToString(solver))
    (root / "init.caffemodel").symlink_to(decoded_caffemodel)
    return root


def train(setup, run_dir, solver, updates, *extra):
    """(weights, solver history, [(gradient norm, clip)] of the clipped updates) after ``updates`` updates."""
    command = [sys.executable, str(REPO / "tools" / "train.py"), "--variant", VARIANT, "--solver", str(solver),
               "--run-dir", str(run_dir), "--weights", str(setup / "init.caffemodel"),
               "--lmdb-dir", str(setup / "lmdb"), "--stop-after", str(updates), "--test-interval", "1000", *extra]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    log = next(run_dir.glob("train-*.log")).read_text()
    norms = [(float(norm), float(clip)) for norm, clip in CLIP_LINE.findall(log)]
    state = caffe_pb2.SolverState()
    state.ParseFromString(training.snapshot_path(run_dir, VARIANT, updates, "solverstate").read_bytes())
    history = [np.array(blob.data) for blob in state.history]
    return caffemodel_params(training.snapshot_path(run_dir, VARIANT, updates, "caffemodel")), history, norms


def relative_difference(a, b):
    """The largest difference of two weight sets, relative to the largest magnitude of its blob."""
    return max(np.abs(x - y).max() / np.abs(x).max() for layer in a for x, y in zip(a[layer], b[layer]))


@pytest.mark.parametrize("solver_name", [VARIANT, f"{VARIANT}_sgd"])
def test_one_update_gets_the_same_clipped_gradient_in_both_forms(setup, tmp_path, solver_name):
    solver = setup / f"{solver_name}.prototxt"
    literal, literal_history, literal_norms = train(setup, tmp_path / "literal", solver, 1)
    equivalent, equivalent_history, equivalent_norms = train(setup, tmp_path / "equivalent", solver, 1,
                                                             "--batching", "equivalent")
    # Clipping is active, on a summed gradient K = 10 times the mean one.
    assert [clip for _, clip in literal_norms] == [35] and [clip for _, clip in equivalent_norms] == [3.5]
    assert literal_norms[0][0] == pytest.approx(10 * equivalent_norms[0][0], rel=1e-5)
    # The solver history after one update is lr * gradient (SGD momentum) or (1 - beta1) * gradient and
    # (1 - beta2) * gradient^2 (Adam): the update rule received the same clipped, regularised gradient.
    assert len(literal_history) == len(equivalent_history) > 0
    for a, b in zip(literal_history, equivalent_history):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(a).max())
    if solver_name.endswith("_sgd"):
        for layer in literal:
            for a, b in zip(literal[layer], equivalent[layer]):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, err_msg=layer)

    written = training.read_proto(tmp_path / "equivalent" / training.SOLVER_FILE, caffe_pb2.SolverParameter())
    net = training.read_proto(tmp_path / "equivalent" / training.NET_FILE, caffe_pb2.NetParameter())
    assert (written.iter_size, written.clip_gradients, written.max_iter, written.stepsize) == (1, 3.5, 1, 800)
    assert [layer.data_param.batch_size for layer in net.layer if layer.type == "Data"] == [20, 2]


def test_three_updates_stay_equal_and_one_forward_with_the_unscaled_clip_does_not(setup, tmp_path):
    """SGD, three updates. Adam is left out: it divides each weight's step by sqrt(v), so a weight whose
    gradient is within float rounding of zero takes a step of either sign in either form (19 of conv1's
    14,112 weights after one update); the history test above shows its input is the same."""
    solver = training.read_proto(setup / f"{VARIANT}_sgd.prototxt", caffe_pb2.SolverParameter())
    literal, _, literal_norms = train(setup, tmp_path / "literal", setup / f"{VARIANT}_sgd.prototxt", UPDATES)
    equivalent, _, _ = train(setup, tmp_path / "equivalent", setup / f"{VARIANT}_sgd.prototxt", UPDATES,
                             "--batching", "equivalent")
    net = training.read_proto(Path(solver.net), caffe_pb2.NetParameter())
    next(layer for layer in net.layer if layer.type == "Data").data_param.batch_size = BATCH * solver.iter_size
    (tmp_path / "net.prototxt").write_text(text_format.MessageToString(net))
    solver.net, solver.iter_size = str(tmp_path / "net.prototxt"), 1  # clip_gradients stays 35
    (tmp_path / "solver.prototxt").write_text(text_format.MessageToString(solver))
    unscaled, _, unscaled_norms = train(setup, tmp_path / "unscaled", tmp_path / "solver.prototxt", UPDATES)
    # The literal form clips every update; the first mean gradient's norm is between 3.5 and 35, so the
    # unscaled form leaves at least that update unclipped.
    assert len(literal_norms) == UPDATES and 35 < literal_norms[0][0] < 350
    assert len(unscaled_norms) < UPDATES
    assert relative_difference(literal, equivalent) < 1e-3
    assert relative_difference(literal, unscaled) > 1e-2
