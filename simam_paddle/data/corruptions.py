"""Corrupted copies of images, in memory, for robustness tests in the style of ImageNet-C.

Hendrycks and Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
ICLR 2019: a network trained on clean images is evaluated on copies with one corruption at five severities.
The corruptions here are computed with numpy and Pillow on ``uint8`` RGB arrays at the network's input size,
deterministically from a seed (the same image, corruption, severity and seed give the same pixels on every
machine), so no corrupted files are written:

- ``gaussian_noise``, ``contrast`` and ``jpeg``: ImageNet-C's parameters (noise standard deviation
  0.08-0.38 of the pixel range; contrast scaled to 0.4-0.05 of itself about each channel's mean; JPEG quality
  25-7).
- ``brightness``: ImageNet-C's 0.1-0.5 added to HSV's value channel, hue and saturation kept.
- ``gaussian_blur``: ImageNet-C's standard deviations 1, 2, 3, 4, 6 pixels at 224 px, scaled to the image's size.
- ``rotation``: rotated by 10, 20, 30, 45, 60 degrees, in a random direction, corners filled black.
- ``occlusion``: a black square covering 5, 10, 20, 30, 40 % of the image, at a random place (Cutout).
"""
import io
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageFilter

__all__ = ["CORRUPTIONS", "SEVERITIES", "available_corruptions", "corrupt", "corruption_seed", "corruption_parameters"]

SEVERITIES: Tuple[int, ...] = (1, 2, 3, 4, 5)
"""The severities every corruption has, mildest first."""

# Per corruption, the parameter at severities 1..5.
_PARAMETERS: Dict[str, Tuple[float, ...]] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "gaussian_blur": (1, 2, 3, 4, 6),
    "jpeg": (25, 18, 15, 10, 7),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    "rotation": (10, 20, 30, 45, 60),
    "occlusion": (0.05, 0.1, 0.2, 0.3, 0.4),
}
_BLUR_REFERENCE_SIZE = 224  # ImageNet-C's blur sizes are for 224 px images


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values * 255), 0, 255).astype(np.uint8)


def _gaussian_noise(image: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    return _to_uint8(image / 255.0 + rng.normal(0.0, std, size=image.shape))


def _gaussian_blur(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    radius = sigma * min(image.shape[:2]) / _BLUR_REFERENCE_SIZE
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))


def _jpeg(image: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


def _brightness(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    # In HSV, RGB = V * f(H, S): raising V keeps hue and saturation by scaling the pixel; black (V = 0, S = 0)
    # becomes grey.
    pixels = image / 255.0
    value = pixels.max(axis=2, keepdims=True)
    raised = np.minimum(value + amount, 1.0)
    scaled = np.divide(pixels * raised, value, out=np.broadcast_to(raised, pixels.shape).copy(), where=value > 0)
    return _to_uint8(scaled)


def _contrast(image: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    pixels = image / 255.0
    mean = pixels.mean(axis=(0, 1), keepdims=True)
    return _to_uint8((pixels - mean) * factor + mean)


def _rotation(image: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    angle = degrees if rng.random() < 0.5 else -degrees
    return np.asarray(Image.fromarray(image).rotate(angle, resample=Image.BILINEAR, fillcolor=(0, 0, 0)))


def _occlusion(image: np.ndarray, area: float, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    side_h, side_w = max(1, round(height * area ** 0.5)), max(1, round(width * area ** 0.5))
    top, left = rng.integers(0, height - side_h + 1), rng.integers(0, width - side_w + 1)
    out = image.copy()
    out[top:top + side_h, left:left + side_w] = 0
    return out


CORRUPTIONS: Dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "gaussian_noise": _gaussian_noise,
    "gaussian_blur": _gaussian_blur,
    "jpeg": _jpeg,
    "brightness": _brightness,
    "contrast": _contrast,
    "rotation": _rotation,
    "occlusion": _occlusion,
}
"""The corruptions by name: ``function(image, parameter, rng) -> image`` on HWC uint8 RGB arrays."""


def available_corruptions() -> List[str]:
    """The corruption names, in the order tables list them.

    Examples:
        >>> available_corruptions()[:3]
        ['gaussian_noise', 'gaussian_blur', 'jpeg']
    """
    return list(CORRUPTIONS)


def corruption_seed(seed: int, corruption: str, severity: int, index: int) -> List[int]:
    """The entropy of one corrupted image: independent of the order images or corruptions are computed in."""
    return [int(seed), available_corruptions().index(corruption), int(severity), int(index)]


def corrupt(image: np.ndarray, corruption: str, severity: int, seed: int = 0, index: int = 0) -> np.ndarray:
    """A corrupted copy of an image.

    Args:
        image (numpy.ndarray): ``[H, W, 3]`` uint8 RGB pixels (left unchanged).
        corruption (str): one of :func:`available_corruptions`.
        severity (int): 1 (mildest) to 5.
        seed (int, optional): with ``index``, fixes the random parts (noise, direction, place). Default: 0.
        index (int, optional): the image's index in its data set, so every image gets its own noise. Default: 0.

    Returns:
        numpy.ndarray: ``[H, W, 3]`` uint8.

    Examples:
        >>> image = np.full((32, 32, 3), 100, np.uint8)
        >>> int(corrupt(image, "occlusion", 5).min()), int(corrupt(image, "brightness", 1).max())
        (0, 126)
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; available corruptions = {available_corruptions()}")
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {list(SEVERITIES)}, got {severity!r}")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be [H, W, 3] uint8 RGB pixels, got {image.dtype} of shape {image.shape}")
    rng = np.random.default_rng(corruption_seed(seed, corruption, severity, index))
    out = CORRUPTIONS[corruption](image, _PARAMETERS[corruption][severity - 1], rng)
    return np.ascontiguousarray(out, dtype=np.uint8)


def corruption_parameters(names: Sequence[str] = None) -> Dict[str, Tuple[float, ...]]:
    """The parameter of each corruption at severities 1..5, as a run's record stores it.

    Examples:
        >>> corruption_parameters(["jpeg"])
        {'jpeg': (25, 18, 15, 10, 7)}
    """
    return {name: _PARAMETERS[name] for name in (available_corruptions() if names is None else names)}
