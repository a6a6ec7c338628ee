"""nas dashboard: the study in optuna-dashboard, on the storage nas checked."""

from __future__ import annotations

from nas.commands import add_study
from nas.errors import integer

HELP = "open the study in optuna-dashboard"


def add(p) -> None:
    add_study(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=integer, default=8080)


def run(args) -> int:
    from optuna_dashboard import run_server
    from nas import storage, urls
    from nas.storage import load_study, study_storage

    load_study(args.study_dir, args.storage)  # validates the folder and the storage
    url = study_storage(args.study_dir, args.storage)["storage"]
    print(f"optuna-dashboard on http://{args.host}:{args.port}/ for {urls.shown(url)} (Ctrl-C to stop)")
    # The storage nas checked, not a URL for optuna-dashboard to open its own way.
    run_server(storage.open_storage(url), host=args.host, port=args.port)
    return 0
