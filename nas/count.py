"""``nas count MODEL``: parameters and MACs per layer, for a spec string, a file nas export
wrote, any TorchScript file (with --trust-code) or a torchvision model name.

Specs are counted from the spec (``nas.budget.layers``), without building anything, and so
are exported files: from the spec their sidecar names, checked against the file's tensors
read as data (nas.exported). Torch modules are counted by running one image through them:
parameters per leaf module, and MACs of every Conv2d and Linear from hooks (output elements
x inputs per output), the same rule as for specs. Another TorchScript file can only be
counted by running its code: --trust-code does, in a child process with a time limit; it has
no hooks, so its MACs come from torch's FLOP counter (conv and matmul FLOPs / 2) as one total.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from nas.errors import UsageError, check_input_shape


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    params: int
    macs: int | None
    int8_bytes: int | None = None  # specs: what an int8 runtime stores of the layer


@dataclass(frozen=True)
class Count:
    what: str
    input_shape: tuple[int, int, int]
    rows: list[Row]
    params: int
    macs: int | None
    not_counted: tuple[str, ...] = ()  # computation the MAC rule skips, named for a warning
    thop: int | None = None  # thop's total for the same model, where thop can profile it
    # Specs: int8 activation bytes alive at each op (nas.activations.Held), in order, and
    # the arena they take (nas.activations.peak_bytes).
    activations: tuple = ()
    ram: int | None = None


# Modules that compute with weights outside Conv2d/Linear leaves, which the hooks miss
# (MultiheadAttention: its in-projection weight and the attention matmuls themselves).
UNCOUNTED_MODULES = ("MultiheadAttention", "RNN", "LSTM", "GRU", "Conv1d", "Conv3d",
                     "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "Bilinear")


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in str(text).lower().split("x"))
        if min(c, h, w) < 1:
            raise ValueError
    except ValueError:
        raise UsageError(f"bad --input {text!r}: expected CxHxW, e.g. 1x28x28 or 3x224x224") from None
    return check_input_shape((c, h, w), f"--input {text}")


def torchvision_names() -> list[str]:
    import torchvision.models

    return sorted(torchvision.models.list_models(module=torchvision.models))


def adapt_torchvision(name: str, in_channels: int, num_classes: int):
    """A torchvision classifier, untrained, for ``in_channels`` and ``num_classes``: the
    first conv replaced by one of the same shape for the other number of input channels."""
    import torchvision.models
    from torch import nn

    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    if in_channels != 3:
        for parent in model.modules():
            for child_name, child in parent.named_children():
                if isinstance(child, nn.Conv2d):
                    setattr(parent, child_name, nn.Conv2d(
                        in_channels, child.out_channels, child.kernel_size, child.stride,
                        child.padding, bias=child.bias is not None))
                    return model
    return model


def count(target: str, input_shape: tuple[int, int, int] | None = None,
          num_classes: int | None = None, trust_code: bool = False) -> Count:
    if num_classes is not None and num_classes < 1:
        raise UsageError(f"--classes must be an integer >= 1, got {num_classes}")
    if Path(target).is_file():
        return _count_file(Path(target), input_shape, trust_code)
    if target in torchvision_names():
        shape = input_shape or (3, 224, 224)
        model = adapt_torchvision(target, shape[0], num_classes or 1000)  # as nas baseline does
        what = target + (f" (first conv adapted to {shape[0]} input channel(s))" if shape[0] != 3 else "")
        return count_module(model, what, shape)
    return _count_spec(target, input_shape or (1, 28, 28), num_classes or 10)


def _count_spec(text: str, shape, num_classes) -> Count:
    from nas.activations import held, peak_bytes
    from nas.arch import ArchSpec, SpecError
    from nas.budget import layers

    try:
        spec = ArchSpec.from_string(text, *shape, num_classes)
        rows = [Row(r.name, r.kind, r.params, r.macs, r.int8_bytes) for r in layers(spec)]
    except SpecError as exc:
        raise UsageError(f"{text!r} is not a file, a torchvision model (e.g. resnet18, alexnet, "
                         f"mobilenet_v2) or a valid spec string: {exc}") from None
    from nas.model import build

    return Count(f"spec {spec.to_string()}", shape, rows, sum(r.params for r in rows),
                 sum(r.macs for r in rows), thop=thop_macs(build(spec), shape),
                 activations=tuple(held(spec)), ram=peak_bytes(spec))


def thop_macs(model, shape) -> int | None:
    """thop's count ("MACs") of ``model`` on one image, profiled on a throwaway copy (thop
    leaves buffers on the modules it profiles); None where thop cannot run it."""
    import copy

    import thop
    import torch

    try:
        with torch.no_grad():
            ops, _ = thop.profile(copy.deepcopy(model).eval(), inputs=(torch.zeros(1, *shape),),
                                  verbose=False)
    except Exception:  # thop's hooks fail on some module types; its figure is then not shown
        return None
    return int(ops)


def module_rows(model, shape) -> list[Row]:
    """One row per module that owns parameters; MACs of its Conv2d/Linear by hooks."""
    import torch
    from torch import nn

    macs: dict[str, int] = {}

    def hook(name):
        def record(module, inputs, output):
            if isinstance(module, nn.Conv2d):
                per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            else:
                per_output = module.in_features
            macs[name] = macs.get(name, 0) + output[0].numel() * per_output  # one image
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *shape))
    except RuntimeError as exc:
        raise UsageError(f"the model does not take input {'x'.join(map(str, shape))}: "
                         f"{str(exc).splitlines()[0]}; pass --input CxHxW") from None
    finally:
        for h in handles:
            h.remove()
    rows = []
    for name, module in model.named_modules():
        own = sum(p.numel() for p in module.parameters(recurse=False))
        if own or name in macs:
            rows.append(Row(name, type(module).__name__, own, macs.get(name)))
    return rows


def count_module(model, what, shape) -> Count:
    rows = module_rows(model, shape)
    return Count(what, shape, rows, sum(p.numel() for p in model.parameters()),
                 sum(r.macs or 0 for r in rows), not_counted(model), thop_macs(model, shape))


def not_counted(model) -> tuple[str, ...]:
    """What the Conv2d/Linear rule leaves out of the MACs: each such module type, with how
    many there are (e.g. '12 MultiheadAttention')."""
    from collections import Counter

    kinds = Counter(type(m).__name__ for m in model.modules()
                    if type(m).__name__ in UNCOUNTED_MODULES)
    return tuple(f"{n} {kind}" for kind, n in sorted(kinds.items()))


def _count_export(path: Path, found) -> Count:
    """A file nas export wrote: counted from the specs its sidecar names (the ONNX graph's
    weights are not the parameters one to one, batch norm being folded into the convs); a
    TorchScript file's tensors are checked against those specs, read as data. An ensemble's
    rows are its members' in turn; its MACs, every pass of every member."""
    from nas.exported import check_tensors, members, sidecar_path
    from nas.model import TTA

    meta, specs = found
    counts = [_count_spec(spec.to_string(), (spec.in_channels, spec.height, spec.width),
                          spec.num_classes) for spec in specs]
    passes = [TTA[part.get("tta", "none")] for part in members(meta)]
    if len(counts) == 1:
        result = counts[0]
    else:
        result = Count(f"ensemble of {len(counts)} nets, their logits averaged: "
                       + " + ".join(c.what for c in counts), counts[0].input_shape,
                       [replace(r, name=f"member{i}.{r.name}") for i, c in enumerate(counts) for r in c.rows],
                       sum(c.params for c in counts), sum(c.macs for c in counts))
    if len(counts) > 1 or passes != [1]:  # the rows are one pass of each net
        how = ("it on each image and its mirror (--tta flip)" if len(counts) == 1 else
               f"{sum(passes)} passes per image over its {len(counts)} nets"
               + (" (--tta flip: a net on each image and its mirror)" if max(passes) > 1 else ""))
        total = sum(n * c.macs for n, c in zip(passes, counts))
        result = replace(result, what=f"{result.what}; the file runs {how}: {total:,} MACs per "
                                      f"image in all")
    if path.suffix in (".onnx", ".tflite"):  # weights not the parameters one to one (folded, int8)
        kind = "ONNX" if path.suffix == ".onnx" else "int8 TFLite"
        return replace(result, what=f"{kind} {path} ({result.what}, from {sidecar_path(path).name})")
    tensors = check_tensors(path, specs, meta)
    return replace(result, what=f"TorchScript {path} ({result.what}, from {sidecar_path(path).name}; "
                                f"its {tensors} tensors match it)")


