"""Build a torch module from an ArchSpec. The one builder for every space.

Module names match the row names of ``nas.budget.layers`` (blocks.<i>.conv/dw/pw/expand/
project, head.hidden, head.classifier), so per-layer counts can be compared one to one.
Forward passes are TorchScript-friendly (no data-dependent Python control flow).
"""

from __future__ import annotations

import torch
from torch import nn

from nas.arch import ArchSpec, Block, head_features, walk
from nas.arch import se_channels

_ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU, "hardswish": nn.Hardswish}


class ConvBN(nn.Sequential):
    """conv (+ BN) (+ activation); the conv has a bias only when there is no BN."""

    def __init__(self, cin, cout, k, stride, groups, bn, act, padding=None):
        padding = k // 2 if padding is None else padding
        layers = [nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=not bn)]
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        if act is not None:
            layers.append(_ACTIVATIONS[act]())
        super().__init__(*layers)


class ConvBlock(nn.Module):
    def __init__(self, cin: int, b: Block, bn: bool, act: str):
        super().__init__()
        self.conv = ConvBN(cin, b.out, b.k, b.s, 1, bn, act, 0 if b.valid else None)

    def forward(self, x):
        return self.conv(x)


class SqueezeExcitation(nn.Module):
    """Gate each channel by a function of all channels' global averages (Hu et al.)."""

    def __init__(self, channels: int):
        super().__init__()
        squeeze = se_channels(channels)
        self.reduce = nn.Linear(channels, squeeze)
        self.expand = nn.Linear(squeeze, channels)

    def forward(self, x):
        # Pooled as the head pools (a mean over dims 2 and 3 becomes a transposed copy of
        # the whole map in an int8 microcontroller model).
        s = torch.relu(self.reduce(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)))
        return x * torch.sigmoid(self.expand(s))[:, :, None, None]


class DepthwiseSeparable(nn.Module):
    def __init__(self, cin: int, b: Block, bn: bool, act: str):
        super().__init__()
        self.dw = ConvBN(cin, cin, b.k, b.s, cin, bn, act)
        self.se = SqueezeExcitation(cin) if b.se else nn.Identity()
        self.pw = ConvBN(cin, b.out, 1, 1, 1, bn, act)

    def forward(self, x):
        return self.pw(self.se(self.dw(x)))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, depthwise kxk, linear 1x1 project, skip when shapes match."""

    def __init__(self, cin: int, b: Block, bn: bool, act: str):
        super().__init__()
        hidden = cin * b.e
        self.expand = ConvBN(cin, hidden, 1, 1, 1, bn, act) if b.e != 1 else nn.Identity()
        self.dw = ConvBN(hidden, hidden, b.k, b.s, hidden, bn, act)
        self.se = SqueezeExcitation(hidden) if b.se else nn.Identity()
        self.project = ConvBN(hidden, b.out, 1, 1, 1, bn, None)
        self.residual = b.s == 1 and cin == b.out

    def forward(self, x):
        y = self.project(self.se(self.dw(self.expand(x))))
        if self.residual:
            y = y + x
        return y


class ResidualBlock(nn.Module):
    """ResNet basic block with a parameter-free shortcut ("option A" of He et al.): the
    input is subsampled by the stride and zero-padded to the new width, so the skip costs
    no parameters, which matters at a 50k budget."""

    def __init__(self, cin: int, b: Block, bn: bool, act: str):
        super().__init__()
        self.conv1 = ConvBN(cin, b.out, b.k, b.s, 1, bn, act)
        self.conv2 = ConvBN(b.out, b.out, b.k, 1, 1, bn, None)
        self.act = _ACTIVATIONS[act]()
        self.stride = b.s
        self.extra_channels = b.out - cin

    def forward(self, x):
        # Every s-th pixel as a 1x1 max-pool, and no op where there is nothing to do: a
        # slice and an empty pad become extra ops and tensors in an int8 microcontroller
        # model (nas.activations counts the ops written here).
        y = self.conv2(self.conv1(x))
        shortcut = x
        if self.stride > 1:
            shortcut = nn.functional.max_pool2d(x, 1, self.stride)
        if self.extra_channels > 0:  # zero channels at the end, padded channels-last
            channels_last = nn.functional.pad(shortcut.permute(0, 2, 3, 1), [0, self.extra_channels])
            shortcut = channels_last.permute(0, 3, 1, 2)
        return self.act(y + shortcut)


class DenseLayer(nn.Module):
    """DenseNet-style: new channels from a kxk conv, concatenated to the input's."""

    def __init__(self, cin: int, b: Block, bn: bool, act: str):
        super().__init__()
        self.conv = ConvBN(cin, b.out, b.k, 1, 1, bn, act)

    def forward(self, x):
        return torch.cat([x, self.conv(x)], 1)


