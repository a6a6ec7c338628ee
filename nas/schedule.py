"""How fast and how long a run trains: the default batch and LR, the LR schedule (over
steps, or over a time as it passes), and the time a timed command keeps back at its end."""

from __future__ import annotations

import math
from typing import Callable

import torch


def default_batch_size(device: torch.device) -> int:
    # On a GPU, batch 128 leaves the device idle between launches; 512 trains as well in
    # 3 epochs with the LR scaled up (see default_lr).
    return 128 if device.type == "cpu" else 512


def default_lr(batch_size: int) -> float:
    """0.005 at batch 128, scaled by sqrt(batch / 128): 0.01 at 512 (measured by
    benchmarks/batch_lr.py)."""
    return 5e-3 * math.sqrt(batch_size / 128)


EPOCH_CAP = 100_000  # a timed run's epochs when none are given: the time decides
WARMUP_SHARE = 0.25  # of the run: linear LR warm-up, then cosine down to zero


def one_cycle(total_steps: int, warmup: float = WARMUP_SHARE) -> Callable[[int], float]:
    """LR factor of each step: linear warm-up over the first quarter, then cosine down to
    zero. Written out because torch's OneCycleLR divides by zero when a run has only a few steps."""
    warm = max(1, int(total_steps * warmup))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total_steps - warm))))

    return factor


def cycle_at(progress: float, warmup: float = WARMUP_SHARE) -> float:
    """The same schedule as a share of the run done (0 to 1): a timed run's, whose step
    count is not known in advance."""
    if progress < warmup:
        return max(progress / warmup, 0.01)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup))))


def end_margin(total: float) -> float:
    """What a command with a time limit of ``total`` seconds keeps back after its training
    for what follows it: the figures, files and plot it writes, the summary, its exit."""
    return max(3.0, 0.01 * total)


def report_steps(steps_per_epoch: int, reports_per_epoch: int) -> list[int]:
    """Steps of an epoch after which a report falls: evenly spread, the last at its end."""
    per_epoch = max(1, min(reports_per_epoch, steps_per_epoch))
    return sorted({round(steps_per_epoch * (j + 1) / per_epoch) for j in range(per_epoch)})
