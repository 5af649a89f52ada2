import os

# simam(impl="auto") would otherwise compile the fused operator into the user's cache as a side
# effect of any test that calls it. tests/test_fused.py builds it into a temporary cache and
# turns "auto" back on where it tests it. Subprocesses inherit this.
os.environ.setdefault("SIMAM_PADDLE_FUSED", "0")
