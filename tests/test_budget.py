"""Counting from the spec must equal the built model; thop must agree on conv/linear MACs."""

import copy

import optuna
import pytest
import thop
import torch
from torch import nn

import search_spaces
from nas.arch import ArchSpec
from nas.budget import Constraints, check, count_conv_layers, count_macs, count_params
from nas.data import DataInfo
from nas.model import build

SHAPES = [(1, 28, 28, 10), (3, 32, 32, 10), (1, 48, 48, 7), (3, 17, 23, 5), (1, 8, 8, 2)]


def info(c, h, w, k):
    return DataInfo("t", c, h, w, k, (0.5,) * c, (0.25,) * c, tuple(map(str, range(k))))


def random_specs(space, n, seed, budgets=(3_000, 20_000, 50_000, 200_000), shapes=SHAPES,
                 layer_limit_every=5, fill=0.0):
    """Specs drawn by the space itself (random sampler), cycling through shapes and budgets;
    every ``layer_limit_every``-th draw also limits conv layers to 2-4."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for i in range(n):
        trial = study.ask()
        limit = (2, 4) if layer_limit_every and i % layer_limit_every == 0 else None
        c = Constraints(budgets[i % len(budgets)], limit, fill=fill)
        yield search_spaces.get_space(space)(trial, info(*shapes[i % len(shapes)]), c), c
        study.tell(trial, 0.0)


@pytest.mark.parametrize("space", search_spaces.space_names())
def test_param_count_equals_built_model(space):
    for spec, _ in random_specs(space, 60, seed=1):
        model = build(spec)
        assert count_params(spec) == sum(p.numel() for p in model.parameters()), spec.to_string()
        assert count_conv_layers(spec) == sum(isinstance(m, nn.Conv2d) for m in model.modules())
        out = model.eval()(torch.rand(2, spec.in_channels, spec.height, spec.width))
        assert out.shape == (2, spec.num_classes)


def conv_linear_ops(model, x):
    """thop's ops for Conv2d and Linear modules only, profiled on a throwaway copy."""
    copy_ = copy.deepcopy(model).eval()
    total, _, per_layer = thop.profile(copy_, inputs=(x,), verbose=False, ret_layer_info=True)
    modules = dict(copy_.named_modules())

    def walk(tree, prefix):
        for name, (ops, _, children) in tree.items():
            full = f"{prefix}{name}"
            if isinstance(modules[full], (nn.Conv2d, nn.Linear)):
                yield int(ops)
            yield from walk(children, full + ".")

    return int(total), sum(walk(per_layer, ""))


@pytest.mark.parametrize("text, shape", [
    ("c32k3-c64k3p-flat", (1, 28, 28, 10)),
    ("c16k3s2-dw32k3-ir32k5e4-ir48k3s2e3p-gap_fc32_d0.1-hardswish", (1, 28, 28, 10)),
    ("c24k3s2-dw48k5s2-ir48k3e6-dw96k3s2-gap", (3, 32, 32, 10)),
    ("c8k5s2p-c16k3-flat_fc64-silu-nobn", (1, 48, 48, 7)),
    ("c16k3-r16k3-r32k3s2-r48k5p-gap", (3, 32, 32, 10)),  # residual: shortcut has no MACs
    ("c8k3s2-dw16k3se-ir24k5s2e4se-gap", (1, 28, 28, 10)),  # SE: two small linear layers
    ("d8k3-d12k5p-d16k3p-gap_fc16", (1, 48, 48, 7)),  # dense: convs over the concatenation
])
def test_macs_match_thop_for_conv_and_linear(text, shape):
    spec = ArchSpec.from_string(text, *shape)
    model = build(spec)
    thop_total, thop_conv_linear = conv_linear_ops(model, torch.rand(1, *shape[:3]))
    assert count_macs(spec) == thop_conv_linear
    # thop also counts BN, pooling and adds as ops: its total can only be higher.
    assert thop_total >= count_macs(spec)


def test_check_reports_each_violation():
    spec = ArchSpec.from_string("c32k3-c64k3p-flat", 1, 28, 28, 10)  # 144,362 params, 2 convs
    verdict = check(spec, Constraints(100_000, (3, 4), max_macs=1000))
    assert not verdict.feasible and len(verdict.violations) == 3
    assert verdict.constraint_values["params"] == 44_362
    assert check(spec, Constraints(144_362, (2, 2))).feasible


@pytest.mark.parametrize("fill", [0.0, 0.9])
@pytest.mark.parametrize("space", search_spaces.space_names())
def test_under_5_percent_infeasible_and_fill_lands_near_the_budget(space, fill):
    for budget in (10_000, 50_000, 200_000):
        draws = list(random_specs(space, 100, seed=7, budgets=(budget,), shapes=[(1, 28, 28, 10)],
                                  layer_limit_every=0, fill=fill))
        verdicts = [check(spec, c) for spec, c in draws]
        feasible = [v for v in verdicts if v.feasible]
        assert len(verdicts) - len(feasible) < 0.05 * len(verdicts), (space, budget)
        if fill:  # the widths were drawn so the net can use >= 90% of the budget
            near = sum(v.params >= fill * budget for v in feasible)
            assert near >= 0.95 * len(feasible), (space, budget, near)


def test_conv_layer_limit_is_respected_by_construction():
    for space in search_spaces.space_names():
        for spec, c in random_specs(space, 40, seed=3):
            if c.conv_layers and check(spec, c).feasible:
                assert 2 <= count_conv_layers(spec) <= 4


def test_unknown_space_lists_valid_ones():
    with pytest.raises(search_spaces.UnknownSpace, match="valid: cnn, densenet, mobilenet"):
        search_spaces.get_space("resnet")


@pytest.mark.parametrize("space", search_spaces.space_names())
def test_every_parameter_has_one_distribution_in_every_trial(space):
    """What a model-based sampler needs: a parameter means the same in every trial. Widths
    are drawn as shares of what the budget leaves (search_spaces.sampling.draw_between), not
    from ranges that move with earlier draws."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: dict[str, set] = {}
    for _ in range(60):
        trial = study.ask()
        search_spaces.get_space(space)(trial, info(1, 28, 28, 10), Constraints(20_000, fill=0.5))
        study.tell(trial, 0.0)
    for t in study.trials:
        for name, distribution in t.distributions.items():
            seen.setdefault(name, set()).add(repr(distribution))
    assert seen and all(len(d) == 1 for d in seen.values()), {
        k: v for k, v in seen.items() if len(v) > 1}
