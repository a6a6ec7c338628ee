"""nas export: a trained trial as TorchScript or ONNX, checked, with its JSON sidecar."""

from __future__ import annotations

from nas.commands import add_pick, add_study
from nas.errors import UsageError
from nas.export_int8 import MAX_DROP
from nas.model import MAX_MEMBERS

HELP = "write a trained trial as TorchScript, ONNX or int8 TFLite + JSON sidecar"


def add(p) -> None:
    add_study(p)
    add_pick(p)
    p.add_argument("--format", help="torchscript (default, .pt) | onnx (.onnx); with --int8: "
                   "tflite (default) | onnx (QDQ)")
    p.add_argument("--int8", action="store_true", help="an int8 file (static quantization, "
                   "per-channel weights, calibrated on training images), kept only once its "
                   "runtime runs it within --max-drop of fp32 on the test split: a .tflite for "
                   "microcontrollers run in TFLite Micro (nas's [mcu] extra), or with --format "
                   "onnx a QDQ .onnx run in onnxruntime ([onnx] extra)")
    p.add_argument("--max-drop", type=float, default=MAX_DROP, help=f"--int8: the largest fall "
                   f"in test accuracy from fp32 to int8 to keep the file (default {MAX_DROP})")
    p.add_argument("--tta", default="none", help="none (default) | flip: the file averages the "
                   "net's outputs on each image and its mirror (twice the MACs, the same params); "
                   "only for weights trained with a flip augmentation, e.g. faces")
    p.add_argument("--with", dest="others", action="append", default=[], metavar="STUDY_DIR",
                   help="another study folder of the same dataset, repeatable: the file is the "
                   "ensemble of this export's net and each such study's --best one (its final-"
                   "trained model, if it has one), the mean of their outputs; params and MACs "
                   "add up, --tta applies to each net")
    p.add_argument("--out", help="output file (default <study_dir>/model-trialN.pt, .onnx, "
                                 "-int8.tflite or -int8.onnx)")
    p.add_argument("--data-dir", help="dataset folder, for the check and test accuracy")
    p.add_argument("--weights", help="weights to export: 'search' for the search's (with --best: "
                   "the default unless a --time search trained a final model), or a file, e.g. "
                   "runs/mnist-50k/retrained/trial-12.pt from nas train")
    p.add_argument("--force", action="store_true", help="replace a file at the sidecar's path "
                                                        "that nas did not write")


def run(args) -> int:
    from pathlib import Path

    from nas import final, records
    from nas.data import load_recorded
    from nas.storage import load_study
    from nas.trials import pick_trial
    from nas.export import FORMATS, export

    if args.best == (args.trial is not None):
        raise UsageError("nas export needs exactly one of --best or --trial N")
    study = load_study(args.study_dir, args.storage)
    trial = pick_trial(study, args.trial)  # fails early, before loading data
    weights = None if args.weights == "search" else args.weights
    if args.best and args.weights is None and (trained := final.done(study, args.study_dir)):
        trial, weights = trained  # a --time search's delivered model
    if 1 + len(args.others) > MAX_MEMBERS:
        raise UsageError(f"--with {len(args.others)} studies makes {1 + len(args.others)} nets; an "
                         f"ensemble holds at most {MAX_MEMBERS}")
    named = [Path(args.study_dir).resolve()]
    for other in args.others:
        if Path(other).resolve() in named:
            raise UsageError(f"--with {other!r}: that study is already in the ensemble; name "
                             f"each study once (its net would only count twice)")
        named.append(Path(other).resolve())
    others = [_delivered(other) for other in args.others]
    if args.int8:
        if others:
            raise UsageError("--with makes an ensemble of fp32 nets; an --int8 file holds one net "
                             "(valid with --int8: no --with)")
        if args.tta != "none":
            raise UsageError(f"--tta {args.tta} is for fp32 exports; an --int8 file runs one pass "
                             f"per image (valid with --int8: --tta none)")
        return run_int8(args, study, trial, weights)
    format = args.format or "torchscript"
    out, meta = export(args.study_dir, study, trial, args.out, load_recorded(records.study(study).data, args.data_dir),
                       weights, format, args.force, args.tta, others)
    test = f"{meta['test_acc']:.4f}" if meta["test_acc"] is not None else "n/a (no data)"
    if others:
        print_ensemble(meta, out, test)
    else:
        print_one(args, meta, out, test)
    runtime = "onnxruntime runs" if format == "onnx" else "torch.jit.load reloads"
    print(f"{FORMATS[format][1]} check: {runtime} it to the eager model's outputs on "
          f"{meta['checked_on']} (max abs diff {meta['max_abs_diff_vs_eager']:.2g})")
    return 0


