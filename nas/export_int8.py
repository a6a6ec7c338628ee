"""``nas export --int8``: a trained trial as an int8 file, checked in the runtime that runs
it before it is kept, with its JSON sidecar. Two formats: a .tflite file for
microcontrollers (nas.int8: litert-torch, run in TFLite Micro) and, with --format onnx, a
QDQ .onnx file (nas.qdq: onnxruntime's quantizer, run in onnxruntime).

The check, on the files written under temporary names: the runtime loads and runs the
file on the whole test split; the weights and biases it stores are the bytes counted from
the spec (the flash figure a search is held to); the counts are within the study's
--max-flash and --max-ram (and so is TFLite Micro's arena); and its accuracy is within
--max-drop of the same net in fp32. Only then are the file and its sidecar renamed into
place. The sidecar records both accuracies, the drop, the counted flash and RAM, and the
memory the runtime reported.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import torch

from nas import files, int8, qdq, records
from nas.activations import peak_bytes
from nas.budget import count_int8_bytes, count_params
from nas.errors import UsageError
from nas.evaluate import measure_accuracy, normalize, stats
from nas.export import checked_pair, output_path, weights_kind
from nas.model import Normalized
from nas.progress import step
from nas.study_folder import weights_path
from nas.trials import trial_val_acc
from nas.weights import load_trained

MAX_DROP = 0.01  # default --max-drop: int8 test accuracy at most this far below fp32's
CALIBRATION_IMAGES = 200  # training images the activation ranges are measured on


class TFLiteMicro:
    """int8 .tflite (channels-last int8 input), run in TFLite Micro's interpreter."""
    suffix, format, runtime_name = ".tflite", "tflite-int8", "TFLite Micro"

    @staticmethod
    def need() -> None:
        int8.need("litert_torch", "litert-torch")
        int8.need("tflite_micro.python.tflite_micro.runtime", "tflite-micro")

    def __init__(self, net, info):
        self.net, self.mean, self.std = net, *stats(info, torch.device("cpu"))

    def quantize(self, images: torch.Tensor) -> bytes:
        return int8.quantize(self.net, normalize(images, self.mean, self.std))

    def run(self, model: bytes, test_x: torch.Tensor):
        runtime = int8.MicroRuntime(model)
        predicted = runtime.predict(normalize(test_x, self.mean, self.std))
        arena = runtime.arena()
        return predicted, {
            "input": (f"int8 (N, H, W, C): the normalised image (pixel / 255 - mean) / std, "
                      f"divided by {runtime.input_scale:.8g}, plus {runtime.input_zero}"),
            "input_scale": runtime.input_scale,
            "input_zero_point": runtime.input_zero,
            "arena_activations": arena.activations,
            "arena_total": arena.total,
        }

    @staticmethod
    def stored_bytes(model: bytes) -> int:
        return int8.stored_bytes(model)


class QdqOnnx:
    """int8 QDQ .onnx (float [0, 1] NCHW input, normalisation built in), run in onnxruntime."""
    suffix, format, runtime_name = ".onnx", "onnx-qdq-int8", "onnxruntime"

    need = staticmethod(qdq.need)

    def __init__(self, net, info):
        self.net = Normalized(net, info.mean, info.std).eval()

    def quantize(self, images: torch.Tensor) -> bytes:
        return qdq.quantize(self.net, images.float() / 255)

    def run(self, model: bytes, test_x: torch.Tensor):
        runtime = qdq.OnnxRuntime(model)
        images = test_x.float() / 255
        return runtime.predict(images), {
            "input": "float32 images in [0, 1], shaped (N, C, H, W); normalisation and the "
                     "quantization of the input are built in",
            "onnxruntime_peak_bytes": runtime.peak_bytes(images[0]),
        }

    stored_bytes = staticmethod(qdq.stored_bytes)


FORMATS = {"tflite": TFLiteMicro, "onnx": QdqOnnx}  # --int8 alone: tflite


def export_int8(study_dir: str | Path, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                data, out: str | Path | None = None, weights: str | Path | None = None,
                max_drop: float = MAX_DROP, force: bool = False,
                format: str = "tflite") -> tuple[Path, dict]:
    """Write ``out`` (.tflite, or .onnx with format="onnx") and its sidecar once the checks
    (module docstring) pass; returns the model's path and the sidecar's content."""
    kind = FORMATS[format]
    study_dir = Path(study_dir)
    out = output_path(study_dir, trial, out, weights, kind.suffix, "--int8", force, "-int8")
    if data is None:
        raise UsageError("nas export --int8 needs the dataset (training images calibrate the "
                         "int8 ranges, the test split checks the file): pass --data-dir")
    kind.need()  # before any work: a missing package is said first
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
    writer = kind(net, info)
    with checked_pair(out) as (model_tmp, keep):
        with step(f"quantizing to int8 on {CALIBRATION_IMAGES:,} training images"):
            model = writer.quantize(data.train_x[:CALIBRATION_IMAGES])
        model_tmp.write_bytes(model)
        with step(f"running the int8 file in {kind.runtime_name} on {len(data.test_x):,} test images"):
            predicted, measured = writer.run(model_tmp.read_bytes(), data.test_x)
            int8_acc = (torch.from_numpy(predicted) == data.test_y).float().mean().item()
        with torch.no_grad():
            fp32_acc = measure_accuracy(net, data.test_x, data.test_y, info)
        stored = kind.stored_bytes(model)
        problems = ([f"the file stores {stored:,} B of weights and biases where the spec "
                     f"counts {flash:,} B"] if stored != flash else [])
        arena = measured.get("arena_activations")
        if arena is not None and (limit := study_held.limit("max_ram")) is not None and arena > limit:
            problems.append(f"TFLite Micro's arena holds {arena:,} B of tensors, "
                            f"over the study's --max-ram {limit:,} B")
        if fp32_acc - int8_acc > max_drop:
            problems.append(f"its int8 test accuracy {int8_acc:.4f} is {fp32_acc - int8_acc:.4f} "
                            f"below fp32's {fp32_acc:.4f} (more than --max-drop {max_drop:g})")
        if problems:
            raise RuntimeError(f"trial {trial.number} not exported: " + "; ".join(problems))
        weights_held = weights_kind(study_dir, trial, weights)
        meta = {
            "model": out.name,
            "format": kind.format,
            "sha256": files.sha256(model_tmp),
            "trial": trial.number,
            "space": held.space,
            "input_shape": list(info.input_shape),
            **{k: v for k, v in measured.items() if k.startswith("input")},
            "normalization": {"mean": list(info.mean), "std": list(info.std)},
            "classes": list(info.classes),
            "params": count_params(spec),
            "macs": held.macs,
            "flash": flash,
            "ram": ram,
            **{k: v for k, v in measured.items() if not k.startswith("input")},
            "file_bytes": len(model),
            "test_acc": int8_acc,
            "fp32_test_acc": fp32_acc,
            "int8_drop": fp32_acc - int8_acc,
            "val_acc": None if weights_held != "search" else trial_val_acc(trial),
            "search_val_acc": trial_val_acc(trial),
            "weights_kind": weights_held,
            "weights": str(Path(weights or weights_path(study_dir, trial.number)).resolve()),
            "arch": held.arch_str,
            "arch_spec": held.arch,
            "max_abs_diff_vs_eager": None,  # int8: checked by accuracy instead
            "checked_on": f"{len(data.test_x)} test images in {kind.runtime_name}",
            "budget": study_held.budget,
            "study": study.study_name,
        }
        keep(meta)
    return out, meta
