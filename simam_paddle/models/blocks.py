"""Building blocks of TowerNet, as in the AI Studio notebook this project reproduces.

``Inception`` is the GoogLeNet block (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015) in the
notebook's form: plain convolutions with biases and ReLU, no normalisation.
"""
from typing import Sequence

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

__all__ = ["BasicConv2d", "Inception"]


class BasicConv2d(nn.Sequential):
    """Conv2D (with bias) -> BatchNorm2D(epsilon=1e-3) -> ReLU.

    A ``Sequential`` so its state_dict keys (``0.weight``, ``1._mean``, ...) match the notebook's.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel (int): Kernel size.
        stride (int, optional): Stride. Default: 1.
        padding (int, optional): Zero padding on each side. Default: 0.

    Examples:
        >>> import paddle
        >>> from simam_paddle.models import BasicConv2d
        >>> list(BasicConv2d(3, 16, 3, stride=2, padding=1)(paddle.randn([1, 3, 32, 32])).shape)
        [1, 16, 16, 16]
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__(
            nn.Conv2D(in_channels, out_channels, kernel, stride, padding),
            nn.BatchNorm2D(out_channels, epsilon=1e-3),
            nn.ReLU(),
        )


class Inception(nn.Layer):
    """Four parallel routes concatenated on channels: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1.

    Output channels: ``c1 + c2[1] + c3[1] + c4``; spatial size is preserved.

    Args:
        in_channels (int): Input channels.
        c1 (int): Channels of the 1x1 route.
        c2 (Sequence[int]): ``(reduce, out)`` channels of the 1x1 -> 3x3 route.
        c3 (Sequence[int]): ``(reduce, out)`` channels of the 1x1 -> 5x5 route.
        c4 (int): Channels of the pool -> 1x1 route.

    Examples:
        >>> import paddle
        >>> from simam_paddle.models import Inception
        >>> list(Inception(256, 64, (64, 128), (16, 32), 32)(paddle.randn([1, 256, 8, 8])).shape)
        [1, 256, 8, 8]
    """

    def __init__(self, in_channels: int, c1: int, c2: Sequence[int], c3: Sequence[int], c4: int):
        super().__init__()
        self.out_channels = c1 + c2[1] + c3[1] + c4
        # Attribute names follow the notebook so its checkpoints load unchanged.
        self.route1x1_1 = nn.Conv2D(in_channels, c1, kernel_size=1)
        self.route1x1_2 = nn.Conv2D(in_channels, c2[0], kernel_size=1)
        self.route3x3_2 = nn.Conv2D(c2[0], c2[1], kernel_size=3, padding=1)
        self.route1x1_3 = nn.Conv2D(in_channels, c3[0], kernel_size=1)
        self.route5x5_3 = nn.Conv2D(c3[0], c3[1], kernel_size=5, padding=2)
        self.route3x3_4 = nn.MaxPool2D(kernel_size=3, stride=1, padding=1)
        self.route1x1_4 = nn.Conv2D(in_channels, c4, kernel_size=1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        route1 = F.relu(self.route1x1_1(x))
        route2 = F.relu(self.route3x3_2(F.relu(self.route1x1_2(x))))
        route3 = F.relu(self.route5x5_3(F.relu(self.route1x1_3(x))))
        route4 = F.relu(self.route1x1_4(self.route3x3_4(x)))
        return paddle.concat([route1, route2, route3, route4], axis=1)
