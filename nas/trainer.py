"""The training loop, for a search's brief trials and ``nas train``'s long runs alike.
Knows nothing of Optuna: the search passes ``on_report``, which may raise (to prune).

The dataset stays uint8 on the training device; each batch is indexed, converted,
normalised and augmented there, so no DataLoader or host-to-device copy sits in the loop.
On a GPU the step also runs under bf16 autocast and, after a few eager warm-up steps, is
captured once in a CUDA graph and replayed: a 50k-param net is far too small to keep a GPU
busy, so what costs time is Python and kernel launches, and a graph replay removes both.
Capture failures fall back to the eager step (the reason is logged once per process).
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import nn

from nas.augment import augment, mixup_draw
from nas.distill import distillation_loss
from nas.data import Data
from nas.evaluate import BN_IMAGES, autocast, normalize, stats, validate
from nas.device import capture_graph
from nas.schedule import cycle_at, default_batch_size, default_lr, one_cycle, report_steps
from nas.spread import agree, processes_for, spread

PRECISIONS = ("auto", "bf16", "fp32")
WARMUP_STEPS = 3  # eager steps before capture: they create the optimiser state and warm cuDNN


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class TooSlow(RuntimeError):
    """Training ran below TrainConfig.min_speed images/s up to the first report."""


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
    # Validations per epoch: at its end on the whole validation split; inside it (so a search
    # can stop weak trials early) on the first quick_images (batch norm on as many).
    reports_per_epoch: int = 1
    quick_images: int = 500
    # Stop at the first report if training ran below this many images/s: MACs are a loose
    # guide to CPU time, so a search that must leave time for a retrain caps the speed itself.
    min_speed: float | None = None
    # A time budget instead of an epoch count (--time): train until time_limit seconds after
    # the call, the final validation included, the LR schedule laid over the time as it passes
    # (annealed at the end however fast the machine is); epochs is then a cap. time_reports
    # fall at even shares of the time, the last at the end (0: none, training on every image).
    time_limit: float | None = None
    time_reports: int = 4
    after_images: int = 0  # images the caller scores after a timed run (a test split): time kept for them too
    processes: int = 1  # CPU processes sharing each batch; 0: as many as pay (nas.spread)


@dataclass
class TrainResult:
    val_acc: float | None  # None: a timed run without validation (time_reports=0)
    epochs: float  # a timed run may end inside an epoch
    seconds: float
    history: list[float] = field(default_factory=list)  # val accuracy at each report
    batch_size: int = 0
    lr: float = 0.0  # the peak LR used
    bf16: bool = False
    processes: int = 1  # that shared each batch (nas.spread)
    cuda_graph: bool = False  # True when the step ran as a captured graph
    graph_fallback: str | None = None  # why capture failed, when it did
    capture_seconds: float = 0.0
    eval_seconds: float = 0.0


def uses_bf16(precision: str, device: torch.device) -> bool:
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


# A timed run keeps back, for its final validation, the time that many images take at this
# fraction of the measured training speed (a forward pass alone runs about three times as
# fast as forward, backward and update; the margin covers a busy machine).
EVAL_SPEEDUP = 1.5
SPEED_STEPS = 10  # steps after the warm-up over which a timed run measures its speed


def train(model: nn.Module, data: Data, cfg: TrainConfig,
          on_report: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train ``model`` (already on the data's device) on ``data.train_*``. Validates
    ``cfg.reports_per_epoch`` times an epoch (a timed run: ``cfg.time_reports`` times over
    its time) and passes each (report number from 1, accuracy) to ``on_report``, which may
    raise to stop the run."""
    batch = min(cfg.batch_size or default_batch_size(data.train_x.device), len(data.train_x))
    # A TorchScript teacher cannot be handed to another process.
    processes = 1 if cfg.teacher else cfg.processes or processes_for(model, data, batch, cfg.time_limit)
    if processes == 1:
        return run_loop(TrainingLoop(model, data, cfg, on_report))
    called = time.perf_counter()  # a timed run's time counts from here, the helpers' start included
    # A copy: tensors handed to another process share their memory (the data's, read-only).
    with spread(processes, train_share, copy.deepcopy(model), data, cfg):
        loop = TrainingLoop(model, data, cfg, on_report, 0, processes)
        loop.start = called
        return run_loop(loop)


def train_share(rank: int, processes: int, model: nn.Module, data: Data, cfg: TrainConfig) -> None:
    """A helper process's part of a spread training (nas.spread): its share of each batch."""
    torch.manual_seed(cfg.seed + rank)  # its own augmentation draws
    run_loop(TrainingLoop(model, data, cfg, None, rank, processes))


def run_loop(loop: "TrainingLoop") -> TrainResult:
    epoch = 0  # a timed run stops when its time is up
    for epoch in range(loop.cfg.epochs):
        if not loop.run_epoch(epoch):
            break
    loop.finish(epoch)
    return loop.result()


