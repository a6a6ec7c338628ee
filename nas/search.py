"""The search: an Optuna study whose trials draw a spec, check it, train it briefly and
report validation accuracy per epoch so weak trials can be stopped early.

Two objectives (``--objective``):
- ``accuracy`` (default): maximise validation accuracy, with Optuna's pruners; the
  params-vs-accuracy front is computed afterwards from every completed trial (``nas.pareto``).
- ``pareto`` / ``pareto-macs``: a multi-objective study (maximise accuracy, minimise params,
  and MACs). Optuna cannot prune those (``Trial.report`` raises), so trials are stopped by
  our own rule, ``size_aware_stop``: only against trials of similar or smaller size, so small
  nets are not stopped for being less accurate than big ones.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import resource
import signal
import statistics
import platform
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import optuna
import torch

import nas
import search_spaces
from nas import pareto, store
from nas.budget import Constraints, check
from nas import data as datasets
from nas.data import Data, DataError, load, resolve_data_dir
from nas.errors import UsageError, check_choice, check_int, check_positive
from nas.model import build
from nas.train import AUGMENTS, PRECISIONS, TrainConfig, train

PRUNERS = ("median", "hyperband", "none")
SAMPLERS = ("tpe", "random")
# Directions of each objective's values: validation accuracy, then params, then MACs.
OBJECTIVES = {"accuracy": ("maximize",), "pareto": ("maximize", "minimize"),
              "pareto-macs": ("maximize", "minimize", "minimize")}
METRICS = ("val_acc", "params", "macs")
TrialState = optuna.trial.TrialState


@dataclass
class SearchConfig:
    space: str = "mobilenet"
    budget: int = 50_000
    dataset: str = "mnist"  # a name, or NAME:PATH (arrays:x.npz, folder:images/, fer2013:f.csv)
    data_dir: str | None = None
    image_size: int | None = None  # folder datasets: resize every image to NxN
    grayscale: bool = False  # folder datasets: decode as one channel
    augment: str | None = None  # None: the dataset's own (none for digits, flip-crop for faces)
    download: bool = False
    limit_train: int | None = None
    study: str | None = None  # default: "<dataset>-<budget>", e.g. mnist-50k
    storage: str | None = None  # default: journal file runs/<study>/journal.log
    runs_dir: str = "runs"
    trials: int = 20
    epochs: int = 3
    pruner: str = "median"  # with a pareto objective: median = size_aware_stop, none = off
    objective: str = "accuracy"
    sampler: str = "tpe"  # tpe (multi-objective TPE with a pareto objective) or random
    timeout: int | None = None  # seconds: stop starting trials after this long
    conv_layers: tuple[int, int] | None = None
    max_macs: int | None = None
    fill: float = 0.0  # draw widths so nets use at least this share of the budget (0: off)
    seed: int = 0
    batch_size: int | None = None  # None: 128 on CPU, 512 on a GPU
    lr: float | None = None  # None: 0.005 x sqrt(batch / 128)
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    cuda_graph: bool = True  # capture the train step on CUDA (False: always eager)
    jobs: int = 1  # worker processes on the one study
    gpus: tuple[int, ...] | None = None  # CUDA devices the workers are spread over
    memory_limit: float | None = None  # GiB a worker's trials may use on top of its data

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Every check of a search's settings, so bad input fails before any work starts."""
        search_spaces.get_space(self.space)  # raises with the valid names
        datasets.check_name(self.dataset)
        for name, valid in (("augment", AUGMENTS), ("pruner", PRUNERS), ("sampler", SAMPLERS),
                            ("objective", OBJECTIVES)):
            check_choice(name, getattr(self, name), valid)
        if self.objective != "accuracy" and self.pruner == "hyperband":
            raise UsageError(f"--pruner hyperband needs --objective accuracy (Optuna cannot prune "
                             f"multi-objective studies); --objective {self.objective} stops trials "
                             f"with its own rule: --pruner median (default) or none")
        for name in ("budget", "trials", "epochs", "batch_size", "limit_train", "max_macs",
                     "jobs", "image_size", "seed", "timeout"):
            check_int(name, getattr(self, name))
        check_positive("memory_limit", self.memory_limit, "a number of GiB > 0", high=1e6)
        check_positive("lr", self.lr)
        if self.precision not in PRECISIONS:
            raise UsageError(f"unknown --precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        if self.gpus is not None:
            self.gpus = parse_gpus(self.gpus)
            if self.device not in ("auto", "cuda"):
                raise UsageError(f"--gpus {','.join(map(str, self.gpus))} needs CUDA; "
                                 f"got --device {self.device!r}")
            have = torch.cuda.device_count()
            if max(self.gpus) >= have:
                raise UsageError(f"--gpus {','.join(map(str, self.gpus))} but this machine has "
                                 f"{have} CUDA device(s)" + (f" (valid: 0-{have - 1})" if have else ""))
        resolve_device(self.device)
        if self.study is not None:
            store.check_study_name(self.study)
        self.constraints()  # range checks live there

    def constraints(self) -> Constraints:
        try:
            return Constraints(self.budget, self.conv_layers, self.max_macs, self.fill)
        except (ValueError, TypeError) as exc:
            raise UsageError(str(exc)) from None

    @property
    def study_name(self) -> str:
        return self.study or f"{datasets.label(self.dataset)}-{budget_label(self.budget)}"

    @property
    def study_dir(self) -> Path:
        return Path(self.runs_dir) / self.study_name

    @property
    def storage_url(self) -> str:
        return self.storage or store.default_storage(self.study_dir)

    def resolved_device(self, worker: int = 0) -> torch.device:
        """The device of worker ``worker``: --gpus round-robin, else --device."""
        if self.gpus:
            return torch.device("cuda", self.gpus[worker % len(self.gpus)])
        return resolve_device(self.device)


def resolve_device(name: str) -> torch.device:
    """--device: auto (the GPU when there is one), cpu, cuda or cuda:N that exists."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"bad --device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UsageError(f"--device {name!r} but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s); use cpu or auto")
    return device


def parse_gpus(text) -> tuple[int, ...]:
    """'0,1' or [0, 1] (TOML) -> (0, 1); several workers may share one GPU."""
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    try:
        gpus = tuple(int(str(g).strip()) for g in items)
    except ValueError:
        gpus = ()
    if not gpus or min(gpus) < 0:
        raise UsageError(f"bad --gpus {text!r}: expected CUDA device numbers, e.g. 0,1")
    return gpus


def budget_label(budget: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1000)):
        if budget % size == 0:
            return f"{budget // size}{unit}"
    return str(budget)


def parse_range(text) -> tuple[int, int]:
    """'2-4' or [2, 4] (TOML) -> (2, 4); '3' or 3 -> (3, 3)."""
    if isinstance(text, (list, tuple)):
        text = "-".join(map(str, text))
    try:
        parts = [int(p) for p in str(text).split("-")]
        if len(parts) == 1:
            parts *= 2
        low, high = parts
    except ValueError:
        raise UsageError(f"bad --conv-layers {text!r}: expected MIN-MAX, e.g. 2-4") from None
    if not 1 <= low <= high:
        raise UsageError(f"bad --conv-layers {text!r}: need 1 <= MIN <= MAX, e.g. 2-4")
    return low, high


def versions() -> dict:
    return {"nas": nas.__version__, "optuna": optuna.__version__, "torch": torch.__version__,
            "python": platform.python_version()}


@dataclass
class SearchResult:
    study: optuna.Study
    study_dir: Path
    counts: dict  # complete / pruned / infeasible / failed
    front: list
    files: list
    seconds: float


def _make_pruner(cfg: SearchConfig) -> optuna.pruners.BasePruner:
    if cfg.objective != "accuracy":
        return optuna.pruners.NopPruner()  # size_aware_stop decides instead
    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=cfg.epochs)
    return optuna.pruners.NopPruner()


def _sampler(cfg: SearchConfig, trials_before: int, worker: int = 0) -> optuna.samplers.BaseSampler:
    # Offset the seed by the trials already there, so a resumed search does not replay the
    # random start-up draws it made before, and by worker, so workers do not draw alike.
    seed = cfg.seed + trials_before + 100_003 * worker
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def open_study(cfg: SearchConfig, info) -> optuna.Study:
    """Create the study, or resume it; refuse to mix datasets in one study."""
    if cfg.storage is None:
        store.make_study_dir(cfg.study_dir)  # the journal file goes in it
    storage = store.open_storage(cfg.storage_url)  # a bad URL fails here, before anything is written
    existing = [s for s in optuna.get_all_study_summaries(storage) if s.study_name == cfg.study_name]
    n_before = existing[0].n_trials if existing else 0
    directions = OBJECTIVES[cfg.objective]
    study = optuna.create_study(
        study_name=cfg.study_name, storage=storage, directions=list(directions),
        load_if_exists=True, sampler=_sampler(cfg, n_before), pruner=_make_pruner(cfg))
    recorded = study.user_attrs.get("data")
    held = study.user_attrs.get("config", {}).get("objective", "accuracy")
    if recorded is not None and (held != cfg.objective or len(study.directions) != len(directions)):
        raise UsageError(f"study {cfg.study_name!r} was searched with --objective {held}; got "
                         f"--objective {cfg.objective}: pass another --study")
    if recorded is None:
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, still there in 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(METRICS[:len(directions)]))  # for optuna-dashboard
        study.set_user_attr("config", {k: v for k, v in asdict(cfg).items()
                                       if k not in ("data_dir", "storage", "runs_dir")})
        study.set_user_attr("data", {**asdict(info), "limit_train": cfg.limit_train,
                                     "image_size": cfg.image_size, "grayscale": cfg.grayscale,
                                     "dir": str(resolve_data_dir(cfg.data_dir).resolve())})
        study.set_user_attr("seed", cfg.seed)
        study.set_user_attr("versions", versions())
    elif (recorded["name"], recorded.get("limit_train")) != (info.name, cfg.limit_train):
        raise UsageError(
            f"study {cfg.study_name!r} holds trials on dataset {recorded['name']!r} "
            f"(limit-train {recorded.get('limit_train')}); got {info.name!r} (limit-train "
            f"{cfg.limit_train}); accuracies would not be comparable: pass another --study")
    store.write_pointer(cfg.study_dir, cfg.study_name, cfg.storage_url)
    return study


def make_objective(cfg: SearchConfig, data: Data, device: torch.device, study_dir: Path):
    space = search_spaces.get_space(cfg.space)
    constraints = cfg.constraints()

    def objective(trial: optuna.Trial) -> float:
        try:
            return run_trial(trial)
        except KeyboardInterrupt as exc:
            abandon(trial, f"interrupted: {STOP_SIGNALS[stop_signal(exc)]} during the trial")
            raise  # Optuna marks it failed; run_search writes the results; exit 130 / 143

    def run_trial(trial: optuna.Trial) -> float:
        # Who runs it: lets a later run tell a trial whose process was killed (-9, OOM
        # killer, power loss) from one still running (recover_interrupted).
        trial.set_user_attr("host", platform.node())
        trial.set_user_attr("pid", os.getpid())
        spec = space(trial, data.info, constraints)
        verdict = check(spec, constraints)
        for key, value in {"space": cfg.space, "arch": spec.to_dict(), "arch_str": spec.to_string(),
                           "params": verdict.params, "macs": verdict.macs,
                           "conv_layers": verdict.conv_layers, "budget": cfg.budget,
                           "epochs": cfg.epochs}.items():
            trial.set_user_attr(key, value)
        for key, value in verdict.constraint_values.items():
            trial.set_constraint(key, value)
        if not verdict.feasible:  # never build, never train
            reason = "; ".join(verdict.violations)
            trial.set_user_attr("infeasible", reason)
            raise optuna.TrialPruned(f"infeasible: {reason}")

        try:
            return _train_candidate(trial, spec, cfg, data, device, study_dir)
        finally:
            # After the model, optimiser and graph are gone, also after a failure:
            # must not grow trial to trial.
            if device.type == "cuda":
                trial.set_user_attr("gpu_mem_allocated", torch.cuda.memory_allocated(device))
            else:
                trial.set_user_attr("heap_after", heap_bytes())

    return objective


# The signals that stop a search cleanly, and how a trial's fail_reason names them.
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


class Stopped(KeyboardInterrupt):
    """SIGTERM (kill, docker stop, a scheduler's time limit): handled exactly like Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(STOP_SIGNALS[signum])
        self.signum = signum


def stop_signal(exc: KeyboardInterrupt) -> int:
    return getattr(exc, "signum", signal.SIGINT)


@contextmanager
def sigterm_stops():
    """While the search runs, SIGTERM raises Stopped in the main thread, as SIGINT raises
    KeyboardInterrupt; only the main thread may set handlers (in-process callers elsewhere
    keep the default)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def abandon(trial: optuna.Trial, reason: str) -> None:
    """A trial stopped by the user, not by its own fault (Optuna then marks it failed)."""
    mark_interrupted(trial.study, trial._trial_id, trial.number, trial.params, reason, retry=True)


def mark_interrupted(study: optuna.Study, trial_id: int, number: int, params: dict,
                     reason: str, retry: bool) -> bool:
    """Record why a trial's work was lost, keep it out of the --trials count (count_states),
    and with ``retry`` queue its parameters so the next trial drawn runs them first.
    Storage-level calls: Optuna has no public API for another process's trial. Returns
    whether a retry was queued."""
    study._storage.set_trial_user_attr(trial_id, "fail_reason", reason)
    study._storage.set_trial_user_attr(trial_id, "interrupted", True)
    if retry and params:
        study.enqueue_trial(params, user_attrs={"retry_of": number})
    return bool(retry and params)


class TrialFailed(RuntimeError):
    """A trial's training raised; the message is the reason stored in the trial."""


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


def size_aware_stop(completed: list, epoch: int, val_acc: float, params: int) -> str | None:
    """--objective pareto's early stopping: stop a trial whose validation accuracy after
    ``epoch`` is below the median, at the same epoch, of the completed trials of similar
    or smaller size (at most STOP_SIMILAR x its params), once there are STOP_STARTUP of
    them. A small net is only measured against nets no bigger than about itself, so the
    small end of the front is not stopped for losing to big nets. Returns the reason, or
    None to go on."""
    peers = [t.user_attrs["val_history"][epoch - 1] for t in completed
             if t.user_attrs.get("params", math.inf) <= STOP_SIMILAR * params
             and len(t.user_attrs.get("val_history", ())) >= epoch]
    if len(peers) < STOP_STARTUP:
        return None
    median = statistics.median(peers)
    if val_acc >= median:
        return None
    return (f"stopped after epoch {epoch}: val_acc {val_acc:.4f} < {median:.4f}, the median "
            f"at epoch {epoch} of {len(peers)} completed trials with <= "
            f"{int(STOP_SIMILAR * params):,} params")


def _train_candidate(trial: optuna.Trial, spec, cfg: SearchConfig, data: Data,
                     device: torch.device, study_dir: Path):
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed + trial.number)
    model = build(spec)
    build_seconds = time.perf_counter() - t0

    history: list[float] = []

    def on_epoch(epoch: int, val_acc: float) -> None:
        history.append(val_acc)
        trial.set_user_attr("val_history", history)  # what size_aware_stop compares
        # Never stop after the last epoch: the training is paid for, and a small model
        # below the median can still be on the params-vs-accuracy front.
        if cfg.objective == "accuracy":
            trial.report(val_acc, epoch)
            if epoch < cfg.epochs and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch} at val_acc {val_acc:.4f}")
        elif epoch < cfg.epochs and cfg.pruner != "none":
            completed = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            reason = size_aware_stop(completed, epoch, val_acc, trial.user_attrs["params"])
            if reason:
                trial.set_user_attr("stopped_early", reason)
                raise optuna.TrialPruned(reason)

    train_cfg = TrainConfig(cfg.epochs, cfg.batch_size, cfg.lr, seed=cfg.seed + trial.number,
                            precision=cfg.precision, cuda_graph=None if cfg.cuda_graph else False,
                            augment=cfg.augment)
    trial.set_user_attr("device", str(device))
    reason = None
    try:
        result = train(model.to(device), data, train_cfg, on_epoch)
    except optuna.TrialPruned:
        raise
    except Exception as exc:
        reason = failure_reason(exc)
    if reason is not None:
        # Out of the except block, the traceback (and through it the model, optimiser and
        # graph of the failed run) is gone; free them before the next trial starts.
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        trial.set_user_attr("fail_reason", reason)
        raise TrialFailed(reason)  # Optuna marks the trial failed; the search goes on
    path = store.weights_path(study_dir, trial.number)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    for key, value in {"val_acc": result.val_acc, "train_time": round(result.seconds, 3),
                       "build_time": round(build_seconds, 4),
                       "capture_time": round(result.capture_seconds, 4),
                       "eval_time": round(result.eval_seconds, 4),
                       "batch_size": result.batch_size, "lr": result.lr, "bf16": result.bf16,
                       "cuda_graph": result.cuda_graph}.items():
        trial.set_user_attr(key, value)
    if result.graph_fallback:
        trial.set_user_attr("graph_fallback", result.graph_fallback)
    values = (result.val_acc, trial.user_attrs["params"], trial.user_attrs["macs"])
    return values[0] if cfg.objective == "accuracy" else values[:len(OBJECTIVES[cfg.objective])]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this run has started no trial yet: the pid was reused
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_interrupted(study: optuna.Study, log: Callable[[str], None],
                        why: str = "its worker (pid {pid}) died mid-trial",
                        user_stop: bool = False) -> list[int]:
    """Trials left RUNNING by a process of this host that no longer exists: mark them
    failed with the reason, and queue their parameters for a retry: once when the worker
    died (a trial that kills its worker must not do so forever), always when the user
    stopped it. Trials of other hosts are left alone (their process may be running)."""
    recovered = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") != platform.node() or pid is None or _alive(pid):
            continue
        retry = mark_interrupted(study, t._trial_id, t.number, t.params,
                                 "interrupted: " + why.format(pid=pid),
                                 retry=user_stop or "retry_of" not in t.user_attrs)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        log(f"trial {t.number} was interrupted (worker pid {pid} is gone): marked failed"
            + ("; its parameters run again first" if retry else "; not retried again"))
        recovered.append(t.number)
    return recovered


