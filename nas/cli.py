"""Command line: nas search | pareto | export | train | baseline | count | compare | dashboard.
Bad input of any kind ends with one line on stderr ("nas: error: ...") and exit code 2
(``--debug``: tracebacks). Ctrl-C ends a search with code 130 after writing its front."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from pathlib import Path

from nas.errors import UsageError
from nas.errors import integer as _int
from nas.files import DISK_FULL

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _search_config(args):
    """The search's settings, and the note saying how it was sized to a CPU (or None)."""
    from nas.config import from_settings

    given = {k: v for k, v in vars(args).items()
             if k not in ("func", "command", "debug", "config", "no_progress", "full", "started")}
    return from_settings(given, getattr(args, "config", None), getattr(args, "full", False))


def cmd_search(args) -> int:
    from nas import final, pareto, store, urls
    from nas.search.recovery import STOP_SIGNALS, sigterm_stops, stop_signal
    from nas.search.run import run_search

    cfg, sized_note = _search_config(args)
    if sized_note:
        print(sized_note, flush=True)
    try:
        with sigterm_stops():
            result = run_search(cfg, progress=not getattr(args, "no_progress", False),
                                started=args.started)
    except KeyboardInterrupt as exc:
        signum = stop_signal(exc)
        print(f"nas: interrupted by {STOP_SIGNALS[signum]}; completed trials are kept in "
              f"{cfg.study_dir} (re-run the same command to resume"
              + (", and to finish the final training)" if cfg.time else ")"), file=sys.stderr)
        return 128 + signum  # what a shell reports for a process ended by that signal
    c = result.counts
    total = sum(c.values())
    print(f"\n{total} trials in study {cfg.study_name!r}: {c['complete']} complete, "
          f"{c['pruned']} pruned, {c['infeasible']} infeasible "
          f"({100 * c['infeasible'] / max(total, 1):.0f}%), {c['failed']} failed"
          + (f", {c['interrupted']} interrupted (retried first next run)" if c["interrupted"] else "")
          + f"; {result.seconds:.1f}s")
    if result.front:
        print("\nPareto front (params vs validation accuracy; test accuracy of front only):")
        print(pareto.table(result.front))
        if result.final is not None:
            print(final.summary(result.final))
        print("\nwritten: " + ", ".join(str(p) for p in result.files)
              + (f", {final.final_path(cfg.study_dir, result.final['trial'])}" if result.final else ""))
        storage = ("" if store.is_own_storage(cfg.storage_url, cfg.study_dir)
                   else f" --storage {urls.shown(cfg.storage_url)!r}")
        print(f"next: nas export {cfg.study_dir} --best{storage}")
    return 0


def cmd_pareto(args) -> int:
    from nas import final, pareto, store

    study = store.load_study(args.study_dir, args.storage)
    if not store.completed_trials(study):
        raise UsageError(f"study {study.study_name!r} has no completed trial yet")
    data = store.load_study_data(study, args.data_dir)
    front, files = pareto.write_front(study, Path(args.study_dir), data, "cpu")
    print(pareto.table(front))
    if held := final.record(study):
        print(final.summary(held))
    if baselines := store.read_baselines(args.study_dir):
        print("\n" + pareto.baseline_table(baselines))
    if data is None:
        print("(test accuracy not measured: dataset not found; pass --data-dir)", file=sys.stderr)
    print("\nwritten: " + ", ".join(str(p) for p in files))
    return 0


def cmd_export(args) -> int:
    from nas import final, store
    from nas.export import FORMATS, export, sidecar_path

    if args.best == (args.trial is not None):
        raise UsageError("nas export needs exactly one of --best or --trial N")
    study = store.load_study(args.study_dir, args.storage)
    trial = store.pick_trial(study, args.trial)  # fails early, before loading data
    weights = None if args.weights == "search" else args.weights
    if args.best and args.weights is None and (trained := final.done(study, args.study_dir)):
        trial, weights = trained  # a --time search's delivered model
    out, meta = export(args.study_dir, study, trial, args.out, store.load_study_data(study, args.data_dir),
                       weights, args.format, args.force)
    test = f"{meta['test_acc']:.4f}" if meta["test_acc"] is not None else "n/a (no data)"
    val = (f"val_acc {meta['val_acc']:.4f}" if meta["val_acc"] is not None
           else f"trained on every training image, search val_acc {meta['search_val_acc']:.4f}")
    print(f"exported trial {meta['trial']} ({meta['arch']}, {meta['params']:,} params, "
          f"{meta['weights_kind']} weights, {val}, test_acc {test}) to {out} and {sidecar_path(out)}")
    runtime = "onnxruntime runs" if args.format == "onnx" else "torch.jit.load reloads"
    print(f"{FORMATS[args.format][1]} check: {runtime} it to the eager model's outputs on "
          f"{meta['checked_on']} (max abs diff {meta['max_abs_diff_vs_eager']:.2g})")
    return 0