def _count_file(path: Path, shape, trust_code: bool) -> Count:
    from nas.exported import read_sidecar, sidecar_path

    try:
        found = read_sidecar(path)  # refuses a sidecar of another file, or not of nas export
        if found is not None:
            return _count_export(path, found)  # refuses a file that is not what it names
    except UsageError as exc:
        if not trust_code:
            raise UsageError(f"{exc}; or, if you trust the file, add --trust-code to count it "
                             f"by running its code") from None
        found = None  # the user's own .json beside their own model: run the file instead
    if path.suffix == ".onnx":
        raise UsageError(f"{path}: nas counts an ONNX file from the {sidecar_path(path).name} that "
                         f"nas export writes beside it, and there is none; count its spec string instead")
    if not trust_code:
        raise UsageError(f"{path} has no sidecar of nas export ({sidecar_path(path).name}), so it can "
                         f"only be counted by running its code, which can do anything you can: if "
                         f"you trust it, add --trust-code (and --input CxHxW)")
    if shape is None:
        raise UsageError(f"{path}: pass --input CxHxW (no {sidecar_path(path).name} beside it gives the input shape)")
    return _count_torchscript_in_child(path, shape)


def _count_torchscript_in_child(path: Path, shape) -> Count:
    """--trust-code: the file's code runs, in a time-limited child process (nas.trusted)."""
    import json

    from nas.trusted import run_code

    script = ("import json, sys; from nas.count import count_torchscript; "
              "print(json.dumps(count_torchscript(sys.argv[1], tuple(map(int, sys.argv[2:])))))")
    counted = json.loads(run_code(script, [path, *shape], str(path), "one image"))
    return Count(f"TorchScript {path} (its own code, run with --trust-code)", tuple(shape),
                 [Row(n, "", p, None) for n, p in counted["rows"]], counted["params"], counted["macs"])


