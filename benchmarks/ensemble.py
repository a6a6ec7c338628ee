"""Ensembles as a user gets them: each study's delivered net exported alone and the studies'
nets exported as one file (`nas export A --best --with B ...`), each once without and once
with test-time flips, every figure read from the sidecar nas export wrote (test accuracy of
the file as written, params and MACs as counted).

    python benchmarks/ensemble.py runs-a/fer2013-25k-2h runs-b/fer2013-25k-2h \
        --data-dir ../shared/data --out-dir benchmarks/results/ensemble-DATE \
        --json benchmarks/results/ensemble-DATE.json
    python benchmarks/ensemble.py runs-a/... runs-b/... runs-c/... --pairs ...   # every two of them
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
from pathlib import Path

from provenance import header

from nas.cli import main as nas


def export(study_dirs: list[str], tta: str, out: Path, data_dir: str | None) -> dict:
    """`nas export` of the first study's --best net, with the others' (--with): its sidecar."""
    args = ["export", study_dirs[0], "--best", "--tta", tta, "--out", str(out)]
    for other in study_dirs[1:]:
        args += ["--with", other]
    if data_dir:
        args += ["--data-dir", data_dir]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = nas(args)
    if code != 0:
        raise SystemExit(f"nas {' '.join(args)} failed ({code})")
    print(printed.getvalue().strip(), flush=True)
    return json.loads(out.with_suffix(".json").read_text())


def row(what: str, tta: str, meta: dict) -> dict:
    return {"model": what, "tta": tta, "params": meta["params"], "macs": meta["macs"],
            "test_acc": meta["test_acc"],
            "arch": [part["arch"] for part in meta.get("members", [meta])]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study_dirs", nargs="+", help="two or more study folders of one dataset")
    p.add_argument("--data-dir")
    p.add_argument("--out-dir", required=True, help="where the exported files and sidecars go")
    p.add_argument("--pairs", action="store_true", help="an ensemble of every two of the studies, "
                   "instead of one of all of them")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {**header("nas export of each study's net alone and of their ensemble (--with), "
                        "without and with --tta flip; PrivateTest accuracy from the sidecars"),
               "rows": []}
    for tta in ("none", "flip"):
        for i, study_dir in enumerate(args.study_dirs):
            meta = export([study_dir], tta, out_dir / f"net{i}-{tta}.pt", args.data_dir)
            figures["rows"].append(row(study_dir, tta, meta))
        groups = (list(itertools.combinations(range(len(args.study_dirs)), 2)) if args.pairs
                  else [tuple(range(len(args.study_dirs)))])
        for group in groups:
            dirs = [args.study_dirs[i] for i in group]
            name = "ensemble-" + "-".join(map(str, group)) if args.pairs else "ensemble"
            meta = export(dirs, tta, out_dir / f"{name}-{tta}.pt", args.data_dir)
            figures["rows"].append(row(" + ".join(dirs), tta, meta))
    for r in figures["rows"]:
        print(f"{r['model']} (--tta {r['tta']}): {r['params']:,} params, {r['macs']:,} MACs, "
              f"test {r['test_acc']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
