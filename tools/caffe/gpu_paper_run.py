#!/usr/bin/env python3
"""Train the paper's schedule on a GPU machine that has no build tools, no pycaffe, no lmdb and no
package index (Python 3 with numpy, Pillow, scikit-image, protobuf; NVIDIA's libraries in a venv),
in windows of one call each, every window continuing where the last one stopped.

    tools/caffe/gpu_paper_run.py prepare [--prefix P] [--kit DIR] [--lmdb-dir DIR] [--neu-archive FILE]   (here)
    tools/caffe/gpu_paper_run.py run [--budget S] [--concurrency K] [--kit DIR] [--out DIR]               (GPU machine)
    tools/caffe/adopt_gpu_runs.py FOLDER                                                                  (here, after)

prepare packs the kit (default .carry/gpu-paper, git-ignored): the CUDA build as a relocatable bundle
(default: the sm_90 build tools/caffe/install_caffe.sh --cuda --cuda-arch 90 made), NEU-CLS as an archive,
the py-lmdb wheel for the GPU machine's Python, the ImageNet weights (xz) while a fine-tuned job has
not started, the gate's nets, and KIT.json with the identity (builder fingerprint, record count, sha256 of
the records) of the LMDBs built here. It checks that the working tree plus the kit stay within what
one call carries (64 MiB); when the weights do not fit beside the returned runs, the jobs that need
them wait for a later window and prepare says so.

run, on the GPU machine, in one call (`run(command="python3 tools/caffe/gpu_paper_run.py run",
carry=[".carry/gpu-paper"], timeout_s=600)`):
  1. unpacks the bundle, installs the carried wheels into a folder on PYTHONPATH, finds cuBLAS,
     cuRAND, cuDNN and cudart (first under /opt/torch/.venv) and records GPU, driver, CUDA runtime
     and cuDNN versions;
  2. builds the LMDBs the jobs need with tools/build_lmdb.py from the carried NEU-CLS, and at the
     same time runs the gate: one forward/backward of each variant at batch 2 with the bundle's CPU
     path and on the GPU (cuDNN, NVIDIA_TF32_OVERRIDE=0), compared array by array on the relative L2
     error (--gate-rtol, default 1e-3; the largest relative max error is recorded beside it). It
     stops unless the gate passes and every LMDB equals the one built here;
  3. trains the jobs below with tools/train.py (--gpu 0, NVIDIA_TF32_OVERRIDE=0, a snapshot every
     epoch, the last two kept), each resumed from the run folder an earlier window returned, the
     fine-tuned ones one after the other in this order and, with --concurrency 2 (the default, or
     $SDC_PAPER_CONCURRENCY), ETE beside them:
       SDC-SN-ELF-MRF, SDC-SN-ELF, SDC-SN   solvers/<variant>_sgd_solver.prototxt, update-equivalent
                                            batching (180 x 1, clip 3.5): "paper values, SGD instead
                                            of the stated Adam"
       ETE                                  solvers/ETE_solver.prototxt (from scratch)
       SDC-SN-ELF-MRF_adam                  the paper's Adam as written, 16 updates only
     The SGD runs come first because they are the ones that learn; the paper's Adam at base_lr 0.01
     collapses to one class within a few updates, which 16 updates show.
  4. before --budget (default 560 s) runs out it sends SIGINT to every training, which makes Caffe
     snapshot and stop; each run folder keeps only its latest snapshot on an epoch boundary (the
     Data layer restarts its read position on resume, so only there does a resumed run read what an
     uninterrupted one would), and comes back as <job>.tar.gz (log, curve, provenance, the snapshot;
     final.caffemodel when finished), with session.json, summary.txt and logs.tar.gz: at most 8
     files, each checked against 16 MiB.
An unfinished fine-tuned run comes back as ~6 MB; beside the 10 MB working tree and the 46 MB of
bundle and NEU-CLS, a later call has room for one of them and ETE's, not two: hence one lane for the
fine-tuned jobs (docs/gpu_paper_run.md has the numbers).

--cpu runs the same steps on this machine's CPU with a kit prepared from the CPU build (--prefix):
the rehearsal in tests/test_gpu_session.py, with --max-iter/--stop-after for a tiny schedule.
"""
import argparse
import concurrent.futures
import contextlib
import ctypes
import glob
import importlib.metadata
import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import _init_paths  # noqa: F401  (tools/ on sys.path)
import compare_net_io
from sdc import atomic, hashing, paper_kit, paths
from sdc.errors import UserError, run_main
from sdc.variants import VARIANTS

