"""How every command measures a net: top-1 accuracy on uint8 images, after batch norm's
statistics are re-estimated for the weights as they are. The training loop (``nas.trainer``)
validates with it; ``nas train``, ``nas baseline``, the front's test scores and the
benchmarks measure with it."""

from __future__ import annotations

import torch
from torch import nn

from nas.data import Data, DataInfo

# Training images whose statistics replace batch norm's running averages before each
# validation (reestimate_bn); a fixed set, the first of the (already shuffled) training split.
BN_IMAGES = 2000


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    # channels_last: faster for these small convs, on CPU as on GPU (benchmarks/README.md).
    x = (x.float().div_(255) - mean) / std
    return x.contiguous(memory_format=torch.channels_last)


def eval_batch_size(device: torch.device, height: int, width: int) -> int:
    # On CPU, batches past a few hundred images fall out of cache and get slower (measured).
    # On a GPU, as large as a few million pixels allows: 5,102 MNIST images, 256 at 128x128.
    if device.type == "cpu":
        return 256
    return max(256, min(8192, 4_000_000 // (height * width)))


def stats(info: DataInfo, device) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(info.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(info.std, device=device).view(1, -1, 1, 1)
    return mean, std


def autocast(device: torch.device, bf16: bool):
    # cache_enabled=False: autocast's weight-cast cache must not outlive a graph capture.
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=False)


@torch.inference_mode()
def measure_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, info: DataInfo,
                     bf16: bool = False) -> float:
    """Top-1 accuracy of ``model`` on uint8 images ``x`` (already on the model's device).
    fp32 unless ``bf16``: test accuracy is always fp32, as an exported model runs."""
    was_training = model.training
    model.eval()
    batch_size = eval_batch_size(x.device, x.shape[-2], x.shape[-1])
    mean, std = stats(info, x.device)
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    for i in range(0, len(x), batch_size):
        with autocast(x.device, bf16):
            logits = model(normalize(x[i:i + batch_size], mean, std))
        correct += (logits.argmax(1) == y[i:i + batch_size]).sum()
    model.train(was_training)
    return correct.item() / max(1, len(x))


@torch.no_grad()
def reestimate_bn(model: nn.Module, images: torch.Tensor, info: DataInfo, bf16: bool = False) -> None:
    """Recompute batch norm's running statistics for the weights as they are now.

    In a short run the running averages (momentum 0.1) trail weights that still move fast,
    so eval mode measures stale statistics and short trials score far below what their
    weights are worth (benchmarks/bn_reestimation.py; figures in benchmarks/README.md). As
    slimmable nets and once-for-all do before evaluating a sub-network: reset, then a
    cumulative average over ``images`` (uint8 training images, not augmented) in train
    mode, without gradients. A no-op for nets without batch norm."""
    norms = [m for m in model.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or len(images) == 0:
        return
    was_training, momenta = model.training, [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()  # in place: a captured CUDA graph keeps reading these buffers
        m.momentum = None  # cumulative average over the batches below
    model.train()
    mean, std = stats(info, images.device)
    batch_size = eval_batch_size(images.device, images.shape[-2], images.shape[-1])
    for i in range(0, len(images), batch_size):
        with autocast(images.device, bf16):
            model(normalize(images[i:i + batch_size], mean, std))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)


def validate(model: nn.Module, data: Data, bf16: bool = False, bn_images: int = BN_IMAGES) -> float:
    """Validation accuracy as every command measures it: batch norm re-estimated on the
    first ``bn_images`` training images, then the whole validation split."""
    reestimate_bn(model, data.train_x[:bn_images], data.info, bf16)
    return measure_accuracy(model, data.val_x, data.val_y, data.info, bf16)
