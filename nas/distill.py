"""Knowledge distillation's loss term (``nas train --teacher``)."""

from __future__ import annotations

import torch
from torch import nn


def distillation_loss(logits: torch.Tensor, teacher: nn.Module, images: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft-target term: KL(teacher || student) at ``temperature``, scaled
    by T^2 so its gradients keep their size as T changes."""
    with torch.no_grad():
        target = teacher(images.float()).float()
    t = temperature
    return nn.functional.kl_div(nn.functional.log_softmax(logits.float() / t, 1),
                                nn.functional.log_softmax(target / t, 1),
                                reduction="batchmean", log_target=True) * t * t
