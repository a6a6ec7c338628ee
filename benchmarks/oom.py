"""Issue 5's out-of-memory figure: trials that run out of memory fail with the reason, the
search goes on, and the memory is given back. Runs `nas search` with a --memory-limit and a
batch too large for the wider nets, then prints, per trial, its state and the memory held
after it: PyTorch's allocated GPU memory on CUDA, the process heap (VmData) on CPU.

    python benchmarks/oom.py                  # CUDA when there is one: 0.5 GiB, batch 32768
    python benchmarks/oom.py --device cpu     # 0.15 GiB, batch 1500 (synthetic data)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch

from nas import records
from nas.storage import load_study


def main() -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--memory-limit", type=float, default=None, help="GiB")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    on_gpu = args.device.startswith("cuda")
    limit = args.memory_limit or (0.5 if on_gpu else 0.15)
    batch = args.batch_size or (32768 if on_gpu else 1500)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "nas", "search", "--dataset", "synthetic", "--space", "cnn",
               "--budget", "50000", "--trials", str(args.trials), "--epochs", "1",
               "--batch-size", str(batch), "--memory-limit", str(limit), "--device", args.device,
               "--pruner", "none", "--runs-dir", tmp, "--study", "oom", "--no-progress"]
        start = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.time() - start
        if proc.returncode != 0:
            sys.exit(f"search failed ({proc.returncode}): {proc.stderr}")
        trials = load_study(Path(tmp) / "oom").trials
    key = "gpu_mem_allocated" if on_gpu else "heap_after"
    held = {t.number: records.trial(t) for t in trials}
    memory = {n: getattr(h, key) for n, h in held.items()}
    rows = [{"trial": t.number, "state": t.state.name, "params": held[t.number].params,
             "memory_after_mib": round(memory[t.number] / 2**20, 1) if memory[t.number] is not None else None,
             "reason": (held[t.number].fail_reason or "")[:90]} for t in trials]
    for r in rows:
        print(f"trial {r['trial']:>2} {r['state']:<8} {r['params'] or 0:>7,} params  "
              f"{'GPU allocated' if on_gpu else 'heap'} after: {r['memory_after_mib']} MiB  {r['reason']}")
    oom = [r for r in rows if r["reason"].startswith("out of memory")]
    after = [r["memory_after_mib"] for r in rows if r["memory_after_mib"] is not None]
    figures = {"device": torch.cuda.get_device_name() if on_gpu else "cpu", "memory_limit_gib": limit,
               "batch_size": batch, "trials": len(rows), "out_of_memory": len(oom),
               "completed": sum(r["state"] == optuna.trial.TrialState.COMPLETE.name for r in rows),
               "memory_after_min_mib": min(after), "memory_after_max_mib": max(after),
               "seconds": round(seconds, 1), "rows": rows}
    print(f"\n{len(oom)} of {len(rows)} trials out of memory, search finished in {seconds:.0f} s; "
          f"memory after each trial {min(after)}-{max(after)} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
