import numpy as np
import paddle
import pytest

from simam_paddle.engine.acceleration import OneDNNCompileError
from simam_paddle.engine.acceleration import onednn_available, onednn_convolutions
from simam_paddle.engine.history import read_history
from simam_paddle.engine.device import seed_everything, select_device
from simam_paddle.config import TrainConfig
from simam_paddle.engine.training import make_optimizer, resolve_config, train
from simam_paddle.models.zoo import build_model

pytestmark = [pytest.mark.skipif(not onednn_available(), reason="this Paddle has no oneDNN kernels"),
              pytest.mark.paddle3(reason="oneDNN convolutions are refused on Paddle 2.6 (tests/test_paddle26.py)")]


COMPILED = {"_convolution", "_convolution_and_bias"}  # what the context puts on each convolution


@pytest.fixture(autouse=True)
def cpu():
    select_device("cpu")


def small_net():
    nn = paddle.nn
    return nn.Sequential(nn.Conv2D(3, 8, 3, padding=1, bias_attr=False), nn.BatchNorm2D(8), nn.ReLU(),
                         nn.Conv2D(8, 8, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2D(1), nn.Flatten(), nn.Linear(8, 2))


def first_steps(onednn, name="cifar_resnet20", attention=None, size=32, steps=2, evaluate_first=False):
    seed_everything(0)
    net = build_model(name, 10, attention=attention)
    net.train()
    # A small LR: at 0.1 two steps of ResNet-20 on 8 images already amplify float32 rounding to 3e-3
    # (Paddle's own kernels against float64, too).
    optimizer = make_optimizer(net.parameters(), 0.01, epochs=1, steps_per_epoch=steps, weight_decay=1e-4)
    rng = np.random.RandomState(0)
    x = paddle.to_tensor(rng.randn(8, 3, size, size).astype("float32"))
    y = paddle.to_tensor(rng.randint(0, 10, [8, 1]).astype("int64"))
    losses = []
    with onednn_convolutions(net, onednn):
        if evaluate_first:  # an evaluation pass (no gradients) before the first training step
            net.eval()
            with paddle.no_grad():
                net(x)
            net.train()
        for _ in range(steps):
            loss = paddle.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            losses.append(float(loss))
    weights = {k: v.numpy() for k, v in net.state_dict().items()}
    return losses, weights


@pytest.mark.parametrize("name,attention,size", [("cifar_resnet20", None, 32), ("cifar_resnet20", "simam", 32),
                                                 ("towernet", "se", 128)])
def test_same_losses_and_weights_as_dygraph_kernels(name, attention, size):
    plain_losses, plain = first_steps(False, name, attention, size)
    fast_losses, fast = first_steps(True, name, attention, size)
    np.testing.assert_allclose(fast_losses, plain_losses, rtol=1e-4)
    assert fast.keys() == plain.keys()
    for key in plain:
        np.testing.assert_allclose(fast[key], plain[key], rtol=1e-3, atol=5e-4, err_msg=key)


def test_a_biased_convolution_has_paddles_gradients_and_numpys_bias_gradient():
    """Training adds the bias outside the compiled program, evaluation inside it: both must give Paddle's
    outputs, and the bias gradient of sum(out * g) is g summed over batch and space (numpy)."""
    rng = np.random.RandomState(0)
    conv = paddle.nn.Conv2D(4, 6, 3, stride=2, padding=1)
    conv.bias.set_value(rng.randn(6).astype("float32"))
    x = paddle.to_tensor(rng.randn(3, 4, 9, 9).astype("float32"))
    g = rng.randn(*conv(x).shape).astype("float32")

    def gradients():
        out = conv(x)
        (out * paddle.to_tensor(g)).sum().backward()
        grads = conv.weight.grad.numpy().copy(), conv.bias.grad.numpy().copy()
        conv.clear_gradients()
        with paddle.no_grad():
            evaluated = conv(x).numpy()
        return out.numpy(), evaluated, grads

    out, evaluated, (weight_grad, bias_grad) = gradients()
    with onednn_convolutions(conv) as switched:
        fast_out, fast_evaluated, (fast_weight_grad, fast_bias_grad) = gradients()
    assert switched == 1
    np.testing.assert_allclose(fast_out, out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast_evaluated, evaluated, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast_weight_grad, weight_grad, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fast_bias_grad, g.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-4)


def test_channel_bias_is_numpys_broadcast_sum_with_its_gradients():
    from simam_paddle.engine.acceleration import _ChannelBias

    rng = np.random.RandomState(1)
    x_np, b_np, g_np = rng.randn(3, 5, 4, 6), rng.randn(5), rng.randn(3, 5, 4, 6)
    x = paddle.to_tensor(x_np.astype("float32"), stop_gradient=False)
    b = paddle.to_tensor(b_np.astype("float32"), stop_gradient=False)
    out = _ChannelBias.apply(x, b)
    np.testing.assert_allclose(out.numpy(), x_np + b_np[None, :, None, None], rtol=1e-6, atol=1e-6)
    (out * paddle.to_tensor(g_np.astype("float32"))).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), g_np, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), g_np.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-5)


