"""The GPU toggle and seeding.

``AUTOENC_DEVICE`` chooses where models and batches live: ``auto`` (the
default) takes CUDA, then Apple's MPS, then the CPU. A notebook may override it
in its settings cell with ``DEVICE = ah.get_device("cpu")``. Nothing else in the
course calls ``.cuda()``: every helper takes the device it is given.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from .validate import integer

__all__ = ["CHOICES", "get_device", "set_seed", "describe_device"]

CHOICES = ("auto", "cpu", "cuda", "mps")

# Adam with an L2 weight decay drives the weights of dead units geometrically towards zero, until they
# become denormal floats (below 1.2e-38), which a CPU handles many times slower: measured here, an epoch
# of lesson 01's MLP grew from 1 s to 8 s over ten epochs. Flushing denormals to zero changes no result
# that matters and keeps every epoch at 1 s. It is set at import, before torch starts its CPU worker
# threads, because each thread inherits the setting when it is created and never looks again.
torch.set_flush_denormal(True)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def get_device(preference: str | None = None, *, verbose: bool = True) -> torch.device:
    """Return the torch device to train on.

    preference: ``"auto" | "cpu" | "cuda" | "mps"``, or None to read
    ``AUTOENC_DEVICE`` (default ``"auto"``). Asking for a device this machine
    does not have is an error, not a silent fall-back, so a learner who wants the
    GPU learns at once that the runtime has none.
    """
    source = "argument"
    if preference is None:
        preference = os.environ.get("AUTOENC_DEVICE", "auto")
        source = "AUTOENC_DEVICE"
    choice = str(preference).strip().lower()
    if choice not in CHOICES:
        raise ValueError(f"device {preference!r} (from {source}) is not one of {CHOICES}")

    if choice == "auto":
        if torch.cuda.is_available():
            device = torch.device("cuda")
        elif _mps_available():
            device = torch.device("mps")
        else:
            device = torch.device("cpu")
    elif choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "device 'cuda' was asked for, but torch sees no CUDA GPU here "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}). "
            "On Colab choose Runtime > Change runtime type > GPU; elsewhere use 'auto' or 'cpu'."
        )
    elif choice == "mps" and not _mps_available():
        raise RuntimeError("device 'mps' was asked for, but this machine has no Apple MPS backend; use 'auto' or 'cpu'")
    else:
        device = torch.device(choice)

    if verbose:
        print(f"device: {describe_device(device)} (asked for {choice!r} via {source})")
    return device


def describe_device(device: torch.device) -> str:
    """A one-line human description, e.g. ``cuda (NVIDIA H100)`` or ``cpu (2 threads)``."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def set_seed(seed: int = 0) -> torch.Generator:
    """Seed python, numpy and torch (all devices) so that a rerun prints the same numbers.

    Returns a CPU ``torch.Generator`` seeded the same way, for code that wants
    its own stream of random numbers.
    """
    integer(seed, "seed", low=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)
