"""Claims that the run checks: a sentence of a lesson that states a measured result, tested by the run.

A lesson writes "the denoiser beats the plain autoencoder at every noise level" only if the run
that made its outputs showed it. So, in the code cell that measured it, the lesson states the claim
once more, in code::

    ah.expect(dae_psnr > ae_psnr, "the denoiser beats the plain autoencoder at every noise level",
              dae_db=dae_psnr, plain_db=ae_psnr)

- In a full run, a true claim prints one line that starts with a check mark, the claim and the
  values behind it, so a reader sees what was checked.
- A false claim, when the notebook runner made the run (``python3 tools/notebooks.py run``
  sets ``AUTOENC_CLAIMS=raise``), raises :class:`ClaimError`, which names the claim and the values:
  the run fails instead of storing a lesson whose text is untrue.
- A false claim in a learner's own session prints one line that starts with a cross, the claim and
  the values, and the notebook goes on: after a change of settings the run may rightly show
  something other than the text, which describes the lesson's own settings.
- In smoke mode (``AUTOENC_SMOKE=1``, tiny data and one epoch) the numbers mean nothing, so the
  claim is only printed as not checked; the cell still runs the same code.

Tolerances belong in the condition and must survive a rerun on another CPU: write
``gap_db > 1.0`` rather than ``gap_db == 3.02``. A difference that is within run-to-run noise is
not a claim: say so in the prose, or measure it over several seeds.
"""

from __future__ import annotations

import math
import numbers

import torch

from .config import claims_raise, is_smoke

__all__ = ["ClaimError", "expect"]

CHECKED, UNCHECKED, FALSE = "✔", "○", "✘"


class ClaimError(AssertionError):
    """A lesson's sentence about its own results is false in this run."""


def _show(value) -> str:
    """A value as a short, readable string (a float to 4 significant digits; a small tensor as a list)."""
    if torch.is_tensor(value):
        value = value.item() if value.numel() == 1 else value.tolist()
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):       # numpy scalars and arrays
        value = value.tolist()
    if isinstance(value, bool) or isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_show(v) for v in value[:8]) + (", ..." if len(value) > 8 else "")
        return f"[{inner}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _truth(condition) -> bool:
    """``condition`` as a bool; a tensor or array must hold a single value (use ``.all()`` for many)."""
    if hasattr(condition, "shape"):                                           # a tensor or a numpy value
        if math.prod(condition.shape) != 1:
            raise TypeError(f"expect needs one true-or-false value, got an array of shape "
                            f"{tuple(condition.shape)}; use (...).all() or (...).any() to say which you mean")
        return bool(condition.item())
    if not isinstance(condition, (bool, numbers.Integral)):
        raise TypeError(f"expect needs a condition that is True or False, got {type(condition).__name__} "
                        f"{condition!r}")
    return bool(condition)


def expect(condition, claim: str, **values) -> bool | None:
    """Check ``claim``, a sentence of the lesson, against this run: ``condition`` must be true.

    condition: the claim written as code (a bool, or a one-element tensor or array).
    claim: the sentence as the prose states it, in a few words.
    values: the measured numbers the claim rests on, by name; they are printed with the claim, and
        named in the error when it is false.

    Returns True after printing the checked claim (full mode), None after printing that it was not
    checked (smoke mode), False after printing that this run does not show it (a learner's session).
    Raises :class:`ClaimError` when the claim is false in a full run made by the notebook runner
    (``AUTOENC_CLAIMS=raise``).
    """
    if not isinstance(claim, str) or not claim.strip():
        raise ValueError(f"expect needs the claim as a sentence (a non-empty str), got {claim!r}")
    shown = ", ".join(f"{name} = {_show(value)}" for name, value in values.items())
    if is_smoke():
        print(f"{UNCHECKED} not checked (smoke mode: tiny data, the numbers mean nothing): {claim}")
        return None
    if not _truth(condition):
        if claims_raise():
            raise ClaimError(f"the lesson says '{claim}', but this run does not show it"
                             + (f" ({shown})" if shown else "")
                             + ". Change the text to say what the run shows, or find out what changed.")
        print(f"{FALSE} not shown by this run: {claim}" + (f" ({shown})" if shown else "")
              + ". The text describes the lesson's own settings; if you changed one, this is your finding.")
        return False
    print(f"{CHECKED} {claim}" + (f" ({shown})" if shown else ""))
    return True
