"""Compare finished runs: one row per run folder, mean and spread over seeds, markdown tables, mean curves.

Everything here reads run folders only (``config.json`` and ``history.csv`` as ``train`` writes them),
so runs trained on another machine, e.g. a GPU, can be compared without retraining:

- ``summarize_runs``: one row per run (model, attention, seed, data, best eval accuracy and its epoch,
  time per epoch, parameter count, ...).
- ``aggregate_runs``: rows grouped (by default by data, model and attention), with the mean and the
  sample standard deviation of the best eval accuracy over the group's seeds.
- ``format_markdown_table``: either kind of row as a markdown table.
- ``plot_mean_curves``: per group, the mean eval accuracy and training loss per epoch, with the
  range over seeds shaded.
"""
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from .._paddle import require_paddle

require_paddle()  # a clear message for a missing Paddle; a quiet import if this module loads it

import paddle  # noqa: E402

from .._io import atomic_write_text, read_text
from ..engine.history import read_history
from ..plots import plot_mean_curves
from .config import compared_settings
from .runs import run_folders

__all__ = [
    "summarize_runs", "aggregate_runs", "format_markdown_table", "paired_differences", "format_paired_table",
    "write_report", "report_block", "check_kernels", "robustness_runs", "robustness_table", "run_folders",
]

# The training settings a row carries: those that change what is trained (epochs as planned_epochs).
_ROW_SETTINGS = [key for key in compared_settings() if key != "epochs"]
# Settings that must agree within a group: a mean over seeds is only a mean over seeds if nothing else varies.
_SAME_SETTINGS = ("planned_epochs", *_ROW_SETTINGS, "train_samples", "eval_samples", "num_classes", "framework")

RUN_COLUMNS = ["name", "data", "model", "attention", "seed", "best_eval_acc", "best_epoch", "final_eval_acc", "epochs",
               "time_per_epoch", "params", "kernels"]
GROUP_COLUMNS = ["data", "model", "attention", "n", "best_eval_acc_mean", "best_epoch_mean", "final_eval_acc_mean",
                 "epochs", "time_per_epoch", "params"]
_HEADERS = {
    "name": "run", "best_eval_acc": "best eval acc (%)", "best_epoch": "best epoch",
    "time_per_epoch": "s/epoch", "params": "trainable parameters", "n": "seeds",
    "best_eval_acc_mean": "best eval acc (%), mean ± std", "best_epoch_mean": "best epoch (mean)",
    "final_eval_acc": "final eval acc (%)", "total_time": "training time (s)",
    "final_eval_acc_mean": "final eval acc (%), mean ± std",
    "kernels": "convolutions: oneDNN / Paddle",
}
_MEAN_STD = {"best_eval_acc_mean": "best_eval_acc_std", "final_eval_acc_mean": "final_eval_acc_std"}
_METRICS = {"mean_corruption_acc": "mean accuracy over all corruptions and severities",
            "retained_acc": "corrupted accuracy as a fraction of the clean one",
            "best_eval_acc": "best eval accuracy (the highest over the epochs)",
            "final_eval_acc": "final eval accuracy (after the last epoch)"}


def _count_parameters(config: Dict[str, Any], cache: Dict[tuple, Tuple[int, int]]) -> Optional[int]:
    """Trainable parameters of the run's network (None for a ``num_classes`` that is not a positive integer).

    Only the classifier depends on ``num_classes``, linearly: the network is built with 1 and 2 classes and
    the count taken at ``num_classes`` from those two, so a config.json claiming 10**12 classes costs no
    memory (building it would ask Paddle for terabytes, or fail on its int32 shapes).
    """
    num_classes = config["num_classes"]
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        return None
    key = (config["model"], config["attention"], config.get("reduction"))
    if key not in cache:
        counts = [_built_parameters({**config, "num_classes": n}) for n in (1, 2)]
        cache[key] = (counts[0], counts[1] - counts[0])
    base, per_class = cache[key]
    return base + per_class * (num_classes - 1)


def _built_parameters(config: Dict[str, Any]) -> int:
    from .runs import build_network

    # Building draws initial weights from Paddle's generator; leave the caller's random stream as it was.
    state = paddle.get_rng_state()
    try:
        network = build_network(config)
    finally:
        paddle.set_rng_state(state)
    # trainable ones, as papers count them: BatchNorm's running mean and variance are not
    return int(sum(int(np.prod(p.shape)) for p in network.parameters() if not p.stop_gradient))


