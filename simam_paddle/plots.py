"""Pictures: training curves of several runs, and what SimAM attends to.

``plot_curves`` reads the ``history.csv`` of each run folder and draws training (solid) and
evaluation (dashed) loss and accuracy per epoch on shared axes, one colour per run.
``attention_maps`` records, with forward hooks, the SimAM weights ``sigmoid(E_inv)`` of every
SimAM layer for one image, averaged over channels; ``plot_attention_maps`` overlays them on the
image. matplotlib is imported inside the functions, so importing this module stays cheap.
"""
import os
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import paddle

from .callbacks import read_history
from .simam import SimAM, simam_weights

__all__ = ["plot_curves", "attention_maps", "plot_attention_maps"]


def plot_curves(run_dirs: Sequence[str], labels: Optional[Sequence[str]] = None, path: Optional[str] = None,
                title: Optional[str] = None):
    """Loss and accuracy per epoch of several runs, training solid and evaluation dashed.

    Args:
        run_dirs (list[str]): run folders (or ``history.csv`` files) written by ``train``.
        labels (list[str], optional): legend names; None uses the folder names. Default: None.
        path (str, optional): where to save the PNG. Default: None.
        title (str, optional): figure title. Default: None.

    Returns:
        matplotlib.figure.Figure: two axes, loss and accuracy.

    Examples:
        >>> fig = plot_curves(["runs/simam", "runs/none"], path="curves.png")
        >>> [ax.get_ylabel() for ax in fig.axes]
        ['loss', 'accuracy']
    """
    import matplotlib.pyplot as plt

    run_dirs = [run_dirs] if isinstance(run_dirs, str) else list(run_dirs)
    if not run_dirs:
        raise ValueError("plot_curves needs at least one run folder")
    if labels is None:
        labels = [os.path.basename(os.path.normpath(d)) or d for d in run_dirs]
    if len(labels) != len(run_dirs):
        raise ValueError(f"{len(labels)} labels for {len(run_dirs)} runs")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (run, label) in enumerate(zip(run_dirs, labels)):
        rows = read_history(run)
        epochs = [r["epoch"] for r in rows]
        color = colors[i % len(colors)]
        for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
            ax.plot(epochs, _column(rows, key), "-", color=color, marker=".", label=f"{label} train")
            evals = _column(rows, "eval_" + key)
            if not np.all(np.isnan(evals)):
                ax.plot(epochs, evals, "--", color=color, marker=".", label=f"{label} eval")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


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
        >>> maps = attention_maps(build_model("towernet", 10, attention="simam"), np.zeros([3, 128, 128], "float32"))
        >>> next(iter(maps.values())).shape
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


def plot_attention_maps(image, maps: Dict[str, np.ndarray], path: Optional[str] = None, alpha: float = 0.5,
                        title: Optional[str] = None):
    """The image, then each attention map upsampled (bilinear) and overlaid on it.

    Args:
        image (numpy.ndarray|paddle.Tensor): the image given to :func:`attention_maps`
            (normalised values are rescaled to [0, 1] for display).
        maps (dict[str, numpy.ndarray]): output of :func:`attention_maps`.
        path (str, optional): where to save the PNG. Default: None.
        alpha (float, optional): opacity of the maps. Default: 0.5.
        title (str, optional): figure title. Default: None.

    Returns:
        matplotlib.figure.Figure: ``1 + len(maps)`` image axes.

    Examples:
        >>> fig = plot_attention_maps(img, attention_maps(net, img), path="attention.png")
        >>> len(fig.axes) == 1 + len(attention_maps(net, img))
        True
    """
    import matplotlib.pyplot as plt

    if not maps:
        raise ValueError("no attention maps to plot")
    shown = _display_image(image)
    height, width = shown.shape[:2]
    cols = 1 + len(maps)
    fig, axes = plt.subplots(1, cols, figsize=(2.6 * cols, 2.9))
    axes = np.atleast_1d(axes)
    axes[0].imshow(shown, cmap="gray" if shown.ndim == 2 else None)
    axes[0].set_title("image", fontsize=9)
    for ax, (name, values) in zip(axes[1:], maps.items()):
        ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None)
        ax.imshow(_upsample(values, height, width), cmap="jet", alpha=alpha)
        ax.set_title(f"{name}\n{values.shape[0]}x{values.shape[1]}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig
