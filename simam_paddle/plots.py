"""Figures for data sets and experiments, built on matplotlib.

Figures are ``matplotlib.figure.Figure`` objects made without pyplot, so nothing is registered
globally and no display is needed: in Jupyter leave the figure as the cell's last expression (or
call ``display(fig)``); elsewhere pass ``output`` to save it.

- ``plot_sample_grid``: sample images of a class-folder tree.
- ``plot_curves``: the ``history.csv`` of several runs, training (solid) and evaluation (dashed)
  loss and accuracy per epoch on shared axes, one colour per run.
- ``attention_maps`` / ``plot_attention_maps``: with forward hooks, the SimAM weights
  ``sigmoid(E_inv)`` of every SimAM layer for one image, averaged over channels, overlaid on it.
"""
import math
import os
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from ._paddle import require_paddle

require_paddle()

import paddle  # noqa: E402

from .data.images import is_hidden, is_image_name, load_image
from .engine.history import RunFileError, read_history, read_run_json
from .layers.simam import SimAM, simam_weights

__all__ = ["plot_sample_grid", "plot_curves", "plot_mean_curves", "plot_confusion_matrix", "attention_maps",
           "attention_label", "plot_attention_maps", "curve_color", "plot_grad_cam", "plot_robustness"]

# One colour per kind of network, the same in every figure and notebook: an attention variant takes its
# attention's colour (the network is fixed in an ablation), a network without attention its family's.
_ATTENTION_COLORS = {"se": "tab:orange", "cbam": "tab:red", "simam": "tab:green"}
_FAMILY_COLORS = {"towernet": "tab:blue", "cifar": "tab:blue", "vgg": "tab:purple", "imagenet_resnet": "tab:brown",
                  "mobilenet_v2": "tab:pink"}



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

    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be an integer >= 1, got {per_class!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; give a folder of class folders")
    subfolders = sorted(p.name for p in root.iterdir() if p.is_dir() and not is_hidden(p.name))
    if "train" in subfolders and set(subfolders) <= {"train", "eval"}:
        root = root / "train"
        subfolders = sorted(p.name for p in root.iterdir() if p.is_dir() and not is_hidden(p.name))
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
        files = sorted(p for p in (root / name).iterdir() if p.is_file() and is_image_name(p.name))
        if rng is not None and len(files) > per_class:
            files = [files[i] for i in sorted(rng.choice(len(files), per_class, replace=False))]
        for ax, path in zip(row, files[:per_class]):
            image = load_image(path)  # as the dataset sees it: upright by its EXIF Orientation
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


def plot_curves(run_dirs: Sequence[str], labels: Optional[Sequence[str]] = None,
                output: Optional[Union[str, os.PathLike]] = None, title: Optional[str] = None,
                chance: Optional[float] = None, loss_scale: str = "auto"):
    """Loss and accuracy per epoch of several runs, training solid and evaluation dashed.

    One colour per run, the network's own (:func:`curve_color`, read from the run's ``config.json``) when
    every run has one and no two share it; the legend sits beside the axes, so it never covers a curve. The loss axis
    turns logarithmic when one curve dwarfs the others (an evaluation loss of 50 next to losses
    below 1, as BatchNorm's running statistics give after a few steps), so every curve stays
    readable; accuracy is drawn on 0..1.

    Args:
        run_dirs (list[str]): run folders (or ``history.csv`` files) written by ``train``.
        labels (list[str], optional): legend names; None uses the folder names. Default: None.
        output (str|PathLike, optional): where to save the PNG. Default: None.
        title (str, optional): figure title. Default: None.
        chance (float, optional): accuracy of guessing (``1 / num_classes``), drawn as a dotted
            line. Default: None.
        loss_scale (str, optional): "auto" (log when the largest loss is over 20 times the
            smallest), "linear" or "log". Default: "auto".

    Returns:
        matplotlib.figure.Figure: two axes, loss and accuracy.

    Examples:
        >>> fig = plot_curves(["runs/simam", "runs/none"], output="curves.png")  # doctest: +SKIP
        >>> [ax.get_ylabel() for ax in fig.axes]  # doctest: +SKIP
        ['loss', 'accuracy']
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    run_dirs = [run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else list(run_dirs)
    if not run_dirs:
        raise ValueError("plot_curves needs at least one run folder")
    if labels is None:
        labels = [os.path.basename(os.path.normpath(d)) or str(d) for d in run_dirs]
    if len(labels) != len(run_dirs):
        raise ValueError(f"{len(labels)} labels for {len(run_dirs)} runs")
    if loss_scale not in ("auto", "linear", "log"):
        raise ValueError(f"loss_scale must be 'auto', 'linear' or 'log', got {loss_scale!r}")
    fig = Figure(figsize=(11, 4.2))
    ax_loss, ax_acc = fig.subplots(1, 2)
    colors = _identity_colors([_run_identity(run) for run in run_dirs])
    losses = []
    for i, (run, label) in enumerate(zip(run_dirs, labels)):
        rows = read_history(run)
        epochs = [r["epoch"] for r in rows]
        color = colors[i]
        for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
            values = _column(rows, key)
            ax.plot(epochs, values, "-", color=color, marker=".", label=f"{label} train")
            evals = _column(rows, "eval_" + key)
            if not np.all(np.isnan(evals)):
                ax.plot(epochs, evals, "--", color=color, marker=".", label=f"{label} eval")
            if key == "loss":
                losses.extend(v for v in np.concatenate([values, evals]) if np.isfinite(v))
    if loss_scale == "log" or (loss_scale == "auto" and _spans_decades(losses)):
        ax_loss.set_yscale("log")
        ax_loss.set_title("loss (log scale)")
    else:
        ax_loss.set_title("loss")
    ax_loss.set(xlabel="epoch", ylabel="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    if chance is not None:
        ax_acc.axhline(chance, color="gray", linestyle=":", linewidth=1, label="chance")
    handles = [Line2D([], [], color=colors[i], marker=".", label=label)
               for i, label in enumerate(labels)]
    handles += [Line2D([], [], color="black", linestyle="-", label="train"),
                Line2D([], [], color="black", linestyle="--", label="eval")]
    if chance is not None:
        handles.append(Line2D([], [], color="gray", linestyle=":", label=f"chance ({chance:.2f})"))
    _finish_epoch_axes(fig, (ax_loss, ax_acc), title, output, handles=handles)
    return fig


def curve_color(model: Optional[str], attention: Optional[str]) -> Optional[str]:
    """The colour that curves of ``model`` with ``attention`` get in every figure, or None if it has none.

    SE is orange, CBAM red and SimAM green whatever the network; without attention TowerNet and the
    CIFAR ResNets are blue, VGG19 purple, the ImageNet ResNets brown and MobileNetV2 pink. ``attention=None``
    (an old config.json's ``null``) is the model as published, as everywhere: TowerNet's is SimAM.

    Examples:
        >>> curve_color("towernet", "simam"), curve_color("towernet", "none"), curve_color("resnet50", "none")
        ('tab:green', 'tab:blue', 'tab:brown')
        >>> curve_color("towernet", None), curve_color("resnet50", None)
        ('tab:green', 'tab:brown')
    """
    from .models.zoo import available_models, model_spec, resolve_attention

    if attention is None and model in available_models():
        attention = resolve_attention(model)
    if attention not in (None, "none"):
        return _ATTENTION_COLORS.get(attention)
    if model not in available_models():
        return None
    return _FAMILY_COLORS.get(model_spec(model).family)


def _identity_colors(identities: Sequence[Optional[tuple]]) -> List[str]:
    """Each curve's :func:`curve_color` when every curve has one and no two share it; else the colour cycle
    by position (two seeds of one network, or runs without a config, must still be told apart)."""
    import matplotlib

    colors = [curve_color(*identity) if identity else None for identity in identities]
    if None in colors or len(set(colors)) < len(colors):
        cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        return [cycle[i % len(cycle)] for i in range(len(identities))]
    return colors


def _run_identity(run: Union[str, os.PathLike]) -> Optional[tuple]:
    """(model, attention) from the ``config.json`` beside a run's history, or None if it has none."""
    folder = run if os.path.isdir(run) else os.path.dirname(os.fspath(run))
    try:
        config = read_run_json(os.path.join(folder, "config.json"), "train writes it when a run starts")
    except (OSError, RunFileError):
        return None
    return (config["model"], config.get("attention")) if "model" in config else None


def _spans_decades(values: Sequence[float], ratio: float = 20.0) -> bool:
    """Whether positive ``values`` span more than ``ratio`` (largest over smallest)."""
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) > ratio * min(positive)


def _finish_epoch_axes(fig, axes, title: Optional[str], output, dpi: int = 120, handles=None) -> None:
    """Integer epoch ticks, grid, one legend beside the axes (never over a curve), title; save if asked."""
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if handles is None:
        handles = axes[0].get_legend_handles_labels()[0]
    labels = [h.get_label() for h in handles]
    # Room on the right for the legend, sized by its longest label (about 0.075 inch per character).
    width = fig.get_figwidth()
    legend_inches = 0.6 + 0.075 * max((len(label) for label in labels), default=0)
    right = max(0.5, 1 - legend_inches / width)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, right, 1))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(right, 0.5), fontsize=8, frameon=False)
    _save(fig, output, dpi)


