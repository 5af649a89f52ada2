"""This checkout's Python and command line in a fresh process, for tests of what a user's process sees
(import side effects, stderr, signals, compiled-operator caches)."""
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Optional

ROOT = Path(__file__).resolve().parents[1]


def environment(changes: Optional[Mapping[str, Optional[str]]] = None) -> dict:
    """``os.environ`` with ``changes`` applied; a value of None removes that variable."""
    env = dict(os.environ)
    for key, value in (changes or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_python(code: str, *args: str, env: Optional[Mapping[str, Optional[str]]] = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -c code args`` from the repository root; waits, captures stdout and stderr as text."""
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=environment(env),
                          capture_output=True, text=True, timeout=timeout)


def start_cli(*args: str, env: Optional[Mapping[str, Optional[str]]] = None) -> subprocess.Popen:
    """``python -m simam_paddle args`` from the repository root, started, with stdout and stderr piped as text.

    The command starts with Ctrl-C (SIGINT) at its default, as when typed in a terminal, also when the tests
    themselves run in a background job (``pytest &``), whose commands inherit SIGINT ignored."""
    return subprocess.Popen([sys.executable, "-m", "simam_paddle", *args], cwd=ROOT, env=environment(env),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
