import os
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

from simam_paddle.experiments.notebook import (class_examples, find_caltech, layer_table, notebook_profile, open_run,
                                               per_class_subset, prepare_split, quick_profile)


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_quick_profile_forced_on(value):
    quick, reason = quick_profile({"SIMAM_QUICK": value}, has_gpu=True)
    assert quick is True
    assert "SIMAM_QUICK" in reason


@pytest.mark.parametrize("value", ["0", "false", "No", "off"])
def test_quick_profile_forced_off(value):
    quick, reason = quick_profile({"SIMAM_QUICK": value}, has_gpu=False)
    assert quick is False
    assert "SIMAM_QUICK" in reason


@pytest.mark.parametrize("has_gpu, expected", [(True, False), (False, True)])
def test_quick_profile_follows_the_device_when_unset(has_gpu, expected):
    assert quick_profile({}, has_gpu=has_gpu)[0] is expected
    assert quick_profile({"SIMAM_QUICK": ""}, has_gpu=has_gpu)[0] is expected


def test_quick_profile_asks_paddle_by_default():
    import paddle

    gpu = paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    assert quick_profile({})[0] is (not gpu)


def test_quick_profile_rejects_unknown_values():
    with pytest.raises(ValueError, match="SIMAM_QUICK='maybe'.*1 .*0 "):
        quick_profile({"SIMAM_QUICK": "maybe"})


def _write_images(root, classes, per_class, size=(20, 16)):
    rng = np.random.RandomState(0)
    for name in classes:
        os.makedirs(root / name, exist_ok=True)
        for i in range(per_class):
            pixels = rng.randint(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"img {i}.jpg")


def test_find_caltech_prefers_the_zip(tmp_path):
    assert find_caltech(tmp_path) is None
    (tmp_path / "Images.zip").mkdir()  # a folder named like the zip is not the zip
    assert find_caltech(tmp_path) is None
    (tmp_path / "Images").mkdir()
    assert find_caltech(tmp_path) == tmp_path / "Images"
    (tmp_path / "Images.zip").rmdir()
    (tmp_path / "Images.zip").write_bytes(b"")
    assert find_caltech(tmp_path) == tmp_path / "Images.zip"


def test_prepare_split_uses_caltech_zip(tmp_path):
    images = tmp_path / "src" / "Images"
    _write_images(images, ["cat", "dog"], per_class=6)
    with zipfile.ZipFile(tmp_path / "Images.zip", "w") as zf:
        for path in sorted(images.rglob("*.jpg")):
            zf.write(path, path.relative_to(tmp_path / "src").as_posix())
    data = prepare_split(tmp_path, progress=False)
    assert data.kind == "caltech"
    assert data.source == tmp_path / "Images.zip"
    assert data.split == tmp_path / "caltech_split"
    # 6 sorted images per class, indices 0 and 5 go to eval; spaces become underscores.
    assert data.report.counts == {"cat": {"train": 4, "eval": 2}, "dog": {"train": 4, "eval": 2}}
    assert sorted(os.listdir(data.split / "eval" / "cat")) == ["img_0.jpg", "img_5.jpg"]
    assert not (tmp_path / "digits").exists()


@pytest.mark.slow
def test_prepare_split_takes_the_embedded_caltech16_without_images(tmp_path):
    from simam_paddle.data.caltech import CALTECH16_CLASSES, embedded_caltech16

    data = prepare_split(tmp_path, progress=False)
    assert data.kind == "caltech" and data.split == tmp_path / "caltech16_split"
    assert data.source.resolve() == embedded_caltech16() and not data.source.is_absolute()
    assert sorted(data.report.counts) == sorted(CALTECH16_CLASSES)
    assert (data.report.num_train, data.report.num_eval) == (1447, 370)
    watch = sorted((embedded_caltech16() / "watch").iterdir())
    assert sorted(os.listdir(data.split / "eval" / "watch"))[:2] == [watch[0].name, watch[5].name]
    assert not (tmp_path / "digits").exists()


