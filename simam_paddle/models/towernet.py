"""TowerNet: the AI Studio notebook's CNN of conv stages and Inception blocks with attention.

Architecture as in the notebook (five stages ``b1``..``b5`` then a linear head ``b6``); the notebook puts a
SimAM layer after the pooling of ``b3`` and ``b4`` and after the first two pooled Inception blocks of
``b5``. Here ``attention`` chooses what goes in those four places, so ``"none"`` and ``"se"`` give true
ablations of the same network; ``None`` is the network as published, with SimAM. Sublayer names match
the notebook's, so its checkpoints load unchanged.

One change: the notebook's head is ``AvgPool2D(2)``, which equals a global average pool only at
256x256 input (the last map is 2x2). The head here pools globally, so smaller inputs work too.
"""
from typing import Optional

import paddle
import paddle.nn as nn

from ..layers.attention import create_attention
from .blocks import BasicConv2d, Inception

__all__ = ["TowerNet"]

_WIDTH = 256  # channels of every map that gets attention, and of the head


def _downsampled(size: int) -> int:
    """Spatial size after the stem conv (3x3, stride 2, padding 1) and the six 2x2 max pools (floor)."""
    size = (size - 1) // 2 + 1
    for _ in range(6):
        size //= 2
    return size


def _min_input_size() -> int:
    """Smallest input size for which the last 2x2 pool still gets a 2x2 map."""
    size = 1
    while _downsampled(size) < 1:
        size += 1
    return size


class TowerNet(nn.Layer):
    """The notebook's TowerNet with a chosen attention layer.

    Stages: stem conv (stride 2) + pool, conv + pool, conv + pool + attention, conv + pool + attention,
    then Inception + pool + attention, Inception + pool + attention, Inception; global average pool and
    a linear classifier. Total stride 128: input height and width must be at least
    ``TowerNet.min_input_size`` (127) so that every 2x2 max pool gets at least a 2x2 map; smaller
    input raises ``ValueError`` before any layer runs (Paddle would otherwise pool 1x1 maps silently).

    Args:
        in_channels (int, optional): Channels of the input image. Default: 3.
        num_classes (int, optional): Number of output logits. Default: 16.
        attention (str|None, optional): A name from :func:`simam_paddle.available_attentions` for the
            four attention slots, ``"none"`` for none; ``None`` for the network as published
            (``TowerNet.published_attention``, SimAM). Default: None.
        **attention_kwargs: Options for that attention layer, e.g. ``e_lambda=1e-4`` for SimAM or
            ``reduction=16`` for SE.

    Examples:
        >>> import paddle
        >>> from simam_paddle import TowerNet
        >>> list(TowerNet(num_classes=16)(paddle.randn([2, 3, 128, 128])).shape)
        [2, 16]
    """

    min_input_size: int = _min_input_size()
    published_attention: str = "simam"  # what the notebook puts in the four slots

    def __init__(self, in_channels: int = 3, num_classes: int = 16, attention: Optional[str] = None,
                 **attention_kwargs):
        super().__init__()
        if attention is None:
            attention = self.published_attention

        def attend() -> nn.Layer:
            return create_attention(attention, _WIDTH, **attention_kwargs)

        self.b1 = nn.Sequential(BasicConv2d(in_channels, 64, kernel=3, stride=2, padding=1), nn.MaxPool2D(2, 2))
        self.b2 = nn.Sequential(BasicConv2d(64, 128, kernel=3, padding=1), nn.MaxPool2D(2, 2))
        self.b3 = nn.Sequential(BasicConv2d(128, _WIDTH, kernel=3, padding=1), nn.MaxPool2D(2, 2), attend())
        self.b4 = nn.Sequential(BasicConv2d(_WIDTH, _WIDTH, kernel=3, padding=1), nn.MaxPool2D(2, 2), attend())
        self.b5 = nn.Sequential(
            Inception(_WIDTH, 64, (64, 128), (16, 32), 32),
            nn.MaxPool2D(2, 2),
            attend(),
            Inception(_WIDTH, 64, (64, 128), (16, 32), 32),
            nn.MaxPool2D(2, 2),
            attend(),
            Inception(_WIDTH, 64, (64, 128), (16, 32), 32),
        )
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten()
        self.b6 = nn.Linear(_WIDTH, num_classes)

    def _check_input(self, x: paddle.Tensor) -> None:
        # Static shape only: exported programs with unknown (-1) sizes skip the check instead of breaking.
        shape = list(x.shape)
        if len(shape) != 4:
            raise ValueError(f"TowerNet expects NCHW input of 4 dims, got shape {shape}.")
        height, width = shape[2], shape[3]
        too_small = [s for s in (height, width) if isinstance(s, int) and 0 <= s < self.min_input_size]
        if too_small:
            raise ValueError(
                f"TowerNet needs input height and width of at least {self.min_input_size} "
                f"(the stride-2 stem and six 2x2 max pools downsample by 128; smaller input leaves a pool "
                f"with a 1-pixel map), got {height}x{width}."
            )

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        self._check_input(x)
        x = self.b5(self.b4(self.b3(self.b2(self.b1(x)))))
        return self.b6(self.flatten(self.pool(x)))
