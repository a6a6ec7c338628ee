"""The training loop, for a search's brief trials and ``nas train``'s long runs alike.
Knows nothing of Optuna: the search passes ``on_epoch``,
which may raise (to prune) after each epoch's validation accuracy is known.

The dataset stays uint8 on the training device; each batch is indexed, converted,
normalised and augmented there, so no DataLoader or host-to-device copy sits in the loop.
On a GPU the step also runs under bf16 autocast and, after a few eager warm-up steps, is
captured once in a CUDA graph and replayed: a 50k-param net is far too small to keep a GPU
busy, so what costs time is Python and kernel launches, and a graph replay removes both.
Capture failures fall back to the eager step (the reason is logged once per process).
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import nn

from nas.augment import augment, mixup_draw
from nas.data import Data
from nas.evaluate import BN_IMAGES, autocast, normalize, stats, validate

log = logging.getLogger("nas")

PRECISIONS = ("auto", "bf16", "fp32")
WARMUP_STEPS = 3  # eager steps before capture: they create the optimiser state and warm cuDNN


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class TooSlow(RuntimeError):
    """Training ran below TrainConfig.min_speed images per second, measured up to the
    first report (evaluation and graph capture excluded)."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3
    batch_size: int | None = None  # None: 128 on CPU, 512 on a GPU (see default_batch_size)
    lr: float | None = None  # peak of the warm-up + cosine schedule; None: default_lr(batch)
    weight_decay: float = 5e-4
    seed: int = 0
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 elsewhere
    cuda_graph: bool | None = None  # None: capture the step on CUDA, eager elsewhere
    augment: str | None = None  # None: the dataset's own (DataInfo.augment)
    label_smoothing: float = 0.0
    teacher: nn.Module | None = None  # distil from it: takes [0, 1] images, as `nas export` writes
    kd_temperature: float = 4.0
    kd_alpha: float = 0.5  # weight of the distillation term; 1 - alpha on the labels
    # mixup (Zhang et al. 2018): each batch blended with itself shuffled, by a share drawn
    # from Beta(mixup, mixup), and the loss blended the same way; 0: off. Eager steps only.
    mixup: float = 0.0
    bn_images: int = BN_IMAGES  # re-estimate batch norm on this many images before validating (0: off)
    # Validations per epoch: the one at each epoch's end on the whole validation split, the
    # ones inside an epoch (so a search can stop weak trials early) cheaper: batch norm
    # re-estimated on quick_images training images, then the first quick_images of validation.
    reports_per_epoch: int = 1
    quick_images: int = 500
    # Stop at the first report if training ran below this many images/s: MACs are a loose
    # guide to CPU time, so a search that must leave time for a retrain caps the speed itself.
    min_speed: float | None = None
    # A time budget instead of an epoch count (--time of search, train and baseline): train
    # until time_limit seconds after the call, the final validation included, with the LR
    # schedule laid over the time as it passes, so the run ends annealed however fast the
    # machine turns out to be; epochs is then a cap. time_reports reports fall at even shares
    # of the time, the last at the end (0: no validation, for a training on every image).
    time_limit: float | None = None
    time_reports: int = 4
    after_images: int = 0  # images the caller scores after a timed run (a test split): time kept for them too


@dataclass
class TrainResult:
    val_acc: float | None  # None: a timed run without validation (time_reports=0)
    epochs: float  # a timed run may end inside an epoch
    seconds: float
    history: list[float] = field(default_factory=list)  # val accuracy at each report
    batch_size: int = 0
    lr: float = 0.0  # the peak LR used
    bf16: bool = False
    cuda_graph: bool = False  # True when the step ran as a captured graph
    graph_fallback: str | None = None  # why capture failed, when it did
    capture_seconds: float = 0.0
    eval_seconds: float = 0.0


def default_batch_size(device: torch.device) -> int:
    # On a GPU, batch 128 leaves the device idle between launches; 512 trains as well in
    # 3 epochs with the LR scaled up (see default_lr).
    return 128 if device.type == "cpu" else 512


def default_lr(batch_size: int) -> float:
    """0.005 at batch 128, scaled by sqrt(batch / 128): 0.01 at 512. On MNIST, 3 epochs,
    batch 512 reaches 0.9917 val at 0.01 against 0.9892 at 0.005 and 0.9927 for batch 128
    at 0.005 (benchmarks/batch_lr.py)."""
    return 5e-3 * math.sqrt(batch_size / 128)


def uses_bf16(precision: str, device: torch.device) -> bool:
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


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


