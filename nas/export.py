"""Export a trained trial as one self-contained model file (TorchScript or ONNX) plus a
JSON sidecar.

The module is rebuilt from the spec stored in the trial (so old studies still export after
a space changes), loads the trial's weights, and takes float images in [0, 1] shaped
(N, C, H, W): the dataset's normalisation is part of the exported model. Each file is run
after writing, by the runtime that will serve it (torch.jit.load, onnxruntime), against the
eager model on real validation images; it replaces nothing unless that check passes.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import optuna
import torch

from nas import files, records
from nas.study_folder import weights_path
from nas.trials import trial_val_acc
from nas.weights import load_trained
from nas.budget import count_params
from nas.exported import sidecar_path
from nas.errors import UsageError, check_choice
from nas.model import TTA, Averaged, Normalized
from nas.progress import step

# The file suffix of each format, its name in messages, and the max abs difference of the
# written file's outputs from the eager model's: TorchScript runs the same kernels, while
# onnxruntime folds batch norm into the convs and sums in another order.
FORMATS = {"torchscript": (".pt", "TorchScript", 1e-6), "onnx": (".onnx", "ONNX", 1e-4)}
CHECK_IMAGES = 256


def export(study_dir: str | Path, study: optuna.Study, trial: optuna.trial.FrozenTrial,
           out: str | Path | None = None, data=None, weights: str | Path | None = None,
           format: str = "torchscript", force: bool = False, tta: str = "none",
           others: list[tuple[Path, optuna.Study, optuna.trial.FrozenTrial, str | Path | None]] = ()
           ) -> tuple[Path, dict]:
    """Write ``out`` (.pt, or .onnx with format="onnx") and its .json sidecar; returns the
    model's path and the sidecar's content.

    ``data`` (a ``nas.data.Data``) supplies real validation images for the equality check
    and test images for the test accuracy; without it the check uses random images and
    test_acc is null. ``tta="flip"`` builds the mirror average into the file (nas.model.TTA).
    ``others``: more trained nets, each (study folder, study, trial, weights), of studies of
    the same dataset: the file is then their ensemble with this one, the mean of their
    logits (nas.model.Averaged), and its sidecar lists each net as ``members``.
    """
    check_choice("format", format, FORMATS)
    check_choice("tta", tta, TTA)
    suffix, label, _ = FORMATS[format]
    study_dir = Path(study_dir)
    tag = f"-ensemble{1 + len(others)}" if others else ""
    out = output_path(study_dir, trial, out, weights, suffix, f"--format {format}", force, tag)
    runtime = WRITERS[format]  # before any file: a missing onnxruntime is said first
    runtime.check_installed()
    info = records.study(study).data
    for other_dir, other, _, _ in others:
        held = records.study(other).data
        if (held.name, held.input_shape, held.classes) != (info.name, info.input_shape, info.classes):
            raise UsageError(f"--with {str(other_dir)!r}: its study was searched on {held.name} "
                             f"{held.input_shape}, not {info.name} {info.input_shape}; an ensemble's "
                             f"nets classify the same images into the same classes")
    nets, parts = zip(*(_member(*pick, tta) for pick in [(study_dir, study, trial, weights), *others]))
    eager = nets[0] if len(nets) == 1 else Averaged(list(nets))
    what = f"trial {trial.number}" if len(nets) == 1 else f"the ensemble of {len(nets)} nets"
    with checked_pair(out) as (model_tmp, keep):
        images = (f"{min(CHECK_IMAGES, len(data.val_x)):,} validation images" if data is not None
                  else "random images")
        with step(f"writing the {label} file and checking it on {images}"):
            meta = _write_checked(model_tmp, eager.eval(), format, sum(p["params"] for p in parts),
                                  info, data, what)
        if len(nets) == 1:
            meta.update(parts[0])
        else:
            meta.update({"arch": " + ".join(p["arch"] for p in parts),
                         "macs": None if None in (p["macs"] for p in parts) else sum(p["macs"] for p in parts),
                         "members": [{**part, "test_acc": _accuracy(net, data)}
                                     for net, part in zip(nets, parts)]})
        meta["model"] = out.name
        keep(meta)
    return out, meta


def _member(study_dir: Path, study: optuna.Study, trial, weights, tta: str
            ) -> tuple[torch.nn.Module, dict]:
    """One trained net of an export, taking [0, 1] images, with its part of the sidecar. It
    holds exactly the params the search counted and stored for its trial, within its
    study's budget: checked before any file is written (writing an ONNX file takes seconds)."""
    study_dir = Path(study_dir)
    spec, net = load_trained(study_dir, trial, weights, study)
    kind = weights_kind(study_dir, trial, weights)
    if tta == "flip":
        check_mirrored(study, weights)
    # A final training trained on the validation split too: it has no validation accuracy.
    val_acc = weights_val_acc(Path(weights)) if kind == "retrained" else None
    val_acc = trial_val_acc(trial) if val_acc is None and kind != "final" else val_acc
    params, held, info = count_params(spec), records.trial(trial), records.study(study)
    counts = [("the model's parameter count", sum(p.numel() for p in net.parameters())),
              ("the trial's stored count", held.params)]
    _refuse_if(f"trial {trial.number}", _count_problems(counts, params)
               + ([f"{params:,} params is over the study's budget of {info.budget:,}"]
                  if info.budget is not None and params > info.budget else []))
    part = {"study": study.study_name, "trial": trial.number, "space": held.space,
            "arch": held.arch_str, "arch_spec": held.arch, "params": params,
            "macs": held.macs and held.macs * TTA[tta],  # every pass per image
            "tta": tta, "normalization": {"mean": list(info.data.mean), "std": list(info.data.std)},
            "budget": info.budget, "val_acc": val_acc, "search_val_acc": trial_val_acc(trial),
            "weights_kind": kind,
            "weights": str(Path(weights or weights_path(study_dir, trial.number)).resolve())}
    return Normalized(net, info.data.mean, info.data.std, tta).eval(), part


