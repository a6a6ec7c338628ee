"""Write docs/cli.md, the command-line reference, from nas's own argument parser, so the
reference cannot drift from the flags (tests/test_docs.py fails when the file is stale).

    python docs/generate_cli.py          # rewrite docs/cli.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli import build_parser

OUT = Path(__file__).with_name("cli.md")
WIDTH = 100  # fixed, so the text does not depend on the terminal it was made in


def _fixed_width(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=WIDTH)
    return parser


def render() -> str:
    parser = _fixed_width(build_parser())
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    parts = ["# Command-line reference", "",
             "Generated from the argument parser by `python docs/generate_cli.py`; do not edit.",
             "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, sub in commands.choices.items():
        parts += [f"## `nas {name}`", "", helps.get(name, ""), "", "```text",
                  _fixed_width(sub).format_help().rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
