"""nas compare: the fronts of several studies or spaces at equal parameter counts."""

from __future__ import annotations

import argparse

from nas.commands import add_study
from nas.errors import UsageError, integer

HELP = "compare the fronts of several studies/spaces at equal parameter counts"


def add(p) -> None:
    add_study(p, many=True)
    p.add_argument("--at", help="parameter limits to compare at, e.g. 10k,25k,50k (default: a "
                                "quarter, half and all of the largest model)")
    p.add_argument("--out", help="plot file (default compare.png; the table goes beside as .json)")
    p.add_argument("--force", action="store_true", help="replace a .json beside --out that nas did not write")


def run(args) -> int:
    from nas.compare import run_compare

    try:
        limits = [integer(v) for v in args.at.split(",")] if args.at else None
    except argparse.ArgumentTypeError:
        raise UsageError(f"bad --at {args.at!r}: expected parameter counts, e.g. 10k,25k,50k") from None
    text, files = run_compare(args.study_dirs, args.out, limits, args.storage, args.force)
    print("each group's best net within each parameter limit (accuracy @ params; judged on the "
          "search's validation scores until nas train has trained a row's picks)\n" + text)
    print("\nwritten: " + ", ".join(str(p) for p in files))
    return 0
