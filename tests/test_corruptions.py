"""The corruptions against closed-form expectations and independent references (matplotlib's HSV, pixel counts)."""
import numpy as np
import pytest
from matplotlib.colors import rgb_to_hsv

from simam_paddle.data.corruptions import SEVERITIES, available_corruptions, corrupt, corruption_parameters


def _photo(size=64, seed=0):
    rng = np.random.RandomState(seed)
    base = rng.randint(30, 220, size=(8, 8, 3)).astype(np.uint8)
    return np.kron(base, np.ones((size // 8, size // 8, 1), np.uint8))


@pytest.mark.parametrize("name", available_corruptions())
def test_every_corruption_is_deterministic_leaves_its_input_and_keeps_the_shape(name):
    image = _photo()
    before = image.copy()
    for severity in SEVERITIES:
        out = corrupt(image, name, severity, seed=3, index=7)
        assert out.shape == image.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, corrupt(image, name, severity, seed=3, index=7))
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize("name", ["gaussian_noise", "gaussian_blur", "jpeg", "contrast", "occlusion"])
def test_damage_grows_with_severity(name):
    image = _photo()
    errors = [np.mean((corrupt(image, name, s).astype(float) - image) ** 2) for s in SEVERITIES]
    assert errors[0] > 0 and all(a < b for a, b in zip(errors, errors[1:])), errors


def test_gaussian_noise_has_imagenet_c_standard_deviations_and_differs_per_image_and_seed():
    image = np.full((128, 128, 3), 128, np.uint8)
    for severity, std in zip(SEVERITIES, corruption_parameters()["gaussian_noise"]):
        noise = corrupt(image, "gaussian_noise", severity).astype(float) - 128
        clipped = np.clip(np.random.RandomState(0).normal(0, std * 255, 200000), -128, 127)
        assert abs(noise.mean()) < 1.0
        assert noise.std() == pytest.approx(clipped.std(), rel=0.03)
    first = corrupt(image, "gaussian_noise", 1, seed=0, index=0)
    assert not np.array_equal(first, corrupt(image, "gaussian_noise", 1, seed=0, index=1))
    assert not np.array_equal(first, corrupt(image, "gaussian_noise", 1, seed=1, index=0))


def test_contrast_is_the_closed_form_about_each_channels_mean():
    image = _photo()
    for severity, factor in zip(SEVERITIES, corruption_parameters()["contrast"]):
        x = image / 255.0
        mean = x.mean(axis=(0, 1))
        expected = np.clip(np.rint(((x - mean) * factor + mean) * 255), 0, 255)
        np.testing.assert_array_equal(corrupt(image, "contrast", severity), expected)


def test_brightness_raises_hsv_value_and_keeps_hue_and_saturation():
    image = _photo()
    image[0, 0] = 0  # black becomes grey
    hsv = rgb_to_hsv(image / 255.0)
    for severity, amount in zip(SEVERITIES, corruption_parameters()["brightness"]):
        out = rgb_to_hsv(corrupt(image, "brightness", severity) / 255.0)
        np.testing.assert_allclose(out[..., 2], np.minimum(hsv[..., 2] + amount, 1), atol=1 / 255)
        coloured = hsv[..., 1] > 0.2
        np.testing.assert_allclose(out[..., 1][coloured], hsv[..., 1][coloured], atol=0.02)
        hue = np.abs(out[..., 0] - hsv[..., 0])[coloured]
        assert np.minimum(hue, 1 - hue).max() < 0.02
        assert out[0, 0, 1] == 0 and out[0, 0, 2] == pytest.approx(amount, abs=1 / 255)


def test_gaussian_blur_spreads_an_edge_by_the_scaled_standard_deviation():
    # The blurred step edge is 255 * Phi(x / sigma): its derivative is the Gaussian, whose spread is sigma.
    size = 224
    image = np.zeros((size, size, 3), np.uint8)
    image[:, size // 2:] = 255
    for severity, sigma in zip(SEVERITIES, corruption_parameters()["gaussian_blur"]):
        profile = corrupt(image, "gaussian_blur", severity)[size // 2, :, 0].astype(float)
        density = np.diff(profile)
        x = np.arange(size - 1) + 0.5 - size // 2
        mean = (density * x).sum() / density.sum()
        spread = np.sqrt((density * (x - mean) ** 2).sum() / density.sum())
        assert spread == pytest.approx(sigma, rel=0.15)


def test_occlusion_blacks_out_the_stated_area_and_rotation_keeps_the_centre():
    image = np.full((100, 100, 3), 200, np.uint8)
    for severity, area in zip(SEVERITIES, corruption_parameters()["occlusion"]):
        black = (corrupt(image, "occlusion", severity, index=severity) == 0).all(axis=2).mean()
        assert black == pytest.approx(area, abs=0.02)
    for severity in SEVERITIES:
        out = corrupt(image, "rotation", severity)
        assert (out[45:55, 45:55] == 200).all() and (out[0, 0] == 0).all()


def test_bad_arguments_name_what_exists():
    image = _photo()
    with pytest.raises(ValueError, match=r"unknown corruption 'fog'.*'gaussian_noise'"):
        corrupt(image, "fog", 1)
    with pytest.raises(ValueError, match=r"severity must be one of \[1, 2, 3, 4, 5\]"):
        corrupt(image, "jpeg", 6)
    with pytest.raises(ValueError, match=r"\[H, W, 3\] uint8"):
        corrupt(image.astype(np.float32), "jpeg", 1)
