"""Exercise checks: run hidden tests on a learner's function and say, in plain words, what is right.

Each ``check_*`` function takes the learner's function, prints one line per
finding and returns True when every hidden test passes. A stub that still
raises ``NotImplementedError`` gets a friendly "not written yet" and False,
never a crash, so a notebook runs top to bottom before the exercises are done.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

__all__ = ["check_conv_output_size", "check_conv_transpose_output_size", "check_per_image_squared_error",
           "check_gaussian_noise", "check_psnr"]

PASS, FAIL = "✅", "❌"


def _report(title: str, failures: list[str], n_cases: int) -> bool:
    if failures:
        print(f"{FAIL} {title}: {len(failures)} of {n_cases} hidden tests failed.")
        for line in failures[:3]:
            print(f"   - {line}")
        if len(failures) > 3:
            print(f"   - ... and {len(failures) - 3} more")
        return False
    print(f"{PASS} {title}: all {n_cases} hidden tests pass.")
    return True


def _call(fn: Callable, args: tuple, title: str) -> tuple[bool, object]:
    """Call the learner's function; turn NotImplementedError into a friendly message."""
    try:
        return True, fn(*args)
    except NotImplementedError:
        print(f"⏳ {title}: not written yet. Replace `raise NotImplementedError` with your code and run the cell again.")
        return False, None


def _check_sizes(fn: Callable, title: str, cases: Iterable[tuple], make_layer: Callable, hint: Callable) -> bool:
    failures: list[str] = []
    cases = list(cases)
    for case in cases:
        size, *layer_args = case
        layer = make_layer(*layer_args)
        with torch.no_grad():
            expected = layer(torch.zeros(1, 1, size, size)).shape[-1]   # what PyTorch itself gives
        try:
            ok, got = _call(fn, case, title)
        except Exception as err:  # the learner's code crashed: report it, do not raise
            failures.append(f"{title.split()[0]}{case} raised {type(err).__name__}: {err}")
            continue
        if not ok:
            return False
        if isinstance(got, bool) or not isinstance(got, int):
            failures.append(f"for {case} you returned {got!r} ({type(got).__name__}); a size is a whole number (int). "
                            "Floor division // keeps it one.")
        elif got != expected:
            failures.append(f"for {case} you returned {got}, PyTorch gives {expected}. {hint(got, expected)}")
    return _report(title, failures, len(cases))


# (size, kernel, stride, padding): the course's own layers first, then others.
_CONV_CASES = [(28, 3, 3, 1), (10, 2, 2, 0), (5, 3, 2, 1), (3, 2, 1, 0), (28, 3, 1, 1), (28, 4, 2, 1), (28, 5, 1, 0),
               (27, 3, 2, 0), (7, 3, 2, 1), (32, 7, 3, 2)]


def check_conv_output_size(fn: Callable[[int, int, int, int], int]) -> bool:
    """Check ``fn(size, kernel, stride, padding)`` against ``nn.Conv2d`` (and ``nn.MaxPool2d``, the same rule)."""

    def hint(got, expected):
        if got == expected - 1:
            return "Off by one: the first window sits at position 0 and counts too (the + 1)."
        if got == expected + 1:
            return "One too many: count the windows that fit, (size + 2*padding - kernel) // stride, then add one."
        return "A window of `kernel` pixels slides over the padded image in steps of `stride`."

    return _check_sizes(fn, "conv_output_size", _CONV_CASES,
                        lambda k, s, p: nn.Conv2d(1, 1, k, stride=s, padding=p), hint)


# (size, kernel, stride, padding): the course's decoder layers first.
_TCONV_CASES = [(2, 3, 2, 0), (5, 5, 3, 1), (15, 2, 2, 1), (7, 4, 2, 1), (14, 4, 2, 1), (3, 3, 1, 0), (1, 7, 1, 0),
                (10, 3, 3, 1), (4, 2, 2, 0), (6, 5, 2, 2)]


def check_conv_transpose_output_size(fn: Callable[[int, int, int, int], int]) -> bool:
    """Check ``fn(size, kernel, stride, padding)`` against ``nn.ConvTranspose2d`` (output_padding=0)."""

    def hint(got, expected):
        if got > expected:
            return "Padding in a transposed convolution *removes* rows and columns from each side of the output."
        return "Each input pixel stamps a kernel-sized patch; the stamps sit `stride` apart, (size - 1) gaps."

    return _check_sizes(fn, "conv_transpose_output_size", _TCONV_CASES,
                        lambda k, s, p: nn.ConvTranspose2d(1, 1, k, stride=s, padding=p), hint)


