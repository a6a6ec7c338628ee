"""Architectures as plain data.

An ``ArchSpec`` is everything needed to build, count and export a network: input shape,
class count, a tuple of ``Block``s and a ``Head``. It holds only ints, floats, bools and
strings, round-trips through JSON (``to_dict``/``from_dict``) and has a short block-string
form, e.g. ``c16k3s2-dw32k3-ir32k5e4-gap_d0.1-hardswish``.

Block strings (defaults are omitted when writing and assumed when reading):

    c32k3s2p    plain conv, 32 out channels, kernel 3, stride 2, then 2x2 max-pool ("p");
                "v" (c32k3v) pads nothing ("valid"), as Keras-style hand designs do
    dw64k3s1    depthwise-separable: depthwise kxk (stride s) + pointwise 1x1 to 64
    ir24k5s2e4  inverted residual: 1x1 expand by e, depthwise kxk, 1x1 project to 24
    ...se       dw and ir blocks: squeeze-excitation on the depthwise output (dw64k3se)
    r32k3s2     residual basic block: two kxk convs (the first with stride s) plus a
                parameter-free shortcut (subsampled, zero-padded to 32 channels)
    d16k3p      dense layer: a kxk conv to 16 new channels, concatenated to its input
    gap / flat  head: global average pool, or flatten; "_fc128" adds a hidden dense layer,
                "_d0.2" dropout before each linear layer
    relu6 ...   activation (default relu); "nobn" turns batch norm off

``walk(spec)`` is the one walk over a spec's blocks (input channels and map size of each):
counting (``nas.budget``) and building (``nas.model``) both follow it, so they cannot drift.

This module never imports torch: counting and feasibility work on the spec alone.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace

from nas.errors import UsageError

BLOCK_OPS = ("conv", "dw", "ir", "res", "dense")
HEAD_KINDS = ("gap", "flat")
ACTIVATIONS = ("relu", "relu6", "silu", "hardswish")
_OP_PREFIX = {"conv": "c", "dw": "dw", "ir": "ir", "res": "r", "dense": "d"}


class SpecError(UsageError, ValueError):
    """An architecture spec or block string that cannot describe a network."""


@dataclass(frozen=True)
class Block:
    op: str  # one of BLOCK_OPS
    out: int  # output channels
    k: int = 3  # kernel size (odd; "same" padding)
    s: int = 1  # stride of the (depthwise) kxk conv
    e: int = 1  # expansion ratio, inverted residual only
    pool: bool = False  # 2x2 max-pool after the block
    valid: bool = False  # plain conv only: no padding, the map shrinks by k - 1
    se: bool = False  # dw / ir: squeeze-excitation on the depthwise output

    def to_string(self) -> str:
        text = f"{_OP_PREFIX[self.op]}{self.out}k{self.k}"
        if self.s != 1:
            text += f"s{self.s}"
        if self.op == "ir":
            text += f"e{self.e}"
        if self.valid:
            text += "v"
        if self.se:
            text += "se"
        if self.pool:
            text += "p"
        return text


@dataclass(frozen=True)
class Head:
    kind: str = "gap"  # one of HEAD_KINDS
    hidden: int = 0  # units of a hidden dense layer; 0 = none
    dropout: float = 0.0

    def to_string(self) -> str:
        text = self.kind
        if self.hidden:
            text += f"_fc{self.hidden}"
        if self.dropout:
            text += f"_d{self.dropout:g}"
        return text


@dataclass(frozen=True)
class ArchSpec:
    in_channels: int
    height: int
    width: int
    num_classes: int
    blocks: tuple[Block, ...]
    head: Head = field(default_factory=Head)
    act: str = "relu"
    bn: bool = True

    def __post_init__(self) -> None:
        # Frozen dataclass: normalise lists from JSON into tuples so specs hash and compare.
        object.__setattr__(self, "blocks", tuple(self.blocks))
        _validate(self)

    # --- JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = asdict(self)
        data["blocks"] = [asdict(b) for b in self.blocks]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ArchSpec":
        data = dict(data)
        try:
            blocks = tuple(Block(**b) for b in data.pop("blocks"))
            head = Head(**data.pop("head", {}))
            return cls(blocks=blocks, head=head, **data)
        except (TypeError, KeyError) as exc:
            raise SpecError(f"not an architecture spec: {exc}") from None

    # --- block string -------------------------------------------------------------------
    def to_string(self) -> str:
        tokens = [b.to_string() for b in self.blocks] + [self.head.to_string()]
        if self.act != "relu":
            tokens.append(self.act)
        if not self.bn:
            tokens.append("nobn")
        return "-".join(tokens)

    @classmethod
    def from_string(cls, text: str, in_channels: int, height: int, width: int,
                    num_classes: int) -> "ArchSpec":
        blocks, head, act, bn = [], None, "relu", True
        for token in text.strip().split("-"):
            if token in ACTIVATIONS:
                act = token
            elif token == "nobn":
                bn = False
            elif token.split("_")[0] in HEAD_KINDS:
                head = _parse_head(token)
            else:
                blocks.append(_parse_block(token))
        if head is None:
            raise SpecError(f"block string {text!r} has no head; end it with one of {HEAD_KINDS}")
        return cls(in_channels, height, width, num_classes, tuple(blocks), head, act, bn)

    def with_blocks(self, blocks) -> "ArchSpec":
        return replace(self, blocks=tuple(blocks))


_BLOCK_RE = re.compile(r"^(c|dw|ir|r|d)(\d+)k(\d+)(?:s(\d+))?(?:e(\d+))?(v?)(se)?(p?)$")


def _parse_block(token: str) -> Block:
    match = _BLOCK_RE.match(token)
    if not match:
        raise SpecError(f"bad block {token!r}; expected e.g. c32k3s2p, dw64k3, ir24k5s2e4")
    prefix, out, k, s, e, valid, se, pool = match.groups()
    op = {prefix: op for op, prefix in _OP_PREFIX.items()}[prefix]
    if e and op != "ir":
        raise SpecError(f"bad block {token!r}: only ir blocks take an expansion ratio (e)")
    if valid and op != "conv":
        raise SpecError(f"bad block {token!r}: only plain conv blocks (c) take v (no padding)")
    return Block(op, int(out), int(k), int(s or 1), int(e or (6 if op == "ir" else 1)),
                 bool(pool), bool(valid), bool(se))


def _parse_head(token: str) -> Head:
    kind, *options = token.split("_")
    hidden, dropout = 0, 0.0
    for option in options:
        if re.fullmatch(r"fc\d+", option):
            hidden = int(option[2:])
        elif re.fullmatch(r"d(0(\.\d+)?|1(\.0*)?)", option):
            dropout = float(option[1:])
        else:
            raise SpecError(f"bad head option {option!r} in {token!r}; expected fcN or dP")
    return Head(kind, hidden, dropout)


def _validate(spec: ArchSpec) -> None:
    for name in ("in_channels", "height", "width", "num_classes"):
        value = getattr(spec, name)
        if not isinstance(value, int) or value < 1:
            raise SpecError(f"{name} must be a positive int, got {value!r}")
    if spec.act not in ACTIVATIONS:
        raise SpecError(f"unknown activation {spec.act!r}; valid: {', '.join(ACTIVATIONS)}")
    if spec.head.kind not in HEAD_KINDS:
        raise SpecError(f"unknown head {spec.head.kind!r}; valid: {', '.join(HEAD_KINDS)}")
    if spec.head.hidden < 0 or not 0.0 <= spec.head.dropout < 1.0:
        raise SpecError(f"bad head {spec.head}: hidden >= 0 and 0 <= dropout < 1 required")
    for block in spec.blocks:
        if block.op not in BLOCK_OPS:
            raise SpecError(f"unknown block op {block.op!r}; valid: {', '.join(BLOCK_OPS)}")
        if block.out < 1 or block.k < 1 or block.k % 2 == 0 or block.s < 1 or block.e < 1:
            raise SpecError(f"bad block {block}: out >= 1, odd k, s >= 1, e >= 1 required")
        if block.valid and block.op != "conv":
            raise SpecError(f"bad block {block}: only plain conv blocks take valid padding")
        if block.se and block.op not in ("dw", "ir"):
            raise SpecError(f"bad block {block}: only dw and ir blocks take squeeze-excitation")
        if block.op == "dense" and block.s != 1:
            raise SpecError(f"bad block {block}: a dense layer concatenates its input, so it "
                            f"cannot stride; downsample with p (max-pool) instead")


# --- the one walk over a spec's blocks ----------------------------------------------------

def conv_out(size: int, k: int, stride: int, valid: bool = False) -> int:
    """Side of a kxk conv's output: odd k with "same" padding keeps (size - 1) // s + 1;
    without padding the map first shrinks by k - 1."""
    return (size - (k - 1 if valid else 0) - 1) // stride + 1


@dataclass(frozen=True)
class Step:
    """One block where it sits in the net."""
    index: int
    block: Block
    in_ch: int  # channels entering the block
    in_hw: tuple[int, int]  # map entering the block
    conv_hw: tuple[int, int]  # map after the block's (strided) kxk conv, before its pool
    out_ch: int  # channels leaving it (a dense layer adds its new ones to its input's)
    out_hw: tuple[int, int]  # map leaving it, after the pool


def walk(spec: ArchSpec) -> list[Step]:
    """Each block's input and output shape, in order; SpecError for a block that cannot sit
    where it is (a valid conv larger than its map, a pool of a 1-pixel map, a residual
    block that narrows)."""
    steps, c, h, w = [], spec.in_channels, spec.height, spec.width
    for i, b in enumerate(spec.blocks):
        if b.valid and min(h, w) - (b.k - 1) < 1:
            raise SpecError(f"blocks.{i}.conv: a {b.k}x{b.k} conv without padding does not fit "
                            f"a {h}x{w} map")
        if b.op == "res" and b.out < c:
            raise SpecError(f"block {i} ({b.to_string()}): a residual block cannot narrow "
                            f"{c} channels to {b.out}")
        stride = 1 if b.op == "dense" else b.s
        conv_hw = (conv_out(h, b.k, stride, b.valid), conv_out(w, b.k, stride, b.valid))
        out_hw = conv_hw
        if b.pool:
            if min(conv_hw) < 2:
                raise SpecError(f"block {i} ({b.to_string()}) max-pools a "
                                f"{conv_hw[0]}x{conv_hw[1]} map; the {spec.height}x{spec.width} "
                                f"input is downsampled too often")
            out_hw = (conv_hw[0] // 2, conv_hw[1] // 2)
        out_ch = b.out + (c if b.op == "dense" else 0)
        steps.append(Step(i, b, c, (h, w), conv_hw, out_ch, out_hw))
        c, (h, w) = out_ch, out_hw
    return steps


def se_channels(channels: int) -> int:
    """Width of a squeeze-excitation bottleneck: a quarter, at least 4."""
    return max(4, channels // 4)


def feature_shape(spec: ArchSpec) -> tuple[int, int, int]:
    """(channels, height, width) of the feature map that enters the head."""
    steps = walk(spec)
    if not steps:
        return spec.in_channels, spec.height, spec.width
    return steps[-1].out_ch, *steps[-1].out_hw


def head_features(spec: ArchSpec) -> int:
    """Inputs of the head's first linear layer: channels after pooling, or the flat map."""
    c, h, w = feature_shape(spec)
    return c if spec.head.kind == "gap" else c * h * w
