"""``cnn``: plain convolutions, the nets people hand-design first.

Searched: number of layers, each a plain conv or (after the first) a residual basic block
of two convs with a parameter-free shortcut, per-layer width and kernel size, where to
downsample and how (2x2 max-pool or stride 2), batch norm on/off, activation, the head
(global average pooling, or flatten) with an optional hidden dense layer, and dropout.
"""

from __future__ import annotations

from nas.arch import ArchSpec, Block, Head
from nas.budget import check
from search_spaces.registry import register_space
from search_spaces.sampling import (MIN_HIDDEN, MIN_WIDTH, can_downsample, sample_hidden,
                                    sample_widths)

DEFAULT_LAYERS = (2, 6)


@register_space("cnn")
def plain_cnn(trial, data, constraints) -> ArchSpec:
    low, high = constraints.conv_layers or DEFAULT_LAYERS
    n_layers = trial.suggest_int("cnn.layers", low, high)
    bn = trial.suggest_categorical("cnn.bn", [True, False])
    act = trial.suggest_categorical("cnn.act", ["relu", "silu", "hardswish"])
    head_kind = trial.suggest_categorical("cnn.head", ["gap", "flat"])
    dropout = round(trial.suggest_float("cnn.dropout", 0.0, 0.5), 3)
    dense = False

    def spec(widths, hidden=None, layout=None):
        hidden = (MIN_HIDDEN if dense else 0) if hidden is None else hidden
        blocks = [Block(op, out, k, s, pool=pool)
                  for out, (op, k, s, pool) in zip(widths, layout or shapes)]
        return ArchSpec(data.in_channels, data.height, data.width, data.num_classes,
                        tuple(blocks), Head(head_kind, hidden, dropout), act, bn)

    def shape(k, down, op="conv"):
        return op, k, 2 if down and downsample == "stride" else 1, down and downsample == "maxpool"

    def still_fits(layout, h, w, hidden=None) -> bool:
        # The cheapest net that starts with ``layout``: every later layer 3x3, downsampling
        # while it can, every width the smallest. If that is over the budget, so is any.
        layout = list(layout)
        while len(layout) < n_layers:
            down = can_downsample(h, w)
            h, w = (h // 2, w // 2) if down else (h, w)
            layout.append(shape(3, down))
        return check(spec([MIN_WIDTH] * n_layers, hidden, layout), constraints).feasible

    # Max-pooling holds the full-size conv output first: offered where the cheapest net
    # downsampling so still fits (a microcontroller's RAM may rule it out).
    downsample = "maxpool"
    downsample = (trial.suggest_categorical("cnn.downsample", ["maxpool", "stride"])
                  if still_fits([], data.height, data.width) else "stride")
    # A hidden dense layer is offered only where the cheapest net with one fits.
    if still_fits([], data.height, data.width, MIN_HIDDEN):
        dense = trial.suggest_categorical("cnn.dense", [False, True])

    # Structure first (kernels, downsampling), so each width can be drawn knowing its cost.
    # A choice that no width could make fit (a flatten head over too large a map, a 5x5
    # kernel where 3x3 barely fits) is not offered: the layer takes the cheaper option.
    shapes, h, w, convs = [], data.height, data.width, 0
    for i in range(n_layers):
        # A residual block is two convs: offered while the conv-layer limit has room.
        op = "conv"
        if i > 0 and convs + 2 + (n_layers - i - 1) <= high:
            op = trial.suggest_categorical(f"cnn.op{i}", ["conv", "res"])
        convs += 2 if op == "res" else 1
        can = can_downsample(h, w)
        small = (h // 2, w // 2) if can else (h, w)
        k = 3
        if still_fits(shapes + [shape(5, can, op)], *small):
            k = trial.suggest_categorical(f"cnn.k{i}", [3, 5])
        down = can and (not still_fits(shapes + [shape(k, False, op)], h, w)
                        or trial.suggest_categorical(f"cnn.down{i}", [False, True]))
        if down:
            h, w = h // 2, w // 2
        shapes.append(shape(k, down, op))

    # Conv widths leave room for the smallest hidden layer; the hidden layer then takes
    # what it may of the rest.
    widths = sample_widths(trial, [f"cnn.w{i}" for i in range(n_layers)], spec, constraints)
    if not dense:
        return spec(widths)
    return spec(widths, sample_hidden(trial, "cnn.hidden", lambda units: spec(widths, units),
                                 constraints))
