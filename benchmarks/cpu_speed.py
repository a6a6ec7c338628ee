"""Training speed of given architectures on this machine's CPU, in images per second: how
far MACs are from CPU time. One training step (forward, backward, AdamW) on a batch of 128
random images (1x28x28, or --input), channels-last as `nas.trainer` runs it, repeated for SECONDS after
three warm-up steps; speeds are per thread count.

    python benchmarks/cpu_speed.py --threads 1,2 SPEC [SPEC ...]
    python benchmarks/cpu_speed.py --threads 1,2 --json OUT.json   # the specs below
    python benchmarks/cpu_speed.py --input 1x48x48 --classes 7 --side-by-side 2 SPEC ...

``--side-by-side N`` adds the sum of N one-thread processes training the same net at once:
what a machine's cores buy as N trials side by side (``nas search --jobs N``) rather than as
threads of one training.

Used for issue 14's Fashion-MNIST row: depthwise convs are slow per MAC on a CPU, plain ones
fast, so under a speed cap the `cnn` space can afford many more MACs than `mobilenet`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from nas.arch import ArchSpec
from nas.budget import count_macs, count_params
from nas.model import build

SPECS = (
    # issue 14's CPU Fashion-MNIST picks and the GPU one (mobilenet space)
    "c49k3s2-dw70k5s2se-dw72k3s2-ir76k3s2e2se-gap_d0.051-relu6",
    "c14k3s2-ir21k3e4se-ir30k3s2e6se-ir58k3s2e2se-dw89k3s2-dw107k5-gap_d0.017-silu",
    "c20k3-ir32k5s2e6-ir78k5s2e6-dw88k5s2-gap_d0.048-relu6",
    # plain convs (cnn space) of about the same size
    "c16k3-c19k5p-r24k3p-c29k5-flat_d0.073-hardswish",
    "c24k3-c32k3p-c48k3-c48k3p-gap",
    "c16k3-c32k3p-c64k3-c64k3p-gap",
)
SECONDS = float(os.environ.get("CPU_SPEED_SECONDS", 4.0))


def images_per_second(spec: ArchSpec, threads: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(spec).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randn(128, spec.in_channels, spec.height, spec.width).to(memory_format=torch.channels_last)
    y = torch.randint(0, spec.num_classes, (128,))

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < SECONDS:
        step()
        steps += 1
    return 128 * steps / (time.perf_counter() - start)


def side_by_side(spec_text: str, shape: tuple, classes: int, processes: int) -> float:
    """Images/s of ``processes`` one-thread trainings of one net at once, summed."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return sum(pool.starmap(one_thread, [(spec_text, shape, classes)] * processes))


def one_thread(spec_text: str, shape: tuple, classes: int) -> float:
    return images_per_second(ArchSpec.from_string(spec_text, *shape, classes), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=SPECS)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--input", default="1x28x28", help="CxHxW of the images")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--side-by-side", type=int, default=0,
                        help="also N one-thread processes at once, summed (0: not measured)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    shape = tuple(int(n) for n in args.input.split("x"))
    together = [f"{args.side_by_side} x 1 thr"] if args.side_by_side else []
    print(f"{'params':>7} {'MACs':>11}  " + "  ".join(f"{t} thr img/s" for t in threads)
          + "".join(f"  {label} img/s" for label in together) + "  arch")
    rows = []
    for text in args.specs:
        spec = ArchSpec.from_string(text, *shape, args.classes)
        speeds = {str(t): round(images_per_second(spec, t)) for t in threads}
        for label in together:
            speeds[label] = round(side_by_side(text, shape, args.classes, args.side_by_side))
        params, macs = count_params(spec), count_macs(spec)
        rows.append({"arch": text, "params": params, "macs": macs, "images_per_s": speeds})
        print(f"{params:>7,} {macs:>11,}  "
              + "  ".join(f"{speed:>11,}" for speed in speeds.values()) + f"  {text}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"torch": torch.__version__, "input": args.input,
                                               "classes": args.classes, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
