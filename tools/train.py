#!/usr/bin/env python3
"""Fine-tune one SDC variant (or train the ETE baseline from scratch) with the real `caffe train`,
in a resumable run folder.

    tools/train.py --variant SDC-SN|SDC-SN-ELF|SDC-SN-ELF-MRF|ETE [--profile smoke|paper] [--run-dir runs/<profile>/<variant>]
                   [--weights FILE] [--solver solvers/<variant>_solver.prototxt]
                   [--lmdb-dir datasets/work/lmdb] [--max-iter N] [--iter-size N] [--base-lr LR]
                   [--batching literal|equivalent] [--stop-after N] [--snapshot-interval N]
                   [--test-interval N] [--display N] [--keep-snapshots K] [--gpu N]

The run folder receives solver.prototxt and train_val.prototxt exactly as trained, Caffe's own log
train-<YYYYmmdd-HHMMSS>.log (also shown live), snapshots/, final.caffemodel (the max_iter snapshot),
learning_curve.csv / .png and provenance.json. Running the same command again resumes from the
latest snapshot; a finished run is left alone. Ctrl-C (SIGINT) or SIGTERM makes Caffe snapshot and
stop (resumable).
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sdc import atomic, caffe_env, caffe_log, cli, gpu, hashing, lmdb_io, lock, paths, provenance, training, weights
from sdc.errors import UserError, run_main

INTERRUPTED = 130  # exit status of a run stopped by Ctrl-C, as a shell reports SIGINT


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--variant", required=True, choices=training.MODELS,
                        help="ETE trains from scratch (no --weights) on train_aug8_lmdb")
    parser.add_argument("--profile", default="paper", choices=sorted(training.PROFILES),
                        help="paper: the solver's schedule; smoke: 120 iterations, iter_size 1, base_lr 1e-4, "
                             "4 snapshots and 2 test passes (ETE: 90 iterations of its own schedule, 3 and 3) "
                             "(default: paper)")
    parser.add_argument("--solver", type=Path,
                        help="solver whose net and LMDB names are used (default solvers/<variant>_solver.prototxt; "
                             "relative paths inside it are relative to the repo root)")
    parser.add_argument("--run-dir", type=Path, help="default: runs/<profile>/<variant>")
    parser.add_argument("--weights", type=Path,
                        help="ImageNet initialisation (default: pretrained/weights/squeezenet_v1.0.caffemodel, "
                             "else squeezenet_v1.0_dc.caffemodel)")
    cli.add_lmdb_dir(parser, "folder of train_lmdb and test_original_lmdb")
    parser.add_argument("--max-iter", type=positive_int, help="override the profile's max_iter "
                        "(lr steps, snapshots and test passes are rescaled with it)")
    parser.add_argument("--iter-size", type=positive_int, help="override the profile's iter_size")
    parser.add_argument("--base-lr", type=positive_float, metavar="LR",
                        help="override the profile's base_lr (paper: the solver's; smoke: see docs/training.md)")
    parser.add_argument("--batching", choices=training.BATCHINGS, default="literal",
                        help="equivalent: one forward of batch x iter_size images with clip_gradients / iter_size, "
                             "the same update as the literal form (default: literal)")
    parser.add_argument("--stop-after", type=positive_int, metavar="N",
                        help="train only the first N updates of the schedule (lr steps unchanged); the same "
                             "command with a larger N, or without, continues the folder")
    parser.add_argument("--snapshot-interval", type=positive_int, metavar="N",
                        help="snapshot every N updates (default: the profile's)")
    parser.add_argument("--test-interval", type=positive_int, metavar="N",
                        help="test pass every N updates (default: the profile's)")
    parser.add_argument("--display", type=positive_int, metavar="N",
                        help="log the training loss every N updates, averaged over those N (default: the solver's "
                             "10 and 10)")
    parser.add_argument("--keep-snapshots", type=positive_int, metavar="K",
                        help="keep only the newest K snapshots (default: all)")
    cli.add_gpu(parser, "train on GPU N (needs a CUDA build of Caffe)")
    return parser.parse_args(argv)


def init_weights(path, variant):
    """The ImageNet initialisation of a fine-tuned variant; None for a net trained from scratch."""
    if variant in training.FROM_SCRATCH:
        if path is not None:
            raise UserError(f"{variant} is trained from scratch: drop --weights {path}")
        return None
    if path is None:
        return weights.imagenet_weights()
    if not path.is_file():
        raise UserError(f"weights file {path} not found: run tools/fetch_pretrained.py squeezenet_v1.0 "
                        "(offline: tools/decode_deep_compression.py --from DIR) or pass an existing --weights FILE")
    return path.resolve()


def new_log_path(run_dir):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = run_dir / f"train-{stamp}.log", 1
    while path.exists():  # two sessions started within one second
        path, n = run_dir / f"train-{stamp}-{n}.log", n + 1
    return path


SNAPSHOT_LINE = "Snapshotting solver state to binary proto file "


def run_caffe(command, cwd, log_path, on_snapshot=None):
    """Run ``command`` with its output shown and copied into ``log_path``; return its exit status.

    While it runs, SIGINT and SIGTERM sent to this process become a SIGINT to Caffe, whose
    --sigint_effect=stop default makes it snapshot and stop (a Ctrl-C from a terminal reaches Caffe
    directly too, as the same process group; a second SIGINT changes nothing). ``on_snapshot(name)``
    is called when Caffe starts writing a solverstate.
    """
    env = {**os.environ, "GLOG_logtostderr": "1", "GLOG_minloglevel": "0"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace")
        forward = lambda *_: proc.send_signal(signal.SIGINT)  # noqa: E731
        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for line in proc.stdout:
                sys.stdout.write(line)
                log.write(line)
                log.flush()
                if on_snapshot and SNAPSHOT_LINE in line:
                    on_snapshot(line.split(SNAPSHOT_LINE, 1)[1].strip())
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return proc.wait()


def solver_note(solver, variant):
    """'paper values, SGD instead of the stated Adam' for a solver whose update rule is not the committed
    one; for the paper's Adam at its base_lr 0.01, what the measured runs showed it does."""
    committed = caffe_env.read_proto(training.default_solver(variant), type(solver)())
    if solver.type != committed.type:
        return f"paper values, {solver.type} instead of the stated {committed.type}"
    if solver.type == "Adam" and solver.base_lr >= 0.01 - 1e-9:  # base_lr is a float32
        return "Adam at base_lr 0.01 collapsed to one class in every measured run (docs/training.md)"
    return None


