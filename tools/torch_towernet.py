"""TowerNet trained in PyTorch on a GPU: the notebook's full setting where no Paddle GPU build can run.

Why this exists: the notebook trains TowerNet at 256 px for 100 epochs on a GPU. The GPU machines this
project can borrow have CUDA 13 and PyTorch but no Paddle, and cannot reach a package index; PyPI's
``paddlepaddle-gpu`` is 2.6.2, a 759 MB wheel built for CUDA 12 / cuDNN 8. So the GPU experiment runs
this mirror of :class:`simam_paddle.TowerNet` instead, and ``check`` below shows that the two networks
compute the same function: with the Paddle network's weights copied in, the logits agree to float32
rounding, in training mode (batch statistics) and in evaluation mode.

What is mirrored, from ``simam_paddle`` (not imported: the GPU machine has no Paddle):

- the network: ``BasicConv2d`` (conv with bias, BatchNorm epsilon 1e-3, ReLU), ``Inception``, the four
  attention slots (``b3.2``, ``b4.2``, ``b5.2``, ``b5.5``) holding SimAM (``max(n - 1, 1)`` as the
  variance's denominator, e_lambda 1e-4), SE (1x1 convs without biases, reduction 16) or nothing, global
  average pool and a linear head; parameter names match, so a Paddle ``state_dict`` loads (``_mean`` /
  ``_variance`` become ``running_mean`` / ``running_var``, the linear weight is transposed);
- Paddle's default initialisation: conv weights Normal(0, sqrt(2 / fan_in)), linear weight Xavier
  uniform, biases 0, BatchNorm 1 and 0;
- the data: images read as RGB, resized once with Pillow's bilinear filter (as ``ImageFolderDataset``
  with ``image_size``), a random rotation of up to 10 degrees (nearest neighbour, zero fill) on every
  training image as ``train_transforms`` does, then ``(x / 255 - mean) / std`` with the notebook's
  mean and std;
- the recipe of ``simam_paddle.engine.train``: batch 32, shuffled, last partial batch kept; Momentum 0.9 with
  L2 weight decay 2e-4 on every parameter; the learning rate 0.01 on a cosine from the first step to 0
  over all steps (``CosineDecayToZero``); cross-entropy; evaluation after every epoch.

What differs: random numbers (PyTorch's generators, so seed ``s`` here is not seed ``s`` of a Paddle
run), cuDNN's kernels (TF32 convolutions, PyTorch's default on this GPU), the rotation's resampling
(``grid_sample`` on the GPU instead of Pillow's ``rotate``; both nearest neighbour about the centre, equal
on 99.98 % of the pixels of a 256 px digit turned by 10 degrees),
and BatchNorm's running variance (PyTorch keeps the unbiased batch variance, Paddle the biased one; at
32 x 4 or more values per channel the two differ by under 1 %).

Each run writes ``config.json`` and ``history.csv`` in the layout of ``simam_paddle``'s run folders, so
``python -m simam_paddle report`` tabulates them like any other experiment.

Usage::

    # on the GPU machine (PyTorch, numpy, Pillow): all runs of the experiment, in parallel processes
    python tools/torch_towernet.py train --data data/digits_split --output runs/towernet_digits256_gpu \\
        --attentions none se simam --seeds 0 1 2 --epochs 100 --image-size 256
    # the mirror against the Paddle network: weights, logits and two recipe steps written with Paddle,
    # then compared with PyTorch (two environments are fine)
    python tools/torch_towernet.py reference --output ref.npz     # needs Paddle + simam_paddle
    python tools/torch_towernet.py check ref.npz                  # needs PyTorch
"""
import argparse
import csv
import json
import math
import os
import sys
import time

import numpy as np

NOTEBOOK_MEAN = (0.50950350, 0.54632660, 0.57409690)
NOTEBOOK_STD = (0.26059777, 0.26041326, 0.29220656)
WIDTH = 256
ATTENTION_SLOTS = ("b3.2", "b4.2", "b5.2", "b5.5")


# --------------------------------------------------------------------------------------------- network

