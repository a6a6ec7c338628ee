"""Microcontroller budgets: int8 flash and peak RAM counted from the spec, equal to what the
real runtime reports (litert-torch's int8 .tflite run in TFLite Micro's own interpreter;
onnxruntime's QDQ .onnx for the flash); --max-flash / --max-ram held like --budget;
--objective pareto-flash / pareto-ram; nas export --int8 checked in its runtime before it
is kept. Real converters, real runtimes, real Optuna storage."""

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch

import search_spaces
from nas import int8, qdq
from nas.activations import peak_bytes
from nas.arch import ArchSpec
from nas.budget import Constraints, check, count_int8_bytes
from nas.data import DataInfo
from nas.export_int8 import export_int8
from nas.exported import sidecar_path
from nas.model import Normalized, build
from nas.storage import load_study
from nas.trials import pick_trial
from nas.units import byte_size

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST = DataInfo("mnist", 1, 28, 28, 10, (0.1307,), (0.3081,), tuple("0123456789"))

# Nets of every space, every block kind, head, activation and downsampling: chains, a
# squeeze-excitation's waiting map, an inverted residual's skip, a dense layer's concat.
SPECS = ["c8k3s2-c16k3s2-c16k3-gap",                       # cnn, strided (explicit pads)
         "c9k5p-c14k3-c15k5p-c17k3-flat_d0.25-hardswish",  # cnn, max-pool, flatten head
         "c8k3s2-c16k3-flat_fc16-silu-nobn",                # silu as sigmoid x input
         "c10k3s2-ir12k3e4se-ir13k3s2e6se-dw15k3-gap-hardswish",  # mobilenet
         "c16k3s2-ir16k3e2se-dw20k5s2se-ir25k5s2e4-gap-relu6",
         "d8k3p-d11k5-d12k3-gap_fc16-nobn",                 # densenet
         "d14k5-d14k3p-d22k5-gap-silu",
         "d8k3p-d11k5-d12k3-d16k5p-gap_fc40-silu-nobn",     # the planner leaves a gap
         "c8k5s2-r15k3s2-r15k5s2-flat_fc18-nobn",           # residual blocks
         "c8k5-r18k5p-gap_fc30",
         "c4k3s2-c9k3s2-c15k3s2-flat-silu"]


@pytest.mark.parametrize("text", SPECS)
def test_flash_and_ram_counted_from_the_spec_equal_what_tflite_micro_reports(text):
    spec = ArchSpec.from_string(text, *MNIST.input_shape, MNIST.num_classes)
    torch.manual_seed(0)
    model = int8.quantize(build(spec).eval(), torch.randn(8, *MNIST.input_shape))
    runtime = int8.MicroRuntime(model)
    runtime.predict(torch.randn(1, *MNIST.input_shape))
    assert int8.stored_bytes(model) == count_int8_bytes(spec)  # int8 weights, int32 biases
    arena = runtime.arena()
    assert arena.activations == peak_bytes(spec)
    assert arena.total > arena.activations  # the runtime's own bookkeeping comes on top


def trained_like(net: torch.nn.Module) -> torch.nn.Module:
    """Batch-norm statistics and shifts moved off their initial values, as training moves
    them: a conv whose folded bias is all zeros would store none in the ONNX file."""
    generator = torch.Generator().manual_seed(0)
    for layer in net.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.copy_(torch.rand(layer.num_features, generator=generator) - 0.5)
            layer.running_var.copy_(torch.rand(layer.num_features, generator=generator) + 0.5)
            layer.bias.data.copy_(torch.rand(layer.num_features, generator=generator) - 0.5)
    return net


@pytest.mark.parametrize("text", SPECS)
def test_flash_counted_from_the_spec_equals_what_the_qdq_onnx_file_stores(text):
    spec = ArchSpec.from_string(text, *MNIST.input_shape, MNIST.num_classes)
    torch.manual_seed(0)
    net = Normalized(trained_like(build(spec).eval()), MNIST.mean, MNIST.std).eval()
    model = qdq.quantize(net, torch.rand(8, *MNIST.input_shape))
    assert qdq.stored_bytes(model) == count_int8_bytes(spec)  # int8 weights, int32 biases
    runtime = qdq.OnnxRuntime(model)
    assert runtime.predict(torch.rand(3, *MNIST.input_shape)).shape == (3,)
    assert runtime.peak_bytes(torch.rand(*MNIST.input_shape)) > 0


