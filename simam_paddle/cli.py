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


def _add_split(subparsers) -> None:
    parser = subparsers.add_parser(
        "split",
        help="split a folder of class folders (or a .zip of one) into train/ and eval/",
        description="Per class, the valid images in sorted name order: every N-th (the 0th, N-th, ...) goes to "
        "DST/eval/<class>/, the rest to DST/train/<class>/. The source is only read; DST gets a manifest "
        "(split_manifest.csv) so re-running is safe. A DST with files the split did not write is refused.",
    )
    parser.add_argument("src", help="folder of class folders, or a .zip of one (a top folder such as "
                        "Images/ is looked through)")
    parser.add_argument("dst", help="destination folder (new, empty, or an earlier split's)")
    parser.add_argument("--eval-every", type=int, default=5, metavar="N",
                        help="every N-th image goes to eval (default: 5)")
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    parser.set_defaults(func=_run_split)


def _run_split(args) -> int:
    from .split import split_dataset

    report = split_dataset(args.src, args.dst, eval_every=args.eval_every, progress=False if args.no_progress else None)
    print(report.summary())
    if report.skipped:
        print(f"\nskipped {len(report.skipped)} file(s):")
        for item in report.skipped:
            print(f"  {item.source}: {item.reason}")
    for warning in report.warnings:
        print(f"warning: {warning}")
    print(f"\n{report.written} written, {report.unchanged} unchanged, {report.removed} removed; "
          f"manifest: {report.manifest}")
    return 0


_COMMANDS.append(_add_split)
