"""predict_images and `predict`: top-k classes of image files, checked against the network's own logits."""
import csv
import io
import os

import numpy as np
import paddle
import pytest
from PIL import Image

from simam_paddle.cli import main
from simam_paddle.data import NOTEBOOK_MEAN, NOTEBOOK_STD
from simam_paddle.experiments.prediction import Prediction, _load, find_images, predict_images
from simam_paddle.experiments.runs import load_run, run_kernels, run_transforms, train_run

from hostile_files import bomb_png, exif_turned_jpeg

COLOURS = {"blue": (0, 0, 250), "green": (0, 250, 0), "red": (250, 0, 0)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch run of the smallest zoo model on a tiny split of noisy flat-colour images."""
    root = tmp_path_factory.mktemp("predict")
    rng = np.random.RandomState(0)
    for part in ("train", "eval"):
        for name, colour in COLOURS.items():
            folder = root / "split" / part / name
            folder.mkdir(parents=True)
            for i in range(2):
                pixels = np.clip(np.array(colour) + rng.randint(-40, 40, (32, 32, 3)), 0, 255).astype("uint8")
                Image.fromarray(pixels).save(folder / f"{i}.png")
    train_run(str(root / "split"), str(root / "run"), model="cifar_resnet20", image_size=32, epochs=1,
              batch_size=4, device="cpu", verbose=0)
    return str(root / "run")


@pytest.fixture()
def photos(tmp_path):
    """Images of other sizes and modes, in a nested folder, with a hidden file, a text file and a bad image."""
    (tmp_path / "photos" / "more").mkdir(parents=True)
    (tmp_path / "photos" / ".hidden").mkdir()
    Image.new("RGB", (40, 24), (230, 20, 30)).save(tmp_path / "photos" / "a.jpg")
    Image.new("L", (32, 32), 90).save(tmp_path / "photos" / "more" / "b.png")
    Image.new("RGBA", (50, 50), (0, 0, 200, 128)).save(tmp_path / "photos" / "more" / "c.png")
    Image.new("RGB", (32, 32)).save(tmp_path / "photos" / ".hidden" / "d.png")
    Image.new("RGB", (32, 32)).save(tmp_path / "photos" / "._e.png")
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    (tmp_path / "photos" / "more" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return tmp_path / "photos"


def expected(run, path, k):
    """Top-k names and softmax probabilities computed here: RGB on white, bilinear resize, normalise."""
    network, config = load_run(run)
    with Image.open(path) as image:
        if image.mode == "RGBA":
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        image = image.convert("RGB").resize((32, 32), Image.BILINEAR)
    x = (np.asarray(image, "float32") / 255 - np.array(NOTEBOOK_MEAN)) / np.array(NOTEBOOK_STD)
    with paddle.no_grad(), run_kernels(network, config):  # the kernels the run trained with, as predict uses
        logits = network(paddle.to_tensor(x.transpose(2, 0, 1)[None].astype("float32"))).numpy()[0]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    order = np.argsort(-probs)[:k]
    return [config["classes"][i] for i in order], probs[order]


def test_find_images_walks_folders_and_skips_hidden(photos):
    names = [os.path.relpath(p, photos) for p in find_images(photos)]
    assert names == ["a.jpg", "more/b.png", "more/broken.png", "more/c.png"]
    assert find_images(str(photos / "notes.txt")) == [str(photos / "notes.txt")]  # named files are taken
    with pytest.raises(FileNotFoundError, match="missing"):
        find_images(str(photos / "missing"))


def test_predictions_match_the_networks_logits(run, photos):
    rows = predict_images(run, str(photos), top_k=2, batch_size=2)
    by_name = {os.path.basename(row.path): row for row in rows}
    assert "broken.png" in by_name["broken.png"].path and "cannot read image" in by_name["broken.png"].error
    for name in ("a.jpg", "b.png", "c.png"):
        row = by_name[name]
        classes, probs = expected(run, row.path, 2)
        assert row.error is None and row.classes == classes
        np.testing.assert_allclose(row.probs, probs, rtol=1e-4, atol=1e-6)
    # top_k larger than the class count gives every class, probabilities summing to 1
    (row,) = predict_images(run, str(photos / "a.jpg"), top_k=10)
    assert sorted(row.classes) == sorted(COLOURS) and abs(sum(row.probs) - 1) < 1e-5


def test_cli_prints_a_line_per_image_and_writes_csv(run, photos, tmp_path, capsys):
    out_csv = str(tmp_path / "pred.csv")
    code = main(["predict", run, str(photos), "--top-k", "2", "--output", out_csv])
    assert code == 1  # one image could not be read
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and lines[-1] == f"wrote {out_csv}"
    assert any(ln.startswith(str(photos / "more" / "broken.png") + ": error: cannot read image") for ln in lines)
    classes, probs = expected(run, str(photos / "a.jpg"), 2)
    assert f"{photos / 'a.jpg'}: {classes[0]} {probs[0]:.4f}, {classes[1]} {probs[1]:.4f}" in lines
    with open(out_csv, newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["path"] for r in table] == find_images(photos)
    assert list(table[0]) == ["path", "class_1", "prob_1", "class_2", "prob_2", "error"]
    assert table[0]["class_1"] == classes[0] and abs(float(table[0]["prob_1"]) - probs[0]) < 1e-5


def test_all_good_images_exit_zero_and_errors_are_one_line(run, photos, capsys):
    assert main(["predict", run, str(photos / "a.jpg")]) == 0
    assert main(["predict", run, str(photos / "nowhere")]) == 2
    assert capsys.readouterr().err.strip().startswith("error: ")
    assert Prediction("x.png", error="bad").format() == "x.png: error: bad"


def test_predictions_never_overwrite_a_file_they_did_not_write(tmp_path):
    """predict --output RUN/config.json used to replace the run's config; a link used to be written through."""
    from simam_paddle.experiments.prediction import Prediction, write_predictions_csv

    rows = [Prediction("a.png", ["cat", "dog"], [0.75, 0.25]), Prediction("b.png", error="not an image")]
    config = tmp_path / "config.json"
    config.write_text('{"model": "towernet"}')
    with pytest.raises(FileExistsError, match="not a predictions CSV.*nothing was written"):
        write_predictions_csv(rows, config)
    assert config.read_text() == '{"model": "towernet"}'
    target = tmp_path / "elsewhere.csv"
    target.write_text("keep me\n")
    (tmp_path / "link.csv").symlink_to(target)
    with pytest.raises(FileExistsError):
        write_predictions_csv(rows, tmp_path / "link.csv")
    assert target.read_text() == "keep me\n"
    out = tmp_path / "pred.csv"
    write_predictions_csv(rows, out)
    write_predictions_csv(rows[:1], out)  # its own earlier output is replaced
    assert out.read_text().splitlines() == ["path,class_1,prob_1,class_2,prob_2,error",
                                            "a.png,cat,0.750000,dog,0.250000,"]


def test_a_fifo_named_like_an_image_is_an_error_row_not_a_hang(run, photos):
    import os
    import threading

    os.mkfifo(photos / "pipe.jpg")
    result = {}
    worker = threading.Thread(target=lambda: result.update(rows=predict_images(run, photos, top_k=1)), daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "predict blocked on the FIFO"
    rows = {os.path.basename(r.path): r for r in result["rows"]}
    assert "not a regular file" in rows["pipe.jpg"].error
    assert rows["a.jpg"].error is None and rows["a.jpg"].classes


def test_a_bomb_a_truncated_png_and_a_turned_photo(run, photos, capsys):
    buffer = io.BytesIO()
    Image.fromarray(np.random.RandomState(1).randint(0, 256, (64, 64, 3)).astype("uint8")).save(buffer, "PNG")
    (photos / "more" / "cut.png").write_bytes(buffer.getvalue()[:2000])
    (photos / "more" / "bomb.png").write_bytes(bomb_png())
    upright = Image.new("RGB", (48, 16), (0, 0, 250))
    upright.paste((250, 0, 0), (0, 0, 16, 16))  # red at the left of an upright photo
    upright.save(photos / "upright.png")
    (photos / "phone.jpg").write_bytes(exif_turned_jpeg(upright))
    code = main(["predict", run, str(photos), "--top-k", "3"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err, captured.err
    lines = {line.split(": ", 1)[0]: line for line in captured.out.splitlines()}
    assert lines[str(photos / "more" / "bomb.png")].endswith(
        "error: cannot read image: too large to decode safely (400000000 pixels, more than twice Pillow's limit "
        f"PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS}); shrink it, or raise that limit if you trust the file")
    assert "error: cannot read image: does not decode (OSError: image file is truncated" in lines[
        str(photos / "more" / "cut.png")]
    for name in ("a.jpg", "more/b.png", "more/c.png"):  # the others are still predicted
        assert "error" not in lines[str(photos / name)]
    # the network sees the phone's photo as its upright copy (up to JPEG noise), not lying on its side
    transform = run_transforms(load_run(run)[1], train=False)
    phone, straight = (_load(str(photos / name), transform) for name in ("phone.jpg", "upright.png"))
    with Image.open(io.BytesIO(exif_turned_jpeg(upright))) as raw:  # Pillow alone ignores the tag
        lying = np.asarray(transform(raw.convert("RGB")), "float32")
    assert np.abs(phone - straight).mean() < 0.05 < np.abs(lying - straight).mean()


def test_find_images_enters_linked_folders_as_the_dataset_does_and_once_through_a_loop(tmp_path):
    # A split whose eval/cat links to another disk: ImageFolderDataset reads cat, predict skipped it silently.
    from PIL import Image

    elsewhere = tmp_path / "elsewhere" / "cat"
    elsewhere.mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(elsewhere / "1.png")
    (tmp_path / "eval" / "dog").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "eval" / "dog" / "2.png")
    (tmp_path / "eval" / "cat").symlink_to(elsewhere)
    (elsewhere / "again").symlink_to(tmp_path / "eval")  # a loop: followed once, not forever
    names = [os.path.relpath(p, tmp_path / "eval") for p in find_images(tmp_path / "eval")]
    assert names == ["cat/1.png", "dog/2.png"]
