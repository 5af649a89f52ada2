"""Training and evaluation throughput (images/s): Paddle's dygraph kernels against oneDNN convolutions.

For each network, in turn in one process: a training step (forward, cross-entropy, backward,
Momentum update, the recipe of ``simam_paddle.engine.training``) and an evaluation step (forward
under ``no_grad``, logits to NumPy), on random images, first with Paddle's dygraph kernels
("before") and then inside :func:`simam_paddle.engine.acceleration.onednn_convolutions` (what
``train(..., onednn=True)`` does, "after"). Each figure is the median of ``--steps`` timed steps after
``--warmup`` steps (the first steps compile the convolutions). All available cores are used
(``select_device``) unless ``--threads`` says otherwise. The CIFAR ResNets' SE and CBAM get the
official CIFAR recipe's reduction 4 (``main_cifar.py``'s ``--attention_param`` default), the other
networks the package's defaults.

With ``--torch-python`` the official SimAM code's PyTorch ResNet-20 (``benchmarks/torch_resnet20.py``
in that interpreter; torch is no dependency of the project) is timed with each of the four attentions
(none, se, cbam, simam), right after the Paddle ResNet-20 with the same attention, batch and thread
count; ResNet-20 specs missing from ``--models`` are added with the size and batch of the first one
(32x128 if none). The two networks' parameter counts must agree. The Paddle/PyTorch ratios of each
attention, training and evaluation, follow the table.
Prints a markdown table.

    python benchmarks/bench_train.py
    python benchmarks/bench_train.py --models cifar_resnet20@32x128 --steps 8 --torch-python .venv-torch/bin/python
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# The package before Paddle: its first import of Paddle hides the ccache warning and glog's chatter.
from simam_paddle.engine.acceleration import convolution_kernels, onednn_convolutions  # noqa: E402
from simam_paddle.engine.device import seed_everything, select_device  # noqa: E402
from simam_paddle.engine.training import make_optimizer  # noqa: E402
from simam_paddle.models.zoo import build_model, model_spec, resolve_attention  # noqa: E402

import numpy as np  # noqa: E402,I100
import paddle  # noqa: E402,I100

# model[:attention]@image_size x batch[/steps]: the 224 px networks are slow on a small CPU, so they
# get small batches and few steps.
DEFAULT_MODELS = ["towernet:simam@128x32", "cifar_resnet20@32x128", "resnet50@224x8/3", "mobilenet_v2@224x8/3"]
TORCH_ATTENTIONS = ("none", "se", "cbam", "simam")  # what benchmarks/torch_resnet20.py builds


def parse_spec(spec: str, default_steps: int) -> dict:
    """``"towernet:simam@128x32/5"`` -> name, attention, image size, batch size, steps."""
    model, _, shape = spec.partition("@")
    name, _, attention = model.partition(":")
    shape, _, steps = shape.partition("/")
    size, _, batch = shape.partition("x")
    try:
        return {"spec": spec, "name": name, "attention": attention or None, "image_size": int(size or 128),
                "batch_size": int(batch or 16), "steps": int(steps or default_steps)}
    except ValueError:
        raise ValueError(f"model spec {spec!r} is not model[:attention]@SIZExBATCH[/STEPS], "
                         "e.g. 'towernet:simam@128x32/5'") from None


def attention_options(spec: dict) -> dict:
    """The official CIFAR recipe's reduction 4 for a CIFAR ResNet's SE or CBAM; the package's defaults otherwise."""
    attention = resolve_attention(spec["name"], spec["attention"])
    return {"reduction": 4} if model_spec(spec["name"]).family == "cifar" and attention in ("se", "cbam") else {}


def with_torch_networks(specs: list, default_steps: int) -> list:
    """``specs`` plus a ``cifar_resnet20`` spec for each attention PyTorch times that they lack."""
    resnets = [s for s in specs if s["name"] == "cifar_resnet20"]
    shape = f"{resnets[0]['image_size']}x{resnets[0]['batch_size']}/{resnets[0]['steps']}" if resnets else "32x128"
    have = {resolve_attention("cifar_resnet20", s["attention"]) for s in resnets}
    return specs + [parse_spec(f"cifar_resnet20:{a}@{shape}", default_steps) for a in TORCH_ATTENTIONS if a not in have]