@pytest.mark.slow
def test_prepare_split_falls_back_to_digits_and_repeats(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    from simam_paddle.data import caltech

    def not_shipped():  # an installed wheel: the repository's data/caltech16 is not there
        raise FileNotFoundError("the embedded Caltech-16 is not here")

    monkeypatch.setattr(caltech, "embedded_caltech16", not_shipped)
    data = prepare_split(tmp_path, progress=False)
    assert data.kind == "digits"
    assert data.split == tmp_path / "digits_split"
    assert sorted(data.report.counts) == [str(d) for d in range(10)]
    # load_digits has 1797 images; every 5th of each class is eval.
    assert data.report.num_train + data.report.num_eval == 1797
    for name, counts in data.report.counts.items():
        total = len(os.listdir(tmp_path / "digits" / name))
        assert counts["eval"] == -(-total // 5)
    _write_images(tmp_path / "Images", ["cat"], per_class=2)  # caltech=False (the smoke profile's) ignores it
    again = prepare_split(tmp_path, progress=False, caltech=False)
    assert again.kind == "digits"
    assert again.report.written == 0 and again.report.unchanged == 1797



@pytest.mark.parametrize("value, expected", [("smoke", "smoke"), ("CPU", "cpu"), (" full ", "full")])
def test_notebook_profile_named(value, expected):
    profile, reason = notebook_profile({"SIMAM_PROFILE": value, "SIMAM_QUICK": "1"}, has_gpu=True)
    assert profile == expected  # SIMAM_PROFILE wins over SIMAM_QUICK
    assert "SIMAM_PROFILE" in reason


@pytest.mark.parametrize("env, has_gpu, expected", [
    ({"SIMAM_QUICK": "1"}, True, "smoke"),
    ({"SIMAM_QUICK": "0"}, False, "full"),
    ({}, True, "full"),
    ({}, False, "cpu"),
    ({"SIMAM_PROFILE": "", "SIMAM_QUICK": ""}, False, "cpu"),
])
def test_notebook_profile_falls_back_to_simam_quick_then_the_device(env, has_gpu, expected):
    assert notebook_profile(env, has_gpu=has_gpu)[0] == expected
    assert quick_profile(env, has_gpu=has_gpu)[0] is (expected != "full")


def test_notebook_profile_rejects_unknown_names():
    with pytest.raises(ValueError, match="SIMAM_PROFILE='fast'.*smoke, cpu, full"):
        notebook_profile({"SIMAM_PROFILE": "fast"})


def _image_dataset(tmp_path, per_class=3):
    from simam_paddle import ImageFolderDataset, eval_transforms

    _write_images(tmp_path / "imgs", ["a", "b", "c"], per_class=per_class, size=(8, 8))
    return ImageFolderDataset(tmp_path / "imgs", eval_transforms(8), image_size=8)


def test_per_class_subset_and_class_examples(tmp_path):
    data = _image_dataset(tmp_path)
    assert per_class_subset(data, None) is data
    subset = per_class_subset(data, 2)
    assert [data.targets[i] for i in subset.indices] == [0, 0, 1, 1, 2, 2]
    examples = class_examples(subset, classes=2)
    assert list(examples) == ["a", "b"]
    np.testing.assert_array_equal(examples["b"], data[3][0])  # first image of class b
    assert list(class_examples(data, classes=5)) == ["a", "b", "c"]


def test_layer_table_lists_blocks_with_shapes_and_parameters():
    import paddle

    net = paddle.nn.Sequential(paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.ReLU()),
                               paddle.nn.Flatten(), paddle.nn.Linear(4 * 6 * 6, 2))
    net.train()
    lines = layer_table(net, 8).splitlines()
    assert lines[0].split() == ["block", "type", "output", "shape", "params"]
    assert lines[1].split()[:2] == ["0", "Sequential"] and "[1, 4, 6, 6]" in lines[1] and lines[1].endswith("112")
    assert lines[3].split()[:2] == ["2", "Linear"] and "[1, 2]" in lines[3]
    assert lines[-1].split() == ["total", f"{112 + 144 * 2 + 2:,}"]
    assert net.training  # left as it was
    deeper = layer_table(net, [1, 3, 8, 8], depth=2).splitlines()
    assert [line.split()[0] for line in deeper[1:-1]] == ["0.0", "0.1", "1", "2"]
    with pytest.raises(ValueError, match="depth"):
        layer_table(net, 8, depth=0)


def _hapi_model(data, epochs, seed=0, lr=0.01, weight_decay=2e-4, batch_size=4):
    """A prepared model and loader as the notebooks make them; the defaults are TowerNet's settings."""
    import paddle
    import simam_paddle as sp

    sp.engine.seed_everything(seed)
    network = paddle.nn.Sequential(paddle.nn.Flatten(), paddle.nn.Linear(3 * 8 * 8, 3))
    model = paddle.Model(network)
    loader = sp.engine.make_loader(data, batch_size, shuffle=True)
    model.prepare(sp.engine.make_optimizer(model.parameters(), lr, epochs, len(loader), weight_decay=weight_decay),
                  paddle.nn.CrossEntropyLoss(), paddle.metric.Accuracy())
    return model, loader


def test_open_run_starts_resumes_and_reads_back(tmp_path, capsys):
    import json
    import paddle
    from simam_paddle.engine import read_history

    data = _image_dataset(tmp_path, per_class=4)
    run_dir = str(tmp_path / "run")
    settings = dict(model="towernet", epochs=3, image_size=8, batch_size=4, lr=0.01, seed=0)

    # An interrupted run: 2 of 3 epochs done.
    model, loader = _hapi_model(data, 3)
    run = open_run(run_dir, model, loader, tmp_path / "imgs", settings, eval_loader=loader)
    assert (run.status, run.initial_epoch, run.remaining_epochs) == ("new", 0, 3)
    model.fit(loader, loader, epochs=2, callbacks=run.callbacks, verbose=0)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["model"], config["epochs"], config["classes"], config["train_samples"]) == ("towernet", 3, ["a", "b", "c"], 12)
    assert config["weight_decay"] == 2e-4
    assert config["attention"] == "simam"  # not given: TowerNet as published, stored by name
    assert len(read_history(run_dir)) == 2
    out = capsys.readouterr().out
    assert "new run of 3 epochs" in out and "epoch 2/3: loss" in out

    # Picked up again: resumes after epoch 2 with the saved weights and schedule.
    model, loader = _hapi_model(data, 3, seed=1)
    run = open_run(run_dir, model, loader, tmp_path / "imgs", settings)
    assert (run.status, run.initial_epoch, run.remaining_epochs) == ("resumed", 2, 1)
    saved = paddle.load(str(tmp_path / "run" / "last.pdparams"))
    np.testing.assert_array_equal(model.network.state_dict()["1.weight"].numpy(), saved["1.weight"].numpy())
    model.fit(loader, loader, epochs=run.remaining_epochs, callbacks=run.callbacks, verbose=0)
    assert [r["epoch"] for r in read_history(run_dir)] == [1, 2, 3]
    assert "epoch 3/3" in capsys.readouterr().out

    # Finished: the best weights are read back and fit has nothing to do.
    model, loader = _hapi_model(data, 3, seed=2)
    run = open_run(run_dir, model, loader, tmp_path / "imgs", settings)
    assert (run.status, run.remaining_epochs, run.callbacks) == ("finished", 0, [])
    best = paddle.load(str(tmp_path / "run" / "best_model.pdparams"))
    np.testing.assert_array_equal(model.network.state_dict()["1.weight"].numpy(), best["1.weight"].numpy())

    # Other settings are refused, naming the difference.
    with pytest.raises(ValueError, match="lr: run has 0.01, given 0.1"):
        open_run(run_dir, model, loader, tmp_path / "imgs", {**settings, "lr": 0.1})
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        open_run(str(tmp_path / "other"), model, loader, tmp_path / "imgs", {**settings, "epochs": 0})
    with pytest.raises(ValueError, match="unknown run settings"):
        open_run(run_dir, model, loader, tmp_path / "imgs", {**settings, "learning_rate": 0.1})


