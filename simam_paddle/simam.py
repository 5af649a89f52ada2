"""SimAM: a simple, parameter-free attention module.

Yang et al., "SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural
Networks", ICML 2021 (http://proceedings.mlr.press/v139/yang21o.html).

Per sample and channel, over all spatial positions:
``mu = mean(x)``, ``d = (x - mu)^2``, ``v = sum(d) / (n - 1)``,
``y = x * sigmoid(d / (4 * (v + e_lambda)) + 0.5)``.
"""
from typing import Optional

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

__all__ = ["simam", "SimAM"]


def simam(x: paddle.Tensor, e_lambda: float = 1e-4, data_format: str = "NCHW") -> paddle.Tensor:
    """Apply SimAM to an NCHW tensor (plain formula; see module docstring)."""
    n = x.shape[2] * x.shape[3] - 1
    d = (x - x.mean(axis=[2, 3], keepdim=True)).pow(2)
    v = d.sum(axis=[2, 3], keepdim=True) / n
    return x * F.sigmoid(d / (4 * (v + e_lambda)) + 0.5)


class SimAM(nn.Layer):
    """SimAM as a layer. ``channels`` is accepted and ignored so it fits any attention factory."""

    def __init__(self, channels: Optional[int] = None, e_lambda: float = 1e-4, data_format: str = "NCHW"):
        super().__init__()
        self.e_lambda = e_lambda
        self.data_format = data_format

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return simam(x, self.e_lambda, self.data_format)

    def extra_repr(self) -> str:
        return f"e_lambda={self.e_lambda}, data_format={self.data_format}"
