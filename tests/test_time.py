"""--time: a search spends it on the delivered model (the search, then the chosen net
trained on every training image until the end), and nas train / nas baseline fit their
epochs to it. Real CLI processes on real (synthetic) data, real signals and kills."""

import json
import os
import signal
import subprocess
import sys

import optuna
import pytest
import torch

from conftest import copy_study, writable_study
from nas import final, records
from nas.storage import load_study
from nas.study_folder import read_baselines
from nas.trials import completed_trials, pick_trial
from nas.arch import ArchSpec
from nas.data import load
from nas.model import build
from nas.search.plan import LONGEST_SLICE, SEARCH_SHARE, SLICES, Plan, trial_seconds
from nas.schedule import EPOCH_CAP, cycle_at
from nas.trainer import SPEED_STEPS, WARMUP_STEPS, TrainConfig, train

SPEC = "c16k3-dw32k3s2-dw32k3s2-gap"


def _net(data):
    torch.manual_seed(0)
    return build(ArchSpec.from_string(SPEC, *data.info.input_shape, data.info.num_classes))


def test_a_longer_time_buys_more_trial_slices_not_longer_ones():
    short, ten, thirty = 16.0, 600.0, 1800.0
    assert trial_seconds(short) == pytest.approx(short * SEARCH_SHARE / SLICES)
    assert trial_seconds(ten) <= LONGEST_SLICE and trial_seconds(thirty) == LONGEST_SLICE
    slices = {t: Plan(started=0.0, total=t).search_end / trial_seconds(t) for t in (ten, thirty)}
    assert slices[thirty] == pytest.approx(3 * slices[ten])  # three times the nets, same look


def test_a_timed_training_runs_as_many_epochs_as_fit_and_stops_by_its_limit():
    data = load("synthetic")
    timed = train(_net(data), data, TrainConfig(EPOCH_CAP, lr=2e-2, batch_size=64,
                                                time_limit=4, time_reports=4))
    assert len(timed.history) == 4 and timed.val_acc == timed.history[-1]
    assert timed.seconds <= 4 and 0 < timed.epochs < EPOCH_CAP
    # An epoch cap that binds first ends the run at the cap, annealed (the schedule follows
    # whichever of time and steps is further along).
    capped = train(_net(data), data, TrainConfig(2, lr=2e-2, batch_size=64, time_limit=600,
                                                 time_reports=2))
    assert capped.epochs == 2 and len(capped.history) == 2
    # No validation at all: a final training on every image has none to score.
    blind = train(_net(data), data, TrainConfig(EPOCH_CAP, batch_size=64, time_limit=2,
                                                time_reports=0))
    assert blind.val_acc is None and blind.history == [] and blind.epochs > 0
    assert cycle_at(0.0) < 0.05 and cycle_at(0.25) == 1.0 and cycle_at(1.0) == 0.0


def test_a_net_too_slow_to_validate_within_its_limit_stops_training_after_its_speed_is_known():
    # The images it must still score (a test split of a billion) would take longer than its
    # whole limit: it trains only the steps that measured its speed, then validates.
    data = load("synthetic")
    cap = 3
    slow = train(_net(data), data, TrainConfig(cap, lr=2e-2, batch_size=64, time_limit=600,
                                               time_reports=2, after_images=10**9))
    steps_per_epoch = len(data.train_x) // 64
    assert slow.epochs * steps_per_epoch <= WARMUP_STEPS + SPEED_STEPS + 1 < cap * steps_per_epoch
    assert slow.val_acc is not None and slow.val_acc == slow.history[-1]
    assert all(cycle_at(p / 100) >= cycle_at((p + 1) / 100) for p in range(25, 100))


def test_nas_train_and_baseline_fit_their_epochs_to_a_time(tmp_path, run, searched_synthetic):
    study_dir = copy_study(searched_synthetic("mobilenet", 2, 1)[0], tmp_path / "syn")
    code, out, err = run("train", study_dir, "--best", "--time", "12s")
    assert code == 0, err
    assert "as many epochs as fit in --time 12s" in out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("  report ")] == \
        [f"{k}/5" for k in range(1, 6)]
    figures = json.loads(next((study_dir / "retrained").glob("trial-*.json")).read_text())
    assert figures["time_limit"] == 12 and 0 < figures["epochs"] and figures["train_time"] < 12

    for _ in range(2):  # the same --time again replaces its row; a counted run is another row
        code, out, err = run("baseline", "mnist-gap-8k", study_dir, "--time", "6s")
        assert code == 0, err
    code, _, err = run("baseline", "mnist-gap-8k", study_dir, "--epochs", "1")
    assert code == 0, err
    rows = read_baselines(study_dir)
    assert [(r["name"], r["time_limit"]) for r in rows] == [("mnist-gap-8k", 6), ("mnist-gap-8k", None)]
    assert rows[1]["epochs"] == 1 and 0 < rows[0]["epochs"]

    code, _, err = run("train", study_dir, "--best", "--time", "0m")
    assert code == 2 and "bad time '0m'" in err


