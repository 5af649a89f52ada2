"""The main job, on data that ships with the package: TowerNet with SimAM against TowerNet without.

``run_demo`` writes scikit-learn's bundled handwritten digits as PNG class folders (if missing),
splits them 80/20 like the notebook, trains TowerNet with ``attention="simam"`` and with
``attention="none"`` under the same seed and settings, and writes ``curves.png``,
``attention.png`` (SimAM's weights on one eval image) and ``summary.md``. Sizes are chosen so the
default finishes in under 10 minutes and ``quick=True`` in about 2 on a 2-core CPU: TowerNet
needs at least 127 px, so images are 128 px and training uses a fixed subset of each class.
Re-running skips finished runs and resumes interrupted ones.
"""
import os
import time
from typing import Any, Dict

from ..engine.callbacks import atomic_write_text, read_history

__all__ = ["DEMO_SETTINGS", "run_demo"]

DEMO_SETTINGS: Dict[str, Dict[str, Any]] = {
    "default": dict(epochs=4, image_size=128, batch_size=32, lr=0.01, train_per_class=50, eval_per_class=None),
    "quick": dict(epochs=3, image_size=128, batch_size=32, lr=0.01, train_per_class=20, eval_per_class=10),
}
ATTENTIONS = ("simam", "none")


def _prepare_data(output: str, verbose: int) -> str:
    from ..data.digits import make_digits_dataset
    from ..data.split import split_dataset

    digits = os.path.join(output, "data", "digits")
    split = os.path.join(output, "data", "digits_split")
    if not os.path.isfile(os.path.join(split, "split_manifest.csv")):
        summary = make_digits_dataset(digits)
        split_dataset(digits, split, eval_every=5, progress=False)
        if verbose:
            print(f"digits data: {summary.root} split into {split}")
    return split


def run_demo(output: str = "runs/demo", quick: bool = False, verbose: int = 1) -> Dict[str, Any]:
    """Train TowerNet with and without SimAM on the digits and compare them.

    Args:
        output (str, optional): folder for ``data/``, the runs ``towernet_simam/`` and
            ``towernet_none/``, ``curves.png``, ``attention.png`` and ``summary.md``. Default: "runs/demo".
        quick (bool, optional): the smaller setting of :data:`DEMO_SETTINGS`. Default: False.
        verbose (int, optional): 0 silent, 1 progress bars, 2 one line per epoch. Default: 1.

    Returns:
        dict: ``runs`` (attention to ``best_eval_acc``, ``best_epoch``, ``epochs``, ``seconds``),
        ``summary`` (the markdown of summary.md) and ``files``.

    Examples:
        >>> result = run_demo("runs/demo", quick=True)  # doctest: +SKIP
        >>> sorted(result["runs"])  # doctest: +SKIP
        ['none', 'simam']
    """
    from .runs import complete_run

    settings = DEMO_SETTINGS["quick" if quick else "default"]
    split = _prepare_data(output, verbose)
    runs: Dict[str, Dict[str, Any]] = {}
    for attention in ATTENTIONS:
        run = os.path.join(output, f"towernet_{attention}")
        if verbose:
            print(f"\n== TowerNet, attention {attention}: {run}")
        complete_run(split, run, verbose=verbose, model="towernet", attention=attention, seed=0, **settings)
        rows = read_history(run)
        best = max(rows, key=lambda r: -1 if r["eval_acc"] is None else r["eval_acc"])
        runs[attention] = {"best_eval_acc": best["eval_acc"], "best_epoch": best["epoch"], "epochs": len(rows),
                           "seconds": sum(r["time"] for r in rows), "final_eval_acc": rows[-1]["eval_acc"]}

    files = _write_figures(output, settings)
    summary = _summary(runs, settings, quick)
    atomic_write_text(summary, os.path.join(output, "summary.md"))
    files.append(os.path.join(output, "summary.md"))
    return {"runs": runs, "summary": summary, "files": files}


def _write_figures(output: str, settings: Dict[str, Any]) -> list:
    from ..plots import attention_maps, plot_attention_maps, plot_curves
    from .runs import load_run, run_datasets

    runs = [os.path.join(output, f"towernet_{a}") for a in ATTENTIONS]
    curves = os.path.join(output, "curves.png")
    plot_curves(runs, labels=[f"TowerNet + {a}" for a in ATTENTIONS], output=curves,
                title=f"digits, {settings['image_size']} px, {settings['epochs']} epochs")
    network, config = load_run(runs[0])
    _, eval_data = run_datasets(config, train=False)
    image, label = eval_data[0]
    attention = os.path.join(output, "attention.png")
    plot_attention_maps(image, attention_maps(network, image), output=attention,
                        title=f"SimAM weights (channel mean), class {config['classes'][int(label.reshape(-1)[0])]}")
    return [curves, attention]


def _summary(runs: Dict[str, Dict[str, Any]], settings: Dict[str, Any], quick: bool) -> str:
    lines = [
        f"# Demo: TowerNet with and without SimAM on digits{' (quick)' if quick else ''}",
        "",
        "Same seed and settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()) + ".",
        "",
        "| attention | best eval acc | best epoch | final eval acc | epochs | training time (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for attention, r in runs.items():
        lines.append(f"| {attention} | {r['best_eval_acc']:.4f} | {r['best_epoch']} | {r['final_eval_acc']:.4f} "
                     f"| {r['epochs']} | {r['seconds']:.1f} |")
    lines += ["", "Curves: curves.png. SimAM's attention on one eval image: attention.png.", ""]
    return "\n".join(lines)
