"""The benchmark scripts keep running (tiny sizes; the figures come from full runs)."""

import json
import subprocess
import sys

from conftest import REPO


def test_throughput_benchmark_runs_every_cpu_part_and_reports_ratios(tmp_path, mnist_dir):
    figures = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "throughput.py"),
                           "--device", "cpu", "--data-dir", str(mnist_dir), "--limit-train", "600",
                           "--repeats", "1", "--jobs", "2", "--job-epochs", "1",
                           "--accuracy-epochs", "1", "--search-trials", "2", "--search-epochs", "1",
                           "--search-jobs", "2", "--json", str(figures)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "46,770 params" in out and "(b) nas trial: batch 128, fp32, eager" in out
    assert "(c) --jobs 2" in out and "(d) val accuracy" in out and "(e) nas search" in out
    result = json.loads(figures.read_text())
    assert result["a"] > 0 and result["b"] > 0 and result["c2"] > 0
    assert result["search"]["counts"]["COMPLETE"] + result["search"]["counts"]["PRUNED"] == 2
    assert 0 < result["search"]["overhead_median"] < 1
