"""Argument checks shared by the package, so every bad value gets the same kind of clear message.

Each check returns the value it accepted (as a plain Python number) or raises ``ValueError`` naming
the argument, the value it got and what was expected. ``True`` and ``False`` are never accepted as
numbers: ``latent_dim=True`` is a slip, not a size of 1. ``why``, where a check takes it, is added to
the message in brackets: what the bound comes from.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["positive_int", "positive_ints", "integer", "index", "number"]


def _because(why: str) -> str:
    return f" ({why})" if why else ""


def integer(value, name: str, *, low: int | None = None, high: int | None = None, why: str = "") -> int:
    """``value`` as an int in [low, high] (either bound may be left open with None)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or (low is not None and value < low) or (high is not None and value > high):
        wanted = ("an int" if low is None and high is None else f"an int >= {low}" if high is None
                  else f"an int <= {high}" if low is None else f"an int from {low} to {high}")
        raise ValueError(f"{name} must be {wanted}{_because(why)}, got {value!r}")
    return int(value)


def positive_int(value, name: str, why: str = "") -> int:
    """``value`` as an int > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int{_because(why)}, got {value!r}")
    return int(value)


def index(value, name: str, size: int, what: str = "an int") -> int:
    """``value`` as an int in 0..size-1 (a position, a class, a choice among ``size``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < size:
        raise ValueError(f"{name} must be {what} in 0..{size - 1}, got {value!r}")
    return int(value)


def positive_ints(values, name: str, count: int | None = None) -> tuple[int, ...]:
    """``values`` as a tuple of ints > 0 (exactly ``count`` of them when given, else at least one)."""
    try:
        values = tuple(values)
    except TypeError:
        values = None
    wanted = f"{count} positive ints" if count else "one or more positive ints"
    if values is None or (count and len(values) != count) or not values or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0 for v in values):
        raise ValueError(f"{name} must be {wanted}, got {values if values is not None else name!r}")
    return tuple(int(v) for v in values)


def number(value, name: str, *, low: float | None = None, high: float | None = None,
           above: float | None = None, below: float | None = None, why: str = "") -> float:
    """``value`` as a finite float in [low, high], or strictly above ``above`` / below ``below``.

    Any bound may be left open with None; ``low`` and ``above`` (``high`` and ``below``) are alternatives.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or (low is not None and value < low) or (high is not None and value > high) \
            or (above is not None and value <= above) or (below is not None and value >= below):
        left = f"[{low:g}" if low is not None else f"({above:g}" if above is not None else "(-inf"
        right = f"{high:g}]" if high is not None else f"{below:g})" if below is not None else "inf)"
        raise ValueError(f"{name} must be a finite number in {left}, {right}{_because(why)}, got {value!r}")
    return float(value)