def _torch_network(attention: str, num_classes: int, reduction: int = 16, e_lambda: float = 1e-4):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class SimAM(nn.Module):
        def __init__(self):
            super().__init__()
            self.e_lambda = e_lambda

        def forward(self, x):
            n = max(x.shape[2] * x.shape[3] - 1, 1)
            d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
            y = d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + self.e_lambda)) + 0.5
            return x * torch.sigmoid(y)

    class SE(nn.Module):
        def __init__(self, channels):
            super().__init__()
            hidden = max(1, channels // reduction)
            self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
            self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)

        def forward(self, x):
            return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))

    def attend():
        if attention == "simam":
            return SimAM()
        if attention == "se":
            return SE(WIDTH)
        if attention == "none":
            return nn.Identity()
        raise ValueError(f"attention must be one of none, se, simam; got {attention!r}")

    def basic(cin, cout, stride=1):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout, eps=1e-3), nn.ReLU())

    class Inception(nn.Module):
        def __init__(self, cin, c1=64, c2=(64, 128), c3=(16, 32), c4=32):
            super().__init__()
            self.route1x1_1 = nn.Conv2d(cin, c1, 1)
            self.route1x1_2 = nn.Conv2d(cin, c2[0], 1)
            self.route3x3_2 = nn.Conv2d(c2[0], c2[1], 3, padding=1)
            self.route1x1_3 = nn.Conv2d(cin, c3[0], 1)
            self.route5x5_3 = nn.Conv2d(c3[0], c3[1], 5, padding=2)
            self.route3x3_4 = nn.MaxPool2d(3, 1, 1)
            self.route1x1_4 = nn.Conv2d(cin, c4, 1)

        def forward(self, x):
            return torch.cat([
                F.relu(self.route1x1_1(x)),
                F.relu(self.route3x3_2(F.relu(self.route1x1_2(x)))),
                F.relu(self.route5x5_3(F.relu(self.route1x1_3(x)))),
                F.relu(self.route1x1_4(self.route3x3_4(x))),
            ], dim=1)

    class TowerNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.b1 = nn.Sequential(basic(3, 64, stride=2), nn.MaxPool2d(2, 2))
            self.b2 = nn.Sequential(basic(64, 128), nn.MaxPool2d(2, 2))
            self.b3 = nn.Sequential(basic(128, WIDTH), nn.MaxPool2d(2, 2), attend())
            self.b4 = nn.Sequential(basic(WIDTH, WIDTH), nn.MaxPool2d(2, 2), attend())
            self.b5 = nn.Sequential(Inception(WIDTH), nn.MaxPool2d(2, 2), attend(),
                                    Inception(WIDTH), nn.MaxPool2d(2, 2), attend(), Inception(WIDTH))
            self.b6 = nn.Linear(WIDTH, num_classes)

        def forward(self, x):
            x = self.b5(self.b4(self.b3(self.b2(self.b1(x)))))
            return self.b6(x.mean(dim=(2, 3)))

    net = TowerNet()
    # Paddle's defaults (nn.Conv2D: Normal(0, sqrt(2 / fan_in)); nn.Linear: Xavier uniform; biases 0).
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_in))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return net


def load_paddle_state(net, state: dict) -> None:
    """Copy a Paddle TowerNet ``state_dict`` (name -> numpy array) into the mirror ``net``."""
    import torch

    renamed = {}
    for name, value in state.items():
        name = name.replace("._mean", ".running_mean").replace("._variance", ".running_var")
        if name == "b6.weight":
            value = value.T
        renamed[name] = torch.from_numpy(np.ascontiguousarray(value))
    missing, unexpected = net.load_state_dict(renamed, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"state does not fit the mirror: missing {missing}, unexpected {unexpected}")


# ------------------------------------------------------------------------------------------------ data

