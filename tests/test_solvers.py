"""The solver files: the paper's values, the documented choices, and Caffe accepting them as committed."""
import os
from pathlib import Path

import pytest
from caffe.proto import caffe_pb2
from google.protobuf import text_format


REPO = Path(__file__).resolve().parents[1]
SOLVERS = REPO / "solvers"
PAPER_SOLVERS = {"SDC-SN": "SDC-SN", "SDC-SN-ELF": "SDC-SN-ELF", "SDC-SN-ELF-MRF": "SDC-SN-ELF-MRF"}
SGD_SOLVERS = {f"{variant}_sgd": variant for variant in PAPER_SOLVERS}
ALL_SOLVERS = {**PAPER_SOLVERS, **SGD_SOLVERS}  # solver -> variant it trains
PAPER_VALUES = dict(base_lr=0.01, momentum=0.9, lr_policy="step", gamma=0.1, stepsize=800, iter_size=10,
                    clip_gradients=35.0)
CHOSEN_VALUES = dict(max_iter=2400, weight_decay=0.0002, regularization_type="L2", random_seed=42, snapshot=200,
                     test_interval=100, test_initialization=True)


def parse_solver(name):
    solver = caffe_pb2.SolverParameter()
    text_format.Parse((SOLVERS / f"{name}_solver.prototxt").read_text(), solver)
    return solver


def data_layers(variant):
    net = caffe_pb2.NetParameter()
    text_format.Parse((REPO / "prototxt" / f"{variant}_train_val.prototxt").read_text(), net)
    return {rule.phase: layer.data_param for layer in net.layer if layer.type == "Data" for rule in layer.include}


def test_the_solver_folder_holds_exactly_the_checked_files():
    # ETE_solver.prototxt (the from-scratch baseline): tests/test_baseline_nets.py
    assert {p.name for p in SOLVERS.glob("*.prototxt")} == {f"{s}_solver.prototxt" for s in (*ALL_SOLVERS, "ETE")}


@pytest.mark.parametrize("name", sorted(ALL_SOLVERS))
def test_solver_values(name):
    solver, variant = parse_solver(name), ALL_SOLVERS[name]
    for field, value in {**PAPER_VALUES, **CHOSEN_VALUES}.items():
        assert getattr(solver, field) == pytest.approx(value), field
    assert solver.net == f"prototxt/{variant}_train_val.prototxt" and (REPO / solver.net).is_file()
    assert solver.snapshot_prefix == f"runs/paper/{name}/snapshots/{variant}"
    assert solver.max_iter % solver.snapshot == 0 and solver.max_iter % solver.test_interval == 0
    data = data_layers(variant)
    assert data[caffe_pb2.TRAIN].batch_size * solver.iter_size == 180
    assert list(solver.test_iter) == [20] and data[caffe_pb2.TEST].batch_size * solver.test_iter[0] == 360
    if name in PAPER_SOLVERS:
        assert (solver.type, solver.momentum2) == ("Adam", pytest.approx(0.999))
    else:
        assert solver.type == "SGD" and not solver.HasField("momentum2")


@pytest.mark.parametrize("name", sorted(SGD_SOLVERS))
def test_sgd_solver_differs_from_the_paper_solver_only_in_the_update_rule(name):
    adam, sgd = parse_solver(SGD_SOLVERS[name]), parse_solver(name)
    assert sgd.snapshot_prefix == adam.snapshot_prefix.replace("/snapshots/", "_sgd/snapshots/")
    for solver in (adam, sgd):
        solver.ClearField("type")
        solver.ClearField("momentum2")
        solver.ClearField("snapshot_prefix")
    assert adam == sgd
    header = (SOLVERS / f"{name}_solver.prototxt").read_text().splitlines()[0]
    assert "NOT IN THE PAPER" in header


@pytest.mark.parametrize("name", sorted(ALL_SOLVERS))
def test_caffe_builds_the_solver_as_committed(caffe, lmdb_root, monkeypatch, name):
    """From a repo-root-like working dir (prototxt/ + the LMDBs + the snapshot folder Caffe probes)."""
    monkeypatch.chdir(lmdb_root)
    if not Path("prototxt").exists():
        os.symlink(REPO / "prototxt", "prototxt")
    solver_param = parse_solver(name)
    Path(solver_param.snapshot_prefix).parent.mkdir(parents=True, exist_ok=True)
    solver = caffe.get_solver(str(SOLVERS / f"{name}_solver.prototxt"))
    assert solver.iter == 0 and len(solver.test_nets) == 1
    assert solver.net.blobs["data"].data.shape == (18, 3, 256, 256)
    assert solver.test_nets[0].blobs["data"].data.shape == (18, 3, 256, 256)
    assert type(solver).__name__ == ("AdamSolver" if name in PAPER_SOLVERS else "SGDSolver")
