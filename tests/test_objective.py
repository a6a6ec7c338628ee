"""--objective pareto: a real multi-objective Optuna study, stopped early by our own
size-aware rule (Optuna cannot prune multi-objective studies)."""

import optuna
import pytest

from nas.storage import load_study
from nas.trials import completed_trials
from nas.search.objective import STOP_STARTUP, size_aware_stop


def finished(params, history, space="cnn"):
    return optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE,
                                      values=[history[-1], params],
                                      user_attrs={"params": params, "val_history": history,
                                                  "space": space})


def test_size_aware_stop_compares_only_with_trials_of_similar_or_smaller_size():
    small = [finished(10_000, [0.50 + i / 100, 0.9]) for i in range(STOP_STARTUP)]  # median 0.52
    big = [finished(40_000, [0.95, 0.99]) for _ in range(10)]
    # A 10k net at 0.51 at the first report loses to its peers; the big nets do not count.
    reason = size_aware_stop(small + big, 1, 0.51, 10_000)
    assert reason.startswith("stopped at 0.25 epochs: val_acc 0.5100 < 0.5200, the median at "
                             "0.25 epochs of 5 completed trials with <= 11,000 params")
    assert size_aware_stop(small + big, 1, 0.53, 10_000) is None  # above its peers' median
    # A 40k net is compared with all 15, whose median (0.95) it does not reach.
    assert "of 15 completed trials" in size_aware_stop(small + big, 1, 0.60, 40_000)
    # Too few peers yet: nothing is stopped.
    assert size_aware_stop(small[:STOP_STARTUP - 1] + big, 1, 0.10, 10_000) is None
    # Peers that have not reached that report do not count.
    assert size_aware_stop(small, 3, 0.10, 10_000) is None


def test_size_aware_stop_compares_a_family_only_with_itself():
    """Depthwise nets learn slower per second on a CPU: against the plain nets' median they
    would all stop at their first report, and a two-family search would have no front of them."""
    plain = [finished(10_000, [0.60 + i / 100, 0.9]) for i in range(STOP_STARTUP)]  # median 0.62
    depthwise = [finished(10_000, [0.40 + i / 100, 0.8], "mobilenet") for i in range(STOP_STARTUP)]
    both = plain + depthwise
    assert size_aware_stop(both, 1, 0.45, 10_000, space="mobilenet") is None  # above its family's 0.42
    reason = size_aware_stop(both, 1, 0.41, 10_000, space="mobilenet")
    assert "val_acc 0.4100 < 0.4200" in reason and "of 5 completed mobilenet trials" in reason
    assert "< 0.6200" in size_aware_stop(both, 1, 0.45, 10_000, space="cnn")
    assert size_aware_stop(plain, 1, 0.10, 10_000, space="mobilenet") is None  # no peers of its own yet


@pytest.mark.parametrize("objective, values", [("pareto", 2), ("pareto-macs", 3)])
def test_pareto_objective_runs_a_multi_objective_study_with_early_stopping(tmp_path, run,
                                                                            objective, values):
    base = ["search", "--dataset", "synthetic", "--space", "mobilenet", "--budget", 20_000,
            "--epochs", 2, "--trials", 14, "--limit-train", 700, "--runs-dir", tmp_path, "--study", "mo",
            "--no-progress"]
    code, out, err = run(*base, "--objective", objective)
    assert code == 0, err
    study = load_study(tmp_path / "mo")
    assert len(study.directions) == values
    assert study.metric_names == ["val_acc", "params", "macs"][:values]
    done = completed_trials(study)
    for t in done:
        assert t.values[1] == t.user_attrs["params"] <= 20_000
        assert t.values[0] == t.user_attrs["val_history"][-1] == t.user_attrs["val_acc"]
    stopped = [t for t in study.trials if "stopped_early" in t.user_attrs]
    assert stopped, out  # synthetic data gives plenty of losers
    for t in stopped:
        assert t.state == optuna.trial.TrialState.PRUNED
        reports = len(t.user_attrs["val_history"])
        assert reports < 2 * 4  # never after the last report
        assert f"STOPPED at {reports / 4:g} epochs" in out
    assert (tmp_path / "mo" / "pareto.json").is_file()
    code, _, err = run("export", tmp_path / "mo", "--best")
    assert code == 0, err
    # Resuming keeps the objective; another one is refused, as is Optuna pruning.
    code, _, err = run(*base, "--objective", "accuracy")
    assert code == 2 and f"was searched with --objective {objective}" in err
    code, _, err = run(*base, "--objective", objective, "--pruner", "hyperband")
    assert code == 2 and "--pruner hyperband needs --objective accuracy" in err


def test_hypervolume_of_a_front_against_the_budget():
    from nas.pareto import hypervolume

    # (20 - 10) x 0.5 + (40 - 20) x 0.8 = 21, of 40 x 1.0
    assert hypervolume([(10, 0.5), (20, 0.8)], 40) == pytest.approx(21 / 40)
    # A dominated point adds nothing; a point over the budget counts for nothing.
    assert hypervolume([(10, 0.5), (15, 0.4), (20, 0.8), (50, 0.99)], 40) == pytest.approx(21 / 40)
    assert hypervolume([], 40) == 0.0


def test_random_sampler_and_timeout(tmp_path, run):
    code, out, err = run("search", "--dataset", "synthetic", "--space", "densenet", "--budget",
                         20_000, "--epochs", 1, "--trials", 100_000, "--timeout", 3,
                         "--sampler", "random", "--runs-dir", tmp_path, "--study", "rnd",
                         "--no-progress")
    assert code == 0, err
    study = load_study(tmp_path / "rnd")
    assert 1 <= len(study.trials) < 1000  # stopped by the clock, not by --trials
    assert study.user_attrs["config"]["sampler"] == "random"
