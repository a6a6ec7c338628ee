"""Counting and feasibility, from the spec alone (no torch).

``layers(spec)`` follows the spec's one walk (``nas.arch.walk``) and gives one row per weight layer, with its
parameters (weights, bias and batch-norm affine) and multiply-accumulates for one image.
Every count in the tool comes from here: ``count_params`` equals
``sum(p.numel() for p in build(spec).parameters())`` exactly (a test holds this), and
``check`` is the only place that decides whether a spec may be built.

int8 bytes are what an int8 runtime stores of each layer: its weights at one byte each and
an int32 bias per output (batch norm folds into the conv's bias), without the per-channel
scales and zero points and the file's graph (compared with real files in
benchmarks/README.md). Peak activation memory is nas.activations'.

MACs count convolutions and linear layers (output elements x inputs per output); batch
norm, activations, pooling and residual adds are not MACs. thop counts those too as
"ops", so its total is a little higher; its conv and linear counts equal ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.activations import peak_bytes
from nas.arch import ArchSpec, Step, head_features, se_channels, walk

INT32 = 4  # bytes of an int8 runtime's bias


@dataclass(frozen=True)
class Layer:
    name: str  # e.g. "blocks.2.dw"
    kind: str  # "conv" | "dw" (depthwise) | "pw" (pointwise 1x1) | "linear"
    in_ch: int
    out_ch: int
    out_hw: tuple[int, int]
    params: int
    macs: int
    int8_bytes: int  # stored for an int8 runtime: int8 weights, an int32 bias per output


def _conv(name, kind, cin, cout, k, groups, out_hw, bn):
    """One conv (+ its BN) producing an ``out_hw`` map."""
    weights = cout * (cin // groups) * k * k
    extra = 2 * cout if bn else cout  # BN weight+bias, or conv bias when there is no BN
    macs = out_hw[0] * out_hw[1] * cout * (cin // groups) * k * k
    return Layer(name, kind, cin, cout, out_hw, weights + extra, macs, weights + INT32 * cout)


def layers(spec: ArchSpec) -> list[Layer]:
    rows = []
    for step in walk(spec):
        rows += _block_layers(step, spec.bn)
    features = head_features(spec)
    if spec.head.hidden:
        rows.append(_linear("head.hidden", features, spec.head.hidden))
        features = spec.head.hidden
    rows.append(_linear("head.classifier", features, spec.num_classes))
    return rows


def _block_layers(step: Step, bn: bool) -> list[Layer]:
    """The weight layers of one block, named as nas.model names its modules."""
    b, c, name, hw = step.block, step.in_ch, f"blocks.{step.index}", step.conv_hw
    if b.op in ("conv", "dense"):
        return [_conv(f"{name}.conv", "conv", c, b.out, b.k, 1, hw, bn)]
    if b.op == "res":  # the shortcut is parameter-free: subsample, zero-pad channels
        return [_conv(f"{name}.conv1", "conv", c, b.out, b.k, 1, hw, bn),
                _conv(f"{name}.conv2", "conv", b.out, b.out, b.k, 1, hw, bn)]
    rows, hidden = [], c * b.e  # dw (e = 1) and ir (inverted residual)
    if b.op == "ir" and b.e != 1:
        rows.append(_conv(f"{name}.expand", "pw", c, hidden, 1, 1, step.in_hw, bn))
    rows.append(_conv(f"{name}.dw", "dw", hidden, hidden, b.k, hidden, hw, bn))
    if b.se:
        rows += _squeeze_excitation(f"{name}.se", hidden)
    last = "pw" if b.op == "dw" else "project"
    rows.append(_conv(f"{name}.{last}", "pw", hidden, b.out, 1, 1, hw, bn))
    return rows


def _squeeze_excitation(name, c):
    """Global pool, then two small linear layers (with biases) that gate the c channels.
    Linear, not 1x1 convs: they are not conv layers (--conv-layers)."""
    squeeze = se_channels(c)
    return [_linear(f"{name}.reduce", c, squeeze), _linear(f"{name}.expand", squeeze, c)]


def _linear(name, fin, fout):
    return Layer(name, "linear", fin, fout, (1, 1), fin * fout + fout, fin * fout,
                 fin * fout + INT32 * fout)


def count_int8_bytes(spec: ArchSpec) -> int:
    """The int8 model's weights and biases in bytes (a microcontroller's flash): each
    weight one byte; batch norm folded into its conv's bias, every bias int32."""
    return sum(row.int8_bytes for row in layers(spec))


