"""What the tests of the official checkpoints share: the fixtures in tests/data/official/ and their logits.

The fixtures were written by torch.save from the official code's networks (see its README); their logits come
from the official networks in eval mode.
"""
import os

import numpy as np
import paddle

DATA = os.path.join(os.path.dirname(__file__), "data", "official")
LOGITS = np.load(os.path.join(DATA, "official_cifar_resnet20_logits.npz"))
# fixture file -> the official --attention_type it was trained with
FIXTURES = {
    "official_cifar_resnet20_none.pth.tar": "none",
    "official_cifar_resnet20_simam.pth.tar": "simam",
    "official_cifar_resnet20_se.pth.tar": "se",
    "official_cifar_resnet20_cbam.pth.tar": "cbam",
    "official_cifar_resnet20_simam_legacy.pth.tar": "simam",
    "official_cifar_resnet20_simam_release_style.pth": "simam",
}


def relative_error(network, attention):
    with paddle.no_grad():
        got = network(paddle.to_tensor(LOGITS["input"])).numpy()
    expected = LOGITS[f"logits_{attention}"]
    return float(np.abs(got - expected).max() / np.abs(expected).max())


def one_line(err):
    message = str(err.value)
    assert message and "\n" not in message, message
    return message


def error_line(capsys):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and "Warning" not in ln and "warnings.warn" not in ln]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]
