"""nas search: search architectures under a parameter budget (nas.search.run)."""

from __future__ import annotations

import argparse
import sys

from nas.config import SearchConfig, from_settings
from nas.flags import add_flags

HELP = "search architectures under a parameter budget"
NOT_SETTINGS = ("func", "command", "debug", "config", "no_progress", "full", "started")


def add(p) -> None:
    p.argument_default = argparse.SUPPRESS
    p.add_argument("--config", help="TOML study preset (see studies/); flags override it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    groups = add_flags(p, SearchConfig, titles={"training": "training (each trial)"})
    groups["search"].add_argument(
        "--full", action="store_true", help="full size (20 trials x 3 epochs on every image) "
        "without a GPU too; there, a search given no size runs about 10 minutes")


def search_config(args):
    """The search's settings, and the note saying how it was sized to a CPU (or None)."""
    given = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS}
    return from_settings(given, getattr(args, "config", None), getattr(args, "full", False))


def run(args) -> int:
    from nas import final, pareto, urls
    from nas.storage import is_own_storage
    from nas.search.recovery import STOP_SIGNALS, sigterm_stops, stop_signal
    from nas.search.run import run_search

    cfg, sized_note = search_config(args)
    if sized_note:
        print(sized_note, flush=True)
    try:
        with sigterm_stops():
            result = run_search(cfg, progress=not getattr(args, "no_progress", False),
                                started=args.started)
    except KeyboardInterrupt as exc:
        signum = stop_signal(exc)
        print(f"nas: interrupted by {STOP_SIGNALS[signum]}; completed trials are kept in "
              f"{cfg.study_dir} (re-run the same command to resume"
              + (", and to finish the final training)" if cfg.time else ")"), file=sys.stderr)
        return 128 + signum  # what a shell reports for a process ended by that signal
    c = result.counts
    total = sum(c.values())
    print(f"\n{total} trials in study {cfg.study_name!r}: {c['complete']} complete, "
          f"{c['pruned']} pruned, {c['infeasible']} infeasible "
          f"({100 * c['infeasible'] / max(total, 1):.0f}%), {c['failed']} failed"
          + (f", {c['interrupted']} interrupted (retried first next run)" if c["interrupted"] else "")
          + f"; {result.seconds:.1f}s")
    if result.front:
        print("\nPareto front (params vs validation accuracy; test accuracy of front only):")
        print(pareto.table(result.front))
        if result.final is not None:
            print(final.summary(result.final))
        print("\nwritten: " + ", ".join(str(p) for p in result.files)
              + (f", {final.final_path(cfg.study_dir, result.final['trial'])}" if result.final else ""))
        storage = ("" if is_own_storage(cfg.storage_url, cfg.study_dir)
                   else f" --storage {urls.shown(cfg.storage_url)!r}")
        print(f"next: nas export {cfg.study_dir} --best{storage}")
    return 0
