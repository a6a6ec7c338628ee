"""How well does a search's trial score predict what a net is worth? (issue 14.4)

Draws N distinct architectures of one space at one budget (Optuna's random sampler, so the
sample is not biased towards what some sampler liked), then for each:
  - the search's score: trained exactly as a search trial is (nas.search.objective's
    trial_train_config: its epochs, data, batch, LR and reports), scored on the whole
    validation split, twice on the same weights: with batch norm's running statistics as
    training left them ("stale", what the search measured before issue 14) and after
    re-estimating them ("re-estimated", what it measures now);
  - the reference: a full retrain from scratch with `nas train`'s recipe (label smoothing
    0.1, the dataset's augmentation, warm-up + cosine) on every training image, scored on
    the test set.
Reports Spearman and Kendall rank correlation between each score and the reference, and the
regret of picking by it: reference accuracy of the best net in the sample minus that of the
net the score ranks first.

    python benchmarks/fidelity.py --data-dir ../shared/data             # CPU-sized: hours on 2 cores
    python benchmarks/fidelity.py --data-dir DATA --device cuda --json benchmarks/results/fidelity-gpu.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import optuna
import torch
from scipy import stats

import search_spaces
from nas.budget import check
from nas.config import SearchConfig
from nas.data import load
from nas.device import on_device, resolve_device
from nas.model import build
from nas.search.objective import trial_train_config
from nas.evaluate import BN_IMAGES, measure_accuracy, reestimate_bn
from nas.trainer import TrainConfig, train


def draw(cfg: SearchConfig, info, n: int, seed: int) -> list:
    """``n`` distinct feasible specs of ``cfg.space``, drawn at random."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    space, constraints, specs = search_spaces.get_space(cfg.space), cfg.constraints(), {}
    for _ in range(50 * n):
        spec = space(study.ask(), info, constraints)
        if check(spec, constraints).feasible:
            specs.setdefault(spec.to_string(), spec)
        if len(specs) == n:
            break
    return list(specs.values())


def ranks(score: list[float], reference: list[float]) -> dict:
    best = max(range(len(score)), key=lambda i: score[i])
    return {"spearman": stats.spearmanr(score, reference).statistic,
            "kendall": stats.kendalltau(score, reference).statistic,
            "regret": max(reference) - reference[best], "picked": best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--space", default="cnn")
    parser.add_argument("--budget", type=int, default=8000)
    parser.add_argument("--fill", type=float, default=0.8)
    parser.add_argument("--nets", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="of the draw")
    parser.add_argument("--limit-train", type=int, default=10_000, help="the search's training images")
    parser.add_argument("--epochs", type=int, default=2, help="the search's epochs per trial")
    parser.add_argument("--retrain-epochs", type=int, default=5, help="the reference retrain's")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", help="write every net's figures here")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    cfg = SearchConfig(space=args.space, budget=args.budget, dataset=args.dataset,
                       data_dir=args.data_dir, limit_train=args.limit_train, epochs=args.epochs,
                       fill=args.fill, device=args.device)
    device = resolve_device(args.device)
    short = on_device(load(args.dataset, args.data_dir, limit_train=args.limit_train), device)
    full = on_device(load(args.dataset, args.data_dir), device)
    specs = draw(cfg, short.info, args.nets, args.seed)
    print(f"{len(specs)} {args.space} nets under {args.budget:,} params on {args.dataset}, {device}: "
          f"search score = {args.epochs} epochs on {len(short.train_x):,} images; reference = "
          f"{args.retrain_epochs} epochs on {len(full.train_x):,}", flush=True)
    rows = []
    for number, spec in enumerate(specs):
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed + number)  # as the search seeds trial `number`
        model = build(spec).to(device)
        result = train(model, short, replace(trial_train_config(cfg, number), bn_images=0))
        stale = measure_accuracy(model, short.val_x, short.val_y, short.info)
        reestimate_bn(model, short.train_x[:BN_IMAGES], short.info)
        fresh = measure_accuracy(model, short.val_x, short.val_y, short.info)
        t1 = time.perf_counter()
        torch.manual_seed(0)
        model = build(spec).to(device)
        train(model, full, TrainConfig(args.retrain_epochs, label_smoothing=0.1))  # nas train's recipe
        reference = measure_accuracy(model, full.test_x, full.test_y, full.info)
        verdict = check(spec, cfg.constraints())
        rows.append({"arch": spec.to_string(), "params": verdict.params, "macs": verdict.macs,
                     "score_stale": stale, "score_reestimated": fresh, "score_history": result.history,
                     "reference_test_acc": reference, "search_seconds": round(t1 - t0, 1),
                     "retrain_seconds": round(time.perf_counter() - t1, 1)})
        print(f"  {number:>2} {rows[-1]['params']:>6,} params  score stale {stale:.4f} / "
              f"re-estimated {fresh:.4f}  reference {reference:.4f}  "
              f"({t1 - t0:.0f}s + {time.perf_counter() - t1:.0f}s)  {spec.to_string()}", flush=True)
    reference = [r["reference_test_acc"] for r in rows]
    summary = {name: ranks([r[f"score_{name}"] for r in rows], reference)
               for name in ("stale", "reestimated")}
    for name, s in summary.items():
        print(f"{name:>12}: Spearman {s['spearman']:.3f}  Kendall {s['kendall']:.3f}  regret "
              f"{100 * s['regret']:.2f} points (picks net {s['picked']})")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "args": vars(args), "device": str(device) if device.type == "cpu"
            else torch.cuda.get_device_name(device), "torch": torch.__version__,
            "summary": summary, "nets": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
