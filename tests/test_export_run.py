"""tools/export_run.py: a run folder's shareable files, without this machine's paths."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPORT_RUN = REPO / "tools" / "export_run.py"


def test_paths_become_repo_relative_run_relative_or_home_relative(tmp_path):
    run = tmp_path / "runs" / "adam"
    (run / "snapshots").mkdir(parents=True)
    (run / "snapshots" / "x_iter_8.caffemodel").write_bytes(b"weights")
    (run / "train-20261130-120000.log").write_text(f"I1130 Resuming from {run}/snapshots/x_iter_8.solverstate\n")
    (run / "train_val.prototxt").write_text(f'source: "{REPO}/datasets/work/lmdb/train_lmdb"\n')
    record = {"weights": {"path": f"{Path.home()}/w/squeezenet.caffemodel"}, "run": str(run)}
    (run / "provenance.json").write_text(json.dumps(record))
    dest = tmp_path / "out"
    done = subprocess.run([sys.executable, str(EXPORT_RUN), str(run), str(dest)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["provenance.json", "train-20261130-120000.log",
                                                      "train_val.prototxt"]
    assert (dest / "train_val.prototxt").read_text() == 'source: "./datasets/work/lmdb/train_lmdb"\n'
    assert (dest / "train-20261130-120000.log").read_text() == "I1130 Resuming from <run>/snapshots/x_iter_8.solverstate\n"
    assert json.loads((dest / "provenance.json").read_text()) == {"weights": {"path": "~/w/squeezenet.caffemodel"},
                                                                 "run": "<run>"}


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(EXPORT_RUN), str(tmp_path), str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "has no train-*.log" in done.stderr
    assert not (tmp_path / "o").exists()


def test_a_log_file_is_copied_alone_without_machine_paths(tmp_path):
    log = tmp_path / "run_all-20261130-120000.log"
    log.write_text(f"== train SDC-SN\n{REPO}/runs/smoke/SDC-SN is trained; weights {Path.home()}/w.caffemodel\n"
                   f"verified {tmp_path}/data/NEU-CLS/crazing\n")
    env = dict(os.environ, NEU_DIR=f"{tmp_path}/data/NEU-CLS")
    done = subprocess.run([sys.executable, str(EXPORT_RUN), str(log), str(tmp_path / "logs")],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (tmp_path / "logs").iterdir()] == [log.name]
    assert (tmp_path / "logs" / log.name).read_text() == ("== train SDC-SN\n./runs/smoke/SDC-SN is trained; "
                                                          "weights ~/w.caffemodel\nverified $NEU_DIR/crazing\n")
