"""`nas export --format onnx`: an ONNX file that onnxruntime (not nas) runs to the eager
model's outputs, beside the TorchScript export of the same trial, and nothing written when
the check fails or the runtime is missing."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import onnxruntime
from conftest import REPO, copy_study, writable_study
import pytest
import torch

from nas import records
from nas.data import load_recorded
from nas.storage import load_study
from nas.trials import completed_trials
from nas.weights import load_trained
from nas.exported import load_model
from nas.model import Normalized


@pytest.fixture
def study_dir(searched_synthetic, tmp_path):
    return copy_study(searched_synthetic("mobilenet", 4, 2)[0], tmp_path / "runs" / "syn")


def test_onnx_export_runs_in_onnxruntime_as_the_eager_model_does(study_dir, run):
    study = load_study(study_dir)
    best = study.best_trial.number
    code, out, err = run("export", study_dir, "--best", "--format", "onnx")
    assert code == 0, err
    model, sidecar = study_dir / f"model-trial{best}.onnx", study_dir / f"model-trial{best}.onnx.json"
    assert f"to {model} and {sidecar}" in out
    assert "ONNX check: onnxruntime runs it to the eager model's outputs on" in out
    meta = json.loads(sidecar.read_text())
    assert meta["format"] == "onnx" and meta["model"] == model.name
    assert meta["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert meta["input_shape"] == [1, 16, 16] and meta["params"] <= 20_000
    code, out, _ = run("count", model)  # from the spec its sidecar names
    assert code == 0 and out.startswith(f"ONNX {model} (spec {meta['arch']}")
    (total,) = [line for line in out.splitlines() if line.startswith("total ")]
    assert f" {meta['params']:,} " in total
    # The TorchScript export of the same trial keeps its own sidecar.
    assert run("export", study_dir, "--best")[0] == 0
    assert json.loads(sidecar.read_text())["format"] == "onnx"
    assert json.loads((study_dir / f"model-trial{best}.json").read_text())["format"] == "torchscript"

    # onnxruntime alone, on real validation images, any batch size; normalisation inside.
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    data = load_recorded(records.study(study).data)
    _, net = load_trained(study_dir, study.best_trial)
    eager = Normalized(net, meta["normalization"]["mean"], meta["normalization"]["std"]).eval()
    images = data.val_x.float() / 255
    for batch in (images[:1], images[:7], images):
        logits = session.run(None, {"images": batch.numpy()})[0]
        with torch.no_grad():
            difference = np.abs(logits - eager(batch).numpy()).max()
        assert difference <= 1e-4
    assert meta["max_abs_diff_vs_eager"] <= 1e-4
    test_logits = session.run(None, {"images": (data.test_x.float() / 255).numpy()})[0]
    assert meta["test_acc"] == pytest.approx((test_logits.argmax(1) == data.test_y.numpy()).mean())


def test_a_failed_onnx_check_writes_nothing(study_dir, run, tmp_path):
    study = writable_study(study_dir)
    trial = completed_trials(study)[0]
    study.set_user_attr("config", {**study.user_attrs["config"],
                                   "budget": trial.user_attrs["params"] - 1})
    before = set(tmp_path.iterdir())
    code, _, err = run("export", study_dir, "--trial", trial.number, "--format", "onnx",
                       "--out", tmp_path / "m.onnx")
    assert code == 2 and "over the study's budget" in err and err.count("\n") == 1
    assert set(tmp_path.iterdir()) == before  # no model, no sidecar, no temporary left
    for args, message in ((["--out", tmp_path / "m.pt"], "--out must end in .onnx for --format onnx"),
                          (["--format", "tflite"], "unknown --format 'tflite'; valid: torchscript, onnx")):
        code, _, err = run("export", study_dir, "--trial", trial.number, "--format", "onnx", *args)
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_onnx_without_onnxruntime_installed_says_what_to_install(study_dir, tmp_path):
    # Python's own way of making a package unimportable, as if it were not installed.
    code = ("import sys; sys.modules['onnxruntime'] = None; from nas.cli import main; "
            f"sys.exit(main(['export', {str(study_dir)!r}, '--best', '--format', 'onnx', "
            f"'--out', {str(tmp_path / 'm.onnx')!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("nas: error: --format onnx needs the package onnxruntime")
    assert "pip install onnx onnxscript onnxruntime" in proc.stderr and proc.stderr.count("\n") == 1
    assert not list(tmp_path.glob("*m.onnx*"))


def test_tta_flip_builds_the_mirror_average_into_the_file_for_mirror_trained_weights(study_dir, run, tmp_path):
    study = load_study(study_dir)
    best = study.best_trial.number
    # The search trained on synthetic images without flips: a mirror average is refused.
    code, _, err = run("export", study_dir, "--best", "--tta", "flip", "--out", tmp_path / "s.pt")
    assert code == 2 and err.count("\n") == 1
    assert "trained with augmentation none; valid: --tta none" in err
    assert not list(tmp_path.glob("s.*"))
    code, _, err = run("export", study_dir, "--best", "--tta", "flip", "--int8")
    assert code == 2 and "--tta flip is for fp32 exports" in err and err.count("\n") == 1

    assert run("train", study_dir, "--trial", best, "--epochs", 1, "--augment", "flip-crop")[0] == 0
    (weights,) = (study_dir / "retrained").glob("*.pt")
    data = load_recorded(records.study(study).data)
    _, net = load_trained(study_dir, study.best_trial, weights)
    plain_out, flip_out = tmp_path / "plain.pt", tmp_path / "flip.pt"
    for out, tta in ((plain_out, "none"), (flip_out, "flip")):
        code, out_text, err = run("export", study_dir, "--trial", best, "--weights", weights,
                                  "--tta", tta, "--out", out)
        assert code == 0, err
    assert "averaged with its mirror (--tta flip)" in out_text
    plain, flip = (json.loads(p.with_suffix(".json").read_text()) for p in (plain_out, flip_out))
    assert (plain["tta"], flip["tta"]) == ("none", "flip")
    assert flip["macs"] == 2 * plain["macs"] and flip["params"] == plain["params"]

    # The file alone (torch.jit.load), and the module nas rebuilds from its sidecar, both
    # compute the mean of the net's logits on each image and its mirror.
    eager = Normalized(net, flip["normalization"]["mean"], flip["normalization"]["std"]).eval()
    images = data.test_x.float() / 255
    with torch.no_grad():
        expected = (eager(images) + eager(images.flip(-1))) / 2
        scripted = torch.jit.load(str(flip_out)).eval()(images)
        _, rebuilt = load_model(flip_out)
        assert (scripted - expected).abs().max() <= 1e-5
        assert (rebuilt(images) - expected).abs().max() <= 1e-5
        assert (eager(images) - expected).abs().max() > 1e-3  # the mirror changed something
    assert flip["test_acc"] == pytest.approx((expected.argmax(1) == data.test_y).float().mean().item())

    # ONNX holds the same average; a sidecar naming an unknown tta is refused.
    assert run("export", study_dir, "--trial", best, "--weights", weights, "--tta", "flip",
               "--format", "onnx", "--out", tmp_path / "flip.onnx")[0] == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "flip.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"images": images.numpy()})[0] - expected.numpy()).max() <= 1e-4
    code, out_text, _ = run("count", flip_out)  # per layer one pass; the file's total both
    assert code == 0 and f"(--tta flip): {flip['macs']:,} MACs per image in all" in out_text
    flip["tta"] = "rotate"
    flip_out.with_suffix(".json").write_text(json.dumps(flip))
    code, _, err = run("count", flip_out)
    assert code == 2 and "unknown tta 'rotate'" in err and err.count("\n") == 1

    # benchmarks/tta.py measures the same two exports.
    figures = tmp_path / "tta.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "tta.py"), str(weights),
                           "--json", str(figures)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(figures.read_text())["rows"]
    assert (row["test_none"], row["test_flip"]) == (plain["test_acc"], flip["test_acc"])
    assert row["macs_flip"] == 2 * row["macs_none"] and 0 <= row["val_flip"] <= 1


def test_with_exports_the_ensemble_of_several_studies_nets_as_one_checked_file(
        study_dir, searched_synthetic, run, tmp_path):
    other_dir = copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path / "runs" / "other")
    out = tmp_path / "both.pt"
    code, text, err = run("export", study_dir, "--best", "--with", other_dir, "--out", out)
    assert code == 0, err
    meta = json.loads(out.with_suffix(".json").read_text())
    first, second = meta["members"]
    assert (first["trial"], second["trial"]) == (load_study(study_dir).best_trial.number,
                                                 load_study(other_dir).best_trial.number)
    assert (first["space"], second["space"]) == ("mobilenet", "cnn")
    assert meta["params"] == first["params"] + second["params"] > 20_000  # each under its budget
    assert meta["macs"] == first["macs"] + second["macs"]
    assert f"exported an ensemble of 2 nets ({meta['params']:,} params in all" in text

    # The file alone, the module nas rebuilds from its sidecar and the ONNX graph in
    # onnxruntime all compute the mean of the two nets' logits; test_acc is that mean's.
    nets = []
    for folder, part in ((study_dir, first), (other_dir, second)):
        study = load_study(folder)
        _, net = load_trained(folder, study.best_trial)
        nets.append(Normalized(net, part["normalization"]["mean"], part["normalization"]["std"]).eval())
    data = load_recorded(records.study(load_study(study_dir)).data)
    images = data.test_x.float() / 255
    with torch.no_grad():
        alone = [net(images) for net in nets]
        expected = (alone[0] + alone[1]) / 2
        assert (torch.jit.load(str(out)).eval()(images) - expected).abs().max() <= 1e-5
        assert (load_model(out)[1](images) - expected).abs().max() <= 1e-5
    accuracy = [(logits.argmax(1) == data.test_y).float().mean().item() for logits in (*alone, expected)]
    assert (first["test_acc"], second["test_acc"], meta["test_acc"]) == pytest.approx(accuracy)
    assert run("export", study_dir, "--best", "--with", other_dir, "--format", "onnx",
               "--out", tmp_path / "both.onnx")[0] == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "both.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"images": images.numpy()})[0] - expected.numpy()).max() <= 1e-4

    # nas count: each member's rows, the total of both.
    code, text, _ = run("count", out)
    assert code == 0 and "ensemble of 2 nets" in text and "2 passes per image over its 2 nets" in text
    (total,) = [line for line in text.splitlines() if line.startswith("total ")]
    assert f" {meta['params']:,} " in total and f" {meta['macs']:,}" in total
    # A sidecar is data: its members in another order do not fit the file's tensors, and no
    # more than an ensemble's nets are read from it.
    sidecar = out.with_suffix(".json")
    sidecar.write_text(json.dumps({**meta, "members": [second, first]}))
    code, _, err = run("count", out)
    assert code == 2 and err.count("\n") == 1 and "does not hold the model its sidecar names" in err
    sidecar.write_text(json.dumps({**meta, "members": [first, second] * 5,
                                   "params": 5 * meta["params"]}))
    code, _, err = run("count", out)
    assert code == 2 and err.count("\n") == 1 and "is not a sidecar nas export wrote" in err

    # One line, nothing written: a missing study, one named twice, another dataset's, --int8.
    code, _, err = run("export", study_dir, "--best", "--with", tmp_path / "nowhere", "--out", tmp_path / "x.pt")
    assert code == 2 and err.count("\n") == 1 and "nowhere" in err
    code, _, err = run("export", study_dir, "--best", "--with", study_dir, "--out", tmp_path / "x.pt")
    assert code == 2 and err.count("\n") == 1 and "already in the ensemble" in err
    study = writable_study(other_dir)
    study.set_user_attr("data", {**study.user_attrs["data"], "name": "mnist"})
    code, _, err = run("export", study_dir, "--best", "--with", other_dir, "--out", tmp_path / "x.pt")
    assert code == 2 and err.count("\n") == 1 and "searched on mnist" in err
    code, _, err = run("export", study_dir, "--best", "--with", other_dir, "--int8")
    assert code == 2 and err.count("\n") == 1 and "an --int8 file holds one net" in err
    assert not list(tmp_path.glob("x.*"))
