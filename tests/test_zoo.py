import numpy as np
import paddle
import paddle.nn as nn
import pytest
from paddle.static import InputSpec
from paddle.vision.models.mobilenetv2 import InvertedResidual
from paddle.vision.models.resnet import BottleneckBlock

from simam_paddle import CBAM, SEModule, SimAM, TowerNet, available_models, build_model, insert_attention, simam
from simam_paddle.engine.training import default_weight_decay
from simam_paddle.models import OFFICIAL_INIT_FAMILIES, OFFICIAL_MODEL_FAMILIES, model_spec, resolve_attention

HEAVY = {"vgg19", "resnet50", "resnet101", "resnext50_32x4d", "cifar_resnet110"}  # slow to build on 2 cores


def _count(layer, trainable_only=False):
    return sum(int(np.prod(p.shape)) for p in layer.parameters() if p.trainable or not trainable_only)


def _same(a, b):
    """Equal up to float error relative to the output's scale (Paddle's init gives tiny logits)."""
    return np.allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())


def _se_params(c, r=16):
    h = max(1, c // r)
    return 2 * c * h  # official SE: no biases


# Output channels of every block, from the architectures' definitions.
RESNET50_BLOCK_CHANNELS = [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
MOBILENET_V2_BLOCK_CHANNELS = [16] + [24] * 2 + [32] * 3 + [64] * 4 + [96] * 3 + [160] * 3 + [320]


def test_available_models():
    assert available_models() == sorted([
        "towernet", "vgg19", "resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d", "mobilenet_v2",
        "cifar_resnet20", "cifar_resnet32", "cifar_resnet56", "cifar_resnet110"])


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in available_models()
])
def test_every_model_builds_and_forwards_at_its_minimum_input_size(name):
    paddle.seed(0)
    net = build_model(name, 7)
    net.eval()
    size = model_spec(name).min_input_size
    out = net(paddle.randn([2, 3, size, size]))
    assert out.shape == [2, 7]
    assert np.isfinite(out.numpy()).all()


def _attention_layers(net):
    return [type(m).__name__ for m in net.sublayers() if isinstance(m, (SimAM, SEModule, CBAM))]


@pytest.mark.parametrize("name", [n for n in available_models() if n not in HEAVY])
def test_attention_none_builds_the_model_as_its_registry_entry_publishes_it(name):
    spec = model_spec(name)
    assert resolve_attention(name) == resolve_attention(name, None) == spec.attention
    assert _attention_layers(build_model(name, 3)) == _attention_layers(build_model(name, 3, attention=spec.attention))
    assert bool(_attention_layers(build_model(name, 3))) == (spec.attention != "none")


def test_registry_entries_agree_with_the_models_they_describe():
    for name in available_models():
        spec = model_spec(name)
        assert spec.name == name and model_spec(name.upper()) is spec
        assert spec.family in ("towernet", "vgg", *OFFICIAL_INIT_FAMILIES)
        assert default_weight_decay(name) == spec.weight_decay
        assert (name in OFFICIAL_MODEL_FAMILIES) == (spec.family in OFFICIAL_INIT_FAMILIES)
    towernet = model_spec("towernet")
    assert (towernet.attention, towernet.weight_decay) == ("simam", 2e-4)
    assert towernet.min_input_size == TowerNet.min_input_size
    assert [n for n in available_models() if not model_spec(n).takes_attention] == ["vgg19"]
    assert {model_spec(n).weight_decay for n in available_models() if n != "towernet"} == {1e-4}


def test_towernet_refuses_input_below_its_registered_minimum():
    size = model_spec("towernet").min_input_size - 1
    with pytest.raises(ValueError, match=str(size + 1)):
        build_model("towernet", 3)(paddle.randn([1, 3, size, size]))


def test_unknown_model_spec_lists_available():
    with pytest.raises(ValueError, match="available models") as err:
        model_spec("resnet19")
    assert "cifar_resnet20" in str(err.value)
    with pytest.raises(ValueError, match="resnet19"):
        default_weight_decay("resnet19")


def test_unknown_model_lists_available():
    with pytest.raises(ValueError) as err:
        build_model("resnet19", 10)
    for name in available_models():
        assert name in str(err.value)


def test_pretrained_is_refused():
    with pytest.raises(ValueError, match="set_state_dict"):
        build_model("mobilenet_v2", 10, pretrained=True)


def test_vgg19_with_attention_is_a_clear_error():
    with pytest.raises(ValueError, match="vgg19"):
        build_model("vgg19", 10, attention="simam")


def test_attention_kwargs_without_attention_is_an_error():
    with pytest.raises(ValueError, match="no attention"):
        build_model("mobilenet_v2", 10, attention_kwargs={"e_lambda": 0.1})
    with pytest.raises(ValueError, match="no attention"):
        build_model("towernet", 10, attention="none", attention_kwargs={"e_lambda": 0.1})


