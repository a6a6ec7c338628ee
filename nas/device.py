"""Where training runs and what it may hold: the device a setting names, the dataset moved
onto it, and --memory-limit."""

from __future__ import annotations

import logging
import resource
from contextlib import contextmanager
from dataclasses import fields
from typing import Callable

import torch

from nas.data import Data
from nas.errors import UsageError


def resolve_device(name: str) -> torch.device:
    """--device: auto (the GPU when there is one), cpu, cuda or cuda:N that exists."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"bad --device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UsageError(f"--device {name!r} but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s); use cpu or auto")
    # Numbered: torch.cuda.set_device and memory queries refuse a bare "cuda".
    return torch.device("cuda", device.index or 0) if device.type == "cuda" else device


def on_device(data: Data, device: torch.device) -> Data:
    """The whole dataset (uint8) on ``device``: batches are then indexed there."""
    moved = {f.name: getattr(data, f.name) for f in fields(data)}
    for name, value in moved.items():
        if isinstance(value, torch.Tensor):
            moved[name] = value.to(device)
    return Data(**moved)


def heap_bytes() -> int:
    """This process's data segment (VmData): what RLIMIT_DATA caps."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmData:"))


def warm_up_training() -> None:
    """One tiny training and evaluation step, so that what PyTorch imports and sets up
    lazily on first use happens before a heap limit is set: a module whose import fails
    for want of memory stays half-initialised for the rest of the process (every later
    trial failed with "partially initialized module 'torch._inductor'", and one run died
    with a segmentation fault)."""
    from torch import nn

    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(2, 2))
    optimizer = torch.optim.AdamW(net.parameters())
    x = torch.rand(2, 1, 8, 8).contiguous(memory_format=torch.channels_last)
    nn.functional.cross_entropy(net(x), torch.tensor([0, 1])).backward()
    optimizer.step()
    with torch.no_grad():
        net.eval()(x).argmax(1)


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
    # oneDNN's CPU kernels stay broken after one of their allocations fails ("could not
    # create a primitive" for every later conv, measured); PyTorch's own kernels recover.
    mkldnn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    warm_up_training()
    held = heap_bytes()
    before = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (held + extra, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, before)
        torch.backends.mkldnn.enabled = mkldnn


log = logging.getLogger("nas")
_reported_fallbacks: set[str] = set()


def capture_graph(step: Callable[[], None]) -> tuple[torch.cuda.CUDAGraph | None, str | None]:
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
