"""A model file nas export wrote, read back as data: its sidecar checked, the model rebuilt
from the specs the sidecar names (our code, not the file's), and the file's tensors checked
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
from nas.model import MAX_MEMBERS, TTA, Averaged, Normalized, build, shape_difference, state_shapes
from nas.scripted import load_tensors, read_tensors


def sidecar_path(out: Path) -> Path:
    """model.pt -> model.json (as ever); model.onnx -> model.onnx.json, so exporting one
    trial in both formats keeps both sidecars."""
    out = Path(out)
    return out.with_suffix(".json") if out.suffix == ".pt" else out.with_name(out.name + ".json")


def members(meta: dict) -> list[dict]:
    """The nets an exported file holds, each as its part of the sidecar: one for a trial's
    export, several for an ensemble (nas export --with), whose sidecar lists them."""
    return meta["members"] if "members" in meta else [meta]


def read_sidecar(model: Path) -> tuple[dict, list[ArchSpec]] | None:
    """(the sidecar, the spec of each net it holds) of an exported file; None when it has no
    sidecar. A sidecar of another file, or one nas did not write, is a UsageError."""
    sidecar = sidecar_path(model)
    if not sidecar.is_file():
        return None
    try:
        meta = json.loads(sidecar.read_text())
        parts = members(meta)
        if not isinstance(parts, list) or not 1 <= len(parts) <= MAX_MEMBERS:
            raise ValueError
        specs = [ArchSpec.from_dict(part["arch_spec"]) for part in parts]
        digest, classes, shape = str(meta["sha256"]), list(meta["classes"]), list(meta["input_shape"])
        norms = [([float(v) for v in part["normalization"]["mean"]],
                  [float(v) for v in part["normalization"]["std"]]) for part in parts]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SpecError):
        raise UsageError(f"{sidecar} is not a sidecar nas export wrote (export again to get "
                         f"one)") from None
    if digest != files.sha256(model):
        raise UsageError(f"{sidecar} belongs to another model file (its sha256 differs from "
                         f"{model.name}'s); export again")
    for spec, part, (mean, std) in zip(specs, parts, norms):
        net_shape = check_input_shape((spec.in_channels, spec.height, spec.width), str(sidecar))
        if (shape != list(net_shape) or len(classes) != spec.num_classes or len(mean) != shape[0]
                or len(std) != shape[0] or min(std) <= 0 or part.get("params") != count_params(spec)):
            raise UsageError(f"{sidecar}: its input shape, classes, normalisation or params do not "
                             f"agree with its architecture; export again")
        if part.get("tta", "none") not in TTA:  # files exported before --tta have none
            raise UsageError(f"{sidecar}: unknown tta {part.get('tta')!r} (valid: "
                             f"{', '.join(TTA)}); export again")
    if meta.get("params") != sum(count_params(spec) for spec in specs):
        raise UsageError(f"{sidecar}: its params are not its nets' params; export again")
    meta["arch"] = " + ".join(spec.to_string() for spec in specs)  # as nas reads the checked specs
    return meta, specs


def _normalized(spec: ArchSpec, part: dict) -> torch.nn.Module:
    norm = part["normalization"]
    return Normalized(build(spec), norm["mean"], norm["std"], part.get("tta", "none"))


def _built(specs: list[ArchSpec], meta: dict) -> torch.nn.Module:
    """The module an export holds, built by nas from its sidecar: a trial's net, or the
    average of an ensemble's."""
    if "members" not in meta:
        return _normalized(specs[0], meta)
    return Averaged([_normalized(spec, part) for spec, part in zip(specs, members(meta))])


def check_tensors(model: Path, specs: list[ArchSpec], meta: dict) -> int:
    """The TorchScript file holds exactly the tensors of the sidecar's model: their count."""
    held = {k: ref.size for k, ref in read_tensors(model).items()}
    if difference := shape_difference(state_shapes(lambda: _built(specs, meta)), held):
        raise UsageError(f"{model} does not hold the model its sidecar names ({meta['arch']}): "
                         f"{difference}")
    return len(held)


def load_model(model: Path) -> tuple[dict, torch.nn.Module]:
    """An exported TorchScript file as (its sidecar, an eval-mode module taking [0, 1]
    images), the module built by nas from the sidecar's specs and given the file's tensors:
    none of the file's code runs."""
    found = read_sidecar(model)
    if found is None:
        raise UsageError(f"{model} has no sidecar {sidecar_path(model).name}")
    meta, specs = found
    check_tensors(model, specs, meta)
    net = _built(specs, meta)
    net.load_state_dict(load_tensors(model, list(net.state_dict())))
    return meta, net.eval()
