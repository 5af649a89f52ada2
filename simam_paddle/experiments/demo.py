"""The main job, on data that ships with the repository: TowerNet with SimAM against TowerNet without.

``run_demo`` splits the embedded Caltech-16 (16 Caltech101 classes, ``data/caltech16``) 80/20 like the
notebook (outside the repository, where the subset is not shipped: scikit-learn's handwritten digits),
trains TowerNet with ``attention="simam"`` and with ``attention="none"`` under the same seed and settings,
and writes ``curves.png``, ``attention.png`` (SimAM's weights on one eval image) and ``summary.md``. Sizes
are chosen so the default finishes in about 3 minutes and ``quick=True`` in about 1 on a 2-core CPU:
TowerNet needs at least 127 px, so images are 128 px and training uses a fixed subset of each class.
Re-running skips finished runs and resumes interrupted ones.
"""
import os
from typing import Any, Dict, List

from .._io import atomic_write_text
from .notebook import prepare_split
from .report import format_markdown_table, summarize_runs

__all__ = ["DEMO_SETTINGS", "run_demo"]

DEMO_SETTINGS: Dict[str, Dict[str, Any]] = {
    "default": dict(epochs=4, image_size=128, batch_size=32, lr=0.01, train_per_class=None, eval_per_class=None),
    "quick": dict(epochs=3, image_size=128, batch_size=32, lr=0.01, train_per_class=15, eval_per_class=8),
}
ATTENTIONS = ("simam", "none")
_COLUMNS = ["attention", "best_eval_acc", "best_epoch", "final_eval_acc", "epochs", "total_time"]


def run_demo(output: str = "runs/demo", quick: bool = False, verbose: int = 1) -> Dict[str, Any]:
    """Train TowerNet with and without SimAM on the embedded Caltech-16 and compare them.

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
    data = prepare_split(os.path.join(output, "data"), eval_every=5, progress=False)
    name = "Caltech-16" if data.kind == "caltech" else "digits"
    if verbose:
        print(f"{name} data: {data.source} split into {data.split}")
    folders = []
    for attention in ATTENTIONS:
        run = os.path.join(output, f"towernet_{attention}")
        if verbose:
            print(f"\n== TowerNet, attention {attention}: {run}")
        complete_run(str(data.split), run, verbose=verbose, model="towernet", attention=attention, seed=0,
                     **settings)
        folders.append(run)
    rows = summarize_runs(folders, count_parameters=False)
    runs = {row["attention"]: {"best_eval_acc": row["best_eval_acc"], "best_epoch": row["best_epoch"],
                               "epochs": row["epochs"], "seconds": row["total_time"],
                               "final_eval_acc": row["final_eval_acc"]} for row in rows}

    files = _write_figures(output, settings, name)
    summary = _summary(rows, settings, quick, name)
    atomic_write_text(summary, os.path.join(output, "summary.md"))
    files.append(os.path.join(output, "summary.md"))
    return {"runs": runs, "summary": summary, "files": files}


def _write_figures(output: str, settings: Dict[str, Any], name: str) -> List[str]:
    from ..plots import attention_maps, plot_attention_maps, plot_curves
    from .runs import load_run, run_datasets

    runs = [os.path.join(output, f"towernet_{a}") for a in ATTENTIONS]
    curves = os.path.join(output, "curves.png")
    plot_curves(runs, labels=[f"TowerNet + {a}" for a in ATTENTIONS], output=curves,
                title=f"{name}, {settings['image_size']} px, {settings['epochs']} epochs")
    network, config = load_run(runs[0])
    _, eval_data = run_datasets(config, train=False)
    image, label = eval_data[0]
    attention = os.path.join(output, "attention.png")
    plot_attention_maps(image, attention_maps(network, image), output=attention,
                        title=f"SimAM weights (channel mean), class {config['classes'][int(label.reshape(-1)[0])]}")
    return [curves, attention]


def _summary(rows: List[Dict[str, Any]], settings: Dict[str, Any], quick: bool, name: str) -> str:
    return "\n".join([
        f"# Demo: TowerNet with and without SimAM on {name}{' (quick)' if quick else ''}",
        "",
        "Same seed and settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()) + ".",
        "",
        format_markdown_table(rows, columns=_COLUMNS),
        "",
        "Curves: curves.png. SimAM's attention on one eval image: attention.png.",
        "",
    ])
