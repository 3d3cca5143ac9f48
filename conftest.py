"""Test-run defaults: smoke-sized notebooks on the CPU, figures without a screen.

These are defaults only; an explicit AUTOENC_SMOKE / AUTOENC_DEVICE / AUTOENC_CHECKPOINTS in the
environment wins.
The notebook kernels that nbval starts inherit them.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("AUTOENC_SMOKE", "1")
os.environ.setdefault("AUTOENC_DEVICE", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

# Checkpoints of this test run go to a fresh folder, removed at the end: every notebook takes the
# learner's first-run path (train, then save), and no test loads a model that an earlier run trained.
if "AUTOENC_CHECKPOINTS" not in os.environ:
    _checkpoints = tempfile.mkdtemp(prefix="autoenc-test-")
    atexit.register(shutil.rmtree, _checkpoints, ignore_errors=True)
    os.environ["AUTOENC_CHECKPOINTS"] = os.path.join(_checkpoints, "checkpoints")