def _save(fig, output: Optional[Union[str, os.PathLike]], dpi: int = 120) -> None:
    """Save as PNG, or as JPEG where the name ends in .jpg / .jpeg (photographs: a tenth of the bytes)."""
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.suffix.lower() in (".jpg", ".jpeg"):
            fig.savefig(output, format="jpeg", dpi=dpi, pil_kwargs={"quality": 85})
        else:
            fig.savefig(output, format="png", dpi=dpi)


def _column(rows: List[dict], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype="float64")


def attention_maps(model: Union[paddle.nn.Layer, paddle.Model], image) -> Dict[str, np.ndarray]:
    """The SimAM weights of every SimAM layer for one image, averaged over channels.

    Forward hooks on each :class:`~simam_paddle.SimAM` sub-layer record ``sigmoid(E_inv)`` (the
    factor SimAM multiplies its input by) during one forward pass in eval mode.

    Args:
        model (paddle.nn.Layer|paddle.Model): a network containing SimAM layers.
        image (numpy.ndarray|paddle.Tensor): one preprocessed image, ``[C, H, W]`` or ``[1, C, H, W]``.

    Returns:
        dict[str, numpy.ndarray]: layer name (as in ``named_sublayers``) to an ``[h, w]`` map at
        that layer's resolution, in forward order.

    Examples:
        >>> net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3, stride=2), SimAM())
        >>> attention_maps(net, np.zeros([3, 17, 17], "float32"))["1"].shape
        (8, 8)
    """
    network = model.network if isinstance(model, paddle.Model) else model
    layers = [(name, layer) for name, layer in network.named_sublayers() if isinstance(layer, SimAM)]
    if not layers:
        raise ValueError(f"{type(network).__name__} has no SimAM layer; build it with attention='simam'")
    x = paddle.to_tensor(np.asarray(image, dtype="float32")) if not isinstance(image, paddle.Tensor) else image
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"attention_maps takes one image [C, H, W] or [1, C, H, W], got shape {list(x.shape)}")
    maps: Dict[str, np.ndarray] = {}

    def hook_for(name: str):
        def hook(layer, inputs, output):
            weights = simam_weights(inputs[0], e_lambda=layer.e_lambda, data_format=layer.data_format)
            channel_axis = 1 if layer.data_format.startswith("NC") else len(weights.shape) - 1
            maps[name] = weights.mean(axis=channel_axis)[0].numpy()
        return hook

    handles = [layer.register_forward_post_hook(hook_for(name)) for name, layer in layers]
    was_training = network.training
    network.eval()
    try:
        with paddle.no_grad():
            network(x)
    finally:
        for handle in handles:
            handle.remove()
        if was_training:
            network.train()
    return maps


