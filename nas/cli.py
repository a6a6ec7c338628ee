"""Command line: nas search | pareto | export | train | baseline | count | compare | dashboard.
Bad input of any kind ends with one line on stderr ("nas: error: ...") and exit code 2
(``--debug``: tracebacks). Ctrl-C ends a search with code 130 after writing its front."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from nas.errors import UsageError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _int(text: str) -> int:
    """Integers, also written 50_000 or 50k / 1.2M."""
    cleaned = text.replace("_", "").replace(",", "").strip()
    scale = {"k": 1000, "K": 1000, "m": 1_000_000, "M": 1_000_000}.get(cleaned[-1:], 1)
    try:
        value = float(cleaned[:-1]) * scale if scale != 1 else int(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value != int(value):
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    return int(value)


def _add_search(sub) -> None:
    from nas.config import PRUNERS, SAMPLERS, duration
    from nas.datasets import dataset_names
    from search_spaces import space_names

    p = sub.add_parser("search", help="search architectures under a parameter budget",
                       argument_default=argparse.SUPPRESS)
    p.add_argument("--config", help="TOML study preset (see studies/); flags override it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    g = p.add_argument_group("space and budget")
    g.add_argument("--space", help=f"search space: {', '.join(space_names())} (default mobilenet)")
    g.add_argument("--budget", type=_int, help="max trainable params, e.g. 50000 or 50k (default 50k)")
    g.add_argument("--conv-layers", help="allowed number of conv layers, MIN-MAX, e.g. 2-4")
    g.add_argument("--max-macs", type=_int, help="max multiply-accumulates per image")
    g.add_argument("--min-speed", type=_int, help="stop trials training fewer images/s here")
    g.add_argument("--fill", type=float, help="prefer nets using this share of the budget: 0.9")

    g = p.add_argument_group("data")
    g.add_argument("--dataset", help=f"{', '.join(dataset_names())}; arrays and folder as "
                                     f"NAME:PATH, fer2013 optionally (default mnist)")
    g.add_argument("--data-dir", help="folder holding the datasets (default $NAS_DATA_DIR or ./data)")
    g.add_argument("--download", action="store_true", help="download the dataset if missing")
    g.add_argument("--limit-train", type=_int, help="train on at most N images (quick runs)")
    g.add_argument("--image-size", type=_int, help="folder datasets: resize images to NxN")
    g.add_argument("--grayscale", action="store_true", help="folder datasets: one channel")

    g = p.add_argument_group("training (each trial)")
    g.add_argument("--epochs", type=_int, help="training epochs per trial (default 3)")
    g.add_argument("--batch-size", type=_int,
                   help="training batch size (default 128 on CPU, 512 on a GPU)")
    g.add_argument("--lr", type=float, help="peak learning rate, AdamW with warm-up + cosine "
                                             "(default 0.005 x sqrt(batch/128): 0.005 at 128, 0.01 at 512)")
    g.add_argument("--augment", help="none | crop | flip-crop | affine (default: the dataset's own)")
    g.add_argument("--seed", type=_int, help="sampler and training seed (default 0)")

    g = p.add_argument_group("search")
    g.add_argument("--trials", type=_int, help="trials of this space in the study (default 20)")
    g.add_argument("--objective", help="accuracy (default; front "
                                       "computed afterwards) | pareto (maximise accuracy, minimise "
                                       "params) | pareto-macs (and MACs); pareto stops trials "
                                       "with its own rule")
    g.add_argument("--sampler", help=f"{' | '.join(SAMPLERS)} (default tpe)")
    g.add_argument("--pruner", help=f"{' | '.join(PRUNERS)} (default median)")
    g.add_argument("--timeout", type=_int, help="seconds: start no trial after this long")
    g.add_argument("--time", type=duration, help="end the whole search by then: 10m, 2h, 1h30m")
    g.add_argument("--full", action="store_true", help="full size (20 trials x 3 epochs on every "
                   "image) without a GPU too; there, a search given no size runs about 10 minutes")

    g = p.add_argument_group("storage and workers")
    g.add_argument("--study", help="study name (default <dataset>-<budget>, e.g. mnist-50k)")
    g.add_argument("--storage", help="Optuna database URL or journal file path "
                                     "(default runs/<study>/journal.log)")
    g.add_argument("--runs-dir", help="where study folders go (default runs)")
    g.add_argument("--jobs", type=_int, help="worker processes on the one study (default 1)")
    g.add_argument("--memory-limit", type=float,
                   help="GiB each worker's trials may use on top of its dataset (GPU memory on "
                        "a GPU, heap on CPU); a trial over it fails as out of memory")

    g = p.add_argument_group("device")
    g.add_argument("--device", help="auto | cpu | cuda | cuda:N (default auto: GPU when there is one)")
    g.add_argument("--gpus", help="CUDA devices to spread the --jobs workers over, e.g. 0,1 "
                                  "(several workers per GPU are fine)")
    g.add_argument("--precision", help="auto | bf16 | fp32 (default auto: bf16 autocast on a GPU)")
    g.add_argument("--no-cuda-graph", dest="cuda_graph", action="store_false",
                   help="train eagerly on the GPU instead of replaying a captured CUDA graph")
    p.set_defaults(func=cmd_search)


def _search_config(args):
    """The search's settings, and the note saying how it was sized to a CPU (or None)."""
    from nas.config import from_settings

    given = {k: v for k, v in vars(args).items()
             if k not in ("func", "command", "debug", "config", "no_progress", "full")}
    return from_settings(given, getattr(args, "config", None), getattr(args, "full", False))