def _read_split(root: str, split: str, image_size: int):
    """uint8 NHWC images and int labels of ``root/split/<class>/*``, classes sorted by name."""
    from PIL import Image

    folder = os.path.join(root, split)
    classes = sorted(c for c in os.listdir(folder)
                     if os.path.isdir(os.path.join(folder, c)) and not c.startswith("."))
    images, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted(os.listdir(os.path.join(folder, name))):
            if file.startswith(".") or not file.lower().endswith((".png", ".jpg", ".jpeg", ".bmp")):
                continue
            with Image.open(os.path.join(folder, name, file)) as image:
                image = image.convert("RGB")
                if image.size != (image_size, image_size):
                    image = image.resize((image_size, image_size), Image.BILINEAR)
                images.append(np.asarray(image, dtype=np.uint8))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def _rotate(batch, max_degrees: float, generator):
    """Rotate each NCHW image by its own uniform angle in [-max, max] degrees about the centre (nearest, 0 fill)."""
    import torch
    import torch.nn.functional as F

    n = batch.shape[0]
    angles = (torch.rand(n, generator=generator, device=batch.device) * 2 - 1) * math.radians(max_degrees)
    cos, sin = torch.cos(angles), torch.sin(angles)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, mode="nearest", padding_mode="zeros", align_corners=False)


# -------------------------------------------------------------------------------------------- training

def _recipe(net, lr: float, momentum: float, weight_decay: float, total: int):
    """SGD with momentum and L2 decay on every parameter, lr on a cosine to 0 over ``total`` steps."""
    import torch

    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, total) / total)))
    return optimizer, schedule


