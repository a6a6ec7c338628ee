"""A model file nas export wrote, read back as data: its sidecar checked, the model rebuilt
from the spec the sidecar names (our code, not the file's), and the file's tensors checked
against it name by name and shape by shape (TorchScript; nas.scripted reads them without
running the file's code). Nothing a sidecar says is allocated before it is checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from nas import files
from nas.arch import ArchSpec, SpecError
from nas.budget import count_params
from nas.errors import UsageError, check_input_shape
from nas.model import TTA, Normalized, build, shape_difference, state_shapes
from nas.scripted import load_tensors, read_tensors


def sidecar_path(out: Path) -> Path:
    """model.pt -> model.json (as ever); model.onnx -> model.onnx.json, so exporting one
    trial in both formats keeps both sidecars."""
    out = Path(out)
    return out.with_suffix(".json") if out.suffix == ".pt" else out.with_name(out.name + ".json")


def read_sidecar(model: Path) -> tuple[dict, ArchSpec] | None:
    """(the sidecar, the spec it names) of an exported file; None when it has no sidecar.
    A sidecar of another file, or one nas did not write, is a UsageError."""
    sidecar = sidecar_path(model)
    if not sidecar.is_file():
        return None
    try:
        meta = json.loads(sidecar.read_text())
        spec = ArchSpec.from_dict(meta["arch_spec"])
        digest, classes = str(meta["sha256"]), list(meta["classes"])
        mean, std = [float(v) for v in meta["normalization"]["mean"]], [float(v) for v in meta["normalization"]["std"]]
    except (OSError, ValueError, KeyError, TypeError, SpecError):
        raise UsageError(f"{sidecar} is not a sidecar nas export wrote (export again to get "
                         f"one)") from None
    if digest != files.sha256(model):
        raise UsageError(f"{sidecar} belongs to another model file (its sha256 differs from "
                         f"{model.name}'s); export again")
    shape = check_input_shape((spec.in_channels, spec.height, spec.width), str(sidecar))
    if (list(meta.get("input_shape", ())) != list(shape) or len(classes) != spec.num_classes
            or len(mean) != shape[0] or len(std) != shape[0] or min(std) <= 0
            or meta.get("params") != count_params(spec)):
        raise UsageError(f"{sidecar}: its input shape, classes, normalisation or params do not "
                         f"agree with its architecture; export again")
    if meta.get("tta", "none") not in TTA:  # files exported before --tta have none
        raise UsageError(f"{sidecar}: unknown tta {meta.get('tta')!r} (valid: {', '.join(TTA)}); "
                         f"export again")
    return meta, spec


def _normalized(spec: ArchSpec, meta: dict) -> torch.nn.Module:
    norm = meta["normalization"]
    return Normalized(build(spec), norm["mean"], norm["std"], meta.get("tta", "none"))


def check_tensors(model: Path, spec: ArchSpec, meta: dict) -> int:
    """The TorchScript file holds exactly the tensors of the spec's model: their count."""
    held = {k: ref.size for k, ref in read_tensors(model).items()}
    if difference := shape_difference(state_shapes(lambda: _normalized(spec, meta)), held):
        raise UsageError(f"{model} does not hold the model its sidecar names ({spec.to_string()}): "
                         f"{difference}")
    return len(held)


def load_model(model: Path) -> tuple[ArchSpec, dict, torch.nn.Module]:
    """An exported TorchScript file as an eval-mode module taking [0, 1] images, built by
    nas from its sidecar's spec and given the file's tensors: none of the file's code runs."""
    found = read_sidecar(model)
    if found is None:
        raise UsageError(f"{model} has no sidecar {sidecar_path(model).name}")
    meta, spec = found
    check_tensors(model, spec, meta)
    net = _normalized(spec, meta)
    net.load_state_dict(load_tensors(model, list(net.state_dict())))
    return spec, meta, net.eval()
