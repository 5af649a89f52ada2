"""Figures for data sets and experiments, built on matplotlib.

Figures are ``matplotlib.figure.Figure`` objects made without pyplot, so nothing is registered
globally and no display is needed: in Jupyter leave the figure as the cell's last expression (or
call ``display(fig)``); elsewhere pass ``output`` to save it.
"""
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

__all__ = ["plot_sample_grid"]

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def plot_sample_grid(
    root: Union[str, os.PathLike],
    per_class: int = 6,
    output: Optional[Union[str, os.PathLike]] = None,
    classes: Optional[Sequence[str]] = None,
    max_classes: int = 10,
    seed: Optional[int] = None,
    cell_size: float = 1.4,
):
    """A grid of sample images from a folder of class folders: one row per class.

    Works for any ``root/<class>/<image>`` tree (digits, cluttered digits, Caltech101). Given the
    output folder of a split (holding ``train/`` and ``eval/``), it shows ``train/``. Each image is
    titled with its class; grayscale images are drawn on a fixed 0..255 gray scale.

    Args:
        root (str|PathLike): folder of class folders, or a split holding ``train/``.
        per_class (int, optional): images per class (columns). Default: 6.
        output (str|PathLike, optional): if given, the figure is also saved there as a PNG.
            Default: None.
        classes (Sequence[str], optional): class folders to show, in this order. Default: None,
            the first ``max_classes`` in sorted order.
        max_classes (int, optional): rows when ``classes`` is None. Default: 10.
        seed (int, optional): if given, pick images at random with this seed instead of the first
            ones in sorted order. Default: None.
        cell_size (float, optional): inches per image. Default: 1.4.

    Returns:
        matplotlib.figure.Figure: ``len(classes) * per_class`` axes; cells of classes with fewer
        images are left blank.

    Examples:
        >>> fig = plot_sample_grid("/tmp/digits", per_class=4)  # doctest: +SKIP
        >>> len(fig.axes)  # doctest: +SKIP
        40
    """
    from matplotlib.figure import Figure
    from PIL import Image

    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be an integer >= 1, got {per_class!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; give a folder of class folders")
    subfolders = sorted(p.name for p in root.iterdir() if p.is_dir())
    if "train" in subfolders and set(subfolders) <= {"train", "eval"}:
        root = root / "train"
        subfolders = sorted(p.name for p in root.iterdir() if p.is_dir())
    if classes is None:
        if not subfolders:
            raise FileNotFoundError(f"{root} holds no class folders; expected {root}/<class>/<image>")
        classes = subfolders[:max_classes]
    else:
        unknown = [c for c in classes if c not in subfolders]
        if unknown:
            raise ValueError(f"classes {unknown} are not folders of {root}; it has {subfolders}")

    rng = np.random.default_rng(seed) if seed is not None else None
    fig = Figure(figsize=(per_class * cell_size, len(classes) * (cell_size + 0.25)))
    # Fixed spacing instead of tight_layout: titles are one short line, and tight_layout costs
    # seconds on a grid of a hundred axes.
    axes = fig.subplots(len(classes), per_class, squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.3})
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.3 / fig.get_figheight())
    for row, name in zip(axes, classes):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        if rng is not None and len(files) > per_class:
            files = [files[i] for i in sorted(rng.choice(len(files), per_class, replace=False))]
        for ax, path in zip(row, files[:per_class]):
            with Image.open(path) as image:
                if image.mode == "L":
                    ax.imshow(np.asarray(image), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                else:
                    ax.imshow(np.asarray(image.convert("RGB")), interpolation="nearest")
            ax.set_title(name, fontsize=9)
        for ax in row:
            ax.axis("off")
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(output, format="png", dpi=100)
    return fig
