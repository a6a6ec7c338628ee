"""Training throughput of one ~47k-param MobileNet-space net on MNIST-shaped data, two ways,
side by side in one run:

  (a) baseline: CPU float tensors -> DataLoader(batch 128, shuffle) -> .to(device), fp32,
      the loop of Optuna's PyTorch example;
  (b) nas:      nas.train.train (uint8 data resident on the device, per-batch normalise,
      channels_last), the path every trial takes.

Both train one epoch on the same images and then score the same validation images, so the
ratio is the time per epoch a user sees. Prints samples/s and (b)/(a).

    python benchmarks/throughput.py [--device cpu|cuda] [--limit-train N] [--repeats R]

Data: real MNIST from $NAS_DATA_DIR (or --data-dir) when present, else synthetic 1x28x28.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from nas.arch import ArchSpec
from nas.budget import count_params
from nas.data import Data, DataError, DataInfo, load
from nas.model import build
from nas.train import TrainConfig, train

SPEC = "c16k3-dw32k3s2-dw48k3-dw64k3s2-dw80k3-dw96k3-dw104k3-dw112k3-gap"


def mnist_shaped(args) -> Data:
    try:
        return load("mnist", args.data_dir, False, args.limit_train)
    except DataError:
        g = torch.Generator().manual_seed(0)
        n = args.limit_train or 10_000
        x = torch.randint(0, 256, (n + 2000, 1, 28, 28), dtype=torch.uint8, generator=g)
        y = torch.randint(0, 10, (n + 2000,), generator=g)
        info = DataInfo("random", 1, 28, 28, 10, (0.5,), (0.29,), tuple("0123456789"))
        return Data(info, x[:n], y[:n], x[n:], y[n:], x[n:], y[n:])


def baseline_epoch(spec: ArchSpec, data: Data, device: torch.device, seed: int) -> float:
    """(a): the DataLoader loop, fp32, host-to-device copy per batch."""
    from torch.utils.data import DataLoader, TensorDataset

    mean, std = data.info.mean[0], data.info.std[0]
    to_float = lambda x: (x.float() / 255 - mean) / std  # noqa: E731 -- done once, on the CPU
    train_set = TensorDataset(to_float(data.train_x), data.train_y)
    val_set = TensorDataset(to_float(data.val_x), data.val_y)
    torch.manual_seed(seed)
    model = build(spec).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    model.train()
    for x, y in DataLoader(train_set, batch_size=128, shuffle=True):
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(val_set, batch_size=128):
            correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def nas_epoch(spec: ArchSpec, data: Data, device: torch.device, seed: int) -> float:
    """(b): one epoch of a nas trial; data already resident on the device."""
    torch.manual_seed(seed)
    model = build(spec).to(device)
    start = time.perf_counter()
    train(model, data, TrainConfig(epochs=1, batch_size=128, seed=seed))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-dir")
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    data = mnist_shaped(args)
    resident = Data(data.info, *(t.to(device) for t in (data.train_x, data.train_y, data.val_x,
                                                         data.val_y, data.test_x, data.test_y)))
    spec = ArchSpec.from_string(SPEC, 1, 28, 28, 10)
    n = len(data.train_x)
    print(f"model {SPEC}: {count_params(spec):,} params; {data.info.name} {n:,} train + "
          f"{len(data.val_x):,} val images; device {device} "
          f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'})"
          f"; torch {torch.__version__}")
    nas_epoch(spec, resident, device, 0)  # warm-up (allocator, kernels)
    times = {"a": [], "b": []}
    for r in range(args.repeats):  # interleaved, so drift hits both alike
        times["a"].append(baseline_epoch(spec, data, device, r))
        times["b"].append(nas_epoch(spec, resident, device, r))
    median = {k: statistics.median(v) for k, v in times.items()}
    for key, name in (("a", "(a) DataLoader baseline, fp32"), ("b", "(b) nas trial")):
        print(f"{name:<32} epoch {median[key]:7.2f} s  {n / median[key]:>10,.0f} train samples/s "
              f"(median of {args.repeats}: {', '.join(f'{t:.2f}' for t in times[key])})")
    print(f"(b)/(a) speed: {median['a'] / median['b']:.2f}x; (b) time per epoch is "
          f"{median['b'] / median['a']:.2f}x the baseline's")


if __name__ == "__main__":
    main()
