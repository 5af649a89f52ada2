"""An attention ablation: one model with several attention layers and seeds, same settings, one report.

``run_ablation`` trains ``<model>_<attention>_seed<seed>`` run folders one after another (seed by
seed, so an interrupted ablation already holds complete seeds to compare), skipping finished runs
and resuming interrupted ones, then writes ``summary.md`` (the mean and spread over seeds per
attention, and every run) and ``curves.png`` (mean curves per attention).
"""
import os
import time
from typing import Any, Dict, Sequence

from .._io import atomic_write_text
from ..plots import plot_mean_curves
from .config import TRAIN_DEFAULTS, per_run_settings
from .report import aggregate_runs, format_markdown_table, summarize_runs

__all__ = ["run_ablation"]


def _check_choices(attentions: Sequence[str], seeds: Sequence[int]) -> None:
    from ..layers.attention import available_attentions

    known = available_attentions()
    unknown = [a for a in attentions if a not in known]
    if unknown:
        raise ValueError(f"unknown attention {unknown}; available: {', '.join(known)}")
    if not attentions or len(set(attentions)) != len(attentions):
        raise ValueError(f"attentions must be distinct names, at least one; got {list(attentions)}")
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"seeds must be distinct integers, at least one; got {list(seeds)}")


def run_ablation(data: str, output: str, attentions: Sequence[str] = ("none", "se", "simam"),
                 seeds: Sequence[int] = (0, 1, 2), model: str = TRAIN_DEFAULTS["model"], verbose: int = 1,
                 **settings: Any) -> Dict[str, Any]:
    """Train ``model`` with each attention and seed under the same settings and summarise the runs.

    Args:
        data (str): split folder with ``train/`` and ``eval/``.
        output (str): folder for the run folders, ``summary.md`` and ``curves.png``.
        attentions (list[str], optional): attention names (``"none"`` for none). Default: ("none", "se", "simam").
        seeds (list[int], optional): seeds; each attention is trained once per seed. Default: (0, 1, 2).
        model (str, optional): a zoo model. Default: :data:`TRAIN_DEFAULTS` ``["model"]``, "towernet".
        verbose (int, optional): 0 silent, 1 progress bars, 2 one line per epoch. Default: 1.
        **settings: further fields of :class:`simam_paddle.experiments.TrainConfig` (epochs, image_size,
            ...), the same for every run; the per-run ones (model, attention, seed) are the arguments above.

    Returns:
        dict: ``rows`` (per run, see :func:`simam_paddle.experiments.report.summarize_runs`), ``groups`` (per
        attention, see :func:`simam_paddle.experiments.report.aggregate_runs`), ``summary`` (the markdown of
        summary.md), ``seconds`` (wall time of this call) and ``files``.

    Examples:
        >>> result = run_ablation("data/digits_split", "runs/ablation", epochs=2, image_size=128)  # doctest: +SKIP
        >>> [(g["attention"], g["n"]) for g in result["groups"]]  # doctest: +SKIP
        [('none', 3), ('se', 3), ('simam', 3)]
    """
    from .runs import ATTENTION_OPTIONS, complete_run

    attentions, seeds = list(attentions), list(seeds)
    _check_choices(attentions, seeds)
    for key in per_run_settings():
        if key in settings:
            raise ValueError(f"{key!r} is set per run by run_ablation; pass attentions/seeds/model instead")
    layer_options = {option for options in ATTENTION_OPTIONS.values() for option in options}
    start = time.time()
    runs = []
    for seed in seeds:
        for attention in attentions:
            run = os.path.join(output, f"{model}_{attention}_seed{seed}")
            if verbose:
                print(f"\n== {model}, attention {attention}, seed {seed}: {run}", flush=True)
            # Layer options apply to the attentions that take them: e_lambda to SimAM, reduction to SE/CBAM.
            own = {k: v for k, v in settings.items()
                   if k not in layer_options or k in ATTENTION_OPTIONS.get(attention, ())}
            complete_run(data, run, verbose=verbose, model=model, attention=attention, seed=seed, **own)
            runs.append(run)
    seconds = time.time() - start

    rows = summarize_runs(runs)
    order = {a: i for i, a in enumerate(attentions)}
    rows.sort(key=lambda r: (order[r["attention"]], r["seed"]))
    groups = aggregate_runs(rows, by=("data", "model", "attention"))
    curves = os.path.join(output, "curves.png")
    first = rows[0]
    plot_mean_curves(groups, output=curves,
                     title=f"{model} on {first['data']}: {first['image_size']} px, {first['planned_epochs']} "
                     f"epochs, {len(seeds)} seeds")
    summary = _summary(rows, groups)
    path = os.path.join(output, "summary.md")
    atomic_write_text(summary, path)
    return {"rows": rows, "groups": groups, "summary": summary, "seconds": seconds, "files": [path, curves]}


def _summary(rows, groups) -> str:
    first = rows[0]
    setting = (f"data {first['data_path']} ({first['train_samples']} train / {first['eval_samples']} eval images, "
               f"{first['num_classes']} classes), {first['image_size']} px, {first['planned_epochs']} epochs, "
               f"batch {first['batch_size']}, lr {first['lr']}, weight decay {first['weight_decay']}, "
               f"Paddle {first['paddle_version']}")
    return "\n".join([
        f"# Ablation: {first['model']} attention on {first['data']}",
        "",
        f"Same settings for every run: {setting}.",
        "",
        "Best eval accuracy per run, then mean ± sample standard deviation over seeds; s/epoch covers "
        "training and evaluation.",
        "",
        format_markdown_table(groups),
        "",
        format_markdown_table(rows),
        "",
        "Curves (mean over seeds, range shaded): curves.png.",
        "",
    ])
