"""tools/extra/noise_snr.py: Eq. 5 by hand, and the per-draw SNR of the real noise subsets."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import noise_snr

REPO = Path(__file__).resolve().parents[1]


def test_snr_is_equation_5():
    # sum g^2 = 4 * 100, sum r^2 = 4 * 1 -> 10 log10(100) = 20 dB; halving r adds 10 log10(4) = 6.0206 dB.
    assert noise_snr.snr_db(np.full((2, 2), 10), np.ones((2, 2))) == 20.0
    assert abs(noise_snr.snr_db(np.full((2, 2), 10), np.full((2, 2), 0.5)) - 26.0206) < 1e-4


def test_draws_meet_the_snr_on_average_only(neu_dir):
    run = subprocess.run([sys.executable, "tools/extra/noise_snr.py", "--neu-dir", str(neu_dir), "--per-class", "1"],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "noise_35, 30 draws, SNR - 35 dB as drawn", "noise_35, 30 draws, SNR - 35 dB as stored",
        "noise_20, 30 draws, SNR - 20 dB as drawn", "noise_20, 30 draws, SNR - 20 dB as stored"]
    for line in lines:
        assert line.endswith("0.0% exact")  # no draw hits the target exactly
        mean = float(re.search(r"mean ([-+][\d.]+) dB", line).group(1))
        assert abs(mean) < 0.5
