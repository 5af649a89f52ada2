"""PyTorch reference for ``bench_train.py``: the official SimAM code's CIFAR ResNet-20 with its attentions.

The networks are those of github.com/ZjjConan/SimAM, written out here because torch is no dependency
of the project: ``networks/cifar/resnet.py`` (``ResNet``, ``ResNet20``), ``networks/cifar/block.py``
(``BasicBlock``: SimAM wraps ``conv2``, the other attentions wrap ``bn2``, each in an ``nn.Sequential``)
and ``networks/attentions/{se,cbam,simam}_module.py``, with the options of the official CIFAR recipe
(``main_cifar.py``'s ``--attention_param`` default 4: SE's and CBAM's reduction) and SimAM's
``e_lambda = 1e-4`` (the package's default). Layer for layer as there, in-place ReLUs included, so the
times are those of the official code. Before timing, the parameter counts are checked against the
package's ``cifar_resnet20`` (``EXPECTED_PARAMETERS``); a mismatch stops the script.

Needs only torch and numpy, in an environment of its own:

    /path/to/torchenv/bin/python benchmarks/torch_resnet20.py --attention simam --batch-size 128 --steps 8
    /path/to/torchenv/bin/python benchmarks/torch_resnet20.py --check

Prints one JSON line: ``{"attention": ..., "parameters": ..., "train_images_s": ..., "eval_images_s": ...,
"threads": ..., "torch": ...}``; with ``--check``, ``{"parameters": {attention: count}}``.
"""
import argparse
import functools
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ATTENTIONS = ("none", "se", "cbam", "simam")
REDUCTION = 4  # main_cifar.py: --attention_param default, SE's and CBAM's reduction
E_LAMBDA = 1e-4
EXPECTED_PARAMETERS = {"none": 272_474, "se": 280_538, "cbam": 281_858, "simam": 272_474}
"""Trainable parameters of the package's ``build_model("cifar_resnet20", 10, attention, {"reduction": 4})``."""