def test_towernet_defaults_to_simam_and_none_removes_it():
    assert sum(isinstance(m, SimAM) for m in build_model("towernet", 10).sublayers()) == 4
    assert not any(isinstance(m, SimAM) for m in build_model("towernet", 10, attention="none").sublayers())
    net = build_model("towernet", 10, attention="simam", attention_kwargs={"e_lambda": 0.5}, in_channels=1)
    assert isinstance(net, TowerNet) and net.b3[2].e_lambda == 0.5
    assert net(paddle.randn([1, 1, 128, 128])).shape == [1, 10]


@pytest.mark.slow
def test_resnet50_simam_has_exactly_resnet50_parameters_and_keys():
    base = build_model("resnet50", 16)
    with_simam = build_model("resnet50", 16, attention="simam")
    assert _count(with_simam) == _count(base)
    assert _count(with_simam, trainable_only=True) == _count(base, trainable_only=True)
    assert list(with_simam.state_dict()) == list(base.state_dict())
    assert sum(isinstance(m, SimAM) for m in with_simam.sublayers()) == len(RESNET50_BLOCK_CHANNELS)


@pytest.mark.slow
def test_resnet50_se_adds_one_se_per_block_on_the_output_channels():
    base = build_model("resnet50", 16)
    with_se = build_model("resnet50", 16, attention="se")
    # Channels are the block outputs (after bn3), not the 3x3 conv's width.
    extra = sum(_se_params(c) for c in RESNET50_BLOCK_CHANNELS)
    assert _count(with_se, trainable_only=True) == _count(base, trainable_only=True) + extra
    new_keys = set(with_se.state_dict()) - set(base.state_dict())
    assert set(base.state_dict()) <= set(with_se.state_dict())
    assert new_keys and all(".attention." in k for k in new_keys)


@pytest.mark.parametrize("attention,per_block", [("simam", lambda c: 0), ("se", _se_params)])
def test_mobilenet_v2_parameter_counts(attention, per_block):
    base = build_model("mobilenet_v2", 16)
    net = build_model("mobilenet_v2", 16, attention=attention)
    extra = sum(per_block(c) for c in MOBILENET_V2_BLOCK_CHANNELS)
    assert _count(net, trainable_only=True) == _count(base, trainable_only=True) + extra


@pytest.mark.slow
def test_simam_really_runs_in_resnet50():
    paddle.seed(1)
    base = build_model("resnet50", 16)
    with_simam = build_model("resnet50", 16, attention="simam")
    with_simam.set_state_dict(base.state_dict())
    base.eval(), with_simam.eval()
    x = paddle.randn([2, 3, 64, 64])
    assert not _same(base(x).numpy(), with_simam(x).numpy())


def _twins(make):
    """Two blocks with the same weights, the second one with attention inserted later by the caller.

    BatchNorm statistics and affine terms are randomised: at their initial values BN is nearly the
    identity, and SimAM nearly commutes with scaling, so a misplaced attention would go unnoticed.
    """
    paddle.seed(2)
    rng = np.random.default_rng(2)
    ref, block = make(), make()
    for layer in ref.sublayers():
        if isinstance(layer, nn.BatchNorm2D):
            c = layer.weight.shape[0]
            layer.weight.set_value(rng.uniform(0.5, 2.0, c).astype("float32"))
            layer.bias.set_value(rng.normal(0, 1, c).astype("float32"))
            layer._mean.set_value(rng.normal(0, 1, c).astype("float32"))
            layer._variance.set_value(rng.uniform(0.5, 2.0, c).astype("float32"))
    block.set_state_dict(ref.state_dict())
    return ref, block


def _bottleneck():
    return BottleneckBlock(64, 16)  # 64 in == 16 * 4 out: identity shortcut


def _inverted_residual():
    return InvertedResidual(16, 16, 1, 6)  # stride 1, same channels: residual connection


