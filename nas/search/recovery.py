"""Signals and dead workers: a stopped or killed trial is marked with why its work was
lost, kept out of the --trials count, and its parameters queued to run again."""

from __future__ import annotations

import os
import platform
import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable

import optuna

from nas import records

TrialState = optuna.trial.TrialState

# The signals that stop a search cleanly, and how a trial's fail_reason names them.
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


class Stopped(KeyboardInterrupt):
    """SIGTERM (kill, docker stop, a scheduler's time limit): handled exactly like Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(STOP_SIGNALS[signum])
        self.signum = signum


class TimeUp(KeyboardInterrupt):
    """--time is over: the running trial is abandoned like an interrupted one (and retried
    first by the next run), and the search ends normally with what completed."""


def stop_reason(exc: KeyboardInterrupt) -> str:
    """How an abandoned trial's fail_reason says why."""
    if isinstance(exc, TimeUp):
        return f"interrupted: {exc}"
    return f"interrupted: {STOP_SIGNALS[stop_signal(exc)]} during the trial"


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


@contextmanager
def stop_signals_deferred():
    """Around writing the front: a SIGINT or SIGTERM that arrives meanwhile is held until
    the files are written, then raised as usual (exit 130 / 143). Without this a signal just
    after the last trial left no pareto.* at all, or no plot."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: caught.append(signum))
                for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if caught:
        raise Stopped(caught[0]) if caught[0] != signal.SIGINT else KeyboardInterrupt()


def ignore_stop_signals() -> None:
    """In --jobs workers: Ctrl-C (or a scheduler's SIGTERM) reaches every process of the
    group. Only the parent acts on it: it stops the workers and marks their trials, so none
    is half-handled in a worker. joblib stops workers with SIGKILL, which this does not block."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def die_with_parent(every: float = 0.5) -> None:
    """In --jobs workers: end when the search that started them is gone. A parent killed
    with -9 cannot stop its workers, and they would go on filling the study unseen (their
    parent 1, stop signals ignored). A daemon thread watches the parent's pid; the trial
    then running is left 'running' and the next search marks it interrupted, as for any
    killed worker (recover_interrupted)."""
    parent = os.getppid()  # loky starts workers from the search's own process

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="nas-die-with-parent", daemon=True).start()


def abandon(trial: optuna.Trial, reason: str) -> None:
    """A trial stopped by the user, not by its own fault (Optuna then marks it failed)."""
    mark_interrupted(trial.study, trial._trial_id, trial.number, trial.params, reason, retry=True)


def mark_interrupted(study: optuna.Study, trial_id: int, number: int, params: dict,
                     reason: str, retry: bool) -> bool:
    """Record why a trial's work was lost, keep it out of the --trials count (count_states),
    and with ``retry`` queue its parameters so the next trial drawn runs them first.
    Storage-level calls: Optuna has no public API for another process's trial. Returns
    whether a retry was queued."""
    records.note_by_id(study, trial_id, fail_reason=reason, interrupted=True)
    if retry and params:
        records.enqueue_retry(study, params, number)
    return bool(retry and params)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this run has started no trial yet: the pid was reused
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed worker whose parent died too stays a zombie until init reaps it, which some
    # inits (containers, VMs) do late; signal 0 still reaches a zombie, /proc tells.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc here: signal 0 is all there is


def recover_interrupted(study: optuna.Study, log: Callable[[str], None],
                        why: str = "its worker (pid {pid}) died mid-trial",
                        user_stop: bool = False) -> list[int]:
    """Trials left RUNNING by a process of this host that no longer exists: mark them
    failed with the reason, and queue their parameters for a retry: once when the worker
    died (a trial that kills its worker must not do so forever), always when the user
    stopped it. Trials of other hosts are left alone (their process may be running)."""
    recovered = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        held = records.trial(t, study.study_name)
        pid = held.pid
        if held.host != platform.node() or pid is None or _alive(pid):
            continue
        retry = mark_interrupted(study, t._trial_id, t.number, t.params,
                                 "interrupted: " + why.format(pid=pid),
                                 retry=user_stop or held.retry_of is None)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        log(f"trial {t.number} was interrupted (worker pid {pid} is gone): marked failed"
            + ("; its parameters run again first" if retry else "; not retried again"))
        recovered.append(t.number)
    return recovered
