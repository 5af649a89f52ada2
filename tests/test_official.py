"""Official SimAM checkpoints (PyTorch) into the zoo: the torch-free reader, key mapping, CLI, init, fine-tuning.

The fixtures in tests/data/official/ were written by torch.save from the official code's networks (see its
README); their logits come from the official networks in eval mode.
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import paddle
import pytest
from PIL import Image

from simam_paddle import build_model, load_official_checkpoint
from simam_paddle.models import convert_official_state_dict, load_torch_checkpoint
from simam_paddle.cli import main
from simam_paddle.experiments.runs import attention_options, evaluate_run, export_run, load_run

DATA = os.path.join(os.path.dirname(__file__), "data", "official")
LOGITS = np.load(os.path.join(DATA, "official_cifar_resnet20_logits.npz"))
# fixture file -> the official --attention_type it was trained with
FIXTURES = {
    "official_cifar_resnet20_none.pth.tar": "none",
    "official_cifar_resnet20_simam.pth.tar": "simam",
    "official_cifar_resnet20_se.pth.tar": "se",
    "official_cifar_resnet20_cbam.pth.tar": "cbam",
    "official_cifar_resnet20_simam_legacy.pth.tar": "simam",
    "official_cifar_resnet20_simam_release_style.pth": "simam",
}


def relative_error(network, attention):
    with paddle.no_grad():
        got = network(paddle.to_tensor(LOGITS["input"])).numpy()
    expected = LOGITS[f"logits_{attention}"]
    return float(np.abs(got - expected).max() / np.abs(expected).max())


def one_line(err):
    message = str(err.value)
    assert message and "\n" not in message, message
    return message


def error_line(capsys):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and "Warning" not in ln and "warnings.warn" not in ln]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ---------------------------------------------------------------- the fixtures, through the API and the CLI


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


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_converts_through_the_cli_into_a_run(name, tmp_path, capsys):
    attention = FIXTURES[name]
    run = str(tmp_path / "run")
    assert main(["convert-official", os.path.join(DATA, name), "--model", "cifar_resnet20",
                 "--attention", attention, "--output", run]) == 0
    assert run in capsys.readouterr().out
    network, config = load_run(run)
    assert relative_error(network, attention) < 1e-4
    assert config["model"] == "cifar_resnet20" and config["attention"] == attention
    assert config["image_size"] == 32 and config["num_classes"] == 10
    assert config["classes"] == [str(i) for i in range(10)]
    assert attention_options(config) == {"none": {}, "simam": {"e_lambda": 0.1}, "se": {"reduction": 4},
                                         "cbam": {"reduction": 4}}[attention]
    assert sorted(os.listdir(run)) == ["best_model.pdparams", "config.json"]


def test_converted_run_evaluates_and_exports(tmp_path, capsys):
    run, data = str(tmp_path / "run"), tmp_path / "digits"
    classes = [f"c{i}" for i in range(10)]
    assert main(["convert-official", os.path.join(DATA, "official_cifar_resnet20_cbam.pth.tar"), "--model",
                 "cifar_resnet20", "--attention", "cbam", "--attention-param", "4", "--output", run,
                 "--classes", *classes]) == 0
    assert json.load(open(os.path.join(run, "config.json")))["classes"] == classes
    for i, name in enumerate(classes):  # one image per class: the official input, as PNG
        os.makedirs(data / name)
        image = np.clip(LOGITS["input"][i % 4].transpose(1, 2, 0) * 60 + 128, 0, 255).astype("uint8")
        Image.fromarray(image).save(data / name / "0.png")
    result = evaluate_run(run, data=str(data))
    assert 0.0 <= result["acc"] <= 1.0 and result["classes"] == classes
    assert export_run(run, str(tmp_path / "export"))["max_abs_diff"] < 1e-4
    assert main(["evaluate", run]) == 2  # no data of its own
    assert "--data" in error_line(capsys)


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


def test_non_checkpoint_files_are_refused_naming_the_path(tmp_path):
    for name, content in (("notes.pth", b"just some text\n"), ("pickle.pth", pickle.dumps({"a": 1})),
                          ("empty.pth", b"")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError) as err:
            load_torch_checkpoint(str(path))
        assert str(path) in one_line(err) and "not a PyTorch checkpoint" in one_line(err)
    zipped = tmp_path / "other.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("readme.txt", "no pickle here")
    with pytest.raises(ValueError) as err:
        load_torch_checkpoint(str(zipped))
    assert str(zipped) in one_line(err)
    with pytest.raises(FileNotFoundError):
        load_torch_checkpoint(str(tmp_path / "missing.pth"))


class _RunsACommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_pickle_calling_another_global_is_refused_and_nothing_runs(tmp_path, capsys):
    marker = tmp_path / "ran"
    payload = pickle.dumps({"state_dict": _RunsACommand(f"touch {marker}")}, protocol=2)
    plain = tmp_path / "evil.pth"
    plain.write_bytes(payload)
    zipped = tmp_path / "evil_zip.pth"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("evil_zip/data.pkl", payload)
    legacy = tmp_path / "evil_legacy.pth"  # a genuine legacy header, then the payload as the object
    legacy.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, 2) + pickle.dumps(1001, 2)
                       + pickle.dumps({"little_endian": True}, 2) + payload)
    for path in (plain, zipped, legacy):
        with pytest.raises(ValueError) as err:
            load_torch_checkpoint(str(path))
        assert "system" in one_line(err) and "refused" in one_line(err)
    assert main(["convert-official", str(zipped), "--model", "cifar_resnet20", "--attention", "simam",
                 "--output", str(tmp_path / "run")]) == 2
    assert "refused" in error_line(capsys)
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_cli_refuses_a_wrong_architecture_in_one_line(tmp_path, capsys):
    assert main(["convert-official", os.path.join(DATA, "official_cifar_resnet20_se.pth.tar"), "--model",
                 "cifar_resnet56", "--attention", "se", "--output", str(tmp_path / "run")]) == 2
    assert "missing key layer1.3" in error_line(capsys)
    assert main(["convert-official", os.path.join(DATA, "official_cifar_resnet20_se.pth.tar"), "--model",
                 "cifar_resnet20", "--attention", "se", "--attention-param", "2.5",
                 "--output", str(tmp_path / "run")]) == 2
    assert "whole number" in error_line(capsys)


# ---------------------------------------------------------------- the reader, on files written here


class _Storage:
    def __init__(self, key, type_name, raw, numel):
        self.key, self.type_name, self.raw, self.numel = key, type_name, raw, numel


class _Tensor:
    """What torch.save pickles for a tensor: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce_ex__(self, protocol):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())


