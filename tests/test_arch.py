import json

import pytest

from nas.arch import ArchSpec, Block, Head, SpecError

EXAMPLES = [
    "c32k3-c64k3p-flat",
    "c16k3s2-dw32k3-ir32k5e4-ir48k3s2e3p-gap_fc32_d0.1-hardswish",
    "c8k5s2p-c16k3-flat_fc64_d0.25-silu-nobn",
    "c16k3-r16k3-r32k5s2p-gap",
    "c8k3s2-dw16k3se-ir24k5s2e4sep-gap_d0.1-relu6",
    "d8k3-d12k5p-d16k3-gap_fc16-nobn",
]


@pytest.mark.parametrize("text", EXAMPLES)
def test_block_string_and_json_round_trip(text):
    spec = ArchSpec.from_string(text, 1, 28, 28, 10)
    assert spec.to_string() == text
    again = ArchSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.to_string() == text


def test_fields_are_plain_data():
    spec = ArchSpec(3, 32, 32, 10, (Block("dw", 16, 3, 2),), Head("gap", 0, 0.1))
    flat = json.dumps(spec.to_dict())  # would raise on anything but plain values
    assert '"op": "dw"' in flat


@pytest.mark.parametrize("text, message", [
    ("c32k3-c64x3-gap", "bad block"),
    ("c32k4-gap", "odd k"),
    ("c32k3", "no head"),
    ("c32k3-gap_q3", "bad head option"),
    ("dw32k3e4-gap", "only ir blocks"),
    ("c32k3-gap-tanh", "bad block"),
    ("c32k3se-gap", "only dw and ir blocks take squeeze-excitation"),
    ("d16k3s2-gap", "a dense layer concatenates its input, so it cannot stride"),
])
def test_bad_block_strings_say_what_is_wrong(text, message):
    with pytest.raises(SpecError, match=message):
        ArchSpec.from_string(text, 1, 28, 28, 10)


def test_from_dict_rejects_foreign_json():
    with pytest.raises(SpecError):
        ArchSpec.from_dict({"layers": []})


def test_a_residual_block_cannot_narrow():
    from nas.budget import count_params

    with pytest.raises(SpecError, match="cannot narrow 32 channels to 16"):
        count_params(ArchSpec.from_string("c32k3-r16k3-gap", 1, 28, 28, 10))
