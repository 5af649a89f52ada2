"""Issue 27's training levers, each measured against today's path in interleaved rounds in one process.

Every lever is a pair of set-ups of the same network (same seed, weights, batch): "baseline" and "lever".
Both are built, warmed up (the first steps compile), then timed in alternation: a round is ``--steps``
steps of the baseline (median time), then ``--steps`` of the lever; ``--rounds`` rounds. A lever's ratio is
the median over rounds of (lever images/s / baseline images/s in that round), so a machine whose load
changes from minute to minute (this one is shared) moves both sides of a ratio alike. Absolute images/s
are medians over rounds and only comparable within one row.

Levers (``--levers``; the default is all of the training ones):

* ``attention``: not a lever, the issue's goal ratio: the network with the attention (baseline: without),
  both on today's path (:func:`~simam_paddle.engine.acceleration.onednn_convolutions`).
* ``block``: each residual block (``CifarBasicBlock``) compiled whole with ``paddle.jit.to_static`` and
  ``FLAGS_use_mkldnn`` (its convolutions, BatchNorms, ReLUs, the residual add and SimAM's plain formula
  on oneDNN), the stem convolution as today. TowerNet: each ``BasicConv2d`` (conv, BatchNorm, ReLU).
* ``unit``: conv + BatchNorm + ReLU (``conv1``, ``bn1``, ReLU) and conv + BatchNorm (``conv2`` with SimAM's
  hook, ``bn2``; the projection shortcut) compiled as units, the residual add and its ReLU in dygraph.
* ``bn``: every ``BatchNorm2D`` compiled alone on oneDNN, convolutions as today.
* ``multi_tensor``: ``paddle.optimizer.Momentum(use_multi_tensor=True)`` instead of ``make_optimizer``'s.

BatchNorm folded into the convolution before it, for evaluation, was measured as ``--levers eval_fold`` with
``onednn_convolutions(..., fold_batch_norm=True)`` at commit 0c24e80 (no faster, docs/PERFORMANCE.md) and then
taken out of the package: ``git show 0c24e80:benchmarks/levers.py`` runs it on that commit.

The compiled-block set-ups here are measurement only: with oneDNN, Paddle 3.3.1's static BatchNorm does not
update the layer's running mean and variance in training mode (``check_block`` prints it), so they are not
a training path.

    python benchmarks/levers.py --models cifar_resnet20@32x128 cifar_resnet20:simam@32x128 --rounds 5
    python benchmarks/levers.py --levers attention --models towernet:simam@128x32
    python benchmarks/levers.py --levers check_block
"""
import argparse
import contextlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

# The package before Paddle: its first import of Paddle hides the ccache warning and glog's chatter.
from bench_train import attention_options, median_images_s, parse_spec  # noqa: E402
from simam_paddle._quiet import compile_log_filters  # noqa: E402
from simam_paddle.engine.acceleration import onednn_convolutions  # noqa: E402
from simam_paddle.engine.device import seed_everything, select_device  # noqa: E402
from simam_paddle.engine.training import make_optimizer  # noqa: E402
from simam_paddle.models.blocks import BasicConv2d  # noqa: E402
from simam_paddle.models.cifar_resnet import CifarBasicBlock  # noqa: E402
from simam_paddle.models.zoo import build_model  # noqa: E402

import numpy as np  # noqa: E402,I100
import paddle  # noqa: E402,I100
import paddle.nn.functional as F  # noqa: E402,I100

TRAINING_LEVERS = ("attention", "block", "unit", "bn", "multi_tensor")
LEVERS = TRAINING_LEVERS


def _spec(channels: int):
    return [paddle.static.InputSpec(shape=[None, channels, None, None], dtype="float32")]


def _compiled(function, channels: int):
    """``function`` then a copy, compiled on oneDNN (a program ending in conv2d crashes Paddle 3.3.1)."""

    def run(x):
        return paddle.assign(function(x))

    return paddle.jit.to_static(run, input_spec=_spec(channels), full_graph=True)