def summarize_runs(run_dirs: Union[str, Sequence[str]], count_parameters: bool = True) -> List[Dict[str, Any]]:
    """One row per run folder, read from its ``config.json`` and ``history.csv``.

    Args:
        run_dirs (str|list[str]): run folders, or one folder whose sub-folders are runs (those
            holding ``config.json``, in sorted order).
        count_parameters (bool, optional): build each distinct model once to count its parameters;
            False leaves ``params`` None. Default: True.

    Returns:
        list[dict]: per run: ``name`` (folder name), ``run`` (path), ``model``, ``attention`` (by name,
        as :func:`simam_paddle.experiments.load_config` reads it), ``seed``, ``data`` (name of the data
        folder, so copies on other machines group together), ``data_path``, the training settings
        that change what is trained (``image_size``, ``batch_size``, ``lr``, ``weight_decay``,
        ``momentum``, ``e_lambda``, ``reduction``, ...; see :class:`~simam_paddle.experiments.TrainConfig`),
        ``train_samples``, ``eval_samples``, ``num_classes``, ``planned_epochs``, ``epochs``
        (finished), ``finished``, ``best_eval_acc``, ``best_epoch`` (first epoch reaching it),
        ``final_eval_acc``, ``time_per_epoch`` (mean seconds, training and evaluation),
        ``total_time``, ``params``, ``paddle_version``, ``framework`` and ``device_name`` (of runs
        trained outside the package, such as tools/torch_towernet.py's; None otherwise). Accuracies are
        fractions; epochs whose accuracy is missing or not finite (nan) are skipped, and the accuracies of a
        run without such an epoch are None (shown as "–").

    Examples:
        >>> rows = summarize_runs("runs/ablation")  # doctest: +SKIP
        >>> [(r["attention"], r["seed"]) for r in rows][:2]  # doctest: +SKIP
        [('none', 0), ('none', 1)]
    """
    from .runs import load_config

    cache: Dict[tuple, Tuple[int, int]] = {}
    rows = []
    for run in run_folders(run_dirs):
        config = load_config(run)
        try:
            history = read_history(run)
        except FileNotFoundError:
            history = []
        # An epoch without evaluation, or whose accuracy is nan (a diverged run), has no score.
        scored = [r for r in history if _finite(r.get("eval_acc"))]
        best = max(scored, key=lambda r: r["eval_acc"]) if scored else None  # max keeps the first of ties
        times = [r["time"] for r in history if r.get("time") is not None]
        kernels, kernel_set = _kernels(history)
        rows.append({
            "name": os.path.basename(os.path.normpath(run)),
            "run": run,
            "model": config["model"],
            "attention": config["attention"],
            "seed": config["seed"],
            # A run converted from an official checkpoint has no data folder (data null).
            "data": os.path.basename(os.path.normpath(config["data"])) if config["data"] else "(converted)",
            "data_path": config["data"],
            **{key: config.get(key) for key in (*_ROW_SETTINGS, "train_samples", "eval_samples", "num_classes")},
            "planned_epochs": config["epochs"],
            "epochs": len(history),
            "finished": len(history) >= config["epochs"],
            "best_eval_acc": best["eval_acc"] if best else None,
            "best_epoch": best["epoch"] if best else None,
            "final_eval_acc": history[-1]["eval_acc"] if history and _finite(history[-1].get("eval_acc")) else None,
            "time_per_epoch": float(np.mean(times)) if times else None,
            "total_time": float(np.sum(times)) if times else None,
            "params": _count_parameters(config, cache) if count_parameters else None,
            "paddle_version": config.get("paddle_version"),
            "kernels": kernels,
            "ran_on": config.get("ran_on"),
            "kernel_set": kernel_set,
            # Set only by runs trained outside simam_paddle (tools/torch_towernet.py); None for the package's own.
            "framework": config.get("framework"),
            "device_name": config.get("device") if config.get("framework") else None,
        })
    return rows


def _kernels(history: List[Dict[str, Any]]) -> Tuple[str, Optional[str]]:
    """What a run's history says ran: ``("20 / 1", "onednn")``, ``("mixed: ...", "mixed")``, ``("not recorded", None)``.

    Examples:
        >>> _kernels([{"epoch": 1, "onednn_convs": 20.0, "paddle_convs": 1.0}] * 2)
        ('20 / 1', 'onednn')
        >>> _kernels([{"epoch": 1, "onednn_convs": 20.0, "paddle_convs": 1.0},
        ...           {"epoch": 2, "onednn_convs": 0.0, "paddle_convs": 21.0}])
        ('mixed: epoch 1 20 / 1, epoch 2 0 / 21', 'mixed')
    """
    counts = [(r.get("onednn_convs"), r.get("paddle_convs")) for r in history]
    if not counts or any(c[0] is None for c in counts):
        return "not recorded", None
    words = [f"{int(o)} / {int(p)}" for o, p in counts]
    if len(set(words)) == 1:
        return words[0], "onednn" if counts[0][0] > 0 else "paddle"
    spans: List[str] = []
    for epoch, word in zip((r["epoch"] for r in history), words):
        if spans and spans[-1].endswith(" " + word):
            first = spans[-1].split(" ")[1].split("-")[0]
            spans[-1] = f"epoch {first}-{epoch} {word}"
        else:
            spans.append(f"epoch {epoch} {word}")
    return "mixed: " + ", ".join(spans), "mixed"


