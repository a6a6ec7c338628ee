"""One trial, read top-down as in Optuna's PyTorch example: sample a spec, check it
against the budget, build it, train it, report each epoch, prune, store the result."""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import time
from pathlib import Path

import optuna
import torch

import search_spaces
from nas import files, records
from nas.study_folder import weights_path
from nas.budget import check
from nas.config import QUICK_IMAGES, REPORTS_PER_EPOCH, SearchConfig
from nas.flags import OBJECTIVES
from nas.data import Data
from nas.device import heap_bytes
from nas.model import build, state_bytes
from nas.search.plan import TRIAL_REPORTS, trial_seconds
from nas.search.recovery import TimeUp, abandon, stop_reason
from nas.search.study import epochs_done
from nas.schedule import EPOCH_CAP
from nas.trainer import TooSlow, TrainConfig, train

TrialState = optuna.trial.TrialState


class TrialFailed(RuntimeError):
    """A trial's training raised; the message is the reason stored in the trial."""


def make_objective(cfg: SearchConfig, data: Data, device: torch.device, study_dir: Path,
                   deadline: float | None = None):
    """``deadline``: time.time() by which --time ends the search, running trial included."""
    constraints = cfg.constraints()

    def objective(trial: optuna.Trial):
        try:
            # Who runs it: lets a later run tell a trial whose process was killed (-9, OOM
            # killer, power loss) from one still running (recovery.recover_interrupted).
            records.note(trial, host=platform.node(), pid=os.getpid())

            family, spec = search_spaces.sample_family(trial, cfg.spaces, data.info, constraints)
            verdict = check(spec, constraints)  # check: the one feasibility decision
            records.note(trial, space=family, arch=spec.to_dict(), arch_str=spec.to_string(),
                         params=verdict.params, macs=verdict.macs, conv_layers=verdict.conv_layers,
                         flash=verdict.flash, ram=verdict.ram,
                         budget=cfg.budget, epochs=cfg.epochs)
            for key, value in verdict.constraint_values.items():
                trial.set_constraint(key, value)
            if not verdict.feasible:  # never build, never train
                reason = "; ".join(verdict.violations)
                records.note(trial, infeasible=reason)
                raise optuna.TrialPruned(f"infeasible: {reason}")
            try:
                return train_candidate(trial, spec, cfg, data, device, study_dir, deadline)
            finally:
                # After the model, optimiser and graph are gone, also after a failure:
                # must not grow trial to trial.
                if device.type == "cuda":
                    records.note(trial, gpu_mem_allocated=torch.cuda.memory_allocated(device))
                else:
                    records.note(trial, heap_after=heap_bytes())
        except KeyboardInterrupt as exc:
            abandon(trial, stop_reason(exc))
            raise  # Optuna marks it failed; run_search writes the results; exit 130 / 143 (or 0: --time)

    return objective


def train_candidate(trial: optuna.Trial, spec, cfg: SearchConfig, data: Data,
                    device: torch.device, study_dir: Path, deadline: float | None = None):
    """Build, train with a report (and a chance to prune) after each epoch, store weights."""
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed + trial.number)
    model = build(spec)
    build_seconds = time.perf_counter() - t0

    history: list[float] = []
    last = TRIAL_REPORTS if cfg.time else cfg.epochs * REPORTS_PER_EPOCH

    def on_report(step: int, val_acc: float) -> None:
        if deadline is not None and time.time() > deadline:
            raise TimeUp(f"--time {cfg.time}s reached during the trial")
        history.append(val_acc)
        records.note(trial, val_history=history)  # what size_aware_stop compares
        # Never stop after the last report: the training is paid for, and a small model
        # below the median can still be on the params-vs-accuracy front.
        if cfg.objective == "accuracy":
            trial.report(val_acc, step)
            if step < last and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at {epochs_done(step)} epochs, val_acc {val_acc:.4f}")
        elif step < last and cfg.pruner != "none":
            completed = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            size = OBJECTIVES[cfg.objective][1]  # params, flash or ram: what the front is over
            held = records.trial(trial)
            reason = size_aware_stop(completed, step, val_acc, getattr(held, size), size, held.space)
            if reason:
                records.note(trial, stopped_early=reason)
                raise optuna.TrialPruned(reason)

    records.note(trial, device=str(device))
    if cfg.time:
        records.note(trial, time_slice=round(trial_seconds(cfg.time, cfg.trial_time), 2))
    else:
        records.note(trial, reports_per_epoch=REPORTS_PER_EPOCH)
    reason = None
    try:
        result = train(model.to(device), data, trial_train_config(cfg, trial.number), on_report)
    except optuna.TrialPruned:
        raise
    except TooSlow as exc:  # a measured constraint: pruned like an early stop, not failed
        records.note(trial, too_slow=str(exc))
        raise optuna.TrialPruned(f"{exc} (--min-speed)") from None
    except Exception as exc:
        reason = failure_reason(exc)
    if reason is not None:
        # Out of the except block, the traceback (and through it the model, optimiser and
        # graph of the failed run) is gone; free them before the next trial starts.
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        records.note(trial, fail_reason=reason)
        raise TrialFailed(reason)  # Optuna marks the trial failed; the search goes on

    path = weights_path(study_dir, trial.number)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        files.write_bytes(path, state_bytes(model))
    except files.DiskFull as exc:
        records.note(trial, fail_reason=str(exc), disk_full=True)  # optimize() stops the search on it
        raise TrialFailed(str(exc)) from None
    records.note(trial, val_acc=result.val_acc, train_time=round(result.seconds, 3),
                 build_time=round(build_seconds, 4), capture_time=round(result.capture_seconds, 4),
                 eval_time=round(result.eval_seconds, 4), epochs=round(result.epochs, 3),
                 batch_size=result.batch_size, lr=result.lr, bf16=result.bf16,
                 cuda_graph=result.cuda_graph)
    if result.graph_fallback:
        records.note(trial, graph_fallback=result.graph_fallback)
    held = records.trial(trial)
    values = tuple(result.val_acc if metric == "val_acc" else getattr(held, metric)
                   for metric in OBJECTIVES[cfg.objective])
    return values[0] if cfg.objective == "accuracy" else values