REPO = paths.REPO
TOOLS = REPO / "tools"
CAFFE_TOOLS = TOOLS / "caffe"
CUDA_SEARCH = ("/opt/torch/.venv", "/opt", "/usr/local", "/usr/lib")
STOP_RESERVE_S = 75     # SIGINT this long before --budget ends: Caffe's iteration and snapshot, packing
KILL_RESERVE_S = 25     # what is still running this long before the end is killed
MIN_START_S = 30        # no training starts with less than this left before the SIGINT
TF32_ENV = {"NVIDIA_TF32_OVERRIDE": "0"}


# ---- prepare (here) ---------------------------------------------------------------------------
def cuda_prefix():
    py = REPO / ".venv" / "bin" / "python"
    run = subprocess.run([str(CAFFE_TOOLS / "install_caffe.sh"), "--cuda", "--cuda-arch", "90", "--python", str(py),
                          "--print-prefix"], capture_output=True, text=True)
    if run.returncode != 0:
        raise UserError("no CUDA build for sm_90: run tools/caffe/install_caffe.sh --cuda --cuda-arch 90 "
                        f"--python {py} (about 23 min on 2 cores), or pass --prefix")
    return Path(run.stdout.strip().splitlines()[-1])


def travel_bytes(kit):
    """Bytes one call carries: git's tracked and untracked-not-ignored files, plus the kit."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.split(b"\0")
    tree = sum((REPO / os.fsdecode(p)).stat().st_size for p in listed if p and (REPO / os.fsdecode(p)).is_file())
    kit_size = sum(p.stat().st_size for p in Path(kit).rglob("*") if p.is_file())
    return tree, kit_size


def pack_neu(neu_dir, dest):
    from sdc import neu
    root = neu.locate(neu_dir)
    neu.verified_files(root)
    with atomic.atomic_path(dest) as tmp:
        with open(tmp, "wb") as f:
            tar = subprocess.Popen(["tar", "-C", str(root.parent), "--sort=name", "--mtime=@0", "--owner=0",
                                    "--group=0", "-cf", "-", root.name], stdout=subprocess.PIPE)
            # xz -9 unless $XZ_OPT says otherwise (the CPU rehearsal packs faster, at -1)
            subprocess.run(["xz", "-T0", "-c"], stdin=tar.stdout, stdout=f, check=True,
                           env={**os.environ, "XZ_OPT": os.environ.get("XZ_OPT", "-9")})
            if tar.wait() != 0:
                raise UserError(f"tar failed on {root}")


def download_lmdb_wheel(dest, python_version):
    version = importlib.metadata.version("lmdb")
    run = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                          "--python-version", python_version, "--implementation", "cp",
                          "--platform", "manylinux2014_x86_64", "-d", str(dest), f"lmdb=={version}"],
                         capture_output=True, text=True)
    wheels = sorted(Path(dest).glob("lmdb-*.whl"))
    if run.returncode != 0 or not wheels:
        raise UserError(f"pip download lmdb=={version} for Python {python_version} failed "
                        f"({run.stderr.strip().splitlines()[-1:] or 'no wheel'}): check pip's index")
    return wheels[0]


def prepare(args):
    import make_session_nets
    from sdc import lmdb_io, provenance, weights
    prefix = Path(args.prefix) if args.prefix else cuda_prefix()
    states = {job.name: paper_kit.state(args.partial, job) for job in paper_kit.JOBS}
    identities = {target: paper_kit.lmdb_identity(Path(args.lmdb_dir) / lmdb_io.lmdb_name(target))
                  for target in paper_kit.LMDB_TARGETS}
    per_class = provenance.read(args.lmdb_dir).get("per_class")   # tools/build_lmdb.py --per-class, if any
    with atomic.atomic_path(args.kit) as kit:
        kit.mkdir()
        print(f"bundling {prefix}", file=sys.stderr)
        subprocess.run(["bash", str(CAFFE_TOOLS / "bundle_caffe.sh"), str(prefix), "--out", str(kit / paper_kit.BUNDLE)],
                       check=True, stdout=subprocess.DEVNULL)
        if not Path(args.neu_archive).is_file():
            print(f"packing NEU-CLS into {args.neu_archive}", file=sys.stderr)
            pack_neu(args.neu_dir, args.neu_archive)
        shutil.copyfile(args.neu_archive, kit / paper_kit.NEU_ARCHIVE)
        wheel = download_lmdb_wheel(kit / paper_kit.WHEELS, args.wheel_python)
        with contextlib.redirect_stdout(sys.stderr):
            make_session_nets.main([str(kit / paper_kit.GATE), "--batch", "2"])
        fresh = [name for name, s in states.items() if s == "fresh" and not paper_kit.job_named(name).from_scratch]
        tree, fixed = travel_bytes(kit)
        init = None
        waiting = []
        if fresh:
            source = Path(args.weights) if args.weights else weights.imagenet_weights()
            packed = kit / paper_kit.WEIGHTS / f"{source.name}.xz"
            packed.parent.mkdir()
            # The Deep-Compression stand-in holds 256 distinct values per layer: 5.0 MB -> 0.7 MB.
            packed.write_bytes(lzma.compress(source.read_bytes(), preset=9))
            if tree + fixed + packed.stat().st_size <= paper_kit.TRAVEL_LIMIT:
                init = source
            else:
                shutil.rmtree(packed.parent)
                waiting = fresh
        tree, total_kit = travel_bytes(kit)
        if tree + total_kit > paper_kit.TRAVEL_LIMIT:
            raise UserError(f"the working tree ({tree:,} bytes, untracked files included) and the kit "
                            f"({total_kit:,} bytes) exceed the {paper_kit.TRAVEL_LIMIT:,} bytes one call carries: "
                            "move large untracked files out of the working tree")
        info = {"git_commit": provenance.git_commit(),
                "caffe_build": json.loads((prefix.parent / "BUILD_INFO.json").read_text()),
                "lmdbs": identities, "per_class": per_class,
                "weights": init.name if init else None, "weights_sha1": hashing.sha1_file(init) if init else None,
                "wheel": wheel.name,
                "job_states_when_prepared": states, "waiting_for_room": waiting,
                "travel_bytes": {"working_tree": tree, "kit": total_kit, "limit": paper_kit.TRAVEL_LIMIT},
                "files": {str(p.relative_to(kit)): p.stat().st_size for p in sorted(kit.rglob("*")) if p.is_file()}}
        (kit / paper_kit.KIT_FILE).write_text(json.dumps(info, indent=1) + "\n")
    for name, s in states.items():
        note = " (waits: no room for the ImageNet weights this window)" if name in waiting else ""
        print(f"{name}: {s}{note}", file=sys.stderr)
    print(f"kit ready: {args.kit}; working tree {tree:,} + kit {total_kit:,} bytes of "
          f"{paper_kit.TRAVEL_LIMIT:,}", file=sys.stderr)
    print(args.kit)
    return 0


# ---- run (GPU machine) ------------------------------------------------------------------------
class Window:
    """One call on the GPU machine: its clock, its summary lines and its record."""

    def __init__(self, out, budget):
        self.started = time.monotonic()
        self.budget = budget
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.summary = self.out / paper_kit.SUMMARY_FILE
        self.summary.write_text("")
        self.record = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "steps": {}}

    def elapsed(self):
        return time.monotonic() - self.started

    def left(self):
        return self.budget - self.elapsed()

    def say(self, line):
        print(line, file=sys.stderr, flush=True)
        with open(self.summary, "a") as f:
            f.write(line + "\n")

    def step(self, name, started, **fields):
        self.record["steps"][name] = {"seconds": round(time.monotonic() - started, 1), **fields}


def find_cuda_libs(sonames):
    """{soname: folder} for the NVIDIA libraries the bundle needs, first match in CUDA_SEARCH order
    (folders walked in sorted order, symbolic links to folders not followed)."""
    found = {}
    for root in CUDA_SEARCH:
        if set(found) == set(sonames):
            break
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for soname in set(sonames) & set(files) - set(found):
                found[soname] = folder
    missing = sorted(set(sonames) - set(found))
    if not missing:
        return found
    raise UserError(f"{', '.join(missing)} not found under {', '.join(CUDA_SEARCH)}: install NVIDIA's wheels "
                    "(nvidia-cublas, nvidia-curand, nvidia-cudnn-cu13, nvidia-cuda-runtime) on the GPU machine")


def cuda_versions(folders):
    """Driver API, runtime and cuDNN versions as the loaded libraries report them, and the nvidia-*
    wheels those folders came from."""
    def load(pattern):
        for folder in folders:
            hits = sorted(glob.glob(os.path.join(folder, pattern)))
            if hits:
                return ctypes.CDLL(hits[0])
        return None
    versions = {}
    runtime, cudnn = load("libcudart.so.*"), load("libcudnn.so.*")
    value = ctypes.c_int()
    if runtime is not None:
        for name, call in (("cuda_driver_api", runtime.cudaDriverGetVersion),
                           ("cuda_runtime", runtime.cudaRuntimeGetVersion)):
            call(ctypes.byref(value))
            versions[name] = f"{value.value // 1000}.{value.value % 1000 // 10}"
    if cudnn is not None:
        cudnn.cudnnGetVersion.restype = ctypes.c_size_t
        number = cudnn.cudnnGetVersion()
        versions["cudnn"] = f"{number // 10000}.{number % 10000 // 100}.{number % 100}"
    versions["wheels"] = sorted({Path(p).name.removesuffix(".dist-info") for folder in folders
                                 for p in glob.glob(os.path.join(folder, "..", "..", "..", "nvidia_*.dist-info"))})
    return versions


def gpu_description():
    run = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True)
    return run.stdout.strip().splitlines()[0] if run.returncode == 0 and run.stdout.strip() else None


def install_wheels(kit, site):
    """Unpack the carried wheels into ``site`` (a wheel is a zip of its installed files)."""
    import zipfile
    site.mkdir(parents=True, exist_ok=True)
    names = []
    for wheel in sorted((kit / paper_kit.WHEELS).glob("*.whl")):
        with zipfile.ZipFile(wheel) as z:
            z.extractall(site)
        names.append(wheel.name)
    return names


def run_gate(bundle, kit, work, env, cpu, rtol):
    """{variant: compare result} of the GPU (cuDNN engines, TF32 off) against the bundle's CPU path."""
    dump_tool = [str(bundle / "bin" / "caffe-run"), "dump_net_io"]

    def one(variant):
        dumps = {}
        for label, engine, flags in (("cpu", "caffe", []), ("gpu", "cudnn", [] if cpu else ["-gpu=0"])):
            folder = work / "gate" / variant / label
            folder.mkdir(parents=True, exist_ok=True)
            log = work / "logs" / f"gate_{variant}_{label}.log"
            with open(log, "w") as f:
                status = subprocess.run(dump_tool + [f"--model={kit / paper_kit.GATE / f'{variant}_b2_{engine}.prototxt'}",
                                                     f"--out={folder}", *flags], env=env, stdout=f,
                                        stderr=subprocess.STDOUT).returncode
            if status != 0:
                return {"passed": False, "problem": f"dump_net_io {label} exited {status} (logs/{log.name})"}
            dumps[label] = folder
        result = compare_net_io.compare(dumps["cpu"], dumps["gpu"], rtol, metric="rel_l2")
        rows = [row for row in result["arrays"].values() if "problem" not in row]
        result["max_rel_l2"] = max((row["rel_l2"] for row in rows), default=None)
        result["max_rel_max"] = max((row["rel_max"] for row in rows), default=None)
        return result

    with concurrent.futures.ThreadPoolExecutor(len(VARIANTS)) as pool:
        return dict(zip(VARIANTS, pool.map(one, VARIANTS)))


