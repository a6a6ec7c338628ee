"""A study's trials as JSON, best first: number, state, search score, params, MACs, the
epochs its slice or epochs bought, architecture; and a --time search's runoff looks and
final training, when it has them. For reading what a search rewarded (e.g.
which kind of net its short trials favour), also of a search that was stopped.

    python benchmarks/study_trials.py runs/fer2013-2h --json benchmarks/results/NAME.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> None:
    from nas import records
    from nas.storage import load_study
    from nas.trials import trial_val_acc

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study_dir")
    p.add_argument("--json", required=True)
    args = p.parse_args()
    study = load_study(args.study_dir)
    rows = []
    for t in study.trials:
        a = records.trial(t)
        if a.arch_str is None:
            continue
        rows.append({"trial": t.number, "state": t.state.name.lower(), "space": a.space,
                     "score": trial_val_acc(t), "params": a.params, "macs": a.macs,
                     "epochs": a.epochs, "time_slice": a.time_slice,
                     "infeasible": a.infeasible is not None, "arch": a.arch_str})
    rows.sort(key=lambda r: (r["state"] != "complete", -(r["score"] or 0)))
    figures = {"what": "a study's trials, best first", "study": study.study_name,
               "script": "benchmarks/study_trials.py " + " ".join(sys.argv[1:]),
               "date": time.strftime("%Y-%m-%d"), "runoff": records.runoff(study),
               "final": records.final(study), "trials": rows}
    Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    for r in rows[:15]:
        print(f"{r['trial']:>4} {r['state']:<9} {r['score'] or 0:.4f} {r['params']:>7,} "
              f"{r['macs'] / 1e6:6.1f}M  {r['arch']}")
    for look in figures["runoff"]:
        print(f"runoff: trial {look['trial']} val_acc {look['val_acc']:.4f} after {look['epochs']} "
              f"epochs (search score {look['search_val_acc']:.4f})")


if __name__ == "__main__":
    main()