def trial_train_config(cfg: SearchConfig, number: int) -> TrainConfig:
    """How trial ``number`` of a search trains (benchmarks/fidelity.py scores nets the same
    way): its epochs, or under --time its slice of the time (its epochs then a cap)."""
    timed = {} if cfg.time is None else {"time_limit": trial_seconds(cfg.time, cfg.trial_time),
                                         "time_reports": TRIAL_REPORTS}
    return TrainConfig(cfg.epochs or EPOCH_CAP, cfg.batch_size, cfg.lr, seed=cfg.seed + number,
                       precision=cfg.precision, cuda_graph=None if cfg.cuda_graph else False,
                       augment=cfg.augment, reports_per_epoch=REPORTS_PER_EPOCH,
                       quick_images=QUICK_IMAGES, min_speed=cfg.min_speed, **timed)


def failure_reason(exc: BaseException) -> str:
    """One line for the trial's ``fail_reason``; out-of-memory errors (CUDA's, or the CPU
    allocator's under --memory-limit) say so first, whatever their exception type."""
    lines = str(exc).strip().splitlines()
    text = lines[0][:300] if lines else ""
    oom = (isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError))
           or any(words in text.lower() for words in ("out of memory", "allocate memory")))
    return ("out of memory: " if oom else "") + f"{type(exc).__name__}: {text}"


STOP_STARTUP = 5  # size_aware_stop: completed peers needed before it stops anything
STOP_SIMILAR = 1.1  # peers: completed trials with at most 10% more params


def size_aware_stop(completed: list, step: int, val_acc: float, params: int,
                    size: str = "params", space: str | None = None) -> str | None:
    """--objective pareto's early stopping: stop a trial whose validation accuracy at
    report ``step`` is below the median, at the same report, of the completed trials of
    similar or smaller size (at most STOP_SIMILAR x its params, or its ``size``: flash or
    ram bytes where the front is over those) and of its own ``space``, once there are
    STOP_STARTUP of them. A small net is only measured against nets no bigger than about
    itself, so the small end of the front is not stopped for losing to big nets; and a
    family only against itself, so depthwise nets, which learn slower per second on a CPU
    and would lose every early comparison, still fill their own front. Returns the reason,
    or None to go on."""
    held = [records.trial(t) for t in completed]
    peers = [h.val_history[step - 1] for h in held
             if (getattr(h, size) if getattr(h, size) is not None else math.inf) <= STOP_SIMILAR * params
             and len(h.val_history or ()) >= step and (space is None or h.space == space)]
    if len(peers) < STOP_STARTUP:
        return None
    median = statistics.median(peers)
    if val_acc >= median:
        return None
    at = epochs_done(step)
    return (f"stopped at {at} epochs: val_acc {val_acc:.4f} < {median:.4f}, the median "
            f"at {at} epochs of {len(peers)} completed {space + ' ' if space else ''}trials with <= "
            f"{int(STOP_SIMILAR * params):,} {'params' if size == 'params' else 'B of ' + size}")