def cmd_dashboard(args) -> int:
    from optuna_dashboard import run_server
    from nas import storage, store, urls

    store.load_study(args.study_dir, args.storage)  # validates the folder and the storage
    url = store.study_storage(args.study_dir, args.storage)["storage"]
    print(f"optuna-dashboard on http://{args.host}:{args.port}/ for {urls.shown(url)} (Ctrl-C to stop)")
    # The storage nas checked, not a URL for optuna-dashboard to open its own way.
    run_server(storage.open_storage(url), host=args.host, port=args.port)
    return 0


def cmd_train(args) -> int:
    from nas.train import RetrainConfig, retrain

    if args.best == (args.trial is not None):
        raise UsageError("nas train needs exactly one of --best or --trial N")
    result = retrain(RetrainConfig.from_args(args, drop=("best",)))
    print(f"\ntrial {result['trial']} retrained for {result['epochs']:g} epochs: val_acc "
          f"{result['val_acc']:.4f} (search: {result['search_val_acc']:.4f}), test_acc "
          f"{result['test_acc']:.4f}, {result['params']:,} params, {result['train_time']:.0f}s")
    print(f"weights: {result['weights']} (figures beside it, .json)"
          + (f"; earlier retrains keep theirs ({Path(result['earlier']).name}, ...)" if result["earlier"] else ""))
    print(f"export:  nas export {args.study_dir} --trial {result['trial']} --weights {result['weights']}")
    return 0


def cmd_baseline(args) -> int:
    from nas import pareto, store
    from nas.baseline import BaselineConfig, run_baseline

    row = run_baseline(BaselineConfig.from_args(args))
    print(f"\n{row['name']}: {row['params']:,} params, val_acc {row['val_acc']:.4f}, test_acc "
          f"{row['test_acc']:.4f} after {row['epochs']:g} epochs ({row['train_time']:.0f}s); "
          f"kept in {Path(args.study_dir) / 'baselines.json'} and drawn on pareto.png\n")
    print(pareto.baseline_table(store.read_baselines(args.study_dir)))
    return 0


def cmd_compare(args) -> int:
    from nas.compare import run_compare

    try:
        limits = [_int(v) for v in args.at.split(",")] if args.at else None
    except argparse.ArgumentTypeError:
        raise UsageError(f"bad --at {args.at!r}: expected parameter counts, e.g. 10k,25k,50k") from None
    text, files = run_compare(args.study_dirs, args.out, limits, args.storage, args.force)
    print("each group's best net within each parameter limit (accuracy @ params; judged on the "
          "search's validation scores until nas train has trained a row's picks)\n" + text)
    print("\nwritten: " + ", ".join(str(p) for p in files))
    return 0


def cmd_count(args) -> int:
    from nas.count import count, parse_shape, table

    print(table(count(args.model, parse_shape(args.input) if args.input else None, args.classes,
                      args.trust_code)))
    return 0


def _add_study(p, many: bool = False) -> None:
    """The study folder(s) a command reads, and --storage: the only way a storage outside
    a folder (a file elsewhere, a database server) is opened."""
    if many:
        p.add_argument("study_dirs", nargs="+", help="study folders, e.g. runs/fer-cnn runs/fer-mobilenet")
    else:
        p.add_argument("study_dir", help="study folder, e.g. runs/mnist-50k")
    p.add_argument("--storage", action="append" if many else None,
                   help="the study's storage when it is not in the folder (a journal elsewhere, "
                        "a database URL): opened only when named here" + (" (once per study)" if many else ""))


def _add_training_flags(p, epochs: int, label_smoothing: float) -> None:
    """The flags nas train and nas baseline share (their defaults live in the configs)."""
    from nas.augment import AUGMENTS
    from nas.config import duration_flag

    p.add_argument("--epochs", type=_int,
                   help=f"training epochs (default {epochs}); with --time, at most this many")
    p.add_argument("--time", type=duration_flag, help="train as many epochs as fit in this time from the "
                   "command's start (data loading included), the LR schedule fitted to them: 10m, 1h30m")
    p.add_argument("--data-dir", help="dataset folder (default: the search's)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--batch-size", type=_int, help="default 128 on CPU, 512 on a GPU")
    p.add_argument("--lr", type=float, help="peak LR (default 0.005 x sqrt(batch/128))")
    p.add_argument("--label-smoothing", type=float, help=f"default {label_smoothing}")
    p.add_argument("--mixup", type=float, help="mixup: blend each batch with itself shuffled by a "
                   "Beta(A, A) share, e.g. 0.2 (default 0: off)")
    p.add_argument("--seed", type=_int, help="default 0")
    p.add_argument("--augment", help=f"{' | '.join(AUGMENTS)} (default: the search's)")
    p.add_argument("--limit-train", type=_int, help="train on at most N images (default: nas train "
                                                   "all of them, nas baseline the search's)")