def test_open_run_needs_a_prepared_model(tmp_path):
    import paddle

    data = _image_dataset(tmp_path)
    model = paddle.Model(paddle.nn.Sequential(paddle.nn.Flatten(), paddle.nn.Linear(192, 3)))
    with pytest.raises(ValueError, match="prepare the model first"):
        open_run(str(tmp_path / "run"), model, None, tmp_path / "imgs", {"model": "x", "epochs": 1})


def test_open_run_records_the_optimizer_and_refuses_a_model_prepared_with_another(tmp_path):
    import json

    import paddle
    import simam_paddle as sp

    data = _image_dataset(tmp_path, per_class=2)
    settings = dict(model="towernet", epochs=2, image_size=8, batch_size=4, lr=0.01, seed=0)
    model, loader = _hapi_model(data, 2)  # Momentum, from make_optimizer
    with pytest.raises(ValueError, match=r"prepared with Momentum, but the run's settings say optimizer='adam'.*"
                                         r"give settings optimizer='momentum'"):
        open_run(str(tmp_path / "a"), model, loader, tmp_path / "imgs", {**settings, "optimizer": "adam"}, verbose=0)
    with pytest.raises(ValueError, match="optimizer='rmsprop': must be one of momentum, adam"):
        open_run(str(tmp_path / "a"), model, loader, tmp_path / "imgs", {**settings, "optimizer": "rmsprop"}, verbose=0)
    assert not (tmp_path / "a").exists()
    model.prepare(sp.engine.make_optimizer(model.parameters(), 0.001, 2, len(loader), weight_decay=2e-4,
                                           optimizer="adam"),
                  paddle.nn.CrossEntropyLoss(), paddle.metric.Accuracy())
    with pytest.raises(ValueError, match=r"prepared with Adam, but the run's settings say optimizer='momentum'"):
        open_run(str(tmp_path / "a"), model, loader, tmp_path / "imgs", settings, verbose=0)
    open_run(str(tmp_path / "a"), model, loader, tmp_path / "imgs", {**settings, "optimizer": "adam", "lr": 0.001},
             verbose=0)
    assert json.loads((tmp_path / "a" / "config.json").read_text())["optimizer"] == "adam"