@contextlib.contextmanager
def checked_pair(out: Path):
    """A model file and its sidecar written and checked under temporary names: yields the
    model's temporary path and ``keep(meta)``, which puts the verified pair in place (model
    first, then its sidecar, which names the model's sha256). Nothing else replaces the
    user's files; the temporaries go either way."""
    model_tmp, sidecar_tmp = files.temporary_name(out), files.temporary_name(sidecar_path(out))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        model_tmp.touch()  # torch's own error for an unwritable folder names no file
    except OSError as exc:
        raise UsageError(f"cannot write --out {str(out)!r}: {exc.strerror}") from None

    def keep(meta: dict) -> None:
        sidecar_tmp.write_text(json.dumps(meta, indent=2) + "\n")
        files.commit(model_tmp, out)
        files.commit(sidecar_tmp, sidecar_path(out))
    try:
        with files.said_if_full(out):
            yield model_tmp, keep
    finally:
        for tmp in (model_tmp, sidecar_tmp):
            tmp.unlink(missing_ok=True)


def output_path(study_dir: Path, trial, out, weights, suffix: str, what: str, force: bool,
                tag: str = "") -> Path:
    """Where an export goes: ``out``, checked, or model-trialN<tag><suffix> (model-<weights'
    name> for other weights) in the study folder; a file at its sidecar's path that nas did
    not write is kept unless ``force``."""
    out = Path(out) if out else study_dir / (f"model-{Path(weights).stem}{tag}{suffix}" if weights
                                             else f"model-trial{trial.number}{tag}{suffix}")
    if out.suffix != suffix:
        raise UsageError(f"--out must end in {suffix} for {what}, got {str(out)!r}")
    if out.is_dir():
        raise UsageError(f"--out {str(out)!r} is a folder; give a file path ending in {suffix}")
    if sidecar_path(out).exists() and not force and not is_sidecar(sidecar_path(out)):
        raise UsageError(f"{sidecar_path(out)} exists and is not a sidecar nas export wrote; nas "
                         f"writes the model's sidecar there: pick another --out, or add --force "
                         f"to replace it")
    return out


def weights_kind(study_dir: Path, trial, weights: str | Path | None) -> str:
    """Which weights an export holds: the search's ("search"), a --time search's final
    training ("final"), or another file, e.g. nas train's ("retrained")."""
    from nas.final import final_path

    if weights is None:
        return "search"
    final = final_path(study_dir, trial.number)
    return "final" if final.is_file() and Path(weights).resolve() == final.resolve() else "retrained"


def check_mirrored(study: optuna.Study, weights: str | Path | None) -> None:
    """--tta flip fits only weights trained on mirrored images: a mirrored digit is another
    symbol, and a net never shown mirrors scores worse on them."""
    from nas import datasets

    held = records.study(study)
    if weights is None:  # the search's own trainings
        augment = held.augment or datasets.FORMATS[datasets.split_name(held.data.name)[0]].augment
    else:
        augment = _beside(Path(weights), "augment")
    if not isinstance(augment, str) or "flip" not in augment.split("-"):
        said = f"augmentation {augment}" if isinstance(augment, str) else "no record of its augmentation"
        raise UsageError(f"--tta flip averages over mirrored images, but these weights were trained "
                         f"with {said}; valid: --tta none, or weights trained with a flip "
                         f"augmentation (e.g. nas train --augment flip-affine)")


def _beside(weights: Path, key: str):
    """A figure nas train or a final training keeps beside its weights (.json); None if the
    file, or the figure, is absent or unreadable."""
    figures = weights.with_suffix(".json")
    try:
        held = json.loads(figures.read_text()) if figures.is_file() else {}
    except (OSError, ValueError):
        held = None
    return held.get(key) if isinstance(held, dict) else None