# networks/attentions/se_module.py
class SEModule(nn.Module):
    name = "se"

    def __init__(self, channel, reduction=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, int(channel // reduction), bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(int(channel // reduction), channel, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y


# networks/attentions/cbam_module.py (its default pool types, avg and max; the spatial gate on)
class BasicConv(nn.Module):
    def __init__(self, in_planes, out_planes, kernel_size, stride=1, padding=0, relu=True, bn=True, bias=False):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=kernel_size, stride=stride, padding=padding,
                              bias=bias)
        self.bn = nn.BatchNorm2d(out_planes, eps=1e-5, momentum=0.01, affine=True) if bn else None
        self.relu = nn.ReLU() if relu else None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.relu is not None:
            x = self.relu(x)
        return x


class Flatten(nn.Module):
    def forward(self, x):
        return x.view(x.size(0), -1)


class ChannelGate(nn.Module):
    def __init__(self, gate_channels, reduction_ratio=16):
        super().__init__()
        self.mlp = nn.Sequential(
            Flatten(),
            nn.Linear(gate_channels, int(gate_channels // reduction_ratio)),
            nn.ReLU(),
            nn.Linear(int(gate_channels // reduction_ratio), gate_channels),
        )

    def forward(self, x):
        window = (x.size(2), x.size(3))
        channel_att_sum = self.mlp(F.avg_pool2d(x, window, stride=window))
        channel_att_sum = channel_att_sum + self.mlp(F.max_pool2d(x, window, stride=window))
        scale = torch.sigmoid(channel_att_sum).unsqueeze(2).unsqueeze(3).expand_as(x)
        return x * scale


class ChannelPool(nn.Module):
    def forward(self, x):
        return torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), dim=1)


class SpatialGate(nn.Module):
    def __init__(self):
        super().__init__()
        kernel_size = 7
        self.compress = ChannelPool()
        self.spatial = BasicConv(2, 1, kernel_size, stride=1, padding=(kernel_size - 1) // 2, relu=False)

    def forward(self, x):
        return x * torch.sigmoid(self.spatial(self.compress(x)))


class CBAMModule(nn.Module):
    name = "cbam"

    def __init__(self, gate_channels, reduction=16):
        super().__init__()
        self.ChannelGate = ChannelGate(gate_channels, reduction)
        self.SpatialGate = SpatialGate()

    def forward(self, x):
        return self.SpatialGate(self.ChannelGate(x))


# networks/attentions/simam_module.py
class SimAMModule(nn.Module):
    name = "simam"

    def __init__(self, channels=None, e_lambda=1e-4):
        super().__init__()
        self.activaton = nn.Sigmoid()
        self.e_lambda = e_lambda

    def forward(self, x):
        b, c, h, w = x.size()
        n = w * h - 1
        x_minus_mu_square = (x - x.mean(dim=[2, 3], keepdim=True)).pow(2)
        y = x_minus_mu_square / (4 * (x_minus_mu_square.sum(dim=[2, 3], keepdim=True) / n + self.e_lambda)) + 0.5
        return x * self.activaton(y)


# networks/cifar/block.py
def conv3x3(in_channels, ou_channels, stride=1):
    return nn.Conv2d(in_channels, ou_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels, ou_channels, stride=1):
    return nn.Conv2d(in_channels, ou_channels, kernel_size=1, stride=stride, padding=0, bias=False)


class BasicBlock(nn.Module):
    EXPANSION = 1

    def __init__(self, in_channels, ou_channels, stride=1, attention_module=None):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv3x3(in_channels, ou_channels, stride=stride)
        self.bn1 = nn.BatchNorm2d(ou_channels)
        self.conv2 = conv3x3(ou_channels, ou_channels * self.EXPANSION, stride=1)
        self.bn2 = nn.BatchNorm2d(ou_channels * self.EXPANSION)
        if attention_module is not None:
            if attention_module.func.name == "simam":
                self.conv2 = nn.Sequential(self.conv2, attention_module(ou_channels * self.EXPANSION))
            else:
                self.bn2 = nn.Sequential(self.bn2, attention_module(ou_channels * self.EXPANSION))
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != ou_channels * self.EXPANSION:
            self.shortcut = nn.Sequential(conv1x1(in_channels, ou_channels * self.EXPANSION, stride=stride),
                                          nn.BatchNorm2d(ou_channels * self.EXPANSION))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return self.relu(out)


# networks/cifar/resnet.py
class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_class=10):
        super().__init__()
        self.in_channels = num_filters = 16
        self.conv1 = nn.Conv2d(3, self.in_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.layer1 = self._make_layer(block, self.in_channels, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, num_filters * 2, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, num_filters * 4, num_blocks[2], stride=2)
        self.linear = nn.Linear(num_filters * 4 * BasicBlock.EXPANSION, num_class)

    def _make_layer(self, block, ou_channels, num_blocks, stride):
        layers = []
        for stride in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_channels, ou_channels, stride))
            self.in_channels = ou_channels * BasicBlock.EXPANSION
        return nn.Sequential(*layers)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = self.avgpool(out)
        return self.linear(out.view(out.size(0), -1))


def resnet20(attention: str = "none", num_classes: int = 10) -> nn.Module:
    """``ResNet20(num_class, BasicBlock, attention_module)`` as ``main_cifar.py`` builds it."""
    modules = {"none": None,
               "se": functools.partial(SEModule, reduction=REDUCTION),
               "cbam": functools.partial(CBAMModule, reduction=REDUCTION),
               "simam": functools.partial(SimAMModule, e_lambda=E_LAMBDA)}
    if attention not in modules:
        raise ValueError(f"attention {attention!r} is not one of {list(modules)}")
    module = modules[attention]
    return ResNet(lambda in_planes, planes, stride: BasicBlock(in_planes, planes, stride, attention_module=module),
                  [3, 3, 3], num_class=num_classes)


def count_parameters(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


def parameter_counts() -> dict:
    """Attention -> trainable parameters of its ResNet-20."""
    return {attention: count_parameters(resnet20(attention)) for attention in ATTENTIONS}


def check_parameters() -> dict:
    """Every attention's parameter count, after checking it against the package's (``EXPECTED_PARAMETERS``)."""
    counts = parameter_counts()
    if counts != EXPECTED_PARAMETERS:
        raise RuntimeError(f"the PyTorch ResNet-20s have {counts} parameters, the package's cifar_resnet20 "
                           f"{EXPECTED_PARAMETERS}: they are not the same networks")
    return counts


def measure(attention: str, batch_size: int, image_size: int, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    net = resnet20(attention)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch_size, 3, image_size, image_size)
    y = torch.randint(0, 10, (batch_size,))

    def train_step():
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def eval_step():
        with torch.no_grad():
            return net(x).numpy()

    result = {"attention": attention, "parameters": count_parameters(net), "torch": torch.__version__,
              "threads": torch.get_num_threads()}
    for key, mode, step in (("train_images_s", True, train_step), ("eval_images_s", False, eval_step)):
        net.train(mode)
        for _ in range(warmup):
            step()
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        result[key] = batch_size / float(np.median(times))
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attention", choices=ATTENTIONS, default="none")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--check", action="store_true", help="only check and print the parameter counts")
    args = parser.parse_args(argv)
    try:
        counts = check_parameters()
    except RuntimeError as err:
        sys.exit(f"torch_resnet20.py: {err}")
    if args.check:
        print(json.dumps({"parameters": counts}))
        return
    torch.set_num_threads(args.threads)
    print(json.dumps(measure(args.attention, args.batch_size, args.image_size, args.steps, args.warmup)))


if __name__ == "__main__":
    main()
