"""Official SimAM checkpoints (PyTorch) into the zoo (models/official.py): the fixtures' logits, refusals, the
ImageNet family's key mapping.

The fixtures in tests/data/official/ were written by torch.save from the official code's networks (see its
README); their logits come from the official networks in eval mode.
"""
import os

import numpy as np
import pytest

from simam_paddle import build_model, load_official_checkpoint
from simam_paddle.models import convert_official_state_dict

from official_fixtures import DATA, FIXTURES, one_line, relative_error


# ---------------------------------------------------------------- the fixtures


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_gives_the_official_logits(name):
    attention = FIXTURES[name]
    # The fixtures use the official defaults: lambda 0.1 for SimAM, reduction 4 for SE and CBAM.
    network = load_official_checkpoint(os.path.join(DATA, name), "cifar_resnet20", attention)
    assert not network.training
    assert relative_error(network, attention) < 1e-4


def test_simam_lambda_matters_so_the_comparison_can_fail():
    network = load_official_checkpoint(os.path.join(DATA, "official_cifar_resnet20_simam.pth.tar"),
                                       "cifar_resnet20", "simam", attention_param=4)
    assert relative_error(network, "simam") > 1e-3


# ---------------------------------------------------------------- refusals


def test_checkpoint_of_another_depth_or_family_is_refused(tmp_path):
    path = os.path.join(DATA, "official_cifar_resnet20_simam.pth.tar")
    with pytest.raises(ValueError) as err:
        load_official_checkpoint(path, "cifar_resnet32", "simam")
    assert "missing key layer1.3.conv1.weight" in one_line(err)
    with pytest.raises(ValueError) as err:
        load_official_checkpoint(path, "resnet18", "simam")
    assert "fc.weight" in one_line(err)
    with pytest.raises(ValueError) as err:
        load_official_checkpoint(path, "towernet", "simam")
    assert "cifar_resnet20" in one_line(err)


@pytest.mark.parametrize("fixture, attention, expected", [
    ("se", "simam", "unexpected key layer1.0.bn2.0.weight"),
    ("se", "cbam", "unexpected key layer1.0.bn2.1.fc.0.weight"),
    ("cbam", "none", "unexpected key layer1.0.bn2.0.weight"),
    ("simam", "none", "unexpected key layer1.0.conv2.0.weight"),
    ("none", "simam", "0 of 9 blocks"),  # SimAM has no tensors: only its wrapper tells
])
def test_checkpoint_of_another_attention_is_refused_with_a_guess(fixture, attention, expected):
    with pytest.raises(ValueError) as err:
        load_official_checkpoint(os.path.join(DATA, f"official_cifar_resnet20_{fixture}.pth.tar"),
                                 "cifar_resnet20", attention)
    assert expected in one_line(err) and f"looks like attention '{fixture}'" in one_line(err)


# ---------------------------------------------------------------- ImageNet family: official names -> zoo keys
# State dicts named as the official networks/imagenet code (torchvision naming) would name them, built from
# the architecture's rules, each official key paired with the zoo key it must become.

_BLOCKS = {"resnet18": ("basic", [2, 2, 2, 2]), "resnet34": ("basic", [3, 4, 6, 3]),
           "resnet50": ("bottleneck", [3, 4, 6, 3]), "resnet101": ("bottleneck", [3, 4, 23, 3]),
           "resnext50_32x4d": ("bottleneck", [3, 4, 6, 3])}


def _bn(official, ours, channels):
    return {f"{official}.weight": ((channels,), f"{ours}.weight"), f"{official}.bias": ((channels,), f"{ours}.bias"),
            f"{official}.running_mean": ((channels,), f"{ours}._mean"),
            f"{official}.running_var": ((channels,), f"{ours}._variance"),
            f"{official}.num_batches_tracked": ((), None)}


def _attention(official, ours, channels, attention, reduction=4):
    hidden = channels // reduction
    if attention == "se":
        return {f"{official}.fc.0.weight": ((hidden, channels), f"{ours}.fc1.weight"),
                f"{official}.fc.2.weight": ((channels, hidden), f"{ours}.fc2.weight")}
    return {f"{official}.ChannelGate.mlp.1.weight": ((hidden, channels), f"{ours}.mlp.0.weight"),
            f"{official}.ChannelGate.mlp.1.bias": ((hidden,), f"{ours}.mlp.0.bias"),
            f"{official}.ChannelGate.mlp.3.weight": ((channels, hidden), f"{ours}.mlp.2.weight"),
            f"{official}.ChannelGate.mlp.3.bias": ((channels,), f"{ours}.mlp.2.bias"),
            f"{official}.SpatialGate.spatial.conv.weight": ((1, 2, 7, 7), f"{ours}.spatial_conv.weight"),
            **_bn(f"{official}.SpatialGate.spatial.bn", f"{ours}.spatial_bn", 1)}