def check_lmdbs(kit_info, lmdb_dir, targets):
    """[problem lines] of the LMDBs built here against the kit's record of the ones built at home."""
    from sdc import lmdb_io   # imports lmdb: on the GPU machine, only once the carried wheel is installed
    problems = []
    for target in targets:
        got = paper_kit.lmdb_identity(lmdb_dir / lmdb_io.lmdb_name(target))
        expected = kit_info["lmdbs"][target]
        for key in ("fingerprint", "count", "records_sha256"):
            if got[key] != expected[key]:
                problems.append(f"{lmdb_io.lmdb_name(target)}: {key} {got[key]} here, {expected[key]} in the kit")
    return problems


def images_per_update(solver_path):
    """(training images per update, max_iter) of a solver file in the repository and the net it names."""
    from sdc import caffe_env
    pb2 = caffe_env.caffe_pb2()
    solver = caffe_env.read_proto(solver_path, pb2.SolverParameter())
    net = caffe_env.read_proto(REPO / solver.net, pb2.NetParameter())
    batch = next(layer.data_param.batch_size for layer in net.layer if layer.type == "Data"
                 and not any(rule.phase == pb2.TEST for rule in layer.include))
    return batch * solver.iter_size, solver.max_iter


def work_weights(kit_info, work):
    return work / paper_kit.WEIGHTS / kit_info["weights"]