def cmd_search(args) -> int:
    from nas import pareto
    from nas.search.recovery import STOP_SIGNALS, sigterm_stops, stop_signal
    from nas.search.run import run_search

    cfg, sized_note = _search_config(args)
    if sized_note:
        print(sized_note, flush=True)
    try:
        with sigterm_stops():
            result = run_search(cfg, progress=not getattr(args, "no_progress", False))
    except KeyboardInterrupt as exc:
        signum = stop_signal(exc)
        print(f"nas: interrupted by {STOP_SIGNALS[signum]}; completed trials are kept in "
              f"{cfg.study_dir} (re-run the same command to resume)", file=sys.stderr)
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
        print("\nwritten: " + ", ".join(str(p) for p in result.files))
        print(f"next: nas export {cfg.study_dir} --best")
    return 0


def cmd_pareto(args) -> int:
    from nas import pareto, store

    study = store.load_study(args.study_dir)
    if not store.completed_trials(study):
        raise UsageError(f"study {study.study_name!r} has no completed trial yet")
    data = store.load_study_data(study, args.data_dir)
    front, files = pareto.write_front(study, Path(args.study_dir), data, "cpu")
    print(pareto.table(front))
    if baselines := store.read_baselines(args.study_dir):
        print("\n" + pareto.baseline_table(baselines))
    if data is None:
        print("(test accuracy not measured: dataset not found; pass --data-dir)", file=sys.stderr)
    print("\nwritten: " + ", ".join(str(p) for p in files))
    return 0


def cmd_export(args) -> int:
    from nas import store
    from nas.export import FORMATS, export, sidecar_path

    if args.best == (args.trial is not None):
        raise UsageError("nas export needs exactly one of --best or --trial N")
    study = store.load_study(args.study_dir)
    trial = store.pick_trial(study, args.trial)  # fails early, before loading data
    out, meta = export(args.study_dir, study, trial, args.out, store.load_study_data(study, args.data_dir),
                       args.weights, args.format)
    test = f"{meta['test_acc']:.4f}" if meta["test_acc"] is not None else "n/a (no data)"
    print(f"exported trial {meta['trial']} ({meta['arch']}, {meta['params']:,} params, "
          f"val_acc {meta['val_acc']:.4f}, test_acc {test}) to {out} and {sidecar_path(out)}")
    runtime = "onnxruntime runs" if args.format == "onnx" else "torch.jit.load reloads"
    print(f"{FORMATS[args.format][1]} check: {runtime} it to the eager model's outputs on "
          f"{meta['checked_on']} (max abs diff {meta['max_abs_diff_vs_eager']:.2g})")
    return 0


