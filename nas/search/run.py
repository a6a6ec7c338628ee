"""Running a search: check the budget admits a model, open the study, run the trials in
this process or in --jobs workers, and always write the front of what completed; under
--time, then train the chosen net until the time is up (nas.search.plan, nas.final)."""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import optuna
import torch

import search_spaces
from nas import datasets, final, pareto, records, runoff, storage, urls
from nas.spread import cores
from nas.trials import completed_trials
from nas.budget import check
from nas.config import SearchConfig
from nas.data import Data, load
from nas.device import memory_limit, on_device
from nas.errors import UsageError
from nas.search.objective import make_objective
from nas.search.plan import RUNOFF_NETS, Plan, check_trial_time, trial_seconds
from nas.search.recovery import (STOP_SIGNALS, TimeUp, die_with_parent, ignore_stop_signals,
                                 recover_interrupted, stop_signal, stop_signals_deferred)
from nas.search.study import (clock, count_states, finished, make_pruner, make_sampler,
                              open_study, trial_line)


@dataclass
class SearchResult:
    study: optuna.Study
    study_dir: Path
    counts: dict  # complete / pruned / infeasible / failed / interrupted
    front: list
    files: list
    seconds: float
    final: dict | None = None  # a --time search's final training (nas.final.record), when it ran


def run_search(cfg: SearchConfig, log: Callable[[str], None] = print,
               progress: bool = True, started: float | None = None) -> SearchResult:
    """``started``: time.time() when the command started, which --time counts from (default now)."""
    start = time.perf_counter()
    started = time.time() if started is None else started
    check_trial_time(cfg.time, cfg.trial_time)
    cfg.jobs = cfg.jobs or cores()  # --jobs 0: one worker per core
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # we print our own line per trial
    configure_logging()
    device = cfg.resolved_device()
    data = load_data(cfg, cfg.download)
    check_smallest_fits(cfg, data)
    clip_conv_layers(cfg, data, log)
    study = open_study(cfg, data.info)
    log(f"study {cfg.study_name!r} stored in {urls.shown(cfg.storage_url)}")
    log(f"dashboard: optuna-dashboard {urls.shown(cfg.storage_url)}")

    recover_interrupted(study, log)
    held = records.final(study) if cfg.time else None
    # --time: wall-clock times, so --jobs workers (other processes) keep to them too. A
    # trial is started only with its whole slice left before the search's end, and stopped
    # if it runs on past it (by more than half a slice: it has its own time limit).
    plan = (Plan(started, cfg.time, search=held is None or held["state"] == "done",
                 chosen_slice=cfg.trial_time) if cfg.time else None)
    if plan is not None:
        start_until = plan.start_trials_until()
        deadline = plan.slices_end + plan.slice / 2
        if held is None or held["state"] != "done":
            log(plan.describe(len(data.train_x) + len(data.val_x), f"{cfg.study_dir}/final/"))
    else:
        start_until = deadline = None
    done = finished(study, cfg.spaces)
    remaining = cfg.trials - done
    try:
        if held is not None and held["state"] == "done":
            log(f"study {cfg.study_name!r} already holds its search and final training (trial "
                f"{held['trial']}, test_acc {held['test_acc']:.4f}): nothing to run; nas export "
                f"{cfg.study_dir} --best writes it; to search again, pass --study NAME")
        elif plan is not None and not plan.search:
            log(f"the last run stopped during the final training of trial {held['trial']}: "
                f"training it again, with all of this run's --time")
        elif remaining <= 0:
            log(f"study already has {done} finished {cfg.space!r} trials (--trials {cfg.trials}); "
                f"nothing to run; raise --trials to search more")
        else:
            if done:
                log(f"resuming: {done} {cfg.space!r} trials done, {remaining} to go")
            each = (f"trials of {trial_seconds(cfg.time, cfg.trial_time):.0f}s each" if cfg.time else
                    f"{remaining} trials x {cfg.epochs} epoch{'s' * (cfg.epochs != 1)}")
            log(f"searching {cfg.space!r} on {data.info.name} ({len(data.train_x):,} train / "
                f"{len(data.val_x):,} val images) under {cfg.budget:,} params"
                + "".join(f", {limit:,} B of int8 {what}" for limit, what in
                          ((cfg.max_flash, "model"), (cfg.max_ram, "activations")) if limit)
                + f": {each} on "
                + (", ".join(f"cuda:{g}" for g in cfg.gpus) if cfg.gpus and cfg.jobs > 1 else str(device))
                + workers_note(cfg.jobs, remaining, device))
            if cfg.jobs > 1:
                try:
                    run_workers(cfg, remaining, len(study.trials), deadline, start_until)
                except KeyboardInterrupt as exc:
                    # joblib has stopped the workers: mark their trials now, not next run.
                    recover_interrupted(study, log, STOP_SIGNALS[stop_signal(exc)]
                                        + " stopped its worker (pid {pid})", user_stop=True)
                    raise
            else:
                if device.type == "cuda":
                    torch.cuda.set_device(device)  # graphs and streams are made on it
                data = on_device(data, device)
                with memory_limit(cfg.memory_limit, device):
                    optimize(study, make_objective(cfg, data, device, cfg.study_dir, deadline),
                             remaining, cfg, log, progress, start_until=start_until)
    finally:
        # Also after Ctrl-C (Optuna has marked the running trial failed): the counts and
        # the front come from whatever completed.
        with stop_signals_deferred():
            counts = count_states(study)
            records.write_trial_counts(study, counts)
            front, files = pareto.write_front(study, cfg.study_dir, data, device)
    trained = held if held is not None and held["state"] == "done" else None
    if plan is not None and trained is None:
        if completed_trials(study):
            data, recipe = on_device(data, device), datasets.long_augment(cfg.dataset, cfg.augment)
            if plan.look:
                runoff.run_runoff(study, data, device, recipe, RUNOFF_NETS, plan.look,
                                  plan.search_end, log)
            trained = final.train_final(study, cfg.study_dir, data, device, recipe, plan.end, log)
        else:
            log("no trial completed in the search's share of --time: no net to train; give "
                "more time, or a smaller search (--max-macs, --budget)")
    return SearchResult(study, cfg.study_dir, counts, front, files, time.perf_counter() - start,
                        trained)


