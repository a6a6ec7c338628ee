"""One net trained for the same time in one process (all its threads, as before nas.spread)
and as the tool now decides (spread over one-thread processes when a second thread adds
little), one after the other on the same machine: `nas train STUDY --trial N --time T`
each time, scored on the test split.

    python benchmarks/spread.py runs/fer2013-25k-2h --trial 36 --time 5m \
        --json benchmarks/results/spread-cpu-DATE-fer-25k.json
    python benchmarks/spread.py STUDY --trial N --time 5m --modes one,spread   # force it

Modes: ``one`` (never spread: one process, all its threads), ``thread`` (one process, one
thread: what the spread's second core is to beat), ``auto`` (the tool's default), ``spread``
(always, where the batch allows).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

from provenance import header

# nas.spread's thresholds each mode sets (auto: none, the tool's own); "threads": torch's.
MODES = {"one": {"SPREAD_BELOW": 0.0},
         "thread": {"SPREAD_BELOW": 0.0, "threads": 1},
         "auto": {},
         "spread": {"SPREAD_BELOW": math.inf, "SHORTEST_STEP": 0.0, "SHORTEST": 0.0}}
RUN = """
import sys, torch, nas.spread
from nas.cli import main
settings = {settings!r}
if "threads" in settings:
    torch.set_num_threads(int(settings.pop("threads")))
for name, value in settings.items():
    setattr(nas.spread, name, float(value))
sys.exit(main(sys.argv[1:]))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study_dir")
    p.add_argument("--trial", type=int, required=True)
    p.add_argument("--time", required=True, help="each training's --time, e.g. 5m")
    p.add_argument("--modes", default="one,auto")
    p.add_argument("--train-args", default="", help="more nas train flags")
    p.add_argument("--json", help="write the figures here (logs beside it)")
    args = p.parse_args()
    modes = args.modes.split(",")
    if unknown := set(modes) - set(MODES):
        sys.exit(f"unknown mode(s) {sorted(unknown)}; valid: {', '.join(MODES)}")
    logs = Path(args.json).with_suffix("") if args.json else None
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
    figures = {**header("one net, nas train --time T, in one process vs spread over processes"),
               "rows": []}
    retrained = Path(args.study_dir) / "retrained"
    for mode in modes:
        before = set(retrained.glob("*.json")) if retrained.is_dir() else set()
        cmd = [sys.executable, "-c", RUN.format(settings={k: str(v) for k, v in MODES[mode].items()}), "train", args.study_dir,
               "--trial", str(args.trial), "--time", args.time, *args.train_args.split()]
        started = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.time() - started
        if logs:
            (logs / f"trial-{args.trial}-{mode}.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            sys.exit(f"mode {mode} failed:\n{proc.stderr[-2000:]}")
        new = sorted(set(retrained.glob("*.json")) - before)
        held = json.loads(new[-1].read_text())
        row = {"mode": mode, "processes": held.get("processes", 1), "epochs": held["epochs"],
               "val_acc": held["val_acc"], "test_acc": held["test_acc"],
               "train_time": held["train_time"], "wall": round(wall, 1)}
        figures["rows"].append(row)
        print(f"{mode:>6}: {row['processes']} process(es), {row['epochs']:7.2f} epochs, val "
              f"{row['val_acc']:.4f}, test {row['test_acc']:.4f}, {row['wall']:.0f}s", flush=True)
    one = next((r for r in figures["rows"] if r["mode"] == "one"), None)
    if one:
        for row in figures["rows"]:
            row["epochs_vs_one"] = round(row["epochs"] / one["epochs"], 2) if one["epochs"] else math.nan
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
