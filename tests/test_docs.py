"""The manual's machine-made parts stay true: the CLI reference is what the parser says,
and `nas` with no command lists the commands."""

import importlib.util
import subprocess
import sys

from conftest import REPO


def _generator():
    spec = importlib.util.spec_from_file_location("generate_cli", REPO / "docs" / "generate_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_is_what_the_parser_says():
    generator = _generator()
    assert generator.OUT.read_text() == generator.render(), \
        "docs/cli.md is out of date: run python docs/generate_cli.py"
    for command in ("search", "pareto", "export", "train", "baseline", "compare", "count", "dashboard"):
        assert f"## `nas {command}`" in generator.render()


def test_nas_alone_lists_the_commands_a_line_each():
    proc = subprocess.run([sys.executable, "-m", "nas"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "usage: nas" in proc.stdout
    for command, words in (("search", "search architectures"), ("export", "TorchScript, ONNX or int8 TFLite"),
                           ("dashboard", "optuna-dashboard")):
        assert command in proc.stdout and words in proc.stdout