def train_command(job, args, kit_info, work, run_dir, snapshot_interval):
    lmdb_dir = work / "lmdb"
    command = [sys.executable, str(TOOLS / "train.py"), "--variant", job.variant, "--profile", "paper",
               "--solver", job.solver, "--batching", "literal" if args.literal_batching else job.batching,
               "--lmdb-dir", str(lmdb_dir),
               "--run-dir", str(run_dir), "--snapshot-interval", str(snapshot_interval), "--keep-snapshots", "2"]
    if not job.from_scratch and kit_info["weights"]:
        command += ["--weights", str(work_weights(kit_info, work))]
    if not args.cpu:
        command += ["--gpu", "0"]
    if args.max_iter:
        command += ["--max-iter", str(args.max_iter)]
    stop_after = min(filter(None, (job.stop_after, args.stop_after)), default=None)
    if stop_after and not (args.max_iter and stop_after >= args.max_iter):
        command += ["--stop-after", str(stop_after)]
    return command


def lanes_of(jobs, concurrency):
    """The jobs as lanes that run side by side, each lane in order. 1: one lane. 2: the fine-tuned
    jobs in one lane, so that a deadline leaves at most one of their ~6 MB run folders unfinished
    (a later call has room for one beside the 46 MB of bundle and NEU-CLS), and ETE in the other."""
    if concurrency == 1:
        return [[job.name for job in jobs]]
    return [lane for lane in ([job.name for job in jobs if not job.from_scratch],
                              [job.name for job in jobs if job.from_scratch]) if lane]


