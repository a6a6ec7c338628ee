"""Which family wins at equal size, on trained nets: one search over several spaces (the trials
take the families by turn), then `nas compare --at LIMITS` names each family's best net within
each limit, each of those is trained with one recipe (`nas train --trial N --time T`), and
`nas compare` is run again, now judging every row on the trained nets' test accuracy.

    python benchmarks/families.py --dataset fer2013 --space cnn,mobilenet --budget 50000 \
        --time 1h --at 12k,25k,50k --train-time 15m --data-dir ../shared/data \
        --runs-dir ../runs-families --json benchmarks/results/families-cpu-DATE.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from provenance import header

NAS = [sys.executable, "-m", "nas"]


def step(cmd: list[str], log: Path) -> str:
    """Run one nas command, its output kept in ``log``; stop the benchmark if it fails."""
    started = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    print(f"{time.time() - started:6.0f}s  {' '.join(cmd[2:])}", flush=True)
    return proc.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fer2013")
    p.add_argument("--space", default="cnn,mobilenet")
    p.add_argument("--budget", default="50000")
    p.add_argument("--time", required=True, help="the search's --time, e.g. 1h")
    p.add_argument("--at", default="12k,25k,50k", help="nas compare's parameter limits")
    p.add_argument("--train-time", required=True, help="each pick's nas train --time, e.g. 15m")
    p.add_argument("--search-args", default="", help="more nas search flags")
    p.add_argument("--train-args", default="", help="more nas train flags (the one recipe)")
    p.add_argument("--data-dir")
    p.add_argument("--runs-dir", required=True, help="where the study folder is kept")
    p.add_argument("--study", default="families")
    p.add_argument("--json", required=True, help="write the figures here (logs beside it)")
    args = p.parse_args()
    logs = Path(args.json).with_suffix("")
    logs.mkdir(parents=True, exist_ok=True)
    study_dir = Path(args.runs_dir) / args.study
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    started = time.time()
    step([*NAS, "search", "--space", args.space, "--budget", args.budget, "--dataset",
          args.dataset, "--time", args.time, "--runs-dir", args.runs_dir, "--study", args.study,
          "--no-progress", *data, *args.search_args.split()], logs / "search.log")
    searched = time.time() - started
    compare = [*NAS, "compare", str(study_dir), "--at", args.at, "--out", str(logs / "compare.png")]
    step(compare, logs / "compare-search-scores.log")
    before = json.loads((logs / "compare.json").read_text())
    picks = sorted({best["trial"] for row in before for best in row["best"].values() if best})
    for trial in picks:
        step([*NAS, "train", str(study_dir), "--trial", str(trial), "--time", args.train_time,
              *args.train_args.split()], logs / f"train-trial-{trial}.log")
    text = step(compare, logs / "compare-trained.log")
    after = json.loads((logs / "compare.json").read_text())
    figures = {**header("families at equal size: one search over several spaces, each family's "
                        "pick per limit trained with one recipe, nas compare on the trained nets"),
               "search_seconds": round(searched, 1),
               "total_seconds": round(time.time() - started, 1), "trained_trials": picks,
               "on_search_scores": before, "on_trained_nets": after}
    Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
