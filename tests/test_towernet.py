import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import pytest
from paddle.static import InputSpec

from simam_paddle import CBAM, SEModule, SimAM, TowerNet, available_attentions


# --- The notebook's TowerNet, written out literally from plain paddle.nn layers (independent reference). ---

class NotebookSimam(nn.Layer):
    def __init__(self, channels, e_lambda=1e-4):
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x):
        n = x.shape[2] * x.shape[3] - 1
        d = (x - x.mean(axis=[2, 3], keepdim=True)).pow(2)
        return x * F.sigmoid(d / (4 * (d.sum(axis=[2, 3], keepdim=True) / n + self.e_lambda)) + 0.5)


class NotebookInception(nn.Layer):
    def __init__(self, in_channels, c1, c2, c3, c4):
        super().__init__()
        self.route1x1_1 = nn.Conv2D(in_channels, c1, kernel_size=1)
        self.route1x1_2 = nn.Conv2D(in_channels, c2[0], kernel_size=1)
        self.route3x3_2 = nn.Conv2D(c2[0], c2[1], kernel_size=3, padding=1)
        self.route1x1_3 = nn.Conv2D(in_channels, c3[0], kernel_size=1)
        self.route5x5_3 = nn.Conv2D(c3[0], c3[1], kernel_size=5, padding=2)
        self.route3x3_4 = nn.MaxPool2D(kernel_size=3, stride=1, padding=1)
        self.route1x1_4 = nn.Conv2D(in_channels, c4, kernel_size=1)

    def forward(self, x):
        route1 = F.relu(self.route1x1_1(x))
        route2 = F.relu(self.route3x3_2(F.relu(self.route1x1_2(x))))
        route3 = F.relu(self.route5x5_3(F.relu(self.route1x1_3(x))))
        route4 = F.relu(self.route1x1_4(self.route3x3_4(x)))
        return paddle.concat([route1, route2, route3, route4], axis=1)


def notebook_basic_conv(in_channels, out_channels, kernel, stride=1, padding=0):
    return nn.Sequential(nn.Conv2D(in_channels, out_channels, kernel, stride, padding),
                         nn.BatchNorm2D(out_channels, epsilon=1e-3), nn.ReLU())


class NotebookTowerNet(nn.Layer):
    def __init__(self, in_channel, num_classes):
        super().__init__()
        self.b1 = nn.Sequential(notebook_basic_conv(in_channel, 64, 3, 2, 1), nn.MaxPool2D(2, 2))
        self.b2 = nn.Sequential(notebook_basic_conv(64, 128, 3, padding=1), nn.MaxPool2D(2, 2))
        self.b3 = nn.Sequential(notebook_basic_conv(128, 256, 3, padding=1), nn.MaxPool2D(2, 2), NotebookSimam(256))
        self.b4 = nn.Sequential(notebook_basic_conv(256, 256, 3, padding=1), nn.MaxPool2D(2, 2), NotebookSimam(256))
        self.b5 = nn.Sequential(
            NotebookInception(256, 64, (64, 128), (16, 32), 32), nn.MaxPool2D(2, 2), NotebookSimam(256),
            NotebookInception(256, 64, (64, 128), (16, 32), 32), nn.MaxPool2D(2, 2), NotebookSimam(256),
            NotebookInception(256, 64, (64, 128), (16, 32), 32))
        self.AvgPool2D = nn.AvgPool2D(2)
        self.flatten = nn.Flatten()
        self.b6 = nn.Linear(256, num_classes)

    def forward(self, x):
        x = self.b5(self.b4(self.b3(self.b2(self.b1(x)))))
        return self.b6(self.flatten(self.AvgPool2D(x)))


def _count(layer, trainable_only=False):
    return sum(int(np.prod(p.shape)) for p in layer.parameters() if p.trainable or not trainable_only)


def _state_shapes(layer):
    return {k: tuple(v.shape) for k, v in layer.state_dict().items()}


# --- Tests ---

def test_parameter_count_and_keys_equal_the_notebook():
    ours, notebook = TowerNet(3, 16), NotebookTowerNet(3, 16)
    assert _count(ours) == _count(notebook)
    assert _count(ours, trainable_only=True) == _count(notebook, trainable_only=True)
    # Same names and shapes: a notebook checkpoint loads as is.
    assert _state_shapes(ours) == _state_shapes(notebook)


def test_same_outputs_as_the_notebook_at_256_with_its_weights():
    paddle.seed(0)
    notebook, ours = NotebookTowerNet(3, 16), TowerNet(3, 16)
    ours.set_state_dict(notebook.state_dict())
    notebook.eval(), ours.eval()
    x = paddle.randn([2, 3, 256, 256])
    np.testing.assert_allclose(ours(x).numpy(), notebook(x).numpy(), rtol=1e-4, atol=1e-5)