def test_open_run_records_the_kernels_it_trains_with(tmp_path):
    """``run.onednn``: given, else the run folder's record (runs without one used Paddle's kernels), else the default."""
    import json

    from simam_paddle.engine import onednn_default

    data = _image_dataset(tmp_path, per_class=2)
    settings = dict(model="towernet", epochs=2, image_size=8, batch_size=4, lr=0.01, seed=0)

    def opened(name, **extra):
        model, loader = _hapi_model(data, 2)
        run = open_run(str(tmp_path / name), model, loader, tmp_path / "imgs", {**settings, **extra}, verbose=0)
        return run, json.loads((tmp_path / name / "config.json").read_text())["onednn"]

    run, recorded = opened("default")
    assert run.onednn is recorded is onednn_default()
    run, recorded = opened("off", onednn=False)
    assert run.onednn is recorded is False
    # A run folder made before the setting existed (config.json with null) trained on Paddle's kernels.
    config = tmp_path / "default" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "onednn": None}))
    assert opened("default")[0].onednn is False
    assert opened("default", onednn=True)[0].onednn is True  # may be switched when the run is picked up again


def test_open_run_picks_up_its_run_given_the_attention_in_capitals(tmp_path):
    """The attention is stored by its lower-case name (as train_run stores it): the same settings, typed as the
    notebook typed them ("SimAM"), must find their own run again, not refuse it as another."""
    import json

    data = _image_dataset(tmp_path, per_class=2)
    settings = dict(model="towernet", attention="SimAM", epochs=2, image_size=8, batch_size=4, lr=0.01, seed=0)
    model, loader = _hapi_model(data, 2)
    run = open_run(str(tmp_path / "run"), model, loader, tmp_path / "imgs", settings, verbose=0)
    model.fit(loader, loader, epochs=1, callbacks=run.callbacks, verbose=0)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["attention"] == "simam"
    model, loader = _hapi_model(data, 2)
    run = open_run(str(tmp_path / "run"), model, loader, tmp_path / "imgs", settings, verbose=0)
    assert (run.status, run.initial_epoch) == ("resumed", 1)


