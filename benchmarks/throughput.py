"""Issue 3's speed figures, side by side in one run, on any CUDA GPU (or the CPU):

  (a) baseline: CPU float tensors -> DataLoader(batch 128, shuffle) -> .to(device), fp32,
      the loop of Optuna's PyTorch example;
  (b) one nas trial's loop (nas.trainer.train with its defaults for the device: uint8 data
      resident on the device, per-batch normalise, channels_last; on a GPU also bf16
      autocast, batch 512 and the CUDA-graph-captured step);
  (c) --jobs N: N processes each running (b) on the same device at once, aggregate;
  (d) accuracy: the eager fp32 path vs (b), same spec, same epochs, same batch size;
  (e) end to end: `nas search --space mobilenet --budget 50000 --trials T --epochs E
      --jobs J` wall time, best validation accuracy, and per-trial overhead (model build +
      graph capture + Optuna bookkeeping as a share of the trial);
  (f) GPU memory allocated after trial 5 and after trial M of one worker's search.

(a)-(c) train the same 46,770-param MobileNet-space net one epoch on MNIST and score the
validation images, so samples/s is what a trial sees; each prints its ratio to (a).

    python benchmarks/throughput.py                      # everything, full sizes, on CUDA
    python benchmarks/throughput.py --device cpu --limit-train 10000 --jobs '' --search-trials 0

Data: real MNIST from $NAS_DATA_DIR (or --data-dir) when present, else synthetic 1x28x28
(parts (d)-(f) need the real files).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from nas import records
from nas.storage import load_study
from nas.trials import trial_val_acc
from nas.arch import ArchSpec
from nas.budget import count_params
from nas.data import Data, DataError, DataInfo, load
from nas.model import build
from nas.device import on_device
from nas.trainer import TrainConfig, train

SPEC = "c16k3-dw32k3s2-dw48k3-dw64k3s2-dw80k3-dw96k3-dw104k3-dw112k3-gap"


def mnist_shaped(data_dir, limit_train) -> Data:
    try:
        return load("mnist", data_dir, False, limit_train)
    except DataError:
        g = torch.Generator().manual_seed(0)
        n = limit_train or 10_000
        x = torch.randint(0, 256, (n + 2000, 1, 28, 28), dtype=torch.uint8, generator=g)
        y = torch.randint(0, 10, (n + 2000,), generator=g)
        info = DataInfo("random", 1, 28, 28, 10, (0.5,), (0.29,), tuple("0123456789"))
        return Data(info, x[:n], y[:n], x[n:], y[n:], x[n:], y[n:])


def spec() -> ArchSpec:
    return ArchSpec.from_string(SPEC, 1, 28, 28, 10)


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def baseline_epoch(data: Data, device: torch.device, seed: int) -> float:
    """(a): the DataLoader loop, fp32, host-to-device copy per batch."""
    from torch.utils.data import DataLoader, TensorDataset

    mean, std = data.info.mean[0], data.info.std[0]
    to_float = lambda x: (x.float() / 255 - mean) / std  # noqa: E731 -- done once, on the CPU
    train_set = TensorDataset(to_float(data.train_x), data.train_y)
    val_set = TensorDataset(to_float(data.val_x), data.val_y)
    torch.manual_seed(seed)
    model = build(spec()).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    loss_fn = nn.CrossEntropyLoss()
    sync(device)
    start = time.perf_counter()
    model.train()
    for x, y in DataLoader(train_set, batch_size=128, shuffle=True):
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(val_set, batch_size=128):
            correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
    sync(device)
    return time.perf_counter() - start


def nas_epochs(data: Data, device: torch.device, seed: int, epochs: int = 1, **cfg):
    """(b): ``epochs`` epochs of a nas trial's loop; data already resident on the device."""
    torch.manual_seed(seed)
    model = build(spec()).to(device)
    sync(device)
    start = time.perf_counter()
    result = train(model, data, TrainConfig(epochs=epochs, seed=seed, **cfg))
    sync(device)
    return time.perf_counter() - start, result


