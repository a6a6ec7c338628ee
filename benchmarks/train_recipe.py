"""One net, several training recipes, the same time: `nas train STUDY --trial N --time T`
once per recipe (a set of nas train flags), one after the other on the same machine, each
scored on the test split. Separates what the recipe does from which net a search happened
to pick (a `--time` search's slice scores move by about 0.01 from run to run, so two
searches may hand over different nets).

    python benchmarks/train_recipe.py runs/fashion-mnist-10m --trial 11 --time 5m \
        --augments none,flip-crop --json benchmarks/results/train-recipe-cpu-DATE.json
    python benchmarks/train_recipe.py runs/fer2013-2h --trial 40 --time 20m \
        --recipes "--augment flip-crop; --augment affine; --label-smoothing 0; --mixup 0.2"
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from provenance import header


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study_dir")
    p.add_argument("--trial", type=int, required=True)
    p.add_argument("--time", required=True, help="each training's --time, e.g. 5m")
    p.add_argument("--augments", default="none,flip-crop",
                   help="comma-separated --augment values, one recipe each")
    p.add_argument("--recipes", help="semicolon-separated sets of nas train flags, one recipe "
                                     "each (instead of --augments)")
    p.add_argument("--train-args", default="", help="more nas train flags")
    p.add_argument("--json", help="write the figures here (logs beside it)")
    args = p.parse_args()
    logs = Path(args.json).with_suffix("") if args.json else None
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
    recipes = ([r.strip() for r in args.recipes.split(";")] if args.recipes
               else [f"--augment {a}" for a in args.augments.split(",")])
    figures = {**header("one net, nas train --time T per recipe"), "rows": []}
    retrained = Path(args.study_dir) / "retrained"
    for i, recipe in enumerate(recipes, 1):
        before = set(retrained.glob("*.json")) if retrained.is_dir() else set()
        cmd = [sys.executable, "-m", "nas", "train", args.study_dir, "--trial", str(args.trial),
               "--time", args.time, *recipe.split(), *args.train_args.split()]
        started = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.time() - started
        if logs:
            slug = re.sub(r"[^\w.]+", "_", recipe).strip("_") or "defaults"
            (logs / f"trial-{args.trial}-{i}-{slug}.log").write_text(
                f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
        if proc.returncode != 0:
            sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
        new = sorted(set(retrained.glob("*.json")) - before)
        got = json.loads(new[-1].read_text())
        row = {"recipe": recipe, "wall": round(wall, 1), "test_acc": got["test_acc"],
               "val_acc": got["val_acc"], "epochs": got["epochs"], "params": got["params"],
               "arch": got["arch"], "augment": got["augment"],
               "label_smoothing": got["label_smoothing"], "mixup": got.get("mixup", 0.0),
               "teacher": got["teacher"], "command": " ".join(cmd[2:])}
        figures["rows"].append(row)
        print(f"trial {args.trial} {recipe}: {wall:.0f}s wall, {got['epochs']:g} epochs, "
              f"val {got['val_acc']:.4f}, test {got['test_acc']:.4f}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
