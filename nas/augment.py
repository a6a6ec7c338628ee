"""Per-batch training augmentation, on the batch's device: shapes never depend on the draw,
so it can sit inside a captured CUDA graph."""

from __future__ import annotations

import math
import random

import torch
from torch import nn

AUGMENTS = ("none", "crop", "flip-crop", "affine", "flip-affine")
# affine: a small random rotation, scale and shift per image, the classic digit augmentation;
# flip-affine adds a horizontal flip, for subjects that are left-right symmetric (faces).
AFFINE_DEGREES, AFFINE_SCALE, AFFINE_SHIFT = 10.0, 0.1, 0.1  # shift: share of the half-side


def random_affine(x: torch.Tensor) -> torch.Tensor:
    """Each image rotated by up to AFFINE_DEGREES, scaled by 1 +- AFFINE_SCALE and shifted
    by up to AFFINE_SHIFT of its half-side, resampled bilinearly; outside is 0, the mean."""
    n = x.shape[0]
    draw = (torch.rand(n, 4, device=x.device) * 2 - 1).float()  # uniform in [-1, 1]
    angle = draw[:, 0] * math.radians(AFFINE_DEGREES)
    scale = 1 + draw[:, 1] * AFFINE_SCALE
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, draw[:, 2] * AFFINE_SHIFT], 1),
                         torch.stack([sin, cos, draw[:, 3] * AFFINE_SHIFT], 1)], 1)
    grid = nn.functional.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return nn.functional.grid_sample(x, grid, align_corners=False)


def mixup_draw(rng: random.Random, alpha: float, batch: int, device) -> tuple[float, torch.Tensor]:
    """One mixup draw from ``rng``: the share (Beta(alpha, alpha)) of a batch kept, and the
    shuffle of it blended in."""
    share = rng.betavariate(alpha, alpha)
    seed = torch.Generator().manual_seed(rng.getrandbits(63))
    return share, torch.randperm(batch, generator=seed).to(device)


def augment(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Random horizontal flip, then a random translation (pad by 1/8 of the side, crop back)
    or a random affine warp (random_affine), of a normalised batch, per image, on the batch's
    device, as ``kind`` names them. Shapes never depend on the draw, so this can sit inside a
    CUDA graph. Padding is 0, the dataset mean."""
    if kind == "none":
        return x
    n, c, h, w = x.shape
    if "flip" in kind:
        flip = torch.rand(n, 1, 1, 1, device=x.device) < 0.5
        x = torch.where(flip, x.flip(3), x)
    if "affine" in kind:
        x = random_affine(x)
    if "crop" in kind:
        pad = max(1, round(min(h, w) / 8))
        padded = nn.functional.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device)
        dx = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device)
        rows = (torch.arange(h, device=x.device) + dy)[:, None, :, None]
        cols = (torch.arange(w, device=x.device) + dx)[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chans = torch.arange(c, device=x.device)[None, :, None, None]
        x = padded[batch, chans, rows, cols]
    return x.contiguous(memory_format=torch.channels_last)