def test_channels_last_and_other_padding_stay_on_paddle_kernels():
    """Paddle 3.3.1's oneDNN program returns a channels-last convolution's output channels-first."""
    channels_last = paddle.nn.Conv2D(3, 4, 3, data_format="NHWC")
    reflecting = paddle.nn.Conv2D(3, 4, 3, padding=1, padding_mode="reflect")
    for conv, shape, want in ((channels_last, [2, 8, 8, 3], [2, 6, 6, 4]), (reflecting, [2, 3, 8, 8], [2, 4, 8, 8])):
        with onednn_convolutions(conv) as switched:
            assert switched == 0 and type(conv) is paddle.nn.Conv2D
            assert list(conv(paddle.rand(shape)).shape) == want


def test_switches_every_conv_and_undoes_it():
    net = small_net()
    flag = paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]
    with onednn_convolutions(net) as switched:
        assert switched == 2
        assert paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"] is True
        net(paddle.rand([2, 3, 8, 8]))
    assert paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"] == flag
    for conv in (net[0], net[3]):
        assert type(conv) is paddle.nn.Conv2D and not COMPILED & conv.__dict__.keys()


def test_disabled_changes_nothing():
    net = small_net()
    with onednn_convolutions(net, enabled=False) as switched:
        assert switched == 0
        assert type(net[0]) is paddle.nn.Conv2D and not COMPILED & net[0].__dict__.keys()


def test_batch_and_image_size_may_change():
    net = small_net()
    net.eval()
    with onednn_convolutions(net):
        for shape in ([2, 3, 8, 8], [5, 3, 12, 10]):
            x = paddle.rand(shape)
            with paddle.no_grad():
                fast = net(x).numpy()
            assert fast.shape == (shape[0], 2)
    np.testing.assert_allclose(fast, net(x).numpy(), rtol=1e-4, atol=1e-5)


class _ConvKinds(paddle.callbacks.Callback):
    def __init__(self, conv):
        super().__init__()
        self.conv, self.kinds = conv, set()

    def on_train_batch_begin(self, step, logs=None):
        self.kinds.add(type(self.conv).__name__)


@pytest.mark.parametrize("onednn", [True, False, None])
def test_train_switch(tmp_path, onednn):
    """None, the default, is on (this module only runs where oneDNN is available on Paddle 3)."""
    rng = np.random.RandomState(0)
    x = rng.rand(16, 3, 8, 8).astype("float32")
    y = (x[:, 0].mean(axis=(1, 2)) > 0.5).astype("int64")
    data = paddle.io.TensorDataset([paddle.to_tensor(x), paddle.to_tensor(y)])
    seed_everything(0)
    net = small_net()
    kinds = _ConvKinds(net[0])
    config = resolve_config(TrainConfig(epochs=2, batch_size=8, lr=0.1, weight_decay=1e-4, device="cpu", onednn=onednn))
    train(net, data, data, config=config, output_dir=str(tmp_path / "run"), verbose=0, callbacks=[kinds])
    assert kinds.kinds == ({"Conv2D"} if onednn is False else {"_OneDNNConv2D"})
    assert type(net[0]) is paddle.nn.Conv2D  # undone after training
    test_train_switch.history = getattr(test_train_switch, "history", {})
    test_train_switch.history[onednn] = read_history(str(tmp_path / "run"))