def workers_note(jobs: int, remaining: int, device: torch.device) -> str:
    """What runs: a worker per trial at most (run_workers gives none an empty share)."""
    if jobs <= 1:
        return ""
    running = min(jobs, remaining)
    note = f", {running} worker processes"
    if running < jobs:
        note += f" (--jobs {jobs}, but {remaining} trials to run)"
    if running > cores() and device.type == "cpu":
        note += f" sharing {cores()} CPU cores (one thread each)"
    return note


def load_data(cfg: SearchConfig, download: bool = False) -> Data:
    return load(cfg.dataset, cfg.data_dir, download, cfg.limit_train, cfg.image_size, cfg.grayscale)


def check_smallest_fits(cfg: SearchConfig, data: Data) -> None:
    """Bad input, not a search of infeasible trials: each space's smallest model must fit
    (a family that cannot would only yield infeasible trials)."""
    constraints = cfg.constraints()
    for space in cfg.spaces:
        smallest = search_spaces.smallest_model(space, data.info, constraints)
        verdict = check(smallest, constraints)
        if verdict.feasible:
            continue
        what = (f"--budget {cfg.budget:,} is below the smallest {space!r} model"
                if verdict.params > cfg.budget else
                f"the constraints rule out even the smallest {space!r} model")
        drop = f"; leave {space!r} out of --space" if len(cfg.spaces) > 1 else ""
        raise UsageError(f"{what} for {data.info.name} ({verdict.params:,} params, "
                         f"{smallest.to_string()}): " + "; ".join(verdict.violations) + drop)


def clip_conv_layers(cfg: SearchConfig, data: Data, log: Callable[[str], None]) -> None:
    """A --conv-layers range deeper than the budget allows only yields infeasible trials
    (9-99 at 5k params: 6 of 6 on `cnn`): cut its top to the deepest smallest model that
    fits, and say so."""
    if cfg.conv_layers is None:
        return
    low, high = cfg.conv_layers

    def fits(top: int) -> bool:  # in some family: the others' deeper draws are infeasible, untrained
        exact = replace(cfg.constraints(), conv_layers=(top, top))
        return any(check(search_spaces.smallest_model(space, data.info, exact), exact).feasible
                   for space in cfg.spaces)

    top = next((top for top in range(high, low, -1) if fits(top)), low)  # low: checked to fit
    if top < high:
        log(f"--conv-layers {low}-{high}: no {cfg.space!r} net deeper than {top} conv layers fits "
            f"{cfg.budget:,} params; searching {low}-{top}")
        cfg.conv_layers = (low, top)