def _display_image(image) -> np.ndarray:
    """A normalised CHW (or HWC) array as an HWC image in [0, 1] for display."""
    img = np.asarray(image.numpy() if isinstance(image, paddle.Tensor) else image, dtype="float32")
    if img.ndim == 4:
        img = img[0]
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = img.transpose(1, 2, 0)
    low, high = float(img.min()), float(img.max())
    img = (img - low) / (high - low) if high > low else np.zeros_like(img)
    return img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img


def _upsample(values: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(values.astype("float32"), mode="F").resize((width, height), Image.BILINEAR))


def attention_label(name: str, index: int, count: int) -> str:
    """A short name for the ``index``-th (0-based) of ``count`` SimAM layers, from its sub-layer path.

    The path's last part is the layer's position inside its block, which says nothing to a
    reader; the rest names the block.

    Examples:
        >>> attention_label("b5.2", 2, 4)
        'SimAM 3/4 (in b5)'
        >>> attention_label("layer2.0.attention", 0, 16)
        'SimAM 1/16 (in layer2.0)'
    """
    parts = name.split(".")
    block = ".".join(parts[:-1]) if len(parts) > 1 else name
    return f"SimAM {index + 1}/{count} (in {block})"


def plot_attention_maps(image, maps: Dict[str, np.ndarray], output: Optional[Union[str, os.PathLike]] = None,
                        alpha: float = 0.5, title: Optional[str] = None, value_range: Optional[Sequence[float]] = None,
                        dpi: Optional[int] = None):
    """The image, then each attention map upsampled (bilinear) and overlaid on it, on one colour scale.

    Every map uses the same colour scale, shown by one colour bar, so colours compare across
    layers. A map that is constant (a 1x1 map always is: SimAM weighs its only position by
    ``sigmoid(0.5)``) is drawn as a plain grey panel marked "constant" instead of an overlay.

    Args:
        image (numpy.ndarray|paddle.Tensor): the image given to :func:`attention_maps`
            (normalised values are rescaled to [0, 1] for display).
        maps (dict[str, numpy.ndarray]): output of :func:`attention_maps`.
        output (str|PathLike, optional): where to save the PNG. Default: None.
        alpha (float, optional): opacity of the maps. Default: 0.5.
        title (str, optional): figure title. Default: None.
        value_range (Sequence[float], optional): ``(low, high)`` of the colour scale, e.g. to share
            it between figures; None spans the values of these maps. Default: None.
        dpi (int, optional): dots per inch when shown (in Jupyter) and saved; 72 keeps a notebook of photographs
            small. Default: None (100 shown, 120 saved).

    Returns:
        matplotlib.figure.Figure: ``1 + len(maps)`` image axes, then the colour bar's.

    Examples:
        >>> import numpy as np
        >>> import paddle
        >>> from simam_paddle import SimAM
        >>> net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3, padding=1), SimAM())
        >>> img = np.random.rand(3, 17, 17).astype("float32")
        >>> len(plot_attention_maps(img, attention_maps(net, img)).axes)
        3
    """
    from matplotlib.figure import Figure

    if not maps:
        raise ValueError("no attention maps to plot")
    shown = _display_image(image)
    height, width = shown.shape[:2]
    if value_range is None:
        low = min(float(np.min(v)) for v in maps.values())
        high = max(float(np.max(v)) for v in maps.values())
    else:
        low, high = (float(v) for v in value_range)
    if not high > low:
        low, high = low - 0.01, high + 0.01
    cols = 1 + len(maps)
    fig = Figure(figsize=(2.4 * cols + 0.9, 3.0), dpi=dpi)
    axes = np.atleast_1d(fig.subplots(1, cols))
    gray = "gray" if shown.ndim == 2 else None
    axes[0].imshow(shown, cmap=gray)
    axes[0].set_title(f"image\n{height}x{width}", fontsize=8)
    overlay = None
    for i, (ax, (name, values)) in enumerate(zip(axes[1:], maps.items())):
        label = attention_label(name, i, len(maps))
        size = f"{values.shape[0]}x{values.shape[1]}"
        if float(np.ptp(values)) <= 1e-6 * max(1.0, abs(float(np.max(values)))):
            ax.imshow(shown, cmap=gray, alpha=0.25)
            ax.text(0.5, 0.5, f"constant\n{float(np.max(values)):.3f}", transform=ax.transAxes,
                    ha="center", va="center", fontsize=9)
            ax.set_title(f"{label}\n{size}: constant", fontsize=8)
            continue
        ax.imshow(shown, cmap=gray)
        overlay = ax.imshow(_upsample(values, height, width), cmap="jet", alpha=alpha, vmin=low, vmax=high)
        ax.set_title(f"{label}\n{size}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 0.9 / fig.get_figwidth(), 1))
    if overlay is None:  # every map constant: still show the scale
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        overlay = ScalarMappable(Normalize(low, high), cmap="jet")
    bar_ax = fig.add_axes((1 - 0.75 / fig.get_figwidth(), 0.15, 0.12 / fig.get_figwidth(), 0.62))
    bar = fig.colorbar(overlay, cax=bar_ax)
    bar.solids.set_alpha(1)
    bar.ax.tick_params(labelsize=7)
    bar.set_label("SimAM weight", fontsize=8)
    _save(fig, output, dpi=dpi or 120)
    return fig


def plot_grad_cam(explanation, output: Optional[Union[str, os.PathLike]] = None, alpha: float = 0.5,
                  title: Optional[str] = None, dpi: Optional[int] = None):
    """Grad-CAM maps of several runs side by side: one row per image, the image, then one column per run.

    Each panel names the class its map explains and the run's prediction with its probability, so a map is
    read against what the network decided (as in the SimAM paper's Figure 1).

    Args:
        explanation (Explanation): from :func:`simam_paddle.experiments.explain.explain_images`.
        output (str|PathLike, optional): where to save the figure: a PNG, or a JPEG where the name ends in
            .jpg. Default: None.
        alpha (float, optional): opacity of the maps over the image. Default: 0.5.
        title (str, optional): figure title. Default: None.
        dpi (int, optional): dots per inch when shown (in Jupyter) and saved; 72 keeps a notebook of photographs
            small. Default: None (100 shown, 120 saved).

    Returns:
        matplotlib.figure.Figure: ``rows x (1 + runs)`` image axes.

    Examples:
        >>> from types import SimpleNamespace
        >>> e = SimpleNamespace(paths=["a/cat/1.jpg"], images=[np.zeros((8, 8, 3), np.uint8)], labels=["none", "simam"],
        ...                     layers=["b5", "b5"], maps=[np.ones((1, 8, 8))] * 2, predicted=[["cat"], ["dog"]],
        ...                     probability=[[0.9], [0.6]], explained=[["cat"], ["cat"]])
        >>> len(plot_grad_cam(e).axes)
        3
    """
    from matplotlib.figure import Figure

    rows, cols = len(explanation.paths), 1 + len(explanation.labels)
    if not rows or cols < 2:
        raise ValueError("nothing to plot: the explanation has no images or no runs")
    fig = Figure(figsize=(2.2 * cols, 2.45 * rows + (0.4 if title else 0)), dpi=dpi)
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    for r, (path, image) in enumerate(zip(explanation.paths, explanation.images)):
        height, width = image.shape[:2]
        axes[r, 0].imshow(image)
        parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
        axes[r, 0].set_title(f"{parent}/\n{os.path.basename(path)}", fontsize=8)
        for c in range(len(explanation.labels)):
            ax = axes[r, c + 1]
            cam = explanation.maps[c][r]
            ax.imshow(image)
            ax.imshow(cam if cam.shape == (height, width) else _upsample(cam, height, width), cmap="jet",
                      alpha=alpha, vmin=0, vmax=1)
            predicted, explained = explanation.predicted[c][r], explanation.explained[c][r]
            words = f"{explanation.labels[c]}: {predicted} {explanation.probability[c][r]:.2f}"
            ax.set_title(words if explained == predicted else f"{words}\nmap of {explained}", fontsize=8,
                         color="black" if explained == predicted else "tab:red")
    for ax in axes.ravel():
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, output, dpi=dpi or 120)
    return fig


