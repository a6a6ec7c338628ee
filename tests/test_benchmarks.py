"""The benchmark scripts keep running (tiny sizes; the figures come from full runs)."""

import json
import os
import subprocess
import sys

from conftest import REPO

from nas.storage import load_study


def test_throughput_benchmark_runs_every_cpu_part_and_reports_ratios(tmp_path, mnist_dir):
    figures = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "throughput.py"),
                           "--device", "cpu", "--data-dir", str(mnist_dir), "--limit-train", "600",
                           "--repeats", "1", "--jobs", "2", "--job-epochs", "1",
                           "--accuracy-epochs", "1", "--search-trials", "2", "--search-epochs", "1",
                           "--search-jobs", "2",
                           "--search-max-macs", "300k",  # small nets: the test checks the plumbing
                           "--json", str(figures)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "46,770 params" in out and "(b) nas trial: batch 128, fp32, eager" in out
    assert "(c) --jobs 2" in out and "(d) val accuracy" in out and "(e) nas search" in out
    result = json.loads(figures.read_text())
    assert result["a"] > 0 and result["b"] > 0 and result["c2"] > 0
    assert result["search"]["counts"]["COMPLETE"] + result["search"]["counts"]["PRUNED"] == 2
    assert 0 < result["search"]["overhead_median"] < 1


def test_quality_benchmark_scores_each_configuration_by_hypervolume(tmp_path):
    figures = tmp_path / "quality.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "quality.py"),
                           "--datasets", "synthetic", "--configs", "random,pareto", "--seeds", "0",
                           "--budget", "20000", "--seconds", "4", "--epochs", "2",
                           "--max-macs", "300000",
                           "--json", str(figures)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "synthetic      random" in proc.stdout and "synthetic      pareto" in proc.stdout
    runs = json.loads(figures.read_text())["runs"]
    assert [r["config"] for r in runs] == ["random", "pareto"]
    for r in runs:
        assert r["trials"] >= 1 and 0 < r["hypervolume"] <= 1
        assert all(p["params"] <= 20_000 for p in r["front"])
        assert r["best_test_acc"] == max(r["front"], key=lambda p: p["val_acc"])["test_acc"]


def _scratch_env(tmp_path):
    """The environment with its temporary folder in ``tmp_path/scratch``, to see what is left there."""
    (tmp_path / "scratch").mkdir()
    return {**os.environ, "TMPDIR": str(tmp_path / "scratch")}


def test_equal_time_benchmark_runs_a_timed_search_against_hand_designs_at_the_same_time(tmp_path):
    figures = tmp_path / "equal.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "equal_time.py"),
                           "--datasets", "synthetic", "--times", "10s", "--budget", "20000",
                           "--baselines", "mnist-gap-8k", "--json", str(figures)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=_scratch_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    row = json.loads(figures.read_text())["rows"][0]
    assert row["search"]["weights"] == "final" and 0 <= row["search"]["test_acc"] <= 1
    assert [b["name"] for b in row["baselines"]] == ["mnist-gap-8k"]
    assert row["baselines"][0]["wall"] > 0 and row["search"]["wall"] > 0
    assert isinstance(row["beats_every_hand_design"], bool)
    assert not list((tmp_path / "scratch").glob("equal-time-*"))  # its temporary study folders went with it


def test_time_plan_benchmark_runs_each_variant_of_the_plan(tmp_path):
    figures = tmp_path / "plan.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "time_plan.py"),
                           "--dataset", "synthetic", "--time", "14s", "--budget", "20000",
                           "--variant", "share=0.4,slices=4,augment=crop", "--json", str(figures)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=_scratch_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(figures.read_text())["rows"]
    assert row["variant"] == {"share": "0.4", "slices": "4", "augment": "crop"}
    assert "each trial 1s" in row["log"] and "augment crop" in row["log"]  # 14 x 0.4 / 4 = 1.4 s
    assert not list((tmp_path / "scratch").glob("time-plan-*"))  # its temporary study folders went with it


