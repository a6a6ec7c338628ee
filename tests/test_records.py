"""What a study saves is read through nas.records alone, and studies written before the
records had a schema version still work with every command that reads a study.

tests/data/study-v1 was written by `nas search --dataset synthetic --space cnn,mobilenet
--budget 20000 --time 40s` (runoff threshold lowered, as in test_runoff) with the code
before the records were typed: a journal, the winner's and one other trial's weights, and
the final training's weights and figures."""

import json
import re
import shutil
from pathlib import Path

import optuna
import pytest

from nas import final, records
from nas.storage import load_study
from nas.trials import pick_trial
from nas.errors import UsageError

REPO = Path(__file__).resolve().parents[1]
OLD_STUDY = REPO / "tests" / "data" / "study-v1"


@pytest.fixture
def old_study(tmp_path) -> Path:
    return Path(shutil.copytree(OLD_STUDY, tmp_path / "v1"))


def test_a_study_written_before_the_schema_reads_as_the_current_version(old_study):
    study = load_study(old_study)
    held = records.study(study)
    assert held.schema == records.FIRST_VERSION and "schema" not in study.user_attrs
    assert held.budget == 20_000 and held.objective == "accuracy" and held.augment is None
    assert held.data.name == "synthetic" and held.data.input_shape == (1, 16, 16)
    assert len(held.data.classes) == held.data.num_classes == 4
    assert held.final["state"] == "done" and held.final["trial"] == 2
    assert held.runoff and {look["trial"] for look in held.runoff} <= {t.number for t in study.trials}
    winner = max(held.runoff, key=lambda look: look["val_acc"])["trial"]
    assert pick_trial(study, None).number == winner == held.final["trial"]
    for t in study.trials:
        trial = records.trial(t)
        assert trial.params <= held.budget and trial.arch_str and trial.space in ("cnn", "mobilenet")
        assert trial.val_acc == t.value and len(trial.val_history) >= 1
    assert sum(held.trial_counts.values()) == len(study.trials)


def test_every_command_that_reads_a_study_reads_the_old_one(old_study, run, tmp_path):
    code, out, err = run("pareto", old_study)
    assert code == 0, err
    front = json.loads((old_study / "pareto.json").read_text())
    assert front and all(row["params"] <= 20_000 for row in front)
    assert final.summary(records.final(load_study(old_study))) in out

    code, out, err = run("export", old_study, "--best", "--out", tmp_path / "best.pt")
    assert code == 0, err
    sidecar = json.loads((tmp_path / "best.json").read_text())
    assert sidecar["trial"] == 2 and sidecar["weights_kind"] == "final"
    assert sidecar["input_shape"] == [1, 16, 16] and len(sidecar["classes"]) == 4

    code, out, err = run("train", old_study, "--trial", 1, "--epochs", 1)
    assert code == 0, err
    assert (old_study / "retrained" / "trial-1.pt").is_file()
    code, out, err = run("compare", old_study, "--out", tmp_path / "compare.png")
    assert code == 0, err


def test_a_new_study_records_the_current_schema_version(searched_synthetic):
    study_dir, _ = searched_synthetic("cnn", 2, 1)
    study = load_study(study_dir)
    assert study.user_attrs["schema"] == records.SCHEMA_VERSION == records.study(study).schema


def test_a_study_of_a_newer_version_or_without_a_record_is_one_line(old_study, run):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(old_study / "journal.log")))
    optuna.load_study(study_name="v1", storage=storage).set_user_attr("schema", records.SCHEMA_VERSION + 1)
    code, _, err = run("pareto", old_study)
    assert code == 2 and f"record version {records.SCHEMA_VERSION + 1}" in err and "upgrade nas" in err
    bare = optuna.create_study(study_name="bare", storage=storage)
    with pytest.raises(UsageError, match="not created by nas search"):
        records.study(bare)


def test_trial_records_refuse_fields_they_do_not_define():
    with pytest.raises(TypeError, match="not trial record fields"):
        records.trial_attrs(param=5)  # a misspelt field fails where it is written
    with pytest.raises(UsageError, match="expected an integer"):
        records.trial_attrs(params="5")


def test_no_module_but_records_reads_or_writes_user_attributes():
    pattern = re.compile(r"user_attrs|set_user_attr|set_trial_user_attr")
    offenders = [f"{path.relative_to(REPO)}:{n}" for folder in ("nas", "search_spaces", "benchmarks")
                 for path in sorted((REPO / folder).rglob("*.py")) if path.name != "records.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == [], offenders


def test_a_planted_budget_of_the_wrong_type_is_one_line(old_study, run):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(old_study / "journal.log")))
    study = optuna.load_study(study_name="v1", storage=storage)
    study.set_user_attr("config", {**study.user_attrs["config"], "budget": "lots"})
    for command in (("pareto", old_study), ("export", old_study, "--trial", 1)):
        code, _, err = run(*command)
        assert code == 2 and "records a bad budget 'lots'" in err, err