def test_train_switch_same_history():
    histories = getattr(test_train_switch, "history", {})
    if len(histories) < 2:
        pytest.skip("needs both runs of test_train_switch")
    on, off = histories[True], histories[False]
    for row_on, row_off in zip(on, off):
        assert row_on["loss"] == pytest.approx(row_off["loss"], rel=1e-3)
        assert row_on["eval_acc"] == pytest.approx(row_off["eval_acc"])


def test_hooks_run_on_the_compiled_output_and_not_while_compiling():
    net = small_net()
    net.eval()  # BatchNorm with its running statistics: the hook's doubling shows in the output
    x = paddle.rand([2, 3, 8, 8])
    want = net(x).numpy()
    seen = []

    def double(layer, inputs, output):
        seen.append(type(layer).__name__)
        return output * 2

    net[0].register_forward_post_hook(double)
    doubled = net(x).numpy()
    seen.clear()
    with onednn_convolutions(net) as switched:
        assert switched == 2 and seen == []  # compiling runs no hook
        fast = net(x).numpy()
    assert seen == ["_OneDNNConv2D"]
    np.testing.assert_allclose(fast, doubled, rtol=1e-4, atol=1e-5)
    assert np.abs(doubled - want).max() > 1e-3  # the hook changes the output


def test_simam_resnet20_on_onednn_has_float64s_gradients_and_counts_every_convolution():
    """SimAM rides on each block's conv2 through a forward post-hook; those 9 convolutions run on oneDNN like the
    other 12, and the gradients are float64's within float32 rounding, as Paddle's own kernels (3e-6 on this batch).

    A small batch on purpose: on larger ones (8 or 16 images) Paddle's own float32 kernels are up to 1e-2 off
    float64 where a ReLU input lies within rounding of 0 (see the acceleration module docstring), which
    says nothing about the kernels; this batch has no such case (benchmarks/onednn_hooks.py)."""
    from simam_paddle.engine.acceleration import convolution_kernels, gradient_check_batch, relative_gradient_difference

    generator, batch = gradient_check_batch([2, 3, 32, 32], seed=0)
    labels = paddle.to_tensor(generator.integers(0, 10, [2, 1]))
    paddle.seed(0)
    net = build_model("cifar_resnet20", 10, attention="simam")
    net.train()
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    reference = build_model("cifar_resnet20", 10, attention="simam")
    reference.to(dtype="float64")
    reference.set_state_dict({k: v.astype("float64") for k, v in state.items()})
    reference.train()
    paddle.nn.functional.cross_entropy(reference(paddle.to_tensor(batch.astype("float64"))), labels).backward()
    with onednn_convolutions(net) as switched:
        paddle.nn.functional.cross_entropy(net(paddle.to_tensor(batch)), labels).backward()
        assert switched == 21 and convolution_kernels(net) == (21, 0)
    assert type(net.layer1[0].conv2) is paddle.nn.Conv2D  # undone
    grads = [{k: p.grad.numpy().astype("float64") for k, p in model.named_parameters() if not p.stop_gradient}
             for model in (reference, net)]
    assert relative_gradient_difference(*grads) < 2e-5


def test_gradient_error_is_small_where_onednn_agrees_and_leaves_the_network_as_it_was():
    from simam_paddle.engine.acceleration import onednn_gradient_error

    net = small_net()
    net.train()
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    rng = paddle.get_rng_state()
    error = onednn_gradient_error(net, [4, 3, 16, 16])
    assert 0 <= error < 1e-4
    after = net.state_dict()
    for key, value in before.items():  # weights and BatchNorm statistics
        np.testing.assert_array_equal(after[key].numpy(), value, err_msg=key)
    assert all(p.grad is None for p in net.parameters())
    drawn = paddle.rand([4]).numpy()  # the random stream goes on from where it was
    paddle.set_rng_state(rng)
    np.testing.assert_array_equal(drawn, paddle.rand([4]).numpy())
    assert type(net[0]) is paddle.nn.Conv2D


