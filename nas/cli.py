"""Command line: the parser made of the commands (nas.commands), and how it ends. Bad input of any kind ends with one line on stderr ("nas: error: ...") and exit code 2
(``--debug``: tracebacks). Ctrl-C ends a search with code 130 after writing its front."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time

from nas.errors import UsageError
from nas.files import DISK_FULL

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    import nas
    from nas.commands import COMMANDS

    parser = _Parser(prog="nas", description="Neural-architecture search under a parameter budget.")
    parser.add_argument("--version", action="version", version=f"nas {nas.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                title="commands", metavar="COMMAND")
    for name in COMMANDS:
        command = importlib.import_module(f"nas.commands.{name}")
        p = sub.add_parser(name, help=command.HELP)
        command.add(p)
        p.set_defaults(func=command.run)
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
