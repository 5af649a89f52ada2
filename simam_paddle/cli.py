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


def _add_make_data(subparsers) -> None:
    parser = subparsers.add_parser(
        "make-data",
        help="write an offline demo data set (handwritten digits, plain or cluttered)",
        description=(
            "Write scikit-learn's bundled handwritten digits as PNG class folders. 'digits': "
            "DST/<class>/*.png, ready for `split`. 'cluttered-digits': one digit per canvas among "
            "fragments of other digits, already split into DST/train and DST/eval with no shared "
            "source digit, plus DST/manifest.csv. Re-running with the same options verifies and "
            "writes nothing; a DST holding anything else is refused, never cleaned."
        ),
    )
    parser.add_argument("kind", choices=["digits", "cluttered-digits"], help="which data set")
    parser.add_argument("dst", metavar="DST", help="folder to create (new or empty)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="side of the square images (default: 32 for digits, 128 for cluttered-digits)")
    parser.add_argument("--resample", default="nearest", choices=["nearest", "bilinear", "bicubic"],
                        help="digits only: upscaling filter (default: nearest, exact 4x4 blocks at 32)")
    clutter = parser.add_argument_group("cluttered-digits only")
    clutter.add_argument("--digit-size", type=int, nargs=2, metavar=("MIN", "MAX"),
                         help="side range of the placed digit (default: 32 56)")
    clutter.add_argument("--fragments", type=int, help="distracting fragments per image (default: 8)")
    clutter.add_argument("--fragment-size", type=int, help="side of each fragment (default: 12)")
    clutter.add_argument("--seed", type=int, help="random seed (default: 0)")
    clutter.add_argument("--samples-per-digit", type=int,
                         help="train images per train source digit (default: 1, 1433 images)")
    clutter.add_argument("--eval-samples-per-digit", type=int,
                         help="eval images per eval source digit (default: 1, 364 images)")
    clutter.add_argument("--noise", type=int, help="largest additive noise value, 0..255 (default: 32)")
    clutter.add_argument("--eval-every", type=int, help="every N-th digit of a class is eval (default: 5)")
    clutter.add_argument("--max-per-class", type=int,
                         help="use only the first N source digits of each class, for quick runs (default: all)")
    parser.add_argument("--grid", metavar="PNG", help="also save a grid of sample images there")
    parser.set_defaults(func=_run_make_data)


def _run_make_data(args) -> int:
    from .digits import make_cluttered_digits_dataset, make_digits_dataset

    options = {
        "digit_size": args.digit_size, "fragments": args.fragments, "fragment_size": args.fragment_size,
        "seed": args.seed, "samples_per_digit": args.samples_per_digit,
        "eval_samples_per_digit": args.eval_samples_per_digit, "noise": args.noise,
        "eval_every": args.eval_every, "max_per_class": args.max_per_class, "image_size": args.image_size,
    }
    options = {name: value for name, value in options.items() if value is not None}
    if args.kind == "digits":
        misplaced = sorted(set(options) - {"image_size"})
        if misplaced:
            flags = ", ".join("--" + name.replace("_", "-") for name in misplaced)
            raise CLIError(f"{flags}: cluttered-digits options; digits takes only --image-size and --resample")
        summary = make_digits_dataset(args.dst, resample=args.resample, **options)
    else:
        if args.resample != "nearest":
            raise CLIError("--resample only applies to digits; cluttered-digits always resizes bicubically")
        summary = make_cluttered_digits_dataset(args.dst, **options)
    print(summary.format())
    if args.grid:
        from .plots import plot_sample_grid

        plot_sample_grid(args.dst, output=args.grid)
        print(f"sample grid: {args.grid}")
    return 0


_COMMANDS.append(_add_make_data)


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
