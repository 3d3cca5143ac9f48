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

# Under pytest-xdist (README's test command: two worker processes), each worker and the kernels and
# subprocesses it starts compute on one thread: two 2-thread torch processes on a 2-core machine would
# make their threads spin against each other (5-10x slower), two 1-thread processes use both cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

# Checkpoints of this test run go to a fresh folder, removed at the end: every notebook takes the
# learner's first-run path (train, then save), and no test loads a model that an earlier run trained.
if "AUTOENC_CHECKPOINTS" not in os.environ:
    _checkpoints = tempfile.mkdtemp(prefix="autoenc-test-")
    atexit.register(shutil.rmtree, _checkpoints, ignore_errors=True)
    os.environ["AUTOENC_CHECKPOINTS"] = os.path.join(_checkpoints, "checkpoints")
