"""Stale batch-norm statistics after a short run, before and after re-estimation, on the
same weights (issue 14.1).

Trains each net exactly as a search trial does (nas.trainer.train, the search's CPU
defaults) for one epoch on the first 5,000 MNIST training images, with re-estimation off,
and scores it on the full validation split twice: with the running statistics as training
left them (what the search measured before), then after nas.evaluate.reestimate_bn on 2,000
training images (what it measures now). The nets are the first four a 4-trial search drew:
    nas search --space mobilenet --budget 50000 --dataset mnist --limit-train 5000 --trials 4 --epochs 1

    python benchmarks/bn_reestimation.py --data-dir ../shared/data --json benchmarks/results/bn-reestimation-cpu.json
"""

import argparse
import json
import time

import torch

from nas.arch import ArchSpec
from nas.budget import count_params
from nas.data import load
from nas.model import build
from nas.evaluate import BN_IMAGES, measure_accuracy, reestimate_bn
from nas.trainer import TrainConfig, train

NETS = [
    "c10k3-ir11k5s2e4se-ir12k3e2-dw23k3-ir24k3e2se-ir34k5s2e6se-gap_d0.127-relu6",
    "c15k3-dw31k3-ir37k5e4se-dw37k3s2se-ir48k5s2e6-gap_d0.029-silu",
    "c24k3-dw35k5se-dw36k5s2se-dw56k3se-ir76k3e4-gap_d0.208-silu",
    "c11k3s2-ir16k3e4se-ir19k3s2e6se-dw25k3-dw31k3s2-ir31k3s2e4se-ir33k3e4-ir34k3e2se-gap_d0.004-hardswish",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit-train", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    data = load("mnist", args.data_dir, limit_train=args.limit_train)
    rows = []
    for i, text in enumerate(NETS):
        spec = ArchSpec.from_string(text, *data.info.input_shape, data.info.num_classes)
        torch.manual_seed(i)  # the search seeds each trial by its number
        model = build(spec)
        t0 = time.perf_counter()
        train(model, data, TrainConfig(epochs=args.epochs, seed=i, bn_images=0))
        stale = measure_accuracy(model, data.val_x, data.val_y, data.info)
        t1 = time.perf_counter()
        reestimate_bn(model, data.train_x[:BN_IMAGES], data.info)
        seconds = time.perf_counter() - t1
        fresh = measure_accuracy(model, data.val_x, data.val_y, data.info)
        rows.append({"arch": text, "params": count_params(spec), "val_acc_stale": stale,
                     "val_acc_reestimated": fresh, "train_seconds": round(t1 - t0, 1),
                     "reestimate_seconds": round(seconds, 2)})
        print(f"{count_params(spec):>7,} params  stale {stale:.4f}  re-estimated {fresh:.4f}  "
              f"(re-estimation {seconds:.2f}s, training {t1 - t0:.0f}s)  {text}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": "python benchmarks/bn_reestimation.py", "limit_train": args.limit_train,
                       "epochs": args.epochs, "bn_images": BN_IMAGES,
                       "torch": torch.__version__, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