def test_open_run_records_a_network_of_the_notebooks_own(tmp_path):
    """A model name outside the zoo (the notebook's own network) is recorded as given, with the weight decay
    given; without one there is no model's own to fall back on, and the error says to give it."""
    import json

    data = _image_dataset(tmp_path, per_class=2)
    settings = dict(model="my_mlp", epochs=1, image_size=8, batch_size=4, lr=0.01, seed=0)
    model, loader = _hapi_model(data, 1, weight_decay=1e-4)
    with pytest.raises(ValueError, match="weight_decay"):
        open_run(str(tmp_path / "a"), model, loader, tmp_path / "imgs", settings, verbose=0)
    run = open_run(str(tmp_path / "a"), model, loader, tmp_path / "imgs", {**settings, "weight_decay": 1e-4},
                   verbose=0)
    assert run.status == "new"
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert (config["model"], config["weight_decay"], config["attention"]) == ("my_mlp", 1e-4, None)


def test_open_run_resumes_with_the_seed_the_run_recorded(tmp_path):
    """Settings that leave the seed out pick a run up with the seed it started with (as train_run resumes from
    config.json), not the default: the remaining epochs' shuffling follows the run's seed."""
    from simam_paddle.engine import EpochSeed

    data = _image_dataset(tmp_path, per_class=2)
    settings = dict(model="towernet", epochs=2, image_size=8, batch_size=4, lr=0.01)
    model, loader = _hapi_model(data, 2)
    run = open_run(str(tmp_path / "run"), model, loader, tmp_path / "imgs", {**settings, "seed": 3}, verbose=0)
    model.fit(loader, loader, epochs=1, callbacks=run.callbacks, verbose=0)
    model, loader = _hapi_model(data, 2)
    run = open_run(str(tmp_path / "run"), model, loader, tmp_path / "imgs", settings, verbose=0)
    assert run.status == "resumed"
    assert [cb.seed for cb in run.callbacks if isinstance(cb, EpochSeed)] == [3]


@pytest.mark.parametrize("prepared, says", [
    (dict(lr=0.1), "lr: prepared 0.1, settings 0.01"),
    (dict(weight_decay=1e-4), "weight_decay: prepared 0.0001, settings 0.0002"),  # TowerNet's own is 2e-4
    (dict(batch_size=2), "batch_size: prepared 2, settings 4"),
    (dict(epochs=5), "epochs: prepared 5, settings 2"),
])
def test_open_run_refuses_a_model_prepared_otherwise_than_the_run_records(tmp_path, prepared, says):
    """config.json records what trains: a notebook that changed the optimizer's learning rate (or weight decay,
    the loader's batch size, the schedule's epochs) in one cell but not the settings is told so, and nothing is
    written; picking a run up again with another preparation is refused the same way."""
    data = _image_dataset(tmp_path, per_class=2)
    settings = dict(model="towernet", epochs=2, image_size=8, batch_size=4, lr=0.01, seed=0)
    model, loader = _hapi_model(data, **{"epochs": 2, **prepared})
    with pytest.raises(ValueError, match=re.escape(says)):
        open_run(str(tmp_path / "new"), model, loader, tmp_path / "imgs", settings, verbose=0)
    assert not (tmp_path / "new" / "config.json").exists()

    model, loader = _hapi_model(data, 2)
    run = open_run(str(tmp_path / "run"), model, loader, tmp_path / "imgs", settings, verbose=0)
    model.fit(loader, loader, epochs=1, callbacks=run.callbacks, verbose=0)
    model, loader = _hapi_model(data, **{"epochs": 2, **prepared})
    with pytest.raises(ValueError, match=re.escape(says.replace("settings", "run"))):
        open_run(str(tmp_path / "run"), model, loader, tmp_path / "imgs", settings, verbose=0)


def test_open_run_refuses_an_attention_option_the_attention_does_not_take(tmp_path):
    """As train_run: reduction is SE's and CBAM's, so TowerNet with SimAM and reduction=4 is refused before a
    config.json is written that load_run would refuse later."""
    data = _image_dataset(tmp_path, per_class=2)
    settings = dict(model="towernet", attention="simam", reduction=4, epochs=2, image_size=8, batch_size=4, lr=0.01)
    model, loader = _hapi_model(data, 2)
    with pytest.raises(ValueError, match="reduction set, but attention 'simam'"):
        open_run(str(tmp_path / "run"), model, loader, tmp_path / "imgs", settings, verbose=0)
    assert not (tmp_path / "run" / "config.json").exists()
    run = open_run(str(tmp_path / "run"), model, loader, tmp_path / "imgs", {**settings, "attention": "se"}, verbose=0)
    assert run.status == "new"
