"""``nas baseline NAME STUDY_DIR``: train a reference model on a study's data, so the
search's front can be judged against it. Its point is kept in ``baselines.json`` in the
study folder and drawn on the study's Pareto plot.

NAME is a torchvision model (``resnet18``, ``resnet34``, ``mobilenet_v2``, ...: weights
from scratch, first conv adapted to the input channels, classifier to the classes), a
hand design from HAND_DESIGNS, or any spec string of our own block language.

Its weights are kept too (``baselines/<name>-<epochs or time>.pt``, named in its row), so a
larger net the tool trained can teach a searched one: ``nas train --teacher`` of that file
rebuilds the net from the row's name (our code, never the file's) and loads the tensors.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nas import files, pareto
from nas import flags as F
from nas.data import RECORDED
from nas.flags import option
from nas.study_folder import inside, read_baselines, write_baselines
from nas.weights import load_weights as load_tensors
from nas.arch import ArchSpec, SpecError
from nas.budget import count_macs, count_params
from nas.count import adapt_torchvision, module_rows, torchvision_names
from nas.errors import UsageError
from nas.model import build, state_bytes
from nas.recipe import TrainingRun
from nas.evaluate import measure_accuracy
from nas.trainer import train

# The hand designs our users start from, as specs (their accuracy: benchmarks/README.md).
HAND_DESIGNS = {
    # 2 unpadded convs + max-pool + linear, no BN (the Keras MNIST example): 110,986 params.
    "mnist-cnn-110k": "c32k3v-c64k3vp-flat-nobn",
    # the same with a dense 128 layer: 1,199,882 params.
    "mnist-cnn-1.2m": "c32k3v-c64k3vp-flat_fc128-nobn",
    # MobileNet-style, stem + 7 depthwise-separable blocks (7 dw + 7 pointwise convs), GAP:
    # 46,634 params with 10 classes, 46,247 with FER2013's 7. The widths are the only ones
    # of this family with exactly those counts; the strides are ours.
    "mobilenet-48k": "c8k3-dw48k3s2-dw64k3-dw64k3s2-dw64k3-dw96k3s2-dw96k3-dw128k3-gap",
    # What people hand-design at ~8k params: five 3x3 convs with batch norm, two max-pools,
    # global average pooling, no dense layer: 7,578 params, 1.64M MACs on MNIST.
    "mnist-gap-8k": "c8k3-c12k3p-c16k3-c16k3p-c16k3-gap",
}


@dataclass(kw_only=True)
class BaselineConfig(TrainingRun):
    name: str
    # --limit-train N >= the split: all images
    limit_train: int | str | None = option(RECORDED, F.LIMIT_TRAIN, "default: the search's")


def make(name: str, info) -> tuple[nn.Module, str, int, int]:
    """(model, what it is, params, MACs) for a baseline name and a dataset's DataInfo."""
    if name in torchvision_names():
        model = adapt_torchvision(name, info.in_channels, info.num_classes)
        macs = sum(r.macs or 0 for r in module_rows(model, info.input_shape))
        return model, f"torchvision {name}", sum(p.numel() for p in model.parameters()), macs
    text = HAND_DESIGNS.get(name, name)
    try:
        spec = ArchSpec.from_string(text, *info.input_shape, info.num_classes)
        count_params(spec)  # shape errors surface here, before anything is built
    except SpecError as exc:
        raise UsageError(f"unknown baseline {name!r}: not a torchvision model (e.g. resnet18, "
                         f"resnet34, mobilenet_v2), a hand design ({', '.join(HAND_DESIGNS)}) "
                         f"or a valid spec string ({exc})") from None
    return build(spec), spec.to_string(), count_params(spec), count_macs(spec)


def same_run(row: dict) -> tuple:
    """What a later row replaces an earlier one on: the name and its epochs, or its --time."""
    timed = row.get("time_limit")
    return row["name"], None if timed else row["epochs"], timed


def weights_name(row: dict) -> str:
    """baselines/<name>-<e EPOCHS | t SECONDS>.pt, one file per row (same_run), the name made
    safe for a file name (a spec string may hold any character; a hash keeps them apart)."""
    name = row["name"]
    safe = re.sub(r"[^\w.-]+", "_", name)[:60]
    if safe != name:
        safe += "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    run = f"t{row['time_limit']}s" if row.get("time_limit") else f"e{row['epochs']:g}"
    return f"baselines/{safe}-{run}.pt"


def load_weights(study_dir: Path, path: Path, info) -> tuple[nn.Module, dict]:
    """The baseline whose row in the study's baselines.json names ``path``: rebuilt from the
    row's name by make() and the file's tensors loaded (tensors only, shapes checked)."""
    relative = f"baselines/{path.name}"
    row = next((r for r in read_baselines(study_dir) if r.get("weights") == relative), None)
    if row is None:
        raise UsageError(f"{path} is not named by any row of {study_dir / 'baselines.json'}: nas "
                         f"baseline keeps each model it trained there (run it again to make one)")
    model = load_tensors(path, lambda: make(row["name"], info)[0], f"baseline {row['name']}")
    return model.eval(), row


def run_baseline(cfg: BaselineConfig, log=print) -> dict:
    study_dir = Path(cfg.study_dir)
    study, data, device = cfg.load()
    folder = study_dir / "baselines"
    if folder.exists() and not inside(folder, study_dir):  # planted as a symlink out
        raise UsageError(f"{folder} leads out of the study folder; nas baseline writes its "
                         f"weights only inside it (remove the link)")
    model, what, params, macs = make(cfg.name, data.info)
    torch.manual_seed(cfg.seed)
    model = model.to(device)
    log(f"baseline {cfg.name} ({what}, {params:,} params, {macs:,} MACs): {cfg.length()} "
        f"on {len(data.train_x):,} {data.info.name} images, {device}, augment {cfg.augment}")
    start = time.perf_counter()
    result = train(model, data, cfg.train_config(data),
                   lambda report, acc: log(cfg.report_line(report, acc, start)))
    row = {"name": cfg.name, "model": what, "params": params, "macs": macs,
           "val_acc": result.val_acc,
           "test_acc": measure_accuracy(model, data.test_x, data.test_y, data.info),
           "epochs": round(result.epochs, 2), "time_limit": cfg.time,
           "train_images": len(data.train_x), "augment": cfg.augment,
           "train_time": round(result.seconds, 2), "device": str(device)}
    row["weights"] = weights_name(row)
    folder.mkdir(exist_ok=True)
    files.write_bytes(study_dir / row["weights"], state_bytes(model))
    rows = [r for r in read_baselines(study_dir) if same_run(r) != same_run(row)]
    write_baselines(study_dir, rows + [row])
    pareto.write_front(study, study_dir, data, device)  # re-plot with the new star
    return row
