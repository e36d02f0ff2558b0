"""tools/extra/compare_runs.py: runs on one figure and their values at chosen updates, from Caffe log lines."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fake_run(folder, losses, accuracies):
    """A run folder whose log has the lines Caffe writes: a loss per update, a test pass every 10."""
    folder.mkdir()
    lines = []
    for iteration, loss in enumerate(losses):
        if iteration % 10 == 0:
            lines += [f"I1130 solver.cpp:347] Iteration {iteration}, Testing net (#0)",
                      f"I1130 solver.cpp:414]     Test net output #0: accuracy = {accuracies[iteration // 10]}"]
        lines.append(f"I1130 solver.cpp:239] Iteration {iteration} (1 iter/s, 1s/1 iters), loss = {loss}")
    (folder / "train-20261130-120000.log").write_text("\n".join(lines) + "\n")


def test_values_at_the_chosen_updates_and_both_figures(tmp_path):
    fake_run(tmp_path / "a", [1.8, 75.2, 44.9] + [1.79] * 18, [0.25, 0.1667, 0.1667])
    fake_run(tmp_path / "b", [1.8 - 0.05 * i for i in range(21)], [0.25, 0.4, 0.6])
    out = tmp_path / "figs" / "curves.png"
    run = subprocess.run([sys.executable, str(REPO / "tools" / "extra" / "compare_runs.py"), "--run", f"Adam=a={tmp_path / 'a'}",
                          "--run", f"SGD={tmp_path / 'b'}", "--out", str(out), "--at", "1", "10", "20"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    expected = ("run,update,training_loss,test_accuracy\n"
                "Adam=a,1,75.2,\nAdam=a,10,1.79,0.1667\nAdam=a,20,1.79,0.1667\n"
                "SGD,1,1.75,\nSGD,10,1.3,0.4000\nSGD,20,0.8,0.6000\n")
    assert run.stdout == expected and out.with_suffix(".csv").read_text() == expected
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


def test_until_keeps_the_first_updates_only(tmp_path):
    fake_run(tmp_path / "a", [1.8 - 0.05 * i for i in range(21)], [0.25, 0.4, 0.6])
    run = subprocess.run([sys.executable, str(REPO / "tools" / "extra" / "compare_runs.py"), "--run", f"SGD={tmp_path / 'a'}",
                          "--out", str(tmp_path / "c.png"), "--at", "10", "11", "20", "--until", "10"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "run,update,training_loss,test_accuracy\nSGD,10,1.3,0.4000\nSGD,11,,\nSGD,20,,\n"


def test_a_folder_without_logs_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "tools" / "extra" / "compare_runs.py"), "--run", f"x={tmp_path}",
                          "--out", str(tmp_path / "c.png")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.startswith("error: no train-*.log in") and run.stderr.count("\n") == 1
    assert not (tmp_path / "c.png").exists()
