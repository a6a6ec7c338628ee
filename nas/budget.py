"""Counting and feasibility, from the spec alone (no torch).

``layers(spec)`` walks the spec once and yields one row per weight layer, with its
parameters (weights, bias and batch-norm affine) and multiply-accumulates for one image.
Every count in the tool comes from here: ``count_params`` equals
``sum(p.numel() for p in build(spec).parameters())`` exactly (a test holds this), and
``check`` is the only place that decides whether a spec may be built.

MACs count convolutions and linear layers (output elements x inputs per output); batch
norm, activations, pooling and residual adds are not MACs. thop counts those too as
"ops", so its total is a little higher; its conv and linear counts equal ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.arch import ArchSpec, SpecError


@dataclass(frozen=True)
class Layer:
    name: str  # e.g. "blocks.2.dw"
    kind: str  # "conv" | "dw" (depthwise) | "pw" (pointwise 1x1) | "linear"
    in_ch: int
    out_ch: int
    out_hw: tuple[int, int]
    params: int
    macs: int


def _conv(name, kind, cin, cout, k, stride, groups, h, w, bn, valid=False):
    """One conv (+ its BN). Returns the row and the output spatial size."""
    shrink = k - 1 if valid else 0  # odd k: "same" padding keeps (h - 1) // s + 1
    if min(h, w) - shrink < 1:
        raise SpecError(f"{name}: a {k}x{k} conv without padding does not fit a {h}x{w} map")
    h_out, w_out = (h - shrink - 1) // stride + 1, (w - shrink - 1) // stride + 1
    weights = cout * (cin // groups) * k * k
    extra = 2 * cout if bn else cout  # BN weight+bias, or conv bias when there is no BN
    macs = h_out * w_out * cout * (cin // groups) * k * k
    return Layer(name, kind, cin, cout, (h_out, w_out), weights + extra, macs), h_out, w_out


def layers(spec: ArchSpec) -> list[Layer]:
    rows, c, h, w = _feature_layers(spec)
    features = c if spec.head.kind == "gap" else c * h * w
    if spec.head.hidden:
        rows.append(_linear("head.hidden", features, spec.head.hidden))
        features = spec.head.hidden
    rows.append(_linear("head.classifier", features, spec.num_classes))
    return rows


def feature_shape(spec: ArchSpec) -> tuple[int, int, int]:
    """(channels, height, width) of the feature map that enters the head."""
    _, c, h, w = _feature_layers(spec)
    return c, h, w


def _feature_layers(spec: ArchSpec):
    rows: list[Layer] = []
    c, h, w, bn = spec.in_channels, spec.height, spec.width, spec.bn
    for i, b in enumerate(spec.blocks):
        name = f"blocks.{i}"
        if b.op == "conv":
            row, h, w = _conv(f"{name}.conv", "conv", c, b.out, b.k, b.s, 1, h, w, bn, b.valid)
            rows.append(row)
        elif b.op == "dw":
            row, h, w = _conv(f"{name}.dw", "dw", c, c, b.k, b.s, c, h, w, bn)
            rows.append(row)
            if b.se:
                rows += _squeeze_excitation(f"{name}.se", c)
            row, h, w = _conv(f"{name}.pw", "pw", c, b.out, 1, 1, 1, h, w, bn)
            rows.append(row)
        elif b.op == "ir":  # inverted residual
            hidden = c * b.e
            if b.e != 1:
                row, h, w = _conv(f"{name}.expand", "pw", c, hidden, 1, 1, 1, h, w, bn)
                rows.append(row)
            row, h, w = _conv(f"{name}.dw", "dw", hidden, hidden, b.k, b.s, hidden, h, w, bn)
            rows.append(row)
            if b.se:
                rows += _squeeze_excitation(f"{name}.se", hidden)
            row, h, w = _conv(f"{name}.project", "pw", hidden, b.out, 1, 1, 1, h, w, bn)
            rows.append(row)
        elif b.op == "res":  # the shortcut is parameter-free: subsample, zero-pad channels
            if b.out < c:
                raise SpecError(f"block {i} ({b.to_string()}): a residual block cannot narrow "
                                f"{c} channels to {b.out}")
            row, h, w = _conv(f"{name}.conv1", "conv", c, b.out, b.k, b.s, 1, h, w, bn)
            rows.append(row)
            row, h, w = _conv(f"{name}.conv2", "conv", b.out, b.out, b.k, 1, 1, h, w, bn)
            rows.append(row)
        else:  # dense layer: new channels concatenated to the input
            row, h, w = _conv(f"{name}.conv", "conv", c, b.out, b.k, 1, 1, h, w, bn)
            rows.append(row)
        c = b.out + (c if b.op == "dense" else 0)
        if b.pool:
            if min(h, w) < 2:
                raise SpecError(f"block {i} ({b.to_string()}) max-pools a {h}x{w} map; "
                                f"the {spec.height}x{spec.width} input is downsampled too often")
            h, w = h // 2, w // 2
    return rows, c, h, w


def se_channels(channels: int) -> int:
    """Width of a squeeze-excitation bottleneck: a quarter, at least 4."""
    return max(4, channels // 4)


def _squeeze_excitation(name, c):
    """Global pool, then two small linear layers (with biases) that gate the c channels.
    Linear, not 1x1 convs: they are not conv layers (--conv-layers)."""
    squeeze = se_channels(c)
    return [_linear(f"{name}.reduce", c, squeeze), _linear(f"{name}.expand", squeeze, c)]


def _linear(name, fin, fout):
    return Layer(name, "linear", fin, fout, (1, 1), fin * fout + fout, fin * fout)


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
    # Not a limit but a preference of the spaces' width sampling: draw nets that use at
    # least this share of the budget where the structure allows (search_spaces.fill_floor).
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


@dataclass(frozen=True)
class Verdict:
    params: int
    macs: int
    conv_layers: int
    violations: tuple[str, ...]  # human-readable reasons; empty when feasible
    # Optuna convention: feasible when every value <= 0.
    constraint_values: dict

    @property
    def feasible(self) -> bool:
        return not self.violations


def check(spec: ArchSpec, constraints: Constraints) -> Verdict:
    """The one feasibility decision: params <= budget, conv layers in range, MACs <= limit."""
    rows = layers(spec)
    params = sum(r.params for r in rows)
    macs = sum(r.macs for r in rows)
    convs = sum(r.kind != "linear" for r in rows)
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
    return Verdict(params, macs, convs, tuple(violations), values)
