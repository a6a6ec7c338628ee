"""Byte sizes as flags and presets write them: "64KB", "16KiB", "4500B", "1MB" or bytes.
KB and MB are decimal (1,000 and 1,000,000 bytes), KiB and MiB binary (1,024 and 1,048,576),
as microcontroller datasheets mostly mean KiB when they print KB: say KiB for those."""

from __future__ import annotations

import argparse
import re

Bytes = int  # a flag or preset may write "64KB", "16KiB" or a number of bytes (byte_size)
BYTE_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000 ** 2, "mib": 1024 ** 2}
SAYS = "a size such as 4500B, 64KB, 16KiB or 1MB (KB = 1,000 bytes, KiB = 1,024)"


def byte_size(text) -> int:
    """'64KB' -> 64000, '16KiB' -> 16384, '4500B' or '4500' or 4500 -> 4500."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in BYTE_UNITS:
        raise ValueError(text)
    number, unit = match.groups()
    value = float(number) * BYTE_UNITS[unit.lower()]
    if value != int(value):
        raise ValueError(text)
    return int(value)


def byte_size_flag(text: str) -> int:
    """byte_size() as an argparse type: a bad value is one line saying what is valid."""
    try:
        return byte_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: expected {SAYS}") from None


def size_text(value: int) -> str:
    """4500 -> "4,500 B"."""
    return f"{value:,} B"
