"""Caffe's Adam update, as the paper's solver settings rely on, against an independent NumPy model.

Three solver steps of a tiny MLP with iter_size 2 (distinct data in each sub-iteration, read from
an LMDB by Caffe's Data layer), global-L2 gradient clipping, lr_mult/decay_mult != 1, weight decay
and a step learning-rate policy that changes the rate at iteration 2. The NumPy side computes the
gradients itself and applies the update as Caffe's SGDSolver::ApplyUpdate + AdamSolver document it:
  clip(sum of iter_size gradients) -> /iter_size -> + weight_decay*decay_mult*w -> Adam
  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w -= lr*lr_mult * sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)
  lr = base_lr * gamma^floor(iter/stepsize)
"""
import lmdb
import numpy as np
import pytest

BATCH, ITER_SIZE, STEPS, DIM, HIDDEN, CLASSES = 2, 2, 3, 5, 4, 3
SOLVER = dict(base_lr=0.01, momentum=0.9, momentum2=0.999, delta=1e-8, gamma=0.1, stepsize=2,
              weight_decay=0.05, clip_gradients=0.5)
# (weight lr_mult, weight decay_mult, bias lr_mult, bias decay_mult) per layer
MULTS = {"ip1": (2.0, 0.5, 3.0, 0.0), "ip2": (1.0, 1.0, 1.0, 1.0)}

NET = """
name: "solver_semantics"
layer {{ name: "data" type: "Data" top: "data" top: "label"
  data_param {{ source: "{lmdb}" backend: LMDB batch_size: {batch} }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
  param {{ lr_mult: {m[ip1][0]} decay_mult: {m[ip1][1]} }} param {{ lr_mult: {m[ip1][2]} decay_mult: {m[ip1][3]} }}
  inner_product_param {{ num_output: {hidden}
    weight_filler {{ type: "gaussian" std: 0.5 }} bias_filler {{ type: "constant" value: 0.1 }} }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }}
layer {{ name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param {{ num_output: {classes}
    weight_filler {{ type: "gaussian" std: 0.5 }} bias_filler {{ type: "constant" value: -0.1 }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }}
"""

SOLVER_TEXT = """
net: "{net}"
type: "Adam"
base_lr: {base_lr}
momentum: {momentum}
momentum2: {momentum2}
delta: {delta}
lr_policy: "step"
gamma: {gamma}
stepsize: {stepsize}
iter_size: {iter_size}
clip_gradients: {clip_gradients}
weight_decay: {weight_decay}
regularization_type: "L2"
max_iter: {steps}
display: 0
snapshot_after_train: false
random_seed: 7
solver_mode: CPU
"""


def write_lmdb(path, x, y, caffe_pb2):
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i, (xi, yi) in enumerate(zip(x, y)):
            datum = caffe_pb2.Datum(channels=DIM, height=1, width=1, label=int(yi))
            datum.float_data.extend(xi.astype(np.float32).tolist())
            txn.put(f"{i:08d}".encode(), datum.SerializeToString())
    env.close()