def schedule(commands, lanes, stop_at, kill_at, env, log_dir, say, started, min_start=MIN_START_S):
    """Run the {name: command} of each lane in order, the lanes side by side; none starts within
    ``min_start`` s of ``stop_at``; at ``stop_at`` every running one gets SIGINT (to its process group:
    train.py and Caffe), at ``kill_at`` SIGKILL. Returns {name: {"exit": status, "seconds": s,
    "interrupted": bool}} of those started."""
    queues = [list(lane) for lane in lanes]
    running, done = {}, {}   # running: lane -> (name, process, log, start)
    interrupted = killed = False
    while True:
        now = time.monotonic()
        for lane, queue in enumerate(queues):
            if lane not in running and queue and stop_at - now > min_start:
                name = queue.pop(0)
                log = open(log_dir / f"{name}.out", "w")
                proc = subprocess.Popen(commands[name], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                running[lane] = (name, proc, log, now)
                say(f"started {name} (pid {proc.pid}) at {now - started:.0f} s")
        if not running:
            return done
        if now >= stop_at and not interrupted:
            interrupted = True
            for name, proc, _, _ in running.values():
                say(f"deadline: SIGINT to {name}")
                signal_group(proc, signal.SIGINT)
        if now >= kill_at and not killed:
            killed = True
            for name, proc, _, _ in running.values():
                say(f"FAIL: {name} still running at the hard limit: SIGKILL")
                signal_group(proc, signal.SIGKILL)
        for lane, (name, proc, log, began) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                done[name] = {"exit": proc.returncode, "seconds": round(time.monotonic() - began, 1),
                              "interrupted": interrupted}
                del running[lane]
        time.sleep(0.5)


def signal_group(proc, signum):
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:  # exited since the last poll
        pass


def keep_epoch_snapshot(run_dir, variant, interval, target):
    """Delete every snapshot but the one a later window resumes from, or the one at ``target`` (the
    job's last iteration); returns (iteration kept or None, highest iteration reached)."""
    from sdc import training
    states = {i: p for i, p in training.solverstates(run_dir, variant).items() if training.usable(p, run_dir)}
    reached = max(states, default=0)
    keep = target if target in states else paper_kit.epoch_snapshot(states, interval)
    for path in (run_dir / training.SNAPSHOT_DIR).glob("*"):
        iteration = path.stem.rpartition("_iter_")[2]
        if not (keep is not None and iteration == str(keep)):
            path.unlink()
    return keep, reached


def run(args):
    window = Window(args.out, args.budget)
    kit = Path(args.kit)
    kit_info = paper_kit.read_json(kit / paper_kit.KIT_FILE)
    if kit_info is None:
        raise UserError(f"no kit at {kit}: run tools/caffe/gpu_paper_run.py prepare here first and carry it")
    work = Path(args.work)
    for folder in ("caffe", "site", "lmdb", "gate", "logs", "NEU", paper_kit.WEIGHTS):
        shutil.rmtree(work / folder, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    record = window.record
    record.update(mode="CPU rehearsal" if args.cpu else "GPU", concurrency=args.concurrency, budget_s=args.budget,
                  environment=dict(TF32_ENV), kit_git_commit=kit_info["git_commit"])
    try:
        status = run_steps(args, window, kit, kit_info, work)
    finally:
        with tarfile.open(window.out / paper_kit.LOGS_FILE, "w:gz") as tar:
            tar.add(work / "logs", arcname="logs")
        record["wall_s"] = round(window.elapsed(), 1)
        atomic.write_text(window.out / paper_kit.SESSION_FILE, json.dumps(record, indent=1) + "\n")
        window.say(f"wall time {record['wall_s']} s; files in {window.out}: "
                   f"{', '.join(sorted(p.name for p in window.out.iterdir()))}")
    return status


def run_steps(args, window, kit, kit_info, work):
    record, say = window.record, window.say
    t = time.monotonic()
    (bundle_name,) = paper_kit.unpack(kit / paper_kit.BUNDLE, work / "caffe")
    bundle = work / "caffe" / bundle_name
    paper_kit.unpack(kit / paper_kit.NEU_ARCHIVE, work / "NEU")
    (neu_root,) = [p for p in (work / "NEU").iterdir() if p.is_dir()]
    wheels = install_wheels(kit, work / "site")
    if kit_info["weights"]:
        init = work_weights(kit_info, work)
        init.parent.mkdir(parents=True, exist_ok=True)
        init.write_bytes(lzma.decompress((kit / paper_kit.WEIGHTS / f"{init.name}.xz").read_bytes()))
        if hashing.sha1_file(init) != kit_info["weights_sha1"]:
            raise UserError(f"{init} does not have the sha1 {kit_info['weights_sha1']} recorded in the kit: prepare it again")
    sys.path.insert(0, str(work / "site"))
    os.environ["CAFFE_PREFIX"] = str(bundle)   # this process reads run folders with the bundle's caffe_pb2
    sonames = (bundle / "cuda-libs.txt").read_text().split()
    cuda = find_cuda_libs(sonames)
    folders = list(dict.fromkeys(cuda.values()))
    # The Caffe tools run through the bundle's launcher (caffe_env.caffe_bin), which puts the bundle's
    # libraries and CAFFE_CUDA_LIBS on the loader path of Caffe alone, not of Python.
    env = dict(os.environ, **TF32_ENV, CAFFE_PREFIX=str(bundle), CAFFE_CUDA_LIBS=":".join(folders),
               GLOG_minloglevel="0", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(work / "site"), str(TOOLS)]))
    import lmdb   # the carried wheel
    from google import protobuf
    from sdc import caffe_env
    record["python_modules"] = {"lmdb": lmdb.__file__, "caffe_pb2": caffe_env.caffe_pb2().__file__,
                                "protobuf": protobuf.__version__}
    record.update(bundle=bundle_name, caffe_build=json.loads((bundle / "BUILD_INFO.json").read_text()), wheels=wheels,
                  cuda_libraries=cuda, versions=cuda_versions(folders) if folders else {},
                  gpu=None if args.cpu else gpu_description(), python=sys.version.split()[0])
    window.step("unpack", t)
    say(f"== paper-schedule window ({record['mode']}), budget {args.budget} s, concurrency {args.concurrency}")
    say(f"GPU: {record['gpu']}; versions: {json.dumps(record['versions'])}; {', '.join(f'{k}={v}' for k, v in TF32_ENV.items())}")

    jobs, waiting = [], []
    for job in paper_kit.JOBS:
        state = paper_kit.state(args.partial, job)
        if state == "finished" or (args.only and job.name not in args.only):
            continue
        if state == "fresh" and not job.from_scratch and not kit_info["weights"]:
            waiting.append(job.name)
            continue
        jobs.append((job, state))
    if waiting:
        say(f"waiting for a later window (no ImageNet weights in this kit): {', '.join(waiting)}")
    targets = sorted({target for job, _ in jobs for target in job.lmdbs}, key=paper_kit.LMDB_TARGETS.index)

    t = time.monotonic()
    lmdb_dir = work / "lmdb"
    build = [sys.executable, str(TOOLS / "build_lmdb.py"), "--neu-dir", str(neu_root), "--out", str(lmdb_dir),
             "--only", *targets, "--jobs", str(os.cpu_count())]
    if kit_info["per_class"]:
        build += ["--per-class", str(kit_info["per_class"])]
    with open(work / "logs" / "build_lmdb.log", "w") as log:
        builder = subprocess.Popen(build, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT) if targets else None
        gate_started = time.monotonic()
        gate = run_gate(bundle, kit, work, env, args.cpu, args.gate_rtol)
        window.step("gate", gate_started, results={v: {k: r.get(k) for k in ("passed", "worst", "max_rel_l2",
                                                                                 "max_rel_max", "problem")}
                                                   for v, r in gate.items()})
        for variant, result in gate.items():
            say(f"gate {variant}: {'PASS' if result['passed'] else 'FAIL'}"
                + (f" ({result['problem']})" if "problem" in result else
                   f"; max rel_l2 {result['max_rel_l2']:.2e} (<= {args.gate_rtol:g}), max rel_max "
                   f"{result['max_rel_max']:.2e}, worst {result['worst']}"))
        build_status = builder.wait() if builder else 0
    window.step("lmdb", t, targets=targets, exit=build_status)
    if not all(result["passed"] for result in gate.values()):
        say("FAIL: the GPU does not compute what the CPU does: no training in this window")
        return 1
    problems = ([f"tools/build_lmdb.py exited {build_status} (logs/build_lmdb.log)"] if build_status else
                check_lmdbs(kit_info, lmdb_dir, targets))
    record["lmdb_problems"] = problems
    if problems:
        say(f"FAIL: the LMDBs differ from the ones built at home ({'; '.join(problems)}): no training")
        return 1
    say(f"LMDBs {', '.join(targets)}: identical to the kit's ({record['steps']['lmdb']['seconds']} s)")

    # Snapshot every epoch: records of the training LMDB / images per update (at least 1).
    commands, plans = {}, {}
    for job, state in jobs:
        run_dir = work / "runs" / job.name
        shutil.rmtree(run_dir, ignore_errors=True)
        if state == "resume":
            paper_kit.unpack(Path(args.partial) / job.returned_file, work / "runs")
        per_update, schedule_iterations = images_per_update(REPO / job.solver)
        interval = max(1, kit_info["lmdbs"][job.lmdbs[0]]["count"] // per_update)
        commands[job.name] = train_command(job, args, kit_info, work, run_dir, interval)
        # Where the job is done: the schedule's end, or the job's own stop (not this window's --stop-after).
        target = min(filter(None, (job.stop_after, args.max_iter or schedule_iterations)))
        plans[job.name] = {"run_dir": run_dir, "snapshot_interval": interval, "target": target,
                           "per_update": per_update, "start_iteration": resumed_iteration(run_dir, job.variant)}
    stop_at = window.started + args.budget - STOP_RESERVE_S
    kill_at = window.started + args.budget - KILL_RESERVE_S
    t = time.monotonic()
    done = schedule(commands, lanes_of([job for job, _ in jobs], args.concurrency), stop_at, kill_at, env,
                    work / "logs", say, window.started)
    window.step("training", t)

    failed = False
    record["jobs"] = {}
    for job, _ in jobs:
        plan = plans[job.name]
        if job.name not in done:
            say(f"{job.name}: not started (no time left)")
            continue
        result = done[job.name]
        run_dir = plan["run_dir"]
        if not (run_dir / "solver.prototxt").is_file():
            say(f"FAIL {job.name}: train.py exited {result['exit']} before writing its run folder (logs/{job.name}.out)")
            failed = True
            continue
        target, per_update = plan["target"], plan["per_update"]
        kept, reached = keep_epoch_snapshot(run_dir, job.variant, plan["snapshot_interval"], target)
        images = (reached - plan["start_iteration"]) * per_update
        entry = {"variant": job.variant, "solver": job.solver, "solver_label": paper_kit.SOLVER_LABELS[job.name],
                 "batching": "literal" if args.literal_batching else job.batching, "train_py_exit": result["exit"], "interrupted": result["interrupted"],
                 "seconds": result["seconds"], "start_iteration": plan["start_iteration"], "reached": reached,
                 "returned_iteration": kept, "target_iteration": target,
                 "images_per_update": per_update, "images_per_s": round(images / max(result["seconds"], 1e-9), 1),
                 "snapshot_interval": plan["snapshot_interval"], "returned_file": job.returned_file}
        if result["exit"] not in (0, 130) and reached < target:
            failed = True
        windows = paper_kit.read_json(run_dir / paper_kit.WINDOWS_FILE, [])
        windows.append({**{k: record.get(k) for k in ("started_utc", "mode", "gpu", "versions", "environment",
                                                        "concurrency", "kit_git_commit")},
                        "caffe_build": {k: record["caffe_build"].get(k) for k in ("key", "variant", "cudnn")},
                        **{k: entry[k] for k in ("batching", "solver_label", "seconds", "start_iteration", "reached",
                                                 "returned_iteration", "images_per_s", "train_py_exit")}})
        atomic.write_text(run_dir / paper_kit.WINDOWS_FILE, json.dumps(windows, indent=1) + "\n")
        packed = paper_kit.pack_folder(run_dir, window.out / job.returned_file)
        entry["returned_bytes"] = packed.stat().st_size
        if entry["returned_bytes"] > paper_kit.RETURN_FILE_LIMIT:
            say(f"FAIL {job.name}: {job.returned_file} is {entry['returned_bytes']:,} bytes, over the "
                f"{paper_kit.RETURN_FILE_LIMIT:,} that come back")
            failed = True
        record["jobs"][job.name] = entry
        say(f"{job.name}: iterations {plan['start_iteration']} -> {reached} of {target} in {result['seconds']} s "
            f"({entry['images_per_s']} img/s), train.py exit {result['exit']}; returns iteration {kept} "
            f"({entry['returned_bytes']:,} bytes)")
    total = sum(e["images_per_s"] for e in record["jobs"].values())
    say(f"aggregate {total:.0f} training images/s over {len(record['jobs'])} runs, {args.concurrency} at a time")
    return 1 if failed else 0


def resumed_iteration(run_dir, variant):
    from sdc import training
    return max((i for i, p in training.solverstates(run_dir, variant).items() if training.usable(p, run_dir)),
               default=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="pack the kit (here)")
    p.add_argument("--prefix", help="Caffe build to bundle (default: the sm_90 CUDA build)")
    p.add_argument("--kit", type=Path, default=paper_kit.KIT_DIR)
    p.add_argument("--partial", type=Path, default=paper_kit.PARTIAL_DIR, help="default: %(default)s")
    p.add_argument("--lmdb-dir", type=Path, default=None, help="the LMDBs built here (default: datasets/work/lmdb)")
    p.add_argument("--neu-dir", help="NEU-CLS (default: $NEU_DIR, else datasets/NEU-CLS)")
    p.add_argument("--neu-archive", type=Path, default=paper_kit.KIT_DIR.parent / "neu-cls.tar.xz",
                   help="NEU-CLS packed for the kit: reused if it exists, else written there (default: %(default)s)")
    p.add_argument("--weights", help="ImageNet initialisation (default: the one tools/train.py takes)")
    p.add_argument("--wheel-python", default="3.12", help="Python version of the GPU machine (default: %(default)s)")
    r = sub.add_parser("run", help="train (GPU machine)")
    r.add_argument("--kit", type=Path, default=paper_kit.KIT_DIR)
    r.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/sdc-paper-out")))
    r.add_argument("--work", type=Path, default=paper_kit.WORK_DIR)
    r.add_argument("--partial", type=Path, default=paper_kit.PARTIAL_DIR)
    r.add_argument("--budget", type=int, default=560, help="seconds the whole call may take (default: %(default)s)")
    r.add_argument("--concurrency", type=int, choices=(1, 2), default=int(os.environ.get("SDC_PAPER_CONCURRENCY", 2)),
                   help="1: one training at a time; 2: ETE beside the fine-tuned ones, which run one at a time "
                        "(default: $SDC_PAPER_CONCURRENCY, else 2)")
    r.add_argument("--gate-rtol", type=float, default=1e-3)
    r.add_argument("--cpu", action="store_true", help="rehearsal: the same steps on the CPU (a CPU-build kit)")
    r.add_argument("--max-iter", type=int, help="rehearsal: a tiny schedule (tools/train.py --max-iter)")
    r.add_argument("--stop-after", type=int, help="train each job only up to this iteration in this window")
    r.add_argument("--only", nargs="+", choices=[job.name for job in paper_kit.JOBS], help="train only these jobs")
    r.add_argument("--literal-batching", action="store_true",
                   help="rehearsal on a small machine: every job as 18 x iter_size 10, whose forward holds a "
                        "tenth of the memory of the 180-image one (15 GB on the CPU)")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        args.lmdb_dir = args.lmdb_dir or paths.LMDB_DIR
        return prepare(args)
    return run(args)


if __name__ == "__main__":
    run_main(main)
