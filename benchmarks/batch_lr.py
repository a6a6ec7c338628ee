"""Validation accuracy of one fixed net after a few epochs at several (batch, peak LR)
pairs: the evidence behind the GPU default (batch 512, LR 0.005 x sqrt(batch / 128)).
Accuracy does not depend on the device, so this runs anywhere (full MNIST, 3 epochs: about
1.5 min per pair on 2 CPU cores at batch 512).

    python benchmarks/batch_lr.py [--data-dir DIR] [--epochs 3] [--pairs 128:0.005,512:0.01]
"""

import argparse
import time

import torch

from nas.arch import ArchSpec
from nas.data import load
from nas.model import build
from nas.trainer import TrainConfig, train

SPEC = "c16k3-dw32k3s2-dw48k3-dw64k3s2-dw80k3-dw96k3-dw104k3-dw112k3-gap"

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--data-dir")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--pairs", default="128:0.005,512:0.005,512:0.01,512:0.02")
parser.add_argument("--device", default="cpu")
args = parser.parse_args()
data = load("mnist", args.data_dir)
spec = ArchSpec.from_string(SPEC, 1, 28, 28, 10)
print(f"{SPEC} on {len(data.train_x):,} MNIST images, {args.epochs} epochs, {args.device}")
for pair in args.pairs.split(","):
    batch, lr = int(pair.split(":")[0]), float(pair.split(":")[1])
    torch.manual_seed(0)
    start = time.perf_counter()
    result = train(build(spec), data, TrainConfig(epochs=args.epochs, batch_size=batch, lr=lr))
    print(f"batch {batch:>5}  lr {lr:<7g} val_acc per epoch "
          f"{' '.join(f'{a:.4f}' for a in result.history)}  ({time.perf_counter() - start:.0f} s)",
          flush=True)
