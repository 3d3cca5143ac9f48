"""The course's settings: smoke mode (the one place that reads ``AUTOENC_SMOKE``) and how claims are judged.

A notebook never reads environment variables itself. Its settings cell calls
:func:`pick` for every knob that depends on the run's size::

    EPOCHS = ah.pick(full=10, smoke=1)
    N_TRAIN = ah.pick(full=60_000, smoke=2_000)

In a learner's run (the default) ``pick`` returns ``full``. With
``AUTOENC_SMOKE=1`` (what CI sets) it returns ``smoke``, so every notebook runs
top to bottom in seconds while taking exactly the same code paths.

``AUTOENC_CLAIMS`` says what a false claim of a lesson does (:func:`claims_raise`).
"""

from __future__ import annotations

import os

__all__ = ["SMOKE", "is_smoke", "pick", "claims_raise"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def is_smoke() -> bool:
    """Return True when ``AUTOENC_SMOKE`` asks for the small CI-sized run."""
    raw = os.environ.get("AUTOENC_SMOKE", "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(
        f"AUTOENC_SMOKE={raw!r} is not understood; expected one of "
        f"{sorted(_TRUE | _FALSE - {''})} (or unset for the full lesson)"
    )


SMOKE: bool = is_smoke()
"""Smoke mode as it was when the package was imported (what notebooks print)."""


def pick(*, full, smoke):
    """Return ``full`` in a normal run and ``smoke`` in smoke mode.

    Both values are keyword-only so that a settings cell reads as a sentence:
    ``EPOCHS = ah.pick(full=10, smoke=1)``.
    """
    return smoke if is_smoke() else full


def claims_raise() -> bool:
    """Return True when a false claim must stop the run (``AUTOENC_CLAIMS=raise``, set by the notebook runner).

    Unset, or ``warn``: a false claim is printed as one line that starts with a cross and the run goes on.
    That is what a learner wants after changing a setting: the lesson's text describes its own settings,
    and a changed run may show something else without anything being broken.
    """
    raw = os.environ.get("AUTOENC_CLAIMS", "").strip().lower()
    if raw in ("", "warn"):
        return False
    if raw == "raise":
        return True
    raise ValueError(f"AUTOENC_CLAIMS={raw!r} is not understood; expected 'raise' or 'warn' (or unset: warn)")
