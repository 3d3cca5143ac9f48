"""Test-run defaults: smoke-sized notebooks on the CPU, figures without a screen.

These are defaults only; an explicit AUTOENC_SMOKE / AUTOENC_DEVICE in the environment wins.
The notebook kernels that nbval starts inherit them.
"""

import os

os.environ.setdefault("AUTOENC_SMOKE", "1")
os.environ.setdefault("AUTOENC_DEVICE", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
