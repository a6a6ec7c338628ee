"""Budget-aware sampling shared by the spaces: widths never shrink with depth, as in
hand-designed nets, and each is drawn from ``[previous width, widest that still fits the
budget with every later layer at least as wide]``; with a fill target (``--fill 0.9``) the
lower end rises to the narrowest width from which the net can still use 90% of the budget.
Each width is drawn as a share of that range (``draw_between``), a parameter with the same
distribution in every trial. Counting uses ``nas.budget`` only, so the space and the feasibility check cannot disagree."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from nas.arch import ArchSpec
from nas.budget import Constraints, check, count_params

MIN_WIDTH = 8
MAX_WIDTH = 256
MIN_HIDDEN, MAX_HIDDEN = 16, 256  # units of an optional hidden dense layer in the head


def widest_that_fits(make_spec: Callable[[int], ArchSpec], constraints: Constraints,
                     low: int = MIN_WIDTH, high: int = MAX_WIDTH) -> int:
    """Largest width in [low, high] whose spec fits the size limits (params, MACs, int8
    flash and RAM: each grows with every width); ``low`` when
    even that does not fit (the spec is then reported infeasible by ``nas.budget.check``)."""
    size_only = replace(constraints, conv_layers=None)  # widths do not change the layer count
    if not check(make_spec(low), size_only).feasible:
        return low
    while low < high:  # params and MACs grow with every width, so bisection is exact
        mid = (low + high + 1) // 2
        if check(make_spec(mid), size_only).feasible:
            low = mid
        else:
            high = mid - 1
    return low


def fill_floor(make_spec: Callable[[int], ArchSpec], constraints: Constraints,
               low: int, high: int) -> int:
    """--fill: the smallest width in [low, high] whose spec (with the rest of the net as wide
    as still fits) uses at least ``fill`` of the budget; ``high`` when none does, ``low``
    when there is no fill target. Parameters grow with the width, so bisection is exact."""
    target = constraints.fill * constraints.budget
    if target <= 0 or count_params(make_spec(low)) >= target:
        return low
    if count_params(make_spec(high)) < target:
        return high
    while low < high:
        mid = (low + high) // 2
        if count_params(make_spec(mid)) >= target:
            high = mid
        else:
            low = mid + 1
    return low


def sample_widths(trial, names: list[str], make_spec: Callable[[list[int]], ArchSpec],
                  constraints: Constraints) -> list[int]:
    """One non-decreasing width per name; see the module docstring. With --fill, each
    draw's lower end is raised so the net can still reach the fill target."""
    widths: list[int] = []
    # Below MIN_WIDTH only where a microcontroller's RAM leaves nothing wider (a full-size
    # first map): the widest uniform width that fits, when MIN_WIDTH everywhere does not.
    floor = MIN_WIDTH
    if constraints.max_ram is not None:
        floor = widest_that_fits(lambda w: make_spec([w] * len(names)), constraints, 1, MIN_WIDTH)
    for i, name in enumerate(names):
        low = widths[-1] if widths else floor
        later = len(names) - i  # this layer and every one after it
        high = widest_that_fits(lambda w: make_spec(widths + [w] * later), constraints, low)

        def widest_completion(w: int) -> ArchSpec:  # this width, the rest as wide as fits
            if later == 1:
                return make_spec(widths + [w])
            rest = widest_that_fits(lambda v: make_spec(widths + [w] + [v] * (later - 1)),
                                    constraints, w)
            return make_spec(widths + [w] + [rest] * (later - 1))

        low = fill_floor(widest_completion, constraints, low, high)
        widths.append(draw_between(trial, name, low, high))
    return widths


def draw_between(trial, name: str, low: int, high: int) -> int:
    """An integer in [low, high] drawn as a share of the way from low to high (on a log
    scale), parameter ``<name>_share`` in [0, 1]. The range moves with earlier draws and
    the budget; the share means the same in every trial ("take 80% of what is left"), so a
    model-based sampler such as TPE can learn from it, where a raw width drawn from a
    moving range means something else each time."""
    if high <= low:  # no choice: no draw (as a structural choice that cannot fit is not offered)
        return low
    share = trial.suggest_float(f"{name}_share", 0.0, 1.0)
    return min(high, max(low, round(low * (high / low) ** share)))


def sample_hidden(trial, name: str, make_spec: Callable[[int], ArchSpec],
                  constraints: Constraints) -> int:
    """Units of a head's hidden dense layer, drawn last: as many as the budget leaves room
    for at most, and (with --fill) at least enough to reach the fill target."""
    high = widest_that_fits(make_spec, constraints, MIN_HIDDEN, MAX_HIDDEN)
    low = fill_floor(make_spec, constraints, MIN_HIDDEN, high)
    return draw_between(trial, name, low, high)


def can_downsample(h: int, w: int) -> bool:
    """Halving is allowed while the result keeps at least 2x2 pixels."""
    return min(h, w) >= 4