def plot_robustness(rows: Sequence[Dict[str, Any]], output: Optional[Union[str, os.PathLike]] = None,
                    title: Optional[str] = None):
    """Accuracy against corruption severity, one line per attention (mean over seeds, range shaded): first the
    mean over all corruptions, then one panel per corruption; severity 0 is the clean images.

    Args:
        rows (list[dict]): rows of ``robustness.csv`` (:func:`simam_paddle.experiments.robustness.read_robustness`).
        output (str|PathLike, optional): where to save the PNG. Default: None.
        title (str, optional): figure title. Default: None.

    Returns:
        matplotlib.figure.Figure: one axes per panel.

    Examples:
        >>> rows = [{"run": f"{a}{s}", "model": "towernet", "attention": a, "seed": s, "corruption": c,
        ...          "severity": v, "acc": 0.8 - 0.1 * v} for a in ("none", "simam") for s in (0, 1)
        ...         for c, v in [("clean", 0), ("jpeg", 1), ("jpeg", 2), ("blur", 1), ("blur", 2)]]
        >>> len(plot_robustness(rows).axes)  # the mean, jpeg, blur
        3
    """
    from matplotlib.figure import Figure

    corruptions = list(dict.fromkeys(r["corruption"] for r in rows if r["corruption"] != "clean"))
    if not corruptions or not any(r["corruption"] == "clean" for r in rows):
        raise ValueError("plot_robustness needs rows of the clean images and of at least one corruption")
    panels = ["mean of all corruptions"] + corruptions if len(corruptions) > 1 else corruptions
    cols = min(4, len(panels))
    grid = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(3.2 * cols, 2.7 * grid + (0.4 if title else 0)))
    axes = np.asarray(fig.subplots(grid, cols, squeeze=False, sharey=True)).ravel()
    clean = {r["run"]: r["acc"] for r in rows if r["corruption"] == "clean"}
    groups = list(dict.fromkeys((r["model"], r["attention"]) for r in rows))
    for ax, panel in zip(axes, panels):
        for model, attention in groups:
            runs = sorted({r["run"] for r in rows if (r["model"], r["attention"]) == (model, attention)})
            severities = sorted({r["severity"] for r in rows if r["corruption"] != "clean"})
            curves = []
            for run in runs:
                chosen = [r for r in rows if r["run"] == run and r["corruption"] != "clean"
                          and (panel == panels[0] and len(panels) > 1 or r["corruption"] == panel)]
                curves.append([clean[run]] + [float(np.mean([r["acc"] for r in chosen if r["severity"] == s]))
                                              for s in severities])
            curves = np.array(curves)
            x = [0] + severities
            color = curve_color(model, attention)
            label = attention if len({m for m, _ in groups}) == 1 else f"{model} {attention}"
            ax.plot(x, curves.mean(axis=0), marker="o", ms=3, color=color, label=f"{label} ({len(runs)})")
            if len(runs) > 1:
                ax.fill_between(x, curves.min(axis=0), curves.max(axis=0), color=color, alpha=0.15, lw=0)
        ax.set_title(panel, fontsize=9)
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.axis("off")
    for ax in axes[::cols]:
        ax.set_ylabel("eval accuracy", fontsize=8)
    for ax in axes[:len(panels)]:
        ax.set_xlabel("severity (0: clean)", fontsize=8)
    axes[0].legend(fontsize=7, title="attention (seeds)", title_fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, output)
    return fig