def train_one(data: str, output: str, attention: str, seed: int, epochs: int, image_size: int,
              batch_size: int = 32, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 2e-4,
              reduction: int = 16, e_lambda: float = 1e-4) -> str:
    """Train one run into ``output/towernet_<attention>_seed<seed>``; returns that folder."""
    import torch
    import torch.nn.functional as F

    run = os.path.join(output, f"towernet_{attention}_seed{seed}")
    os.makedirs(run, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(seed)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    torch.backends.cudnn.benchmark = True

    train_x, train_y, classes = _read_split(data, "train", image_size)
    eval_x, eval_y, eval_classes = _read_split(data, "eval", image_size)
    if eval_classes != classes:
        raise ValueError(f"train and eval classes differ: {classes} vs {eval_classes}")
    mean = torch.tensor(NOTEBOOK_MEAN, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(NOTEBOOK_STD, device=device).view(1, 3, 1, 1) * 255

    def to_device(x):  # NHWC uint8 -> NCHW float 0..255 on the device
        return torch.from_numpy(x).to(device).permute(0, 3, 1, 2).float().contiguous()

    train_x, eval_x = to_device(train_x), to_device(eval_x)
    train_y, eval_y = torch.from_numpy(train_y).to(device), torch.from_numpy(eval_y).to(device)

    net = _torch_network(attention, len(classes), reduction, e_lambda).to(device)
    net = net.to(memory_format=torch.channels_last)
    steps_per_epoch = math.ceil(len(train_y) / batch_size)
    total = epochs * steps_per_epoch
    optimizer, schedule = _recipe(net, lr, momentum, weight_decay, total)

    config = {
        "model": "towernet", "attention": attention,
        "e_lambda": e_lambda if attention == "simam" else None,
        "reduction": reduction if attention == "se" else None,
        "epochs": epochs, "image_size": image_size, "batch_size": batch_size, "lr": lr,
        "momentum": momentum, "weight_decay": weight_decay, "seed": seed,
        "data": os.path.basename(os.path.normpath(data)), "num_classes": len(classes), "classes": classes,
        "train_samples": int(len(train_y)), "eval_samples": int(len(eval_y)),
        "framework": f"pytorch {torch.__version__} (tools/torch_towernet.py, a mirror of simam_paddle's TowerNet)",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "paddle_version": None, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    rows = []
    for epoch in range(epochs):
        start = time.perf_counter()
        epoch_lr = optimizer.param_groups[0]["lr"]
        net.train()
        order = torch.randperm(len(train_y), generator=generator, device=device)
        loss_sum = torch.zeros((), device=device)  # summed on the device: no synchronisation per step
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for i in range(steps_per_epoch):
            index = order[i * batch_size:(i + 1) * batch_size]
            x = _rotate(train_x[index], 10.0, generator)
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            logits = net(x)
            loss = F.cross_entropy(logits, train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.detach() * len(index)
            correct += (logits.argmax(1) == train_y[index]).sum()
        net.eval()
        eval_loss, eval_correct = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(eval_y), 128):
                x = ((eval_x[i:i + 128] - mean) / std).contiguous(memory_format=torch.channels_last)
                logits = net(x)
                eval_loss += float(F.cross_entropy(logits, eval_y[i:i + 128], reduction="sum"))
                eval_correct += int((logits.argmax(1) == eval_y[i:i + 128]).sum())
        if device.type == "cuda":
            torch.cuda.synchronize()
        rows.append([epoch + 1, float(loss_sum) / len(train_y), int(correct) / len(train_y), eval_loss / len(eval_y),
                     eval_correct / len(eval_y), epoch_lr, round(time.perf_counter() - start, 3)])
        if (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            print(f"{os.path.basename(run)} epoch {epoch + 1}/{epochs}: eval acc {rows[-1][4]:.4f}, "
                  f"{rows[-1][6]:.2f} s/epoch", flush=True)
        with open(os.path.join(run, "history.csv.tmp"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", "loss", "acc", "eval_loss", "eval_acc", "lr", "time"])
            writer.writerows(rows)
        os.replace(os.path.join(run, "history.csv.tmp"), os.path.join(run, "history.csv"))  # whole or not at all
    return run


# ------------------------------------------------------------------------------------ mirror checking

def write_reference(path: str, attentions=("none", "se", "simam"), image_size: int = 256) -> None:
    """With Paddle: each attention's TowerNet weights, an input batch and its logits in both modes."""
    import paddle
    import simam_paddle as sp

    arrays = {}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, image_size, image_size)).astype(np.float32)
    arrays["input"] = x
    for attention in attentions:
        paddle.seed(1)
        net = sp.TowerNet(num_classes=10, attention=attention)
        for name, value in net.state_dict().items():
            arrays[f"{attention}/{name}"] = value.numpy()
        net.train()
        arrays[f"{attention}:train_logits"] = net(paddle.to_tensor(x)).numpy()
        net.eval()  # the forward in train mode moved the running statistics: store them as eval uses them
        for name, value in net.state_dict().items():
            arrays[f"{attention}/{name}"] = value.numpy()
        arrays[f"{attention}:eval_logits"] = net(paddle.to_tensor(x)).numpy()
        # Two steps of the training recipe (Momentum, L2 decay, cosine learning rate) from these weights.
        net.train()
        optimizer = sp.engine.make_optimizer(net.parameters(), 0.01, epochs=1, steps_per_epoch=2,
                                             weight_decay=2e-4)
        labels = paddle.to_tensor(np.arange(len(x)) % 10)
        for step in (1, 2):
            loss = paddle.nn.functional.cross_entropy(net(paddle.to_tensor(x)), labels)
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            optimizer._learning_rate.step()
            for name, value in net.named_parameters():
                if value.trainable:  # not BatchNorm's running statistics
                    arrays[f"{attention}:step{step}/{name}"] = value.numpy()
    np.savez(path, **arrays)


def check(path: str):
    """With PyTorch: load each reference network into the mirror and compare; returns the worst differences.

    The first is the logits' largest difference relative to their largest value; the second the parameters'
    distance after a training step relative to how far the step moved them. Float32 rounding decides a few
    ReLU signs and max-pool winners differently in the two frameworks, which changes some gradients by a
    few per cent (docs/PERFORMANCE.md measures the same between Paddle's own two kernel sets), so the
    second is about 1e-3, not 1e-6.
    """
    import torch

    ref = np.load(path)
    attentions = sorted({k.split("/")[0] for k in ref.files if "/" in k and ":" not in k.split("/")[0]})
    x = torch.from_numpy(ref["input"])
    worst = worst_step = 0.0
    for attention in attentions:
        state = {k.split("/", 1)[1]: ref[k] for k in ref.files if k.startswith(attention + "/")}
        net = _torch_network(attention, 10)
        for mode in ("train", "eval"):
            load_paddle_state(net, state)  # afresh: a forward in train mode moves the running statistics
            net.train(mode == "train")
            with torch.no_grad():
                got = net(x).numpy()
            want = ref[f"{attention}:{mode}_logits"]
            diff = float(np.abs(got - want).max())
            scale = float(np.abs(want).max())
            worst = max(worst, diff / scale)
            print(f"{attention:6s} {mode:5s} max |torch - paddle| = {diff:.2e} (logits up to {scale:.2f})")
        # Two steps of the recipe (the second tests momentum and the cosine): the same parameters afterwards,
        # measured as ||torch - paddle|| / ||paddle - start|| over all parameters.
        load_paddle_state(net, state)
        net.train()
        optimizer, schedule = _recipe(net, lr=0.01, momentum=0.9, weight_decay=2e-4, total=2)
        labels = torch.arange(len(x)) % 10
        for step in (1, 2):
            loss = torch.nn.functional.cross_entropy(net(x), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            off = moved = 0.0
            for name, value in net.named_parameters():
                want = ref[f"{attention}:step{step}/{name}"]
                want = want.T if name == "b6.weight" else want
                off += float(((value.detach().numpy() - want) ** 2).sum())
                moved += float(((want - (state[name].T if name == "b6.weight" else state[name])) ** 2).sum())
            ratio = math.sqrt(off / moved)
            print(f"{attention:6s} after step {step}: ||torch - paddle|| / ||paddle - start|| = {ratio:.2e}")
            worst_step = max(worst_step, ratio)
        # Initialisation: the mirror's own init has the spread of Paddle's.
        own = _torch_network(attention, 10).state_dict()
        for name, value in state.items():
            if name.endswith(".weight") and value.ndim == 4 and value.size > 1000:
                ratio = float(own[name].std()) / float(value.std())
                if not 0.9 < ratio < 1.1:
                    raise AssertionError(f"{attention} {name}: init std ratio torch/paddle {ratio:.3f}")
    return worst, worst_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train runs (one process each, in parallel)")
    t.add_argument("--data", required=True)
    t.add_argument("--output", required=True)
    t.add_argument("--attentions", nargs="+", default=["none", "se", "simam"])
    t.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--image-size", type=int, default=256)
    t.add_argument("--parallel", type=int, default=0, help="processes at once (default: all runs)")
    one = sub.add_parser("one", help="train a single run in this process")
    one.add_argument("--data", required=True)
    one.add_argument("--output", required=True)
    one.add_argument("--attention", required=True)
    one.add_argument("--seed", type=int, required=True)
    one.add_argument("--epochs", type=int, default=100)
    one.add_argument("--image-size", type=int, default=256)
    r = sub.add_parser("reference", help="write Paddle weights and logits (needs Paddle and simam_paddle)")
    r.add_argument("--output", required=True)
    c = sub.add_parser("check", help="compare the mirror with a reference file (needs PyTorch)")
    c.add_argument("reference")
    args = parser.parse_args(argv)

    if args.command == "one":
        train_one(args.data, args.output, args.attention, args.seed, args.epochs, args.image_size)
        return 0
    if args.command == "reference":
        write_reference(args.output)
        return 0
    if args.command == "check":
        logits, steps = check(args.reference)
        print(f"worst: logits {logits:.2e} (limit 1e-4), parameters after a step {steps:.2e} (limit 2e-2)")
        return 0 if logits < 1e-4 and steps < 2e-2 else 1
    import signal
    import subprocess

    stopping = []
    # A timeout's SIGTERM: end the runs and wait for them (in the loop, not in the handler, which could
    # interrupt Popen.poll holding its lock), so no run writes after this process returns.
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    jobs = [(a, s) for s in args.seeds for a in args.attentions]
    parallel = args.parallel or len(jobs)
    running, failed = [], 0
    while (jobs or running) and not stopping:
        while jobs and len(running) < parallel:
            attention, seed = jobs.pop(0)
            cmd = [sys.executable, __file__, "one", "--data", args.data, "--output", args.output,
                   "--attention", attention, "--seed", str(seed), "--epochs", str(args.epochs),
                   "--image-size", str(args.image_size)]
            running.append(((attention, seed), subprocess.Popen(cmd)))
        time.sleep(1)
        for job in list(running):
            code = job[1].poll()
            if code is not None:
                running.remove(job)
                print(f"{job[0]} finished with exit code {code}", flush=True)
                failed += code != 0
    if stopping:
        for _, process in running:
            process.terminate()
        for _, process in running:
            process.wait()
        print(f"stopped by signal {stopping[0]}; {len(running) + len(jobs)} runs unfinished", flush=True)
        return 128 + stopping[0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
