"""The Optuna study of a search: storage, sampler and pruner, what the study records about
itself, and how its trials are counted and shown."""

from __future__ import annotations

import platform
import warnings
from dataclasses import asdict

import optuna
import torch

import nas
from nas import records, storage
from nas.storage import is_own_storage
from nas.study_folder import make_study_dir, write_pointer
from nas.trials import trial_val_acc
from nas.config import LOCAL_SETTINGS, METRICS, REPORTS_PER_EPOCH, SearchConfig
from nas.flags import directions as objective_directions
from nas.data import DataInfo, resolve_data_dir
from nas.errors import UsageError
from nas.search.plan import TRIAL_REPORTS

TrialState = optuna.trial.TrialState


def make_pruner(cfg: SearchConfig) -> optuna.pruners.BasePruner:
    if cfg.objective != "accuracy":
        return optuna.pruners.NopPruner()  # objective.size_aware_stop decides instead
    if cfg.pruner == "median":  # from the second report on: half an epoch in
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=TRIAL_REPORTS if cfg.time else cfg.epochs * REPORTS_PER_EPOCH)
    return optuna.pruners.NopPruner()


def make_sampler(cfg: SearchConfig, trials_before: int, worker: int = 0) -> optuna.samplers.BaseSampler:
    # Offset the seed by the trials already there, so a resumed search does not replay the
    # random start-up draws it made before, and by worker, so workers do not draw alike.
    seed = cfg.seed + trials_before + 100_003 * worker
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if cfg.sampler == "tpe-grouped":
        # One joint density per group of parameters that occur together (a space's blocks
        # exist only in trials deep enough for them); "experimental" in Optuna 5.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    return optuna.samplers.TPESampler(seed=seed)


def versions() -> dict:
    return {"nas": nas.__version__, "optuna": optuna.__version__, "torch": torch.__version__,
            "python": platform.python_version()}


def settings_that_differ(study: optuna.Study, cfg: SearchConfig, info: DataInfo) -> list[tuple]:
    """(flag, stored, given) of each setting a resumed study must keep: its trials were
    trained and counted under them (a new --budget would add trials over the old one)."""
    held = records.study(study)
    data = held.data
    pairs = [("--dataset", data.name, info.name),
             ("--limit-train", data.limit_train, cfg.limit_train),
             ("--budget", cfg.budget if held.budget is None else held.budget, cfg.budget),
             ("--image-size", data.image_size, cfg.image_size),
             ("--grayscale", data.grayscale, cfg.grayscale),
             ("an input shape of", "x".join(map(str, data.input_shape)),
              "x".join(map(str, info.input_shape))),
             ("classes", len(data.classes), info.num_classes)]
    return [(flag, held, given) for flag, held, given in pairs if held != given]


def open_study(cfg: SearchConfig, info: DataInfo) -> optuna.Study:
    """Create the study, or resume it; refuse to mix datasets or objectives in one study."""
    if cfg.storage is None:
        make_study_dir(cfg.study_dir)  # the journal file goes in it
        if not is_own_storage(cfg.storage_url, cfg.study_dir):  # planted as a symlink
            raise UsageError(f"{cfg.storage_url} is a symlink out of the study folder; a search "
                             f"writes its journal only inside it (remove the link, or pass --storage)")
    opened = storage.open_storage(cfg.storage_url)  # a bad URL fails here, before anything is written
    existing = [s for s in optuna.get_all_study_summaries(opened) if s.study_name == cfg.study_name]
    n_before = existing[0].n_trials if existing else 0
    directions = objective_directions(cfg.objective)
    study = optuna.create_study(
        study_name=cfg.study_name, storage=opened, directions=list(directions),
        load_if_exists=True, sampler=make_sampler(cfg, n_before), pruner=make_pruner(cfg))
    recorded = records.study_or_none(study)
    held = recorded.objective if recorded is not None else cfg.objective
    if recorded is not None and (held != cfg.objective or len(study.directions) != len(directions)):
        raise UsageError(f"study {cfg.study_name!r} was searched with --objective {held}; got "
                         f"--objective {cfg.objective}: pass another --study")
    if recorded is None:
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, still there in 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(METRICS[:len(directions)]))  # for optuna-dashboard
        records.write_study(
            study, config={k: v for k, v in asdict(cfg).items() if k not in LOCAL_SETTINGS},
            data=records.DataRecord(**asdict(info), limit_train=cfg.limit_train,
                                    image_size=cfg.image_size, grayscale=cfg.grayscale,
                                    dir=str(resolve_data_dir(cfg.data_dir).resolve())),
            seed=cfg.seed, versions=versions())
    elif differ := settings_that_differ(study, cfg, info):
        flag, held, given = differ[0]
        raise UsageError(f"study {cfg.study_name!r} was searched with {flag} {held}; got "
                         f"{flag} {given}: its trials and new ones would not be comparable "
                         f"(pass another --study, or the same {flag})")
    write_pointer(cfg.study_dir, cfg.study_name, cfg.storage_url)
    return study


def count_states(study: optuna.Study, spaces: tuple[str, ...] | None = None) -> dict:
    """Finished trials (of ``spaces``, when given) by outcome; interrupted ones
    (recovery.recover_interrupted) do not count towards --trials, since their work was lost."""
    counts = {"complete": 0, "pruned": 0, "infeasible": 0, "failed": 0, "interrupted": 0}
    for t in study.get_trials(deepcopy=False):
        held = records.trial(t, study.study_name)
        if spaces is not None and held.space not in spaces:
            continue
        if t.state == TrialState.COMPLETE:
            counts["complete"] += 1
        elif t.state == TrialState.PRUNED:
            counts["infeasible" if held.infeasible is not None else "pruned"] += 1
        elif t.state == TrialState.FAIL:
            counts["interrupted" if held.interrupted else "failed"] += 1
    return counts


def finished(study: optuna.Study, spaces: tuple[str, ...]) -> int:
    """Trials of ``spaces`` that count towards --trials: all finished ones but interrupted."""
    return sum(n for state, n in count_states(study, spaces).items() if state != "interrupted")


def clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


def epochs_done(step: int, reports_per_epoch: int = REPORTS_PER_EPOCH) -> str:
    """Report ``step`` (from 1) as epochs trained: '0.25', '1', '2.5'."""
    return f"{step / reports_per_epoch:g}"


def trial_line(t: optuna.trial.FrozenTrial) -> str:
    held = records.trial(t)
    seconds = (t.datetime_complete - t.datetime_start).total_seconds()
    history = held.val_history or []
    if trial_val_acc(t) is not None:
        acc = f"{trial_val_acc(t):.4f}"
    elif history:
        acc = f"{history[-1]:.4f}"
    else:
        acc = "   -  "
    if held.infeasible is not None:
        state = f"INFEASIBLE ({held.infeasible})"
    elif t.state == TrialState.FAIL:
        state = f"FAILED ({held.fail_reason or 'see the dashboard'})"
    elif held.too_slow is not None:
        state = f"TOO SLOW ({held.too_slow.removeprefix('too slow: ')})"
    elif t.state == TrialState.PRUNED:
        at = (f"{len(history)}/{TRIAL_REPORTS} of its {held.time_slice:g}s" if held.time_slice is not None
              else f"{epochs_done(len(history), held.reports_per_epoch or 1)} epochs")
        state = f"{'STOPPED' if held.stopped_early is not None else 'PRUNED'} at {at}"
    else:
        state = t.state.name
    return (f"trial {t.number:>3}  {held.space or '?':<9} {held.params or 0:>8,} params"
            f"  val_acc {acc}  {seconds:6.1f}s  {state}  {held.arch_str or ''}")