def test_gradient_error_measures_a_difference_between_the_two_paths(monkeypatch):
    """A stand-in for the oneDNN path that scales the first convolution's weight by 1.01: the loss is
    then no longer the same function, and the error must say so (about 1e-2, well above rounding)."""
    import contextlib

    from simam_paddle.engine import acceleration

    @contextlib.contextmanager
    def skewed(network, enabled=True):
        conv = network[0]
        original = conv.weight.numpy().copy()
        if enabled:
            conv.weight.set_value(original * 1.01)
        try:
            yield 1
        finally:
            conv.weight.set_value(original)

    monkeypatch.setattr(acceleration, "onednn_convolutions", skewed)
    net = small_net()
    net.train()
    assert 1e-3 < acceleration.onednn_gradient_error(net, [4, 3, 16, 16]) < 1.0


def test_a_failing_compile_is_retried_then_stops_with_a_clear_error(monkeypatch):
    """Paddle's to_static once failed inside training ("Function: forward doesn't exist in the Module
    transformed from AST"); the context compiles on entry, tries again, and stops rather than run on other
    kernels than asked for (the failure a run would not show: it used to fall back to Paddle's kernels)."""
    net = small_net()
    x = paddle.rand([2, 3, 8, 8])
    want = net(x).numpy()
    real = paddle.jit.to_static
    from simam_paddle.engine import acceleration

    def breaking_to_static(function, *args, **kwargs):
        if function.__name__ == "_convolution_and_bias":  # every try of every conv's evaluation program fails

            def broken(*a, **k):
                raise ValueError("Function: forward doesn't exist in the Module transformed from AST.")

            return broken
        return real(function, *args, **kwargs)

    monkeypatch.setattr(paddle.jit, "to_static", breaking_to_static)
    # Programs are shared by every convolution of a kind for the process: start from none compiled.
    monkeypatch.setattr(acceleration, "_PROGRAMS", {})
    flag = paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"]
    with pytest.warns(RuntimeWarning, match="trying again"):
        with pytest.raises(OneDNNCompileError, match="transformed from AST.*3 tries.*--no-onednn"):
            with onednn_convolutions(net):
                pass
    assert paddle.get_flags(["FLAGS_use_mkldnn"])["FLAGS_use_mkldnn"] == flag
    np.testing.assert_allclose(net(x).numpy(), want, rtol=1e-5, atol=1e-6)
    for conv in (net[0], net[3]):
        assert type(conv) is paddle.nn.Conv2D and not COMPILED & conv.__dict__.keys()
    # The biased convolution's kind failed to compile and is not kept for the next network; the other one is.
    assert [has_bias for *_, has_bias in acceleration._PROGRAMS] == [False]


@pytest.mark.parametrize("network", [("cifar_resnet20", None, 32), ("towernet", "se", 128)])
def test_an_evaluation_before_training_keeps_the_convolution_gradients(network):
    """The context compiles each convolution on entry; a later first call under no_grad (an evaluation
    before any training step; TowerNet's biased convolutions have an evaluation program of their own)
    must not change what training then computes."""
    plain_losses, plain = first_steps(False, *network)
    fast_losses, fast = first_steps(True, *network, evaluate_first=True)
    np.testing.assert_allclose(fast_losses, plain_losses, rtol=1e-4)
    for key in plain:
        np.testing.assert_allclose(fast[key], plain[key], atol=5e-4, err_msg=key)


