"""Official checkpoints as run folders (experiments/official_runs.py, ``convert-official``): config, evaluate, export,
refusals in one line."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from simam_paddle.cli import main
from simam_paddle.experiments.runs import attention_options, evaluate_run, export_run, load_run

from official_fixtures import DATA, FIXTURES, LOGITS, error_line, relative_error


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


def test_cli_refuses_a_wrong_architecture_in_one_line(tmp_path, capsys):
    assert main(["convert-official", os.path.join(DATA, "official_cifar_resnet20_se.pth.tar"), "--model",
                 "cifar_resnet56", "--attention", "se", "--output", str(tmp_path / "run")]) == 2
    assert "missing key layer1.3" in error_line(capsys)
    assert main(["convert-official", os.path.join(DATA, "official_cifar_resnet20_se.pth.tar"), "--model",
                 "cifar_resnet20", "--attention", "se", "--attention-param", "2.5",
                 "--output", str(tmp_path / "run")]) == 2
    assert "whole number" in error_line(capsys)


def test_a_utf16_class_list_is_a_one_line_error_naming_it(tmp_path, capsys):
    classes = tmp_path / "classes.txt"
    classes.write_bytes("\n".join(f"c{i}" for i in range(10)).encode("utf-16"))
    assert main(["convert-official", os.path.join(DATA, "official_cifar_resnet20_se.pth.tar"), "--model",
                 "cifar_resnet20", "--attention", "se", "--output", str(tmp_path / "run"),
                 "--classes", str(classes)]) == 2
    assert error_line(capsys) == (f"error: {classes} is not UTF-8 text, as a class list must be: it is UTF-16 (it "
                                  "starts with a UTF-16 byte-order mark); save it as UTF-8")
    assert not (tmp_path / "run").exists()