def _job(device_name, data_dir, limit_train, epochs, barrier, results):
    """(c): one of N concurrent processes: warm up, wait for all, then time ``epochs``."""
    device = torch.device(device_name)
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // barrier.parties))
    data = on_device(mnist_shaped(data_dir, limit_train), device)
    nas_epochs(data, device, 0)  # warm-up: CUDA context, cuDNN plans, allocator
    barrier.wait()
    start = time.time()
    nas_epochs(data, device, 1, epochs)
    results.put((start, time.time(), epochs * len(data.train_x)))


def jobs_aggregate(n: int, args) -> float:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_job, args=(args.device, args.data_dir, args.limit_train,
                                            args.job_epochs, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    rows = [results.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(r[2] for r in rows) / (max(r[1] for r in rows) - min(r[0] for r in rows))


def search_end_to_end(args, out_dir: Path) -> dict:
    """(e): the real command, timed from outside; figures read back from its study."""
    cmd = ["nas", "search", "--space", "mobilenet", "--budget", "50000", "--dataset", "mnist",
           "--trials", str(args.search_trials), "--epochs", str(args.search_epochs),
           "--jobs", str(args.search_jobs), "--runs-dir", str(out_dir), "--study", "bench",
           "--device", args.device.split(":")[0], "--no-progress"]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if args.limit_train:
        cmd += ["--limit-train", str(args.limit_train)]
    if args.search_max_macs:
        cmd += ["--max-macs", args.search_max_macs]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"search failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return {"command": " ".join(cmd), "wall": wall, **study_figures(out_dir / "bench")}


def study_figures(study_dir: Path) -> dict:
    study = load_study(study_dir)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    overhead = []
    for t in done:
        a = records.trial(t)
        wall = (t.datetime_complete - t.datetime_start).total_seconds()
        # Everything but the training and validation epochs themselves.
        overhead.append((wall - (a.train_time - (a.capture_time or 0))) / wall)
    best = max(done, key=trial_val_acc)
    counts = {s: sum(t.state.name == s for t in study.trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
    return {"best_val": trial_val_acc(best), "best_params": records.trial(best).params,
            "best_arch": records.trial(best).arch_str, "counts": counts,
            "overhead_median": statistics.median(overhead), "overhead_max": max(overhead),
            "trial_time_median": statistics.median(
                (t.datetime_complete - t.datetime_start).total_seconds() for t in done),
            "graph_trials": sum(bool(records.trial(t).cuda_graph) for t in done),
            "fallbacks": sorted({records.trial(t).graph_fallback for t in done
                                 if records.trial(t).graph_fallback is not None}),
            "mem": {t.number: records.trial(t).gpu_mem_allocated for t in study.trials}}


def memory_growth(args, out_dir: Path) -> tuple[int, int]:
    """(f): one worker, ``--memory-trials`` short trials; allocated bytes after trial 5 and
    after the last (each trial records it once its model and graph are freed)."""
    cmd = ["nas", "search", "--space", "mobilenet", "--budget", "50000", "--dataset", "mnist",
           "--trials", str(args.memory_trials), "--epochs", "1", "--limit-train", "5000",
           "--pruner", "none", "--runs-dir", str(out_dir), "--study", "mem",
           "--device", args.device, "--no-progress"]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    subprocess.run(cmd, check=True, capture_output=True)
    mem = study_figures(out_dir / "mem")["mem"]
    measured = [mem[k] for k in sorted(mem) if mem[k] is not None]  # infeasible: never built
    return measured[4], measured[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-dir", default=os.environ.get("NAS_DATA_DIR"))
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", default="4,8", help="(c): process counts, e.g. 4,8; '' skips")
    parser.add_argument("--job-epochs", type=int, default=3)
    parser.add_argument("--accuracy-epochs", type=int, default=3, help="(d); 0 skips")
    parser.add_argument("--search-trials", type=int, default=100, help="(e); 0 skips")
    parser.add_argument("--search-epochs", type=int, default=3)
    parser.add_argument("--search-jobs", type=int, default=8)
    parser.add_argument("--search-max-macs", help="(e): --max-macs for the search (default none)")
    parser.add_argument("--memory-trials", type=int, default=200, help="(f), CUDA only; 0 skips")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    data = mnist_shaped(args.data_dir, args.limit_train)
    resident = on_device(data, device)
    n = len(data.train_x)
    figures: dict = {"device": torch.cuda.get_device_name(device) if device.type == "cuda"
                     else f"cpu, {torch.get_num_threads()} threads",
                     "torch": torch.__version__, "train_images": n}
    print(f"model {SPEC}: {count_params(spec()):,} params; {data.info.name} {n:,} train + "
          f"{len(data.val_x):,} val images; device {device} ({figures['device']}); "
          f"torch {torch.__version__}", flush=True)

    nas_epochs(resident, device, 0)  # warm-up (allocator, kernels)
    times = {"a": [], "b": []}
    for r in range(args.repeats):  # interleaved, so drift hits both alike
        times["a"].append(baseline_epoch(data, device, r))
        seconds, result = nas_epochs(resident, device, r)
        times["b"].append(seconds)
    median = {k: statistics.median(v) for k, v in times.items()}
    base = n / median["a"]
    path = (f"batch {result.batch_size}, {'bf16' if result.bf16 else 'fp32'}, "
            + ("CUDA graph" if result.cuda_graph else
               f"eager{f' (graph fallback: {result.graph_fallback})' if result.graph_fallback else ''}"))
    rows = [("(a) DataLoader baseline, fp32, batch 128", n / median["a"]),
            (f"(b) nas trial: {path}", n / median["b"])]
    figures.update(a=n / median["a"], b=n / median["b"], b_path=path,
                   epoch_seconds={k: v for k, v in times.items()})
    for count in [int(j) for j in args.jobs.split(",") if j.strip()]:
        rate = jobs_aggregate(count, args)
        rows.append((f"(c) --jobs {count}: {count} processes on one {device.type}, aggregate", rate))
        figures[f"c{count}"] = rate
    print(f"\n{'training samples/s (one epoch + validation)':<62} {'samples/s':>12} {'vs (a)':>8}")
    for name, rate in rows:
        print(f"{name:<62} {rate:>12,.0f} {rate / base:>7.2f}x")
    print(f"(b) epoch time is {median['b'] / median['a']:.2f}x the baseline's "
          f"(epochs a: {', '.join(f'{t:.2f}' for t in times['a'])} s; "
          f"b: {', '.join(f'{t:.2f}' for t in times['b'])} s)", flush=True)

    if args.accuracy_epochs and data.info.name == "mnist":
        (_, fast), (_, eager) = (
            nas_epochs(resident, device, 0, args.accuracy_epochs, batch_size=result.batch_size, **kw)
            for kw in ({}, {"precision": "fp32", "cuda_graph": False}))
        figures.update(acc_fast=fast.val_acc, acc_eager_fp32=eager.val_acc)
        print(f"\n(d) val accuracy after {args.accuracy_epochs} epochs on {n:,} images, batch "
              f"{result.batch_size}: {path}: {fast.val_acc:.4f}; eager fp32: {eager.val_acc:.4f}; "
              f"difference {100 * (fast.val_acc - eager.val_acc):+.2f} points", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        if args.search_trials and data.info.name == "mnist":
            e2e = search_end_to_end(args, Path(tmp))
            figures["search"] = {k: v for k, v in e2e.items() if k != "mem"}
            print(f"\n(e) {e2e['command']}\n    wall {e2e['wall']:.1f} s; best val_acc "
                  f"{e2e['best_val']:.4f} ({e2e['best_params']:,} params, {e2e['best_arch']}); "
                  f"trials {e2e['counts']}; median trial {e2e['trial_time_median']:.2f} s; "
                  f"overhead (build + capture + Optuna) median {100 * e2e['overhead_median']:.1f}%"
                  f", max {100 * e2e['overhead_max']:.1f}% of a trial; CUDA graph in "
                  f"{e2e['graph_trials']} trials; fallbacks: {e2e['fallbacks'] or 'none'}",
                  flush=True)
        if args.memory_trials and device.type == "cuda" and data.info.name == "mnist":
            after5, after_last = memory_growth(args, Path(tmp))
            figures["memory"] = {"after_trial_5": after5, f"after_trial_{args.memory_trials}": after_last}
            print(f"\n(f) GPU memory allocated after trial 5: {after5 / 2**20:.2f} MiB; after trial "
                  f"{args.memory_trials}: {after_last / 2**20:.2f} MiB", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
