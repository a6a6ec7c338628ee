"""The int8 counts from the spec (nas.budget's flash bytes, nas.activations' peak RAM)
against what the runtimes report for the same nets: nets drawn from every search space
(random sampler, one seed per net), each converted by `nas export --int8`'s two paths
(nas.int8.quantize, run once in TFLite Micro's interpreter; nas.qdq.quantize, the QDQ
.onnx run once in onnxruntime) with untrained weights, their batch-norm statistics taken
from one batch of random images (the sizes do not depend on the weights, but an all-zero
folded bias is left out of an ONNX file). Prints one row per net and writes them as JSON.

    python benchmarks/int8_counts.py --nets 10 --json benchmarks/results/int8-counts.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import optuna
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import search_spaces  # noqa: E402
from nas import files, int8, qdq  # noqa: E402
from nas.activations import peak_bytes  # noqa: E402
from nas.budget import Constraints, check, count_int8_bytes  # noqa: E402
from nas.data import DataInfo  # noqa: E402
from nas.errors import UsageError  # noqa: E402
from nas.model import Normalized, build  # noqa: E402


def drawn_specs(space: str, nets: int, info, constraints) -> list:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    specs = []
    while len(specs) < nets:
        trial = study.ask()
        spec = search_spaces.get_space(space)(trial, info, constraints)
        if check(spec, constraints).feasible:
            specs.append(spec)
        study.tell(trial, 0.0)
    return specs


def with_batch_statistics(net: torch.nn.Module, images: torch.Tensor) -> torch.nn.Module:
    """``net`` in eval mode, its batch norms holding the statistics of ``images``."""
    for layer in net.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.momentum = 1.0
    with torch.no_grad():
        net.train()(images)
    return net.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=6, help="nets per space")
    parser.add_argument("--budget", type=int, default=20_000)
    parser.add_argument("--spaces", default=",".join(search_spaces.space_names()))
    parser.add_argument("--json")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    info = DataInfo("mnist", 1, 28, 28, 10, (0.1307,), (0.3081,), tuple("0123456789"))
    constraints = Constraints(args.budget)
    rows = []
    for space in args.spaces.split(","):
        for spec in drawn_specs(space, args.nets, info, constraints):
            torch.manual_seed(0)
            net = with_batch_statistics(build(spec), torch.randn(8, *info.input_shape))
            try:
                model = int8.quantize(net, torch.randn(8, *info.input_shape))
            except UsageError as exc:
                rows.append({"space": space, "arch": spec.to_string(), "error": str(exc)})
                print(f"{space:<10} not converted: {exc}  {spec.to_string()}", flush=True)
                continue
            runtime = int8.MicroRuntime(model)
            runtime.predict(torch.randn(1, *info.input_shape))
            arena = runtime.arena()
            onnx_model = qdq.quantize(Normalized(net, info.mean, info.std).eval(),
                                      torch.rand(8, *info.input_shape))
            qdq.OnnxRuntime(onnx_model).predict(torch.rand(1, *info.input_shape))
            row = {"space": space, "arch": spec.to_string(),
                   "flash_counted": count_int8_bytes(spec), "flash_in_file": int8.stored_bytes(model),
                   "flash_in_onnx": qdq.stored_bytes(onnx_model), "onnx_file_bytes": len(onnx_model),
                   "ram_counted": peak_bytes(spec), "arena_activations": arena.activations,
                   "arena_total": arena.total, "file_bytes": len(model)}
            rows.append(row)
            print(f"{space:<10} flash {row['flash_counted']:>7,} file {row['flash_in_file']:>7,} "
                  f"onnx {row['flash_in_onnx']:>7,} | "
                  f"RAM {row['ram_counted']:>7,} arena {row['arena_activations']:>7,} "
                  f"(total {row['arena_total']:>7,})  {row['arch']}", flush=True)
    ran = [r for r in rows if "error" not in r]
    same_flash = sum(r["flash_counted"] == r["flash_in_file"] for r in ran)
    same_onnx = sum(r["flash_counted"] == r["flash_in_onnx"] for r in ran)
    same_ram = sum(r["ram_counted"] == r["arena_activations"] for r in ran)
    print(f"{len(rows) - len(ran)} of {len(rows)} nets not converted; of the rest, flash equal on "
          f"{same_flash}/{len(ran)} (.tflite), {same_onnx}/{len(ran)} (QDQ .onnx), RAM equal on "
          f"{same_ram}/{len(ran)}")
    if args.json:
        files.write_json(Path(args.json), {"budget": args.budget, "rows": rows}, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
