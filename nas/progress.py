"""No silent slow step: decoding a dataset, scoring a front on the test set, checking an
export say what they are doing. On a terminal the line appears when the step starts and is
finished in place; in a log (stderr not a terminal) each step is one line, written when it
ends. Steps quicker than SLOW_SECONDS print nothing in a log: only waits need explaining."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator

SLOW_SECONDS = 1.0


@contextmanager
def step(what: str) -> Iterator[None]:
    terminal = sys.stderr.isatty()
    if terminal:
        print(f"nas: {what} ...", end="", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        if terminal:
            print(" failed", file=sys.stderr, flush=True)
        raise
    seconds = time.perf_counter() - start
    if terminal:
        print(f" done in {seconds:.1f} s", file=sys.stderr, flush=True)
    elif seconds >= SLOW_SECONDS:
        print(f"nas: {what}: done in {seconds:.1f} s", file=sys.stderr, flush=True)
