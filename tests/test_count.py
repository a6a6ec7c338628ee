"""nas count: exact figures for torchvision models, specs and TorchScript files."""

import json

import thop
import torch

from nas.arch import ArchSpec
from nas.budget import count_macs, count_params
from nas.count import count, count_module
from nas.model import Normalized, build

SPEC = "c16k3-dw32k3s2-ir48k5e4-gap_fc64"


def test_torchvision_models_print_their_published_parameter_counts(run):
    for name, params in (("alexnet", "61,100,840"), ("resnet34", "21,797,672")):
        code, out, err = run("count", name)
        assert code == 0, err
        total = next(line for line in out.splitlines() if line.startswith("total")).split()
        assert total[1] == params, out
    assert count("resnet18", (3, 32, 32), 50).params == 11_202_162  # adapted head: 512*50+50


def test_spec_counts_come_from_the_spec_and_match_the_built_model():
    spec = ArchSpec.from_string(SPEC, 1, 48, 48, 7)
    result = count(SPEC, (1, 48, 48), 7)
    assert result.params == count_params(spec) == sum(p.numel() for p in build(spec).parameters())
    assert result.macs == count_macs(spec)
    assert [r.name for r in result.rows][-2:] == ["head.hidden", "head.classifier"]
    # Counting the built module by hooks gives the same per-layer MACs.
    module = count_module(build(spec), "m", (1, 48, 48))
    assert module.params == result.params and module.macs == result.macs


def test_thops_figure_is_shown_beside_ours_and_differs_only_by_what_is_not_a_mac(run):
    spec = ArchSpec.from_string(SPEC, 1, 48, 48, 7)
    model = build(spec).eval()
    ops, _ = thop.profile(model, inputs=(torch.zeros(1, 1, 48, 48),), verbose=False)
    result = count(SPEC, (1, 48, 48), 7)
    assert result.thop == int(ops) > result.macs  # batch norm and the pooling are ops to thop
    code, out, err = run("count", SPEC, "--input", "1x48x48", "--classes", 7)
    assert code == 0 and f"thop: {int(ops):,} MACs" in out, err


def test_a_torchscript_file_nas_did_not_export_is_counted_only_with_trust_code(tmp_path, run):
    spec = ArchSpec.from_string(SPEC, 1, 48, 48, 7)
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(Normalized(build(spec), [0.5], [0.25]).eval()), str(path))
    (tmp_path / "model.json").write_text(json.dumps({"input_shape": [1, 48, 48]}))  # the user's own
    code, _, err = run("count", path, "--input", "1x48x48")
    assert code == 2 and "is not a sidecar nas export wrote" in err and "add --trust-code" in err
    result = count(str(path), (1, 48, 48), trust_code=True)  # run in a child process
    assert result.params == count_params(spec)
    assert result.macs == count_macs(spec)  # torch's FLOP counter: conv + matmul, / 2
    code, out, _ = run("count", path, "--input", "1x48x48", "--trust-code")
    assert code == 0 and f"{count_params(spec):,}" in out.splitlines()[-1]


def test_bad_count_inputs_get_one_line(tmp_path, run):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    for args, message in ((["bogus"], "'bogus' is not a file, a torchvision model"),
                          (["resnet18", "--input", "3x224"], "bad --input '3x224'"),
                          (["resnet18", "--input", "3x30000x30000"], "H, W from 1 to 4096"),
                          (["resnet18", "--classes", "0"], "--classes must be an integer >= 1, got 0"),
                          ([tmp_path / "junk.pt", "--trust-code"], "pass --input CxHxW"),
                          ([tmp_path / "junk.pt"], "add --trust-code"),
                          ([tmp_path / "junk.pt", "--input", "1x28x28", "--trust-code"],
                           "is not a TorchScript file")):
        code, _, err = run("count", *args)
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_a_torchvision_model_on_one_channel_input_gets_its_first_conv_adapted(run):
    code, out, err = run("count", "resnet18", "--input", "1x28x28", "--classes", "10")
    assert code == 0, err
    assert out.startswith("resnet18 (first conv adapted to 1 input channel(s)), input 1x28x28")
    conv1 = next(line for line in out.splitlines() if line.startswith("conv1 "))
    assert conv1.split()[2] == f"{64 * 1 * 7 * 7:,}"  # 1 input channel, not 3
    three = count("resnet18", (3, 28, 28), 10)
    assert count("resnet18", (1, 28, 28), 10).params == three.params - 64 * 2 * 7 * 7


def test_a_model_with_computation_the_mac_rule_skips_says_so(run):
    code, out, err = run("count", "vit_b_16")
    assert code == 0, err
    warning = out.splitlines()[-1]
    assert warning.startswith("warning: MACs count Conv2d and Linear layers only; not counted: "
                              "12 MultiheadAttention")
    code, out, _ = run("count", "resnet18")
    assert code == 0 and "warning" not in out  # nothing skipped there
