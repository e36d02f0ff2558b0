"""Same machine, same command: bit-identical training. SDC-SN (the committed train_val net, dropout
included) trained twice for a few iterations with the real `caffe train` must give byte-identical
weights and losses. What makes them equal: Caffe's RNG seeded by the solver's random_seed (weight
fillers, dropout), LMDB records read in key order, and the same OpenBLAS kernels, chosen per CPU model
(docs/reliability.md has what changes across machines, measured)."""
import re
import subprocess
from pathlib import Path

from sdc import caffe_env

REPO = Path(__file__).resolve().parents[1]
SOLVER = """net: "{net}"
type: "Adam" base_lr: 0.001 momentum: 0.9 momentum2: 0.999 lr_policy: "fixed"
max_iter: 3 iter_size: 1 display: 1 clip_gradients: 35
test_iter: 1 test_interval: 1000 test_initialization: false
snapshot_after_train: true snapshot_prefix: "{prefix}" random_seed: 42 solver_mode: CPU
"""


def train(lmdb_root, name):
    """3 iterations from the seeded random init; (final caffemodel bytes, logged losses)."""
    solver = lmdb_root / f"{name}_solver.prototxt"
    solver.write_text(SOLVER.format(net=REPO / "prototxt" / "SDC-SN_train_val.prototxt", prefix=f"{name}/snap"))
    (lmdb_root / name).mkdir()
    run = subprocess.run([str(caffe_env.caffe_bin()), "train", f"--solver={solver.name}"], cwd=lmdb_root,
                         capture_output=True, text=True, timeout=600, env={"GLOG_logtostderr": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    losses = re.findall(r"Iteration (\d+) \(.*\), loss = (\S+)", run.stderr)
    return (lmdb_root / name / "snap_iter_3.caffemodel").read_bytes(), losses


def test_training_twice_gives_identical_weights(lmdb_root):
    first, first_losses = train(lmdb_root, "first")
    second, second_losses = train(lmdb_root, "second")
    assert [i for i, _ in first_losses] == ["0", "1", "2"]
    assert len(set(loss for _, loss in first_losses)) == 3  # the net trained: every update changed the loss
    assert second_losses == first_losses
    assert len(first) > 4 * 738_502 and second == first  # SDC-SN has 738,502 float32 parameters
