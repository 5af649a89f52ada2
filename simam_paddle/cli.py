"""Command line: ``python -m simam_paddle <command>``.

Each command is one ``_add_<command>(subparsers)`` function that registers its parser and sets
``func``; the handler imports what it needs lazily, so ``--help`` is fast. A handler raises
``CLIError`` (or ``ValueError``/``FileNotFoundError``) for bad input: ``main`` prints one line,
``error: ...``, and returns 2 instead of a traceback.
"""
import argparse
import sys
from typing import List, Optional

__all__ = ["main", "build_parser", "CLIError"]


class CLIError(Exception):
    """A user error that the command line reports as one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simam_paddle",
        description="SimAM for PaddlePaddle: data preparation, training, evaluation and export.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    subparsers.required = True
    for add in _COMMANDS:
        add(subparsers)
    return parser


_COMMANDS: list = []


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except (CLIError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return int(result or 0)
