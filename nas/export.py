"""Export a trained trial as a self-contained TorchScript file plus a JSON sidecar.

The module is rebuilt from the spec stored in the trial (so old studies still export after
a space changes), loads the trial's weights, and takes float images in [0, 1] shaped
(N, C, H, W): the dataset's normalisation is part of the exported module.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import optuna
import torch

from nas import files, store
from nas.budget import count_params
from nas.errors import UsageError
from nas.model import Normalized
from nas.progress import step

TOLERANCE = 1e-6  # max abs difference of the reloaded file's outputs from the eager model's


def export(study_dir: str | Path, study: optuna.Study, trial: optuna.trial.FrozenTrial,
           out: str | Path | None = None, data=None, weights: str | Path | None = None
           ) -> tuple[Path, dict]:
    """Write ``out`` (.pt) and its .json sidecar; returns the .pt path and the sidecar's content.

    ``data`` (a ``nas.data.Data``) supplies real test images for the equality check and
    the test accuracy; without it the check uses random images and test_acc is null.
    """
    study_dir = Path(study_dir)
    spec, net = store.load_trained(study_dir, trial, weights)
    # Retrained weights carry their own validation accuracy beside them (nas train).
    figures = Path(weights).with_suffix(".json") if weights else None
    val_acc = (json.loads(figures.read_text())["val_acc"] if figures and figures.is_file()
               else store.trial_val_acc(trial))
    info = study.user_attrs["data"]
    eager = Normalized(net, info["mean"], info["std"]).eval()

    out = Path(out) if out else study_dir / (f"model-{Path(weights).stem}.pt" if weights
                                             else f"model-trial{trial.number}.pt")
    if out.suffix != ".pt":
        raise UsageError(f"--out must end in .pt, got {str(out)!r}")
    if out.is_dir():
        raise UsageError(f"--out {str(out)!r} is a folder; give a file path ending in .pt")
    # Written and checked under temporary names; only a verified pair replaces the user's
    # files (model first, then its sidecar, which names the model's sha256).
    model_tmp, sidecar_tmp = files.temporary_name(out), files.temporary_name(out.with_suffix(".json"))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        model_tmp.touch()  # torch's own error for an unwritable folder names no file
    except OSError as exc:
        raise UsageError(f"cannot write --out {str(out)!r}: {exc.strerror}") from None
    try:
        images = f"{len(data.test_x):,} test images" if data is not None else "random images"
        with step(f"writing and checking the TorchScript file on {images}"):
            meta = _write_checked(model_tmp, eager, spec, trial, study, data)
        meta.update({"model": out.name, "val_acc": val_acc,
                     "weights": str(Path(weights or store.weights_path(study_dir, trial.number)).resolve())})
        sidecar_tmp.write_text(json.dumps(meta, indent=2) + "\n")
        files.commit(model_tmp, out)
        files.commit(sidecar_tmp, out.with_suffix(".json"))
    finally:
        for tmp in (model_tmp, sidecar_tmp):
            tmp.unlink(missing_ok=True)
    return out, meta


def _write_checked(path: Path, eager: torch.nn.Module, spec, trial, study, data) -> dict:
    """Script ``eager`` to ``path``, reload it and check it; the sidecar's content."""
    with warnings.catch_warnings():
        # TorchScript is deprecated upstream but is exactly the artefact users asked for:
        # one file that plain torch.jit.load runs, no nas or Python class needed.
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(eager), str(path))
        loaded = torch.jit.load(str(path), map_location="cpu").eval()
    params = count_params(spec)
    info = study.user_attrs["data"]

    if data is not None:
        sample = data.test_x[:256].float() / 255
    else:
        shape = (spec.in_channels, spec.height, spec.width)
        sample = torch.rand(64, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        difference = (loaded(sample) - eager(sample)).abs().max().item()
    # Every export is checked: the file holds exactly the params the search counted and
    # stored for this trial, within the study's budget, and computes what the eager model does.
    budget = study.user_attrs.get("config", {}).get("budget")
    in_file = sum(p.numel() for p in loaded.parameters())
    problems = [f"{what} ({value:,}) differs from the spec's count ({params:,})"
                for what, value in (("the file's parameter count", in_file),
                                    ("the trial's stored count", trial.user_attrs["params"]))
                if value != params]
    if budget is not None and params > budget:
        problems.append(f"{params:,} params is over the study's budget of {budget:,}")
    if difference > TOLERANCE:
        problems.append(f"its outputs differ from the eager model's by {difference:g} "
                        f"(> {TOLERANCE:g})")
    if problems:
        raise RuntimeError(f"trial {trial.number} not exported: " + "; ".join(problems))

    test_acc = None
    if data is not None:
        with torch.no_grad():
            correct = sum((loaded(data.test_x[i:i + 1000].float() / 255).argmax(1)
                           == data.test_y[i:i + 1000]).sum().item()
                          for i in range(0, len(data.test_x), 1000))
        test_acc = correct / len(data.test_x)

    return {
        "model": None,  # the caller's file name
        "sha256": files.sha256(path),
        "trial": trial.number,
        "space": trial.user_attrs["space"],
        "input_shape": [info["in_channels"], info["height"], info["width"]],
        "input": "float32 images in [0, 1], shaped (N, C, H, W); normalisation is built in",
        "normalization": {"mean": list(info["mean"]), "std": list(info["std"])},
        "classes": list(info["classes"]),
        "params": params,
        "macs": trial.user_attrs["macs"],
        "val_acc": None,  # the caller's: the search's, or the retrain's
        "weights": None,  # the caller's: the weights file exported, absolute
        "test_acc": test_acc,
        "arch": trial.user_attrs["arch_str"],
        "arch_spec": trial.user_attrs["arch"],
        "max_abs_diff_vs_eager": difference,
        "params_in_file": in_file,
        "budget": budget,
        "study": study.study_name,
    }