def test_simam_follows_the_3x3_conv_of_a_bottleneck():
    ref, block = _twins(_bottleneck)
    assert insert_attention(block, "simam") == 1
    ref.eval(), block.eval()
    x = paddle.randn([2, 64, 8, 8])
    out = ref.relu(ref.bn1(ref.conv1(x)))
    out = ref.relu(ref.bn2(simam(ref.conv2(out))))  # before bn2, as in the official code
    expected = ref.relu(ref.bn3(ref.conv3(out)) + x)
    np.testing.assert_allclose(block(x).numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,cls", [("se", SEModule), ("cbam", CBAM)])
def test_other_attention_follows_the_last_bn_of_a_bottleneck(name, cls):
    ref, block = _twins(_bottleneck)
    insert_attention(block, name)
    assert isinstance(block.attention, cls) and block.attention.channels == 64
    ref.eval(), block.eval()
    x = paddle.randn([2, 64, 8, 8])
    out = ref.relu(ref.bn2(ref.conv2(ref.relu(ref.bn1(ref.conv1(x))))))
    expected = ref.relu(block.attention(ref.bn3(ref.conv3(out))) + x)  # before the residual add
    np.testing.assert_allclose(block(x).numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)


def test_simam_follows_the_depthwise_conv_of_an_inverted_residual():
    ref, block = _twins(_inverted_residual)
    insert_attention(block, "simam")
    ref.eval(), block.eval()
    x = paddle.randn([2, 16, 8, 8])
    expand, depthwise, project, bn = list(ref.conv.children())
    dw_conv, dw_bn, dw_act = list(depthwise.children())
    expected = bn(project(dw_act(dw_bn(simam(dw_conv(expand(x))))))) + x
    np.testing.assert_allclose(block(x).numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)


def test_se_follows_the_last_bn_of_an_inverted_residual():
    ref, block = _twins(_inverted_residual)
    insert_attention(block, "se", reduction=4)
    assert block.attention.channels == 16 and block.attention.reduction == 4
    ref.eval(), block.eval()
    x = paddle.randn([2, 16, 8, 8])
    expected = block.attention(ref.conv(x)) + x
    np.testing.assert_allclose(block(x).numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)


def test_insert_attention_errors():
    with pytest.raises(ValueError, match="BottleneckBlock"):
        insert_attention(nn.Sequential(nn.Conv2D(3, 8, 3)), "simam")
    block = _bottleneck()
    insert_attention(block, "simam")
    with pytest.raises(ValueError, match="only once"):
        insert_attention(block, "se")
    with pytest.raises(ValueError, match="available attentions"):
        insert_attention(_bottleneck(), "eca")
    with pytest.raises(ValueError, match="e_lambda"):
        insert_attention(_bottleneck(), "se", e_lambda=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("attention", ["simam", "se"])
def test_hooked_model_survives_jit_save(tmp_path, attention):
    paddle.seed(4)
    net = build_model("mobilenet_v2", 5, attention=attention, scale=0.5)
    plain = build_model("mobilenet_v2", 5, scale=0.5)
    plain.set_state_dict(net.state_dict())
    net.eval(), plain.eval()
    x = paddle.randn([2, 3, 64, 64])
    expected = net(x).numpy()
    path = str(tmp_path / "model")
    paddle.jit.save(paddle.jit.to_static(net, input_spec=[InputSpec([None, 3, 64, 64], "float32")],
                                         full_graph=True), path)
    got = paddle.jit.load(path)(x).numpy()
    assert _same(got, expected)
    # The exported program must contain the attention, not just the base network.
    assert not _same(got, plain(x).numpy())


@pytest.mark.parametrize("attention, options, expected", [
    ("none", None, 272474), ("simam", None, 272474),
    ("se", {"reduction": 4}, 280538), ("cbam", {"reduction": 4}, 281858),
])
def test_cifar_resnet20_has_the_official_parameter_counts(attention, options, expected):
    # The official networks/cifar ResNet20 counts (trainable), with the official --attention_param 4.
    net = build_model("cifar_resnet20", 10, attention=attention, attention_kwargs=options)
    assert _count(net, trainable_only=True) == expected


@pytest.mark.parametrize("depth", [20, 32, 56, 110])
def test_cifar_resnet_depth_counts_weighted_layers(depth):
    net = build_model(f"cifar_resnet{depth}", 10)
    convs = [m for m in net.sublayers() if isinstance(m, nn.Conv2D) and m._kernel_size == [3, 3]]
    linears = [m for m in net.sublayers() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == depth  # 6n + 2, projection shortcuts not counted


def test_cifar_resnet_places_simam_after_conv2_and_se_after_bn2():
    paddle.seed(3)
    x = paddle.randn([2, 16, 8, 8])
    for attention in ("simam", "se"):
        net = build_model("cifar_resnet20", 10, attention=attention)
        net.eval()
        block = net.layer1[0]
        h = paddle.nn.functional.relu(block.bn1(block.conv1(x)))
        if attention == "simam":
            h = block.bn2(simam(paddle.nn.functional.conv2d(h, block.conv2.weight, padding=1)))
        else:
            h = block.attention(paddle.nn.functional.batch_norm(
                paddle.nn.functional.conv2d(h, block.conv2.weight, padding=1), block.bn2._mean,
                block.bn2._variance, block.bn2.weight, block.bn2.bias, training=False))
        expected = paddle.nn.functional.relu(h + x).numpy()
        assert _same(block(x).numpy(), expected)


def test_cifar_resnet_takes_any_input_size():
    net = build_model("cifar_resnet20", 5, attention="simam")
    net.eval()
    for size in (8, 33, 48):
        assert net(paddle.randn([1, 3, size, size])).shape == [1, 5]
