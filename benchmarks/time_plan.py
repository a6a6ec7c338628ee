"""How to spend a --time search's minutes: the card's command (no size flag: the CPU-sized
--time default) run once per plan variant, one after the other on the same machine, each
in a fresh process with the plan's constants set: the search's share of the time, the
trial slices it is cut into, the CPU default's MAC cap, the final training's augmentation.
The figure is the test accuracy of the delivered (final-trained) model.

    python benchmarks/time_plan.py --dataset mnist \
        --variant share=0.5,slices=12,max_macs=500000 --variant share=0.5,slices=6 \
        --json benchmarks/results/time-plan-cpu-DATE.json          (idle cores: a timing)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import header

# The variant keys and what each sets.
KEYS = {"share": "nas.search.plan.SEARCH_SHARE", "slices": "nas.search.plan.SLICES",
        "longest": "nas.search.plan.LONGEST_SLICE (seconds)",
        "max_macs": "the CPU default's --max-macs (or none)",
        "augment": "the final training's augmentation (nas.datasets.long_augment)",
        "jobs": "--jobs (0: a worker per CPU core, each on one thread)"}

RUN = """
import sys, nas.config, nas.search.plan, nas.datasets
from nas.cli import main
variant = {variant!r}
if "share" in variant: nas.search.plan.SEARCH_SHARE = float(variant["share"])
if "slices" in variant: nas.search.plan.SLICES = int(variant["slices"])
if "longest" in variant: nas.search.plan.LONGEST_SLICE = float(variant["longest"])
if "max_macs" in variant:
    macs = variant["max_macs"]  # "none": a cap no net reaches
    nas.config.CPU_SIZED["max_macs"] = 10**15 if macs == "none" else int(macs)
if "augment" in variant:
    nas.datasets.long_augment = lambda name, chosen=None: chosen or variant["augment"]
sys.exit(main(sys.argv[1:]))
"""


def parse(text: str) -> dict:
    variant = dict(part.split("=", 1) for part in text.split(","))
    unknown = set(variant) - set(KEYS)
    if unknown:
        sys.exit(f"unknown variant key(s) {sorted(unknown)}; valid: {', '.join(KEYS)}")
    return variant


def write(path: str, rows: list[dict]) -> None:
    Path(path).write_text(json.dumps({
        **header("delivered test accuracy of the card's command per --time plan variant"),
        "rows": rows}, indent=2) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--space", default="mobilenet")
    p.add_argument("--variant", action="append", required=True, help="e.g. share=0.5,slices=6")
    p.add_argument("--data-dir")
    p.add_argument("--time", help="pass --time (the CPU default's MAC cap then does not apply)")
    p.add_argument("--budget", default="50000")
    p.add_argument("--json")
    p.add_argument("--runs-dir", help="keep the study folders (and logs) here (default: a temporary folder)")
    args = p.parse_args()
    # Study folders and logs not asked to be kept go with the temporary folder.
    with tempfile.TemporaryDirectory(prefix="time-plan-") as tmp:
        work = Path(args.runs_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = []
        for i, text in enumerate(args.variant):
            variant = parse(text)
            study = f"v{i}"
            cmd = [sys.executable, "-c", RUN.format(variant=variant), "search", "--space", args.space,
                   "--budget", args.budget, "--dataset", args.dataset, "--runs-dir", str(work),
                   "--study", study, "--no-progress"] + (["--data-dir", args.data_dir] if args.data_dir else []) \
                + (["--time", args.time] if args.time else []) \
                + (["--jobs", variant["jobs"]] if "jobs" in variant else [])
            started = time.time()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.time() - started
            (work / f"{study}.log").write_text(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                sys.exit(f"variant {text} failed:\n{proc.stderr[-2000:]}")
            found = sorted((work / study / "final").glob("*.json"))
            summary = next(line for line in proc.stdout.splitlines() if " trials in study " in line)
            if not found:  # on a loaded machine a short --time can end before any trial completes
                rows.append({"variant": variant, "wall": round(wall, 1), "test_acc": None,
                             "trials": summary.strip(), "log": proc.stdout})
                if args.json:
                    write(args.json, rows)
                print(f"{text}: {wall:.0f}s wall, no final training (no trial completed in the "
                      f"search's time); {summary.strip()}", flush=True)
                continue
            final = json.loads(found[0].read_text())
            row = {"variant": variant, "wall": round(wall, 1), "test_acc": final["test_acc"],
                   "params": final["params"], "arch": final["arch"], "epochs": final["epochs"],
                   "final_seconds": final["train_time"], "search_val_acc": final["search_val_acc"],
                   "trials": summary.strip(), "log": proc.stdout}
            rows.append(row)
            if args.json:  # after each variant: a sweep stopped half way keeps what it measured
                write(args.json, rows)
            print(f"{text}: {wall:.0f}s wall, final test {final['test_acc']:.4f} ({final['params']:,} "
                  f"params, {final['epochs']:g} epochs in {final['train_time']:.0f}s, search val "
                  f"{final['search_val_acc']:.4f}); {summary.strip()}", flush=True)


if __name__ == "__main__":
    main()
