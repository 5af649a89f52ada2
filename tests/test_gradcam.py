"""Grad-CAM against the class activation map computed independently with numpy."""
import numpy as np
import paddle
import pytest

from simam_paddle.engine import grad_cam
from simam_paddle.models import build_model, get_sublayer, model_spec, available_models


def _activation(network, layer, x):
    """The layer's output for ``x``, captured by a hook of the test's own."""
    captured = []
    handle = get_sublayer(network, layer).register_forward_post_hook(lambda l, i, o: captured.append(o.numpy()))
    try:
        with paddle.no_grad():
            logits = network(paddle.to_tensor(x)).numpy()
    finally:
        handle.remove()
    return captured[0], logits


def _class_activation_map(activation, weight, classes):
    """Zhou et al.'s CAM, sum_k W[k, c] A_k, with Grad-CAM's ReLU, each map scaled to a maximum of 1."""
    cams = np.maximum(np.einsum("nkhw,kn->nhw", activation.astype(np.float64), weight[:, classes]), 0)
    peak = cams.reshape(len(cams), -1).max(axis=1)[:, None, None]
    return np.where(peak > 0, cams / np.where(peak > 0, peak, 1), 0)


@pytest.mark.parametrize("name, size, layer, head", [("cifar_resnet20", 32, "layer3", "linear"),
                                                      ("towernet", 384, "b5", "b6")])  # b5: 3x3 at 384 px
def test_grad_cam_equals_the_class_activation_map_for_pooling_and_one_linear_layer(name, size, layer, head):
    paddle.seed(3)
    network = build_model(name, 7)
    network.eval()
    x = np.random.RandomState(0).rand(3, 3, size, size).astype("float32")
    activation, logits = _activation(network, layer, x)
    weight = getattr(network, head).weight.numpy().astype(np.float64)  # Paddle's Linear: [in, out]
    for classes in (None, [2, 5, 0]):
        result = grad_cam(network, x, layer, class_ids=classes, upsample=False)
        expected_classes = logits.argmax(axis=1) if classes is None else np.array(classes)
        np.testing.assert_array_equal(result.class_ids, expected_classes)
        expected = _class_activation_map(activation, weight, expected_classes)
        assert expected.max() > 0  # the comparison is not between two empty maps
        np.testing.assert_allclose(result.maps, expected, atol=2e-4)
        np.testing.assert_allclose(result.logits, logits, rtol=1e-5, atol=1e-5)


def test_grad_cam_maps_are_upsampled_to_the_input_and_leave_no_gradient_on_parameters():
    paddle.seed(0)
    network = build_model("cifar_resnet20", 4)
    network.eval()
    x = np.random.RandomState(1).rand(2, 3, 32, 48).astype("float32")
    result = grad_cam(network, x, "layer3", class_ids=1)
    assert result.maps.shape == (2, 32, 48) and result.maps.dtype == np.float32
    assert 0 <= result.maps.min() and np.isclose(result.maps.max(axis=(1, 2)), 1).all()
    assert result.class_ids.tolist() == [1, 1]
    assert all(p.grad is None for p in network.parameters())


@pytest.mark.parametrize("name", available_models())
def test_every_model_has_a_default_layer_with_a_spatial_map(name):
    paddle.seed(0)
    network = build_model(name, 3)
    network.eval()
    size = max(model_spec(name).min_input_size + 1, 64)
    result = grad_cam(network, np.random.RandomState(0).rand(1, 3, size, size).astype("float32"),
                      model_spec(name).cam_layer)
    assert result.maps.shape == (1, size, size) and np.isfinite(result.maps).all()


def test_grad_cam_errors_name_what_exists():
    network = build_model("cifar_resnet20", 4)
    network.eval()
    x = np.zeros((1, 3, 32, 32), "float32")
    with pytest.raises(ValueError, match=r"layer 'layer9' not found.*'layer3'"):
        grad_cam(network, x, "layer9")
    with pytest.raises(ValueError, match="out of range: the network has 4 classes"):
        grad_cam(network, x, "layer3", class_ids=4)
    with pytest.raises(ValueError, match=r"\[N, K, h, w\] feature map"):
        grad_cam(network, x, "linear")
    with pytest.raises(ValueError, match="no gradient path"), paddle.no_grad():
        grad_cam(network, x, "layer3")
    with pytest.raises(ValueError, match="1x1 map for \\[4, 4\\] inputs"):
        grad_cam(network, np.zeros((1, 3, 4, 4), "float32"), "layer3")