def build_parser() -> argparse.ArgumentParser:
    import nas

    parser = _Parser(prog="nas", description="Neural-architecture search under a parameter budget.")
    parser.add_argument("--version", action="version", version=f"nas {nas.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                title="commands", metavar="COMMAND")
    from nas.search.flags import add_search_parser

    add_search_parser(sub, cmd_search)

    p = sub.add_parser("pareto", help="print and write the Pareto front of a study")
    _add_study(p)
    p.add_argument("--data-dir", help="dataset folder, to score the front on the test set")
    p.set_defaults(func=cmd_pareto)

    p = sub.add_parser("export", help="write a trained trial as TorchScript or ONNX + JSON sidecar")
    _add_study(p)
    p.add_argument("--best", action="store_true", help="the trial with the best val accuracy")
    p.add_argument("--trial", type=_int, help="trial number")
    p.add_argument("--format", default="torchscript", help="torchscript (default, .pt) | onnx (.onnx)")
    p.add_argument("--out", help="output file (default <study_dir>/model-trialN.pt or .onnx)")
    p.add_argument("--data-dir", help="dataset folder, for the check and test accuracy")
    p.add_argument("--weights", help="weights to export: 'search' for the search's (with --best: "
                   "the default unless a --time search trained a final model), or a file, e.g. "
                   "runs/mnist-50k/retrained/trial-12.pt from nas train")
    p.add_argument("--force", action="store_true", help="replace a file at the sidecar's path "
                                                        "that nas did not write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("train", help="retrain a found architecture from scratch, for longer "
                                     "(optionally distilling from a teacher)")
    _add_study(p)
    p.add_argument("--best", action="store_true", help="the trial with the best val accuracy")
    p.add_argument("--trial", type=_int, help="trial number")
    _add_training_flags(p, epochs=30, label_smoothing=0.1)
    p.add_argument("--teacher", help="model to distil from: a study folder (its best trial), "
                                     "a trial's weights file, a nas export file; another "
                                     "TorchScript file only with --trust-code")
    p.add_argument("--temperature", type=float, help="distillation temperature (default 4)")
    p.add_argument("--alpha", type=float, help="weight of the distillation loss (default 0.5)")
    p.add_argument("--trust-code", action="store_true", help="let --teacher be any TorchScript "
                   "file, running its code (checked first in a child process, stopped after 60 s)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("baseline", help="train a reference model on a study's data; its point "
                                        "goes on the study's Pareto plot")
    p.add_argument("name", help="torchvision model (resnet18, resnet34, mobilenet_v2, ...), a hand "
                                "design (mnist-cnn-110k, mnist-cnn-1.2m, mobilenet-48k, mnist-gap-8k) or a spec")
    _add_study(p)
    _add_training_flags(p, epochs=12, label_smoothing=0)
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("compare", help="compare the fronts of several studies/spaces at equal "
                                       "parameter counts")
    _add_study(p, many=True)
    p.add_argument("--at", help="parameter limits to compare at, e.g. 10k,25k,50k (default: a "
                                "quarter, half and all of the largest model)")
    p.add_argument("--out", help="plot file (default compare.png; the table goes beside as .json)")
    p.add_argument("--force", action="store_true", help="replace a .json beside --out that nas did not write")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("count", help="params and MACs per layer of a spec, TorchScript file "
                                     "or torchvision model")
    p.add_argument("model", help="a spec string (c32k3s2-dw64k3-gap), a .pt TorchScript file, "
                                 "or a torchvision model name (resnet34, alexnet, ...)")
    p.add_argument("--input", help="input CxHxW (default 1x28x28 for specs, 3x224x224 for "
                                   "torchvision models, the sidecar's for exported files)")
    p.add_argument("--classes", type=_int, help="output classes (default 10 for specs, 1000 for "
                                                "torchvision models)")
    p.add_argument("--trust-code", action="store_true", help="count a TorchScript file nas did "
                   "not export by running its code (a child process, stopped after 60 s)")
    p.set_defaults(func=cmd_count)

    p = sub.add_parser("dashboard", help="open the study in optuna-dashboard")
    _add_study(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_int, default=8080)
    p.set_defaults(func=cmd_dashboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    started = time.time()  # a --time limit counts from here: imports and data loading are in it
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv  # taken anywhere: `nas search ... --debug` too
    try:
        given = [a for a in argv if a != "--debug"]
        if not given:  # as git and optuna do: the commands, a line each, not an error
            print(build_parser().format_help(), end="")
            return 0
        args = build_parser().parse_args(given)
        args.started = started
        return args.func(args)
    except UsageError as exc:
        if debug:
            raise
        print(f"nas: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `nas count resnet34 | head` closed the pipe: the reader is done
        # Python would fail again flushing stdout at exit; send what is left nowhere instead.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # a bug, not bad input: say so, keep it to one line
        if debug:
            raise
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:  # the user's to fix, not a bug
            # (a write that did not go through nas.files: Optuna's journal append, say)
            print(f"nas: error: {exc.strerror} ({errno.errorcode.get(exc.errno)}) while writing"
                  f"{' ' + str(exc.filename) if exc.filename else ''}: free some space and run "
                  f"the command again (completed results are kept)", file=sys.stderr)
            return EXIT_USAGE
        print(f"nas: internal error: {type(exc).__name__}: {exc} (re-run with --debug for the "
              f"traceback)", file=sys.stderr)
        return 1
