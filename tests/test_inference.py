"""Paddle Inference behind evaluate, evaluate_run, predict and predict_images: dygraph's logits to float32 rounding."""
from pathlib import Path

import numpy as np
import paddle
import pytest

from simam_paddle.cli import main
from simam_paddle.engine.evaluation import evaluate, predict
from simam_paddle.engine.inference import InferencePredictor, check_engine
from simam_paddle.experiments.prediction import predict_images
from simam_paddle.experiments.runs import evaluate_run, load_run, run_datasets

from trained_runs import colour_ablation


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A two-epoch run of the smallest zoo model on a tiny split of noisy flat-colour images."""
    _, runs = colour_ablation(tmp_path_factory.mktemp("inference"), attentions=("none",))
    return str(runs / "cifar_resnet20_none_seed0")


def test_inference_gives_dygraphs_logits_and_accuracy(run):
    network, config = load_run(run)
    _, dataset = run_datasets(config, train=False)
    with paddle.no_grad():  # Paddle's own kernels, as the reference
        reference = evaluate(paddle.Model(network), dataset, batch_size=4)
    predictor = InferencePredictor(network, config["image_size"])
    got = evaluate(predictor, dataset, batch_size=4)
    scale = np.abs(reference["logits"]).max()
    np.testing.assert_allclose(got["logits"], reference["logits"], rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_array_equal(got["labels"], reference["labels"])
    assert got["acc"] == reference["acc"] and abs(got["loss"] - reference["loss"]) < 1e-4
    np.testing.assert_allclose(predict(predictor, dataset, batch_size=5), reference["logits"], rtol=1e-4,
                               atol=1e-4 * scale)


def test_evaluate_run_and_predict_images_take_the_inference_engine(run, tmp_path):
    dygraph = evaluate_run(run, output=str(tmp_path / "dygraph"))
    inference = evaluate_run(run, output=str(tmp_path / "inference"), engine="inference")
    assert (dygraph["engine"], inference["engine"]) == ("dygraph", "inference")
    assert inference["acc"] == dygraph["acc"] and inference["confusion_matrix"].tolist() \
        == dygraph["confusion_matrix"].tolist()
    images = str(Path(run).parent.parent / "split" / "eval")
    expected = predict_images(run, images, top_k=3)
    got = predict_images(run, images, top_k=3, engine="inference")
    assert [r.classes[0] for r in got] == [r.classes[0] for r in expected]
    np.testing.assert_allclose([r.probs for r in got], [r.probs for r in expected], rtol=1e-4, atol=1e-6)


def test_cli_takes_the_engine_and_an_unknown_engine_names_the_known_ones(run, tmp_path, capsys):
    assert main(["evaluate", run, "--output", str(tmp_path), "--engine", "inference"]) == 0
    assert capsys.readouterr().out.startswith("acc ")
    with pytest.raises(ValueError, match=r"engine 'onnx' is not one of \['dygraph', 'inference'\]"):
        check_engine("onnx")
    with pytest.raises(ValueError, match="not one of"):
        predict_images(run, run, engine="static")