def test_train_recipe_benchmark_trains_one_net_once_per_recipe(tmp_path, searched_synthetic):
    from conftest import copy_study
    from nas.trials import pick_trial

    study_dir = copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path / "runs" / "syn")
    trial = pick_trial(load_study(study_dir), None).number
    figures = tmp_path / "recipe.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "train_recipe.py"),
                           # --time leaves room for a loaded machine's start; one epoch ends each
                           str(study_dir), "--trial", str(trial), "--time", "60s",
                           "--train-args", "--epochs 1",
                           "--recipes", "--augment none; --augment flip-crop --mixup 0.3 "
                           "--label-smoothing 0", "--json", str(figures)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(figures.read_text())["rows"]
    assert [(r["augment"], r["mixup"], r["label_smoothing"]) for r in rows] == [
        ("none", 0.0, 0.1), ("flip-crop", 0.3, 0.0)]
    assert all(0 <= r["test_acc"] <= 1 and r["epochs"] > 0 for r in rows)
    # Each row is its own retrain of that trial, read from its own sidecar.
    sidecars = [json.loads(p.read_text()) for p in sorted((study_dir / "retrained").glob("*.json"))]
    assert sorted(s["augment"] for s in sidecars) == ["flip-crop", "none"]
    assert {s["trial"] for s in sidecars} == {trial}


def test_spread_benchmark_trains_one_net_in_one_process_and_spread(tmp_path, searched_synthetic):
    from conftest import copy_study
    from nas.trials import pick_trial

    study_dir = copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path / "runs" / "syn")
    trial = pick_trial(load_study(study_dir), None).number
    figures = tmp_path / "spread.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "spread.py"), str(study_dir),
                           "--trial", str(trial), "--time", "60s", "--train-args", "--epochs 2",
                           "--modes", "one,thread,spread", "--json", str(figures)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(figures.read_text())["rows"]
    assert [(r["mode"], r["processes"], r["epochs"]) for r in rows] == [
        ("one", 1, 2), ("thread", 1, 2), ("spread", 2, 2)]
    assert all(0 <= r["test_acc"] <= 1 for r in rows)
    sidecars = [json.loads(p.read_text()) for p in sorted((study_dir / "retrained").glob("*.json"))]
    assert sorted(s["processes"] for s in sidecars) == [1, 1, 2]


def test_study_trials_lists_every_sampled_trial_best_first(tmp_path, searched_synthetic):
    study_dir, _ = searched_synthetic("cnn", 3, 1)
    figures = tmp_path / "trials.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "study_trials.py"),
                           str(study_dir), "--json", str(figures)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(figures.read_text())["trials"]
    study = load_study(study_dir)
    assert sorted(r["trial"] for r in rows) == [t.number for t in study.trials]
    complete = [r["score"] for r in rows if r["state"] == "complete"]
    assert complete == sorted(complete, reverse=True) and rows[0]["state"] == "complete"
    assert all(r["arch"] == study.trials[r["trial"]].user_attrs["arch_str"] for r in rows)


def test_families_benchmark_judges_each_limit_on_the_picks_it_trained(tmp_path):
    figures = tmp_path / "families.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "families.py"),
                           "--dataset", "synthetic", "--space", "cnn,mobilenet", "--budget", "20000",
                           "--time", "12s", "--at", "8k,20k", "--train-time", "60s",
                           "--search-args", "--limit-train 300 --objective pareto",
                           "--train-args", "--epochs 1",
                           "--runs-dir", str(tmp_path / "runs"), "--json", str(figures)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(figures.read_text())
    picks = {best["trial"] for row in result["on_search_scores"] for best in row["best"].values() if best}
    assert result["trained_trials"] == sorted(picks)
    judged = [row for row in result["on_trained_nets"] if any(row["best"].values())]
    assert judged  # the 20k row holds every net the search trained
    for row in judged:
        assert row["by"] == "trained test_acc"
        assert all(best["trained"]["test_acc"] is not None for best in row["best"].values() if best)
    trained = sorted((tmp_path / "runs" / "families" / "retrained").glob("trial-*.json"))
    assert len(trained) == len(picks)
    # The trial table reads a two-objective study too: its score is the accuracy objective.
    table = tmp_path / "trials.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "study_trials.py"),
                           str(tmp_path / "runs" / "families"), "--json", str(table)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(tmp_path / "runs" / "families")
    for row in json.loads(table.read_text())["trials"]:
        values = study.trials[row["trial"]].values
        assert row["score"] == (values[0] if values else None)
        assert row["space"] == study.trials[row["trial"]].user_attrs["space"]


def test_cpu_speed_benchmark_measures_threads_and_processes_side_by_side(tmp_path):
    figures = tmp_path / "speed.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cpu_speed.py"), "--threads", "1",
                           "--input", "1x48x48", "--classes", "7", "--side-by-side", "2",
                           "--json", str(figures), "c8k3s2-c8k3s2-gap"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "CPU_SPEED_SECONDS": "0.3"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(figures.read_text())
    [row] = result["rows"]
    assert result["input"] == "1x48x48" and row["arch"] == "c8k3s2-c8k3s2-gap"
    assert set(row["images_per_s"]) == {"1", "2 x 1 thr"} and min(row["images_per_s"].values()) > 0
