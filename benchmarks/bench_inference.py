"""Evaluation throughput (images/s): dygraph against Paddle Inference, each with and without oneDNN.

For each network (random weights, evaluation mode), one batch of random images, in turn in one process:

- ``dygraph``: ``network(x)`` under ``no_grad`` on Paddle's own kernels (``train(..., onednn=False)``);
- ``dygraph, oneDNN convolutions``: the same inside
  :func:`simam_paddle.engine.acceleration.onednn_convolutions` (what ``train`` evaluates with on the CPU);
- ``Paddle Inference`` and ``Paddle Inference, oneDNN``: the network saved with ``paddle.jit.save`` (as
  ``python -m simam_paddle export`` does) and run by ``paddle.inference`` with ``disable_onednn()`` /
  ``enable_onednn()``, IR optimisation on, the same number of threads.

Each figure is the median of ``--steps`` timed batches after ``--warmup``; every variant's logits are
compared with the dygraph ones (largest absolute difference, printed). Prints a markdown table.

    python benchmarks/bench_inference.py
    python benchmarks/bench_inference.py --models towernet:simam@128x32 --steps 8
"""
import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

# The package before Paddle: its first import of Paddle hides the ccache warning and glog's chatter.
from bench_train import median_images_s, parse_spec  # noqa: E402
from simam_paddle._quiet import quiet_native_logs  # noqa: E402
from simam_paddle.engine.acceleration import onednn_convolutions  # noqa: E402
from simam_paddle.engine.device import describe_device, seed_everything, select_device  # noqa: E402
from simam_paddle.models.zoo import build_model  # noqa: E402

import numpy as np  # noqa: E402,I100
import paddle  # noqa: E402,I100
from paddle import inference  # noqa: E402,I100

DEFAULT_MODELS = ["towernet:simam@128x32", "cifar_resnet20@32x128"]


def predictor_for(prefix, onednn, threads):
    config = inference.Config(prefix + ".json", prefix + ".pdiparams")
    config.disable_gpu()
    config.disable_glog_info()  # its optimisation passes print a line each otherwise
    config.switch_ir_optim(True)
    config.set_cpu_math_library_num_threads(threads)
    if onednn:
        config.enable_onednn()
    else:
        config.disable_onednn()
    with quiet_native_logs():
        return inference.create_predictor(config)


def predictor_call(prefix, onednn, threads, x):
    """A function running the exported model at ``prefix`` on the batch ``x`` through a new predictor."""
    predictor = predictor_for(prefix, onednn, threads)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    output = predictor.get_output_handle(predictor.get_output_names()[0])

    def infer():
        handle.copy_from_cpu(x)
        predictor.run()
        return output.copy_to_cpu()

    return infer


def measure(spec, steps, warmup, threads, folder):
    """images/s and largest logit difference to dygraph for each variant of one network."""
    seed_everything(0)
    network = build_model(spec["name"], num_classes=10, attention=spec["attention"])
    network.eval()
    size, batch = spec["image_size"], spec["batch_size"]
    x = np.random.RandomState(0).randn(batch, 3, size, size).astype("float32")
    tensor = paddle.to_tensor(x)
    results = {}

    def dygraph():
        with paddle.no_grad():
            return network(tensor).numpy()

    reference = dygraph()
    results["dygraph"] = (median_images_s(dygraph, batch, steps, warmup), 0.0)
    with onednn_convolutions(network):
        results["dygraph, oneDNN convolutions"] = (median_images_s(dygraph, batch, steps, warmup),
                                                    float(np.abs(dygraph() - reference).max()))
    prefix = os.path.join(folder, spec["name"], "model")
    with quiet_native_logs():
        paddle.jit.save(network, prefix, input_spec=[paddle.static.InputSpec([None, 3, size, size], "float32",
                                                                             "image")])
    for onednn in (False, True):
        infer = predictor_call(prefix, onednn, threads, x)
        with quiet_native_logs():
            logits = infer()
            speed = median_images_s(infer, batch, steps, warmup)
        results["Paddle Inference" + (", oneDNN" if onednn else "")] = (speed, float(np.abs(logits - reference).max()))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                        help=f"model[:attention]@SIZExBATCH specs (default: {DEFAULT_MODELS})")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: every available core)")
    args = parser.parse_args(argv)
    select_device("cpu", num_threads=args.threads)
    from simam_paddle._paddle import num_threads

    threads = num_threads()
    print(f"paddle {paddle.__version__} on {describe_device()}, evaluation images/s, median of {args.steps} "
          f"batches after {args.warmup}; in brackets: largest logit difference to dygraph\n")
    print("| network | image px | batch | dygraph | dygraph, oneDNN convolutions | Paddle Inference "
          "| Paddle Inference, oneDNN |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for text in args.models:
            spec = parse_spec(text, args.steps)
            found = measure(spec, args.steps, args.warmup, threads, folder)
            cells = " | ".join(f"{speed:.1f} ({diff:.0e})" if name != "dygraph" else f"{speed:.1f}"
                               for name, (speed, diff) in found.items())
            label = spec["name"] + (f":{spec['attention']}" if spec["attention"] else "")
            print(f"| {label} | {spec['image_size']} | {spec['batch_size']} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
