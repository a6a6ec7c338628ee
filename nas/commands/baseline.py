"""nas baseline: a reference model trained on a study's data, drawn on its Pareto plot."""

from __future__ import annotations

from pathlib import Path

from nas.commands import add_study
from nas.flags import add_flags

HELP = "train a reference model on a study's data; its point goes on the study's Pareto plot"


def add(p) -> None:
    from nas.baseline import BaselineConfig

    p.add_argument("name", help="torchvision model (resnet18, resnet34, mobilenet_v2, ...), a hand "
                                "design (mnist-cnn-110k, mnist-cnn-1.2m, mobilenet-48k, mnist-gap-8k) or a spec")
    add_study(p)
    add_flags(p, BaselineConfig)


def run(args) -> int:
    from nas import pareto
    from nas.study_folder import read_baselines
    from nas.baseline import BaselineConfig, run_baseline

    row = run_baseline(BaselineConfig.from_args(args))
    print(f"\n{row['name']}: {row['params']:,} params, val_acc {row['val_acc']:.4f}, test_acc "
          f"{row['test_acc']:.4f} after {row['epochs']:g} epochs ({row['train_time']:.0f}s); "
          f"kept in {Path(args.study_dir) / 'baselines.json'} and drawn on pareto.png\n")
    print(pareto.baseline_table(read_baselines(args.study_dir)))
    return 0