def count_params(spec: ArchSpec) -> int:
    return sum(row.params for row in layers(spec))


def count_macs(spec: ArchSpec) -> int:
    return sum(row.macs for row in layers(spec))


def count_conv_layers(spec: ArchSpec) -> int:
    """Every Conv2d counts as one layer: a depthwise-separable block is 2 (depthwise +
    pointwise), an inverted residual 3 (expand + depthwise + project; 2 when e=1), a
    residual basic block 2, a dense layer 1. Linear layers (head, squeeze-excitation) are not."""
    return sum(row.kind != "linear" for row in layers(spec))


@dataclass(frozen=True)
class Constraints:
    budget: int  # max trainable parameters, BN and head included
    conv_layers: tuple[int, int] | None = None  # inclusive range, None = any
    max_macs: int | None = None
    max_flash: int | None = None  # bytes of the int8 model's weights and biases
    max_ram: int | None = None  # bytes of the int8 activations (nas.activations)
    # Not a limit but a preference of the spaces' width sampling: draw nets that use at
    # least this share of the budget where the structure allows (search_spaces.sampling.fill_floor).
    fill: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.fill, bool) or not 0.0 <= self.fill <= 1.0:  # NaN fails too
            raise ValueError(f"--fill must be a share of the budget from 0 to 1, got {self.fill!r}")
        if self.budget < 1:
            raise ValueError(f"budget must be a positive number of parameters, got {self.budget}")
        if self.conv_layers is not None:
            low, high = self.conv_layers
            if not 1 <= low <= high:
                raise ValueError(f"conv-layer range must satisfy 1 <= min <= max, "
                                 f"got {low}-{high}")
        if self.max_macs is not None and self.max_macs < 1:
            raise ValueError(f"max MACs must be positive, got {self.max_macs}")
        for name in ("max_flash", "max_ram"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"--{name.replace('_', '-')} must be a positive number of bytes, got {value!r}")


@dataclass(frozen=True)
class Verdict:
    params: int
    macs: int
    conv_layers: int
    flash: int  # int8 weights and biases, bytes
    ram: int  # int8 peak activation memory, bytes
    violations: tuple[str, ...]  # human-readable reasons; empty when feasible
    # Optuna convention: feasible when every value <= 0.
    constraint_values: dict

    @property
    def feasible(self) -> bool:
        return not self.violations


def check(spec: ArchSpec, constraints: Constraints) -> Verdict:
    """The one feasibility decision: params <= budget, conv layers in range, MACs, int8
    flash and RAM <= their limits."""
    rows = layers(spec)
    params = sum(r.params for r in rows)
    macs = sum(r.macs for r in rows)
    convs = sum(r.kind != "linear" for r in rows)
    flash = sum(r.int8_bytes for r in rows)
    ram = peak_bytes(spec)
    values = {"params": float(params - constraints.budget)}
    violations = []
    if params > constraints.budget:
        violations.append(f"{params:,} params > budget {constraints.budget:,}")
    if constraints.conv_layers is not None:
        low, high = constraints.conv_layers
        values["conv_layers"] = float(max(low - convs, convs - high))
        if not low <= convs <= high:
            violations.append(f"{convs} conv layers outside {low}-{high}")
    if constraints.max_macs is not None:
        values["macs"] = float(macs - constraints.max_macs)
        if macs > constraints.max_macs:
            violations.append(f"{macs:,} MACs > limit {constraints.max_macs:,}")
    for key, value, limit, what in (("flash", flash, constraints.max_flash, "int8 model"),
                                    ("ram", ram, constraints.max_ram, "int8 activation peak")):
        if limit is not None:
            values[key] = float(value - limit)
            if value > limit:
                violations.append(f"{what} {value:,} B > --max-{key} {limit:,} B")
    return Verdict(params, macs, convs, flash, ram, tuple(violations), values)