def count_states(study: optuna.Study, space: str | None = None) -> dict:
    """Finished trials by outcome; interrupted ones (recover_interrupted) do not count
    towards --trials, since their work was lost."""
    counts = {"complete": 0, "pruned": 0, "infeasible": 0, "failed": 0, "interrupted": 0}
    for t in study.get_trials(deepcopy=False):
        if space is not None and t.user_attrs.get("space") != space:
            continue
        if t.state == TrialState.COMPLETE:
            counts["complete"] += 1
        elif t.state == TrialState.PRUNED:
            counts["infeasible" if "infeasible" in t.user_attrs else "pruned"] += 1
        elif t.state == TrialState.FAIL:
            counts["interrupted" if t.user_attrs.get("interrupted") else "failed"] += 1
    return counts


def finished(study: optuna.Study, space: str) -> int:
    """Trials of ``space`` that count towards --trials: all finished ones but interrupted."""
    return sum(n for state, n in count_states(study, space).items() if state != "interrupted")


def run_search(cfg: SearchConfig, log: Callable[[str], None] = print,
               progress: bool = True) -> SearchResult:
    start = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # we print our own line per trial
    configure_logging()
    device = cfg.resolved_device()
    data = load_data(cfg, cfg.download)
    constraints = cfg.constraints()
    smallest = search_spaces.smallest_model(cfg.space, data.info, constraints)
    verdict = check(smallest, constraints)
    if not verdict.feasible:
        what = (f"--budget {cfg.budget:,} is below the smallest {cfg.space!r} model"
                if verdict.params > cfg.budget else
                f"the constraints rule out even the smallest {cfg.space!r} model")
        raise UsageError(f"{what} for {data.info.name} ({verdict.params:,} params, "
                         f"{smallest.to_string()}): " + "; ".join(verdict.violations))
    study = open_study(cfg, data.info)
    log(f"study {cfg.study_name!r} stored in {cfg.storage_url}")
    log(f"dashboard: optuna-dashboard {cfg.storage_url}")

    recover_interrupted(study, log)
    done = finished(study, cfg.space)
    remaining = cfg.trials - done
    try:
        if remaining <= 0:
            log(f"study already has {done} finished {cfg.space!r} trials (--trials {cfg.trials}); "
                f"nothing to run; raise --trials to search more")
        else:
            if done:
                log(f"resuming: {done} {cfg.space!r} trials done, {remaining} to go")
            log(f"searching {cfg.space!r} on {data.info.name} ({len(data.train_x):,} train / "
                f"{len(data.val_x):,} val images) under {cfg.budget:,} params: {remaining} "
                f"trials x {cfg.epochs} epochs on "
                + (", ".join(f"cuda:{g}" for g in cfg.gpus) if cfg.gpus and cfg.jobs > 1 else str(device))
                + (f", {cfg.jobs} worker processes" if cfg.jobs > 1 else ""))
            if cfg.jobs > 1:
                try:
                    _run_workers(cfg, remaining, len(study.trials))
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
                    _optimize(study, make_objective(cfg, data, device, cfg.study_dir), remaining,
                              cfg, log, progress)
    finally:
        # Also after Ctrl-C (Optuna has marked the running trial failed): the counts and
        # the front come from whatever completed.
        counts = count_states(study)
        study.set_user_attr("trial_counts", counts)
        front, files = write_front(study, cfg.study_dir, data, device)
    return SearchResult(study, cfg.study_dir, counts, front, files, time.perf_counter() - start)


