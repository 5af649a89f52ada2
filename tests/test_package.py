import subprocess
import sys
from pathlib import Path

import pytest

import simam_paddle

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def test_all_names_resolve():
    for name in simam_paddle.__all__:
        assert hasattr(simam_paddle, name), name
    assert len(set(simam_paddle.__all__)) == len(simam_paddle.__all__)


def test_pyproject_never_pulls_a_paddle_wheel():
    # Both wheels provide `paddle`; a hard dependency would install the CPU one over a GPU one.
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(dep.lower().startswith("paddlepaddle") for dep in meta["dependencies"])
    assert any(d.startswith("paddlepaddle-gpu") for d in meta["optional-dependencies"]["gpu"])


def test_import_has_no_side_effects():
    # Importing must not choose a device, set threads or print.
    code = (
        "import paddle; before = paddle.device.get_device(); "
        "import simam_paddle; assert paddle.device.get_device() == before, 'device changed'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