def check_per_image_squared_error(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(x_hat, x) -> (B,)``: squared error summed over each image's pixels, one number per image."""
    title = "per_image_squared_error"
    g = torch.Generator().manual_seed(7)
    failures: list[str] = []
    cases = [(4, 1, 28, 28), (1, 1, 28, 28), (3, 1, 5, 7)]
    for shape in cases:
        x = torch.rand(shape, generator=g)
        x_hat = torch.rand(shape, generator=g)
        expected = ((x_hat - x) ** 2).flatten(1).sum(1)
        try:
            ok, got = _call(fn, (x_hat, x), title)
        except Exception as err:
            failures.append(f"for a batch of shape {shape} your function raised {type(err).__name__}: {err}")
            continue
        if not ok:
            return False
        if not torch.is_tensor(got):
            failures.append(f"return a tensor, not {type(got).__name__}")
        elif tuple(got.shape) != (shape[0],):
            hint = ("you reduced over the batch too: keep one number per image"
                    if got.dim() == 0 else "sum over every axis except the first (the batch)")
            failures.append(f"for a batch of shape {shape} the result should have shape ({shape[0]},), "
                            f"got {tuple(got.shape)}: {hint}")
        elif torch.allclose(got, expected / (shape[1] * shape[2] * shape[3]), rtol=1e-4):
            failures.append("you took the mean over pixels; the exercise asks for the sum (per image, not per pixel)")
        elif not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
            failures.append(f"for a batch of shape {shape} the values differ: expected {expected[:3].tolist()}, "
                            f"got {got[:3].tolist()}")
    return _report(title, failures, len(cases))


# ---------------------------------------------------------------------------------------------
# Lesson 02: corruption and PSNR


def check_gaussian_noise(fn: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]) -> bool:
    """Check ``fn(images, sigma, generator) -> noisy images``: N(0, sigma^2) noise added, clipped to [0, 1]."""
    title = "gaussian_noise"
    failures: list[str] = []
    n_cases = 6
    grey = torch.full((64, 1, 28, 28), 0.5)                 # mid-grey: clipping is negligible for sigma = 0.1
    try:
        ok, noisy = _call(fn, (grey.clone(), 0.1, torch.Generator().manual_seed(0)), title)
        if not ok:
            return False
        if not torch.is_tensor(noisy) or noisy.shape != grey.shape:
            got = tuple(noisy.shape) if torch.is_tensor(noisy) else type(noisy).__name__
            return _report(title, [f"return a tensor of the input's shape {tuple(grey.shape)}, got {got}"], n_cases)
        diff = noisy - grey
        std, mean = float(diff.std()), float(diff.mean())
        if abs(mean) > 0.01:
            failures.append(f"the noise should average 0, yours averages {mean:.3f}: torch.randn draws N(0, 1), "
                            "torch.rand draws uniform numbers in [0, 1)")
        if abs(std - 0.1) > 0.005:
            hint = ("that is sigma squared: sigma is the standard deviation, multiply randn by sigma itself"
                    if abs(std - 0.01) < 0.002 else "multiply standard normal noise by sigma")
            failures.append(f"with sigma = 0.1 the noise should have standard deviation 0.1, yours has {std:.4f}: "
                            f"{hint}")
        again = fn(grey.clone(), 0.1, torch.Generator().manual_seed(0))
        if not torch.equal(again, noisy):
            failures.append("two calls with generators seeded alike gave different noise: "
                            "pass generator=generator to torch.randn")
        bright = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1))
        before = bright.clone()
        out = fn(bright, 0.5, torch.Generator().manual_seed(2))
        if not torch.equal(bright, before):
            failures.append("your function changed the clean images in place: build a new tensor "
                            "(images + noise), do not add into the input")
        if float(out.min()) < 0 or float(out.max()) > 1:
            failures.append(f"values run from {float(out.min()):.2f} to {float(out.max()):.2f}; "
                            "clip them to [0, 1] with .clamp(0, 1), like the clean pixels")
        same = fn(bright, 0.0, torch.Generator().manual_seed(3))
        if not torch.allclose(same, bright):
            failures.append("with sigma = 0 the images should come back unchanged")
    except Exception as err:  # the learner's code crashed: report it, do not raise
        failures.append(f"your function raised {type(err).__name__}: {err}")
    return _report(title, failures, n_cases)


def check_psnr(fn: Callable[[float], float]) -> bool:
    """Check ``fn(mse) -> PSNR in dB`` for images in [0, 1] (peak value 1)."""
    title = "psnr"
    cases = [0.01, 0.001, 0.0025, 0.1, 0.04]
    failures: list[str] = []
    for mse in cases:
        expected = 10 * math.log10(1 / mse)
        try:
            ok, got = _call(fn, (mse,), title)
        except Exception as err:
            failures.append(f"psnr({mse}) raised {type(err).__name__}: {err}")
            continue
        if not ok:
            return False
        try:
            got = float(got)
        except (TypeError, ValueError):
            failures.append(f"psnr({mse}) returned {got!r}; return a number of decibels")
            continue
        if math.isclose(got, expected, rel_tol=1e-4):
            continue
        if math.isclose(got, 2 * expected, rel_tol=1e-4):
            hint = "20·log10 is for an amplitude such as the RMSE; the MSE is a power, so 10·log10"
        elif math.isclose(got, -expected, rel_tol=1e-4):
            hint = "the sign is flipped: a smaller error must give a larger PSNR"
        elif math.isclose(got, 10 * math.log(1 / mse), rel_tol=1e-4):
            hint = "that is the natural logarithm; decibels use log base 10 (math.log10)"
        else:
            hint = "PSNR = 10 · log10(peak² / MSE), with peak = 1 for pixels in [0, 1]"
        failures.append(f"psnr({mse}) should be {expected:.2f} dB, you returned {got:.2f}: {hint}")
    return _report(title, failures, len(cases))