def test_training_says_how_many_convolutions_run_on_onednn(tmp_path, capsys):
    rng = np.random.RandomState(0)
    x = paddle.to_tensor(rng.rand(8, 3, 8, 8).astype("float32"))
    data = paddle.io.TensorDataset([x, paddle.to_tensor(rng.randint(0, 2, [8, 1]).astype("int64"))])
    words_on = ", 2 convolutions on oneDNN kernels (given a 1 x 1 map, Paddle's; onednn=False: Paddle's)"
    for onednn, words in ((None, words_on), (False, "")):
        config = resolve_config(TrainConfig(epochs=1, batch_size=4, weight_decay=1e-4, device="cpu", onednn=onednn))
        train(small_net(), data, data, config=config, output_dir=str(tmp_path / f"run_{onednn}"), verbose=2)
        lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("training on ")]
        assert len(lines) == 1, lines
        assert lines[0].endswith(words) if words else "oneDNN" not in lines[0], lines


def test_networks_share_one_program_per_kind_of_convolution(monkeypatch):
    """A process that trains run after run compiles each kind of convolution once: the programs take the
    weights as inputs, so a second network of the same architecture compiles nothing (a program per layer
    kept its memory for the life of the process: benchmarks/compile_stress.py)."""
    from simam_paddle.engine import acceleration

    monkeypatch.setattr(acceleration, "_PROGRAMS", {})
    real, made = paddle.jit.to_static, []

    def counting_to_static(function, *args, **kwargs):
        made.append(function.__name__)
        return real(function, *args, **kwargs)

    monkeypatch.setattr(paddle.jit, "to_static", counting_to_static)
    first, second = (build_model("cifar_resnet20", 10, attention="se", attention_kwargs={"reduction": 4})
                     for _ in range(2))
    convs = [m for m in first.sublayers() if type(m) is paddle.nn.Conv2D]
    kinds = {(c._in_channels, tuple(c.weight.shape), tuple(c._stride), c.bias is not None) for c in convs}
    with onednn_convolutions(first) as switched:
        pass
    assert switched == len(convs) > len(kinds) == len(acceleration._PROGRAMS)
    # one program per kind, and one more for the evaluation program of a kind with a bias
    assert len(made) == len(kinds) + sum(has_bias for *_, has_bias in kinds)
    compiled, x = len(made), paddle.rand([2, 3, 32, 32])
    second.eval()
    with onednn_convolutions(second) as switched_again, paddle.no_grad():
        fast = second(x).numpy()  # the second network's own weights through the shared programs
    assert switched_again == len(convs) and len(made) == compiled
    np.testing.assert_allclose(fast, second(x).numpy(), rtol=1e-4, atol=1e-5)


def test_a_one_pixel_map_runs_on_paddles_kernel_and_is_recorded_as_such():
    """SE's and CBAM's channel MLPs see 1 x 1 maps, where Paddle's kernel is faster than a oneDNN program: the
    convolution takes it there (same values and gradients as Paddle's kernel) and the record says so."""
    from simam_paddle.engine.acceleration import convolution_kernels

    paddle.seed(0)
    conv = paddle.nn.Conv2D(4, 16, 1)
    x = paddle.rand([8, 4, 1, 1])
    x.stop_gradient = False
    plain = conv(x)
    plain.sum().backward()
    want = (plain.numpy(), x.grad.numpy().copy(), conv.weight.grad.numpy().copy())
    conv.clear_gradients()
    x.clear_gradient()
    with onednn_convolutions(conv) as switched:
        out = conv(x)
        out.sum().backward()
        one_pixel = convolution_kernels(conv)
        conv(paddle.rand([2, 4, 3, 3]))  # a larger map: the compiled program
        larger = convolution_kernels(conv)
        conv(paddle.rand([2, 4, 3, 3]))
        conv(paddle.rand([2, 4, 1, 1]))  # both kinds in one period: not all on oneDNN, so Paddle's
        both = convolution_kernels(conv)
    assert switched == 1
    assert (one_pixel, larger, both) == ((0, 1), (1, 0), (0, 1))
    for got, expected in zip((out.numpy(), x.grad.numpy(), conv.weight.grad.numpy()), want):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
