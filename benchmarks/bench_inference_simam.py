"""SimAM's means through Paddle Inference with oneDNN: ``mean`` over H, W (before) against global average pooling (now).

Paddle 3.3's predictor keeps ``mean`` over H and W off oneDNN (it prints ``ReduceMeanCheckIfOneDNNSupport`` for
each) and changes layouts around it. A traced SimAM now takes its means as ``adaptive_avg_pool2d(x, 1)``
(``simam_paddle.layers.simam._pooled_statistics``), which the predictor runs on oneDNN. For each network: the
network without attention, with SimAM exported the old way (``_pooled_statistics`` patched to False while
saving) and with SimAM exported as now, each saved with ``paddle.jit.save`` and run by a predictor with
``enable_onednn()``; timed in interleaved rounds (``--rounds`` rounds of ``--steps`` batches each, median per
round) on a shared machine, so the ratios are what to read. Each export's logits are checked against dygraph.

    python benchmarks/bench_inference_simam.py
    python benchmarks/bench_inference_simam.py --models towernet@128x32 --rounds 5
"""
import argparse
import contextlib
import importlib
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

# The package before Paddle: its first import of Paddle hides the ccache warning and glog's chatter.
from bench_inference import predictor_call  # noqa: E402
from bench_train import median_images_s, parse_spec  # noqa: E402
from simam_paddle._quiet import native_stdout_dropped, quiet_native_logs  # noqa: E402
from simam_paddle.engine.device import seed_everything, select_device  # noqa: E402
from simam_paddle.models.zoo import build_model  # noqa: E402

import numpy as np  # noqa: E402,I100
import paddle  # noqa: E402,I100

simam_module = importlib.import_module("simam_paddle.layers.simam")


@contextlib.contextmanager
def reduce_means():
    """SimAM traced the way it was before: ``mean`` / ``sum`` over H and W."""
    real = simam_module._pooled_statistics
    simam_module._pooled_statistics = lambda x, axes: False
    try:
        yield
    finally:
        simam_module._pooled_statistics = real


def exported(spec, attention, old_means, folder, threads):
    seed_everything(0)
    network = build_model(spec["name"], 10, attention=attention)
    network.eval()
    size, batch = spec["image_size"], spec["batch_size"]
    x = np.random.RandomState(0).randn(batch, 3, size, size).astype("float32")
    with paddle.no_grad():
        reference = network(paddle.to_tensor(x)).numpy()
    prefix = os.path.join(folder, f"{attention}_{old_means}", "model")
    with quiet_native_logs(), (reduce_means() if old_means else contextlib.nullcontext()):
        paddle.jit.save(network, prefix, input_spec=[paddle.static.InputSpec([None, 3, size, size], "float32")])
    infer = predictor_call(prefix, True, threads, x)
    with native_stdout_dropped():
        logits = infer()
    error = float(np.abs(logits - reference).max() / np.abs(reference).max())
    return infer, error


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cifar_resnet20@32x128", "towernet@128x32"],
                        help="model@SIZExBATCH (bench_train.py; the attention is set here)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    select_device("cpu", num_threads=args.threads)
    from simam_paddle._paddle import num_threads

    print(f"paddle {paddle.__version__}, load average {os.getloadavg()[0]:.1f} at the start, Paddle Inference with "
          f"oneDNN, {num_threads()} threads; images/s, median over {args.rounds} interleaved rounds of "
          f"{args.steps} batches\n")
    print("| network | image px | batch | none | SimAM, mean (before) | SimAM, pooling (now) | now / before "
          "| SimAM now / none | logits vs dygraph (relative), before / now |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for text in args.models:
            spec = parse_spec(text, args.steps)
            variants = {"none": exported(spec, "none", False, folder, num_threads()),
                        "before": exported(spec, "simam", True, folder, num_threads()),
                        "now": exported(spec, "simam", False, folder, num_threads())}
            images = {k: [] for k in variants}
            for infer, _ in variants.values():
                infer()
            for _ in range(args.rounds):
                for key, (infer, _) in variants.items():
                    images[key].append(median_images_s(infer, spec["batch_size"], args.steps, warmup=0))
            ratio = np.median(np.array(images["now"]) / np.array(images["before"]))
            versus_none = np.median(np.array(images["now"]) / np.array(images["none"]))
            med = {k: float(np.median(v)) for k, v in images.items()}
            print(f"| {spec['name']} | {spec['image_size']} | {spec['batch_size']} | {med['none']:.1f} "
                  f"| {med['before']:.1f} | {med['now']:.1f} | {ratio:.2f} | {versus_none:.2f} "
                  f"| {variants['before'][1]:.0e} / {variants['now'][1]:.0e} |", flush=True)


if __name__ == "__main__":
    main()
