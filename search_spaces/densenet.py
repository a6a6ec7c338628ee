"""``densenet``: a few conv layers, each adding its new channels to everything before it
(DenseNet's concatenation), the "only 2-4 conv layers" nets people hand-design.

Searched: number of layers (2-4, or --conv-layers), each layer's growth (new channels) and
kernel size, a 2x2 max-pool after it or not, batch norm on/off, activation, an optional
hidden dense layer and dropout before the global-average-pool classifier. Every layer sees
the input and all earlier layers' features, so few layers go further than in a plain stack.
"""

from __future__ import annotations

from nas.arch import ArchSpec, Block, Head
from nas.budget import check
from search_spaces.registry import register_space
from search_spaces.sampling import (MIN_HIDDEN, MIN_WIDTH, can_downsample, sample_hidden,
                                    sample_widths)

DEFAULT_LAYERS = (2, 4)


@register_space("densenet")
def densenet(trial, data, constraints) -> ArchSpec:
    n_layers = trial.suggest_int("densenet.layers", *(constraints.conv_layers or DEFAULT_LAYERS))
    bn = trial.suggest_categorical("densenet.bn", [True, False])
    act = trial.suggest_categorical("densenet.act", ["relu", "silu", "hardswish"])
    dense = trial.suggest_categorical("densenet.dense", [False, True])
    dropout = round(trial.suggest_float("densenet.dropout", 0.0, 0.5), 3)

    def spec(growths, hidden=MIN_HIDDEN if dense else 0, layout=None):
        blocks = [Block("dense", g, k, pool=pool) for g, (k, pool) in zip(growths, layout or shapes)]
        return ArchSpec(data.in_channels, data.height, data.width, data.num_classes,
                        tuple(blocks), Head("gap", hidden, dropout), act, bn)

    def fits_5x5() -> bool:  # the cheapest net with a 5x5 kernel here: smallest growths, 3x3 after
        layout = shapes + [(5, False)] + [(3, False)] * (n_layers - len(shapes) - 1)
        return check(spec([MIN_WIDTH] * n_layers, layout=layout), constraints).feasible

    shapes, h, w = [], data.height, data.width
    for i in range(n_layers):
        k = trial.suggest_categorical(f"densenet.k{i}", [3, 5]) if fits_5x5() else 3
        pool = can_downsample(h, w) and trial.suggest_categorical(f"densenet.pool{i}", [False, True])
        if pool:
            h, w = h // 2, w // 2
        shapes.append((k, pool))

    growths = sample_widths(trial, [f"densenet.g{i}" for i in range(n_layers)], spec, constraints)
    if not dense:
        return spec(growths)
    return spec(growths, sample_hidden(trial, "densenet.hidden", lambda units: spec(growths, units),
                                 constraints))