def cmd_dashboard(args) -> int:
    from optuna_dashboard import run_server
    from nas import store, urls

    store.load_study(args.study_dir)  # validates the folder and the storage
    url = store.read_pointer(args.study_dir)["storage"]
    print(f"optuna-dashboard on http://{args.host}:{args.port}/ for {urls.shown(url)} (Ctrl-C to stop)")
    run_server(url, host=args.host, port=args.port)
    return 0


def cmd_train(args) -> int:
    from nas.train import RetrainConfig, retrain

    if args.best == (args.trial is not None):
        raise UsageError("nas train needs exactly one of --best or --trial N")
    result = retrain(RetrainConfig.from_args(args, drop=("best",)))
    print(f"\ntrial {result['trial']} retrained for {result['epochs']} epochs: val_acc "
          f"{result['val_acc']:.4f} (search: {result['search_val_acc']:.4f}), test_acc "
          f"{result['test_acc']:.4f}, {result['params']:,} params, {result['train_time']:.0f}s")
    print(f"weights: {result['weights']} (figures beside it, .json)")
    print(f"export:  nas export {args.study_dir} --trial {result['trial']} --weights {result['weights']}")
    return 0


def cmd_baseline(args) -> int:
    from nas import pareto, store
    from nas.baseline import BaselineConfig, run_baseline

    row = run_baseline(BaselineConfig.from_args(args))
    study = store.load_study(args.study_dir)
    pareto.write_front(study, Path(args.study_dir), store.load_study_data(study, args.data_dir),
                       "cpu")  # re-plot with the new star
    print(f"\n{row['name']}: {row['params']:,} params, val_acc {row['val_acc']:.4f}, test_acc "
          f"{row['test_acc']:.4f} after {row['epochs']} epochs ({row['train_time']:.0f}s); "
          f"kept in {Path(args.study_dir) / 'baselines.json'} and drawn on pareto.png\n")
    print(pareto.baseline_table(store.read_baselines(args.study_dir)))
    return 0


def cmd_compare(args) -> int:
    from nas.compare import run_compare

    try:
        limits = [_int(v) for v in args.at.split(",")] if args.at else None
    except argparse.ArgumentTypeError:
        raise UsageError(f"bad --at {args.at!r}: expected parameter counts, e.g. 10k,25k,50k") from None
    text, files = run_compare(args.study_dirs, args.out, limits)
    print("best validation accuracy within each parameter limit (value @ params)\n" + text)
    print("\nwritten: " + ", ".join(str(p) for p in files))
    return 0


def cmd_count(args) -> int:
    from nas.count import count, parse_shape, table

    print(table(count(args.model, parse_shape(args.input) if args.input else None, args.classes)))
    return 0


def _add_training_flags(p, epochs: int, label_smoothing: float) -> None:
    """The flags nas train and nas baseline share (their defaults live in the configs)."""
    p.add_argument("--epochs", type=_int, help=f"training epochs (default {epochs})")
    p.add_argument("--data-dir", help="dataset folder (default: the search's)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--batch-size", type=_int, help="default 128 on CPU, 512 on a GPU")
    p.add_argument("--lr", type=float, help="peak LR (default 0.005 x sqrt(batch/128))")
    p.add_argument("--label-smoothing", type=float, help=f"default {label_smoothing}")
    p.add_argument("--seed", type=_int, help="default 0")
    p.add_argument("--augment", help="none | crop | flip-crop | affine (default: the search's)")
    p.add_argument("--limit-train", type=_int, help="train on at most N images (default: nas train "
                                                   "all of them, nas baseline the search's)")


