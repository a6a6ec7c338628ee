"""nas train: retrain a found trial, distil from a teacher (an export read as data, a study's
trial, or with --trust-code any TorchScript file), export the result."""

import json

import pytest
import torch
from conftest import copy_study

BUDGET = 20_000


@pytest.fixture(scope="module")
def study(searched_synthetic, tmp_path_factory):
    return copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path_factory.mktemp("retrain") / "syn")


def test_retrain_best_stores_weights_and_figures_and_exports(study, run, tmp_path):
    code, out, err = run("train", study, "--best", "--epochs", 3)
    assert code == 0, err
    weights = next((study / "retrained").glob("trial-*.pt"))
    figures = json.loads(weights.with_suffix(".json").read_text())
    assert figures["epochs"] == 3 and len(figures["history"]) == 3
    assert figures["val_acc"] > 0.9 and figures["label_smoothing"] == 0.1
    assert f"--weights {weights}" in out
    code, out, err = run("export", study, "--trial", figures["trial"], "--weights", weights,
                         "--out", tmp_path / "m.pt")
    assert code == 0, err
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["val_acc"] == figures["val_acc"] and meta["weights"] == str(weights)
    assert abs(meta["test_acc"] - figures["test_acc"]) < 1e-9  # same weights, same test set


def test_distillation_alone_teaches_the_student(study, run, tmp_path, monkeypatch):
    """alpha 1: the student never sees a label, only the teacher's soft outputs."""
    assert run("train", study, "--best", "--epochs", 3)[0] == 0
    assert run("export", study, "--best", "--out", tmp_path / "teacher.pt")[0] == 0
    monkeypatch.chdir(tmp_path)  # the teacher given relative, recorded absolute
    code, out, err = run("train", study, "--best", "--epochs", 3, "--teacher",
                         "teacher.pt", "--alpha", 1.0, "--temperature", 2)
    assert code == 0, err
    figures = json.loads(next((study / "retrained").glob("trial-*-kd.json")).read_text())
    assert figures["alpha"] == 1.0 and figures["teacher"] == str((tmp_path / "teacher.pt").resolve())
    # From soft targets alone it learns the task (chance is 0.25) to within 10 points of
    # the teacher it copies (which architecture that is depends on the fixture's search).
    teacher = json.loads((tmp_path / "teacher.json").read_text())
    assert figures["val_acc"] > max(0.5, teacher["val_acc"] - 0.1), (figures["val_acc"], teacher["val_acc"])


def test_a_baseline_the_tool_trained_teaches_a_searched_net(study, run, tmp_path):
    own = copy_study(study, tmp_path / "syn")
    code, _, err = run("baseline", "mnist-gap-8k", own, "--epochs", 3)
    assert code == 0, err
    (row,) = [r for r in json.loads((own / "baselines.json").read_text()) if r["name"] == "mnist-gap-8k"]
    assert row["weights"] == "baselines/mnist-gap-8k-e3.pt" and (own / row["weights"]).is_file()
    code, out, err = run("train", own, "--best", "--epochs", 6, "--teacher", own / row["weights"],
                         "--alpha", 1.0, "--temperature", 2)
    assert code == 0, err
    assert "distilling from baseline mnist-gap-8k" in out
    figures = json.loads(next((own / "retrained").glob("trial-*-kd.json")).read_text())
    # From the baseline's soft targets alone it learns the task: chance is 0.25.
    assert figures["val_acc"] > 0.5, (figures["val_acc"], row["val_acc"])
    # A weights file in baselines/ that no row names is refused; so is one its row's net
    # does not fit (the name rebuilt by nas, the file's tensors checked against it).
    planted = own / "baselines" / "planted.pt"
    planted.write_bytes((own / row["weights"]).read_bytes())
    code, _, err = run("train", own, "--best", "--teacher", planted)
    assert code == 2 and "is not named by any row of" in err and err.count("\n") == 1
    rows = json.loads((own / "baselines.json").read_text())
    for r in rows:
        if r["name"] == "mnist-gap-8k":
            r["name"] = "mnist-cnn-110k"
    (own / "baselines.json").write_text(json.dumps(rows))
    code, _, err = run("train", own, "--best", "--teacher", own / row["weights"])
    assert code == 2 and "does not hold weights for baseline mnist-cnn-110k" in err, err


def test_retrain_augments_as_the_search_did_unless_told(run, tmp_path):
    runs = tmp_path / "runs"
    code, _, err = run("search", "--dataset", "synthetic", "--space", "cnn", "--budget", BUDGET,
                       "--trials", 1, "--epochs", 1, "--runs-dir", runs, "--study", "crop",
                       "--augment", "crop", "--no-progress")
    assert code == 0, err
    # A second retrain keeps the first: it takes the next free name, and says so.
    for extra, expected, name in (([], "crop", "trial-0"), (["--augment", "none"], "none", "trial-0-2")):
        code, out, err = run("train", runs / "crop", "--trial", 0, "--epochs", 1, *extra)
        assert code == 0, err
        assert f"augment {expected}," in out
        figures = json.loads((runs / "crop" / "retrained" / f"{name}.json").read_text())
        assert figures["augment"] == expected
    assert "earlier retrains keep theirs (trial-0.pt" in out
    assert json.loads((runs / "crop" / "retrained" / "trial-0.json").read_text())["augment"] == "crop"
    assert (runs / "crop" / "retrained" / "trial-0.pt").is_file()
    code, out, err = run("baseline", "c8k3s2-gap", runs / "crop", "--epochs", 1)
    assert code == 0, err
    assert json.loads((runs / "crop" / "baselines.json").read_text())[0]["augment"] == "crop"


def test_bad_retrain_inputs_get_one_line(study, run, tmp_path):
    wrong = torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 3)))
    torch.jit.save(wrong, str(tmp_path / "three.pt"))
    cases = [(["--best", "--teacher", study / "pareto.json"], "is not a study, a trial's weights "
                                                              "or a file nas export wrote"),
             (["--best", "--teacher", tmp_path / "three.pt"], "if you trust it, add --trust-code"),
             (["--best", "--teacher", tmp_path / "three.pt", "--trust-code"], "gives outputs of shape (3,)"),
             (["--best", "--teacher", study / "pareto.json", "--trust-code"], "is not a TorchScript "
                                                                                "model that takes"),
             (["--trial", 999], "trial 999 is not a completed trial"),
             (["--best", "--alpha", 2], "--alpha must be in [0, 1], got 2.0"),
             (["--best", "--lr", -1], "--lr must be a positive number, got -1.0"),
             (["--best", "--mixup", -0.2], "--mixup must be from 0 (off) to 10, got -0.2"),
             (["--best", "--augment", "mirror"], "unknown --augment 'mirror'; valid: none, crop"),
             ([], "needs exactly one of --best or --trial N")]
    for args, message in cases:
        code, _, err = run("train", study, *args)
        assert code == 2 and message in err and err.count("\n") == 1, (args, err)


def test_a_weights_file_names_its_own_trial_only():
    from pathlib import Path

    from nas.train import trial_of_weights

    assert [trial_of_weights(Path(n)) for n in ("trial-1.pt", "trial-12.pt", "trial-1-kd-2.pt",
                                                 "trial-12.json", "model.pt")] == [1, 12, 1, None, None]