def schedule_label(args, notes=()):
    """How the run's schedule relates to the paper's: shown in the run files, curve title and provenance.
    ``notes`` say what else differs from the committed solver (update rule, batching form)."""
    overrides = [f"--{name.replace('_', '-')} {value:g}" for name, value in
                 (("max_iter", args.max_iter), ("iter_size", args.iter_size), ("base_lr", args.base_lr))
                 if value is not None]
    if args.profile == "paper" and not overrides:
        head = "paper profile: the committed solver's schedule"
    else:
        head = " ".join([f"{args.profile} profile", *overrides]) + ": NOT the paper's schedule"
    stop = [f"first {args.stop_after} updates"] if args.stop_after else []
    return "; ".join([head, *(note for note in notes if note), *stop])


def finalize(run_dir, variant, max_iter, label, complete=True):
    """Learning curve from all logs; final.caffemodel once the max_iter snapshot of a complete schedule exists."""
    rows = caffe_log.write_learning_curve(run_dir, f"{variant}, {label}")
    final = training.snapshot_path(run_dir, variant, max_iter, "caffemodel")
    if complete and final.is_file():
        with atomic.atomic_path(run_dir / training.FINAL_MODEL) as tmp:
            shutil.copyfile(final, tmp)
    return rows


def lmdb_record(net):
    record = {}
    for layer in net.layer:
        if layer.type == "Data":
            info = lmdb_io.read_info(layer.data_param.source) or {}
            record[layer.data_param.source] = {"entries": training.lmdb_entries(layer.data_param.source),
                                               "fingerprint": info.get("fingerprint")}
    return record


def previous_sessions(run_dir):
    return provenance.read(run_dir).get("sessions", [])


def write_provenance(run_dir, args, solver, net, init, sessions, label, schedule_max_iter):
    """provenance.json listing every session; a session killed before it ended keeps wall_s null."""
    provenance.write(
        run_dir, gpu=args.gpu, seeds={"solver_random_seed": solver.random_seed},
        wall_times={"caffe_train_all_sessions": round(sum(s["wall_s"] or 0 for s in sessions), 1),
                    "caffe_train_last_session": sessions[-1]["wall_s"]},
        variant=args.variant, profile=args.profile, schedule_label=label, batching=args.batching,
        solver_source=str(args.solver or training.default_solver(args.variant)),
        solver_sha256=hashing.sha256_file(run_dir / training.SOLVER_FILE),
        train_val_sha256=hashing.sha256_file(run_dir / training.NET_FILE),
        weights={"path": str(init), "sha1": hashing.sha1_file(init)} if init else "none: trained from scratch",
        lmdbs=lmdb_record(net), schedule={"base_lr": float(f"{solver.base_lr:.7g}"),  # float32 in the proto
                                          "max_iter": schedule_max_iter, "stop_after": args.stop_after,
                                          "iter_size": solver.iter_size,
                                          "train_batch": train_batch(net),
                                          "clip_gradients": float(f"{solver.clip_gradients:.7g}"),
                                          "stepsize": solver.stepsize, "snapshot": solver.snapshot,
                                          "test_interval": solver.test_interval, "test_iter": solver.test_iter[0]},
        sessions=sessions)