# A timed run keeps back, for its final validation, the time that many images take at this
# fraction of the measured training speed (a forward pass alone runs about three times as
# fast as forward, backward and update; the margin covers a busy machine).
EVAL_SPEEDUP = 1.5
SPEED_STEPS = 10  # steps after the warm-up over which a timed run measures its speed


def end_margin(total: float) -> float:
    """What a command with a time limit of ``total`` seconds keeps back after its training
    for what follows it: the figures, files and plot it writes, the summary, its exit."""
    return max(3.0, 0.01 * total)


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


_reported_fallbacks: set[str] = set()


def _capture(step: Callable[[], None]) -> tuple[torch.cuda.CUDAGraph | None, str | None]:
    """Capture ``step`` in a CUDA graph. Capture records and does not run, so the caller
    replays once for the batch in hand. On failure: (None, reason), logged once per reason."""
    try:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        return graph, None
    except Exception as exc:  # any capture failure: the eager step still works
        lines = str(exc).strip().splitlines() or [""]
        reason = f"{type(exc).__name__}: {lines[0][:200]}"
        if reason not in _reported_fallbacks:
            _reported_fallbacks.add(reason)
            log.warning("CUDA graph capture failed (%s); training eagerly instead", reason)
        return None, reason


def report_steps(steps_per_epoch: int, reports_per_epoch: int) -> list[int]:
    """Steps of an epoch after which a report falls: evenly spread, the last at its end."""
    per_epoch = max(1, min(reports_per_epoch, steps_per_epoch))
    return sorted({round(steps_per_epoch * (j + 1) / per_epoch) for j in range(per_epoch)})