def _delivered(study_dir: str):
    """(folder, study, trial, weights) of what `nas export STUDY_DIR --best` exports: a --time
    search's final-trained model, else its best trial with the search's weights."""
    from pathlib import Path

    from nas import final
    from nas.storage import load_study
    from nas.trials import pick_trial

    study = load_study(study_dir, None)
    trained = final.done(study, study_dir)
    return (Path(study_dir), study, *(trained or (pick_trial(study, None), None)))


def print_ensemble(meta: dict, out, test: str) -> None:
    from nas.export import sidecar_path

    macs = f", {meta['macs']:,} MACs per image" if meta["macs"] is not None else ""
    print(f"exported an ensemble of {len(meta['members'])} nets ({meta['params']:,} params in all"
          f"{macs}, test_acc {test}) to {out} and {sidecar_path(out)}")
    for part in meta["members"]:
        alone = f"test_acc {part['test_acc']:.4f} alone" if part["test_acc"] is not None else ""
        flip = ", averaged with its mirror (--tta flip)" if part["tta"] == "flip" else ""
        print(f"  study {part['study']!r} trial {part['trial']} ({part['arch']}, {part['params']:,} "
              f"params, {part['weights_kind']} weights{flip}){': ' + alone if alone else ''}")


def print_one(args, meta: dict, out, test: str) -> None:
    from nas.export import sidecar_path

    val = (f"val_acc {meta['val_acc']:.4f}" if meta["val_acc"] is not None
           else f"trained on every training image, search val_acc {meta['search_val_acc']:.4f}")
    tta = ", averaged with its mirror (--tta flip)" if args.tta == "flip" else ""
    print(f"exported trial {meta['trial']} ({meta['arch']}, {meta['params']:,} params, "
          f"{meta['weights_kind']} weights, {val}, test_acc {test}{tta}) to {out} and {sidecar_path(out)}")


def run_int8(args, study, trial, weights) -> int:
    from nas import records
    from nas.data import load_recorded
    from nas.export import sidecar_path
    from nas.export_int8 import FORMATS, export_int8

    format = args.format or "tflite"
    if format not in FORMATS:
        raise UsageError(f"--int8 writes tflite or onnx; got --format {format} (valid: "
                         f"{', '.join(FORMATS)})")
    if not 0 <= args.max_drop <= 1:
        raise UsageError(f"--max-drop must be an accuracy share from 0 to 1, got {args.max_drop}")
    data = load_recorded(records.study(study).data, args.data_dir)
    out, meta = export_int8(args.study_dir, study, trial, data, args.out, weights, args.max_drop,
                            args.force, format)
    print(f"exported trial {meta['trial']} ({meta['arch']}, {meta['params']:,} params, "
          f"{meta['weights_kind']} weights) as int8 to {out} and {sidecar_path(out)}")
    if format == "onnx":
        print(f"onnxruntime runs it: test_acc {meta['test_acc']:.4f} (fp32 {meta['fp32_test_acc']:.4f}, "
              f"drop {meta['int8_drop']:+.4f}); flash {meta['flash']:,} B of int8 weights and int32 "
              f"biases ({meta['file_bytes']:,} B file), RAM {meta['ram']:,} B counted for a "
              f"microcontroller; onnxruntime's own arena peaked at "
              f"{meta['onnxruntime_peak_bytes']:,} B for one image (float between its quantize steps)")
        return 0
    print(f"TFLite Micro runs it: test_acc {meta['test_acc']:.4f} (fp32 {meta['fp32_test_acc']:.4f}, "
          f"drop {meta['int8_drop']:+.4f}); flash {meta['flash']:,} B of weights and biases "
          f"({meta['file_bytes']:,} B file), RAM {meta['ram']:,} B counted, arena "
          f"{meta['arena_activations']:,} B of tensors + {meta['arena_total'] - meta['arena_activations']:,} "
          f"B of the runtime's own")
    return 0
