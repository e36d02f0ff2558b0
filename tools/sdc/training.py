"""Training runs: the solver and net rewritten into a run folder, the schedule of a profile, resume.

`caffe train` runs with the run folder as its working directory. The folder holds solver.prototxt
(net: "train_val.prototxt", snapshot_prefix: "snapshots/<variant>") and train_val.prototxt (LMDB
sources as absolute paths), so a solverstate's learned_net ("snapshots/..._iter_N.caffemodel")
resolves wherever the folder is moved.
"""
import re
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from google.protobuf.message import DecodeError

from . import atomic, lmdb_io, paths
from .caffe_env import caffe_pb2, read_proto
from .errors import UserError
from .variants import VARIANTS

FROM_SCRATCH = ("ETE",)   # the Table 3/4 baseline CNN: no ImageNet initialisation
MODELS = VARIANTS + FROM_SCRATCH
SOLVER_FILE = "solver.prototxt"
NET_FILE = "train_val.prototxt"
SNAPSHOT_DIR = "snapshots"
FINAL_MODEL = "final.caffemodel"
BATCHINGS = ("literal", "equivalent")


@dataclass(frozen=True)
class Profile:
    """A schedule shape: None keeps the solver's own value. The lr steps stay at the same fractions
    of max_iter; ``snapshots`` and ``tests`` are how many of each the run makes; ``base_lr``
    replaces the solver's base learning rate."""
    max_iter: int = None
    iter_size: int = None
    snapshots: int = None
    tests: int = None
    base_lr: float = None


PROFILES = {
    "paper": Profile(),
    # 18-image updates instead of the paper's 180: Adam at the paper's 0.01 collapses to a constant
    # prediction within 30 iterations; 1e-4 reaches test accuracy 0.99 (measured, docs/training.md).
    # Two test passes (+ iteration 0): each costs ~15 s of the 30-minute smoke budget.
    "smoke": Profile(max_iter=120, iter_size=1, snapshots=4, tests=2, base_lr=1e-4),
}
# A net trained from scratch keeps its own SGD schedule; the smoke profile only shortens it
# (90 x 64 images: ETE reaches test accuracy 0.77 by iteration 60, docs/baselines.md).
SCRATCH_PROFILES = {"paper": Profile(), "smoke": Profile(max_iter=90, snapshots=3, tests=3)}


def profile_of(profile, model):
    return (SCRATCH_PROFILES if model in FROM_SCRATCH else PROFILES)[profile]


def default_solver(variant):
    return paths.SOLVERS_DIR / f"{variant}_solver.prototxt"


def lmdb_entries(path):
    """Number of records of the LMDB at ``path``; a UserError naming the tool that builds it."""
    return lmdb_io.LmdbSource(path, fix="build it with tools/build_lmdb.py (or pass --lmdb-dir)").count()


def largest_divisor_up_to(n, limit):
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def rewrite_net(net, lmdb_dir):
    """Point the Data layers at ``lmdb_dir``/<LMDB folder name> and make one test pass read every
    test record exactly once: the test batch becomes the largest divisor of the record count not
    above the prototxt's batch. Returns the test pass length (test_iter)."""
    pb2 = caffe_pb2()
    test_iter = None
    for layer in net.layer:
        if layer.type != "Data":
            continue
        source = Path(lmdb_dir).resolve() / Path(layer.data_param.source).name
        count = lmdb_entries(source)
        layer.data_param.source = str(source)
        if any(rule.phase == pb2.TEST for rule in layer.include):
            layer.data_param.batch_size = largest_divisor_up_to(count, layer.data_param.batch_size)
            test_iter = count // layer.data_param.batch_size
    if test_iter is None:
        raise UserError(f"net {net.name}: no Data layer for the TEST phase: use a train_val prototxt")
    return test_iter


