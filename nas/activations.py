"""Peak activation memory of a spec at int8 (1 byte an element), counted from the spec alone.

The net is laid out as the graph an int8 microcontroller runtime executes, in order: batch
norm folded into the conv before it, relu and relu6 fused into the op that produces their
input, hardswish one elementwise op, silu a sigmoid and a multiply.
Each op holds its inputs and its output at once; a tensor stays alive from the op that
writes it to the last op that reads it, so a residual's input, a squeeze-excitation's
feature map and a dense layer's input are counted while they wait, the input image too.
The count is the arena these tensors take when placed as TFLite Micro's planner places
them (``planned``): at least the largest sum of live tensors at any op, more where its
greedy layout leaves a gap. A strided conv whose padding is not
TensorFlow's "same" (PyTorch pads k // 2 on every side; "same" puts the odd pixel after)
gets the explicit pad op the TFLite converter writes before it, which holds the padded
copy beside its input. This is the graph TFLite Micro runs from the file `nas export
--int8` writes; how its arena compares is in benchmarks/README.md (the arena also holds
the runtime's own bookkeeping, not counted here).

This module never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.arch import ArchSpec, Step, feature_shape, se_channels, walk

FUSED_ACTIVATIONS = ("relu", "relu6")  # folded into the op before them by int8 runtimes
ALIGNMENT = 16  # TFLite Micro starts every tensor on a 16-byte boundary


@dataclass(frozen=True)
class Op:
    name: str  # the module it belongs to, e.g. "blocks.2.dw", "blocks.2.add"
    reads: tuple[int, ...]  # tensor ids
    writes: int  # tensor id
    size: int  # bytes of what it writes


@dataclass(frozen=True)
class Held:
    name: str
    bytes: int  # every live tensor while this op runs


class _Graph:
    def __init__(self, input_bytes: int):
        self.ops: list[Op] = []
        self.sizes = [-(-input_bytes // ALIGNMENT) * ALIGNMENT]  # tensor 0: the input image

    def op(self, name: str, reads: tuple[int, ...], size: int) -> int:
        size = -(-size // ALIGNMENT) * ALIGNMENT
        self.sizes.append(size)
        self.ops.append(Op(name, reads, len(self.sizes) - 1, size))
        return len(self.sizes) - 1

    def act(self, name: str, x: int, act: str | None) -> int:
        """The activation after op ``x`` wrote its output (nothing when fused or None)."""
        if act is None or act in FUSED_ACTIVATIONS:
            return x
        size = self.sizes[x]
        if act == "silu":
            gate = self.op(f"{name}.sigmoid", (x,), size)
            return self.op(f"{name}.mul", (x, gate), size)
        return self.op(f"{name}.{act}", (x,), size)


def same_padding(size: int, k: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one side: (before, after)."""
    total = max((-(-size // stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def _conv(g: _Graph, name: str, x: int, ch: int, hw: tuple[int, int], act: str | None,
          k: int = 1, stride: int = 1, in_shape: tuple[int, int, int] | None = None) -> int:
    """A conv writing ``ch`` x ``hw``; ``in_shape`` (channels, height, width of its input)
    where it is kxk with "same" padding, to tell whether it needs an explicit pad op."""
    if in_shape is not None and k > 1:
        c, h, w = in_shape
        if (same_padding(h, k, stride), same_padding(w, k, stride)) != ((k // 2,) * 2,) * 2:
            x = g.op(f"{name}.pad", (x,), c * (h + k // 2 * 2) * (w + k // 2 * 2))
    return g.act(name, g.op(name, (x,), ch * hw[0] * hw[1]), act)


def _block(g: _Graph, step: Step, x: int, act: str) -> int:
    b, name, hw = step.block, f"blocks.{step.index}", step.conv_hw
    entering = (step.in_ch, *step.in_hw)
    if b.op == "conv":
        y = _conv(g, f"{name}.conv", x, b.out, hw, act, b.k, b.s, None if b.valid else entering)
    elif b.op == "dense":
        new = _conv(g, f"{name}.conv", x, b.out, hw, act, b.k, 1, entering)
        y = g.op(f"{name}.concat", (x, new), step.out_ch * hw[0] * hw[1])
    elif b.op == "res":
        y1 = _conv(g, f"{name}.conv1", x, b.out, hw, act, b.k, b.s, entering)
        y2 = _conv(g, f"{name}.conv2", y1, b.out, hw, None, b.k, 1, (b.out, *hw))
        shortcut, thin = x, step.in_ch * hw[0] * hw[1]
        if b.s != 1:
            shortcut = g.op(f"{name}.subsample", (x,), thin)
        if b.out != step.in_ch:  # the converter requantizes the shortcut before its pad
            shortcut = g.op(f"{name}.requantize", (shortcut,), thin)
            shortcut = g.op(f"{name}.pad", (shortcut,), b.out * hw[0] * hw[1])
        y = g.act(f"{name}.act", g.op(f"{name}.add", (y2, shortcut), b.out * hw[0] * hw[1]), act)
    else:  # dw, ir
        hidden = step.in_ch * b.e
        h = x
        if b.op == "ir" and b.e != 1:
            h = _conv(g, f"{name}.expand", x, hidden, step.in_hw, act)
        d = _conv(g, f"{name}.dw", h, hidden, hw, act, b.k, b.s, (hidden, *step.in_hw))
        if b.se:
            squeeze = se_channels(hidden)
            pooled = g.op(f"{name}.se.pool", (d,), hidden)
            reduced = g.act(f"{name}.se.reduce", g.op(f"{name}.se.reduce", (pooled,), squeeze), "relu")
            gate = g.op(f"{name}.se.sigmoid", (g.op(f"{name}.se.expand", (reduced,), hidden),), hidden)
            gate = g.op(f"{name}.se.requantize", (gate,), hidden)
            d = g.op(f"{name}.se.mul", (d, gate), hidden * hw[0] * hw[1])
        last = "pw" if b.op == "dw" else "project"
        y = _conv(g, f"{name}.{last}", d, b.out, hw, act if b.op == "dw" else None)
        if b.op == "ir" and b.s == 1 and step.in_ch == b.out:
            y = g.op(f"{name}.add", (y, x), b.out * hw[0] * hw[1])
    if b.pool:
        pooled = step.out_ch * step.out_hw[0] * step.out_hw[1]
        y = g.op(f"{name}.pool", (y,), pooled)
        if b.op == "res":  # pooled after an add: the converter requantizes it
            y = g.op(f"{name}.pool.requantize", (y,), pooled)
    return y


def graph(spec: ArchSpec) -> _Graph:
    """The spec's ops in execution order, each with the tensors it reads and writes."""
    g = _Graph(spec.in_channels * spec.height * spec.width)
    x = 0
    for step in walk(spec):
        x = _block(g, step, x, spec.act)
    c, h, w = feature_shape(spec)
    if spec.head.kind == "gap":
        x = g.op("head.pool", (x,), c)
    else:  # flatten in channels-first order (the order of the classifier's weights)
        x = g.op("head.flatten.transpose", (x,), c * h * w)
        x = g.op("head.flatten", (x,), c * h * w)
    if spec.head.hidden:
        x = g.act("head.hidden", g.op("head.hidden", (x,), spec.head.hidden), spec.act)
    g.op("head.classifier", (x,), spec.num_classes)
    return g


def lifetimes(g: _Graph) -> list[tuple[int, int]]:
    """(first op, last op) each tensor is alive: from the op that writes it (the input
    image: from the first op) to the last op that reads it."""
    spans = [(max(t - 1, 0), max(t - 1, 0)) for t in range(len(g.sizes))]
    for i, op in enumerate(g.ops):
        for t in op.reads:
            spans[t] = (spans[t][0], i)
    return spans


def held(spec: ArchSpec) -> list[Held]:
    """For each op in execution order, the bytes of every tensor alive while it runs."""
    g = graph(spec)
    spans = lifetimes(g)
    return [Held(op.name, sum(size for size, (first, last) in zip(g.sizes, spans) if first <= i <= last))
            for i, op in enumerate(g.ops)]


def planned(sizes: list[int], spans: list[tuple[int, int]]) -> int:
    """The arena the tensors take when laid out as TFLite Micro's greedy planner lays them
    out: largest first (of equal sizes, the later tensor first), each at the lowest offset
    clear of every tensor placed before it that is alive at the same time. At least the
    largest live set; more where a gap between larger tensors is too small for a later one."""
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first op, last op
    for t in sorted(range(len(sizes)), key=lambda t: (-sizes[t], -t)):
        first, last = spans[t]
        offset = 0
        for at, size, other_first, other_last in sorted(placed):
            if other_last < first or other_first > last:
                continue  # never alive at the same time: may share bytes
            if offset + sizes[t] <= at:
                break
            offset = max(offset, at + size)
        placed.append((offset, sizes[t], first, last))
    return max(offset + size for offset, size, _, _ in placed)


def peak_bytes(spec: ArchSpec) -> int:
    """The int8 activation memory the spec needs (module docstring): its tensors laid out
    in one arena as TFLite Micro lays them out."""
    g = graph(spec)
    return planned(g.sizes, lifetimes(g))