def test_a_file_the_runtime_refuses_is_one_line():
    from nas.errors import UsageError

    with pytest.raises(UsageError, match="TFLite Micro refuses the int8 model: not a TFLite file"):
        int8.MicroRuntime(b"not a model, just bytes" * 10)
    with pytest.raises(UsageError, match="^onnxruntime refuses the int8 model: ") as refused:
        qdq.OnnxRuntime(b"not a model, just bytes" * 10)
    assert "\n" not in str(refused.value)


def test_byte_sizes_take_decimal_and_binary_units():
    assert [byte_size(t) for t in ("4500", "4500B", "64KB", "64kb", "16KiB", "1MB", "1.5KB", 7)] == \
        [4500, 4500, 64_000, 64_000, 16_384, 1_000_000, 1500, 7]
    for bad in ("64XB", "KB", "-1KB", "1.0001KB", ""):
        with pytest.raises(ValueError):
            byte_size(bad)


@pytest.mark.parametrize("space", ["cnn", "mobilenet"])
@pytest.mark.parametrize("flash, ram", [(4500, 2500), (64_000, 16_000)])
def test_under_5_percent_of_draws_are_over_flash_or_ram(space, flash, ram):
    constraints = Constraints(1_000_000, max_flash=flash, max_ram=ram)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=20))
    bad = 0
    for i in range(60):
        trial = study.ask()
        verdict = check(search_spaces.get_space(space)(trial, MNIST, constraints), constraints)
        bad += not verdict.feasible
        study.tell(trial, (i * 7919 % 100) / 100)
    assert bad / 60 < 0.05


def test_a_search_under_flash_and_ram_limits_never_builds_a_net_over_them(run, tmp_path):
    code, out, err = run("search", "--dataset", "synthetic", "--space", "cnn,mobilenet",
                         "--max-flash", "3KB", "--max-ram", "1KiB", "--trials", 8, "--epochs", 1,
                         "--objective", "pareto-ram", "--runs-dir", tmp_path, "--study", "mcu",
                         "--no-progress")
    assert code == 0, err
    study = load_study(tmp_path / "mcu")
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done
    for t in study.trials:
        if "arch" in t.user_attrs:  # every sampled net: counted and recorded before it is built
            spec = ArchSpec.from_dict(t.user_attrs["arch"])
            assert t.user_attrs["flash"] == count_int8_bytes(spec) <= 3000
            assert t.user_attrs["ram"] == peak_bytes(spec) <= 1024
    assert all(t.values[1] == t.user_attrs["ram"] for t in done)  # the objective's second value
    code, out, err = run("pareto", tmp_path / "mcu", "--x", "ram")
    assert code == 0, err
    front = json.loads((tmp_path / "mcu" / "pareto.json").read_text())
    rams = [row["ram"] for row in front]
    accs = [row["val_acc"] for row in front]
    assert rams == sorted(rams) and accs == sorted(accs) and len(set(rams)) == len(rams)


@pytest.mark.parametrize("args, says", [
    (["--max-ram", "16XB"], "bad size '16XB': expected a size such as 4500B, 64KB"),
    (["--max-flash", "0"], "--max-flash must be a size such as"),
    (["--space", "densenet", "--max-ram", "300"], "the constraints rule out even the smallest 'densenet' model"),
])
def test_bad_limits_are_one_line_and_exit_2(tmp_path, args, says):
    proc = subprocess.run([sys.executable, "-m", "nas", "search", "--dataset", "synthetic",
                           "--trials", "2", "--epochs", "1", "--runs-dir", str(tmp_path), *args],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], proc.stderr


def test_nas_count_gives_int8_bytes_per_layer_and_ram_per_op(run):
    text = "c8k3s2-r16k3s2-gap-silu"
    spec = ArchSpec.from_string(text, 1, 28, 28, 10)
    code, out, _ = run("count", text)
    assert code == 0
    assert f"flash {count_int8_bytes(spec):,} B, RAM {peak_bytes(spec):,} B" in out
    assert "blocks.1.conv2" in out and "blocks.1.add" in out and "<- largest" in out


