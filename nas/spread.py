"""One training spread over several one-thread CPU processes: each takes its share of
every batch and torch.distributed (gloo) averages the gradients, so together they step as
one net with the same batch and LR. A small net's convs are too small to keep two threads
of one process busy, while two processes, each on its own core, train nearly twice the
images (benchmarks/README.md, "Both cores for one training").

The caller is rank 0 and keeps the trained net. Helpers are started with the spawn method,
ignore stop signals (the caller stops them), and end when the caller is gone; they write
nothing. They meet at a loopback TCP store that rank 0 hosts, so a kill at any moment leaves
no file behind (gloo's own exchange is over TCP sockets in any case).
"""

from __future__ import annotations

import copy
import ctypes
import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn

# Images of each batch a process takes at the least: below it a process's share is too
# small to run efficiently (two halves of the CPU default of 128 were measured).
MIN_SHARE = 64
# Spread when a second thread of one process speeds training by less than this: two
# processes beat one thread on every net measured, but lose to two threads on nets whose
# convs are big enough to keep both busy (benchmarks/README.md).
SPREAD_BELOW = 1.3
# A step this long on one thread hides the gradient exchange and its waits (a few ms).
SHORTEST_STEP = 0.010
SHORTEST = 60.0  # seconds: a shorter run does not repay the helpers' start (a few seconds)
PR_SET_PDEATHSIG = 1  # prctl(2)
LOOPBACK = "127.0.0.1"
# A helper waits this long in a collective for rank 0, which validates alone between steps.
WAIT = timedelta(minutes=10)


def cores() -> int:
    """The cores this process may run on (taskset and cgroups included)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def processes_for(model: nn.Module, data, batch: int, seconds: float | None) -> int:
    """How many processes a training of ``model`` spreads over: one per core on a CPU, each
    with at least MIN_SHARE images of the batch, when the run is long enough to repay the
    helpers' start, its steps long enough to hide the gradient exchange (SHORTEST_STEP), and
    a second thread of this process adds less than SPREAD_BELOW (a net whose convs already
    keep two threads busy loses to the exchange)."""
    processes = min(cores(), batch // MIN_SHARE)
    if (data.train_x.device.type != "cpu" or processes < 2 or (seconds or math.inf) < SHORTEST
            or not (dist.is_available() and dist.is_gloo_available())):
        return 1
    one, every = step_seconds(model, data, batch)
    return processes if one >= SHORTEST_STEP and one / every < SPREAD_BELOW else 1


def step_seconds(model: nn.Module, data, batch: int, steps: int = 6) -> tuple[float, float]:
    """Seconds of a training step (forward, backward, AdamW on a batch of the data's images)
    of a copy of ``model``, on one thread and on all of this process's."""
    net = copy.deepcopy(model).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(net.parameters())
    x = (data.train_x[:batch].float() / 255).contiguous(memory_format=torch.channels_last)
    y = data.train_y[:batch]

    def seconds(threads: int) -> float:
        torch.set_num_threads(threads)
        for step in range(2 + steps):  # two warm-up steps
            if step == 2:
                start = time.perf_counter()
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()
        return (time.perf_counter() - start) / steps

    threads = torch.get_num_threads()
    try:
        return seconds(1), seconds(threads)
    finally:
        torch.set_num_threads(threads)


def agree(value: float) -> float:
    """The largest of every process's ``value``: a decision all of them take alike (when
    a timed run's time is up, where its LR schedule stands)."""
    held = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(held, op=dist.ReduceOp.MAX)
    return held.item()


@contextmanager
def spread(processes: int, helper_work: Callable, *args):
    """Start ``processes - 1`` helpers, each running ``helper_work(rank, processes, *args)``
    (a module-level function), and join them as rank 0 with one thread, for the ``with``
    body's own share of the work."""
    threads = torch.get_num_threads()
    store = dist.TCPStore(LOOPBACK, 0, processes, is_master=True, timeout=WAIT,
                          wait_for_workers=False)  # port 0: the system picks a free one
    context = torch.multiprocessing.get_context("spawn")
    helpers = [context.Process(target=_helper, daemon=True, name=f"nas-spread-{rank}",
                               args=(rank, processes, store.port, os.getpid(), helper_work, args))
               for rank in range(1, processes)]
    finished = False
    try:
        for helper in helpers:
            helper.start()
        torch.set_num_threads(1)
        _join(0, processes, store)
        yield
        finished = True
    finally:
        torch.set_num_threads(threads)
        for helper in helpers:
            helper.join(timeout=60 if finished else 0)  # a stopped rank 0 leaves them waiting
            if helper.is_alive():
                helper.kill()
                helper.join()
        if dist.is_initialized():
            dist.destroy_process_group()


def _join(rank: int, processes: int, store: dist.Store) -> None:
    dist.init_process_group("gloo", store=store, rank=rank, world_size=processes, timeout=WAIT)


def _helper(rank: int, processes: int, port: int, parent: int, work: Callable,
            args: tuple) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    _die_with(parent)
    torch.set_num_threads(1)
    try:
        _join(rank, processes, dist.TCPStore(LOOPBACK, port, processes, is_master=False,
                                             timeout=WAIT))
        work(rank, processes, *args)
        dist.destroy_process_group()
    except Exception as exc:  # rank 0 reports the training's failure; one line here
        print(f"nas: training helper {rank} stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)


def _die_with(parent: int, every: float = 0.5) -> None:
    """End this helper once its parent is gone (killed with -9, it cannot stop us). On Linux
    the kernel sees to it; elsewhere a thread watches, which a collective holding the
    interpreter's lock may delay until the collective fails."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="nas-spread-watch", daemon=True).start()