def _group_label(group: Dict[str, Any], varying: List[str]) -> str:
    return ", ".join(str(group[k]) for k in varying) or "all runs"


def plot_mean_curves(groups: Sequence[Dict[str, Any]], output: Optional[Union[str, os.PathLike]] = None,
                     title: Optional[str] = None):
    """Per group, the mean over its runs of training loss and eval accuracy per epoch, range shaded.

    Args:
        groups (list[dict]): rows of :func:`simam_paddle.experiments.aggregate_runs` (each holds its ``runs``).
        output (str|PathLike, optional): where to save the PNG. Default: None.
        title (str, optional): figure title. Default: None.

    Returns:
        matplotlib.figure.Figure: two axes, training loss and eval accuracy; the legend names each
        group by the keys whose values differ between groups, with its number of runs.

    Examples:
        >>> fig = plot_mean_curves(simam_paddle.experiments.aggregate_runs(simam_paddle.experiments.summarize_runs("runs/ablation")))  # doctest: +SKIP
        >>> [ax.get_ylabel() for ax in fig.axes]  # doctest: +SKIP
        ['training loss', 'eval accuracy']
    """
    from matplotlib.figure import Figure

    groups = list(groups)
    if not groups:
        raise ValueError("plot_mean_curves needs at least one group (from simam_paddle.experiments.aggregate_runs)")
    keys = [k for k in groups[0] if k in ("data", "model", "attention", "image_size", "lr", "batch_size")]
    varying = [k for k in keys if len({repr(g.get(k)) for g in groups}) > 1] or keys[-1:]
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    colors = _identity_colors([(g["model"], g["attention"]) if "model" in g else None for g in groups])
    for i, group in enumerate(groups):
        histories = [read_history(r["run"]) for r in group["runs"] if r.get("epochs")]
        if not histories:
            continue
        length = max(len(h) for h in histories)
        label = f"{_group_label(group, varying)} (n={len(histories)})"
        for ax, key in ((ax_loss, "loss"), (ax_acc, "eval_acc")):
            # Runs of different length (one still training) pad with NaN; the mean uses what exists.
            values = np.full((len(histories), length), np.nan)
            for j, history in enumerate(histories):
                values[j, :len(history)] = [math.nan if r[key] is None else r[key] for r in history]
            if np.all(np.isnan(values)):
                continue
            epochs = np.arange(1, length + 1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an epoch no run has evaluated stays NaN
                mean, low, high = (f(values, axis=0) for f in (np.nanmean, np.nanmin, np.nanmax))
            color = colors[i]
            ax.plot(epochs, mean, "-", marker=".", color=color, label=label)
            if len(histories) > 1:
                ax.fill_between(epochs, low, high, color=color, alpha=0.2, linewidth=0)
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="training loss (mean, range over seeds)")
    ax_acc.set(xlabel="epoch", ylabel="eval accuracy", title="eval accuracy (mean, range over seeds)")
    _finish_epoch_axes(fig, (ax_loss, ax_acc), title, output, dpi=100)
    return fig