def train_batch(net):
    return next(layer.data_param.batch_size for layer in net.layer if layer.type == "Data")


def last_accuracy(rows):
    tested = [row for row in rows if "test_accuracy" in row]
    if not tested:
        return "no test accuracy logged"
    return f"test accuracy {tested[-1]['test_accuracy']:.4f} at iteration {tested[-1]['iteration']}"


def main(argv=None):
    args = parse_args(argv)
    if args.gpu is not None:
        gpu.require(args.gpu)
    solver_path = args.solver or training.default_solver(args.variant)
    init = init_weights(args.weights, args.variant)
    solver, net = training.prepare(solver_path, args.variant, args.profile, args.lmdb_dir,
                                   args.max_iter, args.iter_size, args.base_lr)
    schedule_max_iter = solver.max_iter
    batching = training.adjust(solver, net, args.batching, args.snapshot_interval, args.test_interval,
                               args.stop_after, args.display)
    label = schedule_label(args, [solver_note(solver, args.variant), batching])
    run_dir = (args.run_dir or paths.RUNS_DIR / args.profile / args.variant).resolve()
    weights_arg = weights.caffe_weights_arg(init, run_dir) if init else None
    with lock.held(run_dir, "run folder"):
        return train_in(run_dir, args, solver_path, solver, net, init, weights_arg, label, schedule_max_iter)


def train_in(run_dir, args, solver_path, solver, net, init, weights_arg, label, schedule_max_iter):
    """Continue or start the run in ``run_dir`` (its lock held); returns the exit status."""
    complete = solver.max_iter == schedule_max_iter  # not stopped early by --stop-after
    if training.solverstates(run_dir, args.variant):
        training.check_same_run(run_dir, solver, net)
    state, reached = training.resume_point(run_dir, args.variant, solver.max_iter)
    if reached == solver.max_iter:
        if complete and not (run_dir / training.FINAL_MODEL).is_file():
            finalize(run_dir, args.variant, solver.max_iter, label)
        print(f"{run_dir} is already trained to max_iter {reached} ({state.name}): nothing to do")
        return 0

    training.write_run_files(run_dir, solver, net, [
        f"Written by tools/train.py --profile {args.profile} from {solver_path}.",
        f"Schedule: {label}.",
        "caffe train runs with this folder as its working directory."])
    command = [str(caffe_env.caffe_bin()), "train", f"--solver={training.SOLVER_FILE}"]
    if state:
        command.append(f"--snapshot={state.relative_to(run_dir)}")
    elif init:
        command.append(f"--weights={weights_arg}")
    if args.gpu is not None:
        command.append(f"--gpu={args.gpu}")
    log_path = new_log_path(run_dir)
    start = f"resuming from {state.name}" if state else f"starting from {init or 'scratch'}"
    print(f"{start}; "
          f"max_iter {solver.max_iter}; log {log_path}", flush=True)
    earlier = previous_sessions(run_dir)
    session = {"command": sys.argv, "caffe_command": command, "log": log_path.name,
               "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "resumed_from": state.name if state else None, "wall_s": None, "exit_status": None}
    write_provenance(run_dir, args, solver, net, init, earlier + [session], label, schedule_max_iter)
    prune = None
    if args.keep_snapshots:
        def prune(name):  # the solverstate being written counts as one of the K
            iteration = int(name.rsplit("_iter_", 1)[1].split(".")[0])
            training.prune_snapshots(run_dir, args.variant, args.keep_snapshots - 1, below=iteration)
    clock = time.monotonic()
    status = run_caffe(command, run_dir, log_path, on_snapshot=prune)
    wall = round(time.monotonic() - clock, 1)
    if args.keep_snapshots:
        training.prune_snapshots(run_dir, args.variant, args.keep_snapshots)

    rows = finalize(run_dir, args.variant, solver.max_iter, label, complete)
    _, reached = training.resume_point(run_dir, args.variant, solver.max_iter)
    session.update(wall_s=wall, exit_status=status, iteration_reached=reached)
    write_provenance(run_dir, args, solver, net, init, earlier + [session], label, schedule_max_iter)
    if status != 0:
        raise UserError(f"caffe train exited with status {status} (see {log_path}); snapshots reach iteration "
                        f"{reached}: fix the cause and run the same command again to resume")
    if reached < solver.max_iter:
        print(f"stopped at iteration {reached} of {solver.max_iter}: run the same command again to resume")
        return INTERRUPTED
    where = run_dir / training.FINAL_MODEL if complete else training.snapshot_path(
        run_dir, args.variant, reached, "caffemodel")
    print(f"done: {where}; {last_accuracy(rows)}; caffe train {wall} s ({label})")
    return 0


if __name__ == "__main__":
    run_main(main)
