"""nas count: params and MACs per layer of a spec, a TorchScript file or a torchvision model."""

from __future__ import annotations

from nas.errors import integer

HELP = "params and MACs per layer of a spec, TorchScript file or torchvision model"


def add(p) -> None:
    p.add_argument("model", help="a spec string (c32k3s2-dw64k3-gap), a .pt TorchScript file, "
                                 "or a torchvision model name (resnet34, alexnet, ...)")
    p.add_argument("--input", help="input CxHxW (default 1x28x28 for specs, 3x224x224 for "
                                   "torchvision models, the sidecar's for exported files)")
    p.add_argument("--classes", type=integer, help="output classes (default 10 for specs, 1000 "
                                                   "for torchvision models)")
    p.add_argument("--trust-code", action="store_true", help="count a TorchScript file nas did "
                   "not export by running its code (a child process, stopped after 60 s)")


def run(args) -> int:
    from nas.count import count, parse_shape, table

    print(table(count(args.model, parse_shape(args.input) if args.input else None, args.classes,
                      args.trust_code)))
    return 0
