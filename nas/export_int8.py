"""``nas export --int8``: a trained trial as an int8 .tflite file for microcontrollers
(nas.int8), checked in TFLite Micro before it is kept, with its JSON sidecar.

The check, on the files written under temporary names: TFLite Micro loads and runs the
file; the weights and biases it stores are the bytes counted from the spec (the flash
figure a search is held to); the counts are within the study's --max-flash and --max-ram;
and its accuracy on the test split is within --max-drop of the same net in fp32. Only
then are the file and its sidecar renamed into place. The sidecar records both
accuracies, the drop, the counted flash and RAM, and the arena TFLite Micro reported.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import torch

from nas import files, int8, records
from nas.activations import peak_bytes
from nas.budget import count_int8_bytes, count_params
from nas.errors import UsageError
from nas.evaluate import measure_accuracy, normalize, stats
from nas.export import checked_pair, output_path, weights_kind
from nas.progress import step
from nas.study_folder import weights_path
from nas.trials import trial_val_acc
from nas.weights import load_trained

SUFFIX = ".tflite"
MAX_DROP = 0.01  # default --max-drop: int8 test accuracy at most this far below fp32's


def export_int8(study_dir: str | Path, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                data, out: str | Path | None = None, weights: str | Path | None = None,
                max_drop: float = MAX_DROP, force: bool = False) -> tuple[Path, dict]:
    """Write ``out`` (.tflite) and its sidecar once the checks (module docstring) pass;
    returns the model's path and the sidecar's content."""
    study_dir = Path(study_dir)
    out = output_path(study_dir, trial, out, weights, SUFFIX, "--int8", force, "-int8")
    if data is None:
        raise UsageError("nas export --int8 needs the dataset (training images calibrate the "
                         "int8 ranges, the test split checks the file): pass --data-dir")
    int8.need("litert_torch", "litert-torch")  # before any work: a missing package is said first
    int8.need("tflite_micro.python.tflite_micro.runtime", "tflite-micro")
    spec, net = load_trained(study_dir, trial, weights, study)
    net.eval()
    held, study_held = records.trial(trial), records.study(study)
    flash, ram = count_int8_bytes(spec), peak_bytes(spec)
    over = [f"{what} {value:,} B is over the study's --max-{name} {limit:,} B"
            for name, what, value in (("flash", "its int8 model", flash), ("ram", "its activation peak", ram))
            if (limit := study_held.limit(f"max_{name}")) is not None and value > limit]
    if over:
        raise RuntimeError(f"trial {trial.number} not exported: " + "; ".join(over))

    info = study_held.data
    mean, std = stats(info, torch.device("cpu"))
    calibration = normalize(data.train_x[:int8.CALIBRATION_IMAGES], mean, std)
    test_x = normalize(data.test_x, mean, std)
    with checked_pair(out) as (model_tmp, keep):
        with step(f"quantizing to int8 on {len(calibration):,} training images"):
            model = int8.quantize(net, calibration)
        model_tmp.write_bytes(model)
        with step(f"running the int8 file in TFLite Micro on {len(test_x):,} test images"):
            runtime = int8.MicroRuntime(model_tmp.read_bytes())
            predicted = torch.from_numpy(runtime.predict(test_x))
            int8_acc = (predicted == data.test_y).float().mean().item()
            arena = runtime.arena()
        with torch.no_grad():
            fp32_acc = measure_accuracy(net, data.test_x, data.test_y, info)
        stored = int8.stored_bytes(model)
        problems = ([f"the file stores {stored:,} B of weights and biases where the spec "
                     f"counts {flash:,} B"] if stored != flash else [])
        if (limit := study_held.limit("max_ram")) is not None and arena.activations > limit:
            problems.append(f"TFLite Micro's arena holds {arena.activations:,} B of tensors, "
                            f"over the study's --max-ram {limit:,} B")
        if fp32_acc - int8_acc > max_drop:
            problems.append(f"its int8 test accuracy {int8_acc:.4f} is {fp32_acc - int8_acc:.4f} "
                            f"below fp32's {fp32_acc:.4f} (more than --max-drop {max_drop:g})")
        if problems:
            raise RuntimeError(f"trial {trial.number} not exported: " + "; ".join(problems))
        kind = weights_kind(study_dir, trial, weights)
        meta = {
            "model": out.name,
            "format": "tflite-int8",
            "sha256": files.sha256(model_tmp),
            "trial": trial.number,
            "space": held.space,
            "input_shape": list(info.input_shape),
            "input": (f"int8 (N, H, W, C): the normalised image (pixel / 255 - mean) / std, "
                      f"divided by {runtime.input_scale:.8g}, plus {runtime.input_zero}"),
            "input_scale": runtime.input_scale,
            "input_zero_point": runtime.input_zero,
            "normalization": {"mean": list(info.mean), "std": list(info.std)},
            "classes": list(info.classes),
            "params": count_params(spec),
            "macs": held.macs,
            "flash": flash,
            "ram": ram,
            "arena_activations": arena.activations,
            "arena_total": arena.total,
            "file_bytes": len(model),
            "test_acc": int8_acc,
            "fp32_test_acc": fp32_acc,
            "int8_drop": fp32_acc - int8_acc,
            "val_acc": None if kind != "search" else trial_val_acc(trial),
            "search_val_acc": trial_val_acc(trial),
            "weights_kind": kind,
            "weights": str(Path(weights or weights_path(study_dir, trial.number)).resolve()),
            "arch": held.arch_str,
            "arch_spec": held.arch,
            "max_abs_diff_vs_eager": None,  # int8: checked by accuracy instead
            "checked_on": f"{len(test_x)} test images in TFLite Micro",
            "budget": study_held.budget,
            "study": study.study_name,
        }
        keep(meta)
    return out, meta