def median_images_s(step, batch_size: int, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return batch_size / float(np.median(times))


def measure(spec: dict, onednn: bool, warmup: int, num_classes: int) -> dict:
    """images/s of a training step and of an evaluation step of one network."""
    seed_everything(0)
    network = build_model(spec["name"], num_classes, attention=spec["attention"],
                          attention_kwargs=attention_options(spec))
    batch, size = spec["batch_size"], spec["image_size"]
    optimizer = make_optimizer(network.parameters(), 0.01, epochs=1, steps_per_epoch=warmup + spec["steps"])
    x = paddle.randn([batch, 3, size, size])
    y = paddle.to_tensor(np.random.RandomState(0).randint(0, num_classes, [batch, 1]).astype("int64"))

    def train_step():
        loss = paddle.nn.functional.cross_entropy(network(x), y)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        return float(loss)  # float() waits for the device

    def eval_step():
        with paddle.no_grad():
            return network(x).numpy()

    with onednn_convolutions(network, onednn):
        network.train()
        train = median_images_s(train_step, batch, spec["steps"], warmup)
        network.eval()
        evaluate = median_images_s(eval_step, batch, spec["steps"], warmup)
        switched, _ = convolution_kernels(network)  # what ran (1 x 1 maps run on Paddle's kernels)
    convs = sum(isinstance(m, paddle.nn.Conv2D) for m in network.sublayers())
    parameters = sum(int(np.prod(p.shape)) for p in network.parameters() if p.trainable)
    return {"train": train, "eval": evaluate, "switched": switched, "convs": convs, "parameters": parameters}


def measure_torch(python: str, attention: str, spec: dict, warmup: int, threads: int) -> dict:
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_resnet20.py")
    done = subprocess.run([python, script, "--attention", attention, "--batch-size", str(spec["batch_size"]),
                           "--image-size", str(spec["image_size"]), "--steps", str(spec["steps"]),
                           "--warmup", str(warmup), "--threads", str(threads)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{python} {script} failed:\n{done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                        help="model[:attention]@SIZExBATCH[/STEPS] specs (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps where a spec names none (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: every available core)")
    parser.add_argument("--torch-python", default=None,
                        help="a Python with torch: also time the official ResNet-20 with each attention in PyTorch "
                        "(same batch and steps)")
    args = parser.parse_args(argv)
    specs = [parse_spec(s, args.steps) for s in args.models]
    if args.torch_python:
        specs = with_torch_networks(specs, args.steps)
    device = select_device("cpu", num_threads=args.threads)
    from simam_paddle.engine.device import describe_device

    print(f"paddle {paddle.__version__} on {describe_device()} ({device}), median of the timed steps "
          f"after {args.warmup} warm-up steps; before = Paddle dygraph kernels, after = oneDNN convolutions "
          "(train's default on the CPU; onednn=False: Paddle's kernels)\n")
    print("| network | image px | batch | steps | oneDNN convs | train before | train after | x "
          "| eval before | eval after | x |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    from simam_paddle._paddle import num_threads

    ratios = []
    for spec in specs:
        before = measure(spec, False, args.warmup, args.num_classes)
        after = measure(spec, True, args.warmup, args.num_classes)
        attention = resolve_attention(spec["name"], spec["attention"])
        print(f"| {spec['name']}{':' + spec['attention'] if spec['attention'] else ''} | {spec['image_size']} "
              f"| {spec['batch_size']} | {spec['steps']} | {after['switched']}/{after['convs']} "
              f"| {before['train']:.1f} | {after['train']:.1f} | {after['train'] / before['train']:.2f} "
              f"| {before['eval']:.1f} | {after['eval']:.1f} | {after['eval'] / before['eval']:.2f} |", flush=True)
        if not (args.torch_python and spec["name"] == "cifar_resnet20" and attention in TORCH_ATTENTIONS):
            continue
        torch = measure_torch(args.torch_python, attention, spec, args.warmup, num_threads())
        if torch["parameters"] != after["parameters"]:
            raise RuntimeError(f"PyTorch's ResNet-20 with {attention} has {torch['parameters']} parameters, Paddle's "
                               f"{after['parameters']}: not the same network, so no ratio")
        print(f"| cifar_resnet20:{attention}, PyTorch {torch['torch']} ({torch['threads']} threads) "
              f"| {spec['image_size']} | {spec['batch_size']} | {spec['steps']} | - | {torch['train_images_s']:.1f} "
              f"| | | {torch['eval_images_s']:.1f} | | |", flush=True)
        ratios.append((attention, before, after, torch))
    if ratios:
        print("\nPaddle/PyTorch images/s, ResNet-20 (before = Paddle's kernels, after = oneDNN convolutions):\n")
        print("| attention | parameters | train before | train after | eval before | eval after |")
        print("|---|---:|---:|---:|---:|---:|")
        for attention, before, after, torch in ratios:
            train, evaluate = torch["train_images_s"], torch["eval_images_s"]
            print(f"| {attention} | {torch['parameters']:,} | {before['train'] / train:.2f} "
                  f"| {after['train'] / train:.2f} | {before['eval'] / evaluate:.2f} | {after['eval'] / evaluate:.2f} |")

if __name__ == "__main__":
    main()