def run_workers(cfg: SearchConfig, n_trials: int, trials_before: int,
                deadline: float | None = None, start_until: float | None = None) -> None:
    """``cfg.jobs`` processes on one study; the storage keeps them apart. The trials are
    split exactly, so the study gets ``n_trials`` more, none run twice."""
    from joblib import Parallel, delayed

    shares = [n_trials // cfg.jobs + (i < n_trials % cfg.jobs) for i in range(cfg.jobs)]
    threads = max(1, cores() // cfg.jobs)  # no CPU oversubscription
    # After Ctrl-C, joblib kills the workers; multiprocessing's tracker would then warn
    # about semaphores of theirs that it cleans up anyway.
    os.environ.setdefault("PYTHONWARNINGS", "ignore:resource_tracker:UserWarning")
    Parallel(n_jobs=cfg.jobs, backend="loky")(
        delayed(worker)(cfg, i, share, trials_before, threads, deadline, start_until)
        for i, share in enumerate(shares) if share)


def worker(cfg: SearchConfig, index: int, n_trials: int, trials_before: int, threads: int,
           deadline: float | None = None, start_until: float | None = None) -> None:
    """One --jobs worker process: its own data on its device, its own sampler seed."""
    ignore_stop_signals()
    die_with_parent()
    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    configure_logging()
    device = cfg.resolved_device(index)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    data = on_device(load_data(cfg), device)
    study = optuna.load_study(study_name=cfg.study_name, storage=storage.open_storage(cfg.storage_url),
                              sampler=make_sampler(cfg, trials_before, index + 1),
                              pruner=make_pruner(cfg))
    with memory_limit(cfg.memory_limit, device):
        optimize(study, make_objective(cfg, data, device, cfg.study_dir, deadline), n_trials, cfg,
                 lambda line: print(line, flush=True), progress=False, label=f"w{index} ",
                 start_until=start_until)


def configure_logging() -> None:
    """Notes from deep inside (e.g. a CUDA graph fallback) go to stderr as 'nas: ...'."""
    logger = logging.getLogger("nas")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("nas: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def optimize(study, objective, n_trials, cfg: SearchConfig, log, progress, label="",
             start_until: float | None = None) -> None:
    """Run up to ``n_trials``, and stop once the study holds --trials finished trials of
    this space, also when other processes or machines (--storage URL) fill it too. One line
    per finished trial with progress and ETA, plus a live bar when stderr is a terminal."""
    from tqdm import tqdm

    bar = tqdm(total=None if cfg.time else n_trials, unit="trial", file=sys.stderr, dynamic_ncols=True,
               disable=not (progress and sys.stderr.isatty()))
    start, ran, full_disk = time.perf_counter(), 0, []

    def report(study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        nonlocal ran
        ran += 1
        elapsed = time.perf_counter() - start
        if cfg.time and start_until is not None:  # the time, not a count, ends a --time search
            left = start_until + trial_seconds(cfg.time, cfg.trial_time) - time.time()
            line = f"[{label}{ran} done, search ends in {clock(max(0.0, left))}] {trial_line(t)}"
        else:
            eta = elapsed / ran * (n_trials - ran)
            line = f"[{label}{ran}/{n_trials} eta {clock(eta)}] {trial_line(t)}"
        if bar.disable:
            log(line)
        else:
            bar.write(line, file=sys.stdout)
        bar.update(1)
        if finished(study, cfg.spaces) >= cfg.trials:
            study.stop()  # others filled the rest; a trial in flight elsewhere may add one
        if (held := records.trial(t)).disk_full:
            full_disk.append(held.fail_reason)
            study.stop()  # every later trial would fail the same way

    timeout = cfg.timeout
    if start_until is not None:  # time.time() after which no trial starts
        timeout = max(0.0, min(timeout or math.inf, start_until - time.time()))
    try:
        study.optimize(objective, n_trials=n_trials, timeout=timeout, callbacks=[report],
                       catch=(Exception,))  # a failing trial never ends the search
    except TimeUp as exc:
        log(f"{label}stopped: {exc}; its trial is marked interrupted and runs first next time")
    finally:
        bar.close()
    if full_disk:
        raise UsageError(f"search stopped: {full_disk[0]}")