def _in_channels(layer) -> int:
    for sub in layer.sublayers(include_self=True):
        if isinstance(sub, (paddle.nn.Conv2D, paddle.nn.BatchNorm2D)):
            return sub._in_channels if isinstance(sub, paddle.nn.Conv2D) else sub.weight.shape[0]
    raise ValueError(f"{type(layer).__name__} has no convolution or BatchNorm")


def compile_blocks(network) -> list:
    """Each residual block / BasicConv2d compiled whole; returns the convolutions left to the per-conv path."""
    inside = set()
    for layer in network.sublayers():
        if isinstance(layer, (CifarBasicBlock, BasicConv2d)):
            layer.forward = _compiled(layer.forward, _in_channels(layer))
            inside.update(id(m) for m in layer.sublayers())
    return [m for m in network.sublayers() if isinstance(m, paddle.nn.Conv2D) and id(m) not in inside]


def _conv_bn_relu(conv, bn):
    def unit(x):
        return F.relu(bn(conv(x)))

    return unit


def _conv_bn(conv, bn):
    def unit(x):
        return bn(conv(x))

    return unit


def compile_units(network) -> list:
    """conv+BN+ReLU and conv+BN units of each residual block compiled; add and ReLU in dygraph."""
    inside = set()
    for layer in network.sublayers():
        if isinstance(layer, CifarBasicBlock):
            block = layer
            first = _compiled(_conv_bn_relu(block.conv1, block.bn1), block.conv1._in_channels)
            second = _compiled(_conv_bn(block.conv2, block.bn2), block.conv2._in_channels)
            shortcut = (_compiled(block.shortcut.forward, block.conv1._in_channels) if len(block.shortcut)
                        else None)

            def forward(x, first=first, second=second, shortcut=shortcut):
                return F.relu(second(first(x)) + (shortcut(x) if shortcut is not None else x))

            block.forward = forward
            inside.update(id(m) for m in block.sublayers())
        elif isinstance(layer, BasicConv2d):
            layer.forward = _compiled(layer.forward, _in_channels(layer))
            inside.update(id(m) for m in layer.sublayers())
    return [m for m in network.sublayers() if isinstance(m, paddle.nn.Conv2D) and id(m) not in inside]


def compile_batchnorms(network) -> None:
    for layer in network.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            layer.forward = _compiled(layer.forward, layer.weight.shape[0])


class _Convs(paddle.nn.Layer):
    """A holder so that ``onednn_convolutions`` switches just these convolutions."""

    def __init__(self, convs):
        super().__init__()
        self.convs = paddle.nn.LayerList(convs)


def build_step(spec: dict, lever: str, side: str, stack: contextlib.ExitStack):
    """One training step of ``spec``'s network, set up as ``side`` ("baseline"/"lever") of ``lever``."""
    attention = spec["attention"]
    if lever == "attention" and side == "baseline":
        attention = "none"
    seed_everything(0)
    options = attention_options(spec) if attention == spec["attention"] else None  # SE's reduction: not for none
    network = build_model(spec["name"], 10, attention=attention, attention_kwargs=options)
    network.train()
    batch, size = spec["batch_size"], spec["image_size"]
    x = paddle.randn([batch, 3, size, size])
    y = paddle.to_tensor(np.random.RandomState(0).randint(0, 10, [batch, 1]).astype("int64"))
    if side == "lever" and lever in ("block", "unit", "bn"):
        previous = paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]
        stack.callback(paddle.set_flags, {"FLAGS_use_mkldnn": previous})
        paddle.set_flags({"FLAGS_use_mkldnn": True})
        if lever == "bn":
            compile_batchnorms(network)
            stack.enter_context(onednn_convolutions(network))
        else:
            rest = (compile_blocks if lever == "block" else compile_units)(network)
            stack.enter_context(onednn_convolutions(_Convs(rest)))
    else:  # today's path
        stack.enter_context(onednn_convolutions(network))
    if side == "lever" and lever == "multi_tensor":
        optimizer = paddle.optimizer.Momentum(learning_rate=0.01, momentum=0.9, parameters=network.parameters(),
                                              weight_decay=paddle.regularizer.L2Decay(1e-4), use_multi_tensor=True)
    else:
        optimizer = make_optimizer(network.parameters(), 0.01, epochs=1, steps_per_epoch=1000)

    def train_step():
        loss = F.cross_entropy(network(x), y)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        return float(loss)

    return train_step


