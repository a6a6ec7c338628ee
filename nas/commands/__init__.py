"""The commands, one module each: ``HELP`` (its line in `nas --help`), ``add(parser)``
(its arguments) and ``run(args)`` (its work, returning the exit code). nas.cli builds the
parser from them and turns every error into one line."""

from __future__ import annotations

COMMANDS = ("search", "pareto", "export", "train", "baseline", "compare", "count", "dashboard")


def add_study(p, many: bool = False) -> None:
    """The study folder(s) a command reads, and --storage: the only way a storage outside
    a folder (a file elsewhere, a database server) is opened."""
    if many:
        p.add_argument("study_dirs", nargs="+", help="study folders, e.g. runs/fer-cnn runs/fer-mobilenet")
    else:
        p.add_argument("study_dir", help="study folder, e.g. runs/mnist-50k")
    p.add_argument("--storage", action="append" if many else None,
                   help="the study's storage when it is not in the folder (a journal elsewhere, "
                        "a database URL): opened only when named here" + (" (once per study)" if many else ""))


def add_pick(p) -> None:
    """--best or --trial N: which trial of the study a command takes."""
    from nas.errors import integer

    p.add_argument("--best", action="store_true", help="the study's best trial (a --time "
                   "search's runoff winner, else the best validation accuracy)")
    p.add_argument("--trial", type=integer, help="trial number")
