"""``mobilenet``: a stem conv, then depthwise-separable blocks, then global average pooling.

Searched: number of blocks, each block's type (plain depthwise-separable: depthwise kxk +
pointwise 1x1; or MobileNetV2 inverted residual with an expansion ratio), width, stride,
kernel size and squeeze-excitation on/off, the stem's width and stride, the activation and
the head's dropout.
"""

from __future__ import annotations

import math
from dataclasses import replace

from nas.arch import ArchSpec, Block, Head
from nas.budget import check
from search_spaces.registry import register_space
from search_spaces.sampling import MIN_WIDTH, can_downsample, sample_widths

DEFAULT_BLOCKS = (2, 8)


def block_range(constraints) -> tuple[int, int]:
    """Blocks that can meet a conv-layer range: the stem is 1 conv, a block 2 or 3."""
    if constraints.conv_layers is None:
        return DEFAULT_BLOCKS
    low, high = constraints.conv_layers
    fewest = max(1, math.ceil((low - 1) / 3))
    return fewest, max(fewest, (high - 1) // 2)


def shrink(h: int, w: int, stride: int) -> tuple[int, int]:
    """The map after a "same"-padded conv of this stride."""
    return (h - 1) // stride + 1, (w - 1) // stride + 1


@register_space("mobilenet")
def mobilenet(trial, data, constraints) -> ArchSpec:
    n_blocks = trial.suggest_int("mobilenet.blocks", *block_range(constraints))
    act = trial.suggest_categorical("mobilenet.act", ["relu6", "hardswish", "silu"])
    head = Head("gap", 0, round(trial.suggest_float("mobilenet.dropout", 0.0, 0.3), 3))

    # Structure first (types, kernels, strides), then widths, each knowing its cost.
    h, w = data.height, data.width
    stem_stride = 1

    def spec(widths, layout=None):
        stem = Block("conv", widths[0], 3, stem_stride)
        blocks = [Block(op, out, k, s, e, se=se)
                  for out, (op, k, s, e, se) in zip(widths[1:], layout or shapes)]
        return ArchSpec(data.in_channels, data.height, data.width, data.num_classes,
                        (stem, *blocks), head, act, True)

    shapes = []
    size_only = replace(constraints, conv_layers=None)

    def cheapest_fits(prefix, at) -> bool:
        # The cheapest net that starts with ``prefix`` (leaving an ``at`` map): every width
        # the smallest, later blocks plain 3x3 depthwise-separable, downsampling while they
        # can (less memory, the same weights). If that is over the limits, no width can make
        # it fit. (The conv-layer count is the loop's business below, not this check's.)
        layout = list(prefix)
        while len(layout) < n_blocks:
            down = 2 if can_downsample(*at) else 1
            layout.append(("dw", 3, down, 1, False))
            at = shrink(*at, down)
        return check(spec([MIN_WIDTH] * (n_blocks + 1), layout), size_only).feasible

    def fits(op, k, e, se, s=1) -> bool:
        return cheapest_fits(shapes + [(op, k, s, e, se)], shrink(h, w, s))

    def stride(name, one_fits: bool) -> int:
        """1 or 2 where the map can halve; 2 without a draw where 1 could not fit (a
        microcontroller's RAM may rule out a full-size map)."""
        if not can_downsample(h, w):
            return 1
        return trial.suggest_categorical(name, [1, 2]) if one_fits else 2

    stem_stride = stride("mobilenet.stem_stride", cheapest_fits([], (h, w)))
    h, w = shrink(h, w, stem_stride)

    def choose(name, choices, costliest):
        """Draw among ``choices`` when even the costliest fits, else take the cheapest
        without a draw (a choice no width could make fit is not offered)."""
        return trial.suggest_categorical(name, choices) if costliest() else choices[0]

    # The conv-layer range fixes how many blocks are inverted residuals (3 convs, the
    # others 2, the stem 1): a block is forced to one type when the rest could not make up
    # the count otherwise.
    low, high = constraints.conv_layers or (0, math.inf)
    fewest_ir, most_ir = max(0, low - 1 - 2 * n_blocks), min(n_blocks, high - 1 - 2 * n_blocks)
    irs = 0
    for i in range(n_blocks):
        if irs + (n_blocks - i - 1) < fewest_ir:
            op = "ir"
        elif irs >= most_ir:
            op = "dw"
        else:
            op = choose(f"mobilenet.type{i}", ["dw", "ir"], lambda: fits("ir", 3, 2, False))
        irs += op == "ir"
        e = 1
        if op == "ir":
            e = choose(f"mobilenet.expand{i}", [2, 4, 6], lambda: fits("ir", 3, 6, False))
        k = choose(f"mobilenet.k{i}", [3, 5], lambda: fits(op, 5, e, False))
        se = choose(f"mobilenet.se{i}", [False, True], lambda: fits(op, k, e, True))
        s = stride(f"mobilenet.stride{i}", fits(op, k, e, se, 1))
        h, w = shrink(h, w, s)
        shapes.append((op, k, s, e, se))

    names = ["mobilenet.stem_width"] + [f"mobilenet.w{i}" for i in range(n_blocks)]
    return spec(sample_widths(trial, names, spec, constraints))
