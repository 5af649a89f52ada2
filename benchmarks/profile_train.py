"""Where a training (or evaluation) step spends its time: ``paddle.profiler`` by kind of operator.

For one network, a few steps are profiled with Paddle's dygraph kernels and again inside
:func:`simam_paddle.engine.acceleration.onednn_convolutions` (what ``train(..., onednn=True)`` does),
each in a process of its own (Paddle allows one profiler per process). Every operator's *self* time
(its duration less the operators nested in it, such as the oneDNN operators inside a compiled
convolution's program) is summed by kind; "outside operators" is the rest of the step (Python,
autograd bookkeeping). Prints a markdown table of milliseconds per step and shares.

    python benchmarks/profile_train.py --model towernet:simam@128x32
    python benchmarks/profile_train.py --model cifar_resnet20@32x128 --eval
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

# (kind, pattern on the operator's name); the first match wins.
KINDS = [
    ("convolution, Paddle kernels", r"^(conv2d|depthwise_conv2d)$|Conv2dGradNode"),
    ("convolution, oneDNN kernels", r"^onednn_op\.conv2d(_grad)?$"),
    ("bias add and its gradient inside oneDNN programs", r"^onednn_op\.(add|add_grad|reshape|reshape_grad)$"),
    ("oneDNN programs: layout changes, copies, launch", r"^(pd_op\.|onednn_op\.|run_program)|Dy2StGradNode"),
    ("add (bias, residual) and its gradient", r"^add$|AddGradNode"),
    ("BatchNorm", r"batch_norm|BatchNormGradNode"),
    ("ReLU", r"^relu$|ReluGradNode"),
    ("pooling", r"pool2d|Pool2dGradNode"),
    ("SimAM (fused operator)", r"simam"),
    ("concat", r"^concat$|ConcatGradNode"),
    ("optimizer", r"momentum|sgd_|adam"),
]
OTHER, OUTSIDE = "other operators", "outside operators (Python, autograd)"


def kind_of(name: str) -> str:
    for kind, pattern in KINDS:
        if re.search(pattern, name):
            return kind
    return OTHER


def self_times(events: List[dict]) -> Dict[str, float]:
    """Microseconds of self time per operator name: each duration less its nested operators' durations."""
    operators = defaultdict(list)
    for event in events:
        if event.get("cat") == "Operator" and event.get("ph") == "X":
            operators[event["tid"]].append(event)
    totals = defaultdict(float)
    for thread in operators.values():
        thread.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [end, name, nested duration]
        for event in thread:
            while stack and event["ts"] >= stack[-1][0]:
                end, name, nested, dur = stack.pop()
                totals[name] += max(0.0, dur - nested)
            if stack:
                stack[-1][2] += event["dur"]
            name = re.sub(r"\[.*$", "", event["name"]).replace(" dygraph", "").strip()
            stack.append([event["ts"] + event["dur"], name, 0.0, event["dur"]])
        for end, name, nested, dur in stack:
            totals[name] += max(0.0, dur - nested)
    return dict(totals)


def profile(spec: str, onednn: bool, evaluate: bool, steps: int, warmup: int) -> dict:
    """Run in a child process: ms per step by kind of operator."""
    # The package before Paddle: its first import of Paddle hides the ccache warning and glog's chatter.
    from bench_train import parse_spec
    from simam_paddle.engine.acceleration import onednn_convolutions
    from simam_paddle.engine.device import seed_everything, select_device
    from simam_paddle.engine.training import make_optimizer
    from simam_paddle.models.zoo import build_model

    import numpy as np
    import paddle
    import paddle.profiler as profiler

    select_device("cpu")
    spec = parse_spec(spec, steps)
    seed_everything(0)
    network = build_model(spec["name"], 10, attention=spec["attention"])
    optimizer = make_optimizer(network.parameters(), 0.01, epochs=1, steps_per_epoch=warmup + steps)
    batch, size = spec["batch_size"], spec["image_size"]
    x = paddle.randn([batch, 3, size, size])
    y = paddle.to_tensor(np.random.RandomState(0).randint(0, 10, [batch, 1]).astype("int64"))

    def step():
        if evaluate:
            with paddle.no_grad():
                network(x).numpy()
            return
        loss = paddle.nn.functional.cross_entropy(network(x), y)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        float(loss)

    with onednn_convolutions(network, onednn) as switched:
        network.train(not evaluate)
        for _ in range(warmup):
            step()
        prof = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU], on_trace_ready=lambda p: None)
        prof.start()
        for _ in range(steps):
            step()
            prof.step()
        prof.stop()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trace.json")
        prof.export(path, format="json")
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    step_us = sum(e["dur"] for e in events if e.get("cat") == "ProfileStep" and e["dur"] > 1000)
    by_kind = defaultdict(float)
    for name, us in self_times(events).items():
        by_kind[kind_of(name)] += us
    by_kind[OUTSIDE] = max(0.0, step_us - sum(by_kind.values()))
    return {"step_ms": step_us / steps / 1000, "switched": switched,
            "kinds": {k: v / steps / 1000 for k, v in by_kind.items()}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="towernet:simam@128x32", help="model[:attention]@SIZExBATCH (bench_train.py)")
    parser.add_argument("--eval", action="store_true", help="profile evaluation steps (no gradients) instead")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--child", choices=["paddle", "onednn"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = profile(args.model, args.child == "onednn", args.eval, args.steps, args.warmup)
        print(json.dumps(result))
        return
    results = {}
    for kernels in ("paddle", "onednn"):
        command = [sys.executable, os.path.abspath(__file__), "--child", kernels, "--model", args.model,
                   "--steps", str(args.steps), "--warmup", str(args.warmup)] + (["--eval"] if args.eval else [])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"profiling with {kernels} kernels failed:\n{done.stderr.strip()[-2000:]}")
        results[kernels] = json.loads(done.stdout.strip().splitlines()[-1])
    paddle_run, onednn_run = results["paddle"], results["onednn"]
    what = "evaluation" if args.eval else "training"
    print(f"{args.model}, {what} step, {args.steps} profiled steps after {args.warmup}: "
          f"{paddle_run['step_ms']:.0f} ms with Paddle's kernels, {onednn_run['step_ms']:.0f} ms with oneDNN "
          f"convolutions ({onednn_run['switched']} switched), x{paddle_run['step_ms'] / onednn_run['step_ms']:.2f}\n")
    print("| kind of operator | Paddle kernels, ms | share | oneDNN convolutions, ms | share |")
    print("|---|---:|---:|---:|---:|")
    for kind in [k for k, _ in KINDS] + [OTHER, OUTSIDE]:
        a, b = paddle_run["kinds"].get(kind, 0.0), onednn_run["kinds"].get(kind, 0.0)
        if a < 0.05 and b < 0.05:
            continue
        print(f"| {kind} | {a:.1f} | {a / paddle_run['step_ms']:.0%} | {b:.1f} | {b / onednn_run['step_ms']:.0%} |")


if __name__ == "__main__":
    main()