def test_int8_export_runs_in_tflite_micro_to_the_recorded_accuracy(searched_synthetic, tmp_path, run):
    from conftest import copy_study

    study_dir = copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path / "syn")
    code, out, err = run("export", study_dir, "--best", "--int8", "--out", tmp_path / "m.tflite")
    assert code == 0, err
    meta = json.loads(sidecar_path(tmp_path / "m.tflite").read_text())
    model = (tmp_path / "m.tflite").read_bytes()
    spec = ArchSpec.from_dict(meta["arch_spec"])
    assert meta["flash"] == int8.stored_bytes(model) == count_int8_bytes(spec)
    assert meta["ram"] == peak_bytes(spec) == meta["arena_activations"]
    # The file, run again in TFLite Micro, scores what the sidecar says.
    from nas.data import load
    from nas.evaluate import normalize, stats

    data = load("synthetic")
    mean, std = stats(data.info, torch.device("cpu"))
    predicted = int8.MicroRuntime(model).predict(normalize(data.test_x, mean, std))
    assert (torch.from_numpy(predicted) == data.test_y).float().mean().item() == meta["test_acc"]
    assert meta["int8_drop"] == pytest.approx(meta["fp32_test_acc"] - meta["test_acc"])
    assert "TFLite Micro runs it" in out
    code, out, err = run("count", tmp_path / "m.tflite")  # counted from the sidecar's spec
    assert code == 0 and f"RAM {meta['ram']:,} B" in out


def test_int8_onnx_export_runs_in_onnxruntime_to_the_recorded_accuracy(searched_synthetic, tmp_path, run):
    import onnx
    import onnxruntime
    from conftest import copy_study
    from nas.data import load

    study_dir = copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path / "syn")
    code, out, err = run("export", study_dir, "--best", "--int8", "--format", "onnx")
    assert code == 0, err
    (path,) = study_dir.glob("model-trial*-int8.onnx")
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["format"] == "onnx-qdq-int8" and meta["model"] == path.name
    model = path.read_bytes()
    graph = onnx.load_from_string(model).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in graph.node}
    spec = ArchSpec.from_dict(meta["arch_spec"])
    assert meta["flash"] == qdq.stored_bytes(model) == count_int8_bytes(spec)
    assert meta["ram"] == peak_bytes(spec) and meta["onnxruntime_peak_bytes"] > 0
    # The file, in a session of its own, scores what the sidecar says on [0, 1] images.
    data = load("synthetic")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"images": (data.test_x.float() / 255).numpy()})[0]
    assert (torch.from_numpy(logits.argmax(1)) == data.test_y).float().mean().item() == meta["test_acc"]
    assert meta["int8_drop"] == pytest.approx(meta["fp32_test_acc"] - meta["test_acc"])
    assert "onnxruntime runs it" in out


@pytest.mark.parametrize("format, name", [("tflite", "m.tflite"), ("onnx", "m.onnx")])
def test_an_int8_file_that_fails_its_check_is_not_written(searched_synthetic, tmp_path, format, name):
    from conftest import copy_study
    from nas.data import load

    study_dir = copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path / "syn")
    study = load_study(study_dir)
    with pytest.raises(RuntimeError, match="not exported: its int8 test accuracy"):
        # No file can be 100 points better in int8 than in fp32: the check must refuse.
        export_int8(study_dir, study, pick_trial(study, None), load("synthetic"),
                    tmp_path / name, max_drop=-1.0, format=format)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["syn"]  # nothing, no temporaries


@pytest.mark.parametrize("blocked, out, said", [
    ("litert_torch", "m.tflite", "int8 export needs the litert-torch package, which is not "
                                 "installed (No module named litert_torch): pip install 'nas[mcu]'"),
    ("onnxruntime", "m.onnx", "int8 ONNX export needs the onnxruntime package, which is not "
                              "installed here: pip install 'nas[onnx]'")])
def test_without_its_packages_int8_export_says_how_to_install(searched_synthetic, tmp_path,
                                                              blocked, out, said):
    # The converter or runtime made unimportable, as where it is not installed.
    blocker = tmp_path / "blocker" / blocked
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(f"raise ImportError('No module named {blocked}', name={blocked!r})\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "blocker"), REPO])}
    proc = subprocess.run([sys.executable, "-m", "nas", "export", str(searched_synthetic("cnn", 3, 1)[0]),
                           "--best", "--int8", "--format", Path(out).suffix[1:], "--out", str(tmp_path / out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"nas: error: {said}"]
    assert not (tmp_path / out).exists()


def test_int8_export_in_another_format_is_one_line(searched_synthetic, tmp_path, run):
    code, out, err = run("export", searched_synthetic("cnn", 3, 1)[0], "--best", "--int8",
                         "--format", "torchscript", "--out", tmp_path / "m.pt")
    assert code == 2
    assert err.strip().splitlines() == ["nas: error: --int8 writes tflite or onnx; got --format "
                                        "torchscript (valid: tflite, onnx)"]
