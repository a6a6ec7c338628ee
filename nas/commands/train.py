"""nas train: retrain a found architecture from scratch, for longer, optionally distilling."""

from __future__ import annotations

from pathlib import Path

from nas.commands import add_pick, add_study
from nas.errors import UsageError
from nas.flags import add_flags

HELP = "retrain a found architecture from scratch, for longer (optionally distilling from a teacher)"


def add(p) -> None:
    from nas.train import RetrainConfig

    add_study(p)
    add_pick(p)
    add_flags(p, RetrainConfig)


def run(args) -> int:
    from nas.train import RetrainConfig, retrain

    if args.best == (args.trial is not None):
        raise UsageError("nas train needs exactly one of --best or --trial N")
    result = retrain(RetrainConfig.from_args(args, drop=("best",)))
    print(f"\ntrial {result['trial']} retrained for {result['epochs']:g} epochs: val_acc "
          f"{result['val_acc']:.4f} (search: {result['search_val_acc']:.4f}), test_acc "
          f"{result['test_acc']:.4f}, {result['params']:,} params, {result['train_time']:.0f}s"
          + (f" on {result['processes']} processes" if result["processes"] > 1 else ""))
    print(f"weights: {result['weights']} (figures beside it, .json)"
          + (f"; earlier retrains keep theirs ({Path(result['earlier']).name}, ...)" if result["earlier"] else ""))
    print(f"export:  nas export {args.study_dir} --trial {result['trial']} --weights {result['weights']}")
    return 0
