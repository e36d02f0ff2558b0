"""The GPU sessions' parts that run here: Caffe's dump_net_io (patch 0006), tools/caffe/compare_net_io.py,
tools/caffe/make_session_nets.py, tools/caffe/gpu_session.sh end to end in its CPU dry-run mode, and the
paper-schedule kit (tools/caffe/gpu_paper_run.py, tools/caffe/adopt_gpu_runs.py) rehearsed on the CPU: the same
script, a CPU bundle, two per-class images and a two-update schedule over two windows."""
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

import compare_net_io
import gpu_paper_run
import make_session_nets
from sdc import caffe_env, paper_kit, timing

REPO = Path(__file__).resolve().parents[1]
QUIET = dict(os.environ, GLOG_minloglevel="2")

LINEAR_NET = """
name: "linear"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 5 } } }
layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def dump(model, out, *flags):
    out.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([str(caffe_env.prefix() / "bin" / "dump_net_io"), f"--model={model}", f"--out={out}",
                          *flags], capture_output=True, text=True, env=QUIET, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return {p.stem: np.load(p) for p in out.glob("*.npy")}


def test_dump_net_io_writes_a_pass_that_checks_by_hand(tmp_path):
    (tmp_path / "linear.prototxt").write_text(LINEAR_NET)
    arrays = dump(tmp_path / "linear.prototxt", tmp_path / "dump", "--blobs=ip")
    assert sorted(arrays) == ["data__ip", "grad__data", "out__loss", "param_grad__ip__0", "param_grad__ip__1"]
    x = np.sin(0.731 * np.arange(5, dtype=np.float32) + 0.3)  # the documented input
    logits, db, dw = arrays["data__ip"][0], arrays["param_grad__ip__1"], arrays["param_grad__ip__0"]
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    # label of image 0 is 0 % 2 = 0: softmax loss gradients are p - onehot(0), W's is that times x.
    np.testing.assert_allclose(db, p - [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(dw, np.outer(db, x), atol=1e-6)
    np.testing.assert_allclose(arrays["out__loss"], -np.log(p[0]), rtol=1e-5)
    assert dw.shape == (3, 5) and arrays["grad__data"].shape == (1, 5)
    assert np.abs(dw).max() > 0.01  # weights were filled (not zero), so the checks above bite


def test_dump_net_io_passes_repeat_exactly_on_the_cpu(tmp_path):
    (tmp_path / "linear.prototxt").write_text(LINEAR_NET)
    first = dump(tmp_path / "linear.prototxt", tmp_path / "a", "--passes=3")
    third = {p.stem: np.load(p) for p in (tmp_path / "a" / "pass3").glob("*.npy")}
    assert sorted(first) == sorted(third)
    for name in first:
        np.testing.assert_array_equal(first[name], third[name])


def test_compare_reports_relative_errors(tmp_path):
    (tmp_path / "ref").mkdir()
    (tmp_path / "gpu").mkdir()
    np.save(tmp_path / "ref" / "a.npy", np.array([1.0, -2.0, 4.0], np.float32))
    np.save(tmp_path / "gpu" / "a.npy", np.array([1.0, -2.0, 4.0004], np.float32))
    np.save(tmp_path / "ref" / "b.npy", np.zeros((2, 2), np.float32))
    np.save(tmp_path / "gpu" / "b.npy", np.zeros((2, 2), np.float32))
    result = compare_net_io.compare(tmp_path / "ref", tmp_path / "gpu", rtol=2e-4)
    assert result["passed"] and result["worst"] == "a"
    assert result["arrays"]["a"]["rel_max"] == pytest.approx(0.0004 / 4, rel=1e-3)
    assert result["arrays"]["a"]["rel_l2"] == pytest.approx(0.0004 / np.sqrt(21), rel=1e-3)
    assert result["arrays"]["b"] == {"rel_max": 0.0, "rel_l2": 0.0}
    assert compare_net_io.compare(tmp_path / "ref", tmp_path / "gpu", rtol=5e-5)["failed"] == ["a"]
    np.save(tmp_path / "gpu" / "b.npy", np.zeros((4,), np.float32))
    (tmp_path / "ref" / "c.npy").write_bytes((tmp_path / "ref" / "a.npy").read_bytes())
    result = compare_net_io.compare(tmp_path / "ref", tmp_path / "gpu", rtol=2e-4)
    assert result["failed"] == ["b", "c"]
    assert result["arrays"]["c"] == {"problem": "missing"}
    run = subprocess.run([sys.executable, str(REPO / "tools" / "caffe" / "compare_net_io.py"), str(tmp_path / "ref"),
                          str(tmp_path / "gpu"), "--rtol", "2e-4", "--label", "x"], capture_output=True, text=True)
    assert run.returncode == 1 and run.stdout.startswith("x: FAIL (2: b, c)")


def test_caffe_engine_nets_differ_only_in_engines(caffe):
    from google.protobuf import text_format
    text = timing.timing_net(REPO / "prototxt" / "SDC-SN_deploy.prototxt", 2)
    pb2 = caffe_env.caffe_pb2()
    default = text_format.Parse(text, pb2.NetParameter())
    engined = text_format.Parse(make_session_nets.with_caffe_engine(text), pb2.NetParameter())
    changed = 0
    for before, after in zip(default.layer, engined.layer, strict=True):
        field = make_session_nets.ENGINE_FIELD.get(before.type)
        if field:
            params = getattr(after, field)
            assert params.engine == type(params).CAFFE, before.name
            changed += 1
            params.ClearField("engine")
            if not before.HasField(field):
                after.ClearField(field)
        assert before == after, before.name
    assert {layer.type for layer in default.layer} >= {"Convolution", "Pooling", "ReLU", "SoftmaxWithLoss"}
    assert changed > 50


def test_compare_on_rel_l2_passes_one_element_far_off(tmp_path):
    (tmp_path / "ref").mkdir()
    (tmp_path / "gpu").mkdir()
    reference = np.sin(np.arange(1_000_000, dtype=np.float64)).astype(np.float32)
    candidate = reference.copy()
    candidate[7] = 0.0   # e.g. a ReLU whose input rounded to the other side of 0
    np.save(tmp_path / "ref" / "a.npy", reference)
    np.save(tmp_path / "gpu" / "a.npy", candidate)
    off = abs(float(reference[7]))   # |sin 7| = 0.657
    l2 = compare_net_io.compare(tmp_path / "ref", tmp_path / "gpu", rtol=1e-3, metric="rel_l2")
    assert l2["passed"] and l2["metric"] == "rel_l2"
    row = l2["arrays"]["a"]
    assert row["rel_l2"] == pytest.approx(off / np.linalg.norm(reference.astype(np.float64)), rel=1e-6)
    assert row["rel_l2"] < 1e-3 < row["rel_max"] == pytest.approx(off / np.abs(reference).max(), rel=1e-6)
    assert compare_net_io.compare(tmp_path / "ref", tmp_path / "gpu", rtol=1e-3)["failed"] == ["a"]


def test_dry_run_runs_every_step_on_the_cpu(tmp_path):
    if not (caffe_env.prefix() / "bin" / "caffe_unit_tests").is_file():
        pytest.skip("Caffe's C++ unit tests are not built: run tools/run_tests.sh --with-caffe-tests")
    run = subprocess.run(["bash", str(REPO / "tools" / "caffe" / "gpu_session.sh"), "dry-run", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=3600)
    summary = (tmp_path / "summary.txt").read_text()
    assert run.returncode == 0, summary + run.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["equivalence.json", "logs.tar.xz", "summary.txt"]
    assert "FAIL" not in summary and "SKIPPED" not in summary
    assert "unit tests (NVIDIA_TF32_OVERRIDE=0): [  PASSED  ]" in summary
    equivalence = json.loads((tmp_path / "equivalence.json").read_text())
    # CPU mode: one engine per variant, first and second pass, each identical to the CPU reference.
    assert len(equivalence) == 6
    for result in equivalence.values():
        assert result["passed"] and all(row["rel_max"] == 0.0 for row in result["arrays"].values())
    timed = [line for line in summary.splitlines() if line.startswith("time SDC-SN")]
    assert len(timed) == 6 and all("Forward-Backward:" in line for line in timed), summary


# ---- the paper-schedule kit ---------------------------------------------------------------------
def test_fine_tuned_jobs_share_one_lane_so_one_state_is_left_at_a_deadline():
    assert gpu_paper_run.lanes_of(paper_kit.JOBS, 2) == [
        ["SDC-SN-ELF-MRF", "SDC-SN-ELF", "SDC-SN", "SDC-SN-ELF-MRF_adam"], ["ETE"]]
    assert gpu_paper_run.lanes_of(paper_kit.JOBS, 1) == [[job.name for job in paper_kit.JOBS]]
    assert gpu_paper_run.lanes_of(paper_kit.JOBS[:1], 2) == [["SDC-SN-ELF-MRF"]]


def test_nvidia_libraries_are_taken_from_the_first_search_root_that_has_them(tmp_path, monkeypatch):
    wheel_lib = tmp_path / "venv" / "nvidia" / "cudnn" / "lib"
    wheel_lib.mkdir(parents=True)
    (wheel_lib / "libcudnn.so.9").write_bytes(b"")
    (tmp_path / "venv" / "loop").symlink_to(tmp_path)   # a link back up is not followed
    (tmp_path / "usr").mkdir()
    for name in ("libcudnn.so.9", "libcublas.so.13"):
        (tmp_path / "usr" / name).write_bytes(b"")
    monkeypatch.setattr(gpu_paper_run, "CUDA_SEARCH", (str(tmp_path / "venv"), str(tmp_path / "usr")))
    assert gpu_paper_run.find_cuda_libs(["libcudnn.so.9", "libcublas.so.13"]) == {
        "libcudnn.so.9": str(wheel_lib), "libcublas.so.13": str(tmp_path / "usr")}
    assert gpu_paper_run.find_cuda_libs([]) == {}   # a CPU bundle needs none
    with pytest.raises(gpu_paper_run.UserError, match="^libcurand.so.10 not found under "):
        gpu_paper_run.find_cuda_libs(["libcurand.so.10"])


def test_the_kept_snapshot_is_the_latest_on_an_epoch_boundary():
    assert paper_kit.epoch_snapshot([8, 16, 21], 8) == 16      # 21: where SIGINT stopped Caffe
    assert paper_kit.epoch_snapshot([5], 8) is None
    assert paper_kit.epoch_snapshot([180, 540, 600], 180) == 540


FAKE_TRAINING = """
import signal, subprocess, sys, time
mode, mark = sys.argv[1], sys.argv[2]
if mode == "deaf":                       # a training that ignores SIGINT: killed at the hard limit
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(60)
# train.py's child, as Caffe: SIGINT makes it write its snapshot mark and stop
child = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\\n"
    "signal.signal(signal.SIGINT, lambda *_: (open(sys.argv[1], 'w').write('snapshot'), sys.exit(0)))\\n"
    "time.sleep(60)", mark])
signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent leaves the stop to its child
child.wait()
sys.exit(130)
"""


def test_the_deadline_stops_every_training_by_sigint_to_its_process_group(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE_TRAINING)
    commands = {name: [sys.executable, str(script), mode, str(tmp_path / f"{name}.mark")]
                for name, mode in (("a", "obeys"), ("b", "deaf"), ("c", "obeys"))}
    lines = []
    now = time.monotonic()
    done = gpu_paper_run.schedule(commands, [["a", "c"], ["b"]], now + 3, now + 8, dict(os.environ), tmp_path,
                                  lines.append, now, min_start=1)
    assert sorted(done) == ["a", "b"]   # c waited behind a, and nothing starts after the deadline
    assert done["a"]["exit"] == 130 and done["a"]["interrupted"]
    assert (tmp_path / "a.mark").read_text() == "snapshot"   # the SIGINT reached the grandchild
    assert done["b"]["exit"] == -9 and not (tmp_path / "b.mark").exists()
    assert "deadline: SIGINT to a" in lines and "FAIL: b still running at the hard limit: SIGKILL" in lines


@pytest.fixture(scope="module")
def tiny_lmdbs(tmp_path_factory, neu_dir):
    """The three LMDBs of the kit from the first two images per class, built here."""
    out = tmp_path_factory.mktemp("lmdb")
    run = subprocess.run([sys.executable, str(REPO / "tools" / "build_lmdb.py"), "--neu-dir", str(neu_dir),
                          "--out", str(out), "--only", *paper_kit.LMDB_TARGETS, "--per-class", "2"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return out


def test_a_window_stops_unless_its_lmdbs_equal_the_kit_records(tiny_lmdbs):
    from sdc import lmdb_io
    kit_info = {"lmdbs": {t: paper_kit.lmdb_identity(tiny_lmdbs / lmdb_io.lmdb_name(t))
                          for t in paper_kit.LMDB_TARGETS}}
    assert kit_info["lmdbs"]["train"]["count"] == 12 and kit_info["lmdbs"]["train_aug8"]["count"] == 96
    assert gpu_paper_run.check_lmdbs(kit_info, tiny_lmdbs, paper_kit.LMDB_TARGETS) == []
    digest = hashlib.sha256()
    for key, image, label in lmdb_io.LmdbSource(tiny_lmdbs / "test_original_lmdb").read():
        value = lmdb_io.encode(image[0], label)
        digest.update(len(key).to_bytes(4, "little") + key.encode() + len(value).to_bytes(8, "little") + value)
    assert kit_info["lmdbs"]["original"]["records_sha256"] == digest.hexdigest()
    kit_info["lmdbs"]["original"]["records_sha256"] = "0" * 64
    (problem,) = gpu_paper_run.check_lmdbs(kit_info, tiny_lmdbs, ["original"])
    assert problem.startswith("test_original_lmdb: records_sha256 ") and problem.endswith(f"{'0' * 64} in the kit")


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, tiny_lmdbs, neu_dir, decoded_caffemodel):
    """prepare from the CPU build, then two windows of `run --cpu` (the first stops after one update,
    the second finishes the two-update schedule), each adopted."""
    root = tmp_path_factory.mktemp("rehearsal")
    quick_xz = dict(os.environ, XZ_OPT="-1")   # NEU-CLS packed fast; the GPU kit's is -9
    tool = [sys.executable, str(REPO / "tools" / "caffe" / "gpu_paper_run.py")]
    adopt = [sys.executable, str(REPO / "tools" / "caffe" / "adopt_gpu_runs.py")]
    py_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    prepared = subprocess.run(tool + ["prepare", "--prefix", str(caffe_env.prefix()), "--kit", str(root / "kit"),
                                      "--partial", str(root / "partial"), "--lmdb-dir", str(tiny_lmdbs),
                                      "--neu-dir", str(neu_dir), "--neu-archive", str(root / "neu-cls.tar.xz"),
                                      "--weights", str(decoded_caffemodel),
                                      "--wheel-python", py_version],
                              capture_output=True, text=True, env=quick_xz, timeout=1800)
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    windows = []
    for n, extra in ((1, ["--stop-after", "1"]), (2, [])):
        out = root / f"out{n}"
        ran = subprocess.run(tool + ["run", "--cpu", "--kit", str(root / "kit"), "--out", str(out),
                                     "--work", str(root / "work"), "--partial", str(root / "partial"),
                                     "--max-iter", "2", "--only", "SDC-SN-ELF-MRF", "ETE", "--literal-batching",
                                     "--budget", "1500", *extra], capture_output=True, text=True, timeout=1800)
        assert ran.returncode == 0, (out / "summary.txt").read_text() + ran.stderr[-3000:]
        adopted = subprocess.run(adopt + [str(out), "--runs-dir", str(root / "runs"), "--partial", str(root / "partial")],
                                 capture_output=True, text=True, timeout=600)
        assert adopted.returncode == 0, adopted.stderr[-3000:]
        windows.append({"out": out, "session": json.loads((out / paper_kit.SESSION_FILE).read_text()),
                        "summary": (out / paper_kit.SUMMARY_FILE).read_text(), "adopted": adopted.stdout,
                        "partial": sorted(p.name for p in (root / "partial").iterdir())})
    return root, prepared, windows


def test_rehearsal_kit_fits_one_call_and_records_the_lmdbs(rehearsal, tiny_lmdbs):
    root, prepared, _ = rehearsal
    kit = json.loads((root / "kit" / paper_kit.KIT_FILE).read_text())
    assert prepared.stdout.strip() == str(root / "kit")
    assert kit["per_class"] == 2 and kit["weights"] == "squeezenet_v1.0_dc.caffemodel"
    assert kit["wheel"].startswith("lmdb-") and f"cp{sys.version_info.major}{sys.version_info.minor}" in kit["wheel"]
    assert kit["lmdbs"]["train"] == paper_kit.lmdb_identity(tiny_lmdbs / "train_lmdb")
    travel = kit["travel_bytes"]
    assert travel["working_tree"] + travel["kit"] <= travel["limit"] == 64 * 2**20
    assert set(kit["files"]) >= {paper_kit.BUNDLE, paper_kit.NEU_ARCHIVE, f"wheels/{kit['wheel']}",
                                 "weights/squeezenet_v1.0_dc.caffemodel.xz", "gate/SDC-SN-ELF-MRF_b2_cudnn.prototxt"}


def test_rehearsal_windows_pass_the_gate_and_run_without_pycaffe(rehearsal):
    root, _, windows = rehearsal
    for window in windows:
        summary, session = window["summary"], window["session"]
        assert summary.count(": PASS; max rel_l2 0.00e+00") == 3, summary
        assert "LMDBs train, original, train_aug8: identical to the kit's" in summary
        assert "FAIL" not in summary
        modules = session["python_modules"]
        assert modules["caffe_pb2"] == str(root / "work" / "caffe" / session["bundle"] / caffe_env.PB2_FILE)
        assert modules["lmdb"].startswith(str(root / "work" / "site"))
        assert session["environment"] == {"NVIDIA_TF32_OVERRIDE": "0"} and session["mode"] == "CPU rehearsal"
        returned = sorted(p.name for p in window["out"].iterdir())
        assert returned == ["ETE.tar.gz", "SDC-SN-ELF-MRF.tar.gz", "logs.tar.gz", "session.json", "summary.txt"]
        assert all((window["out"] / name).stat().st_size <= paper_kit.RETURN_FILE_LIMIT for name in returned)


def test_rehearsal_first_window_returns_what_the_second_resumes(rehearsal):
    root, _, (first, second) = rehearsal
    jobs = first["session"]["jobs"]
    assert {name: (j["start_iteration"], j["reached"], j["returned_iteration"], j["target_iteration"])
            for name, j in jobs.items()} == {"SDC-SN-ELF-MRF": (0, 1, 1, 2), "ETE": (0, 1, 1, 2)}
    assert first["partial"] == ["ETE.tar.gz", "SDC-SN-ELF-MRF.tar.gz"]
    with tarfile.open(first["out"] / "SDC-SN-ELF-MRF.tar.gz") as tar:
        snapshots = sorted(Path(n).name for n in tar.getnames() if "/snapshots/" in n)
    assert snapshots == ["SDC-SN-ELF-MRF_iter_1.caffemodel", "SDC-SN-ELF-MRF_iter_1.solverstate"]
    jobs = second["session"]["jobs"]
    assert {name: (j["start_iteration"], j["reached"], j["returned_iteration"]) for name, j in jobs.items()} == \
        {"SDC-SN-ELF-MRF": (1, 2, 2), "ETE": (1, 2, 2)}
    assert second["partial"] == ["ETE.finished.json", "SDC-SN-ELF-MRF.finished.json"]
    logs = sorted((root / "runs" / "SDC-SN-ELF-MRF").glob("train-*.log"))
    assert len(logs) == 2 and "Resuming from snapshots/SDC-SN-ELF-MRF_iter_1.solverstate" in logs[1].read_text()


def test_rehearsal_adoption_makes_normal_run_folders(rehearsal):
    root, _, (_, second) = rehearsal
    for name, variant in (("SDC-SN-ELF-MRF", "SDC-SN-ELF-MRF"), ("ETE", "ETE")):
        run_dir = root / "runs" / name
        final = run_dir / "final.caffemodel"
        assert final.read_bytes() == (run_dir / "snapshots" / f"{variant}_iter_2.caffemodel").read_bytes()
        note = json.loads((root / "partial" / f"{name}.finished.json").read_text())
        assert note["final_caffemodel_sha1"] == hashlib.sha1(final.read_bytes()).hexdigest()
        assert note["iteration"] == 2 and note["windows"] == 2
        curve = (run_dir / "learning_curve.csv").read_text().splitlines()
        assert [line.split(",")[0] for line in curve[1:]] == ["0", "1", "2"]
        windows = json.loads((run_dir / "provenance.json").read_text())["gpu_windows"]
        assert [(w["start_iteration"], w["reached"]) for w in windows] == [(0, 1), (1, 2)]
        assert all(w["environment"] == {"NVIDIA_TF32_OVERRIDE": "0"} and w["batching"] == "literal"
                   and w["seconds"] > 0 and w["mode"] == "CPU rehearsal" for w in windows)
        assert f"{name}: finished at iteration 2" in second["adopted"]


def test_adopt_without_a_session_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "tools" / "caffe" / "adopt_gpu_runs.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert run.stderr.startswith(f"error: {tmp_path / 'session.json'} not found")
