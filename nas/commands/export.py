"""nas export: a trained trial as TorchScript or ONNX, checked, with its JSON sidecar."""

from __future__ import annotations

from nas.commands import add_pick, add_study
from nas.errors import UsageError

HELP = "write a trained trial as TorchScript or ONNX + JSON sidecar"


def add(p) -> None:
    add_study(p)
    add_pick(p)
    p.add_argument("--format", default="torchscript", help="torchscript (default, .pt) | onnx (.onnx)")
    p.add_argument("--out", help="output file (default <study_dir>/model-trialN.pt or .onnx)")
    p.add_argument("--data-dir", help="dataset folder, for the check and test accuracy")
    p.add_argument("--weights", help="weights to export: 'search' for the search's (with --best: "
                   "the default unless a --time search trained a final model), or a file, e.g. "
                   "runs/mnist-50k/retrained/trial-12.pt from nas train")
    p.add_argument("--force", action="store_true", help="replace a file at the sidecar's path "
                                                        "that nas did not write")


def run(args) -> int:
    from nas import final, records
    from nas.data import load_recorded
    from nas.storage import load_study
    from nas.trials import pick_trial
    from nas.export import FORMATS, export, sidecar_path

    if args.best == (args.trial is not None):
        raise UsageError("nas export needs exactly one of --best or --trial N")
    study = load_study(args.study_dir, args.storage)
    trial = pick_trial(study, args.trial)  # fails early, before loading data
    weights = None if args.weights == "search" else args.weights
    if args.best and args.weights is None and (trained := final.done(study, args.study_dir)):
        trial, weights = trained  # a --time search's delivered model
    out, meta = export(args.study_dir, study, trial, args.out, load_recorded(records.study(study).data, args.data_dir),
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
