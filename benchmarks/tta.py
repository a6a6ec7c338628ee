"""Test-time flips, as a user gets them: each set of trained weights exported twice with
`nas export` (`--tta none`, `--tta flip`), both files read back as nas reads an exported
model, and scored on the validation and test splits. Weights trained on the validation
split too (a --time search's final training) have no honest validation figure: shown as such.

    python benchmarks/tta.py runs/fer2013-25k-2h/retrained/trial-36.pt runs/fer2013-25k-2h/final/trial-36-final.pt \
        --data-dir ../shared/data --json benchmarks/results/tta-cpu-DATE.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from provenance import header

from nas import records
from nas.data import load_recorded
from nas.exported import load_model
from nas.storage import load_study
from nas.train import trial_of_weights


@torch.inference_mode()
def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    correct = sum((model(x[i:i + 500].float() / 255).argmax(1) == y[i:i + 500]).sum().item()
                  for i in range(0, len(x), 500))
    return correct / len(x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="+", help="weights files in a study's retrained/, final/ or weights/")
    p.add_argument("--data-dir")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    figures = {**header("nas export --tta none vs flip, scored on val and test"), "rows": []}
    for given in args.weights:
        weights = Path(given).resolve()
        study_dir = weights.parent.parent
        trial = trial_of_weights(weights)
        data = load_recorded(records.study(load_study(study_dir)).data, args.data_dir)
        row = {"weights": given}
        with tempfile.TemporaryDirectory() as tmp:
            for tta in ("none", "flip"):
                out = Path(tmp) / f"{tta}.pt"
                cmd = [sys.executable, "-m", "nas", "export", str(study_dir), "--trial", str(trial),
                       "--weights", str(weights), "--tta", tta, "--out", str(out)]
                if args.data_dir:
                    cmd += ["--data-dir", args.data_dir]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
                meta, model = load_model(out)
                trained_on_val = meta["weights_kind"] == "final"
                row.update({"arch": meta["arch"], "params": meta["params"],
                            f"macs_{tta}": meta["macs"], f"test_{tta}": meta["test_acc"],
                            f"val_{tta}": None if trained_on_val
                            else round(accuracy(model, data.val_x, data.val_y), 4)})
        figures["rows"].append(row)
        val = (f"val {row['val_none']:.4f} -> {row['val_flip']:.4f}, " if row["val_none"] is not None
               else "val n/a (trained on it), ")
        print(f"{given}: {row['arch']} {row['params']:,} params: {val}test "
              f"{row['test_none']:.4f} -> {row['test_flip']:.4f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