_BLOCKS = {"conv": ConvBlock, "dw": DepthwiseSeparable, "ir": InvertedResidual,
           "res": ResidualBlock, "dense": DenseLayer}


class ClassifierHead(nn.Module):
    """The module that ``arch.Head`` describes: pool or flatten, optional hidden layer, linear."""

    def __init__(self, spec: ArchSpec):
        super().__init__()
        head = spec.head
        self.pool = nn.AdaptiveAvgPool2d(1) if head.kind == "gap" else nn.Identity()
        features = head_features(spec)  # from the same walk that counts parameters
        self.dropout = nn.Dropout(head.dropout)
        if head.hidden:
            self.hidden = nn.Sequential(nn.Linear(features, head.hidden), _ACTIVATIONS[spec.act](),
                                        nn.Dropout(head.dropout))
            features = head.hidden
        else:
            self.hidden = nn.Identity()
        self.classifier = nn.Linear(features, spec.num_classes)

    def forward(self, x):
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(self.hidden(self.dropout(x)))


class Net(nn.Module):
    def __init__(self, spec: ArchSpec):
        super().__init__()
        blocks = []
        for step in walk(spec):  # the walk nas.budget counts with: input widths in one place
            block = _BLOCKS[step.block.op](step.in_ch, step.block, spec.bn, spec.act)
            blocks.append(nn.Sequential(block, nn.MaxPool2d(2)) if step.block.pool else block)
        self.blocks = nn.Sequential(*blocks)
        self.head = ClassifierHead(spec)

    def forward(self, x):
        return self.head(self.blocks(x))


def build(spec: ArchSpec) -> Net:
    return Net(spec)


# Test-time augmentation of an exported model: "flip" averages the logits of each image and
# its mirror (two passes, twice the MACs, no more params); only for nets trained on mirrored
# images (nas.export.check_mirrored).
TTA = {"none": 1, "flip": 2}  # each choice: the net's passes per image


class Normalized(nn.Module):
    """Takes float images in [0, 1], shaped (N, C, H, W); applies the dataset's normalisation
    and, with ``tta="flip"``, averages the net's logits over the image and its mirror."""

    def __init__(self, net: nn.Module, mean, std, tta: str = "none"):
        super().__init__()
        self.net = net
        self.flip_average = tta == "flip"
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        x = (x - self.mean) / self.std
        logits = self.net(x)
        if self.flip_average:
            logits = (logits + self.net(x.flip(-1))) / 2
        return logits


MAX_MEMBERS = 8  # nets in one ensemble: what a file a sidecar describes may hold


class Averaged(nn.Module):
    """An ensemble as one model: the mean of its members' logits. Each member takes the
    [0, 1] images itself (a Normalized), so nets of different studies keep their own
    normalisation and test-time flips."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x):
        logits = []
        for member in self.members:
            logits.append(member(x))
        return torch.stack(logits).mean(0)


def state_shapes(make_model) -> dict[str, tuple[int, ...]]:
    """The state dict's shapes of ``make_model()``, built on the meta device: no memory is
    taken, so a spec can be checked against a file before it is built for real."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in make_model().state_dict().items()}


def shape_difference(expected: dict, held: dict) -> str | None:
    """None when two {name: shape} maps agree; else how many tensors each has and the first
    name that differs."""
    if held == expected:
        return None
    wrong = sorted(set(expected) ^ set(held)) or [k for k in expected if expected[k] != held[k]]
    return f"{len(held)} tensors where {len(expected)} belong; first difference: {wrong[0]!r}"


def state_bytes(model: nn.Module) -> bytes:
    """torch.save of the state dict, through memory: torch's own file writer aborts the
    process on a full disk, where a Python write raises (nas.files turns that into a line)."""
    import io

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()
