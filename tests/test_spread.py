"""One training spread over two one-thread CPU processes (nas.spread): real helper
processes, a real gloo process group, a real kill of the parent."""

import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from nas.arch import ArchSpec
from nas.data import load
from nas.model import build
from nas.schedule import EPOCH_CAP
from nas.spread import processes_for
from nas.trainer import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
NO_BN = "c8k3s2-c16k3s2-gap-nobn"  # no batch norm, no dropout: a step depends on the batch alone


@pytest.fixture(scope="module")
def data():
    return load("synthetic")


def _model(data, text=NO_BN):
    torch.manual_seed(0)
    return build(ArchSpec.from_string(text, *data.info.input_shape, data.info.num_classes))


def _helpers() -> list:
    """This process's spread helpers still running (other tests may leave joblib's workers)."""
    return [p for p in multiprocessing.active_children() if p.name.startswith("nas-spread")]


def _leftovers() -> set:
    return {p.name for p in Path(tempfile.gettempdir()).glob("nas-spread-*")}


def test_two_processes_step_as_one_net_with_the_whole_batch(data):
    """Each process takes half of each batch and the gradients are averaged: without batch
    norm or random augmentation, the net ends where one process with the whole batch does."""
    before = _leftovers()
    cfg = TrainConfig(2, augment="none", seed=3)
    alone = _model(data)
    alone_result = train(alone, data, cfg)
    spread_net = _model(data)
    result = train(spread_net, data, TrainConfig(2, augment="none", seed=3, processes=2))
    assert (result.processes, alone_result.processes) == (2, 1)
    assert result.batch_size == alone_result.batch_size == 128  # the whole batch, as alone
    for (name, a), b in zip(alone.state_dict().items(), spread_net.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-4), name
    assert result.val_acc == pytest.approx(alone_result.val_acc, abs=0.01)
    assert _helpers() == []  # the helper is gone
    assert _leftovers() == before  # and nothing left on disk


def test_a_timed_spread_run_ends_on_time_for_both_and_validates_on_rank_0(data):
    result = train(_model(data, "c8k3s2-c16k3s2-gap"),
                   data, TrainConfig(EPOCH_CAP, processes=2, time_limit=8, time_reports=2))
    assert result.processes == 2 and len(result.history) == 2 and result.epochs > 1
    assert result.val_acc > 0.5
    assert _helpers() == []


def test_a_teacher_trains_in_one_process(data):
    teacher = _model(data).eval()
    result = train(_model(data), data, TrainConfig(1, processes=2, teacher=teacher))
    assert result.processes == 1


def test_short_runs_tiny_steps_and_one_core_train_in_one_process(data):
    model = _model(data)
    assert processes_for(model, data, 128, seconds=30) == 1  # does not repay the helpers' start
    assert processes_for(model, data, 64, seconds=None) == 1  # a share under 64 images
    # this net's step is far below the exchange's cost
    assert processes_for(model, data, 128, seconds=None) == 1
    pinned = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c",
         "from nas.spread import cores; print(cores())"],
        capture_output=True, text=True, check=True)
    assert pinned.stdout.strip() == "1"


HOLD = """
import threading, time, multiprocessing, torch
from nas.arch import ArchSpec
from nas.data import load
from nas.model import build
from nas.trainer import TrainConfig, train
data = load("synthetic")
def say():
    while not multiprocessing.active_children():
        time.sleep(0.1)
    print("helpers", *[p.pid for p in multiprocessing.active_children()], flush=True)
threading.Thread(target=say, daemon=True).start()
model = build(ArchSpec.from_string("c8k3s2-c16k3s2-gap", *data.info.input_shape, data.info.num_classes))
train(model, data, TrainConfig(10**6, processes=2, time_limit=600, time_reports=0))
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_the_helper_ends_with_its_parent(how):
    """Killed with -9, the parent cannot stop its helper: the helper notices and ends.
    Interrupted, the parent stops its helper on the way out."""
    before = _leftovers()
    # As from a shell: Ctrl-C at its default, though pytest itself may have started with it
    # ignored (a background job of a non-interactive shell does), and children inherit that.
    proc = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _stop_and_check(proc, how, before)
    finally:  # a failed check must not leave a training running under the tests after it
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _stop_and_check(proc, how, before):
    line = proc.stdout.readline().split()
    assert line and line[0] == "helpers", proc.stderr.read()
    helpers = [int(pid) for pid in line[1:]]
    time.sleep(1)  # both are training
    assert all(_alive(pid) for pid in helpers)
    os.kill(proc.pid, how)
    proc.wait(timeout=120)
    deadline = time.time() + 60
    while any(_alive(pid) for pid in helpers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in helpers)
    assert _leftovers() == before  # they met over TCP: a kill at any moment leaves no file
    if how == signal.SIGINT:
        assert "KeyboardInterrupt" in proc.stderr.read()
