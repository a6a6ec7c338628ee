"""End to end on synthetic data through the real CLI, real SQLite storage and TorchScript."""

import json
import os
import re
import shutil

import optuna
from conftest import copy_study, dashboard_study_names, read_only, writable_study
import pytest
import torch

from nas import records
from nas.storage import load_study
from nas.study_folder import weights_path
from nas.trials import completed_trials
from nas.weights import load_trained
from nas.budget import count_params
from nas.arch import ArchSpec
from nas.search.plan import SEARCH_SHARE

BUDGET = 20_000


@pytest.fixture
def searched(searched_synthetic, tmp_path):
    """A private copy of one 4-trial search (its journal file included), so each test may
    add to or change its study."""
    original, out = searched_synthetic("mobilenet", 4, 2)
    study_dir = copy_study(original, tmp_path / "runs" / "syn")
    return study_dir, out.replace(str(original.resolve()), str(study_dir.resolve()))


def load(study_dir):
    return load_study(study_dir)


def test_search_records_everything_and_writes_front(searched):
    study_dir, out = searched
    assert f"optuna-dashboard {(study_dir / 'journal.log').resolve()}" in out
    assert out.count("] trial ") == 4
    study = load(study_dir)
    assert study.user_attrs["seed"] == 0 and "optuna" in study.user_attrs["versions"]
    assert study.user_attrs["config"]["budget"] == BUDGET
    assert sum(study.user_attrs["trial_counts"].values()) == 4
    for t in study.trials:
        assert t.user_attrs["params"] <= BUDGET or "infeasible" in t.user_attrs
        spec = ArchSpec.from_dict(t.user_attrs["arch"])
        assert spec.to_string() == t.user_attrs["arch_str"]
        assert count_params(spec) == t.user_attrs["params"]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete, "no trial completed"
    for t in complete:
        assert t.user_attrs["train_time"] > 0 and set(t.intermediate_values) == set(range(1, 2 * 4 + 1))
        # The CPU path, as recorded: eager fp32 at batch 128; timings that add up.
        a = t.user_attrs
        assert (a["batch_size"], a["bf16"], a["cuda_graph"], a["device"]) == (128, False, False, "cpu")
        assert 0 < a["eval_time"] < a["train_time"] and a["build_time"] > 0 and a["host"]
        assert "gpu_mem_allocated" not in a and "graph_fallback" not in a
        # Nothing over budget was ever built: the saved weights hold <= BUDGET numbers.
        state = torch.load(weights_path(study_dir, t.number), weights_only=True)
        assert sum(v.numel() for k, v in state.items() if "running" not in k
                   and "num_batches" not in k) <= BUDGET

    rows = json.loads((study_dir / "pareto.json").read_text())
    assert rows and set(rows[0]) == {"trial", "space", "params", "macs", "flash", "ram", "val_acc",
                                   "test_acc", "arch", "weights"}
    assert {r["weights"] for r in rows} == {"search"}  # the figures of the search's weights
    params = [r["params"] for r in rows]
    accs = [r["val_acc"] for r in rows]
    assert params == sorted(params) and accs == sorted(accs)  # a front: bigger must be better
    assert all(r["test_acc"] is not None for r in rows)
    assert (study_dir / "pareto.csv").read_text().startswith("trial,space,params,macs,flash,ram,val_acc")
    assert (study_dir / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_resumes_and_other_space_joins_the_same_study(searched, run):
    study_dir, _ = searched
    runs = study_dir.parent
    common = ["--dataset", "synthetic", "--budget", BUDGET, "--epochs", 2, "--runs-dir", runs,
              "--study", "syn", "--no-progress"]
    code, out, _ = run("search", "--space", "mobilenet", "--trials", 4, *common)
    assert code == 0 and "nothing to run" in out and len(load(study_dir).trials) == 4
    code, out, _ = run("search", "--space", "mobilenet", "--trials", 5, *common)
    assert code == 0 and "1 to go" in out and len(load(study_dir).trials) == 5
    code, out, _ = run("search", "--space", "cnn", "--trials", 2, *common)
    assert code == 0
    spaces = [t.user_attrs["space"] for t in load(study_dir).trials]
    assert spaces.count("mobilenet") == 5 and spaces.count("cnn") == 2
    code, out, _ = run("pareto", study_dir)
    assert code == 0 and "trial  space" in out


def test_several_spaces_in_one_search_draw_a_family_per_trial(tmp_path, run):
    common = ["--dataset", "synthetic", "--budget", BUDGET, "--epochs", 1, "--limit-train", 200,
              "--runs-dir", tmp_path, "--study", "both", "--no-progress"]
    code, out, err = run("search", "--space", "cnn,mobilenet", "--trials", 8, *common)
    assert code == 0, err
    trials = load(tmp_path / "both").trials
    families = [t.user_attrs["space"] for t in trials]
    # By turn: each family gets its half, whatever the sampler makes of their scores.
    assert len(trials) == 8 and families == ["cnn", "mobilenet"] * 4, families
    for t in trials:  # only the recorded family's parameters
        assert {name.split(".")[0] for name in t.params} == {t.user_attrs["space"]}
    # --trials counts the trials of the spaces named: a one-space run counts its own only.
    code, out, _ = run("search", "--space", "cnn,mobilenet", "--trials", 8, *common)
    assert code == 0 and "nothing to run" in out
    code, out, _ = run("search", "--space", "cnn", "--trials", families.count("cnn") + 1, *common)
    assert code == 0 and "1 to go" in out and len(load(tmp_path / "both").trials) == 9
    code, out, _ = run("compare", tmp_path / "both", "--out", tmp_path / "compare.png")
    assert code == 0 and "both/cnn" in out and "both/mobilenet" in out, out


def test_every_export_is_exact_and_within_the_budget(searched, run, tmp_path):
    study_dir, _ = searched
    study = load(study_dir)
    completed = completed_trials(study)
    assert len(completed) >= 2
    for trial in completed:  # every model the study can export
        out = tmp_path / "m" / f"trial{trial.number}.pt"
        code, stdout, err = run("export", study_dir, "--trial", trial.number, "--out", out)
        assert code == 0, err
        meta = json.loads(out.with_suffix(".json").read_text())
        for key in ("input_shape", "normalization", "classes", "params", "macs", "val_acc",
                    "test_acc", "arch"):
            assert key in meta
        assert meta["input_shape"] == [1, 16, 16]
        # Plain torch.jit.load, no nas code: the params are the stored count, <= budget.
        module = torch.jit.load(str(out))
        spec = ArchSpec.from_string(meta["arch"], 1, 16, 16, len(meta["classes"]))
        in_file = sum(p.numel() for p in module.parameters())
        assert in_file == count_params(spec) == trial.user_attrs["params"] == meta["params"]
        assert in_file <= BUDGET
        # Same outputs as the eager model rebuilt from the study, normalisation included.
        _, net = load_trained(study_dir, trial)
        x = torch.rand(32, 1, 16, 16)
        mean, std = (torch.tensor(meta["normalization"][k]).view(1, -1, 1, 1)
                     for k in ("mean", "std"))
        with torch.no_grad():
            assert (module(x) - net((x - mean) / std)).abs().max().item() <= 1e-6
        assert meta["max_abs_diff_vs_eager"] <= 1e-6
    code, _, err = run("export", study_dir, "--best")
    assert code == 0 and (study_dir / f"model-trial{study.best_trial.number}.pt").is_file(), err


def test_resuming_with_settings_the_trials_were_not_searched_under_is_refused(searched, run):
    study_dir, _ = searched
    before = len(load(study_dir).trials)
    base = ["search", "--dataset", "synthetic", "--space", "mobilenet", "--trials", 6,
            "--epochs", 1, "--runs-dir", study_dir.parent, "--study", "syn", "--no-progress"]
    for extra, message in ((["--budget", 30_000], "was searched with --budget 20000; got --budget 30000"),
                           (["--budget", BUDGET, "--limit-train", 500],
                            "was searched with --limit-train None; got --limit-train 500")):
        code, _, err = run(*base, *extra)
        assert code == 2 and message in err and err.count("\n") == 1, err
        assert "(pass another --study, or the same" in err
    assert len(load(study_dir).trials) == before  # nothing was added


class _RunsCode:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_damaged_or_planted_weights_file_is_one_line_and_runs_nothing(searched, run, tmp_path):
    import pickle

    study_dir, _ = searched
    trial = completed_trials(load(study_dir))[0].number
    weights = weights_path(study_dir, trial)
    good, marker = weights.read_bytes(), tmp_path / "code-ran"
    for bad in (good[:len(good) // 2], b"garbage" * 10, pickle.dumps(_RunsCode(marker)),
                pickle.dumps({"net.0.weight": _RunsCode(marker)})):
        weights.write_bytes(bad)
        code, _, err = run("export", study_dir, "--trial", trial, "--out", tmp_path / "m.pt")
        assert code == 2 and err.count("\n") == 1, err
        assert f"{weights} is not a weights file nas can load" in err
        assert "weights_only" not in err and not marker.exists()
    assert not (tmp_path / "m.pt").exists()


def test_unwritable_places_are_one_line_and_change_nothing(searched, run, tmp_path):
    study_dir, _ = searched
    trial = completed_trials(load(study_dir))[0].number
    (tmp_path / "ro").mkdir()
    (tmp_path / "dir.pt").mkdir()
    with read_only(tmp_path / "ro"):
        code, _, err = run("export", study_dir, "--trial", trial, "--out", tmp_path / "ro" / "m.pt")
        assert code == 2 and "cannot write --out" in err and err.count("\n") == 1, err
    assert list((tmp_path / "ro").iterdir()) == []
    code, _, err = run("export", study_dir, "--trial", trial, "--out", tmp_path / "dir.pt")
    assert code == 2 and "is a folder; give a file path ending in .pt" in err
    before = len(load(study_dir).trials)
    with read_only(study_dir):
        code, _, err = run("search", "--dataset", "synthetic", "--space", "mobilenet", "--budget", BUDGET,
                           "--trials", 6, "--epochs", 1, "--runs-dir", study_dir.parent,
                           "--study", study_dir.name, "--no-progress")
        assert code == 2 and "cannot write in study folder" in err and err.count("\n") == 1, err
    assert len(load(study_dir).trials) == before


def test_export_refuses_a_model_over_the_study_budget(searched, run, tmp_path):
    # Finished trials cannot be edited; the study's recorded budget can, as a corrupted or
    # hand-edited database might be.
    study_dir, _ = searched
    study = writable_study(study_dir)
    trial = completed_trials(study)[0]
    study.set_user_attr("config", {**study.user_attrs["config"],
                                   "budget": trial.user_attrs["params"] - 1})
    code, _, err = run("export", study_dir, "--trial", trial.number, "--out", tmp_path / "x.pt")
    assert code == 2 and f"trial {trial.number}: " in err and "over the study's budget" in err
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "x.json").exists()


def test_failing_trials_do_not_stop_the_search(tmp_path, run):
    # A learning rate this large makes the loss non-finite for real: every trial fails.
    code, out, err = run("search", "--dataset", "synthetic", "--space", "cnn", "--trials", 3,
                         "--epochs", 1, "--lr", 1e10, "--runs-dir", tmp_path, "--study", "nan",
                         "--no-progress", "--budget", BUDGET)
    assert code == 0, err
    study = load(tmp_path / "nan")
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(study.trials) == 3 and len(failed) == 3
    assert all("Diverged" in t.user_attrs["fail_reason"] for t in failed)
    assert "FAILED (Diverged" in out
    # ...and exporting a study without a completed trial is a clear usage error.
    code, _, err = run("export", tmp_path / "nan", "--best")
    assert code == 2 and "no completed trial" in err


def test_trials_slower_than_min_speed_are_stopped_at_their_first_report(tmp_path, run):
    code, out, err = run("search", "--dataset", "synthetic", "--trials", 2, "--epochs", 1,
                         "--min-speed", "1000M", "--runs-dir", tmp_path, "--study", "slow",
                         "--no-progress", "--budget", BUDGET)
    assert code == 0, err  # no trial completed, and that is no crash
    study = load(tmp_path / "slow")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    for t in study.trials:
        assert not t.intermediate_values  # stopped before its first report was scored
        speed = float(t.user_attrs["too_slow"].split()[2].replace(",", ""))
        assert 10 < speed < 1_000_000_000
        assert f"TOO SLOW ({speed:,.0f} images/s < 1,000,000,000)" in out
    assert "0 complete, 2 pruned" in out


def test_config_preset_with_flags_overriding(tmp_path, run):
    preset = tmp_path / "syn.toml"
    preset.write_text('dataset = "synthetic"\nspace = "cnn"\nbudget = 15000\ntrials = 5\n'
                      'epochs = 1\nconv_layers = "2-3"\nstudy = "preset"\n')
    code, out, err = run("search", "--config", preset, "--trials", 2, "--runs-dir", tmp_path,
                         "--no-progress")
    assert code == 0, err
    study = load(tmp_path / "preset")
    assert len(study.trials) == 2  # the flag beat the preset's 5
    assert study.user_attrs["config"]["conv_layers"] == [2, 3]
    assert all(2 <= t.user_attrs["conv_layers"] <= 3 for t in study.trials
               if "infeasible" not in t.user_attrs)


def test_shipped_study_presets_are_valid():
    from conftest import REPO
    from nas.cli import build_parser
    from nas.commands.search import search_config

    presets = sorted((REPO / "studies").glob("*.toml"))
    assert presets
    for path in presets:
        cfg, _ = search_config(build_parser().parse_args(["search", "--config", str(path)]))
        assert cfg.study_name and cfg.trials >= 1


def test_the_fer2013_presets_hold_the_rows_they_are_for():
    """The users' FER2013 rows: <= 50k and <= 25k params, 2-4 conv layers up to 1M, both
    families in one study; each a --time search of at most three hours."""
    from conftest import REPO
    from nas.cli import build_parser
    from nas.commands.search import search_config

    def preset(name):
        path = REPO / "studies" / f"{name}.toml"
        return search_config(build_parser().parse_args(["search", "--config", str(path)]))[0]

    rows = {"fer2013-50k-2h": 50_000, "fer2013-25k-2h": 25_000, "fer2013-2to4conv-1m": 1_000_000,
            "fer2013-families": 50_000}
    for name, budget in rows.items():
        cfg = preset(name)
        assert (cfg.dataset, cfg.budget, cfg.study_name) == ("fer2013", budget, name)
        assert cfg.time is not None and cfg.time <= 3 * 3600 and cfg.epochs is None
    assert preset("fer2013-2to4conv-1m").conv_layers == (2, 4)
    assert set(preset("fer2013-families").spaces) == {"cnn", "mobilenet"}
    assert preset("fer2013-families").objective == "pareto"  # a front per family, not one best


def test_the_microcontroller_presets_hold_their_flash_and_ram():
    from conftest import REPO
    from nas.cli import build_parser
    from nas.commands.search import search_config

    rows = {"mnist-mcu-4500B": ("mnist", 4500, 2500), "mnist-mcu-64KB": ("mnist", 64_000, 64_000),
            "fashion-mnist-mcu-64KB": ("fashion-mnist", 64_000, 64_000)}
    for name, (dataset, flash, ram) in rows.items():
        path = REPO / "studies" / f"{name}.toml"
        cfg = search_config(build_parser().parse_args(["search", "--config", str(path)]))[0]
        assert (cfg.dataset, cfg.max_flash, cfg.max_ram, cfg.study_name) == (dataset, flash, ram, name)
        assert cfg.constraints().max_ram == ram and cfg.time == 15 * 60


def test_optuna_dashboard_opens_the_printed_storage_url(searched):
    """Start the real optuna-dashboard on loopback with the URL `nas search` printed."""
    import re

    _, out = searched
    url = re.search(r"optuna-dashboard (\S+)", out).group(1)
    assert "syn" in dashboard_study_names(url)


def test_explicit_storage_url_and_hyperband_pruner(tmp_path, run):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    code, out, err = run("search", "--dataset", "synthetic", "--space", "cnn", "--trials", 3,
                         "--epochs", 3, "--pruner", "hyperband", "--storage", url,
                         "--runs-dir", tmp_path / "runs", "--study", "remote", "--no-progress")
    assert code == 0, err
    assert (tmp_path / "elsewhere.db").is_file()
    assert not (tmp_path / "runs" / "remote" / "journal.log").exists()
    pointer = json.loads((tmp_path / "runs" / "remote" / "study.json").read_text())
    assert pointer == {"study_name": "remote", "storage": url}
    study = optuna.load_study(study_name="remote", storage=url)
    assert len(study.trials) == 3
    assert load_study(tmp_path / "runs" / "remote", url).user_attrs["config"]["pruner"] == "hyperband"
    code, _, err = run("export", tmp_path / "runs" / "remote", "--best")
    assert code == 2 and "names a file outside the folder as its storage" in err
    code, _, err = run("export", tmp_path / "runs" / "remote", "--best", "--storage", url)
    assert code == 0, err


def test_relative_storage_paths_read_the_same_from_any_folder(tmp_path, run, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    args = ["search", "--dataset", "synthetic", "--space", "cnn", "--budget", BUDGET, "--trials", 1,
            "--epochs", 1, "--no-progress"]
    assert run(*args, "--study", "rel", "--storage", "sqlite:///rel.db")[0] == 0
    assert run(*args, "--study", "own")[0] == 0  # the default: a journal in the study folder
    assert json.loads((tmp_path / "a/runs/own/study.json").read_text())["storage"] == "journal.log"
    monkeypatch.chdir(tmp_path / "b")
    # A storage outside the folder is opened when the user names it (from any folder too).
    for study, named in (("rel", ["--storage", f"sqlite:///{tmp_path / 'a' / 'rel.db'}"]), ("own", [])):
        code, out, err = run("pareto", tmp_path / "a" / "runs" / study, *named)
        assert code == 0 and "written:" in out, err
    assert list((tmp_path / "b").iterdir()) == []  # a read-only command created nothing here
    # A copied folder reads its own journal, not the original's.
    copy = tmp_path / "b" / "copy"
    shutil.copytree(tmp_path / "a" / "runs" / "own", copy)
    (tmp_path / "a/runs/own/journal.log").unlink()
    assert run("pareto", copy)[0] == 0
    code, _, err = run("pareto", tmp_path / "a" / "runs" / "own")
    assert code == 2 and "its storage" in err and "journal.log is missing" in err
    assert not (tmp_path / "a/runs/own/journal.log").exists()  # and did not create one


def test_unreachable_storage_is_a_usage_error(tmp_path, run):
    code, _, err = run("search", "--dataset", "synthetic", "--storage",
                       "postgresql://nobody@127.0.0.1:1/none", "--runs-dir", tmp_path)
    assert code == 2 and "cannot open storage" in err and err.count("\n") == 1
    assert not (tmp_path / "synthetic-50k").exists()  # nothing written


def test_parallel_workers_share_one_study_without_losing_or_repeating_trials(tmp_path, run):
    common = ["--dataset", "synthetic", "--space", "cnn", "--budget", BUDGET, "--epochs", 1,
              "--jobs", 3, "--runs-dir", tmp_path, "--study", "par", "--no-progress"]
    code, _, err = run("search", "--trials", 10, *common)
    assert code == 0, err
    code, _, err = run("search", "--trials", 13, *common)  # resume, again in parallel
    assert code == 0, err
    study = load(tmp_path / "par")
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(13))  # unique and contiguous: none lost, none twice
    assert all(t.state.is_finished() for t in study.trials)
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert weights_path(tmp_path / "par", t.number).is_file()
    # Different workers drew different architectures (no shared sampler seed).
    assert len({t.user_attrs["arch_str"] for t in study.trials}) == 13


def test_jobs_says_how_many_workers_really_run(tmp_path, run):
    code, out, err = run("search", "--dataset", "synthetic", "--space", "cnn", "--budget", BUDGET,
                         "--trials", 2, "--epochs", 1, "--limit-train", 200, "--jobs", 64,
                         "--runs-dir", tmp_path, "--study", "j", "--no-progress")
    assert code == 0, err
    cores = os.cpu_count()
    assert ", 2 worker processes (--jobs 64, but 2 trials to run)" in out
    assert ("sharing" in out) == (cores < 2)
    assert len({t.user_attrs["pid"] for t in load(tmp_path / "j").trials}) == 2


def test_jobs_0_runs_a_worker_per_core_each_on_one_thread(tmp_path, run):
    code, out, err = run("search", "--dataset", "synthetic", "--space", "cnn", "--budget", BUDGET,
                         "--trials", 4, "--epochs", 1, "--limit-train", 200, "--jobs", 0,
                         "--runs-dir", tmp_path, "--study", "j0", "--no-progress")
    assert code == 0, err
    workers = len(os.sched_getaffinity(0))
    assert (f", {workers} worker processes" in out) == (workers > 1)
    assert "sharing" not in out
    assert len({t.user_attrs["pid"] for t in load(tmp_path / "j0").trials}) == min(workers, 4)


@pytest.mark.parametrize("space, given, searched", [("mobilenet", "4-4", (4, 4)),
                                                    ("mobilenet", "10-10", (10, 10)),
                                                    ("cnn", "9-99", (9, 9))])
def test_conv_layer_ranges_are_met_or_clipped_to_the_budget(tmp_path, run, space, given, searched):
    code, out, err = run("search", "--dataset", "synthetic", "--space", space, "--budget", "5k",
                         "--conv-layers", given, "--trials", 3, "--epochs", 1, "--limit-train", 200,
                         "--runs-dir", tmp_path, "--study", "c", "--no-progress")
    assert code == 0, err
    low, high = map(int, given.split("-"))
    clipped = searched[1] < high
    assert (f"--conv-layers {given}: no {space!r} net deeper than {searched[1]} conv layers fits "
            f"5,000 params; searching {searched[0]}-{searched[1]}" in out) == clipped
    trials = load(tmp_path / "c").trials
    assert len(trials) == 3 and all("infeasible" not in t.user_attrs for t in trials), out
    assert all(searched[0] <= t.user_attrs["conv_layers"] <= searched[1] for t in trials)


def test_time_ends_the_search_and_its_final_training_by_then_with_two_workers(tmp_path, run):
    # One worker: tests/test_time.py's timed search.
    code, out, err = run("search", "--dataset", "synthetic", "--space", "cnn", "--budget", BUDGET,
                         "--limit-train", 300, "--time", "16s", "--jobs", 2,
                         "--runs-dir", tmp_path, "--study", "t", "--no-progress")
    assert code == 0, err
    study = load(tmp_path / "t")
    held = records.final(study)  # the final training ran, in its half of the time
    assert held["state"] == "done" and 0 < held["train_time"] <= 16 * (1 - SEARCH_SHARE), out
    complete = completed_trials(study)
    assert complete and (tmp_path / "t" / "pareto.json").is_file()
    assert {r["trial"] for r in json.loads((tmp_path / "t" / "pareto.json").read_text())} <= {
        t.number for t in complete}
    # Every trial had the same slice, started only with all of it left: none was cut short.
    assert {t.user_attrs["time_slice"] for t in study.trials} == {round(16 * 0.5 / 12, 2)}
    assert all(t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL
               for t in study.trials)
    assert records.final(study)["state"] == "done", out


def test_trial_time_sets_every_timed_trials_slice(tmp_path, run):
    code, out, err = run("search", "--dataset", "synthetic", "--space", "cnn", "--budget", BUDGET,
                         "--limit-train", 300, "--time", "14s", "--trial-time", "3s",
                         "--runs-dir", tmp_path, "--study", "t", "--no-progress")
    assert code == 0, err
    assert "(each trial 3s)" in out and "trials of 3s each" in out
    study = load(tmp_path / "t")
    assert study.trials and {t.user_attrs["time_slice"] for t in study.trials} == {3.0}
    # Trials start only with a whole slice left in the search's 7 s.
    assert len(study.trials) <= 7 // 3 + sum(t.state == optuna.trial.TrialState.PRUNED
                                            for t in study.trials)
    assert records.final(study)["state"] == "done", out