def train(model: nn.Module, data: Data, cfg: TrainConfig,
          on_report: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train ``model`` (already on the data's device) on ``data.train_*``. Validates
    ``cfg.reports_per_epoch`` times an epoch and passes each (report number from 1,
    accuracy) to ``on_report``, which may raise to stop the run."""
    start = time.perf_counter()
    device = data.train_x.device
    on_cuda = device.type == "cuda"
    bf16 = uses_bf16(cfg.precision, device)
    want_graph = on_cuda if cfg.cuda_graph is None else cfg.cuda_graph
    kind = cfg.augment or data.info.augment
    model.to(memory_format=torch.channels_last)
    n = len(data.train_x)
    batch = min(cfg.batch_size or default_batch_size(device), n)
    peak_lr = cfg.lr or default_lr(batch)
    # Every step has the same shape (the ragged last batch is dropped), as a graph needs.
    steps_per_epoch = n // batch
    total_steps = cfg.epochs * steps_per_epoch
    # A graph would replay one mixing share and one shuffle for ever.
    want_graph = want_graph and total_steps > WARMUP_STEPS + 1 and not cfg.mixup
    capturable = want_graph and on_cuda
    # A graph bakes in every scalar, so the LR it reads must be a device tensor.
    lr = torch.tensor(peak_lr, device=device) if capturable else peak_lr
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay,
                                  capturable=capturable)
    lr_factor = one_cycle(total_steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    mean, std = stats(data.info, device)
    idx = torch.zeros(batch, dtype=torch.long, device=device)  # the batch in hand; graphs read it
    loss_sum = torch.zeros((), device=device)

    teacher = cfg.teacher.eval() if cfg.teacher is not None else None
    mixing = random.Random(cfg.seed)  # the mixup shares and shuffles, seeded like the rest

    def step() -> None:
        x, y = augment(normalize(data.train_x[idx], mean, std), kind), data.train_y[idx]
        if cfg.mixup:
            share, other = mixup_draw(mixing, cfg.mixup, batch, device)
            x = share * x + (1 - share) * x[other]
        optimizer.zero_grad(set_to_none=True)  # in a capture, backward then allocates the grads
        with autocast(device, bf16):
            logits = model(x)
            loss = loss_fn(logits, y)
            if cfg.mixup:
                loss = share * loss + (1 - share) * loss_fn(logits, y[other])
            if teacher is not None:
                loss = (1 - cfg.kd_alpha) * loss + cfg.kd_alpha * distillation_loss(
                    logits, teacher, x * std + mean, cfg.kd_temperature)  # the same augmented view
        loss.backward()
        optimizer.step()
        loss_sum.add_(loss.detach())

    def set_lr(value: float) -> None:
        for group in optimizer.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(value)
            else:
                group["lr"] = value

    # Warm-up steps before a capture run on a side stream, as torch's graph docs ask.
    side = torch.cuda.Stream() if capturable else None
    generator = torch.Generator(device="cpu").manual_seed(cfg.seed)
    graph, fallback, capture_seconds, eval_seconds, history = None, None, 0.0, 0.0, []
    reports = report_steps(steps_per_epoch, cfg.reports_per_epoch)
    quick = replace(data, val_x=data.val_x[:cfg.quick_images], val_y=data.val_y[:cfg.quick_images])

    def report(epoch: int, steps_done: int, at_end: bool) -> None:
        nonlocal eval_seconds
        # One check per report: a per-step check would synchronise the device every step.
        if not torch.isfinite(loss_sum):
            raise Diverged(f"training loss became {loss_sum.item()} in epoch {epoch + 1}")
        if cfg.min_speed and not history:
            # Timed from the end of the warm-up steps, which pay one-off costs (allocation,
            # kernel selection) that made a process's first trial look 2x slower.
            t0, k0 = speed_mark if speed_mark[1] < steps_done else (loop_start, 0)
            seconds = time.perf_counter() - t0 - capture_seconds
            speed = (steps_done - k0) * batch / max(seconds, 1e-9)
            if speed < cfg.min_speed:
                raise TooSlow(f"too slow: {speed:,.0f} images/s < {cfg.min_speed:,.0f}")
        t0 = time.perf_counter()
        if at_end or not cfg.quick_images:
            history.append(validate(model, data, bf16, cfg.bn_images))
        else:
            history.append(validate(model, quick, bf16, min(cfg.bn_images, cfg.quick_images)))
        eval_seconds += time.perf_counter() - t0
        if on_report is not None:
            on_report(len(history), history[-1])

    timed = cfg.time_limit is not None
    # A timed run trains until train_until seconds after the start: its time limit less what
    # its final validation will take, known once its speed is measured.
    train_until, next_report, steps_done = cfg.time_limit or math.inf, 1, 0

    def measured_speed(since: tuple[float, int], steps: int) -> float:
        if on_cuda:
            torch.cuda.synchronize(device)
        return (steps - since[1]) * batch / max(time.perf_counter() - since[0], 1e-9)

    loop_start = time.perf_counter()
    speed_mark = (loop_start, 0)  # (time, steps done) where the speed clocks start
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        loss_sum.zero_()
        for s in range(steps_per_epoch):
            k = epoch * steps_per_epoch + s
            if timed:
                elapsed = time.perf_counter() - start
                if k and elapsed >= train_until:
                    break
                set_lr(peak_lr * cycle_at(max(k / total_steps, elapsed / train_until)))
            else:
                set_lr(peak_lr * lr_factor(k))
            idx.copy_(order[s * batch:(s + 1) * batch])
            if graph is not None:
                graph.replay()
            elif want_graph and k == WARMUP_STEPS:
                t0 = time.perf_counter()
                graph, fallback = _capture(step)
                capture_seconds = time.perf_counter() - t0
                want_graph = graph is not None  # after a failure: plain eager steps from here
                if graph is not None:
                    graph.replay()
                else:
                    step()
            elif want_graph and side is not None:
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    step()
                torch.cuda.current_stream().wait_stream(side)
            else:
                step()
            steps_done = k + 1
            if (cfg.min_speed or timed) and steps_done == WARMUP_STEPS:
                if on_cuda:
                    torch.cuda.synchronize(device)
                speed_mark = (time.perf_counter(), steps_done)
            if timed and steps_done == WARMUP_STEPS + SPEED_STEPS:
                final_images = cfg.after_images + (len(data.val_x) + min(cfg.bn_images, n)
                                                   if cfg.time_reports else 0)
                reserve = final_images / (EVAL_SPEEDUP * measured_speed(speed_mark, steps_done))
                train_until = cfg.time_limit - reserve
            if not timed:
                if s + 1 in reports:
                    report(epoch, steps_done, at_end=s + 1 == steps_per_epoch)
            elif next_report < cfg.time_reports and max(
                    steps_done / total_steps, (time.perf_counter() - start) / train_until
            ) >= next_report / cfg.time_reports:  # time or the epoch cap, whichever is further
                next_report += 1
                report(epoch, steps_done, at_end=False)
        else:
            continue
        break  # a timed run's time is up
    if timed:
        if cfg.time_reports:
            report(epoch, steps_done, at_end=True)
        elif not torch.isfinite(loss_sum):
            raise Diverged(f"training loss became {loss_sum.item()} in epoch {epoch + 1}")
    del graph  # frees the graph's private memory pool with it
    return TrainResult(history[-1] if history else None,
                       steps_done / steps_per_epoch if timed else cfg.epochs,
                       time.perf_counter() - start, history, batch, peak_lr, bf16, want_graph,
                       fallback, capture_seconds, eval_seconds)
