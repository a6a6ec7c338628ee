"""Running a TorchScript file's own code, when the user trusts it (--trust-code): in a child
process stopped after a time limit, so a file whose code never ends cannot hang nas. (What
the code does besides, it does with the user's rights: that is what trusting it means.)"""

from __future__ import annotations

import os
import subprocess
import sys

from nas.errors import UsageError


def code_time_limit() -> int:
    """Seconds the file's code may run in the child: $NAS_CODE_TIME_LIMIT, default 60."""
    try:
        return max(1, int(os.environ.get("NAS_CODE_TIME_LIMIT", "60")))
    except ValueError:
        raise UsageError(f"$NAS_CODE_TIME_LIMIT must be a number of seconds, got "
                         f"{os.environ['NAS_CODE_TIME_LIMIT']!r}") from None


def run_code(script: str, args: list, what: str, on: str, failed: str = "") -> str:
    """``python -c script *args`` in a child process; its stdout's last line. ``what``
    starts each error line, ``on`` says what the code was run on ("one image"), ``failed``
    what a failure means (" is not a model that ...")."""
    limit = code_time_limit()
    try:
        proc = subprocess.run([sys.executable, "-c", script, *map(str, args)],
                              capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        raise UsageError(f"{what}: its code ran for {limit} s on {on} without finishing and "
                         f"was stopped") from None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        last = lines[-1][:300] if lines else f"its code ended with exit code {proc.returncode}"
        raise UsageError(f"{what}{failed}: {last}")
    return proc.stdout.strip().splitlines()[-1]
