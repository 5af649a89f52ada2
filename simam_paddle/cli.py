"""Command line: ``python -m simam_paddle <command>``.

Each command is one ``_add_<command>(subparsers)`` function that registers its parser and sets
``func``; the handler imports what it needs lazily, so ``--help`` is fast. A handler raises
``CLIError`` (or ``ValueError``, of which a broken run file's ``RunFileError`` is one) for bad input,
and any ``OSError`` (a missing, unreadable or unwritable file or folder, a run folder in use) is the
user's to fix too: ``main`` prints one line, ``error: ...``, and returns 2 instead of a traceback.
Anything else is a bug and keeps its traceback. The library's messages name function arguments
(``resume=True``, ``image_size=32``); ``main`` says them as the flags they are here (``--resume``,
``--image-size 32``).

The training options of ``train`` and ``ablation`` are generated from
:class:`~simam_paddle.config.TrainConfig`: its fields give their names, types, help and defaults.
"""
import argparse
import dataclasses
import re
import sys
from typing import Any, Iterable, List, Optional

from .config import TRAIN_DEFAULTS, TrainConfig, setting_type, shared_settings

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
        help="write a data set: Caltech101 (embedded 16 classes, a local copy or a download) or digits",
        description=(
            "Write scikit-learn's bundled handwritten digits as PNG class folders. 'digits': "
            "DST/<class>/*.png, ready for `split`. 'cluttered-digits': one digit per canvas among "
            "fragments of other digits, already split into DST/train and DST/eval with no shared "
            "source digit, plus DST/manifest.csv. Re-running with the same options verifies and "
            "writes nothing; a DST holding anything else is refused, never cleaned. 'caltech101': "
            "DST/<class>/<image> class folders of Caltech101, ready for `split`: the embedded 16 classes "
            "(data/caltech16) by default, or any classes from --from (caltech-101.zip, "
            "101_ObjectCategories.tar.gz or the unpacked folder) or from the official archive, downloaded "
            "(resumable) and checked against its MD5. Every image is checked against the committed "
            "SHA-256 manifest before anything is written."
        ),
    )
    parser.add_argument("kind", choices=["caltech101", "digits", "cluttered-digits"], help="which data set")
    parser.add_argument("dst", metavar="DST", help="folder to create (new or empty)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="side of the square images (default: 32 for digits, 128 for cluttered-digits, "
                             "the original JPEGs for caltech101; 32 makes a CIFAR-like Caltech-101)")
    parser.add_argument("--resample", default="nearest", choices=["nearest", "bilinear", "bicubic"],
                        help="digits only: upscaling filter (default: nearest, exact 4x4 blocks at 32)")
    caltech = parser.add_argument_group("caltech101 only")
    caltech.add_argument("--classes", default=None,
                         help="'caltech16' (the embedded subset, default), 'all' (101 classes) or names: a,b,c")
    caltech.add_argument("--from", dest="source", metavar="PATH",
                         help="a local caltech-101.zip, 101_ObjectCategories.tar.gz or unpacked folder "
                              "(default: the embedded copy where it holds the classes, else a download)")
    caltech.add_argument("--url", help="download from here instead of CaltechDATA (with --checksum)")
    caltech.add_argument("--checksum", metavar="ALGO:HEX",
                         help="md5:<hex> or sha256:<hex> of the archive at --url (default: the official MD5)")
    caltech.add_argument("--download-dir", metavar="DIR", help="where the downloaded archive is kept "
                                                               "(default: DST's parent folder)")
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
    from .data.digits import make_cluttered_digits_dataset, make_digits_dataset

    caltech = {"classes": args.classes, "source": args.source, "url": args.url, "checksum": args.checksum,
               "download_dir": args.download_dir}
    caltech = {name: value for name, value in caltech.items() if value is not None}
    if args.kind == "caltech101":
        return _make_caltech(args, caltech)
    if caltech:
        flags = ", ".join(_flag(name) if name != "source" else "--from" for name in caltech)
        raise CLIError(f"{flags}: caltech101 options; {args.kind} does not take them")

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


def _make_caltech(args, options) -> int:
    from .data.caltech import make_caltech101

    digits_only = [flag for flag, value in (("--digit-size", args.digit_size), ("--fragments", args.fragments),
                                            ("--seed", args.seed), ("--noise", args.noise),
                                            ("--max-per-class", args.max_per_class)) if value is not None]
    if digits_only or args.resample != "nearest":
        raise CLIError(f"{', '.join(digits_only) or '--resample'}: digits options; caltech101 takes --classes, "
                       "--from, --image-size, --url, --checksum and --download-dir")
    if "url" in options and "checksum" not in options:
        raise CLIError("--url needs --checksum md5:<hex> or sha256:<hex>: a download is checked before it is used")
    summary = make_caltech101(args.dst, image_size=args.image_size, **options)
    print(summary.format())
    print(f"next: python -m simam_paddle split {args.dst} {args.dst.rstrip('/')}_split")
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
    except KeyboardInterrupt as err:
        from ._quiet import drop_interrupted_loader_noise

        drop_interrupted_loader_noise()  # a data loader caught half-built by the signal: not worth a traceback
        print(_interrupted_line(args, err), file=sys.stderr)
        return getattr(err, "exit_code", 130)
    except (CLIError, ValueError, OSError) as err:
        print(f"error: {_flag_words(_one_line(err))}", file=sys.stderr)
        return 2
    return int(result or 0)


def _interrupted_line(args, err: KeyboardInterrupt) -> str:
    """The one line for Ctrl-C / SIGTERM: where it stopped and how to go on."""
    epoch = getattr(err, "epoch", None)
    if epoch is None:
        return "interrupted"
    where = f"interrupted in epoch {epoch}"
    if args.command != "train":  # demo and ablation resume their unfinished runs themselves
        return f"{where}; continue with the same command"
    if not err.resumable:
        return f"{where}, before any epoch finished; nothing to resume: run the same train command again to start over"
    return f"{where}; continue with: python -m simam_paddle train --output {err.output_dir} --resume"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# Library arguments that are flags here, as messages write them: ``name=value``.
_FLAG_ARGUMENTS = re.compile(r"\b(" + "|".join(sorted([*TRAIN_DEFAULTS, "data", "output"], key=len, reverse=True))
                             + r")=(?=\S)")


def _flag_words(message: str) -> str:
    """A library message in command-line words: ``resume=True`` is ``--resume``, ``image_size=32`` ``--image-size 32``.

    Examples:
        >>> _flag_words("image_size=32 is too small; pass resume=True or data=SPLIT")
        '--image-size 32 is too small; pass --resume or --data SPLIT'
    """
    message = re.sub(r"\bresume=True\b", "--resume", message)
    return _FLAG_ARGUMENTS.sub(lambda m: _flag(m.group(1)) + " ", message)


def _one_line(err: Exception) -> str:
    """The error's message, naming the file of an ``OSError`` that does not name it itself."""
    if isinstance(err, OSError) and err.filename is not None and str(err.filename) not in str(err):
        return f"{err}: {err.filename}"
    return str(err)


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
    from .data.split import split_dataset

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


def _add_train(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on a split folder into a run folder",
        description="Train with the notebook's recipe (Momentum 0.9, L2 weight decay, cosine learning rate from "
        "--lr to 0 over all epochs, cross-entropy) on SPLIT/train, evaluating on SPLIT/eval after every epoch. "
        "RUN gets config.json, history.csv, best_model.pdparams (best eval accuracy), last.* (to resume) and "
        "visualdl/. While a run trains, RUN is locked: a second `train` on it fails at once. `train` starts a RUN "
        "that finished no epoch (no last.json) over. Runs on the GPU if Paddle has one, else on every CPU core. "
        "For several GPUs, start the same "
        "command under `python -m paddle.distributed.launch --gpus 0,1 simam-paddle train ...` (the console "
        "script of `pip install -e .`).",
    )
    parser.add_argument("--data", metavar="SPLIT",
                        help="split folder holding train/ and eval/ (not needed with --resume)")
    parser.add_argument("--output", metavar="RUN", required=True, help="run folder to create (or resume)")
    _add_settings(parser, TRAIN_DEFAULTS)
    parser.add_argument("--resume", action="store_true", help="continue the run in --output where it stopped")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    parser.set_defaults(func=_run_train)


def _default_words(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _add_settings(parser, names: Iterable[str]) -> None:
    """One option per named :class:`TrainConfig` field, with its type and help from the field, its default from
    :data:`TRAIN_DEFAULTS` (the field's, or the notebook recipe's).

    Every option's value is None unless given, so that a resumed run only sees what was typed.
    """
    names = set(names)
    for field in dataclasses.fields(TrainConfig):
        if field.name not in names:
            continue
        meta = field.metadata
        default = meta["default_help"] or _default_words(TRAIN_DEFAULTS[field.name])
        options = {"help": f"{meta['help']} (default: {default})".replace("%", "%%")}
        kind = setting_type(field.name)
        if kind is bool:  # --cache / --no-cache: None unless typed, like every other option
            options.update(action=argparse.BooleanOptionalAction)
        else:
            options.update(type=kind if kind is not str else None, metavar=meta["metavar"],
                           choices=list(meta["choices"]) or None)
        parser.add_argument(_flag(field.name), **options)


def _run_train(args) -> int:
    import os

    from .engine.history import read_history
    from .experiments.runs import train_run

    if args.data is not None and os.path.isfile(args.data):  # the library names split_dataset; here, the command
        raise CLIError(f"--data {args.data!r} is a file; `train` needs a split folder holding train/ and eval/, "
                       f"make one with `python -m simam_paddle split {args.data} SPLIT` and pass --data SPLIT")
    settings = {key: getattr(args, key) for key in TRAIN_DEFAULTS}
    config = train_run(args.data, args.output, resume=args.resume, verbose=2 if args.quiet else 1, **settings)
    rows = read_history(args.output)
    scored = [r for r in rows if r["eval_acc"] is not None]
    if scored:
        best = max(scored, key=lambda r: r["eval_acc"])
        print(f"{config['model']} (attention {config['attention']}): best eval_acc {best['eval_acc']:.4f} "
              f"at epoch {best['epoch']} of {len(rows)}; run folder {args.output}")
    return 0


_COMMANDS.append(_add_train)


def _add_evaluate(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a run's best weights: accuracy, per-class accuracy, confusion matrix",
        description="Rebuild the model from RUN/config.json, load best_model.pdparams and evaluate it on the run's "
        "eval data (or --data), on the convolution kernels it trained with. Prints the accuracy (on the run's "
        "own eval data, on the machine it trained on, it equals the best eval_acc of history.csv) and the accuracy "
        "per class; writes confusion_matrix.csv and confusion_matrix.png.",
    )
    parser.add_argument("run", metavar="RUN", help="run folder written by `train`")
    parser.add_argument("--data", metavar="DIR", help="class folder, or split folder whose eval/ is used "
                        "(default: the run's eval data)")
    parser.add_argument("--batch-size", type=int, help="default: the run's")
    parser.add_argument("--output", metavar="DIR", help="folder for the confusion matrix files (default: RUN for "
                        "the run's own eval data, RUN/evaluations/NAME for --data NAME)")
    _add_kernel_option(parser)
    parser.set_defaults(func=_run_evaluate)


def _add_kernel_option(parser) -> None:
    parser.add_argument("--onednn", action=argparse.BooleanOptionalAction, default=None,
                        help="run the convolutions on oneDNN kernels, or on Paddle's (default: the kernels the run "
                        "trained with, config.json's onednn, so the logits are those of its training; with "
                        "--engine inference: oneDNN where Paddle has it)")
    parser.add_argument("--engine", choices=["dygraph", "inference"], default="dygraph",
                        help="dygraph (default: the logits of training), or inference: Paddle Inference on the CPU, "
                        "several times faster, logits equal to float32 rounding (a near-tie may change class)")


def _run_evaluate(args) -> int:
    from .experiments.runs import evaluate_run

    result = evaluate_run(args.run, data=args.data, batch_size=args.batch_size, output=args.output,
                          onednn=args.onednn, engine=args.engine)
    print(f"acc {result['acc']:.4f}  loss {result['loss']:.4f}")
    if result["best_eval_acc"] is not None and args.data is None:
        print(f"best eval_acc in history.csv {result['best_eval_acc']:.4f}")
    width = max(len(name) for name in result["classes"])
    print(f"\n{'class':<{width}}  accuracy  samples")
    for name, row in zip(result["classes"], result["confusion_matrix"]):
        acc = result["per_class"][name]
        print(f"{name:<{width}}  {'   -    ' if acc != acc else f'{acc:8.4f}'}  {int(row.sum()):7d}")
    if result["write_error"]:
        print(f"error: {_flag_words(result['write_error'])}", file=sys.stderr)
        return 2
    print("\nwrote " + ", ".join(result["files"]))
    return 0


_COMMANDS.append(_add_evaluate)


def _add_export(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="save a run's model for inference (paddle.jit.save) and check its logits",
        description="Write DIR/model.json and DIR/model.pdiparams (Paddle 3; older Paddle writes model.pdmodel) "
        "with input [None, 3, S, S] float32 named 'image', then load them back and check the logits equal the "
        "trained network's.",
    )
    parser.add_argument("run", metavar="RUN", help="run folder written by `train`")
    parser.add_argument("--output", metavar="DIR", required=True, help="folder for the exported model")
    parser.add_argument("--weights", choices=["best", "last"], default="best", help="default: best")
    parser.set_defaults(func=_run_export)


def _run_export(args) -> int:
    from .experiments.runs import export_run

    result = export_run(args.run, args.output, weights=args.weights)
    print(f"exported {', '.join(result['files'])}; max |logit difference| vs the network: {result['max_abs_diff']:.2e}")
    return 0


_COMMANDS.append(_add_export)


def _add_predict(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify image files or folders with a run's model",
        description="Rebuild the model from RUN/config.json with its best weights and print, per image, the "
        "--top-k most probable classes with their probabilities. Images go through the run's evaluation "
        "transforms. Folders are searched recursively for images (hidden files skipped). An image that cannot "
        "be read gets a line saying so and the others are still predicted; the exit status is then 1.",
    )
    parser.add_argument("run", metavar="RUN", help="run folder written by `train`")
    parser.add_argument("images", metavar="IMAGE_OR_FOLDER", nargs="+", help="image files or folders of images")
    parser.add_argument("--top-k", type=int, default=5, metavar="K", help="classes per image (default: 5)")
    parser.add_argument("--output", metavar="CSV", help="also write the predictions to this CSV file")
    parser.add_argument("--weights", choices=["best", "last"], default="best", help="default: best")
    parser.add_argument("--batch-size", type=int, help="default: the run's")
    _add_kernel_option(parser)
    parser.set_defaults(func=_run_predict)


def _run_predict(args) -> int:
    from .experiments.prediction import check_predictions_output, predict_images, write_predictions_csv

    if args.output:
        check_predictions_output(args.output)  # before predicting: a run's own files are never replaced
    rows = predict_images(args.run, args.images, top_k=args.top_k, weights=args.weights, batch_size=args.batch_size,
                          onednn=args.onednn, engine=args.engine)
    if not rows:
        raise CLIError(f"no images found in {', '.join(args.images)}")
    for row in rows:
        print(row.format())
    if args.output:
        write_predictions_csv(rows, args.output)
        print(f"wrote {args.output}")
    return 1 if any(row.error for row in rows) else 0


_COMMANDS.append(_add_predict)


def _add_plot(subparsers) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="plot loss and accuracy curves of one or more runs",
        description="Training (solid) and evaluation (dashed) loss and accuracy per epoch, one colour per run.",
    )
    parser.add_argument("runs", metavar="RUN", nargs="+", help="run folders written by `train`")
    parser.add_argument("--output", default="curves.png", help="PNG to write (default: curves.png)")
    parser.add_argument("--labels", nargs="+", help="legend names, one per RUN (default: folder names)")
    parser.add_argument("--title", help="figure title")
    parser.set_defaults(func=_run_plot)


def _run_plot(args) -> int:
    from .plots import plot_curves

    plot_curves(args.runs, labels=args.labels, output=args.output, title=args.title)
    print(f"wrote {args.output}")
    return 0


_COMMANDS.append(_add_plot)


def _add_demo(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the main job: TowerNet with SimAM vs without, on the embedded digits data",
        description="Builds the digits data (scikit-learn's bundled copy, written as PNGs) if missing, splits it, "
        "trains TowerNet with attention simam and none (same seed and settings), and writes curves.png, "
        "attention.png and summary.md. Re-running skips finished runs and resumes unfinished ones.",
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run (about half a minute on 2 CPU cores)")
    parser.add_argument("--output", default="runs/demo", help="folder for data, runs and results (default: runs/demo)")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    parser.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from .experiments.demo import run_demo

    result = run_demo(args.output, quick=args.quick, verbose=2 if args.quiet else 1)
    print("\n" + result["summary"])
    return 0


_COMMANDS.append(_add_demo)


def _add_ablation(subparsers) -> None:
    parser = subparsers.add_parser(
        "ablation",
        help="train one model with several attentions and seeds, same settings; summarise mean and spread",
        description="Trains DIR/<model>_<attention>_seed<seed> for every seed and attention, one after another "
        "(seed by seed), with the `train` recipe and the same settings, then writes DIR/summary.md (best eval "
        "accuracy per run, and its mean ± sample standard deviation over seeds per attention, with time per "
        "epoch and parameter counts) and DIR/curves.png (mean curves per attention). Re-running skips finished "
        "runs and resumes interrupted ones.",
    )
    parser.add_argument("--data", metavar="SPLIT", required=True, help="split folder holding train/ and eval/")
    parser.add_argument("--output", metavar="DIR", required=True, help="folder for the runs and the summary")
    _add_settings(parser, ["model"])
    parser.add_argument("--attentions", nargs="+", default=["none", "se", "simam"], metavar="NAME",
                        help="attentions to compare, 'none' for none (default: none se simam)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="SEED",
                        help="seeds, one run per attention and seed (default: 0 1 2)")
    _add_settings(parser, shared_settings())
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    parser.set_defaults(func=_run_ablation)


def _run_ablation(args) -> int:
    from .experiments.ablation import run_ablation

    settings = {key: getattr(args, key) for key in shared_settings()}
    model = args.model if args.model is not None else TRAIN_DEFAULTS["model"]
    result = run_ablation(args.data, args.output, attentions=args.attentions, seeds=args.seeds, model=model,
                          verbose=2 if args.quiet else 1, **settings)
    print("\n" + result["summary"])
    print(f"wrote {', '.join(result['files'])} ({result['seconds'] / 60:.1f} min)")
    return 0


_COMMANDS.append(_add_ablation)


def _add_report(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="rebuild an experiment's tables and curves from its runs' config.json and history.csv",
        description="Reads every run folder under DIR (no weights needed, so it works on the committed "
        "docs/results/<experiment>/ folders) and writes DIR/summary.md: per attention the best eval accuracy "
        "(mean ± sample std over seeds), the paired difference to --baseline with its 95 % t interval, and every "
        "run; plus DIR/curves.png. The same histories always give the same summary.md.",
    )
    parser.add_argument("results", metavar="DIR", help="folder holding run folders")
    parser.add_argument("--output", metavar="DIR", help="where summary.md and curves.png go (default: DIR)")
    parser.add_argument("--baseline", default="none", help="attention to pair the others against (default: none)")
    parser.add_argument("--no-figure", action="store_true", help="write only summary.md")
    parser.add_argument("--update", metavar="MARKDOWN",
                        help="also rewrite the block between '<!-- report DIR -->' and '<!-- end report -->' in this "
                        "file (e.g. docs/RESULTS.md) with the new tables, DIR written as given here")
    parser.add_argument("--mixed-kernels", action="store_true",
                        help="pool runs whose convolutions ran on different kernels (oneDNN / Paddle's), refused "
                             "otherwise")
    parser.set_defaults(func=_run_report)


def _run_report(args) -> int:
    from .experiments.report import write_report

    result = write_report(args.results, output=args.output, baseline=args.baseline, figure=not args.no_figure,
                          update=args.update, mixed_kernels=args.mixed_kernels)
    print(result["summary"])
    print(f"wrote {', '.join(result['files'])}")
    return 0


_COMMANDS.append(_add_report)

def _add_explain(subparsers) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="Grad-CAM: which image regions a run's network uses for its decision",
        description="Compute Grad-CAM maps of RUN (and of each --compare run, side by side) for the images, at each "
        "model's default layer (the last convolutional stage) or --layer, and write one figure: a row per image, "
        "the image then one overlay per run, each naming the run's prediction and its probability. Prints one "
        "line per image and run.",
    )
    parser.add_argument("run", metavar="RUN", help="run folder written by `train`")
    parser.add_argument("images", metavar="IMAGE_OR_FOLDER", nargs="+", help="image files or folders of images")
    parser.add_argument("--compare", nargs="+", metavar="RUN", default=[], help="more runs, one column each")
    parser.add_argument("--layer", help="sublayer to explain, a dotted path such as b5 or layer4 (default: the "
                        "model's own, from the registry)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--class", dest="class_name", metavar="NAME", help="explain this class for every image "
                        "(default: each run's predicted class)")
    target.add_argument("--class-of-folder", action="store_true", help="explain the class named by each image's "
                        "folder (its true class in a split's eval/<class>/)")
    parser.add_argument("--output", metavar="FILE", default="gradcam.png", help="figure to write, PNG or (ending in "
                        ".jpg) JPEG (default: gradcam.png)")
    parser.add_argument("--weights", choices=["best", "last"], default="best", help="default: best")
    parser.set_defaults(func=_run_explain)


def _run_explain(args) -> int:
    import os

    from .experiments.explain import explain_images
    from .experiments.prediction import find_images
    from .plots import plot_grad_cam

    if os.path.exists(args.output) and any(os.path.samefile(args.output, p) for p in find_images(args.images)):
        raise CLIError(f"--output {args.output} is one of the images to explain; the figure would replace it. "
                       "Choose another --output")
    result = explain_images([args.run, *args.compare], args.images, layer=args.layer, class_name=args.class_name,
                            class_of_folder=args.class_of_folder, weights=args.weights)
    for r, path in enumerate(result.paths):
        for c, label in enumerate(result.labels):
            print(f"{path}: {label}: predicted {result.predicted[c][r]} {result.probability[c][r]:.4f}, "
                  f"map of {result.explained[c][r]} at {result.layers[c]}")
    plot_grad_cam(result, output=args.output)
    print(f"wrote {args.output}")
    return 0


_COMMANDS.append(_add_explain)


def _add_robustness(subparsers) -> None:
    parser = subparsers.add_parser(
        "robustness",
        help="evaluate trained runs on corrupted copies of their eval images (noise, blur, JPEG, ...)",
        description="Evaluate each run's best weights on its evaluation images, clean and with each corruption "
        "(ImageNet-C style, computed in memory, deterministic given --seed) at each severity; every run sees the "
        "same corrupted pixels. Writes DIR/robustness.csv (one row per run and condition) and DIR/robustness.json "
        "(what ran: corruption parameters, seed, images, kernels, Paddle version, device); `report` on an "
        "experiment folder holding robustness.csv renders it.",
    )
    parser.add_argument("runs", metavar="RUN", nargs="+", help="run folders, or one folder holding them")
    parser.add_argument("--output", metavar="DIR", required=True, help="folder for robustness.csv and .json")
    parser.add_argument("--corruptions", nargs="+", metavar="NAME", help="default: all (gaussian_noise, "
                        "gaussian_blur, jpeg, brightness, contrast, rotation, occlusion)")
    parser.add_argument("--severities", nargs="+", type=int, metavar="S", default=[1, 2, 3, 4, 5],
                        help="some of 1 (mildest) to 5 (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="fixes the random parts of the corruptions (default: 0)")
    parser.add_argument("--data", metavar="DIR", help="class folder, or split folder whose eval/ is used "
                        "(default: the runs' own eval data)")
    parser.add_argument("--batch-size", type=int, help="default: each run's")
    parser.add_argument("--weights", choices=["best", "last"], default="best", help="default: best")
    parser.add_argument("--quiet", action="store_true", help="no line per condition")
    parser.set_defaults(func=_run_robustness)


def _run_robustness(args) -> int:
    from .experiments.report import robustness_table
    from .experiments.robustness import evaluate_robustness

    result = evaluate_robustness(args.runs, output=args.output, corruptions=args.corruptions,
                                 severities=args.severities, seed=args.seed, data=args.data,
                                 batch_size=args.batch_size, weights=args.weights,
                                 progress=None if args.quiet else print)
    print(robustness_table(result["rows"]))
    print(f"wrote {', '.join(result['files'])}")
    return 0


_COMMANDS.append(_add_robustness)


def _add_convert_official(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert-official",
        help="turn a checkpoint of the official SimAM code (PyTorch) into a run folder",
        description="Read CHECKPOINT (torch.save of the official main_cifar.py / main_imagenet.py, or the released "
        "ImageNet weights; PyTorch is not needed) and write RUN/config.json and RUN/best_model.pdparams, so "
        "`evaluate RUN --data ...`, `export RUN` and `train --init-from RUN` take it.",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="the .pth / .pth.tar file")
    parser.add_argument("--model", required=True, help="cifar_resnet20/32/56/110 (official resnet20...), resnet18/34/"
                        "50/101, resnext50_32x4d or mobilenet_v2")
    parser.add_argument("--attention", required=True, choices=["none", "simam", "se", "cbam"],
                        help="the official --attention_type the checkpoint was trained with")
    parser.add_argument("--attention-param", type=float, metavar="X", help="the official --attention_param: "
                        "SimAM's lambda (default 0.1, as the released weights) or SE/CBAM's reduction (default 4)")
    parser.add_argument("--output", metavar="RUN", required=True, help="run folder to create")
    parser.add_argument("--classes", nargs="+", metavar="NAME", help="class names in logit order, or one text file "
                        "with one name a line (default: 0, 1, ...)")
    parser.set_defaults(func=_run_convert_official)


def _run_convert_official(args) -> int:
    import os

    from .experiments.official_runs import convert_official_checkpoint

    classes = args.classes
    if classes and len(classes) == 1 and os.path.isfile(classes[0]):
        from ._io import read_text

        classes = [line.strip() for line in read_text(classes[0], "a class list").splitlines() if line.strip()]
    config = convert_official_checkpoint(args.checkpoint, args.output, args.model, args.attention,
                                         args.attention_param, classes=classes)
    options = ", ".join(f"{k} {config[k]}" for k in ("e_lambda", "reduction") if config.get(k) is not None)
    print(f"{config['model']} (attention {config['attention']}{', ' + options if options else ''}), "
          f"{config['num_classes']} classes, image size {config['image_size']}: wrote {args.output}")
    return 0


_COMMANDS.append(_add_convert_official)