def test_slow_steps_say_what_they_do_in_one_log_line_each(searched, run, tmp_path, monkeypatch):
    from nas import progress

    monkeypatch.setattr(progress, "SLOW_SECONDS", 0.0)  # every step counts as slow here
    study_dir, _ = searched
    (study_dir / "test_acc.json").unlink()  # so the front is scored again
    code, _, err = run("pareto", study_dir)
    assert code == 0, err
    lines = [line for line in err.splitlines() if "front trial(s) on" in line]
    assert len(lines) == 1 and re.fullmatch(r"nas: scoring \d+ front trial\(s\) on [\d,]+ test "
                                            r"images: done in [\d.]+ s", lines[0]), err
    code, _, err = run("export", study_dir, "--best", "--out", tmp_path / "m.pt")
    assert code == 0 and err.count("nas: writing the TorchScript file and checking it on") == 1, err


def test_one_cycle_schedule_works_for_any_number_of_steps():
    from nas.schedule import one_cycle

    for total in (1, 2, 3, 4, 7, 100):
        factors = [one_cycle(total)(step) for step in range(total)]
        assert max(factors) == 1.0 and all(0.0 <= f <= 1.0 for f in factors)
    factors = [one_cycle(100)(step) for step in range(100)]
    assert factors[24] == 1.0 and factors[99] < 0.01  # peak after warm-up, ~0 at the end