def _search(runs, seconds: int) -> list[str]:
    return [sys.executable, "-m", "nas", "search", "--dataset", "synthetic", "--budget", "20000",
            "--time", f"{seconds}s", "--runs-dir", str(runs), "--study", "timed", "--no-progress"]


ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
TIMED = 24  # seconds of the module's timed search


@pytest.fixture(scope="module")
def timed_search(tmp_path_factory):
    """One real --time search of TIMED seconds: (its runs folder, the finished process)."""
    runs = tmp_path_factory.mktemp("timed") / "runs"
    return runs, subprocess.run(_search(runs, TIMED), capture_output=True, text=True, env=ENV)


def test_a_time_search_ends_by_its_time_with_final_weights_that_export(timed_search, run):
    runs, proc = timed_search
    assert proc.returncode == 0, proc.stderr
    study_dir = runs / "timed"
    study = load_study(study_dir)
    held = records.final(study)
    assert held["state"] == "done" and held["train_images"] == 1500  # train + validation split
    # Every trial had the search's slice, and the final training its half of the time. (On a
    # loaded machine the last trial may run into the end of the search: it is then marked
    # interrupted and its parameters queued, a queued trial that never ran.)
    ran = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]
    assert {t.user_attrs["time_slice"] for t in ran} == {round(trial_seconds(TIMED), 2)}
    # No trial failed of its own fault; one the end of the search stopped is failed too,
    # marked interrupted (its parameters queued).
    assert all(records.trial(t).interrupted for t in ran if t.state == optuna.trial.TrialState.FAIL)
    front = json.loads((study_dir / "pareto.json").read_text())
    assert front and {r["trial"] for r in front} <= {t.number for t in completed_trials(study)}
    assert 0 < held["train_time"] <= TIMED * (1 - SEARCH_SHARE)
    assert held["trial"] == pick_trial(study, None).number  # the search's best
    assert final.summary(held) in proc.stdout
    assert "next: nas export" in proc.stdout

    code, out, err = run("export", study_dir, "--best")
    assert code == 0, err
    sidecar = json.loads((study_dir / f"model-trial-{held['trial']}-final.json").read_text())
    assert sidecar["weights_kind"] == "final" and sidecar["val_acc"] is None
    assert sidecar["weights"] == str(final.final_path(study_dir, held["trial"]).resolve())
    assert abs(sidecar["test_acc"] - held["test_acc"]) <= 1 / 150  # the same weights, as saved
    code, out, err = run("export", study_dir, "--best", "--weights", "search")
    assert code == 0, err
    sidecar = json.loads((study_dir / f"model-trial{held['trial']}.json").read_text())
    assert sidecar["weights_kind"] == "search" and sidecar["val_acc"] == held["search_val_acc"]
    code, out, err = run("pareto", study_dir)
    assert code == 0 and final.summary(held) in out, err

    trials = len(study.trials)  # the same command again: done, nothing runs
    again = subprocess.run(_search(runs, TIMED), capture_output=True, text=True, env=ENV)
    assert again.returncode == 0 and "nothing to run" in again.stdout, again.stderr
    assert len(load_study(study_dir).trials) == trials


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_a_stop_during_the_final_training_loses_nothing_and_the_same_command_finishes_it(tmp_path, stop):
    runs = tmp_path / "runs"
    proc = subprocess.Popen(_search(runs, 24), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    while not (line := proc.stdout.readline()).startswith("final training:"):
        assert line, proc.stderr.read()
    proc.send_signal(stop)
    code = proc.wait(timeout=60)
    assert code == (128 + stop if stop == signal.SIGTERM else -stop)
    study = load_study(runs / "timed")
    held = records.final(study)
    assert held["state"] == "training"
    completed = [t.number for t in completed_trials(study)]
    assert completed and held["trial"] in completed

    resumed = subprocess.run(_search(runs, 10), capture_output=True, text=True, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert f"stopped during the final training of trial {held['trial']}" in resumed.stdout
    study = load_study(runs / "timed")
    assert [t.number for t in completed_trials(study)] == completed  # no trial lost, none added
    again = records.final(study)
    assert again["state"] == "done" and again["trial"] == held["trial"]
    assert again["train_time"] < 10  # this run's --time, not the first one's 12 s
    assert final.final_path(runs / "timed", held["trial"]).is_file()


def test_a_planted_final_record_is_refused_in_one_line(tmp_path, run, timed_search):
    study_dir = copy_study(timed_search[0] / "timed", tmp_path / "timed")
    writable_study(study_dir).set_user_attr("final", {"state": "done", "trial": "../../etc"})
    code, out, err = run("export", study_dir, "--best")
    assert code == 2 and "'final' record" in err and "edited or damaged" in err