def check_kernels(rows: Sequence[Dict[str, Any]]) -> None:
    """Refuse to pool runs that ran on different kernel sets (or changed kernels mid-run).

    Runs of an ablation compare only if every one ran its convolutions on the same kernels: all on oneDNN
    (where Paddle places them), all on Paddle's, or all from before the kernels were recorded.

    Raises:
        ValueError: naming the runs and their kernels, and how to pool them anyway (``mixed_kernels=True``).

    Examples:
        >>> check_kernels([{"name": "a", "kernel_set": "onednn", "kernels": "20 / 0"},
        ...                {"name": "b", "kernel_set": "paddle", "kernels": "0 / 20"}])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: these runs ran on different kernels: a: 20 / 0, b: 0 / 20 (convolutions on oneDNN / ...
    """
    sets = {row.get("kernel_set") for row in rows}
    if len(sets) > 1 or "mixed" in sets:
        listing = ", ".join(f"{row['name']}: {row['kernels']}" for row in rows
                            if len(sets) > 1 or row.get("kernel_set") == "mixed")
        raise ValueError(f"these runs ran on different kernels: {listing} (convolutions on oneDNN / on Paddle's "
                         "kernels per epoch); their accuracies are not one comparison. Run them again on one "
                         "kernel set, or pass mixed_kernels=True to pool them anyway")


def _mean(values: List[Optional[float]]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def aggregate_runs(rows: Sequence[Dict[str, Any]], by: Sequence[str] = ("data", "model", "attention")
                   ) -> List[Dict[str, Any]]:
    """Group run rows and summarise each group over its seeds.

    Args:
        rows (list[dict]): rows of :func:`summarize_runs`.
        by (list[str], optional): row keys that define a group. Runs of a group must agree on
            every training setting that changes what is trained (image size, planned epochs, batch
            size, learning rate, weight decay, momentum, attention options, ...), the sample counts and
            classes; add the key that differs to ``by`` to compare such runs.
            Default: ("data", "model", "attention").

    Returns:
        list[dict]: per group, in order of first appearance: the ``by`` keys, ``n`` (runs with an
        evaluated epoch), ``seeds``, ``best_eval_acc_mean``, ``best_eval_acc_std`` (sample standard
        deviation, ``ddof=1``; None for a single run), ``best_eval_acc_min``/``_max``,
        ``best_epoch_mean``, ``final_eval_acc_mean``/``_std`` (eval accuracy after the last
        finished epoch), ``time_per_epoch`` (mean over runs), ``params``, ``epochs`` (planned),
        ``unfinished`` (runs short of their planned epochs), ``runs`` (their rows) and the shared
        settings.

    Raises:
        ValueError: a ``by`` key no row has, or runs of one group with different settings.

    Examples:
        >>> groups = aggregate_runs(summarize_runs("runs/ablation"))  # doctest: +SKIP
        >>> [(g["attention"], g["n"]) for g in groups]  # doctest: +SKIP
        [('none', 3), ('se', 3), ('simam', 3)]
    """
    rows = list(rows)
    by = [by] if isinstance(by, str) else list(by)
    if not rows:
        raise ValueError("aggregate_runs needs at least one row (from summarize_runs)")
    missing = sorted({key for key in by for row in rows if key not in row})
    if missing:
        raise ValueError(f"cannot group by {missing}: rows have {sorted(rows[0])}")
    groups: Dict[tuple, List[Dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in by), []).append(row)

    result = []
    for key, members in groups.items():
        for setting in _SAME_SETTINGS:
            if setting in by:
                continue
            values = sorted({repr(m.get(setting)) for m in members})
            if len(values) > 1:
                label = ", ".join(f"{k}={v}" for k, v in zip(by, key))
                raise ValueError(f"runs of group ({label}) differ in {setting}: {', '.join(values)} "
                                 f"({', '.join(m['name'] for m in members)}); add {setting!r} to `by` "
                                 "to compare them as separate groups")
        scores = [m["best_eval_acc"] for m in members if m["best_eval_acc"] is not None]
        finals = [m["final_eval_acc"] for m in members if m.get("final_eval_acc") is not None]
        result.append({
            **dict(zip(by, key)),
            "n": len(scores),
            "seeds": [m.get("seed") for m in members],
            "best_eval_acc_mean": float(np.mean(scores)) if scores else None,
            "best_eval_acc_std": float(np.std(scores, ddof=1)) if len(scores) > 1 else None,
            "best_eval_acc_min": min(scores) if scores else None,
            "best_eval_acc_max": max(scores) if scores else None,
            "best_epoch_mean": _mean([m["best_epoch"] for m in members]),
            "final_eval_acc_mean": float(np.mean(finals)) if finals else None,
            "final_eval_acc_std": float(np.std(finals, ddof=1)) if len(finals) > 1 else None,
            "time_per_epoch": _mean([m["time_per_epoch"] for m in members]),
            "params": members[0].get("params"),
            "epochs": members[0].get("planned_epochs"),
            "unfinished": sum(not m.get("finished", True) for m in members),
            **{s: members[0].get(s) for s in _SAME_SETTINGS if s not in by and s != "planned_epochs"},
            "runs": members,
        })
    return result


def _finite(value: Optional[float]) -> bool:
    return value is not None and math.isfinite(value)


def _percent(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _format_cell(key: str, row: Dict[str, Any]) -> str:
    value = row.get(key)
    if key in _MEAN_STD:
        std = row.get(_MEAN_STD[key])
        return _percent(value) + ("" if std is None or value is None else f" ± {100 * std:.2f}")
    if key in ("best_eval_acc", "final_eval_acc", "best_eval_acc_min", "best_eval_acc_max"):
        return _percent(value)
    if key == "params" and value is not None:
        return f"{value:,}"
    if key == "epochs" and row.get("unfinished"):
        return f"{value} ({row['unfinished']} unfinished)"
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}" if key in ("time_per_epoch", "best_epoch_mean", "total_time") else f"{value:.4g}"
    return str(value)


def format_markdown_table(rows: Sequence[Dict[str, Any]], columns: Optional[Sequence[str]] = None) -> str:
    """Rows of :func:`summarize_runs` or :func:`aggregate_runs` as a markdown table.

    Accuracies are shown in percent; ``best_eval_acc_mean`` as "mean ± std".

    Args:
        rows (list[dict]): the rows.
        columns (list[str], optional): row keys to show, in order; None shows ``GROUP_COLUMNS`` for
            aggregated rows and ``RUN_COLUMNS`` for run rows. Default: None.

    Returns:
        str: the table, one line per row after the header lines.

    Examples:
        >>> print(format_markdown_table([{"attention": "simam", "best_eval_acc": 0.5}],
        ...                             columns=["attention", "best_eval_acc"]))
        | attention | best eval acc (%) |
        |---|---:|
        | simam | 50.00 |
    """
    rows = list(rows)
    if columns is None:
        columns = GROUP_COLUMNS if rows and "best_eval_acc_mean" in rows[0] else RUN_COLUMNS
    lines = ["| " + " | ".join(_HEADERS.get(c, c) for c in columns) + " |"]
    numeric = [any(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows)
               for c in columns]
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_format_cell(c, row) for c in columns) + " |")
    return "\n".join(lines)


