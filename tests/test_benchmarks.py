"""The benchmark scripts keep running (tiny sizes; the figures come from full runs)."""

import subprocess
import sys

from conftest import REPO


def test_throughput_benchmark_runs_and_reports_the_ratio(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "throughput.py"),
                           "--device", "cpu", "--data-dir", str(tmp_path), "--limit-train", "512",
                           "--repeats", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "46,770 params" in proc.stdout and "(b)/(a) speed:" in proc.stdout
