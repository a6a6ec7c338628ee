"""``cnn``: plain convolutions, the nets people hand-design first.

Searched: number of conv layers, per-layer width and kernel size, where to downsample and
how (2x2 max-pool or stride 2), batch norm on/off, activation, the head (global average
pooling, or flatten) with an optional hidden dense layer, and dropout.
"""

from __future__ import annotations

from nas.arch import ArchSpec, Block, Head
from search_spaces import can_downsample, register_space, sample_widths, widest_that_fits

DEFAULT_LAYERS = (2, 6)
MIN_HIDDEN, MAX_HIDDEN = 16, 256


@register_space("cnn")
def plain_cnn(trial, data, constraints) -> ArchSpec:
    low, high = constraints.conv_layers or DEFAULT_LAYERS
    n_layers = trial.suggest_int("cnn.layers", low, high)
    downsample = trial.suggest_categorical("cnn.downsample", ["maxpool", "stride"])
    bn = trial.suggest_categorical("cnn.bn", [True, False])
    act = trial.suggest_categorical("cnn.act", ["relu", "silu", "hardswish"])
    head_kind = trial.suggest_categorical("cnn.head", ["gap", "flat"])
    dense = trial.suggest_categorical("cnn.dense", [False, True])
    dropout = round(trial.suggest_float("cnn.dropout", 0.0, 0.5), 3)

    # Structure first (kernels, downsampling), so each width can be drawn knowing its cost.
    shapes, h, w = [], data.height, data.width
    for i in range(n_layers):
        k = trial.suggest_categorical(f"cnn.k{i}", [3, 5])
        down = can_downsample(h, w) and trial.suggest_categorical(f"cnn.down{i}", [False, True])
        if down:
            h, w = h // 2, w // 2
        shapes.append((k, 2 if down and downsample == "stride" else 1, down and downsample == "maxpool"))

    def spec(widths, hidden=MIN_HIDDEN if dense else 0):
        blocks = [Block("conv", out, k, s, pool=pool)
                  for out, (k, s, pool) in zip(widths, shapes)]
        return ArchSpec(data.in_channels, data.height, data.width, data.num_classes,
                        tuple(blocks), Head(head_kind, hidden, dropout), act, bn)

    # Conv widths leave room for the smallest hidden layer; the hidden layer then takes
    # what it may of the rest.
    widths = sample_widths(trial, [f"cnn.w{i}" for i in range(n_layers)], spec, constraints)
    if not dense:
        return spec(widths)
    high = widest_that_fits(lambda units: spec(widths, units), constraints, MIN_HIDDEN, MAX_HIDDEN)
    return spec(widths, trial.suggest_int("cnn.hidden", MIN_HIDDEN, high, log=True))
