"""Equal time, delivered model against hand designs: for each dataset and time T, one
`nas search --time T` (budget 50k), then every hand design of `nas baseline` trained with
`--time T` on the search's study, one after the other on the same machine; the test
accuracy of each delivered model (the search's: the file `nas export --best` writes).

    python benchmarks/equal_time.py --datasets mnist,fashion-mnist --times 10m \
        --json benchmarks/results/equal-time-cpu-DATE.json      (idle cores: it is a timing)

--card runs the 10-minute rows as the card's command runs on a CPU: no size flag at all
(the CPU-sized default, which is --time 10m), instead of --time 10m. --baselines ""
runs the search alone.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import header

HAND_DESIGNS = ("mnist-gap-8k", "mnist-cnn-110k", "mobilenet-48k")


def timed(cmd: list[str], log: Path) -> tuple[float, str]:
    started = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.time() - started
    log.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout


def one_row(args, dataset: str, seconds: int, runs: Path, logs: Path) -> dict:
    from nas.config import duration_text

    study = f"{dataset}-{duration_text(seconds)}"
    nas = [sys.executable, "-m", "nas"]
    sizing = [] if args.card and seconds == 600 else ["--time", str(seconds)]
    search = [*nas, "search", "--space", args.space, "--budget", str(args.budget), "--dataset",
              dataset, *sizing, "--runs-dir", str(runs), "--study", study, "--no-progress",
              *args.search_args.split()]
    if args.data_dir:
        search += ["--data-dir", args.data_dir]
    wall, out = timed(search, logs / f"{study}-search.log")
    study_dir = runs / study
    _, export_out = timed([*nas, "export", str(study_dir), "--best"], logs / f"{study}-export.log")
    sidecar = json.loads(next(study_dir.glob("model-*.json")).read_text())
    row = {"dataset": dataset, "time": seconds, "search": {
        "command": " ".join(search[2:]), "wall": round(wall, 1), "test_acc": sidecar["test_acc"],
        "params": sidecar["params"], "arch": sidecar["arch"], "weights": sidecar["weights_kind"],
        "trials": re.search(r"\n(\d+ trials in study .*)", out).group(1)}}
    print(f"{dataset} {seconds}s search: {wall:.0f}s wall, test {sidecar['test_acc']:.4f} "
          f"({sidecar['params']:,} params, {sidecar['weights_kind']} weights)", flush=True)
    row["baselines"] = []
    for name in filter(None, args.baselines.split(",")):
        cmd = [*nas, "baseline", name, str(study_dir), "--time", str(seconds), *args.baseline_args.split()]
        wall, _ = timed(cmd, logs / f"{study}-{name}.log")
        got = next(r for r in json.loads((study_dir / "baselines.json").read_text())
                   if r["name"] == name and r.get("time_limit") == seconds)
        row["baselines"].append({"name": name, "wall": round(wall, 1), "test_acc": got["test_acc"],
                                 "params": got["params"], "epochs": got["epochs"],
                                 "command": " ".join(cmd[2:])})
        print(f"{dataset} {seconds}s {name}: {wall:.0f}s wall, test {got['test_acc']:.4f} "
              f"({got['params']:,} params, {got['epochs']:g} epochs)", flush=True)
    best = max(b["test_acc"] for b in row["baselines"]) if row["baselines"] else None
    row["beats_every_hand_design"] = best is not None and row["search"]["test_acc"] > best
    return row


def main() -> None:
    from nas.config import duration

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="mnist,fashion-mnist")
    p.add_argument("--times", default="10m", help="comma-separated, e.g. 10m,30m")
    p.add_argument("--space", default="mobilenet")
    p.add_argument("--budget", type=int, default=50_000)
    p.add_argument("--baselines", default=",".join(HAND_DESIGNS))
    p.add_argument("--search-args", default="", help="more nas search flags")
    p.add_argument("--baseline-args", default="", help="more nas baseline flags")
    p.add_argument("--card", action="store_true", help="10-minute rows as the card's command")
    p.add_argument("--data-dir")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--runs-dir", help="keep the study folders here (default: a temporary folder)")
    args = p.parse_args()
    # What is not asked to be kept (study folders, logs) goes with the temporary folder.
    with tempfile.TemporaryDirectory(prefix="equal-time-") as tmp:
        work = Path(tmp)
        logs = Path(args.json).with_suffix("") if args.json else work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        figures = {**header("equal time: nas search --time T against hand designs trained --time T"),
                   "rows": []}
        for dataset in args.datasets.split(","):
            for t in args.times.split(","):
                runs = Path(args.runs_dir) if args.runs_dir else work / "runs"
                figures["rows"].append(one_row(args, dataset, duration(t), runs, logs))
                if args.json:  # after each row: a long run stopped half way keeps what it measured
                    Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