def interleaved(steps: dict, batch: int, rounds: int, per_round: int, warmup: int) -> dict:
    for step in steps.values():
        for _ in range(warmup):
            step()
    images = {side: [] for side in steps}
    for _ in range(rounds):
        for side, step in steps.items():
            images[side].append(median_images_s(step, batch, per_round, warmup=0))
    ratios = [b / a for a, b in zip(images["baseline"], images["lever"])]
    return {"baseline": float(np.median(images["baseline"])), "lever": float(np.median(images["lever"])),
            "ratio": float(np.median(ratios)), "low": min(ratios), "high": max(ratios)}


def check_block() -> None:
    """Whether a compiled block's BatchNorm updates its running statistics, with oneDNN and without."""
    for onednn in (False, True):
        seed_everything(0)
        block = CifarBasicBlock(16, 16)
        block.train()
        previous = paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]
        paddle.set_flags({"FLAGS_use_mkldnn": onednn})
        try:
            with compile_log_filters():
                compiled = _compiled(block.forward, 16)
                compiled(paddle.randn([8, 16, 8, 8]) + 3.0)
        finally:
            paddle.set_flags({"FLAGS_use_mkldnn": previous})
        mean = float(block.bn1._mean.abs().max())
        print(f"compiled block, FLAGS_use_mkldnn={onednn}: bn1 running mean after one step, largest |value|: "
              f"{mean:.4f} ({'updated' if mean > 0 else 'NOT updated'})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cifar_resnet20@32x128", "cifar_resnet20:simam@32x128"],
                        help="model[:attention]@SIZExBATCH specs (bench_train.py)")
    parser.add_argument("--levers", nargs="+", default=list(TRAINING_LEVERS), choices=LEVERS + ("check_block",))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="steps per side per round (median time)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    select_device("cpu", num_threads=args.threads)
    if "check_block" in args.levers:
        check_block()
        return
    load = os.getloadavg()[0]
    print(f"paddle {paddle.__version__}, {os.cpu_count()} cores, load average {load:.1f} at the start; "
          f"{args.rounds} interleaved rounds of {args.steps} steps per side after {args.warmup} warm-up steps\n")
    print("| lever | network | image px | batch | baseline images/s | with lever images/s | ratio (median) "
          "| ratio range | rounds |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for lever in args.levers:
        for text in args.models:
            spec = parse_spec(text, args.steps)
            if lever in ("block", "unit") and spec["name"] not in ("cifar_resnet20", "towernet"):
                continue
            name = spec["name"] + (":" + spec["attention"] if spec["attention"] else "")
            with contextlib.ExitStack() as stack, compile_log_filters():
                steps = {side: build_step(spec, lever, side, stack) for side in ("baseline", "lever")}
                try:
                    result = interleaved(steps, spec["batch_size"], args.rounds, args.steps, args.warmup)
                except Exception as error:  # a lever that Paddle cannot run is a result too
                    print(f"| {lever} | {name} | {spec['image_size']} | {spec['batch_size']} | | | failed: "
                          f"{type(error).__name__}: {str(error).splitlines()[0][:80]} | | |", flush=True)
                    continue
            print(f"| {lever} | {name} | {spec['image_size']} | {spec['batch_size']} | {result['baseline']:.1f} "
                  f"| {result['lever']:.1f} | {result['ratio']:.2f} | {result['low']:.2f}-{result['high']:.2f} "
                  f"| {args.rounds} |", flush=True)


if __name__ == "__main__":
    main()
