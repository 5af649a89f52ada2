"""explain_images and `explain`: Grad-CAM of trained runs on image files."""
import numpy as np
import pytest

from simam_paddle.cli import main
from simam_paddle.engine import grad_cam
from simam_paddle.experiments.explain import MAX_EXPLAINED_IMAGES, explain_images
from simam_paddle.experiments.prediction import predict_images
from simam_paddle.experiments.runs import load_run, run_transforms

from trained_runs import colour_ablation


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    return colour_ablation(tmp_path_factory.mktemp("explain"))


def test_maps_and_predictions_match_grad_cam_and_predict(ablation):
    split, runs = ablation
    images = sorted(str(p) for p in (split / "eval").glob("*/0.png"))
    folders = [str(runs / "cifar_resnet20_none_seed0"), str(runs / "cifar_resnet20_simam_seed0")]
    result = explain_images(folders, images, class_of_folder=True)
    assert result.labels == ["none", "simam"] and result.layers == ["layer3", "layer3"]
    assert result.explained == [["blue", "green", "red"]] * 2
    for column, folder in enumerate(folders):
        top = [p.classes[0] for p in predict_images(folder, images, top_k=1, onednn=False)]
        assert result.predicted[column] == top
        network, config = load_run(folder)
        batch = np.stack([run_transforms(config, train=False)(img) for img in map(_open, images)])
        expected = grad_cam(network, batch, "layer3", class_ids=[0, 1, 2]).maps
        np.testing.assert_allclose(result.maps[column], expected, atol=1e-5)


def _open(path):
    from PIL import Image

    return Image.open(path).convert("RGB")


def test_the_command_writes_the_figure_and_a_line_per_image_and_run(ablation, tmp_path, capsys):
    split, runs = ablation
    out = tmp_path / "cam.jpg"
    assert main(["explain", str(runs / "cifar_resnet20_none_seed0"), str(split / "eval" / "red"), "--compare",
                 str(runs / "cifar_resnet20_simam_seed0"), "--class", "green", "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 * 2 + 1 and all("map of green at layer3" in line for line in lines[:-1])
    assert out.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG, as the name asks


def test_errors_name_what_exists(ablation, tmp_path):
    split, runs = ablation
    run = str(runs / "cifar_resnet20_none_seed0")
    with pytest.raises(ValueError, match=r"class 'purple' is not one of run .*\['blue', 'green', 'red'\]"):
        explain_images(run, str(split / "eval"), class_name="purple")
    with pytest.raises(ValueError, match="not both"):
        explain_images(run, str(split / "eval"), class_name="red", class_of_folder=True)
    with pytest.raises(ValueError, match=r"layer 'layer7' not found.*'layer3'"):
        explain_images(run, str(split / "eval"), layer="layer7")
    many = [str(next((split / "eval" / "red").iterdir()))] * (MAX_EXPLAINED_IMAGES + 1)
    with pytest.raises(ValueError, match=f"{MAX_EXPLAINED_IMAGES + 1} images given, at most"):
        explain_images(run, many)
    with pytest.raises(SystemExit):  # argparse: --class and --class-of-folder exclude each other
        main(["explain", run, str(split / "eval"), "--class", "red", "--class-of-folder"])


def test_an_output_that_is_one_of_the_images_is_refused_and_the_image_kept(ablation, tmp_path, capsys):
    split, runs = ablation
    image = tmp_path / "0.png"
    image.write_bytes((split / "eval" / "red" / "0.png").read_bytes())
    before = image.read_bytes()
    link = tmp_path / "figure.png"
    link.symlink_to(image)
    for output in (image, link):
        assert main(["explain", str(runs / "cifar_resnet20_none_seed0"), str(tmp_path), "--output", str(output)]) == 2
        assert "is one of the images" in capsys.readouterr().err
        assert image.read_bytes() == before
