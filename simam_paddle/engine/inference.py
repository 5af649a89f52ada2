"""Evaluation and prediction through Paddle Inference: the network saved by ``paddle.jit.save``, run by a predictor.

On the CPU, Paddle Inference with oneDNN runs a trained network several times faster than dygraph
(``benchmarks/bench_inference.py``: ResNet-20 about 2,450 images/s against dygraph's 575, PyTorch's
1,900), because its optimisation passes fuse BatchNorm into the convolutions and run the whole graph on
oneDNN. Its logits equal dygraph's to float32 rounding (about 1e-5 relative), not bit for bit, so an
image whose two best classes lie that close may change class: ``evaluate_run`` and ``predict_images``
therefore keep dygraph as their default and take ``engine="inference"`` when asked.

:class:`InferencePredictor` saves the network into a temporary folder, builds the predictor from it and
removes the folder; nothing is written next to a run's files. It always runs on the CPU.
"""
import os
import tempfile
from typing import Optional

import numpy as np
import paddle

from .._paddle import num_threads
from .._quiet import native_stdout_dropped, quiet_native_logs
from .acceleration import onednn_available

__all__ = ["ENGINES", "InferencePredictor", "check_engine"]

ENGINES = ("dygraph", "inference")
"""How ``evaluate_run`` and ``predict_images`` run a network: dygraph (the default) or Paddle Inference."""


def check_engine(engine: str) -> None:
    """Raise ``ValueError`` unless ``engine`` is one of :data:`ENGINES`.

    Examples:
        >>> check_engine("inference")
    """
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is not one of {list(ENGINES)}")


class InferencePredictor:
    """A network exported with ``paddle.jit.save`` and run by a ``paddle.inference`` predictor on the CPU.

    The network is saved with input ``InputSpec([None, in_channels, S, S], "float32", "image")`` (as
    ``export_run`` writes it), so any batch size is accepted. IR optimisation is on; oneDNN is used
    where this Paddle build has it unless ``onednn=False``; the thread count is Paddle's
    (:func:`simam_paddle._paddle.num_threads`).

    Args:
        network (paddle.nn.Layer): the network, put in eval mode here.
        image_size (int): height and width of the input images.
        in_channels (int, optional): channels of the input images. Default: 3.
        onednn (bool|None, optional): oneDNN kernels: None uses them where the build has them, True
            requires them, False disables them. Default: None.

    Examples:
        >>> net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.Flatten(), paddle.nn.Linear(4, 2))
        >>> predictor = InferencePredictor(net, image_size=3)
        >>> predictor(np.zeros([5, 3, 3, 3], "float32")).shape
        (5, 2)
    """

    def __init__(self, network: paddle.nn.Layer, image_size: int, in_channels: int = 3,
                 onednn: Optional[bool] = None):
        from paddle import inference

        if onednn and not onednn_available():
            raise RuntimeError(f"oneDNN was asked for, but Paddle {paddle.__version__} was built without it; "
                               "pass onednn=None or False")
        self.onednn = onednn_available() if onednn is None else bool(onednn)
        network.eval()
        spec = paddle.static.InputSpec([None, in_channels, image_size, image_size], "float32", "image")
        with tempfile.TemporaryDirectory() as folder, quiet_native_logs():
            prefix = os.path.join(folder, "model")
            paddle.jit.save(network, prefix, input_spec=[spec])
            # Paddle 3 saves its program as model.json, Paddle 2.6 as model.pdmodel.
            program = next(prefix + ext for ext in (".json", ".pdmodel") if os.path.isfile(prefix + ext))
            config = inference.Config(program, prefix + ".pdiparams")
            config.disable_gpu()
            config.disable_glog_info()  # its optimisation passes print a line each otherwise
            config.switch_ir_optim(True)
            config.set_cpu_math_library_num_threads(num_threads())
            # Paddle 3 names the switches enable_onednn/disable_onednn, Paddle 2.6 enable_mkldnn/disable_mkldnn.
            switch = ("enable_" if self.onednn else "disable_") + ("onednn" if hasattr(config, "enable_onednn")
                                                                   else "mkldnn")
            getattr(config, switch)()
            self._predictor = inference.create_predictor(config)  # reads the files: the folder may go
        self._input = self._predictor.get_input_handle(self._predictor.get_input_names()[0])
        self._output = self._predictor.get_output_handle(self._predictor.get_output_names()[0])
        with native_stdout_dropped():  # the first run chooses the kernels, and Paddle 3.3 prints while it does
            self(np.zeros([1, in_channels, image_size, image_size], np.float32))

    def __call__(self, images) -> np.ndarray:
        """Logits of a batch: ``images`` is a ``[N, C, S, S]`` float32 array or tensor; returns ``[N, num_classes]``."""
        if isinstance(images, paddle.Tensor):
            images = images.numpy()
        self._input.reshape(list(images.shape))
        self._input.copy_from_cpu(np.ascontiguousarray(images, dtype=np.float32))
        with quiet_native_logs():
            self._predictor.run()
        return self._output.copy_to_cpu()