def build_parser() -> argparse.ArgumentParser:
    import nas

    parser = _Parser(prog="nas", description="Neural-architecture search under a parameter budget.")
    parser.add_argument("--version", action="version", version=f"nas {nas.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_search(sub)

    p = sub.add_parser("pareto", help="print and write the Pareto front of a study")
    p.add_argument("study_dir", help="study folder, e.g. runs/mnist-50k")
    p.add_argument("--data-dir", help="dataset folder, to score the front on the test set")
    p.set_defaults(func=cmd_pareto)

    p = sub.add_parser("export", help="write a trained trial as TorchScript or ONNX + JSON sidecar")
    p.add_argument("study_dir", help="study folder, e.g. runs/mnist-50k")
    p.add_argument("--best", action="store_true", help="the trial with the best val accuracy")
    p.add_argument("--trial", type=_int, help="trial number")
    p.add_argument("--format", default="torchscript", help="torchscript (default, .pt) | onnx (.onnx)")
    p.add_argument("--out", help="output file (default <study_dir>/model-trialN.pt or .onnx)")
    p.add_argument("--data-dir", help="dataset folder, for the check and test accuracy")
    p.add_argument("--weights", help="weights to export instead of the search's, e.g. "
                                     "runs/mnist-50k/retrained/trial-12.pt from nas train")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("train", help="retrain a found architecture from scratch, for longer "
                                     "(optionally distilling from a teacher)")
    p.add_argument("study_dir", help="study folder, e.g. runs/mnist-50k")
    p.add_argument("--best", action="store_true", help="the trial with the best val accuracy")
    p.add_argument("--trial", type=_int, help="trial number")
    _add_training_flags(p, epochs=30, label_smoothing=0.1)
    p.add_argument("--teacher", help="TorchScript model to distil from (takes [0, 1] images, "
                                     "as nas export writes)")
    p.add_argument("--temperature", type=float, help="distillation temperature (default 4)")
    p.add_argument("--alpha", type=float, help="weight of the distillation loss (default 0.5)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("baseline", help="train a reference model on a study's data; its point "
                                        "goes on the study's Pareto plot")
    p.add_argument("name", help="torchvision model (resnet18, resnet34, mobilenet_v2, ...), a hand "
                                "design (mnist-cnn-110k, mnist-cnn-1.2m, mobilenet-48k, mnist-gap-8k) or a spec")
    p.add_argument("study_dir", help="study folder, e.g. runs/mnist-50k")
    _add_training_flags(p, epochs=12, label_smoothing=0)
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("compare", help="compare the fronts of several studies/spaces at equal "
                                       "parameter counts")
    p.add_argument("study_dirs", nargs="+", help="study folders, e.g. runs/fer-cnn runs/fer-mobilenet")
    p.add_argument("--at", help="parameter limits to compare at, e.g. 10k,25k,50k (default: a "
                                "quarter, half and all of the largest model)")
    p.add_argument("--out", help="plot file (default compare.png; the table goes beside as .json)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("count", help="params and MACs per layer of a spec, TorchScript file "
                                     "or torchvision model")
    p.add_argument("model", help="a spec string (c32k3s2-dw64k3-gap), a .pt TorchScript file, "
                                 "or a torchvision model name (resnet34, alexnet, ...)")
    p.add_argument("--input", help="input CxHxW (default 1x28x28 for specs, 3x224x224 for "
                                   "torchvision models, the sidecar's for exported files)")
    p.add_argument("--classes", type=_int, help="output classes (default 10 for specs, 1000 for "
                                                "torchvision models)")
    p.set_defaults(func=cmd_count)

    p = sub.add_parser("dashboard", help="open the study in optuna-dashboard")
    p.add_argument("study_dir")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_int, default=8080)
    p.set_defaults(func=cmd_dashboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv  # taken anywhere: `nas search ... --debug` too
    try:
        args = build_parser().parse_args([a for a in argv if a != "--debug"])
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
        print(f"nas: internal error: {type(exc).__name__}: {exc} (re-run with --debug for the "
              f"traceback)", file=sys.stderr)
        return 1
