"""nas pareto: print and write the Pareto front of a study."""

from __future__ import annotations

import sys
from pathlib import Path

from nas.commands import add_study
from nas.errors import UsageError

HELP = "print and write the Pareto front of a study"


def add(p) -> None:
    add_study(p)
    p.add_argument("--data-dir", help="dataset folder, to score the front on the test set")
    p.add_argument("--x", choices=("params", "flash", "ram"), default="params",
                   help="the front's size: params (default), or the int8 model's bytes (flash) "
                        "or activation peak (ram) of a microcontroller")


def run(args) -> int:
    from nas import final, pareto, records
    from nas.data import load_recorded
    from nas.storage import load_study
    from nas.study_folder import read_baselines
    from nas.trials import completed_trials

    study = load_study(args.study_dir, args.storage)
    if not completed_trials(study):
        raise UsageError(f"study {study.study_name!r} has no completed trial yet")
    data = load_recorded(records.study(study).data, args.data_dir)
    front, files = pareto.write_front(study, Path(args.study_dir), data, "cpu", args.x)
    print(pareto.table(front))
    if held := records.final(study):
        print(final.summary(held))
    if baselines := read_baselines(args.study_dir):
        print("\n" + pareto.baseline_table(baselines))
    if data is None:
        print("(test accuracy not measured: dataset not found; pass --data-dir)", file=sys.stderr)
    print("\nwritten: " + ", ".join(str(p) for p in files))
    return 0
