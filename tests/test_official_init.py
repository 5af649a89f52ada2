"""init="official" (models/official_init.py): the official code's initialisation, family by family."""
import numpy as np
import paddle
import pytest

from simam_paddle import build_model


def _weights(network, kind):
    return {name: p.numpy() for name, p in network.named_parameters() if name.endswith("weight")
            and p.ndim == (4 if kind == "conv" else 2)}


def test_official_init_cifar_is_pytorch_default_uniform():
    paddle.seed(0)
    network = build_model("cifar_resnet20", 10, attention="se", attention_kwargs={"reduction": 4}, init="official")
    for name, w in _weights(network, "conv").items():
        bound = 1 / np.sqrt(np.prod(w.shape[1:]))
        assert np.abs(w).max() <= bound + 1e-7, name
        if w.size > 20000:  # std of U(-b, b) is b / sqrt(3)
            assert abs(w.std() / (bound / np.sqrt(3)) - 1) < 0.05, name
    bias, bound = network.linear.bias.numpy(), 1 / 8  # fan_in 64
    assert np.abs(bias).max() <= bound and np.abs(bias).max() > 0
    paddle.seed(0)  # Paddle's default (normal, std sqrt(2 / fan_in)) is not that
    default = build_model("cifar_resnet20", 10, init="paddle").layer3[1].conv1.weight.numpy()
    assert default.std() > 2 / np.sqrt(3 * 64 * 9)


@pytest.mark.parametrize("model", ["resnet50", "resnext50_32x4d"])
def test_official_init_imagenet_resnet_is_kaiming_normal_fan_out(model):
    paddle.seed(0)
    network = build_model(model, 10, attention="cbam", attention_kwargs={"reduction": 4}, init="official")
    block = network.layer1[0]
    for conv in (block.conv2, block.conv3, block.downsample[0]):  # fan_out = out * k * k, not divided by groups
        w = conv.weight.numpy()
        assert abs(w.std() / np.sqrt(2 / (w.shape[0] * w.shape[2] * w.shape[3])) - 1) < 0.05
    for bn in (block.bn1, block.bn3, block.attention.spatial_bn):
        assert np.all(bn.weight.numpy() == 1) and np.all(bn.bias.numpy() == 0)
    fc, bound = network.fc, 1 / np.sqrt(2048)
    assert np.abs(fc.weight.numpy()).max() <= bound and np.abs(fc.bias.numpy()).max() <= bound
    mlp = block.attention.mlp[0].weight.numpy()  # an nn.Linear there: PyTorch's default
    assert np.abs(mlp).max() <= 1 / np.sqrt(256)
    paddle.seed(0)
    default = build_model(model, 10).layer1[0].conv3.weight.numpy()  # Paddle: std sqrt(2 / fan_in)
    assert abs(default.std() / np.sqrt(2 / (default.shape[0])) - 1) > 0.3


def test_official_init_mobilenet_v2_has_no_dropout_and_small_linears():
    paddle.seed(0)
    network = build_model("mobilenet_v2", 10, attention="se", attention_kwargs={"reduction": 4}, init="official")
    assert not any(isinstance(layer, paddle.nn.Dropout) for layer in network.sublayers())
    assert any(isinstance(layer, paddle.nn.Dropout) for layer in build_model("mobilenet_v2", 10).sublayers())
    head = network.classifier[1]
    assert abs(head.weight.numpy().std() / 0.01 - 1) < 0.05 and np.all(head.bias.numpy() == 0)
    assert abs(network.features[2].attention.fc1.weight.numpy().std() / 0.01 - 1) < 0.2
    w = network.features[18][0].weight.numpy()
    assert abs(w.std() / np.sqrt(2 / 1280) - 1) < 0.05
    assert sorted(network.state_dict()) == sorted(build_model("mobilenet_v2", 10, attention="se").state_dict())


def test_official_init_is_refused_where_there_is_none():
    with pytest.raises(ValueError, match="no official initialisation"):
        build_model("towernet", 10, init="official")
    with pytest.raises(ValueError, match="not one of"):
        build_model("resnet18", 10, init="torch")


def test_parameter_counts_of_the_official_cifar_models():
    counts = {attention: sum(int(np.prod(p.shape)) for p in build_model(
        "cifar_resnet20", 10, attention=attention, attention_kwargs=options, init="official").parameters()
        if not p.stop_gradient)
        for attention, options in (("simam", None), ("se", {"reduction": 4}), ("cbam", {"reduction": 4}))}
    assert counts == {"simam": 272474, "se": 280538, "cbam": 281858}
