"""The runoff of a long --time search: the best net of each of the best few kinds trained
again with the final recipe, its winner the one the final training takes. Real Optuna
storage, real training on synthetic data."""

import time

import optuna
import pytest
import torch

from nas import final, records, runoff
from nas.storage import load_study
from nas.trials import pick_trial
from nas.search import plan
from nas.arch import ArchSpec
from nas.budget import count_params
from nas.data import load
from nas.errors import UsageError
from nas.search.plan import (RUNOFF_NETS, RUNOFF_SHARE, SEARCH_SHARE, SHORTEST_LOOK, Plan,
                             trial_seconds)

CPU = torch.device("cpu")
# (search score, net): the top two are one kind (flatten head, no batch norm), as a
# slice-ranked study on faces tends to be.
TRIALS = [(0.90, "c8k3s2-c16k3s2-flat-nobn"), (0.88, "c8k3s2-c12k3s2-flat-nobn"),
          (0.80, "c8k3s2-c16k3s2-gap"), (0.70, "c8k3s2-c16k3s2-flat"),
          (0.60, "c8k3s2-c8k3s2-gap-nobn")]


def test_only_a_long_time_ends_its_search_with_a_runoff_inside_the_search_share():
    short = Plan(started=0.0, total=600.0)
    assert short.look == 0 and short.slices_end == short.search_end  # the slices as before
    long = Plan(started=0.0, total=7200.0)
    assert long.look >= SHORTEST_LOOK
    assert long.search_end - long.slices_end == pytest.approx(RUNOFF_SHARE * 7200 * SEARCH_SHARE)
    assert long.start_trials_until() == long.slices_end - trial_seconds(7200)
    assert long.end > long.search_end  # the final training keeps its half
    resumed = Plan(started=0.0, total=7200.0, search=False)  # a stopped final training, again
    assert resumed.look == 0


@pytest.fixture
def study():
    data = load("synthetic")
    study = optuna.create_study(direction="maximize")
    for score, text in TRIALS:
        spec = ArchSpec.from_string(text, *data.info.input_shape, data.info.num_classes)
        study.add_trial(optuna.trial.create_trial(
            value=score, user_attrs={"arch": spec.to_dict(), "arch_str": spec.to_string(),
                                     "params": count_params(spec), "space": "cnn"}))
    return study, data


def test_the_runoff_takes_the_best_net_of_each_kind_and_its_winner_is_the_best(study):
    study, data = study
    assert [t.number for t in runoff.entrants(study, RUNOFF_NETS)] == [0, 2, 3]  # not 1: 0's kind
    assert [t.number for t in runoff.entrants(study, 10)] == [0, 2, 3, 4]
    assert pick_trial(study, None).number == 0  # before a runoff: the best search score

    looks = runoff.run_runoff(study, data, CPU, "flip-crop",
                              RUNOFF_NETS, look=2.0, until=time.time() + 60, log=lambda _: None)
    assert [held["trial"] for held in looks] == [0, 2, 3]
    assert all(0 < held["epochs"] and 0 <= held["val_acc"] <= 1 for held in looks)
    assert records.runoff(study) == looks  # kept in the study as they finish
    winner = max(looks, key=lambda held: held["val_acc"])["trial"]
    assert pick_trial(study, None).number == winner

    # Run again (a stopped search's same command): nothing is looked at twice.
    assert runoff.run_runoff(study, data, CPU, "flip-crop", RUNOFF_NETS, 2.0,
                             time.time() + 60, lambda _: None) == looks
    # Out of time: no look is started that could not get half its length.
    lines = []
    study.set_user_attr("runoff", [])
    assert runoff.run_runoff(study, data, CPU, "none", RUNOFF_NETS, 20.0, time.time() + 5,
                             lines.append) == []
    assert lines == ["runoff: no time left to look at trial 0"]


def test_the_runoff_enters_the_kind_that_differs_most_even_when_the_slices_rank_it_last():
    data = load("synthetic")
    # As a slice-ranked faces study at a small budget: the pooled head with batch norm drawn
    # once and scored lowest, every other kind above it.
    ranked = [(0.90, "c8k3s2-c16k3s2-flat-nobn", "cnn"), (0.85, "c8k3s2-c16k3s2-flat", "cnn"),
              (0.80, "c8k3s2-c8k3s2-gap-nobn", "cnn"), (0.19, "c8k3s2-c16k3s2-gap", "cnn")]
    study = optuna.create_study(direction="maximize")
    for score, text, space in ranked:
        spec = ArchSpec.from_string(text, *data.info.input_shape, data.info.num_classes)
        study.add_trial(optuna.trial.create_trial(
            value=score, user_attrs={"arch": spec.to_dict(), "arch_str": spec.to_string(),
                                     "params": count_params(spec), "space": space}))
    # The best first; then the one that differs in head and batch norm both; then the best left.
    assert [t.number for t in runoff.entrants(study, 3)] == [0, 3, 1]
    assert [t.number for t in runoff.entrants(study, 2)] == [0, 3]
    assert [t.number for t in runoff.entrants(study, 1)] == [0]


def test_the_final_training_trains_the_runoffs_winner_not_the_best_search_score(study, tmp_path):
    study, data = study
    study.set_user_attr("runoff", [{"trial": 0, "val_acc": 0.5}, {"trial": 4, "val_acc": 0.6}])
    held = final.train_final(study, tmp_path, data, CPU, "none", time.time() + 3, lambda _: None)
    assert held["trial"] == 4 and final.final_path(tmp_path, 4).is_file()


@pytest.mark.parametrize("planted", ["../x", [{"trial": "0", "val_acc": 0.9}], [{"trial": 0}]])
def test_a_planted_runoff_record_is_refused_in_one_line(study, planted):
    study, _ = study
    study.set_user_attr("runoff", planted)
    with pytest.raises(UsageError, match="'runoff' record is not one nas writes"):
        pick_trial(study, None)


def test_a_long_time_search_ends_in_a_runoff_and_trains_its_winner(tmp_path, run, monkeypatch):
    """The whole command, with the shortest look scaled down so a 30-second search has one."""
    monkeypatch.setattr(plan, "SHORTEST_LOOK", 1.0)
    code, out, err = run("search", "--dataset", "synthetic", "--budget", "20000", "--time", "30s",
                         "--runs-dir", tmp_path, "--study", "long", "--no-progress")
    assert code == 0, err
    assert "then a runoff of 3 kinds of net" in out
    study = load_study(tmp_path / "long")
    looks = records.runoff(study)
    assert looks and len(looks) <= RUNOFF_NETS
    assert [line.split()[2] for line in out.splitlines() if line.startswith("runoff: trial")] == \
        [str(held["trial"]) for held in looks]
    winner = max(looks, key=lambda held: held["val_acc"])
    held = records.final(study)
    assert held["state"] == "done" and held["trial"] == winner["trial"]
    assert held["runoff_val_acc"] == winner["val_acc"]
    assert f"final training: trial {winner['trial']} (the runoff winner)" in out
