"""Durations as flags and presets write them: "10m", "2h", "1h30m", "90s" or seconds."""

from __future__ import annotations

import argparse

Duration = int  # seconds; a flag or preset may write "10m", "2h", "1h30m", "90s" (duration)
DURATION_UNITS = {"h": 3600, "m": 60, "s": 1}


def duration(text) -> int:
    """'10m' -> 600, '2h' -> 7200, '1h30m' -> 5400, '90s' or '90' or 90 -> 90."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    rest, total = str(text).strip().lower(), 0
    if rest.isdigit():
        return int(rest)
    for unit, seconds in DURATION_UNITS.items():
        number, found, after = rest.partition(unit)
        if found:
            if not number.isdigit():
                raise ValueError(text)
            total, rest = total + int(number) * seconds, after
    if rest or not total:
        raise ValueError(text)
    return total


def duration_flag(text: str) -> int:
    """duration() as an argparse type: a bad value is one line saying what is valid."""
    try:
        return duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad time {text!r}: expected a duration such as 10m, "
                                         f"2h, 1h30m or 90s") from None


def duration_text(seconds: int) -> str:
    """540 -> "9m", 5400 -> "1h30m": the inverse of duration()."""
    hours, minutes = divmod(seconds // 60, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + \
        (f"{seconds % 60}s" if seconds % 60 or not seconds else "")