def test_none_is_a_true_ablation():
    net = TowerNet(attention="none")
    assert not any(isinstance(layer, (SimAM, SEModule, CBAM)) for layer in net.sublayers())
    assert sum(isinstance(layer, nn.Identity) for layer in net.sublayers()) == 4
    assert _count(net) == _count(NotebookTowerNet(3, 16))


def test_none_is_the_network_as_published_with_simam():
    for net in (TowerNet(attention=None), TowerNet()):
        assert [type(m) for m in (net.b3[2], net.b4[2], net.b5[2], net.b5[5])] == [SimAM] * 4
    assert TowerNet.published_attention == "simam"


@pytest.mark.parametrize("name,cls", [("simam", SimAM), ("se", SEModule), ("cbam", CBAM)])
def test_attention_fills_the_four_notebook_slots(name, cls):
    net = TowerNet(attention=name)
    slots = [net.b3[2], net.b4[2], net.b5[2], net.b5[5]]
    assert all(isinstance(layer, cls) for layer in slots)
    assert sum(isinstance(layer, cls) for layer in net.sublayers()) == 4
    extra = 4 * _count(cls(256)) if name != "simam" else 0
    assert _count(net) == _count(NotebookTowerNet(3, 16)) + extra


def test_attention_options_reach_the_layers():
    assert all(layer.e_lambda == 0.25 for layer in TowerNet(attention="simam", e_lambda=0.25).sublayers()
               if isinstance(layer, SimAM))
    se = TowerNet(attention="se", reduction=8)
    assert se.b3[2].fc1.weight.shape[0] == 256 // 8
    with pytest.raises(ValueError, match="available attentions"):
        TowerNet(attention="eca")
    with pytest.raises(ValueError, match="reduction"):
        TowerNet(attention="simam", reduction=8)


def test_in_channels_and_num_classes():
    assert TowerNet(in_channels=1, num_classes=5)(paddle.randn([2, 1, 128, 128])).shape == [2, 5]


@pytest.mark.parametrize("attention", available_attentions())
def test_128_input_forward_and_gradients_are_finite(attention):
    # At 128x128 the last attention slot sees a 1x1 map (the notebook's NaN case with SimAM).
    paddle.seed(1)
    net = TowerNet(attention=attention)
    x = paddle.randn([2, 3, 128, 128])
    out = net(x)
    assert out.shape == [2, 16]
    assert np.isfinite(out.numpy()).all()
    out.sum().backward()
    bad = [name for name, p in net.named_parameters()
           if p.trainable and (p.grad is None or not np.isfinite(p.grad.numpy()).all())]
    assert not bad, f"missing or non-finite gradients: {bad}"


def _pool_inputs(net, size):
    """Spatial sizes each 2x2 max pool of the network receives, from the real layers."""
    seen = []
    hooks = [layer.register_forward_pre_hook(lambda l, inputs: seen.append(min(inputs[0].shape[2:])))
             for layer in net.sublayers() if isinstance(layer, nn.MaxPool2D) and layer.ksize == 2]
    x = paddle.randn([1, 3, size, size])
    net.b5(net.b4(net.b3(net.b2(net.b1(x)))))  # bypass the size check
    for h in hooks:
        h.remove()
    return seen


def test_min_input_size_is_where_every_pool_gets_a_2x2_map():
    net = TowerNet(attention="none")
    net.eval()
    m = TowerNet.min_input_size
    sizes_at_min = _pool_inputs(net, m)
    assert len(sizes_at_min) == 6 and min(sizes_at_min) >= 2
    assert min(_pool_inputs(net, m - 1)) < 2
    assert m == 127


@pytest.mark.parametrize("shape", [[1, 3, 126, 126], [1, 3, 64, 300], [1, 3, 300, 100]])
def test_too_small_input_names_the_minimum(shape):
    with pytest.raises(ValueError, match="at least 127"):
        TowerNet()(paddle.randn(shape))


def test_minimum_and_non_square_input_work():
    net = TowerNet(attention="none")
    assert net(paddle.randn([1, 3, 127, 127])).shape == [1, 16]
    assert net(paddle.randn([1, 3, 127, 200])).shape == [1, 16]


def test_non_4d_input_is_rejected():
    with pytest.raises(ValueError, match="4 dims"):
        TowerNet()(paddle.randn([3, 128, 128]))


@pytest.mark.parametrize("spec", [[1, 3, 256, 256], [None, 3, None, None]])
def test_jit_save_with_the_size_check(tmp_path, spec):
    paddle.seed(3)
    net = TowerNet()
    net.eval()
    x = paddle.randn([1, 3, 256, 256])
    expected = net(x).numpy()
    path = str(tmp_path / "towernet")
    paddle.jit.save(paddle.jit.to_static(net, input_spec=[InputSpec(spec, "float32")], full_graph=True), path)
    np.testing.assert_allclose(paddle.jit.load(path)(x).numpy(), expected, rtol=1e-4, atol=1e-5)