def test_tiny_training_runs_do_not_crash(tmp_path, run):
    code, _, err = run("search", "--dataset", "synthetic", "--limit-train", 100, "--trials", 1,
                       "--epochs", 1, "--runs-dir", tmp_path, "--no-progress")
    assert code == 0, err
    assert completed_trials(load(tmp_path / "synthetic-50k"))


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_weak_trials_are_pruned_inside_their_first_epoch(tmp_path, run, pruner):
    """Four reports an epoch: the pruners may stop a trial before its first epoch ends; a
    trial's last report scores the whole validation split."""
    code, out, err = run("search", "--dataset", "synthetic", "--space", "mobilenet", "--budget",
                         BUDGET, "--epochs", 1, "--trials", 10, "--pruner", pruner, "--max-macs", "300k",
                         "--runs-dir",
                         tmp_path, "--study", "p", "--no-progress")
    assert code == 0, err
    study = load(tmp_path / "p")
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, out
    for t in pruned:
        reports = len(t.intermediate_values)
        assert 1 <= reports < 4 and f"PRUNED at {reports / 4:g} epochs" in out
    for t in completed_trials(study):
        assert sorted(t.intermediate_values) == [1, 2, 3, 4]
        assert t.intermediate_values[4] == t.user_attrs["val_acc"] == t.value
