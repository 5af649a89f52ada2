"""The CIFAR ResNets of the SimAM paper's CIFAR experiments (ResNet-20/32/56/110).

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, section 4.2, as the official SimAM
code builds them (github.com/ZjjConan/SimAM, ``networks/cifar/``): a 3x3 stem of 16 filters, three stages
of ``n`` basic blocks with 16, 32 and 64 filters (stride 2 at the start of stages 2 and 3), global average
pooling and a linear classifier; ``6n + 2`` layers. Unlike the paper's option A, a block whose shape changes
gets a 1x1-conv + BatchNorm projection shortcut, as in the official code.

Layer names follow the official code (``conv1``, ``bn1``, ``layer1.0.conv2``, ``layer2.0.shortcut.0``,
``linear``), so official checkpoints map onto them key by key. Attention is not built in here: the model
zoo inserts it where the official code puts it (SimAM after ``conv2``, other attention after ``bn2``).
"""
from typing import List

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

__all__ = ["CifarBasicBlock", "CifarResNet", "CIFAR_DEPTHS"]

CIFAR_DEPTHS = {20: 3, 32: 5, 56: 9, 110: 18}
"""Depth -> basic blocks per stage (``depth = 6 * blocks + 2``)."""


class CifarBasicBlock(nn.Layer):
    """Two 3x3 convs with BatchNorm and a residual connection (projection shortcut when the shape changes).

    Args:
        in_channels (int): Channels of the input.
        out_channels (int): Channels of both convs and of the output.
        stride (int, optional): Stride of the first conv and of the shortcut. Default: 1.

    Examples:
        >>> import paddle
        >>> block = CifarBasicBlock(16, 32, stride=2)
        >>> list(block(paddle.randn([2, 16, 8, 8])).shape)
        [2, 32, 4, 4]
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2D(in_channels, out_channels, 3, stride=stride, padding=1, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(out_channels)
        self.conv2 = nn.Conv2D(out_channels, out_channels, 3, stride=1, padding=1, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2D(in_channels, out_channels, 1, stride=stride, bias_attr=False),
                nn.BatchNorm2D(out_channels),
            )
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Layer):
    """ResNet for small images (CIFAR's 32x32): ``6 * blocks + 2`` layers, any input size of at least 1 px.

    Args:
        depth (int, optional): 20, 32, 56 or 110. Default: 20.
        num_classes (int, optional): Number of output logits. Default: 10.
        in_channels (int, optional): Channels of the input image. Default: 3.
        base_width (int, optional): Filters of the first stage; the stages have 1x, 2x and 4x. Default: 16.

    Examples:
        >>> import paddle
        >>> net = CifarResNet(20, num_classes=10)
        >>> list(net(paddle.randn([2, 3, 32, 32])).shape)
        [2, 10]
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, in_channels: int = 3, base_width: int = 16):
        super().__init__()
        if depth not in CIFAR_DEPTHS:
            raise ValueError(f"CifarResNet depth {depth!r} is not one of {sorted(CIFAR_DEPTHS)} (6n + 2 layers).")
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels), ("base_width", base_width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"CifarResNet needs {name} as a positive int, got {value!r}.")
        blocks = CIFAR_DEPTHS[depth]
        self.depth = depth
        self.conv1 = nn.Conv2D(in_channels, base_width, 3, stride=1, padding=1, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(base_width)
        self._channels = base_width
        self.layer1 = self._make_stage(base_width, blocks, stride=1)
        self.layer2 = self._make_stage(base_width * 2, blocks, stride=2)
        self.layer3 = self._make_stage(base_width * 4, blocks, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2D(1)
        self.linear = nn.Linear(base_width * 4, num_classes)

    def _make_stage(self, channels: int, blocks: int, stride: int) -> nn.Sequential:
        layers: List[nn.Layer] = []
        for block_stride in [stride] + [1] * (blocks - 1):
            layers.append(CifarBasicBlock(self._channels, channels, block_stride))
            self._channels = channels
        return nn.Sequential(*layers)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(paddle.flatten(self.avgpool(out), 1))

    def extra_repr(self) -> str:
        return f"depth={self.depth}"