def paired_differences(rows: Sequence[Dict[str, Any]], baseline: str = "none",
                       confidence: float = 0.95, metric: str = "best_eval_acc") -> List[Dict[str, Any]]:
    """Per attention, the seed-by-seed difference of an accuracy to ``baseline``, with a t interval.

    Runs are paired by (data, model, seed): the same seed gives the same data order and augmentation
    to every attention, so the difference removes the seed's share of the spread. The interval is
    the paired t interval ``mean ± t(n-1) * std / sqrt(n)`` over the ``n`` seeds both have.

    Args:
        rows (list[dict]): rows of :func:`summarize_runs`.
        baseline (str, optional): the attention to compare against. Default: "none".
        confidence (float, optional): level of the interval. Default: 0.95.
        metric (str, optional): the row key compared: "best_eval_acc" (the highest eval accuracy
            over the epochs, what the official SimAM code reports) or "final_eval_acc" (after the
            last epoch, free of choosing an epoch on the eval set). Default: "best_eval_acc".

    Returns:
        list[dict]: per (data, model, attention) other than the baseline, in order of first
        appearance: ``data``, ``model``, ``attention``, ``n`` (paired seeds), ``diff_mean``,
        ``diff_std`` (sample, ddof=1), ``ci_low``, ``ci_high`` (None below 2 pairs) and ``wins``
        (seeds where the attention scored higher).

    Examples:
        >>> rows = [{"data": "d", "model": "m", "attention": a, "seed": s, "best_eval_acc": v}
        ...         for a, s, v in [("none", 0, .90), ("none", 1, .92), ("simam", 0, .93), ("simam", 1, .93)]]
        >>> d = paired_differences(rows)[0]
        >>> d["attention"], d["n"], round(d["diff_mean"], 3), d["wins"]
        ('simam', 2, 0.02, 2)
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {', '.join(_METRICS)}, got {metric!r}")
    scores: Dict[tuple, Dict[Any, float]] = {}
    names: Dict[tuple, List[str]] = {}
    for row in rows:
        key = (row["data"], row["model"], row["attention"], row["seed"])
        names.setdefault(key, []).append(str(row.get("name", row.get("run"))))
        if row.get(metric) is not None:
            scores.setdefault(key[:3], {})[row["seed"]] = row[metric]
    for (data, model, attention, seed), same in names.items():
        if len(same) > 1:
            raise ValueError(f"runs {', '.join(same)} are all {model} with attention {attention} on {data} with seed "
                             f"{seed}; pairing by seed needs one run per seed: move all but one out of the folder, "
                             "or train the others with their own seeds")
    result = []
    for (data, model, attention), by_seed in scores.items():
        base = scores.get((data, model, baseline))
        if attention == baseline or base is None:
            continue
        seeds = sorted(set(by_seed) & set(base))
        diffs = np.array([by_seed[s] - base[s] for s in seeds], dtype=np.float64)
        n = len(diffs)
        entry = {"data": data, "model": model, "attention": attention, "n": n,
                 "diff_mean": float(diffs.mean()) if n else None,
                 "diff_std": float(diffs.std(ddof=1)) if n > 1 else None,
                 "ci_low": None, "ci_high": None, "wins": int((diffs > 0).sum())}
        if n > 1:
            half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * entry["diff_std"] / np.sqrt(n)
            entry["ci_low"], entry["ci_high"] = entry["diff_mean"] - half, entry["diff_mean"] + half
        result.append(entry)
    return result


def _points(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:+.2f}"


def format_paired_table(differences: Sequence[Dict[str, Any]], baseline: str = "none") -> str:
    """Markdown table of :func:`paired_differences`, in accuracy points.

    Examples:
        >>> print(format_paired_table([{"data": "d", "model": "m", "attention": "se", "n": 3, "diff_mean": 0.01,
        ...                             "diff_std": 0.02, "ci_low": -0.04, "ci_high": 0.06, "wins": 2}]))
        | data | model | attention | seeds | minus none (points) | 95 % CI | better on |
        |---|---|---|---:|---:|---:|---:|
        | d | m | se | 3 | +1.00 | [-4.00, +6.00] | 2 of 3 |
    """
    lines = [f"| data | model | attention | seeds | minus {baseline} (points) | 95 % CI | better on |",
             "|---|---|---|---:|---:|---:|---:|"]
    for d in differences:
        ci = "–" if d["ci_low"] is None else f"[{_points(d['ci_low'])}, {_points(d['ci_high'])}]"
        lines.append(f"| {d['data']} | {d['model']} | {d['attention']} | {d['n']} | {_points(d['diff_mean'])} | "
                     f"{ci} | {d['wins']} of {d['n']} |")
    return "\n".join(lines)


def write_report(results: Union[str, os.PathLike], output: Optional[Union[str, os.PathLike]] = None,
                 baseline: str = "none", figure: bool = True,
                 update: Optional[Union[str, os.PathLike]] = None, mixed_kernels: bool = False) -> Dict[str, Any]:
    """Rebuild an experiment's tables (and its curves figure) from its run folders' config.json and history.csv.

    Needs no weights, so it works on the committed ``docs/results/<experiment>/`` folders; the same
    histories always give the same ``summary.md``, byte for byte.

    Args:
        results (str|PathLike): a folder whose sub-folders are run folders.
        output (str|PathLike, optional): where ``summary.md`` (and ``curves.png``) go. Default: None
            (``results`` itself).
        baseline (str, optional): the attention the others are paired against. Default: "none".
        figure (bool, optional): also draw ``curves.png``. Default: True.
        update (str|PathLike, optional): a markdown file (such as ``docs/RESULTS.md`` or the
            README) holding the block ``<!-- report RESULTS -->`` ... ``<!-- end report -->`` (it
            gets the summary without its title) and/or ``<!-- groups RESULTS -->`` ...
            ``<!-- end groups -->`` (the table of means only), with ``RESULTS`` written as given here;
            the rest of the file stays as it is. Default: None.
        mixed_kernels (bool, optional): pool runs whose convolutions ran on different kernels (see
            :func:`check_kernels`), which is refused otherwise. Default: False.

    Returns:
        dict: ``rows``, ``groups``, ``differences`` (best accuracy), ``final_differences`` (final
        accuracy), ``summary`` (the markdown) and ``files``.

    Examples:
        >>> report = write_report("docs/results/resnet20_digits32")  # doctest: +SKIP
        >>> print(report["summary"].splitlines()[0])  # doctest: +SKIP
        # cifar_resnet20 on digits_split: none, se, cbam, simam
    """
    results = os.fspath(results)
    output = os.fspath(output) if output is not None else results
    rows = summarize_runs(results)
    order: Dict[str, int] = {}
    for row in rows:
        order.setdefault(row["attention"], len(order))
    if baseline in order:
        order = {**order, baseline: -1}
    rows.sort(key=lambda r: (order[r["attention"]], r["seed"]))
    if not mixed_kernels:
        check_kernels(rows)
    groups = aggregate_runs(rows, by=("data", "model", "attention"))
    differences = paired_differences(rows, baseline=baseline)
    final_differences = paired_differences(rows, baseline=baseline, metric="final_eval_acc")
    first = rows[0]
    attentions = list(dict.fromkeys(r["attention"] for r in rows))
    unfinished = [r["name"] for r in rows if not r["finished"]]
    lines = [
        f"# {', '.join(dict.fromkeys(r['model'] for r in rows))} on {first['data']}: {', '.join(attentions)}",
        "",
        *_setting_lines(rows),
        "",
        "Best eval accuracy: the highest over a run's epochs (as the official SimAM code reports); final: after "
        "its last epoch. Mean ± sample standard deviation over seeds; s/epoch covers training and evaluation on "
        "the machine that ran it.",
        "",
        format_markdown_table(groups),
        "",
    ]
    nothing_paired = (f"(no run of another attention shares a seed with `{baseline}` yet)"
                      if any(row["attention"] == baseline for row in rows) else f"(no `{baseline}` runs to pair)")
    for metric, paired in (("best_eval_acc", differences), ("final_eval_acc", final_differences)):
        lines += [
            f"Paired by seed, difference of the {_METRICS[metric]} to `{baseline}` (accuracy points) with its "
            "95 % t interval:",
            "",
            format_paired_table(paired, baseline=baseline) if paired else nothing_paired,
            "",
        ]
    lines += [
        format_markdown_table(rows),
        "",
    ]
    if unfinished:
        lines += [f"Still training (excluded from nothing, counted as they are): {', '.join(unfinished)}.", ""]
    robustness = _robustness_section(results, baseline, first["data"])
    lines += robustness
    summary = "\n".join(lines)
    blocks = {"report": report_block(summary), "groups": format_markdown_table(groups) + "\n"}
    if robustness:
        blocks["robustness"] = "\n".join(robustness[2:])
    if update is not None:  # checked before anything is written
        updated = _updated_markdown(os.fspath(update), results, blocks)
    os.makedirs(output, exist_ok=True)
    path = os.path.join(output, "summary.md")
    atomic_write_text(summary, path)
    files = [path]
    if figure:
        files += _draw_figures(results, output, groups, first, robustness=bool(robustness))
    if update is not None:
        if updated is not None:
            atomic_write_text(updated, os.fspath(update))
        files.append(os.fspath(update))
    return {"rows": rows, "groups": groups, "differences": differences, "final_differences": final_differences,
            "summary": summary, "files": files}


def _setting_parts(row: Dict[str, Any]) -> List[str]:
    """A row's training settings in words, one part per setting of the summary's settings line."""
    adam = row["optimizer"] == "adam"  # Momentum runs keep the words they always had
    return [f"{row['train_samples']} train / {row['eval_samples']} eval images, {row['num_classes']} classes",
            f"{row['image_size']} px", f"{row['planned_epochs']} epochs", f"batch {row['batch_size']}",
            ("Adam, " if adam else "") + f"lr {row['lr']} ({_schedule_words(row)}), "
            f"{'beta1' if adam else 'momentum'} {row['momentum']}",
            f"weight decay {row['weight_decay']}"]


def _setting_lines(rows: Sequence[Dict[str, Any]]) -> List[str]:
    """The settings line of a summary: what every run shares, then, where groups of runs (say the models of a
    baselines folder) were trained differently, what each group used (groups agree within, see aggregate_runs).

    Examples:
        >>> row = dict(train_samples=8, eval_samples=4, num_classes=2, image_size=32, planned_epochs=3,
        ...            batch_size=4, optimizer="momentum", lr=0.01, momentum=0.9, weight_decay=0.0, recipe=None,
        ...            framework=None, paddle_version="3.3.1", data="d", model="a", attention="none")
        >>> print("\\n".join(_setting_lines([row, dict(row, model="b", optimizer="adam", lr=0.0001)])))
        Same settings for every run: 8 train / 4 eval images, 2 classes, 32 px, 3 epochs, batch 4, weight decay 0.0, Paddle 3.3.1.
        <BLANKLINE>
        Settings that differ by model: a: lr 0.01 (cosine to 0), momentum 0.9; b: Adam, lr 0.0001 (cosine to 0), beta1 0.9.
    """
    parts = [_setting_parts(row) for row in rows]
    varies = [len({p[i] for p in parts}) > 1 for i in range(len(parts[0]))]
    first = rows[0]
    shared = [part for part, differs in zip(parts[0], varies) if not differs]
    shared.append(f"{first['framework']}, on {first['device_name']}" if first["framework"] else _paddle_words(rows))
    lines = [f"Same settings for every run: {', '.join(shared)}."]
    if any(varies):
        keys = [key for key in ("data", "model", "attention") if len({row[key] for row in rows}) > 1]
        by_words: Dict[str, List[str]] = {}
        for row, row_parts in zip(rows, parts):
            words = ", ".join(part for part, differs in zip(row_parts, varies) if differs)
            label = " ".join(str(row[key]) for key in keys) or row["name"]
            if label not in by_words.setdefault(words, []):
                by_words[words].append(label)
        listing = "; ".join(f"{', '.join(labels)}: {words}" for words, labels in by_words.items())
        lines += ["", f"Settings that differ by {' and '.join(keys) or 'run'}: {listing}."]
    return lines


def _draw_figures(results: str, output: str, groups: Sequence[Dict[str, Any]], first: Dict[str, Any],
                  robustness: bool) -> List[str]:
    """``curves.png`` of the groups and, where the results hold a robustness table, ``robustness.png``."""
    curves = os.path.join(output, "curves.png")
    models = ", ".join(dict.fromkeys(group["model"] for group in groups))
    plot_mean_curves(groups, output=curves, title=f"{models} on {first['data']}: "
                     f"{first['image_size']} px, {first['planned_epochs']} epochs, mean and range over seeds")
    files = [curves]
    if robustness:
        from ..plots import plot_robustness
        from .robustness import read_robustness

        path = os.path.join(output, "robustness.png")
        plot_robustness(read_robustness(results), output=path, title=f"{models} on {first['data']}: "
                        "eval accuracy on corrupted images, mean and range over seeds")
        files.append(path)
    return files


def robustness_runs(rows: Sequence[Dict[str, Any]], data: str = "-") -> List[Dict[str, Any]]:
    """Per run, from the rows of ``robustness.csv``: clean accuracy, accuracy per corruption (mean over its
    severities), ``mean_corruption_acc`` (mean over every corrupted condition), ``relative_drop``
    (``1 - mean_corruption_acc / clean``) and ``retained_acc`` (``mean_corruption_acc / clean``).

    Examples:
        >>> rows = [{"run": "r", "model": "m", "attention": "none", "seed": 0, "corruption": c, "severity": s,
        ...          "acc": a} for c, s, a in [("clean", 0, .8), ("blur", 1, .6), ("blur", 2, .4)]]
        >>> run = robustness_runs(rows)[0]
        >>> round(run["mean_corruption_acc"], 3), round(run["relative_drop"], 3), run["by_corruption"]
        (0.5, 0.375, {'blur': 0.5})
    """
    runs: Dict[str, Dict[str, Any]] = {}
    seen = set()
    for row in rows:
        run = runs.setdefault(row["run"], {key: row[key] for key in ("run", "model", "attention", "seed")})
        run["data"] = data
        condition = (row["run"], row["corruption"], row["severity"])
        if condition in seen:
            raise ValueError(f"robustness rows: run {row['run']!r} has more than one row for {row['corruption']} "
                             f"{row['severity']} (two runs of that folder name?); evaluate runs with distinct "
                             "folder names")
        seen.add(condition)
        if row["corruption"] == "clean":
            run["clean"] = row["acc"]
        else:
            run.setdefault("_accs", {}).setdefault(row["corruption"], []).append(row["acc"])
    result = []
    for run in runs.values():
        accs = run.pop("_accs", {})
        if "clean" not in run or not accs:
            raise ValueError(f"robustness rows of run {run['run']!r} lack the clean or the corrupted images")
        run["by_corruption"] = {name: float(np.mean(values)) for name, values in accs.items()}
        run["mean_corruption_acc"] = float(np.mean([a for values in accs.values() for a in values]))
        run["retained_acc"] = run["mean_corruption_acc"] / run["clean"] if run["clean"] else None
        run["relative_drop"] = None if run["retained_acc"] is None else 1 - run["retained_acc"]
        result.append(run)
    return result


def _mean_std(values: List[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    text = f"{100 * np.mean(values):.1f}"
    return text + (f" ± {100 * np.std(values, ddof=1):.1f}" if len(values) > 1 else "")


def robustness_table(rows: Sequence[Dict[str, Any]], baseline: str = "none", data: str = "-") -> str:
    """Markdown tables of a ``robustness.csv``'s rows: per attention (mean ± sample std over seeds, in %) the clean
    accuracy, each corruption's accuracy over its severities, the mean corruption accuracy and the relative drop;
    then, paired by seed, the differences to ``baseline`` with 95 % t intervals.

    Examples:
        >>> rows = [{"run": f"{a}{s}", "model": "m", "attention": a, "seed": s, "corruption": c, "severity": v,
        ...          "acc": x} for a, s, k in [("none", 0, 0), ("none", 1, .02), ("simam", 0, .01), ("simam", 1, .05)]
        ...         for c, v, x in [("clean", 0, .8 + k), ("blur", 1, .5 + k)]]
        >>> print(robustness_table(rows).splitlines()[2])
        | m | none | 2 | 81.0 ± 1.4 | 51.0 ± 1.4 | 51.0 ± 1.4 | 37.0 |
    """
    runs = robustness_runs(rows, data=data)
    corruptions = list(dict.fromkeys(name for run in runs for name in run["by_corruption"]))
    order = list(dict.fromkeys([baseline] * any(r["attention"] == baseline for r in runs)
                               + [r["attention"] for r in runs]))
    lines = ["| model | attention | seeds | clean | " + " | ".join(corruptions) + " | mean corrupted | relative drop |",
             "|---|---|---:|" + "---:|" * (len(corruptions) + 3)]
    for model in dict.fromkeys(r["model"] for r in runs):
        for attention in order:
            group = [r for r in runs if r["model"] == model and r["attention"] == attention]
            if not group:
                continue
            cells = [_mean_std([r["clean"] for r in group])]
            cells += [_mean_std([r["by_corruption"].get(name) for r in group]) for name in corruptions]
            cells.append(_mean_std([r["mean_corruption_acc"] for r in group]))
            drops = [r["relative_drop"] for r in group if r["relative_drop"] is not None]
            cells.append(f"{100 * np.mean(drops):.1f}" if drops else "–")
            lines.append(f"| {model} | {attention} | {len(group)} | " + " | ".join(cells) + " |")
    lines.append("")
    for metric in ("mean_corruption_acc", "retained_acc"):
        paired = paired_differences(runs, baseline=baseline, metric=metric)
        lines += [f"Paired by seed, difference of the {_METRICS[metric]} to `{baseline}` (points) with its 95 % t "
                  "interval:", "", format_paired_table(paired, baseline=baseline) if paired else
                  f"(no run of another attention shares a seed with `{baseline}`)", ""]
    return "\n".join(lines)


def _robustness_section(results: str, baseline: str, data: str) -> List[str]:
    """The summary's robustness lines, from ``results/robustness.csv`` and its record (none without them)."""
    import json

    from .robustness import read_robustness

    path = os.path.join(results, "robustness.csv")
    if not os.path.isfile(path):
        return []
    rows = read_robustness(path)
    try:
        record = json.loads(read_text(os.path.join(results, "robustness.json"), "the record of robustness.csv"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{results}/robustness.json, the record of robustness.csv, cannot be read ({err}); write "
                         "both with `python -m simam_paddle robustness`") from None
    words = ", ".join(f"{name} {'/'.join(map(str, values))}" for name, values in record["corruptions"].items())
    return [
        "**Robustness to corrupted images.**",
        "",
        f"Best weights evaluated on the {record['images']} evaluation images, clean and corrupted (`python -m "
        f"simam_paddle robustness`, seed {record['seed']}, severities {', '.join(map(str, record['severities']))}; "
        f"parameters by severity: {words}), Paddle {record['paddle_version']} on {record['device']}. Accuracy in %, "
        "each corruption's the mean over its severities; relative drop: 1 - mean corrupted / clean.",
        "",
        robustness_table(rows, baseline=baseline, data=data),
    ]


def _paddle_words(rows: Sequence[Dict[str, Any]]) -> str:
    """The Paddle version(s) and, where the runs recorded it, the device(s) they ran on."""
    versions = sorted({str(r["paddle_version"]) for r in rows})
    words = "Paddle " + " / ".join(versions)
    devices = sorted({r["ran_on"] for r in rows if r.get("ran_on")})
    if devices:
        words += ", on " + " / ".join(devices)
    return words


def _schedule_words(row: Dict[str, Any]) -> str:
    """How the learning rate moved in a row's run, in the words of the summary's settings line."""
    if (row.get("recipe") or "notebook") == "notebook":
        return "cosine to 0"
    from ..engine.training import OfficialStepDecay

    drops = OfficialStepDecay(1.0, row["planned_epochs"], 1).milestone_epochs
    return f"divided by 10 after epochs {' and '.join(map(str, drops))}; {row['recipe']} recipe"


def report_block(summary: str) -> str:
    r"""The part of a ``summary.md`` that a results document embeds: all but its title line.

    Examples:
        >>> report_block("# m on d: none, simam\n\nSame settings ...\n")
        'Same settings ...\n'
    """
    return summary.split("\n", 1)[1].lstrip("\n") if summary.startswith("# ") else summary


def _updated_markdown(path: str, results: str, blocks: Dict[str, str]) -> Optional[str]:
    """``path``'s text with its blocks for ``results`` replaced (None when already current).

    ``blocks`` maps a block kind to its content: ``<!-- KIND RESULTS -->`` ... ``<!-- end KIND -->``.
    """
    name = results.replace(os.sep, "/").rstrip("/")
    try:
        text = read_text(path, "a Markdown file")
    except OSError as err:
        raise FileNotFoundError(f"cannot read {path!r} to update its report block ({err.strerror})") from None
    new, found = text, 0
    for kind, content in blocks.items():
        start, end = f"<!-- {kind} {name} -->", f"<!-- end {kind} -->"
        count = new.count(start)
        if count > 1:
            raise ValueError(f"{path!r} has more than one line {start!r}; keep one")
        if not count:
            continue
        head, rest = new.split(start, 1)
        if end not in rest:
            raise ValueError(f"{path!r}: {start} has no {end} after it; add one where the tables end")
        new = f"{head}{start}\n{content}{end}{rest.split(end, 1)[1]}"
        found += 1
    if not found:
        present = [line for line in text.splitlines() if line.startswith("<!-- ") and not line.startswith("<!-- end")]
        wanted = " or ".join(f"'<!-- {kind} {name} -->'" for kind in blocks)
        raise ValueError(f"{path!r} has no line {wanted}; put it and its end line (<!-- end report -->) around the "
                         f"place for the tables (blocks there: {', '.join(present) or 'none'})")
    return None if new == text else new
