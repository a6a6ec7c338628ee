"""Issue 6's quality benchmark: at equal search time, how good a params-vs-accuracy front do
random search, default TPE and `--objective pareto` find?

For each dataset, configuration and seed, one `nas search --space S --budget B --timeout T`
(the same device and wall time for all), then from its front (chosen on validation
accuracy, scored on the test set):
  - hypervolume of the (params, test accuracy) points, reference point (budget, 0.0),
    as a share of budget x 1.0 (nas.pareto.hypervolume);
  - best: test accuracy of the trial with the best validation accuracy (all are <= budget);
  - small: front points below half the budget;
  - trials: how many trials the time bought.
Prints mean and spread (sample standard deviation, n = seeds) per configuration, then each
model-based configuration against its random control seed by seed: a sampler's first 10
trials are random draws from the same seed as its control's, so both share their start-up
front and the per-seed difference shows what the model added, without the seed-to-seed
spread of that shared start.

    python benchmarks/quality.py                                  # GPU: full data, 3 epochs, 10 min each
    python benchmarks/quality.py --datasets mnist --seconds 200 --limit-train 5000 --epochs 2 \
        --max-macs 2000000                                        # a CPU-sized stand-in
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from nas.pareto import hypervolume

CONFIGS = {
    "random": ["--sampler", "random"],
    "tpe": [],  # the default: TPE, maximise validation accuracy, median pruner
    "tpe-grouped": ["--sampler", "tpe-grouped"],  # multivariate TPE over parameter groups
    "pareto": ["--objective", "pareto"],  # multi-objective TPE over (params, accuracy)
    # The matched control for it: the same objective and rule, random draws. Default TPE
    # maximises accuracy alone, so its front's hypervolume is not what it aims at.
    "pareto-random": ["--objective", "pareto", "--sampler", "random"],
}

# Each model-based configuration's matched control: the same objective and stopping rule,
# random draws from the same seed.
CONTROLS = {"tpe": "random", "tpe-grouped": "random", "pareto": "pareto-random"}


def run_one(args, dataset: str, config: str, seed: int, runs: Path) -> dict:
    study = f"{dataset}-{config}-{seed}"
    cmd = [sys.executable, "-m", "nas", "search", "--space", args.space, "--budget", str(args.budget),
           "--dataset", dataset, "--epochs", str(args.epochs), "--trials", "100000",
           "--timeout", str(args.seconds), "--seed", str(seed), "--runs-dir", str(runs),
           "--study", study, "--no-progress", *CONFIGS[config]]
    if args.limit_train:
        cmd += ["--limit-train", str(args.limit_train)]
    if args.max_macs:
        cmd += ["--max-macs", str(args.max_macs)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    front = json.loads((runs / study / "pareto.json").read_text())
    trials = int(re.search(r"(\d+) trials in study", proc.stdout).group(1))
    best = max(front, key=lambda r: r["val_acc"])
    return {"dataset": dataset, "config": config, "seed": seed, "seconds": round(time.time() - start, 1),
            "trials": trials,
            "hypervolume": hypervolume([(r["params"], r["test_acc"]) for r in front], args.budget),
            "best_test_acc": best["test_acc"], "best_params": best["params"],
            "small": sum(r["params"] <= args.budget / 2 for r in front), "front": front}


def summary(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def paired(results: list[dict], datasets: list[str], configs: list[str]) -> list[str]:
    """Hypervolume minus the control's, seed by seed, for each configuration whose control ran."""
    lines = []
    for dataset in datasets:
        by_seed = {(r["config"], r["seed"]): r["hypervolume"] for r in results if r["dataset"] == dataset}
        for config in configs:
            control = CONTROLS.get(config)
            if control not in configs:
                continue
            diffs = [by_seed[(config, seed)] - by_seed[(control, seed)]
                     for (name, seed) in by_seed if name == config and (control, seed) in by_seed]
            if not lines:
                lines.append("\nhypervolume minus its control's, seed by seed (same start-up draws):")
            wins = sum(d > 0 for d in diffs)
            lines.append(f"{dataset:<14} {config} - {control}: {summary(diffs)} "
                         f"({' '.join(f'{d:+.4f}' for d in diffs)}; ahead on {wins} of {len(diffs)} seeds)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--configs", default="random,tpe,pareto")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--space", default="mobilenet")
    parser.add_argument("--budget", type=int, default=50_000)
    parser.add_argument("--seconds", type=int, default=600, help="search time of each run")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--max-macs", type=int, default=None,
                        help="same MAC cap for every configuration (keeps CPU trials short)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", help="also write every run's figures to this file")
    args = parser.parse_args()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"device: {device}; {args.space} under {args.budget:,} params; {args.seconds} s per search, "
          f"{args.epochs} epochs per trial, limit-train {args.limit_train or 'none'}, "
          f"max-macs {args.max_macs or 'none'}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets.split(","):
            for seed in map(int, args.seeds.split(",")):
                for config in args.configs.split(","):
                    r = run_one(args, dataset, config, seed, Path(tmp))
                    results.append(r)
                    print(f"  {dataset:<14} {config:<13} seed {seed}: hypervolume {r['hypervolume']:.4f}, "
                          f"best test {r['best_test_acc']:.4f} ({r['best_params']:,} params), "
                          f"{r['small']} front points <= budget/2, {r['trials']} trials", flush=True)
    print(f"\n{'dataset':<14} {'config':<13} {'hypervolume':>17} {'best test acc':>17} "
          f"{'points <= B/2':>14} {'trials':>8}")
    for dataset in args.datasets.split(","):
        for config in args.configs.split(","):
            rows = [r for r in results if r["dataset"] == dataset and r["config"] == config]
            print(f"{dataset:<14} {config:<13} {summary([r['hypervolume'] for r in rows]):>17} "
                  f"{summary([r['best_test_acc'] for r in rows]):>17} "
                  f"{statistics.mean(r['small'] for r in rows):>14.1f} "
                  f"{statistics.mean(r['trials'] for r in rows):>8.1f}")
    for line in paired(results, args.datasets.split(","), args.configs.split(",")):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device, "args": vars(args),
                                               "runs": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
