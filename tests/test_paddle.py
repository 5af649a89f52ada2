"""What simam_paddle/_paddle.py says about the installed Paddle: its version and its CPU threads."""
import paddle

from simam_paddle._paddle import is_paddle2, num_threads, openmp_library, paddle_version
from simam_paddle.engine.device import describe_device, select_device


def test_num_threads_follows_what_paddle_is_set_to():
    before = num_threads()
    device = paddle.device.get_device()
    try:
        for threads in (1, 2, 3):
            paddle.base.core.set_num_threads(threads)
            assert num_threads() == threads
        select_device("cpu", num_threads=2)
        assert num_threads() == 2 and describe_device() == "cpu with 2 threads"
    finally:
        paddle.base.core.set_num_threads(before)
        paddle.set_device(device)


def test_the_fused_operator_asks_the_same_runtime():
    from simam_paddle.layers import fused

    assert fused.num_threads is num_threads  # the count the compiled operator is given on every call
    assert fused.openmp_library is openmp_library


def test_version():
    assert paddle_version() >= (2, 6) or paddle_version() == (0, 0)
    assert is_paddle2() == ((0, 0) < paddle_version() < (3, 0))