@pytest.fixture
def fake_torch(monkeypatch):
    """Modules named torch and torch._utils, so pickle writes the globals torch.save writes."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called: the reader must not use it")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("FloatStorage", "DoubleStorage", "HalfStorage", "LongStorage", "IntStorage", "ByteStorage",
                 "BoolStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


_TYPE_OF = {"float32": "FloatStorage", "float64": "DoubleStorage", "float16": "HalfStorage", "int64": "LongStorage",
            "int32": "IntStorage", "uint8": "ByteStorage", "bool": "BoolStorage"}


def _save(obj, path, storages, legacy, byteorder="little"):
    torch = sys.modules["torch"]

    class Pickler(pickle.Pickler):
        def persistent_id(self, value):
            if isinstance(value, _Storage):
                pid = ("storage", getattr(torch, value.type_name), value.key, "cpu", value.numel)
                return pid + (None,) if legacy else pid
            return None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(obj)
    if legacy:
        with open(path, "wb") as f:
            for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": byteorder == "little"}):
                pickle.dump(header, f, protocol=2)
            f.write(buffer.getvalue())
            pickle.dump(sorted(s.key for s in storages), f, protocol=2)
            for s in sorted(storages, key=lambda s: s.key):
                f.write(struct.pack("<q" if byteorder == "little" else ">q", s.numel) + s.raw)
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", buffer.getvalue())
            z.writestr("archive/byteorder", byteorder)
            for s in storages:
                z.writestr(f"archive/data/{s.key}", s.raw)


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_reader_handles_dtypes_views_and_byte_order(fake_torch, tmp_path, legacy, byteorder):
    order = "<" if byteorder == "little" else ">"
    base = np.arange(24, dtype="float32").reshape(4, 6) / 7
    storages, expected, state = [], {}, collections.OrderedDict()

    def storage(key, flat):
        raw = flat.astype(flat.dtype.newbyteorder(order)).tobytes()
        s = _Storage(key, _TYPE_OF[flat.dtype.name], raw, flat.size)
        storages.append(s)
        return s

    shared = storage("0", base.ravel())
    state["transposed"], expected["transposed"] = _Tensor(shared, 0, (6, 4), (1, 6)), base.T
    state["window"], expected["window"] = _Tensor(shared, 7, (2, 3), (6, 1)), base[1:3, 1:4]
    for i, dtype in enumerate(["float64", "float16", "int64", "int32", "uint8", "bool"]):
        array = (np.arange(12) % 5).astype(dtype).reshape(3, 4)
        state[dtype], expected[dtype] = _Tensor(storage(str(i + 1), array.ravel()), 0, (3, 4), (4, 1)), array
    state["scalar"], expected["scalar"] = _Tensor(storage("9", np.array([123], "int64")), 0, (), ()), np.array(123)
    path = tmp_path / "written.pth"
    _save({"epoch": 3, "state_dict": state, "nested": {"list": [1, "a"]}}, path, storages, legacy, byteorder)

    loaded = load_torch_checkpoint(str(path))
    assert loaded["epoch"] == 3 and loaded["nested"] == {"list": [1, "a"]}
    assert list(loaded["state_dict"]) == list(expected)
    for key, want in expected.items():
        got = loaded["state_dict"][key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        np.testing.assert_array_equal(got, want)
        assert got.flags["C_CONTIGUOUS"] and got.flags["WRITEABLE"]


def test_reader_refuses_a_tensor_past_its_storage(fake_torch, tmp_path):
    s = _Storage("0", "FloatStorage", np.zeros(4, "float32").tobytes(), 4)
    _save({"w": _Tensor(s, 2, (2, 2), (2, 1))}, tmp_path / "bad.pth", [s], legacy=False)
    with pytest.raises(ValueError) as err:
        load_torch_checkpoint(str(tmp_path / "bad.pth"))
    assert "reaches past its storage" in one_line(err)


def test_fixture_formats_hold_the_same_tensors():
    zipped = load_torch_checkpoint(os.path.join(DATA, "official_cifar_resnet20_simam.pth.tar"))
    legacy = load_torch_checkpoint(os.path.join(DATA, "official_cifar_resnet20_simam_legacy.pth.tar"))
    release = load_torch_checkpoint(os.path.join(DATA, "official_cifar_resnet20_simam_release_style.pth"))
    assert zipped["arch"] == legacy["arch"] == "resnet20" and list(release) == ["state_dict"]
    assert list(zipped["state_dict"]) == list(legacy["state_dict"])
    assert [f"module.{k}" for k in zipped["state_dict"]] == list(release["state_dict"])
    for key, value in zipped["state_dict"].items():
        np.testing.assert_array_equal(value, legacy["state_dict"][key])
    assert zipped["state_dict"]["bn1.num_batches_tracked"].shape == ()


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


# ---------------------------------------------------------------- init="official"


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


# ---------------------------------------------------------------- fine-tuning: train --init-from


def _split(root, classes=("a", "b", "c"), per_class=2):
    rng = np.random.RandomState(0)
    for part in ("train", "eval"):
        for c in classes:
            os.makedirs(root / part / c)
            for i in range(per_class):
                Image.fromarray((rng.rand(32, 32, 3) * 255).astype("uint8")).save(root / part / c / f"{i}.png")
    return str(root)


def test_train_init_from_a_converted_run_gets_a_new_head(tmp_path, capsys):
    source, run = str(tmp_path / "official"), str(tmp_path / "finetuned")
    assert main(["convert-official", os.path.join(DATA, "official_cifar_resnet20_simam.pth.tar"), "--model",
                 "cifar_resnet20", "--attention", "simam", "--output", source]) == 0
    split = _split(tmp_path / "split")
    capsys.readouterr()
    # A negligible lr: the loaded weights stay as they were, so the test sees that they were loaded.
    assert main(["train", "--data", split, "--output", run, "--init-from", source, "--epochs", "1",
                 "--batch-size", "3", "--lr", "1e-12", "--quiet"]) == 0
    heads = [line for line in capsys.readouterr().out.splitlines() if "new classifier head" in line]
    assert len(heads) == 1 and "3 classes (the run had 10)" in heads[0]
    config = json.load(open(os.path.join(run, "config.json")))
    assert (config["model"], config["attention"], config["e_lambda"], config["image_size"]) == \
        ("cifar_resnet20", "simam", 0.1, 32)
    assert config["init_from"] == os.path.abspath(source) and config["num_classes"] == 3
    new = paddle.load(os.path.join(run, "best_model.pdparams"))
    old = paddle.load(os.path.join(source, "best_model.pdparams"))
    np.testing.assert_allclose(new["layer3.2.conv2.weight"].numpy(), old["layer3.2.conv2.weight"].numpy(), rtol=1e-5)
    assert list(new["linear.weight"].shape) == [64, 3]


def test_init_from_refuses_a_run_of_another_attention(tmp_path, capsys):
    source = str(tmp_path / "official")
    assert main(["convert-official", os.path.join(DATA, "official_cifar_resnet20_se.pth.tar"), "--model",
                 "cifar_resnet20", "--attention", "se", "--output", source]) == 0
    split = _split(tmp_path / "split")
    assert main(["train", "--data", split, "--output", str(tmp_path / "run"), "--init-from", source,
                 "--attention", "cbam", "--epochs", "1", "--quiet"]) == 2
    assert "does not fit this model" in error_line(capsys)


def test_a_utf16_class_list_is_a_one_line_error_naming_it(tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_bytes("\n".join(f"c{i}" for i in range(10)).encode("utf-16"))
    assert main(["convert-official", os.path.join(DATA, "official_cifar_resnet20_se.pth.tar"), "--model",
                 "cifar_resnet20", "--attention", "se", "--output", str(tmp_path / "run"),
                 "--classes", str(classes)]) == 2
    assert error_line(capsys) == (f"error: {classes} is not UTF-8 text, as a class list must be: it is UTF-16 (it "
                                  "starts with a UTF-16 byte-order mark); save it as UTF-8")
    assert not (tmp_path / "run").exists()
