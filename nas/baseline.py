"""``nas baseline NAME STUDY_DIR``: train a reference model on a study's data, so the
search's front can be judged against it. Its point is kept in ``baselines.json`` in the
study folder and drawn on the study's Pareto plot.

NAME is a torchvision model (``resnet18``, ``resnet34``, ``mobilenet_v2``, ...: weights
from scratch, first conv adapted to the input channels, classifier to the classes), a
hand design from HAND_DESIGNS, or any spec string of our own block language.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nas import pareto, store
from nas.arch import ArchSpec, SpecError
from nas.budget import count_macs, count_params
from nas.count import adapt_torchvision, module_rows, torchvision_names
from nas.errors import UsageError
from nas.model import build
from nas.recipe import TrainingRun
from nas.evaluate import measure_accuracy
from nas.trainer import train

# The hand designs our users start from, as specs (DESIGN.md "Accuracy to beat").
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
    limit_train: int | str | None = store.RECORDED  # --limit-train N >= the split: all images


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


def run_baseline(cfg: BaselineConfig, log=print) -> dict:
    study_dir = Path(cfg.study_dir)
    study, data, device = cfg.load()
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
    rows = [r for r in store.read_baselines(study_dir) if same_run(r) != same_run(row)]
    store.write_baselines(study_dir, rows + [row])
    pareto.write_front(study, study_dir, data, device)  # re-plot with the new star
    return row