def weights_val_acc(weights: Path) -> float | None:
    """The validation accuracy nas train keeps beside its weights (.json), if there."""
    figures = weights.with_suffix(".json")
    if not figures.is_file():
        return None
    value = _beside(weights, "val_acc")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise UsageError(f"{figures} (beside --weights) is not the figures nas train writes: "
                         f"expected an object with a val_acc from 0 to 1")
    return float(value)


SIDECAR_KEYS = {"arch", "input_shape", "max_abs_diff_vs_eager"}


def is_sidecar(path: Path) -> bool:
    """Whether ``path`` holds a sidecar nas export wrote (any version), so it may be replaced."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and SIDECAR_KEYS <= meta.keys()


class TorchScript:
    """One file that plain torch.jit.load runs, no nas or Python class needed. Deprecated
    upstream, but the artefact the product promises, so still the default."""

    @staticmethod
    def check_installed() -> None:
        pass

    @staticmethod
    def write(path: Path, eager: torch.nn.Module, example: torch.Tensor):
        """Write ``eager`` to ``path``; what runs the file, and the params it holds."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            # Through memory: torch's own file writer aborts the process on a full disk.
            buffer = io.BytesIO()
            torch.jit.save(torch.jit.script(eager), buffer)
            path.write_bytes(buffer.getvalue())
            loaded = torch.jit.load(str(path), map_location="cpu").eval()
        return loaded, sum(p.numel() for p in loaded.parameters())


class Onnx:
    """An ONNX graph (any batch size) run by onnxruntime. Its weights are not the model's
    parameters one to one (batch norm is folded into the convs), so only the eager model's
    count is checked."""

    @staticmethod
    def check_installed() -> None:
        try:
            import onnx, onnxruntime, onnxscript  # noqa: F401, E401 (the exporter's and the check's)
        except ImportError as exc:
            raise UsageError(f"--format onnx needs the package {exc.name}, which is not installed "
                             f"here: pip install onnx onnxscript onnxruntime (nas's [onnx] extra); "
                             f"--format torchscript needs nothing more") from None

    @staticmethod
    def write(path: Path, eager: torch.nn.Module, example: torch.Tensor):
        import onnxruntime

        write_onnx(path, eager, example)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

        def run(images: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {"images": images.numpy()})[0])
        return run, None


def write_onnx(path: Path | str, eager: torch.nn.Module, example: torch.Tensor) -> None:
    """``eager`` as an fp32 ONNX graph taking "images" of any batch size, giving "logits"."""
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter; the caller's check is what counts
        torch.onnx.export(eager, (example,), str(path), dynamo=True, external_data=False,
                          input_names=["images"], output_names=["logits"],
                          dynamic_shapes=({0: batch},), verbose=False)


WRITERS = {"torchscript": TorchScript, "onnx": Onnx}


def _count_problems(counts: list[tuple[str, int | None]], params: int) -> list[str]:
    return [f"{what} ({value:,}) differs from the spec's count ({params:,})"
            for what, value in counts if value is not None and value != params]


def _refuse_if(what: str, problems: list[str]) -> None:
    if problems:
        raise RuntimeError(f"{what} not exported: " + "; ".join(problems))


@torch.no_grad()
def _accuracy(model, data) -> float | None:
    """``model``'s accuracy on the test split; None without data."""
    if data is None:
        return None
    correct = sum((model(data.test_x[i:i + 1000].float() / 255).argmax(1)
                   == data.test_y[i:i + 1000]).sum().item() for i in range(0, len(data.test_x), 1000))
    return correct / len(data.test_x)


def _write_checked(path: Path, eager: torch.nn.Module, format: str, params: int, info, data,
                   what: str) -> dict:
    """Write ``eager`` (``params`` params, taking ``info``'s images) to ``path`` in
    ``format``, load it back and check it: the sidecar's part on the file."""
    if data is not None:
        sample = data.val_x[:CHECK_IMAGES].float() / 255
    else:
        sample = torch.rand(64, *info.input_shape, generator=torch.Generator().manual_seed(0))
    loaded, in_file = WRITERS[format].write(path, eager, sample[:2])
    with torch.no_grad():
        difference = (loaded(sample) - eager(sample)).abs().max().item()
    tolerance = FORMATS[format][2]
    _refuse_if(what, _count_problems([("the file's parameter count", in_file)], params)
               + ([f"its outputs differ from the eager model's by {difference:g} (> {tolerance:g})"]
                  if difference > tolerance else []))
    return {
        "model": None,  # the caller's file name
        "format": format,
        "sha256": files.sha256(path),
        "input_shape": list(info.input_shape),
        "input": "float32 images in [0, 1], shaped (N, C, H, W); normalisation is built in",
        "classes": list(info.classes),
        "params": params,
        "test_acc": _accuracy(loaded, data),
        "max_abs_diff_vs_eager": difference,
        "checked_on": f"{len(sample)} " + ("validation images" if data is not None else "random images"),
        "params_in_file": in_file,
    }