def _official_resnet(model, attention, num_classes):
    kind, counts = _BLOCKS[model]
    groups, width_per_group = (32, 4) if model.startswith("resnext") else (1, 64)
    expansion = 1 if kind == "basic" else 4
    keys = {"conv1.weight": ((64, 3, 7, 7), "conv1.weight"), **_bn("bn1", "bn1", 64)}
    inplanes = 64
    for stage, count in enumerate(counts):
        planes = 64 * 2 ** stage
        for i in range(count):
            p, out = f"layer{stage + 1}.{i}", planes * expansion
            width = planes if kind == "basic" else int(planes * width_per_group / 64) * groups
            convs = ([(inplanes, 3), (planes, 3)] if kind == "basic" else [(inplanes, 1), (width, 3), (width, 1)])
            outs = [planes, planes] if kind == "basic" else [width, width, out]
            last = len(convs)
            for j, ((cin, k), cout) in enumerate(zip(convs, outs), start=1):
                cin = cin // groups if (kind == "bottleneck" and j == 2) else cin
                conv = f"{p}.conv{j}.0.weight" if attention == "simam" and j == 2 else f"{p}.conv{j}.weight"
                keys[conv] = ((cout, cin, k, k), f"{p}.conv{j}.weight")
                wrapped = attention in ("se", "cbam") and j == last
                keys.update(_bn(f"{p}.bn{j}.0" if wrapped else f"{p}.bn{j}", f"{p}.bn{j}", cout))
                if wrapped:
                    keys.update(_attention(f"{p}.bn{j}.1", f"{p}.attention", cout, attention))
            if i == 0 and (stage > 0 or inplanes != out):
                keys[f"{p}.downsample.0.weight"] = ((out, inplanes, 1, 1), f"{p}.downsample.0.weight")
                keys.update(_bn(f"{p}.downsample.1", f"{p}.downsample.1", out))
            inplanes = out
    keys["fc.weight"] = ((num_classes, 512 * expansion), "fc.weight")
    keys["fc.bias"] = ((num_classes,), "fc.bias")
    return keys


def _official_mobilenet_v2(attention, num_classes):
    keys = {"features.0.0.weight": ((32, 3, 3, 3), "features.0.0.weight"), **_bn("features.0.1", "features.0.1", 32)}
    index, inp = 1, 32
    for t, c, n, s in [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                       [6, 320, 1, 1]]:
        for _ in range(n):
            p, hidden, j = f"features.{index}.conv", inp * t, 0
            if t != 1:
                keys[f"{p}.0.0.weight"] = ((hidden, inp, 1, 1), f"{p}.0.0.weight")
                keys.update(_bn(f"{p}.0.1", f"{p}.0.1", hidden))
                j = 1
            keys[f"{p}.{j}.0.weight"] = ((hidden, 1, 3, 3), f"{p}.{j}.0.weight")
            keys.update(_bn(f"{p}.{j}.{2 if attention == 'simam' else 1}", f"{p}.{j}.1", hidden))
            keys[f"{p}.{j + 1}.weight"] = ((c, hidden, 1, 1), f"{p}.{j + 1}.weight")
            keys.update(_bn(f"{p}.{j + 2}", f"{p}.{j + 2}", c))
            if attention in ("se", "cbam"):
                keys.update(_attention(f"{p}.{j + 3}", f"features.{index}.attention", c, attention))
            index, inp = index + 1, c
    keys[f"features.{index}.0.weight"] = ((1280, 320, 1, 1), f"features.{index}.0.weight")
    keys.update(_bn(f"features.{index}.1", f"features.{index}.1", 1280))
    keys["classifier.0.weight"] = ((num_classes, 1280), "classifier.1.weight")
    keys["classifier.0.bias"] = ((num_classes,), "classifier.1.bias")
    return keys


@pytest.mark.parametrize("attention", ["none", "simam", "se", "cbam"])
@pytest.mark.parametrize("model", ["resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d",
                                   "mobilenet_v2"])
def test_imagenet_official_names_map_onto_the_zoo(model, attention):
    num_classes = 7
    keys = (_official_mobilenet_v2(attention, num_classes) if model == "mobilenet_v2"
            else _official_resnet(model, attention, num_classes))
    # Each tensor is filled with its own index, so the test sees which official key landed where.
    official = {f"module.{k}": np.full(shape, i, dtype="int64" if k.endswith("tracked") else "float32")
                for i, (k, (shape, _)) in enumerate(keys.items())}
    options = {"simam": {"e_lambda": 0.1}, "se": {"reduction": 4}, "cbam": {"reduction": 4}}.get(attention)
    network = build_model(model, num_classes, attention=attention, attention_kwargs=options)
    mapped = convert_official_state_dict({"state_dict": official}, network, attention)
    expected = {ours: (i, shape) for i, (_, (shape, ours)) in enumerate(keys.items()) if ours is not None}
    zoo = network.state_dict()
    assert sorted(mapped) == sorted(expected) == sorted(zoo)
    for ours, (index, shape) in expected.items():
        zoo_shape = list(zoo[ours].shape)
        assert list(mapped[ours].shape) == zoo_shape, ours
        # Linear weights are transposed ([out, in] -> Paddle's [in, out]) or become 1x1 convs.
        assert sorted(zoo_shape) == sorted(list(shape) + [1] * (len(zoo_shape) - len(shape))), ours
        assert np.all(mapped[ours] == index), ours


def test_imagenet_mapping_refuses_a_missing_or_misshaped_key():
    keys = _official_resnet("resnet18", "se", 5)
    official = {k: np.zeros(shape, "float32") for k, (shape, _) in keys.items()}
    network = build_model("resnet18", 5, attention="se", attention_kwargs={"reduction": 4})
    del official["layer2.1.bn2.1.fc.2.weight"]
    with pytest.raises(ValueError) as err:
        convert_official_state_dict(dict(official), network, "se")
    assert "missing key layer2.1.attention.fc2.weight" in one_line(err)
    official["layer2.1.bn2.1.fc.2.weight"] = np.zeros((128, 16), "float32")
    with pytest.raises(ValueError) as err:
        convert_official_state_dict(official, build_model("resnet18", 5, attention="se",
                                                          attention_kwargs={"reduction": 16}), "se")
    assert "layer1.0.bn2.1.fc.0.weight has shape [16, 64]" in one_line(err)