def plot_confusion_matrix(cm: np.ndarray, classes: Optional[Sequence[str]] = None, output: Optional[str] = None,
                          normalize: bool = True, title: str = "Confusion matrix"):
    """Draw the matrix as a heat map (rows true, columns predicted), optionally saving a PNG.

    The figure is made without pyplot (nothing registered globally), like those of ``plots``.

    Args:
        cm (numpy.ndarray): counts from :func:`confusion_matrix`.
        classes (list[str], optional): class names; None numbers them. Default: None.
        output (str, optional): where to save the PNG. Default: None.
        normalize (bool, optional): colour by the fraction of each true class; counts are
            written in the cells either way. Default: True.
        title (str, optional): figure title. Default: "Confusion matrix".

    Returns:
        matplotlib.figure.Figure: the figure.

    Examples:
        >>> fig = plot_confusion_matrix(np.eye(3, dtype=int))
        >>> len(fig.axes)
        2
    """
    from matplotlib.figure import Figure

    cm = np.asarray(cm)
    n = len(cm)
    classes = list(classes) if classes is not None else [str(i) for i in range(n)]
    totals = cm.sum(axis=1, keepdims=True)
    shown = np.divide(cm, np.maximum(totals, 1)) if normalize else cm
    size = max(4.0, 0.45 * n + 2.5)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(classes, rotation=60, ha="right")
    ax.set_yticklabels(classes)
    if n <= 30:
        threshold = shown.max() / 2 if shown.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if shown[i, j] > threshold else "black")
    fig.tight_layout()
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        fig.savefig(output, format="png", dpi=120)
    return fig
