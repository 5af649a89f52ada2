import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from simam_paddle.experiments.notebook import find_caltech, prepare_split, quick_profile


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
def test_prepare_split_falls_back_to_digits_and_repeats(tmp_path):
    pytest.importorskip("sklearn")
    data = prepare_split(tmp_path, progress=False)
    assert data.kind == "digits"
    assert data.split == tmp_path / "digits_split"
    assert sorted(data.report.counts) == [str(d) for d in range(10)]
    # load_digits has 1797 images; every 5th of each class is eval.
    assert data.report.num_train + data.report.num_eval == 1797
    for name, counts in data.report.counts.items():
        total = len(os.listdir(tmp_path / "digits" / name))
        assert counts["eval"] == -(-total // 5)
    _write_images(tmp_path / "Images", ["cat"], per_class=2)  # caltech=False (the demo's) ignores it
    again = prepare_split(tmp_path, progress=False, caltech=False)
    assert again.kind == "digits"
    assert again.report.written == 0 and again.report.unchanged == 1797

