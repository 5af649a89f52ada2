"""simam_paddle.engine.device: seeds, the device and its CPU threads, and how they are described."""
import os
import random

import numpy as np
import paddle
import pytest

from simam_paddle._paddle import num_threads
from simam_paddle.engine.device import describe_device, resolve_device, seed_everything, select_device

HAS_GPU = paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


@pytest.fixture
def restore_threads():
    before = num_threads()
    yield
    paddle.base.core.set_num_threads(before)
    paddle.set_device("cpu")


def _draws():
    return random.random(), float(np.random.rand()), paddle.rand([3]).numpy().tolist()


def test_seed_everything_repeats_every_generator():
    seed_everything(123)
    first = _draws()
    seed_everything(123)
    assert _draws() == first
    seed_everything(124)
    other = _draws()
    # Each generator on its own: a seed that reached only one of them would leave the others repeating.
    assert all(a != b for a, b in zip(first, other))


def test_select_device_cpu_uses_every_core_this_process_may_use(restore_threads):
    paddle.base.core.set_num_threads(1)
    assert select_device("cpu") == "cpu"
    assert num_threads() == len(os.sched_getaffinity(0))


def test_select_device_sets_the_threads_asked_for_and_describes_them(restore_threads):
    select_device("cpu", num_threads=1)
    assert (num_threads(), describe_device()) == (1, "cpu with 1 thread")
    select_device("cpu", num_threads=3)
    assert (num_threads(), describe_device()) == (3, "cpu with 3 threads")


def test_resolve_device_sets_nothing(restore_threads):
    select_device("cpu", num_threads=1)
    assert resolve_device("cpu") == "cpu"
    assert num_threads() == 1


@pytest.mark.skipif(HAS_GPU, reason="a machine with a GPU resolves auto to it")
def test_auto_is_the_cpu_without_a_gpu():
    assert resolve_device("auto") == "cpu"


@pytest.mark.skipif(HAS_GPU, reason="the error is for a machine without a GPU")
@pytest.mark.parametrize("device", ["gpu", "gpu:0"])
def test_a_gpu_this_machine_lacks_is_refused_with_the_fix(device):
    with pytest.raises(ValueError, match=rf"device '{device}' asked for.*(sees no GPU|is a CPU build).*'cpu' or 'auto'"):
        resolve_device(device)


@pytest.mark.parametrize("device", ["tpu", "CPU", ""])
def test_unknown_devices_name_the_known_ones(device):
    with pytest.raises(ValueError, match=r"unknown device .*expected 'auto', 'cpu' or 'gpu'"):
        resolve_device(device)