def gradients(params, x, y):
    """Gradient of SoftmaxWithLoss (mean over the batch) of ip2(relu(ip1(x))), float64."""
    w1, b1, w2, b2 = params
    z1 = x @ w1.T + b1
    a1 = np.maximum(z1, 0)
    z2 = a1 @ w2.T + b2
    p = np.exp(z2 - z2.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dz2 = (p - np.eye(CLASSES)[y]) / len(x)
    dz1 = (dz2 @ w2) * (z1 > 0)
    return [dz1.T @ x, dz1.sum(0), dz2.T @ a1, dz2.sum(0)]


def numpy_adam(params, batches, s=SOLVER):
    """Apply STEPS Caffe-Adam updates; returns the final params and how many steps were clipped."""
    lr_mults = [MULTS["ip1"][0], MULTS["ip1"][2], MULTS["ip2"][0], MULTS["ip2"][2]]
    decay_mults = [MULTS["ip1"][1], MULTS["ip1"][3], MULTS["ip2"][1], MULTS["ip2"][3]]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    clipped = 0
    for it in range(STEPS):
        grads = [np.zeros_like(p) for p in params]
        for x, y in batches[it * ITER_SIZE:(it + 1) * ITER_SIZE]:
            grads = [g + d for g, d in zip(grads, gradients(params, x, y))]
        norm = np.sqrt(sum((g ** 2).sum() for g in grads))
        if norm > s["clip_gradients"]:
            grads = [g * s["clip_gradients"] / norm for g in grads]
            clipped += 1
        rate = s["base_lr"] * s["gamma"] ** (it // s["stepsize"])
        t = it + 1
        correction = np.sqrt(1 - s["momentum2"] ** t) / (1 - s["momentum"] ** t)
        new = []
        for i, (p, g) in enumerate(zip(params, grads)):
            g = g / ITER_SIZE + s["weight_decay"] * decay_mults[i] * p
            m[i] = s["momentum"] * m[i] + (1 - s["momentum"]) * g
            v[i] = s["momentum2"] * v[i] + (1 - s["momentum2"]) * g * g
            new.append(p - rate * lr_mults[i] * correction * m[i] / (np.sqrt(v[i]) + s["delta"]))
        params = new
    return params, clipped


@pytest.fixture()
def solver_and_batches(caffe, tmp_path):
    from caffe.proto import caffe_pb2
    rng = np.random.default_rng(0)
    n = BATCH * ITER_SIZE * STEPS          # every sub-iteration sees its own two samples
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    y = rng.integers(0, CLASSES, size=n)
    write_lmdb(tmp_path / "lmdb", x, y, caffe_pb2)
    (tmp_path / "net.prototxt").write_text(NET.format(lmdb=tmp_path / "lmdb", batch=BATCH, hidden=HIDDEN,
                                                      classes=CLASSES, m=MULTS))
    (tmp_path / "solver.prototxt").write_text(SOLVER_TEXT.format(
        net=tmp_path / "net.prototxt", iter_size=ITER_SIZE, steps=STEPS, **SOLVER))
    caffe.set_mode_cpu()
    solver = caffe.get_solver(str(tmp_path / "solver.prototxt"))
    batches = [(x[i:i + BATCH].astype(np.float64), y[i:i + BATCH]) for i in range(0, n, BATCH)]
    return solver, batches


def net_params(net):
    return [net.params[name][k].data.astype(np.float64).copy() for name in ("ip1", "ip2") for k in (0, 1)]


def test_adam_iter_size_clip_decay_and_step_policy_match_numpy(solver_and_batches):
    solver, batches = solver_and_batches
    initial = net_params(solver.net)
    expected, clipped = numpy_adam(initial, batches)
    solver.step(STEPS)
    assert solver.iter == STEPS
    got = net_params(solver.net)
    assert 0 < clipped, "the clipping threshold must bite in at least one step for this test to mean anything"
    for name, g, e, p0 in zip(["ip1.w", "ip1.b", "ip2.w", "ip2.b"], got, expected, initial):
        assert np.abs(e - p0).max() > 1e-4, f"{name} barely moved: the comparison would be vacuous"
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7, err_msg=name)


def test_reference_distinguishes_clipping_before_normalisation(solver_and_batches):
    """Guard the reference itself: clipping the /iter_size-normalised gradient instead (equivalent to a
    threshold iter_size times larger on the sum) must give visibly different weights."""
    solver, batches = solver_and_batches
    initial = net_params(solver.net)
    expected, _ = numpy_adam(initial, batches)
    normalised_first = dict(SOLVER, clip_gradients=SOLVER["clip_gradients"] * ITER_SIZE)
    alternative, _ = numpy_adam(initial, batches, normalised_first)
    assert max(np.abs(a - e).max() for a, e in zip(alternative, expected)) > 1e-4