def count_torchscript(path: str, shape) -> dict:
    """In the child process of --trust-code: parameters per module, MACs from torch's FLOP
    counter (a TorchScript module has no hooks). Bad input leaves one line on stderr."""
    import warnings

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with warnings.catch_warnings():  # TorchScript's deprecation notice
            warnings.simplefilter("ignore", FutureWarning)
            model = torch.jit.load(path, map_location="cpu").eval()
    except (RuntimeError, ValueError) as exc:
        raise SystemExit(f"is not a TorchScript file: {str(exc).splitlines()[0]}") from None
    rows: dict[str, int] = {}
    for name, p in model.named_parameters():
        owner = name.rsplit(".", 1)[0]
        rows[owner] = rows.get(owner, 0) + p.numel()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(torch.zeros(1, *shape))
    except RuntimeError as exc:
        raise SystemExit(f"does not take input {'x'.join(map(str, shape))}: "
                         f"{str(exc).splitlines()[0]}; pass --input CxHxW") from None
    return {"rows": list(rows.items()), "params": sum(rows.values()),
            "macs": counter.get_total_flops() // 2}


def table(result: Count) -> str:
    int8 = bool(result.activations)  # specs, and files nas exported: counted from the spec
    lines = [f"{result.what}, input {'x'.join(map(str, result.input_shape))}",
             f"{'layer':<40} {'type':<20} {'params':>12} {'MACs':>15}" + (f" {'int8 B':>9}" if int8 else "")]
    for r in result.rows:
        lines.append(f"{r.name:<40} {r.kind:<20} {r.params:>12,} "
                     f"{'' if r.macs is None else format(r.macs, ','):>15}"
                     + (f" {r.int8_bytes:>9,}" if int8 else ""))
    macs = "n/a" if result.macs is None else f"{result.macs:,}"
    if result.thop is not None:
        lines.append(f"thop: {result.thop:,} MACs (its Conv2d and Linear counts are ours; it also "
                     f"counts batch norm, pooling and residual adds as operations)")
    flash = f" {sum(r.int8_bytes for r in result.rows):>9,}" if int8 else ""
    lines.append(f"{'total':<61} {result.params:>12,} {macs:>15}{flash}")
    if int8:
        lines.append("\nint8 (flash: weights one byte each, biases int32; RAM: activations "
                     "alive at each op, one byte an element)")
        lines.append(f"{'op':<40} {'alive B':>12}")
        largest = max(op.bytes for op in result.activations)
        for op in result.activations:
            lines.append(f"{op.name:<40} {op.bytes:>12,}" + ("  <- largest" if op.bytes == largest else ""))
        lines.append(f"flash {sum(r.int8_bytes for r in result.rows):,} B, RAM {result.ram:,} B "
                     f"(these tensors laid out in one arena as TFLite Micro lays them out)")
    if result.not_counted:
        lines.append(f"warning: MACs count Conv2d and Linear layers only; not counted: "
                     f"{', '.join(result.not_counted)} (e.g. attention's in-projection and "
                     f"matmuls), so the total is low")
    return "\n".join(lines)
