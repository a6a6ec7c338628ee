"""nas baseline (torchvision and hand designs on a study's data) and nas compare."""

import json
from pathlib import Path

import pytest
from conftest import copy_study

from nas.arch import ArchSpec, SpecError
from nas.baseline import HAND_DESIGNS
from nas.budget import count_params
from nas.model import build


@pytest.fixture(scope="module")
def studies(searched_synthetic, tmp_path_factory):
    runs = tmp_path_factory.mktemp("cmp") / "runs"
    for space in ("cnn", "mobilenet"):
        copy_study(searched_synthetic(space, 3, 1)[0], runs / f"syn-{space}")
    return runs


def test_hand_designs_have_the_published_parameter_counts(capsys):
    from nas.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["baseline", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in HAND_DESIGNS)  # the help lists every one
    expected = {"mnist-cnn-110k": 110_986, "mnist-cnn-1.2m": 1_199_882, "mobilenet-48k": 46_634,
                "mnist-gap-8k": 7_578}
    for name, params in expected.items():
        spec = ArchSpec.from_string(HAND_DESIGNS[name], 1, 28, 28, 10)
        assert count_params(spec) == params == sum(p.numel() for p in build(spec).parameters())
    fer = ArchSpec.from_string(HAND_DESIGNS["mobilenet-48k"], 1, 48, 48, 7)
    assert count_params(fer) == 46_247  # the same net with FER2013's 7 classes
    with pytest.raises(SpecError, match="only plain conv blocks"):
        ArchSpec.from_string("dw32k3v-gap", 1, 28, 28, 10)


def test_baselines_train_on_the_study_data_and_join_its_plot(studies, run):
    study = studies / "syn-cnn"
    code, out, err = run("baseline", "resnet18", study, "--epochs", 1)
    assert code == 0, err
    code, out, err = run("baseline", "mnist-cnn-110k", study, "--epochs", 2)
    assert code == 0, err
    code, out, err = run("baseline", "mnist-gap-8k", study, "--epochs", 1, "--limit-train", 300)
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads((study / "baselines.json").read_text())}
    # resnet18 adapted to 1 input channel and 4 classes: 11,689,512 - 9,408 + 3,136 - 513,000 + 2,052
    assert rows["resnet18"]["params"] == 11_172_292 and rows["resnet18"]["model"] == "torchvision resnet18"
    assert rows["mnist-cnn-110k"]["epochs"] == 2 and rows["mnist-cnn-110k"]["val_acc"] > 0.5
    # The search's images unless --limit-train says otherwise.
    assert rows["mnist-gap-8k"]["train_images"] == 300 < rows["mnist-cnn-110k"]["train_images"]
    assert 0 <= rows["resnet18"]["test_acc"] <= 1
    code, out, _ = run("pareto", study)
    assert "resnet18" in out and "mnist-cnn-110k" in out
    code, _, err = run("baseline", "nonsense", study)
    assert code == 2 and "unknown baseline 'nonsense'" in err
    code, _, err = run("baseline", "mnist-gap-8k", study, "--limit-train", 0)
    assert code == 2 and "--limit-train must be an integer >= 1, got 0" in err


def test_compare_tables_the_spaces_at_equal_parameter_limits(studies, run, tmp_path):
    out_png = tmp_path / "c.png"
    code, out, err = run("compare", studies / "syn-cnn", studies / "syn-mobilenet", "--at",
                         "10k,20k", "--out", out_png)
    assert code == 0, err
    table = json.loads(out_png.with_suffix(".json").read_text())
    assert [e["limit"] for e in table] == [10_000, 20_000]
    top = table[-1]
    assert set(top["best"]) == {"syn-cnn/cnn", "syn-mobilenet/mobilenet"}
    best = {k: v["val_acc"] for k, v in top["best"].items()}
    size = {k: v["params"] for k, v in top["best"].items()}
    assert top["winner"] == max(best, key=lambda k: (best[k], -size[k]))  # ties: the smaller
    assert top["margin_points"] == round(100 * abs(best["syn-cnn/cnn"] - best["syn-mobilenet/mobilenet"]), 2)
    assert all(v["params"] <= 20_000 for v in top["best"].values())
    assert out_png.read_bytes()[:4] == b"\x89PNG"
    code, _, err = run("compare", studies / "syn-cnn", "--at", "5k,abc")
    assert code == 2 and "bad --at '5k,abc'" in err


def test_compare_judges_a_row_on_trained_nets_once_nas_train_has_trained_its_picks(
        studies, run, tmp_path):
    dirs = [copy_study(studies / f"syn-{s}", tmp_path / f"syn-{s}") for s in ("cnn", "mobilenet")]
    out_png = tmp_path / "c.png"

    def table():
        code, out, err = run("compare", *dirs, "--at", "20k", "--out", out_png)
        assert code == 0, err
        return out, json.loads(out_png.with_suffix(".json").read_text())[0]

    out, row = table()
    picks = {name: (best["study_dir"], best["trial"]) for name, best in row["best"].items()}
    assert row["by"] == "search val_acc" and all(b["trained"] is None for b in row["best"].values())
    for folder, trial in picks.values():  # the commands that would settle it
        assert f"nas train {folder} --trial {trial}" in out
    for folder, trial in picks.values():
        code, _, err = run("train", folder, "--trial", trial, "--epochs", 1, "--limit-train", 200)
        assert code == 0, err
    out, row = table()
    trained = {name: json.loads((Path(folder) / "retrained" / f"trial-{trial}.json").read_text())
               for name, (folder, trial) in picks.items()}
    assert row["by"] == "trained test_acc" and "not trained in full" not in out
    for name, best in row["best"].items():
        assert best["trained"]["test_acc"] == trained[name]["test_acc"]
        assert f"{trained[name]['test_acc']:.4f} @" in out
    tests = {name: t["test_acc"] for name, t in trained.items()}
    params = {name: b["params"] for name, b in row["best"].items()}
    assert row["winner"] == max(tests, key=lambda n: (tests[n], -params[n]))
    # A retrain's figures that are not nas train's (edited, planted) are not taken.
    folder, trial = picks["syn-cnn/cnn"]
    (Path(folder) / "retrained" / f"trial-{trial}.json").write_text('{"trial": %d, "test_acc": "1.0"}' % trial)
    out, row = table()
    assert row["by"] == "search val_acc" and row["best"]["syn-cnn/cnn"]["trained"] is None
