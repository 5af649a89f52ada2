"""TrainConfig: one place for every training setting's default, rule, and role."""
import dataclasses

import pytest

from simam_paddle.experiments import TRAIN_DEFAULTS, TrainConfig
from simam_paddle.config import (check_settings, compared_settings, per_run_settings, resumable_settings,
                                             setting_type, shared_settings)

from subprocesses import run_python


def test_defaults_are_the_notebook_recipe_and_train_defaults_derive_from_the_fields():
    from simam_paddle.config import RECIPES

    assert TRAIN_DEFAULTS == {**dataclasses.asdict(TrainConfig()), **RECIPES["notebook"].defaults}
    assert (TRAIN_DEFAULTS["epochs"], TRAIN_DEFAULTS["lr"], TRAIN_DEFAULTS["batch_size"]) == (100, 0.01, 32)
    # A recipe fills only fields whose default is None ("the recipe's"), so a value given always wins.
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for recipe in RECIPES.values():
        assert all(defaults[name] is None for name in recipe.defaults), recipe
        TrainConfig(**recipe.defaults)  # and every one passes the fields' rules
    # config.json keys of existing run folders
    assert {"lr", "e_lambda", "reduction", "init_from", "attention"} <= set(TRAIN_DEFAULTS)


def test_every_field_has_help_a_rule_and_a_role():
    for field in dataclasses.fields(TrainConfig):
        assert field.metadata["help"] and callable(field.metadata["rule"]) and field.metadata["words"]
        assert field.metadata["rule"](field.default), field.name  # every default passes its own rule
    assert per_run_settings() == ["model", "attention", "seed"]
    assert resumable_settings() == ["num_workers", "cache", "device", "onednn"]
    assert set(shared_settings()) == set(TRAIN_DEFAULTS) - set(per_run_settings())
    assert set(compared_settings()) == set(shared_settings()) - set(resumable_settings())


@pytest.mark.parametrize("setting,value", [
    ("epochs", 0), ("epochs", True), ("lr", float("nan")), ("momentum", 1.0), ("weight_decay", -1.0),
    ("e_lambda", 0.0), ("reduction", 2.5), ("cache", "yes"), ("train_per_class", 0), ("seed", -1),
])
def test_a_bad_value_names_the_argument(setting, value):
    with pytest.raises(ValueError, match=f"^{setting}={value!r}: must be"):
        TrainConfig(**{setting: value})
    with pytest.raises(ValueError, match=f"^{setting}="):
        check_settings({setting: value})


def test_check_settings_ignores_keys_that_are_not_settings():
    check_settings({"data": None, "num_classes": 3, "epochs": 2})


def test_to_settings_gives_only_what_differs_from_the_defaults():
    assert TrainConfig(model="resnet18", lr=0.1).to_settings() == {"model": "resnet18", "lr": 0.1}
    assert TrainConfig().to_settings() == {}
    # 100 is the notebook's number of epochs, but given, it holds for any recipe
    assert TrainConfig(recipe="official-cifar", epochs=100).to_settings() == {"epochs": 100,
                                                                             "recipe": "official-cifar"}


def test_a_run_record_gives_back_its_settings():
    record = {**TRAIN_DEFAULTS, "weight_decay": 2e-4, "onednn": False, "data": "split", "classes": ["a"]}
    config = TrainConfig.from_record(record)
    assert dataclasses.asdict(config) == {k: v for k, v in record.items() if k in TRAIN_DEFAULTS}


def test_setting_types_come_from_the_annotations():
    assert [setting_type(n) for n in ("epochs", "lr", "e_lambda", "reduction", "cache", "attention")] == [
        int, float, float, int, bool, str]


def test_help_facts_agree_with_the_model_registry_and_the_layers():
    # The help words stand in for facts that live elsewhere; they must not drift.
    from simam_paddle import SEModule, SimAM
    from simam_paddle.models import model_spec

    meta = {f.name: f.metadata for f in dataclasses.fields(TrainConfig)}
    assert "127 for TowerNet" in meta["image_size"]["help"] and model_spec("towernet").min_input_size == 127
    assert "2e-4 for TowerNet, 1e-4 for the ResNets" in meta["weight_decay"]["default_help"]
    assert (model_spec("towernet").weight_decay, model_spec("resnet50").weight_decay) == (2e-4, 1e-4)
    assert "TowerNet with simam, the ResNets with none" in meta["attention"]["default_help"]
    assert (model_spec("towernet").attention, model_spec("resnet50").attention) == ("simam", "none")
    assert "1e-4" in meta["e_lambda"]["default_help"] and SimAM().e_lambda == 1e-4
    assert "16" in meta["reduction"]["default_help"] and SEModule(64).fc1.weight.shape[0] == 64 // 16
    # The optimizer names are listed here without Paddle; the engine maps the same names to Paddle's classes.
    from simam_paddle.engine import OPTIMIZERS as OPTIMIZER_CLASSES
    from simam_paddle.config import OPTIMIZERS

    assert tuple(OPTIMIZER_CLASSES) == OPTIMIZERS == meta["optimizer"]["choices"]


@pytest.mark.parametrize("module", ["simam_paddle.config", "simam_paddle.experiments.config"])
def test_reading_the_config_does_not_import_paddle(module):
    code = f"import sys, {module}; print('paddle' in sys.modules)"
    assert run_python(code).stdout.strip() == "False"


@pytest.mark.parametrize("name, value", [("epochs", 10**30), ("epochs", 100_001), ("image_size", 8193),
                                         ("batch_size", 65537)])
def test_sizes_beyond_any_run_are_refused(name, value):
    from simam_paddle.experiments.config import TrainConfig

    with pytest.raises(ValueError, match=f"{name}={value}: must be a positive integer up to"):
        TrainConfig(**{name: value})
    TrainConfig(**{name: value - 1 if value < 10**6 else 100_000})  # the bound itself is allowed