def apply_schedule(solver, profile, max_iter=None, iter_size=None, base_lr=None):
    """Set the run length, batch and base_lr (flags over profile over solver), keeping the schedule's shape."""
    base = solver.max_iter
    snapshots = profile.snapshots or base // solver.snapshot
    tests = profile.tests or base // solver.test_interval
    target = max_iter or profile.max_iter or base
    solver.iter_size = iter_size or profile.iter_size or solver.iter_size
    if solver.HasField("stepsize"):
        solver.stepsize = max(1, round(solver.stepsize * target / base))
    solver.snapshot = max(1, target // snapshots)
    solver.test_interval = max(1, target // tests)
    solver.max_iter = target
    if base_lr is not None or profile.base_lr is not None:
        solver.base_lr = base_lr if base_lr is not None else profile.base_lr


def make_update_equivalent(solver, net):
    """Turn batch B x iter_size K with clip C into one forward of B*K images with clip C/K; return a label
    for the run, or None when K is already 1.

    Both compute the same update: each forward's loss is a mean over its batch, Caffe's
    SGDSolver::ApplyUpdate (inherited by Adam) clips the gradient *summed* over the K forwards at C
    and only then divides it by K (Normalize), so the clipped sum / K equals the mean gradient over
    B*K images clipped at C/K. Dropout masks are drawn per forward, so with dropout the two forms
    are equally valid but not bit-identical."""
    k = solver.iter_size
    if k == 1:
        return None
    train_data = [layer for layer in net.layer if layer.type == "Data"
                  and not any(rule.phase == caffe_pb2().TEST for rule in layer.include)]
    for layer in train_data:
        layer.data_param.batch_size *= k
    if solver.clip_gradients > 0:
        solver.clip_gradients /= k
    solver.iter_size = 1
    batch = train_data[0].data_param.batch_size
    clip = f", clip {solver.clip_gradients:g}" if solver.clip_gradients > 0 else ""
    return f"update-equivalent batching {batch}×1{clip}"


def set_intervals(solver, snapshot=None, test=None, display=None):
    """Snapshot, test, and log the training loss averaged over the last ``display`` updates, every N
    updates; none of them changes what is trained."""
    solver.snapshot = snapshot or solver.snapshot
    solver.test_interval = test or solver.test_interval
    if display:
        solver.display = solver.average_loss = display


def stop_after(solver, iteration):
    """Train only the first ``iteration`` updates of the schedule: the lr steps stay where they are, and a
    later command with a larger stop (or none) continues the same folder (CONTINUATION_FIELDS)."""
    if iteration > solver.max_iter:
        raise UserError(f"--stop-after {iteration} is beyond the schedule's max_iter {solver.max_iter}")
    solver.max_iter = iteration


def prepare(solver_path, variant, profile, lmdb_dir, max_iter=None, iter_size=None, base_lr=None):
    """(SolverParameter, NetParameter) for the run folder, from a repo-root-relative solver file."""
    pb2 = caffe_pb2()
    solver = read_proto(solver_path, pb2.SolverParameter())
    if not solver.net:
        raise UserError(f"{solver_path}: the solver must name its net with `net:` (a train_val prototxt)")
    if solver.snapshot <= 0 or solver.test_interval <= 0 or solver.max_iter <= 0:
        raise UserError(f"{solver_path}: max_iter, snapshot and test_interval must be > 0 "
                        "(snapshots make the run resumable)")
    net_path = Path(solver.net) if Path(solver.net).is_absolute() else paths.REPO / solver.net
    net = read_proto(net_path, pb2.NetParameter())
    test_iter = rewrite_net(net, lmdb_dir)
    solver.net = NET_FILE
    solver.snapshot_prefix = f"{SNAPSHOT_DIR}/{variant}"
    del solver.test_iter[:]
    solver.test_iter.append(test_iter)
    apply_schedule(solver, profile_of(profile, variant), max_iter, iter_size, base_lr)
    return solver, net


def adjust(solver, net, batching="literal", snapshot_interval=None, test_interval=None, stop=None,
           display=None):
    """Apply the options that keep the schedule of ``prepare``: the batching form, snapshot, test and
    display intervals, an early stop. Returns the label of what changes the run (the batching form), or None."""
    if batching not in BATCHINGS:
        raise UserError(f"batching must be one of {', '.join(BATCHINGS)}, not {batching!r}")
    label = make_update_equivalent(solver, net) if batching == "equivalent" else None
    set_intervals(solver, snapshot_interval, test_interval, display)
    if stop is not None:
        stop_after(solver, stop)
    return label


def proto_text(message, header):
    return "".join(f"# {line}\n" for line in header) + text_format.MessageToString(message)


def snapshot_path(run_dir, variant, iteration, ext):
    return Path(run_dir) / SNAPSHOT_DIR / f"{variant}_iter_{iteration}.{ext}"


def solverstates(run_dir, variant):
    """{iteration: path} of the solverstates in the run folder."""
    pattern = re.compile(re.escape(variant) + r"_iter_(\d+)\.solverstate$")
    found = {}
    for path in (Path(run_dir) / SNAPSHOT_DIR).glob("*.solverstate"):
        if match := pattern.match(path.name):
            found[int(match[1])] = path
    return found


def usable(state_path, run_dir):
    """A solverstate Caffe can restore: complete, and its learned_net exists. Caffe writes the
    caffemodel first and the solverstate last, fields in number order, current_step last; a kill
    during a snapshot leaves a file that does not parse or lacks current_step."""
    state = caffe_pb2().SolverState()
    try:
        state.ParseFromString(Path(state_path).read_bytes())
    except DecodeError:
        return False
    return state.HasField("current_step") and (Path(run_dir) / state.learned_net).is_file()


def resume_point(run_dir, variant, max_iter):
    """(latest usable solverstate or None, iteration reached); iteration == max_iter means done."""
    for iteration, path in sorted(solverstates(run_dir, variant).items(), reverse=True):
        if iteration <= max_iter and usable(path, run_dir):
            return path, iteration
    return None, 0


def differing_fields(old, new, ignore=()):
    names = {field.name for message in (old, new) for field, _ in message.ListFields()} - set(ignore)
    return sorted(name for name in names if getattr(old, name) != getattr(new, name))


# Solver fields a continued run may change: where training stops (the lr steps, stepsize, stay where they
# are) and how often it snapshots, tests and logs; none of them changes the weights an update computes.
CONTINUATION_FIELDS = ("max_iter", "snapshot", "test_interval", "display", "average_loss")


def check_same_run(run_dir, solver, net):
    """A run folder that already holds snapshots may only be continued with the same solver and net,
    except for CONTINUATION_FIELDS."""
    for name, message in ((SOLVER_FILE, solver), (NET_FILE, net)):
        path = Path(run_dir) / name
        if not path.is_file():
            raise UserError(f"{run_dir} holds snapshots but no {name}: it is not a tools/train.py run folder "
                            "(tools/examples/*.sh write there too); pass another --run-dir")
        if fields := differing_fields(read_proto(path, type(message)()), message, ignore=CONTINUATION_FIELDS):
            raise UserError(f"{path} differs in {', '.join(fields)} from what this command would train: "
                            "rerun with the original arguments, use another --run-dir, or delete the folder")


def prune_snapshots(run_dir, variant, keep, below=None):
    """Delete all but the newest ``keep`` snapshots (solverstate and caffemodel) older than ``below``."""
    older = sorted(i for i in solverstates(run_dir, variant) if below is None or i < below)
    for iteration in older[:max(0, len(older) - keep)]:
        for ext in ("solverstate", "caffemodel"):
            snapshot_path(run_dir, variant, iteration, ext).unlink(missing_ok=True)


def write_run_files(run_dir, solver, net, header):
    run_dir = Path(run_dir)
    (run_dir / SNAPSHOT_DIR).mkdir(parents=True, exist_ok=True)  # Caffe probes it at start-up
    atomic.write_text(run_dir / SOLVER_FILE, proto_text(solver, header))
    atomic.write_text(run_dir / NET_FILE, proto_text(net, header))