class TrainingLoop:
    """One training run's state, its steps named in the order they happen: set up, then per
    step the LR, the batch, the step (eager, or captured once and replayed), the reports."""

    def __init__(self, model: nn.Module, data: Data, cfg: TrainConfig,
                 on_report: Callable[[int, float], None] | None, rank: int = 0,
                 processes: int = 1) -> None:
        self.start = time.perf_counter()
        self.model, self.data, self.cfg, self.on_report = model, data, cfg, on_report
        # Spread (nas.spread): a share of each batch, gradients averaged; rank 0 alone validates.
        self.rank, self.processes = rank, processes
        self.device = device = data.train_x.device
        self.on_cuda = device.type == "cuda"
        self.bf16 = uses_bf16(cfg.precision, device)
        self.kind = cfg.augment or data.info.augment
        model.to(memory_format=torch.channels_last)
        self.n = n = len(data.train_x)
        self.whole_batch = min(cfg.batch_size or default_batch_size(device), n)
        self.batch = self.whole_batch // processes  # this process's share
        self.peak_lr = cfg.lr or default_lr(self.whole_batch)
        self.net = nn.parallel.DistributedDataParallel(model) if processes > 1 else model
        # Every step has the same shape (the ragged last batch is dropped), as a graph needs.
        self.steps_per_epoch = n // (self.batch * processes)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        # A graph would replay one mixing share and one shuffle for ever.
        want_graph = self.on_cuda if cfg.cuda_graph is None else cfg.cuda_graph
        self.want_graph = want_graph and self.total_steps > WARMUP_STEPS + 1 and not cfg.mixup
        capturable = self.want_graph and self.on_cuda
        # A graph bakes in every scalar, so the LR it reads must be a device tensor.
        lr = torch.tensor(self.peak_lr, device=device) if capturable else self.peak_lr
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr,
                                           weight_decay=cfg.weight_decay, capturable=capturable)
        self.lr_factor = one_cycle(self.total_steps)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.mean, self.std = stats(data.info, device)
        self.idx = torch.zeros(self.batch, dtype=torch.long, device=device)  # the batch in hand
        self.loss_sum = torch.zeros((), device=device)
        self.teacher = cfg.teacher.eval() if cfg.teacher is not None else None
        self.mixing = random.Random(cfg.seed)  # the mixup shares and shuffles, seeded like the rest
        # Warm-up steps before a capture run on a side stream, as torch's graph docs ask.
        self.side = torch.cuda.Stream() if capturable else None
        self.generator = torch.Generator(device="cpu").manual_seed(cfg.seed)
        self.graph, self.fallback = None, None
        self.capture_seconds = self.eval_seconds = 0.0
        self.history: list[float] = []
        self.reports = report_steps(self.steps_per_epoch, cfg.reports_per_epoch)
        self.quick = replace(data, val_x=data.val_x[:cfg.quick_images],
                             val_y=data.val_y[:cfg.quick_images])
        self.timed = cfg.time_limit is not None
        # A timed run trains until train_until seconds after the start: its time limit less
        # what its final validation will take, known once its speed is measured.
        self.train_until = cfg.time_limit or math.inf
        self.next_report, self.steps_done = 1, 0
        self.loop_start = time.perf_counter()
        self.speed_mark = (self.loop_start, 0)  # (time, steps done) where the speed clocks start

    # ------------------------------------------------------------ the loop's steps

    def run_epoch(self, epoch: int) -> bool:
        """One epoch; False when a timed run's time ran out in it."""
        self.model.train()
        order = torch.randperm(self.n, generator=self.generator).to(self.device)
        self.loss_sum.zero_()
        for s in range(self.steps_per_epoch):
            k = epoch * self.steps_per_epoch + s
            if not self.set_lr_for(k):
                return False
            first = (s * self.processes + self.rank) * self.batch
            self.idx.copy_(order[first:first + self.batch])
            self.take_step(k)
            self.steps_done = k + 1
            self.measure_speed()
            self.report_if_due(epoch, s)
        return True

    def set_lr_for(self, k: int) -> bool:
        """The schedule's LR for step ``k``: over the steps, or a timed run's time as it
        passes; False when that time is up."""
        if self.timed:
            passed = (time.perf_counter() - self.start) / self.train_until
            passed = agree(passed) if self.processes > 1 else passed
            if k and passed >= 1:
                return False
            factor = cycle_at(max(k / self.total_steps, passed))
        else:
            factor = self.lr_factor(k)
        for group in self.optimizer.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(self.peak_lr * factor)
            else:
                group["lr"] = self.peak_lr * factor
        return True

    def take_step(self, k: int) -> None:
        """The step on the batch in hand: replayed from the graph, captured at step
        WARMUP_STEPS, warmed up on the side stream before it, or eager."""
        if self.graph is not None:
            self.graph.replay()
        elif self.want_graph and k == WARMUP_STEPS:
            t0 = time.perf_counter()
            self.graph, self.fallback = capture_graph(self.step)
            self.capture_seconds = time.perf_counter() - t0
            self.want_graph = self.graph is not None  # after a failure: eager steps from here
            if self.graph is not None:
                self.graph.replay()
            else:
                self.step()
        elif self.want_graph and self.side is not None:
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                self.step()
            torch.cuda.current_stream().wait_stream(self.side)
        else:
            self.step()

    def step(self) -> None:
        """Forward, loss, backward and update on the batch ``idx`` holds (what a graph captures)."""
        cfg, data = self.cfg, self.data
        x = augment(normalize(data.train_x[self.idx], self.mean, self.std), self.kind)
        y = data.train_y[self.idx]
        if cfg.mixup:
            share, other = mixup_draw(self.mixing, cfg.mixup, self.batch, self.device)
            x = share * x + (1 - share) * x[other]
        self.optimizer.zero_grad(set_to_none=True)  # in a capture, backward then allocates the grads
        with autocast(self.device, self.bf16):
            logits = self.net(x)
            loss = self.loss_fn(logits, y)
            if cfg.mixup:
                loss = share * loss + (1 - share) * self.loss_fn(logits, y[other])
            if self.teacher is not None:
                loss = (1 - cfg.kd_alpha) * loss + cfg.kd_alpha * distillation_loss(
                    logits, self.teacher, x * self.std + self.mean, cfg.kd_temperature)  # the same view
        loss.backward()
        self.optimizer.step()
        self.loss_sum.add_(loss.detach())

    def measure_speed(self) -> None:
        """Start the speed clock after the warm-up steps (their one-off costs made a first
        trial look 2x slower); a timed run then keeps back its final validation's time."""
        cfg = self.cfg
        if (cfg.min_speed or self.timed) and self.steps_done == WARMUP_STEPS:
            if self.on_cuda:
                torch.cuda.synchronize(self.device)
            self.speed_mark = (time.perf_counter(), self.steps_done)
        if self.timed and self.steps_done == WARMUP_STEPS + SPEED_STEPS:
            final_images = cfg.after_images + (len(self.data.val_x) + min(cfg.bn_images, self.n)
                                               if cfg.time_reports else 0)
            if self.on_cuda:
                torch.cuda.synchronize(self.device)
            t0, k0 = self.speed_mark
            speed = (self.steps_done - k0) * self.batch / max(time.perf_counter() - t0, 1e-9)
            # A net too slow to validate in its limit stops now (a negative end is never reached).
            self.train_until = max(cfg.time_limit - final_images / (EVAL_SPEEDUP * speed), 1e-9)

    def report_if_due(self, epoch: int, s: int) -> None:
        """Validate (rank 0) at the epoch's report steps, or (timed) at even shares of the
        time or of the epoch cap, whichever is further on."""
        if self.rank:
            return
        if not self.timed:
            if s + 1 in self.reports:
                self.report(epoch, at_end=s + 1 == self.steps_per_epoch)
        elif self.next_report < self.cfg.time_reports and max(
                self.steps_done / self.total_steps, (time.perf_counter() - self.start) / self.train_until
        ) >= self.next_report / self.cfg.time_reports:
            self.next_report += 1
            self.report(epoch, at_end=False)

    def report(self, epoch: int, at_end: bool) -> None:
        """Check the loss and the speed, validate, and pass the accuracy on."""
        cfg = self.cfg
        self.check_finite(epoch)
        if cfg.min_speed and not self.history:
            t0, k0 = (self.speed_mark if self.speed_mark[1] < self.steps_done
                      else (self.loop_start, 0))
            seconds = time.perf_counter() - t0 - self.capture_seconds
            speed = (self.steps_done - k0) * self.batch / max(seconds, 1e-9)
            if speed < cfg.min_speed:
                raise TooSlow(f"too slow: {speed:,.0f} images/s < {cfg.min_speed:,.0f}")
        t0 = time.perf_counter()
        if at_end or not cfg.quick_images:
            self.history.append(validate(self.model, self.data, self.bf16, cfg.bn_images))
        else:
            self.history.append(validate(self.model, self.quick, self.bf16,
                                         min(cfg.bn_images, cfg.quick_images)))
        self.eval_seconds += time.perf_counter() - t0
        if self.on_report is not None:
            self.on_report(len(self.history), self.history[-1])

    def check_finite(self, epoch: int) -> None:  # once per report: per step would sync each step
        if not torch.isfinite(self.loss_sum):
            raise Diverged(f"training loss became {self.loss_sum.item()} in epoch {epoch + 1}")

    def finish(self, epoch: int) -> None:
        """A timed run's last validation (or, without one, its loss check); the graph freed."""
        if self.timed and not self.rank:
            if self.cfg.time_reports:
                self.report(epoch, at_end=True)
            else:
                self.check_finite(epoch)
        self.graph = None

    def result(self) -> TrainResult:
        return TrainResult(
            val_acc=self.history[-1] if self.history else None,
            epochs=self.steps_done / self.steps_per_epoch if self.timed else self.cfg.epochs,
            seconds=time.perf_counter() - self.start, history=self.history,
            batch_size=self.whole_batch, lr=self.peak_lr, bf16=self.bf16, processes=self.processes,
            cuda_graph=self.want_graph,
            graph_fallback=self.fallback, capture_seconds=self.capture_seconds,
            eval_seconds=self.eval_seconds)
