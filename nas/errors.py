"""Errors the user can fix. The CLI prints their message as one line and exits with 2."""

import argparse


class UsageError(Exception):
    """Bad input: the message says what was wrong, the value given, and what is valid."""


class DataError(UsageError):
    """Missing or malformed data; the message says what was looked for and how to fix it."""


# What an input shape CxHxW may be, from a flag or a file (a sidecar): past this it is a
# typo or a planted file, and running a model on it would take all memory.
MAX_INPUT_CHANNELS, MAX_INPUT_SIDE = 64, 4096


def check_input_shape(shape, where: str) -> tuple[int, int, int]:
    """(C, H, W) as ints within the limits above; else a UsageError naming ``where``."""
    try:
        c, h, w = (v if isinstance(v, int) and not isinstance(v, bool) else None for v in shape)
    except (TypeError, ValueError):
        c = h = w = None
    if None in (c, h, w) or not (1 <= c <= MAX_INPUT_CHANNELS and 1 <= h <= MAX_INPUT_SIDE
                                 and 1 <= w <= MAX_INPUT_SIDE):
        raise UsageError(f"{where}: input shape {shape!r} is not CxHxW with C from 1 to "
                         f"{MAX_INPUT_CHANNELS} and H, W from 1 to {MAX_INPUT_SIDE}")
    return c, h, w


def check_choice(name: str, value, valid) -> None:
    """None (not given) or one of ``valid``; else a UsageError naming them."""
    if value is not None and value not in valid:
        raise UsageError(f"unknown --{name.replace('_', '-')} {value!r}; valid: {', '.join(valid)}")


def integer(text: str) -> int:
    """argparse's type for integers, also written 50_000 or 50k / 1.2M."""
    cleaned = text.replace("_", "").replace(",", "").strip()
    scale = {"k": 1000, "K": 1000, "m": 1_000_000, "M": 1_000_000}.get(cleaned[-1:], 1)
    try:
        value = float(cleaned[:-1]) * scale if scale != 1 else int(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value != int(value):
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    return int(value)
