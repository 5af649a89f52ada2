"""SimAM in float64 NumPy, written from the paper's formula and independent of the package.

The one reference the tests compare SimAM against (``from reference import simam_reference``;
pytest puts ``tests/`` on ``sys.path``). Yang et al., ICML 2021, eq. 5 and its code:

    d = (x - mean)^2,  v = sum(d) / (n - 1),  y = x * sigmoid(d / (4 (v + lambda)) + 1/2)

over the ``n`` spatial positions of each (sample, channel); ``v := 0`` on a single position.
"""
import numpy as np

CHANNELS_LAST = frozenset({"NLC", "NHWC", "NDHWC"})


def simam_reference(x, e_lambda: float = 1e-4, data_format: str = "NCHW", weights: bool = False) -> np.ndarray:
    """SimAM's output (or, with ``weights=True``, its sigmoid weights) for ``x`` in ``data_format``."""
    x = np.asarray(x, dtype=np.float64)
    channels_last = data_format in CHANNELS_LAST
    xc = np.moveaxis(x, -1, 1) if channels_last else x
    flat = xc.reshape(xc.shape[0], xc.shape[1], -1)
    n = flat.shape[-1]
    mu = flat.mean(-1, keepdims=True)
    d = (flat - mu) ** 2
    v = d.sum(-1, keepdims=True) / (n - 1) if n > 1 else np.zeros_like(mu)
    w = 1.0 / (1.0 + np.exp(-(d / (4 * (v + e_lambda)) + 0.5)))
    out = (w if weights else flat * w).reshape(xc.shape)
    return np.moveaxis(out, 1, -1) if channels_last else out
