import csv

import numpy as np
import paddle
import pytest

from simam_paddle.callbacks import HISTORY_COLUMNS
from simam_paddle.plots import attention_maps, plot_attention_maps, plot_curves
from simam_paddle.simam import SimAM


def write_history(folder, rows):
    folder.mkdir()
    with open(folder / "history.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HISTORY_COLUMNS)
        writer.writerows(rows)
    return str(folder)


def test_plot_curves_draws_every_run_on_shared_axes(tmp_path):
    a = write_history(tmp_path / "simam", [[1, 2.0, 0.3, 1.8, 0.35, 0.01, 1], [2, 1.5, 0.5, 1.6, 0.45, 0.005, 1]])
    b = write_history(tmp_path / "none", [[1, 2.2, 0.2, "", "", 0.01, 1], [2, 1.9, 0.3, "", "", 0.005, 1]])
    fig = plot_curves([a, b], path=str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").stat().st_size > 0
    loss_ax, acc_ax = fig.axes
    labels = [line.get_label() for line in loss_ax.lines]
    assert labels == ["simam train", "simam eval", "none train"]  # no eval column -> no eval line
    np.testing.assert_allclose(loss_ax.lines[1].get_ydata(), [1.8, 1.6])
    np.testing.assert_allclose(acc_ax.lines[2].get_ydata(), [0.2, 0.3])
    np.testing.assert_allclose(acc_ax.lines[0].get_xdata(), [1, 2])
    with pytest.raises(ValueError, match="2 labels for 1 runs"):
        plot_curves([a], labels=["x", "y"])
    with pytest.raises(FileNotFoundError):
        plot_curves([str(tmp_path / "missing")])


def numpy_simam_weights(x, e_lambda=1e-4):
    n = x.shape[2] * x.shape[3] - 1
    d = (x - x.mean(axis=(2, 3), keepdims=True)) ** 2
    v = d.sum(axis=(2, 3), keepdims=True) / n
    return 1 / (1 + np.exp(-(d / (4 * (v + e_lambda)) + 0.5)))


def test_attention_maps_are_the_channel_mean_simam_weights():
    paddle.seed(0)
    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3, padding=1), SimAM(),
                               paddle.nn.Conv2D(4, 5, 3, stride=2, padding=1), SimAM(e_lambda=0.1))
    image = np.random.RandomState(0).rand(3, 10, 12).astype("float32")
    maps = attention_maps(net, image)
    assert list(maps) == ["1", "3"]
    x1 = net[0](paddle.to_tensor(image[None])).numpy()
    x3 = net[2](net[1](net[0](paddle.to_tensor(image[None])))).numpy()
    np.testing.assert_allclose(maps["1"], numpy_simam_weights(x1)[0].mean(0), rtol=1e-5)
    np.testing.assert_allclose(maps["3"], numpy_simam_weights(x3, 0.1)[0].mean(0), rtol=1e-5)
    assert maps["3"].shape == (5, 6)
    # hooks are removed afterwards
    assert all(not layer._forward_post_hooks for layer in net.sublayers())


def test_attention_maps_errors_and_plot(tmp_path):
    with pytest.raises(ValueError, match="no SimAM layer"):
        attention_maps(paddle.nn.Conv2D(3, 3, 1), np.zeros([3, 4, 4], "float32"))
    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), SimAM())
    with pytest.raises(ValueError, match="one image"):
        attention_maps(net, np.zeros([2, 3, 8, 8], "float32"))
    image = np.random.RandomState(1).randn(3, 16, 16).astype("float32")
    maps = attention_maps(paddle.Model(net), image)
    fig = plot_attention_maps(image, maps, path=str(tmp_path / "att.png"))
    assert len(fig.axes) == 2 and (tmp_path / "att.png").stat().st_size > 0
    overlay = fig.axes[1].images[1].get_array()
    assert overlay.shape == (16, 16)  # upsampled to the image
