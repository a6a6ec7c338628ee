"""What every benchmark's JSON opens with: what was measured, the command that measured it,
the machine and the date, so a figure in benchmarks/README.md can be traced and rerun."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import optuna
import torch


def header(what: str) -> dict:
    """The opening fields of a benchmark's figures; the script is the one being run."""
    return {"what": what,
            "script": f"benchmarks/{Path(sys.argv[0]).name} " + " ".join(sys.argv[1:]),
            "machine": f"{platform.processor() or platform.machine()}, "
                       f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
                       f"optuna {optuna.__version__}, python {platform.python_version()}",
            "date": time.strftime("%Y-%m-%d")}