def load_data(cfg: SearchConfig, download: bool = False) -> Data:
    return load(cfg.dataset, cfg.data_dir, download, cfg.limit_train, cfg.image_size, cfg.grayscale)


def _run_workers(cfg: SearchConfig, n_trials: int, trials_before: int) -> None:
    """``cfg.jobs`` processes on one study; the storage keeps them apart. The trials are
    split exactly, so the study gets ``n_trials`` more, none run twice."""
    from joblib import Parallel, delayed

    shares = [n_trials // cfg.jobs + (i < n_trials % cfg.jobs) for i in range(cfg.jobs)]
    threads = max(1, (os.cpu_count() or 1) // cfg.jobs)  # no CPU oversubscription
    # After Ctrl-C, joblib kills the workers; multiprocessing's tracker would then warn
    # about semaphores of theirs that it cleans up anyway.
    os.environ.setdefault("PYTHONWARNINGS", "ignore:resource_tracker:UserWarning")
    Parallel(n_jobs=cfg.jobs, backend="loky")(
        delayed(_worker)(cfg, i, share, trials_before, threads)
        for i, share in enumerate(shares) if share)


def _worker(cfg: SearchConfig, worker: int, n_trials: int, trials_before: int, threads: int) -> None:
    # Ctrl-C (or a scheduler's SIGTERM) reaches every process of the group. Only the parent
    # acts on it: it stops the workers and marks their trials (run_search), so none is
    # half-handled here. joblib stops workers with SIGKILL, which this does not block.
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    configure_logging()
    device = cfg.resolved_device(worker)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    data = on_device(load_data(cfg), device)
    study = optuna.load_study(study_name=cfg.study_name, storage=store.open_storage(cfg.storage_url),
                              sampler=_sampler(cfg, trials_before, worker + 1),
                              pruner=_make_pruner(cfg))
    with memory_limit(cfg.memory_limit, device):
        _optimize(study, make_objective(cfg, data, device, cfg.study_dir), n_trials, cfg,
                  lambda line: print(line, flush=True), progress=False, label=f"w{worker} ")


def configure_logging() -> None:
    """Notes from deep inside (e.g. a CUDA graph fallback) go to stderr as 'nas: ...'."""
    logger = logging.getLogger("nas")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("nas: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def heap_bytes() -> int:
    """This process's data segment (VmData): what RLIMIT_DATA caps."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmData:"))


@contextmanager
def memory_limit(gib: float | None, device: torch.device):
    """--memory-limit: what this process's trials may allocate on top of what it holds now
    (the dataset, libraries). On a GPU, a cap on PyTorch's caching allocator (so several
    workers can share one GPU safely); on CPU, on the process's heap (RLIMIT_DATA). A trial
    that needs more fails as out of memory, and the search goes on. Lifted on leaving, so
    writing the results never runs under it."""
    if gib is None:
        yield
        return
    extra = int(gib * 2**30)
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(
            min(1.0, (torch.cuda.memory_reserved(device) + extra) / total), device)
        try:
            yield
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0, device)
        return
    held = heap_bytes()
    before = resource.getrlimit(resource.RLIMIT_DATA)
    # oneDNN's CPU kernels stay broken after one of their allocations fails ("could not
    # create a primitive" for every later conv, measured); PyTorch's own kernels recover.
    mkldnn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    resource.setrlimit(resource.RLIMIT_DATA, (held + extra, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, before)
        torch.backends.mkldnn.enabled = mkldnn


def on_device(data: Data, device: torch.device) -> Data:
    moved = {f.name: getattr(data, f.name) for f in fields(data)}
    for name, value in moved.items():
        if isinstance(value, torch.Tensor):
            moved[name] = value.to(device)
    return Data(**moved)


def _optimize(study, objective, n_trials, cfg: SearchConfig, log, progress, label="") -> None:
    """Run up to ``n_trials``, and stop once the study holds --trials finished trials of
    this space, also when other processes or machines (--storage URL) fill it too. One line
    per finished trial with progress and ETA, plus a live bar when stderr is a terminal."""
    from tqdm import tqdm

    bar = tqdm(total=n_trials, unit="trial", file=sys.stderr, dynamic_ncols=True,
               disable=not (progress and sys.stderr.isatty()))
    start, ran = time.perf_counter(), 0

    def report(study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        nonlocal ran
        ran += 1
        elapsed = time.perf_counter() - start
        eta = elapsed / ran * (n_trials - ran)
        line = f"[{label}{ran}/{n_trials} eta {_clock(eta)}] {trial_line(t)}"
        if bar.disable:
            log(line)
        else:
            bar.write(line, file=sys.stdout)
        bar.update(1)
        if finished(study, cfg.space) >= cfg.trials:
            study.stop()  # others filled the rest; a trial in flight elsewhere may add one

    try:
        study.optimize(objective, n_trials=n_trials, timeout=cfg.timeout, callbacks=[report],
                       catch=(Exception,))  # a failing trial never ends the search
    finally:
        bar.close()


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


def trial_line(t: optuna.trial.FrozenTrial) -> str:
    attrs = t.user_attrs
    seconds = (t.datetime_complete - t.datetime_start).total_seconds()
    history = attrs.get("val_history", [])
    if store.accuracy(t) is not None:
        acc = f"{store.accuracy(t):.4f}"
    elif history:
        acc = f"{history[-1]:.4f}"
    else:
        acc = "   -  "
    if "infeasible" in attrs:
        state = f"INFEASIBLE ({attrs['infeasible']})"
    elif t.state == TrialState.FAIL:
        state = f"FAILED ({attrs.get('fail_reason', 'see the dashboard')})"
    elif t.state == TrialState.PRUNED:
        state = f"{'STOPPED' if 'stopped_early' in attrs else 'PRUNED'} after epoch {len(history)}"
    else:
        state = t.state.name
    return (f"trial {t.number:>3}  {attrs.get('space', '?'):<9} {attrs.get('params', 0):>8,} params"
            f"  val_acc {acc}  {seconds:6.1f}s  {state}  {attrs.get('arch_str', '')}")


def write_front(study: optuna.Study, study_dir: Path, data: Data | None, device) -> tuple[list, list]:
    all_rows = pareto.rows(study)
    if not all_rows:
        return [], []
    front_rows = pareto.front(all_rows)
    if data is not None:
        pareto.score_test(study, study_dir, front_rows, data, device)
    title = f"{study.study_name}: {len(all_rows)} trained trials"
    budget = study.user_attrs.get("config", {}).get("budget")
    return front_rows, pareto.write(study_dir, all_rows, front_rows, title, budget)


RECORDED = "recorded"


def load_data_for(study: optuna.Study, data_dir=None, limit_train=RECORDED) -> Data | None:
    """The study's dataset: from --data-dir, else $NAS_DATA_DIR, else the folder the search
    used; with the search's --limit-train unless told otherwise. None when not found."""
    recorded = study.user_attrs.get("data", {})
    data_dir = resolve_data_dir(data_dir, fallback=recorded.get("dir", "data"))
    if limit_train == RECORDED:
        limit_train = recorded.get("limit_train")
    try:
        return load(recorded.get("name", "mnist"), data_dir, False, limit_train,
                    recorded.get("image_size"), recorded.get("grayscale", False))
    except DataError:
        return None
