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
           "check_gaussian_noise", "check_psnr", "check_vae_loss", "check_reparameterize",
           "check_l1_activation_penalty", "check_kl_sparsity_penalty", "check_gaussian_kl",
           "check_conv_decoder", "check_spearman"]

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


# ---------------------------------------------------------------------------------------------
# Lesson 05: the reparameterization trick


class _NotWritten(Exception):
    """Raised inside a check when the learner's stub still raises NotImplementedError."""


def _learner(fn: Callable, args: tuple, title: str):
    ok, out = _call(fn, args, title)
    if not ok:
        raise _NotWritten
    return out


def _fmt(values) -> str:
    return "[" + ", ".join(f"{float(v):.2f}" for v in values) + "]"


_NAN_LOGVAR = ("z contains NaN where logvar < 0: the square root of a negative log-variance. logvar can be any "
               "real number; sigma = exp(0.5 * logvar) is always positive")


def check_reparameterize(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(mu, logvar) -> z``: a draw from N(mu, sigma^2), sigma = exp(0.5 * logvar), that gradients pass.

    Hidden tests: z has the shape of mu (three shapes); after ``z.sum().backward()`` the gradient
    reaches mu (1 everywhere) and logvar (0.5 * sigma * eps = 0.5 * (z - mu)); over 20,000 draws
    the mean is mu and the standard deviation is sigma. The messages name the usual slips: the
    variance exp(logvar) used as sigma, the square root of logvar, no eps (no randomness), one eps
    for the whole batch, uniform eps, sigma ignored (mu + eps), and ``Normal(...).sample()`` (no gradient).
    The exercise of notebook 05; ``ah.models.reparameterize`` is the reference answer.
    """
    title = "reparameterize"

    def shape_case(shape):
        def case():
            mu, logvar = torch.randn(shape), torch.randn(shape)
            z = _learner(fn, (mu, logvar), title)
            if not torch.is_tensor(z):
                return f"return a tensor z, not {type(z).__name__}"
            if tuple(z.shape) != shape:
                return (f"for mu and logvar of shape {shape} you returned shape {tuple(z.shape)}: z has one number "
                        "per entry of mu (eps = torch.randn_like(mu) has that shape too)")
            return None
        return case

    def gradient_case():
        mu = torch.randn(512, 4).requires_grad_()
        logvar = (0.5 * torch.randn(512, 4)).requires_grad_()
        z = _learner(fn, (mu, logvar), title)
        if not torch.is_tensor(z) or z.shape != mu.shape:
            return "the gradient test needs z of mu's shape (see above)"
        if torch.isnan(z).any():
            return _NAN_LOGVAR
        if not z.requires_grad:
            return ("z carries no gradient, so the encoder could never learn: Normal(...).sample(), .detach() or "
                    "torch.no_grad() cut the graph. Build z = mu + sigma * eps from mu and logvar "
                    "(Normal(...).rsample() does the same)")
        z.sum().backward()
        problems = []
        if mu.grad is None:
            problems.append("the gradient does not reach mu: z must be computed from mu")
        elif not torch.allclose(mu.grad, torch.ones_like(mu)):
            problems.append(f"dz/dmu should be 1 everywhere (z = mu + ...), got values from {float(mu.grad.min()):.2f} "
                            f"to {float(mu.grad.max()):.2f}")
        if logvar.grad is None or not logvar.grad.abs().max() > 0:
            problems.append("the gradient does not reach logvar: sigma must be computed from it, "
                            "sigma = torch.exp(0.5 * logvar), and multiply eps")
        elif not torch.allclose(logvar.grad, 0.5 * (z - mu).detach(), rtol=1e-3, atol=1e-5):
            problems.append("dz/dlogvar should be 0.5 * sigma * eps = 0.5 * (z - mu); yours differs: "
                            "check how sigma is made from logvar")
        return "; ".join(problems) or None

    # the statistics test: 20,000 draws of four dimensions with known mu and sigma
    mu_row = torch.tensor([-2.0, 0.0, 1.5, 3.0])
    logvar_row = torch.tensor([math.log(0.25), 0.0, math.log(4.0), 2.0])      # sigma = 0.5, 1, 2, e
    sigma_row = torch.exp(0.5 * logvar_row)
    n = 20_000

    def close(a, b, rel=0.05):
        return bool(((a - b).abs() <= rel * b.abs() + 1e-3).all())

    def draws():
        return _learner(fn, (mu_row.expand(n, 4).clone(), logvar_row.expand(n, 4).clone()), title)

    def statistics_cases():
        z = draws()
        if not torch.is_tensor(z) or tuple(z.shape) != (n, 4):
            return ["the statistics test needs z of mu's shape (see above)"]
        z = z.detach().float()
        if torch.isnan(z).any():
            bad = [i for i in range(4) if torch.isnan(z[:, i]).any()]
            return [_NAN_LOGVAR if all(logvar_row[i] < 0 for i in bad) else "your samples contain NaN"]
        mean, std = z.mean(0), z.std(0)
        if bool((std < 1e-6).all()):
            again = draws()
            if torch.is_tensor(again) and not torch.equal(again.detach().float(), z):
                msg = ("every row of z is the same draw: you drew one eps for the whole batch; draw one per entry, "
                       "eps = torch.randn_like(sigma)")
            else:
                msg = ("z has no randomness: every draw is the same (z = mu?). Add sigma * eps with "
                       "eps = torch.randn_like(sigma)")
            return [msg]
        problems = []
        if bool(((mean - mu_row).abs() <= 0.05 * sigma_row + 0.01).all()):
            pass
        elif bool(((mean - mu_row - 0.5 * sigma_row).abs() <= 0.05 * sigma_row + 0.01).all()):
            problems.append("the draws average mu + sigma / 2: eps is uniform in [0, 1) (torch.rand); "
                            "draw it from N(0, 1) with torch.randn_like")
        else:
            problems.append(f"the mean of many draws should be mu = {_fmt(mu_row)}, yours is {_fmt(mean)}")
        slips = [
            (torch.exp(logvar_row), "the spread is exp(logvar), which is the variance sigma^2; "
                                    "sigma is its square root, exp(0.5 * logvar)"),
            (torch.ones(4), "every dimension spreads by 1 whatever logvar says: you returned mu + eps; "
                            "multiply eps by sigma = exp(0.5 * logvar)"),
            (logvar_row.abs(), "you used logvar itself as sigma; sigma = exp(0.5 * logvar)"),
            (torch.exp(-0.5 * logvar_row), "the spread is 1 / sigma: the sign in exp(0.5 * logvar) is flipped"),
            (sigma_row / math.sqrt(12), "the spread is sigma / sqrt(12), that of uniform noise: eps must come from "
                                        "N(0, 1), torch.randn_like, not torch.rand_like"),
        ]
        if not close(std, sigma_row):
            hint = next((text for expected, text in slips if close(std, expected)), None)
            problems.append(hint or f"the standard deviation of many draws should be sigma = exp(0.5 * logvar) = "
                                    f"{_fmt(sigma_row)}, yours is {_fmt(std)}")
        return problems

    failures: list[str] = []
    n_cases = 3 + 1 + 2
    try:
        with torch.random.fork_rng(devices=[]):      # the hidden draws leave the learner's random state alone
            torch.manual_seed(0)
            for case in (*(shape_case(s) for s in [(5, 3), (1, 2), (64, 20)]), gradient_case):
                try:
                    problem = case()
                except _NotWritten:
                    raise
                except Exception as err:  # the learner's code crashed: report it, do not raise
                    problem = f"your function raised {type(err).__name__}: {err}"
                if problem:
                    failures.append(problem)
            try:
                problems = statistics_cases()
            except _NotWritten:
                raise
            except Exception as err:
                problems = [f"on 20,000 draws your function raised {type(err).__name__}: {err}"]
            failures = list(dict.fromkeys(failures + problems))   # the same sentence once
    except _NotWritten:
        return False
    return _report(title, failures, n_cases)


# ---------------------------------------------------------------------------------------------
# Lesson 03: sparsity penalties. Both take hidden activations h of shape (B, n_hidden).


def _penalty_value(got, case: str, batch: int, units: int) -> tuple[float | None, str | None]:
    """The learner's penalty as a float, or None and what is wrong with its type or shape."""
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return None, (f"{case}: you returned a Python number; return the tensor itself. .item() or float() cut "
                      "it off from the network, so training could not follow its gradient")
    if not torch.is_tensor(got):
        return None, f"{case}: return a tensor holding one number, not {type(got).__name__}"
    if got.numel() != 1:
        shape = tuple(got.shape)
        if shape == (batch,):
            hint = "one value per image: average them over the batch"
        elif shape == (units,):
            hint = "one value per hidden unit: combine them into one number (see the formula)"
        else:
            hint = "reduce it to a single number"
        return None, f"{case}: the penalty must be one number, you returned shape {shape}: {hint}"
    if not got.requires_grad:
        return None, (f"{case}: your result carries no gradient: compute it with torch operations on h, without "
                      ".detach(), .item(), .numpy() or torch.no_grad()")
    return float(got.detach()), None


def _diagnose(value: float, expected: float, wrong: list[tuple[float, str]], case: str) -> str | None:
    """None when value matches expected; otherwise the hint of the first known mistake it matches."""
    if math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-6):
        return None
    if math.isnan(value):
        return f"{case}: you returned nan"
    for wrong_value, hint in wrong:
        if math.isfinite(wrong_value) and math.isclose(value, wrong_value, rel_tol=1e-3, abs_tol=1e-6):
            return f"{case}: {hint}"
    return f"{case}: expected {expected:.6g}, you returned {value:.6g}"


def _run_penalty_check(fn: Callable, cases: list, expected_fn: Callable, wrong_fn: Callable, title: str,
                       nan_hint: str, finite_hint: str) -> list[str] | None:
    """The loop both penalty checks share. Cases are (description, h, extra args); an expected
    value of None asks only for a finite, positive penalty (finite_hint says how). Returns the
    failures, or None when the function is not written yet."""
    failures: list[str] = []
    for case, h, extra in cases:
        h_in = h.clone().requires_grad_(True)
        try:
            ok, got = _call(fn, (h_in, *extra), title)
        except Exception as err:  # the learner's code crashed: report it, do not raise
            failures.append(f"{case}: your function raised {type(err).__name__}: {err}")
            continue
        if not ok:
            return None
        value, problem = _penalty_value(got, case, *h.shape)
        expected = expected_fn(h, *extra)
        if problem is None and expected is None:
            if not (math.isfinite(value) and value > 0):
                problem = f"{case}: you returned {value}; {finite_hint}"
        elif problem is None:
            problem = _diagnose(value, expected, wrong_fn(h, *extra), case)
            if problem is not None and math.isnan(value):
                problem += f": {nan_hint}"
        if problem:
            failures.append(problem)
    return failures


def check_l1_activation_penalty(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(h) -> penalty``: the sum over units of |h|, averaged over the images of the batch."""
    g = torch.Generator().manual_seed(3)
    cases = [
        # by hand: the images sum to 0 + 0.5 + 0.25 = 0.75 and 1 + 0 + 0.25 = 1.25; their mean is 1.0
        ("h = [[0, 0.5, 0.25], [1, 0, 0.25]]", torch.tensor([[0.0, 0.5, 0.25], [1.0, 0.0, 0.25]]), ()),
        ("8 images, 20 ReLU units", torch.relu(torch.randn(8, 20, generator=g)), ()),
        ("5 images, 7 tanh units (negative values too)", torch.tanh(torch.randn(5, 7, generator=g)), ()),
    ]

    def expected(h):
        return float(h.abs().sum(1).mean())

    def wrong(h):
        return [
            (float(h.abs().sum()), "you summed over the images too; average over the batch instead, so the "
                                   "penalty does not grow with the batch size"),
            (float(h.abs().mean()), "you averaged over the units too; sum over the units of each image "
                                    "(dim=1), then average over the images (dim=0)"),
            (float(h.sum(1).mean()), "you forgot the absolute value |h|: it makes no difference for ReLU or "
                                     "sigmoid units (never negative) but tanh units go below 0"),
            (float((h ** 2).sum(1).mean()), "you squared the activations: that is an L2 penalty; L1 uses |h|"),
        ]

    title = "l1_activation_penalty"
    failures = _run_penalty_check(fn, cases, expected, wrong, title, "the L1 penalty needs no logarithm or division",
                                  "the L1 penalty needs no logarithm or division")
    return False if failures is None else _report(title, failures, len(cases))


def _bernoulli_kl_sum(rho: float, rho_hat: torch.Tensor, eps: float = 1e-6, log=torch.log) -> torch.Tensor:
    r = rho_hat.clamp(eps, 1 - eps)
    return rho * log(rho / r) + (1 - rho) * log((1 - rho) / (1 - r))        # elementwise, in nats for torch.log


def check_kl_sparsity_penalty(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> bool:
    """Check ``fn(h, rho) -> penalty``: the sum over units j of KL(Bernoulli(rho) || Bernoulli(rho_hat_j)),
    with rho_hat_j the mean of unit j over the batch, in nats."""
    title = "kl_sparsity_penalty"
    g = torch.Generator().manual_seed(4)
    dead_and_saturated = torch.sigmoid(torch.randn(10, 6, generator=g))
    dead_and_saturated[:, 0], dead_and_saturated[:, 1] = 0.0, 1.0       # a unit never on, a unit always on
    cases = [
        # by hand: rho_hat = [0.2, 0.6];
        # unit 1: 0.1*ln(0.1/0.2) + 0.9*ln(0.9/0.8) = -0.0693147 + 0.1060047 = 0.0366900
        # unit 2: 0.1*ln(0.1/0.6) + 0.9*ln(0.9/0.4) = -0.1791759 + 0.7298369 = 0.5506610; sum 0.5873510
        ("h = [[0.1, 0.5], [0.3, 0.7]], rho = 0.1", torch.tensor([[0.1, 0.5], [0.3, 0.7]]), (0.1,)),
        ("16 images, 10 sigmoid units, rho = 0.05", torch.sigmoid(torch.randn(16, 10, generator=g)), (0.05,)),
        ("every unit already at the target rate (h = 0.2 everywhere, rho = 0.2)", torch.full((4, 3), 0.2), (0.2,)),
        ("32 images, 50 sigmoid units, rho = 0.3", torch.sigmoid(2 * torch.randn(32, 50, generator=g) - 1), (0.3,)),
        ("a unit that never fires and one always on, rho = 0.05", dead_and_saturated, (0.05,)),
    ]

    def expected(h, rho):
        if h is dead_and_saturated:        # the exact value depends on the eps chosen: ask only for a finite one
            return None
        return float(_bernoulli_kl_sum(rho, h.mean(0)).sum())

    def wrong(h, rho):
        rho_hat = h.mean(0)
        kl = _bernoulli_kl_sum(rho, rho_hat)
        r = rho_hat.clamp(1e-6, 1 - 1e-6)
        swapped = r * torch.log(r / rho) + (1 - r) * torch.log((1 - r) / (1 - rho))
        return [
            (float(swapped.sum()), "rho and rho_hat are swapped: the penalty is KL(rho || rho_hat) = "
                                   "rho·log(rho/rho_hat) + (1-rho)·log((1-rho)/(1-rho_hat))"),
            (float(_bernoulli_kl_sum(rho, h).sum(1).mean()),
             "you took the KL of each image's activation and then averaged over the batch; average each unit "
             "over the batch first (rho_hat = h.mean(0)), then take the KL of those rates"),
            (float(_bernoulli_kl_sum(rho, h.mean(1)).sum()),
             "rho_hat_j averages unit j over the images of the batch: h.mean(0), not h.mean(1)"),
            (float(_bernoulli_kl_sum(rho, h.sum(0)).sum()),
             "you summed over the batch instead of averaging each unit over the batch first: rho_hat is a rate, "
             "h.mean(0), between 0 and 1"),
            (float(kl.mean()), "you averaged the KL over the units; the penalty is its sum over the units"),
            (float((rho * torch.log(rho / r)).sum()),
             "only the rho·log(rho/rho_hat) term is there; a Bernoulli KL has a second one, for the unit being "
             "off: (1-rho)·log((1-rho)/(1-rho_hat))"),
            (float(-kl.sum()), "the sign is flipped: a KL divergence is never negative; the ratios are "
                               "rho/rho_hat and (1-rho)/(1-rho_hat)"),
            (float(_bernoulli_kl_sum(rho, rho_hat, log=torch.log10).sum()),
             "that is log base 10; the penalty is in nats: use the natural log, torch.log"),
            (float(_bernoulli_kl_sum(rho, rho_hat, log=torch.log2).sum()),
             "that is log base 2 (bits); the penalty is in nats: use the natural log, torch.log"),
        ]

    failures = _run_penalty_check(
        fn, cases, expected, wrong, title,
        "that is the log of a negative number. rho_hat must be a rate in [0, 1]: did you sum over the batch instead "
        "of averaging each unit over the batch first (h.mean(0))?",
        "clamp rho_hat into [eps, 1 - eps] (e.g. eps = 1e-6) before the logarithms, so that a unit that never fires "
        "(rho_hat = 0) or always fires (rho_hat = 1) costs a large finite penalty, not inf or nan")
    return False if failures is None else _report(title, failures, len(cases))


# ---------------------------------------------------------------------------------------------
# Lesson 04: the VAE's loss


def check_vae_loss(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(logits, x, mu, logvar) -> loss``: the negative ELBO of a batch in nats per image.

    Expected: BCE from the logits summed over each image's pixels, plus the closed-form KL
    of N(mu, sigma^2) from N(0, 1) summed over the latent dimensions, averaged over the batch.
    The messages name the usual slips: a mean over pixels (784 times too small a reconstruction),
    a sum over the batch, a KL with the wrong sign or without its 1/2, sigma in place of the variance.
    """
    from .losses import bce_with_logits, gaussian_kl

    title = "vae_loss"
    g = torch.Generator().manual_seed(11)
    failures: list[str] = []
    cases = [(8, 2), (3, 20), (1, 5)]
    for b, k in cases:
        logits = torch.randn(b, 1, 28, 28, generator=g) * 3
        x = torch.rand(b, 1, 28, 28, generator=g)
        mu, logvar = torch.randn(b, k, generator=g), torch.randn(b, k, generator=g)
        recon = bce_with_logits(logits, x, pixels="sum", batch="none")               # (b,) nats per image
        kl = gaussian_kl(mu, logvar, dims="sum", batch="none")                       # (b,) nats per image
        expected = float((recon + kl).mean())
        try:
            ok, got = _call(fn, (logits, x, mu, logvar), title)
        except Exception as err:
            failures.append(f"for a batch of {b} images with {k} latent dimensions your function raised "
                            f"{type(err).__name__}: {err}")
            continue
        if not ok:
            return False
        if not torch.is_tensor(got) or got.numel() != 1:
            got_desc = tuple(got.shape) if torch.is_tensor(got) else type(got).__name__
            failures.append(f"return one number (a 0-dim tensor) for the batch, got {got_desc}: "
                            "average the per-image losses over the batch")
            continue
        got = float(got)
        sigma = torch.exp(0.5 * logvar)
        slips = {
            "the reconstruction is averaged over the pixels; the ELBO sums it over the 784 pixels of each image":
                float((recon / 784 + kl).mean()),
            "the loss is summed over the batch; average it over the images, so it is per image":
                float((recon + kl).sum()),
            "the KL has the wrong sign: it is a penalty, 0.5 * (mu^2 + sigma^2 - log sigma^2 - 1) >= 0":
                float((recon - kl).mean()),
            "the KL misses its factor 1/2":
                float((recon + 2 * kl).mean()),
            "the KL uses sigma = exp(0.5 * logvar) where it needs the variance sigma^2 = exp(logvar)":
                float((recon + 0.5 * (mu ** 2 + sigma - logvar - 1).sum(1)).mean()),
            "the reconstruction term is missing": float(kl.mean()),
            "the KL term is missing": float(recon.mean()),
        }
        if math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-4):
            continue
        slip = next((text for text, value in slips.items() if math.isclose(got, value, rel_tol=1e-4)), None)
        failures.append(f"for a batch of {b} images with {k} latent dimensions the loss should be "
                        f"{expected:.2f} nats per image, you returned {got:.2f}"
                        + (f": {slip}" if slip else ""))
    return _report(title, failures, len(cases))


# ---------------------------------------------------------------------------------------------
# Lesson 06: the closed-form KL of the encoder's Gaussian from N(0, 1)


def check_gaussian_kl(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(mu, logvar) -> (B,)``: KL(N(mu, sigma^2) || N(0, 1)) in nats, summed over the latent
    dimensions, one value per image.

    Hidden tests: two cases worked by hand (the prior itself gives 0) and three random batches, each
    compared with ``torch.distributions.kl_divergence`` summed over the dimensions; the result must
    carry a gradient. The messages name the usual slips: the sign flipped, the 1/2 forgotten, sigma
    used where the variance is needed, logvar read as log sigma, the -1 or the square of mu missing, a
    mean over the dimensions instead of the sum, one value per dimension, and a reduction over the batch.
    The exercise of notebook 06; ``ah.gaussian_kl(mu, logvar, batch="none")`` is the reference answer.
    """
    from torch.distributions import Normal, kl_divergence

    title = "gaussian_kl"
    g = torch.Generator().manual_seed(6)
    cases = [
        # by hand: mu = 0, sigma = 1 is the prior itself: KL = 0 in every dimension
        ("mu = 0, logvar = 0 (the prior itself)", torch.zeros(3, 4), torch.zeros(3, 4)),
        # by hand: 0.5 * (1 + 1 - 1 - 0) = 0.5 and 0.5 * (0 + 4 - 1 - ln 4) = 0.8069; one image: 1.3069
        ("mu = [1, 0], sigma^2 = [1, 4]", torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]])),
        ("8 images, 2 latent dimensions", torch.randn(8, 2, generator=g), torch.randn(8, 2, generator=g)),
        ("32 images, 16 latent dimensions", 2 * torch.randn(32, 16, generator=g),
         torch.randn(32, 16, generator=g) - 1),
        ("5 images, 3 latent dimensions, large sigma", torch.randn(5, 3, generator=g),
         torch.rand(5, 3, generator=g) * 3 + 0.5),
    ]
    failures: list[str] = []
    for case, mu, logvar in cases:
        b, k = mu.shape
        per_dim = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))       # (b, k) nats
        expected = per_dim.sum(1)                                                            # (b,)
        mu_in, logvar_in = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
        try:
            ok, got = _call(fn, (mu_in, logvar_in), title)
        except Exception as err:  # the learner's code crashed: report it, do not raise
            failures.append(f"{case}: your function raised {type(err).__name__}: {err}")
            continue
        if not ok:
            return False
        if not torch.is_tensor(got):
            failures.append(f"{case}: return a tensor, one KL per image, not {type(got).__name__}")
            continue
        if tuple(got.shape) != (b,):
            if got.numel() == 1 and b > 1:
                value = float(got.detach())
                if math.isclose(value, float(expected.mean()), rel_tol=1e-4, abs_tol=1e-5):
                    hint = "you averaged over the batch too"
                elif math.isclose(value, float(expected.sum()), rel_tol=1e-4, abs_tol=1e-5):
                    hint = "you summed over the batch too"
                else:
                    hint = "you reduced over the batch"
                hint += ": keep one number per image (sum over dim=1 only); the loss averages them later"
            elif got.dim() == 0:
                hint = "keep the batch axis: for one image the result has shape (1,), sum over dim=1"
            elif tuple(got.shape) == (b, k):
                hint = "that is one value per latent dimension: sum them over dim=1 to get the KL of each image"
            elif tuple(got.shape) == (k,):
                hint = "you reduced over the images (dim=0); sum over the latent dimensions (dim=1) instead"
            else:
                hint = "sum over the latent dimensions (dim=1), nothing else"
            failures.append(f"{case}: the result should have shape ({b},), one KL per image, got "
                            f"{tuple(got.shape)}: {hint}")
            continue
        value = got.detach().float()
        if torch.allclose(value, expected, rtol=1e-4, atol=1e-5):
            if not got.requires_grad:
                failures.append(f"{case}: the values are right but carry no gradient, so training could not "
                                "follow them: compute them with torch operations on mu and logvar, without "
                                ".detach(), .item(), .numpy() or torch.no_grad()")
            continue
        if torch.isnan(value).any():
            failures.append(f"{case}: your result contains NaN. logvar can be negative: the variance is "
                            "exp(logvar), never a square root or a logarithm of logvar")
            continue
        var, sigma = logvar.exp(), torch.exp(0.5 * logvar)
        slips = [
            (-expected, "the sign is flipped: a KL divergence is never negative. It is "
                        "0.5 * (mu^2 + sigma^2 - 1 - log sigma^2), or -0.5 * (1 + logvar - mu^2 - sigma^2)"),
            (2 * expected, "the factor 1/2 is missing: each dimension costs 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2)"),
            (0.5 * (mu ** 2 + sigma - 1 - logvar).sum(1),
             "you used sigma = exp(0.5 * logvar) where the formula needs the variance sigma^2 = exp(logvar)"),
            (0.5 * (mu ** 2 + torch.exp(2 * logvar) - 1 - 2 * logvar).sum(1),
             "you read logvar as log sigma; it is log sigma^2, so sigma^2 = exp(logvar) and log sigma^2 = logvar"),
            (0.5 * (mu ** 2 + var - 1 - 0.5 * logvar).sum(1),
             "the log term should be log sigma^2 = logvar itself, not log sigma = 0.5 * logvar"),
            (expected + 0.5 * k, "the -1 inside the bracket is missing: without it the prior itself (mu = 0, "
                                 "sigma = 1) would cost 1/2 nat per dimension instead of 0"),
            (0.5 * (mu + var - 1 - logvar).sum(1), "mu must be squared: a mean of -2 is as far from 0 as +2"),
            (per_dim.mean(1), "you averaged over the latent dimensions; the KL of an image is their sum"),
        ]
        slip = next((text for wrong, text in slips if torch.allclose(value, wrong.float(), rtol=1e-4, atol=1e-5)),
                    None)
        failures.append(f"{case}: expected {_fmt(expected[:3])} nats (first images), you returned "
                        f"{_fmt(value[:3])}" + (f": {slip}" if slip else ""))
    return _report(title, failures, len(cases))


# ---------------------------------------------------------------------------------------------
# Lesson 08: the convolutional decoder, and the rank correlation of a code with the radius


def _decoder_sizes(decoder: nn.Module, z: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, ...]]]:
    """Run the decoder and record the output shape of each transposed convolution."""
    sizes: list[tuple[int, ...]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[1:])))
             for m in decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    try:
        out = decoder(z)
    finally:
        for h in hooks:
            h.remove()
    return out, sizes


def check_conv_decoder(make_decoder: Callable[[int, tuple], nn.Module]) -> bool:
    """Check ``make_decoder(latent_dim, channels) -> nn.Module``: codes (B, k) -> logits (B, 1, 28, 28).

    The decoder of notebook 08: a linear layer to c4 x 7 x 7 features, unflattened, then transposed
    convolutions that keep 7 x 7, double it to 14 x 14 and to 28 x 28, and end on one channel of
    logits (no sigmoid: the loss takes logits). Hidden tests, for three latent sizes and channel
    widths: the output shape, transposed convolutions present, the 7 -> 14 -> 28 sizes, logits that
    are not squashed into (0, 1), and a gradient that reaches every parameter. The messages name the
    usual slips: a missing ``output_padding=1`` (13 x 13 and 25 x 25 instead of 14 and 28), the
    wrong number of features for the first linear layer, a final sigmoid, a missing channel axis.
    """
    title = "make_decoder"
    failures: list[str] = []
    cases = [(1, (16, 32, 32, 32)), (2, (8, 16, 16, 16)), (5, (4, 8, 8, 12))]
    for k, channels in cases:
        case = f"make_decoder({k}, {channels})"
        try:
            ok, decoder = _call(make_decoder, (k, channels), title)
            if not ok:
                return False
            if not isinstance(decoder, nn.Module):
                failures.append(f"{case} should return an nn.Module (e.g. nn.Sequential), got {type(decoder).__name__}")
                continue
            torch.manual_seed(0)
            z = torch.randn(6, k) * 2
            out, sizes = _decoder_sizes(decoder, z)
        except Exception as err:                # the learner's code crashed: report it, do not raise
            hint = ""
            if any(words in str(err) for words in ("mat1 and mat2", "shape", "multiply up")):
                hint = (f" (the first linear layer takes the {k} code numbers and gives c4 * 7 * 7 = "
                        f"{channels[3] * 49} features, which nn.Unflatten(1, ({channels[3]}, 7, 7)) reshapes)")
            failures.append(f"{case} raised {type(err).__name__}: {str(err)[:150]}{hint}")
            continue
        if not sizes:
            failures.append(f"{case} has no nn.ConvTranspose2d: the decoder grows the image with transposed "
                            "convolutions")
            continue
        if not torch.is_tensor(out) or tuple(out.shape) != (6, 1, 28, 28):
            got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
            slip = ""
            if any(s[1:] in ((13, 13), (25, 25), (27, 27)) for s in sizes):
                slip = (": a transposed convolution with kernel 3, stride 2 and padding 1 gives 2n - 1 "
                        "(7 -> 13); add output_padding=1 to get exactly 2n (7 -> 14 -> 28)")
            elif torch.is_tensor(out) and out.dim() == 3:
                slip = ": the channel axis is missing; images are (B, 1, 28, 28)"
            failures.append(f"{case}: for 6 codes the output should have shape (6, 1, 28, 28), got {got}; "
                            f"the transposed convolutions gave {sizes}{slip}")
            continue
        spatial = [s[1] for s in sizes]
        if not {14, 28} <= set(spatial) or spatial[0] != 7:
            failures.append(f"{case}: the transposed convolutions gave sizes {spatial}; start at 7 x 7 and "
                            "double to 14 and 28 with stride 2 (the mirror of the encoder)")
            continue
        leaves = [m for m in decoder.modules() if not list(m.children())]
        with torch.no_grad():
            far = decoder(z * 100)                  # logits grow with a far code; probabilities stay in (0, 1)
        if isinstance(leaves[-1], nn.Sigmoid) or (float(far.min()) >= 0 and float(far.max()) <= 1):
            failures.append(f"{case}: every output lies in [0, 1], as after a sigmoid. Return the logits "
                            "(no activation after the last layer): the VAE's decode applies the sigmoid, and "
                            "the loss works from logits")
            continue
        out.square().mean().backward()
        silent = [name for name, p in decoder.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        if silent:
            failures.append(f"{case}: no gradient reaches {silent[:3]}: every layer should be used in forward")
    return _report(title, failures, len(cases))


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n, tied values sharing the average of their ranks (what spearmanr uses)."""
    order = x.argsort()
    ranks = torch.empty_like(x, dtype=torch.float64)
    ranks[order] = torch.arange(1, x.numel() + 1, dtype=torch.float64)
    unique, inverse = x.unique(return_inverse=True)
    sums = torch.zeros(unique.numel(), dtype=torch.float64).index_add_(0, inverse, ranks)
    counts = torch.zeros(unique.numel(), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(ranks))
    return (sums / counts)[inverse]


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def check_spearman(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> bool:
    """Check ``fn(a, b) -> float``: Spearman's rank correlation of two (n,) tensors.

    Expected: the Pearson correlation of the ranks, tied values sharing their average rank; +1 for
    any increasing relation, -1 for any decreasing one. Hidden tests: a noisy relation, an
    increasing but curved one, a decreasing one, and data with ties, each compared with the
    reference value. The messages name the usual slips: the Pearson correlation of the values
    themselves, ``argsort`` taken once (the order of the items, not their ranks), and ties ranked
    one after the other instead of sharing a rank.
    """
    title = "spearman"
    g = torch.Generator().manual_seed(7)
    x = torch.rand(300, generator=g)
    cases = {
        "a noisy increasing relation": (x, x + 0.3 * torch.randn(300, generator=g)),
        "an increasing but curved relation (z = x ** 5)": (x, x ** 5),
        "a decreasing relation": (x, torch.exp(-4 * x)),
        "values with ties (radii rounded to 0.1)": ((x * 10).round() / 10, x + 0.2 * torch.randn(300, generator=g)),
        "a scrambled relation": (torch.rand(200, generator=g), torch.rand(200, generator=g)),
    }
    failures: list[str] = []
    for case, (a, b) in cases.items():
        expected = _pearson(_average_ranks(a), _average_ranks(b))
        try:
            ok, got = _call(fn, (a.clone(), b.clone()), title)
        except Exception as err:
            failures.append(f"for {case} your function raised {type(err).__name__}: {str(err)[:150]}")
            continue
        if not ok:
            return False
        try:
            got = float(got)
        except (TypeError, ValueError):
            failures.append(f"for {case}: return one number, got {type(got).__name__}")
            continue
        if math.isclose(got, expected, abs_tol=1e-6):
            continue
        ordinal = lambda v: v.argsort().argsort().double()               # noqa: E731, ties broken by position
        slips = [
            (_pearson(a, b), "this is the Pearson correlation of the values; Spearman's is the Pearson "
                             "correlation of their RANKS (the smallest value has rank 1, the next rank 2...)"),
            (_pearson(a.argsort().double(), b.argsort().double()),
             "argsort gives the positions of the items in sorted order, not their ranks; the ranks are "
             "argsort of argsort (or scipy.stats.rankdata)"),
            (_pearson(ordinal(a), ordinal(b)), "tied values must share the average of their ranks "
                                              "(two values tied for ranks 3 and 4 both get 3.5)"),
        ]
        slip = next((text for value, text in slips if math.isclose(got, value, abs_tol=1e-6)), None)
        failures.append(f"for {case} the rank correlation is {expected:+.4f}, you returned {got:+.4f}"
                        + (f": {slip}" if slip else ""))
    return _report(title, failures, len(cases))


# ---------------------------------------------------------------------------------------------
# Lesson 09: anomaly detection, the AUC and the threshold

__all__ += ["check_roc_auc", "check_false_alarm_threshold"]


def _one_number(got, what: str) -> float | str:
    """The learner's result as a float, or a sentence saying why it is not one number."""
    if torch.is_tensor(got):
        if got.numel() != 1:
            return f"return one number, the {what}, not a tensor of shape {tuple(got.shape)}"
        return float(got)
    if isinstance(got, bool):
        return f"return a number, the {what}, not {got!r}"
    try:
        return float(got)
    except (TypeError, ValueError):
        return f"return a number, the {what}, not {type(got).__name__}"


def check_roc_auc(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> bool:
    """Check ``fn(normal_scores, anomalous_scores) -> AUC``: the probability that a random anomaly scores
    higher than a random normal image, ties counting one half.

    Hidden tests: three cases worked by hand (one with ties), a perfect and a reversed ranking, and three
    random ones (one full of ties), each compared with ``sklearn.metrics.roc_auc_score``. The messages
    name the usual slips: ties counted as 0 (``>``) or as 1 (``>=``), normal and anomalous swapped (1 - AUC),
    the count of wins not divided by the number of pairs, one value per image instead of one number.
    The exercise of notebook 09; ``ah.applications.roc`` is the reference answer.
    """
    from sklearn.metrics import roc_auc_score

    title = "roc_auc"
    g = torch.Generator().manual_seed(8)
    cases = [
        # by hand: 2.5 beats 1 and 2 (2 of 3 pairs), 4 beats all three: 5 wins of 6 pairs
        ("normal [1, 2, 3], anomalous [2.5, 4]", torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.5, 4.0])),
        # by hand: each anomaly (2) beats 1, ties twice with 2 (2 x 1/2), loses to 3: 2 of 4; twice: 4 of 8 = 0.5
        ("normal [1, 2, 2, 3], anomalous [2, 2] (ties)", torch.tensor([1.0, 2.0, 2.0, 3.0]), torch.tensor([2.0, 2.0])),
        # by hand: 1 normal image; 0.5 loses, 2 and 3 win: 2 of 3
        ("one normal image [1], anomalous [0.5, 2, 3]", torch.tensor([1.0]), torch.tensor([0.5, 2.0, 3.0])),
        ("every anomaly above every normal image", torch.rand(50, generator=g), 1 + torch.rand(30, generator=g)),
        ("every anomaly below every normal image", 1 + torch.rand(40, generator=g), torch.rand(20, generator=g)),
        ("300 normal, 200 anomalous, overlapping", torch.randn(300, generator=g), torch.randn(200, generator=g) + 1),
        ("whole-number scores with many ties", torch.randint(0, 5, (400,), generator=g).float(),
         torch.randint(1, 6, (300,), generator=g).float()),
        ("skewed scores, 1000 normal and 50 anomalous", torch.rand(1000, generator=g) ** 3 * 40,
         torch.rand(50, generator=g) * 60),
    ]
    failures: list[str] = []
    for case, normal, anomalous in cases:
        truth = torch.cat([torch.zeros(len(normal)), torch.ones(len(anomalous))]).numpy()
        expected = float(roc_auc_score(truth, torch.cat([normal, anomalous]).numpy()))
        try:
            ok, got = _call(fn, (normal.clone(), anomalous.clone()), title)
        except Exception as err:  # the learner's code crashed: report it, do not raise
            failures.append(f"{case}: your function raised {type(err).__name__}: {err}")
            continue
        if not ok:
            return False
        value = _one_number(got, "AUC")
        if isinstance(value, str):
            hint = (": average over every (anomaly, normal) pair, not per image"
                    if torch.is_tensor(got) and got.dim() == 1 and got.numel() in (len(normal), len(anomalous)) else "")
            failures.append(f"{case}: {value}{hint}")
            continue
        if math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-9):
            continue
        wins = (anomalous[:, None] > normal[None, :]).float()                        # (n_anom, n_norm)
        ties = (anomalous[:, None] == normal[None, :]).float()
        pairs = len(normal) * len(anomalous)
        slips = [
            (float(wins.mean()), "ties count as 0 here; a tie is a coin flip, so it counts one half: "
                                 "(a > n) + 0.5 * (a == n)"),
            (float((wins + ties).mean()), "ties count as 1 here (>=); a tie is a coin flip, so it counts one half"),
            (1 - expected, "normal and anomalous are swapped: the AUC asks how often the *anomaly* scores higher"),
            (expected * pairs, f"that is the number of winning pairs; divide by the number of pairs, "
                               f"{len(normal)} x {len(anomalous)} = {pairs}"),
            (100 * expected, "that is a percentage; return a fraction between 0 and 1"),
        ]
        slip = next((text for wrong, text in slips if not math.isclose(wrong, expected, abs_tol=1e-9)
                     and math.isclose(value, wrong, rel_tol=1e-6, abs_tol=1e-9)), None)
        failures.append(f"{case}: the AUC is {expected:.4f}, you returned {value:.4f}" + (f": {slip}" if slip else ""))
    return _report(title, failures, len(cases))


def check_false_alarm_threshold(fn: Callable[[torch.Tensor, float], float]) -> bool:
    """Check ``fn(normal_scores, rate) -> threshold``: the score above which a fraction ``rate`` of these
    normal images lie.

    Hidden tests: five sets of skewed scores (like reconstruction errors, a long right tail) and false-alarm
    rates from 1% to 20%. A threshold passes when the share of scores strictly above it is ``rate`` within
    one image (1 / N), so any reasonable quantile convention is right. The scores must come back unchanged
    (no sorting in place). The messages name the usual slips: the ``rate`` quantile instead of the
    ``1 - rate`` one, ``np.percentile`` given a fraction, a Gaussian rule (mean + z * std) that the skewed
    scores do not follow, the largest score (no false alarms at all).
    The exercise of notebook 09; ``ah.applications.threshold_at_false_alarm_rate`` is the reference answer.
    """
    from statistics import NormalDist

    title = "false_alarm_threshold"
    g = torch.Generator().manual_seed(9)
    cases = [
        ("1,000 skewed scores, rate 0.05", torch.randn(1000, generator=g).exp() * 10, 0.05),
        ("200 skewed scores, rate 0.1", torch.rand(200, generator=g) ** 4 * 50 + 5, 0.1),
        ("5,000 skewed scores, rate 0.01", torch.randn(5000, generator=g).pow(2) * 3, 0.01),
        ("500 skewed scores, rate 0.2", torch.randn(500, generator=g).exp(), 0.2),
        ("2,000 skewed scores, rate 0.05", (torch.randn(2000, generator=g) * 0.6).exp() * 20, 0.05),
    ]
    failures: list[str] = []
    for case, scores, rate in cases:
        given = scores.clone()
        try:
            ok, got = _call(fn, (given, rate), title)
        except Exception as err:  # the learner's code crashed: report it, do not raise
            failures.append(f"{case}: your function raised {type(err).__name__}: {err}")
            continue
        if not ok:
            return False
        if not torch.equal(given, scores):
            failures.append(f"{case}: your function changed the scores it was given (sorted them in place?): "
                            "sort a copy, e.g. torch.sort(scores).values, or use torch.quantile")
            continue
        value = _one_number(got, "threshold")
        if isinstance(value, str):
            failures.append(f"{case}: {value}")
            continue
        n = len(scores)
        n_above = int((scores > value).sum())                                  # normal images flagged
        above = n_above / n
        if abs(n_above - rate * n) <= 1 + 1e-6:                                # within one image of the target
            continue
        s = scores.double()
        mean, std = float(s.mean()), float(s.std())
        slips = [
            (float(torch.quantile(s, rate)), f"that is the {rate:g} quantile, which flags {1 - rate:.0%} of normal "
                                             f"images; the threshold is the 1 - rate = {1 - rate:g} quantile"),
            (float(torch.quantile(s, (1 - rate) / 100)), "np.percentile takes a percentage from 0 to 100: "
                                                         "use 100 * (1 - rate), or np.quantile / torch.quantile "
                                                         "with 1 - rate"),
            (mean + NormalDist().inv_cdf(1 - rate) * std,
             "mean + z * std is right only for normally distributed scores; reconstruction errors have a long "
             "right tail. Use the empirical quantile of the scores themselves"),
            (float(s.max()), "the largest score flags no normal image at all (0 false alarms) and lets many "
                             "anomalies through; use the 1 - rate quantile"),
        ]
        slip = next((text for wrong, text in slips if math.isclose(value, wrong, rel_tol=1e-4, abs_tol=1e-6)), None)
        failures.append(f"{case}: your threshold {value:.4g} flags {n_above:,} of these {n:,} normal images "
                        f"({above:.2%}), not about {rate * n:,.0f} ({rate:.0%})" + (f": {slip}" if slip else ""))
    return _report(title, failures, len(cases))


# ---------------------------------------------------------------------------------------------
# Lesson 11: the nearest-codebook quantiser with a straight-through gradient, and codebook perplexity

__all__ += ["check_quantize", "check_perplexity"]


def _brute_force_codes(z_e: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(B, D, H, W), (K, D) -> (B, H, W): the nearest code of each position, by explicit differences."""
    z = z_e.detach().permute(0, 2, 3, 1).unsqueeze(-2)                       # (B, H, W, 1, D)
    return (z - codebook.detach()).pow(2).sum(-1).argmin(-1)                 # (B, H, W)


def check_quantize(fn: Callable[[torch.Tensor, torch.Tensor], tuple]) -> bool:
    """Check ``fn(z_e, codebook) -> (z_q, indices)``: the nearest codebook entry at every position, with a
    straight-through gradient.

    z_e: (B, D, H, W) encoder outputs, channels first; codebook: (K, D). Expected: indices (B, H, W), the
    entry nearest in Euclidean distance; z_q (B, D, H, W) holding those entries; and the gradient of any
    function of z_q copied to z_e unchanged (d loss / d z_e = d loss / d z_q).

    Hidden tests: a case worked by hand, a case where the largest dot product is not the nearest code,
    three random shapes (one with H != W) checked against a brute-force search, and the gradient test.
    The messages name the usual slips: no straight-through (``codebook[indices]`` alone, no gradient to
    z_e), z_e returned unquantised, argmax instead of argmin, the dot product as the similarity, flattening
    z_e to (-1, D) without moving the channels last first, indices flat or z_q channels-last.
    The exercise of notebook 11; ``ah.vq.quantize`` is the reference answer.
    """
    title = "quantize"
    g = torch.Generator().manual_seed(11)
    # by hand: three codes in 2-D; positions near (0, 0), (1, 0) and (0, 2)
    hand_book = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    hand_z = torch.tensor([[0.1, 0.1], [0.9, -0.2], [0.2, 1.5]]).T.reshape(1, 2, 1, 3)     # (1, 2, 1, 3)
    # nearest is code 0 (distance 0.2), but code 1 has the larger dot product (3.6 against 1.2)
    dot_book = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    dot_z = torch.tensor([[1.2, 0.0]]).reshape(1, 2, 1, 1)
    cases = [("by hand: 3 codes in 2-D, positions (0.1, 0.1), (0.9, -0.2), (0.2, 1.5)", hand_z, hand_book),
             ("one position at (1.2, 0), codes (1, 0) and (3, 0)", dot_z, dot_book)]
    for shape, k in [((4, 8, 7, 7), 32), ((2, 3, 5, 3), 10), ((1, 16, 2, 2), 128)]:
        cases.append((f"random z_e of shape {shape}, {k} codes", torch.randn(shape, generator=g),
                      torch.randn(k, shape[1], generator=g)))
    failures: list[str] = []

    def unpack(got, case):
        if not isinstance(got, (tuple, list)) or len(got) != 2 or not all(torch.is_tensor(t) for t in got):
            return None, f"{case}: return two tensors, (z_q, indices), not {type(got).__name__}"
        return got, None

    for case, z_e, book in cases:
        b, d, h, w = z_e.shape
        expected = _brute_force_codes(z_e, book)                             # (B, H, W)
        try:
            ok, got = _call(fn, (z_e.clone(), book.clone()), title)
        except Exception as err:  # the learner's code crashed: report it, do not raise
            failures.append(f"{case}: your function raised {type(err).__name__}: {err}")
            continue
        if not ok:
            return False
        got, problem = unpack(got, case)
        if problem:
            failures.append(problem)
            continue
        z_q, indices = got[0].detach(), got[1]
        if indices.numel() == b * h * w and tuple(indices.shape) != (b, h, w):
            failures.append(f"{case}: indices have shape {tuple(indices.shape)}; give one per position, "
                            f"(B, H, W) = {(b, h, w)} (reshape them)")
            continue
        if tuple(indices.shape) != (b, h, w):
            failures.append(f"{case}: indices should have shape (B, H, W) = {(b, h, w)}, got {tuple(indices.shape)}")
            continue
        indices = indices.long()
        if not torch.equal(indices, expected):
            distances = (z_e.permute(0, 2, 3, 1).unsqueeze(-2) - book).pow(2).sum(-1)            # (B, H, W, K)
            scrambled = _brute_force_codes(z_e.reshape(-1, d).reshape(b, h, w, d).permute(0, 3, 1, 2), book)
            slips = [
                ((z_e.permute(0, 2, 3, 1) @ book.T).argmax(-1),
                 "you picked the code with the largest dot product z.e; the nearest code minimises "
                 "|z - e|^2 = |z|^2 - 2 z.e + |e|^2, and the |e|^2 term matters when codes differ in length"),
                (distances.argmax(-1), "you picked the *farthest* code: nearest is argmin of the distances"),
                (scrambled, "the vectors got mixed up: z_e.reshape(-1, D) on a (B, D, H, W) tensor mixes channels "
                            "and positions; move the channels last first, z_e.permute(0, 2, 3, 1).reshape(-1, D)"),
            ]
            slip = next((text for wrong, text in slips if not torch.equal(wrong, expected)
                         and torch.equal(indices, wrong)), None)
            failures.append(f"{case}: wrong indices, e.g. {indices.flatten()[:4].tolist()} where the nearest codes "
                            f"are {expected.flatten()[:4].tolist()}" + (f": {slip}" if slip else ""))
            continue
        chosen = book[expected].permute(0, 3, 1, 2)                          # (B, D, H, W)
        if tuple(z_q.shape) != (b, d, h, w):
            hint = (": that is channels last; permute back to (B, D, H, W)"
                    if tuple(z_q.shape) == (b, h, w, d) else "")
            failures.append(f"{case}: z_q should have the shape of z_e, {(b, d, h, w)}, got {tuple(z_q.shape)}{hint}")
        elif torch.allclose(z_q, z_e) and not torch.allclose(chosen, z_e):
            failures.append(f"{case}: z_q equals z_e: the forward pass must output the chosen codebook vectors "
                            "(the straight-through trick changes only the gradient)")
        elif not torch.allclose(z_q, chosen, atol=1e-5):
            failures.append(f"{case}: the indices are right but z_q does not hold the chosen codebook vectors "
                            "codebook[indices], channels first")

    def gradient_case():
        z_e = torch.randn(3, 4, 5, 5, generator=g).requires_grad_()
        book = torch.randn(12, 4, generator=g).requires_grad_()
        weights = torch.randn(3, 4, 5, 5, generator=g)                        # d loss / d z_q
        got = _learner(fn, (z_e, book), title)
        got, problem = unpack(got, "the gradient test")
        if problem:
            return problem
        z_q = got[0]
        if tuple(z_q.shape) != tuple(z_e.shape):
            return "the gradient test needs z_q of z_e's shape (see above)"
        if not z_q.requires_grad:
            return ("z_q carries no gradient, so the encoder could never learn from the reconstruction: "
                    "codebook[indices] has no path back to z_e. Use the straight-through trick, "
                    "z_q = z_e + (e - z_e).detach()")
        (z_q * weights).sum().backward()
        if z_e.grad is None or not z_e.grad.abs().max() > 0:
            return ("the gradient does not reach z_e: codebook[indices] alone passes it to the codebook only. "
                    "Use z_q = z_e + (e - z_e).detach(), which is e going forward and the identity going back")
        if not torch.allclose(z_e.grad, weights, atol=1e-5):
            return ("the gradient reaches z_e but changed on the way: straight-through copies d loss / d z_q to "
                    "z_e unchanged (z_q = z_e + (e - z_e).detach())")
        return None

    try:
        problem = gradient_case()
    except _NotWritten:
        return False
    except Exception as err:  # the learner's code crashed: report it, do not raise
        problem = f"in the gradient test your function raised {type(err).__name__}: {err}"
    if problem:
        failures.append(problem)
    return _report(title, failures, len(cases) + 1)


def check_perplexity(fn: Callable[[torch.Tensor, int], float]) -> bool:
    """Check ``fn(indices, n_codes) -> perplexity``: exp(entropy) of how often each code is chosen.

    indices: chosen code numbers, any shape (a (B, 7, 7) code grid, say); n_codes: K. With p_k the share
    of the choices that fell on code k, the perplexity is exp(-sum_k p_k log p_k), unused codes adding 0.

    Hidden tests: five cases worked by hand (one code for everything: 1; four codes used equally: 4; two
    of eight: 2; shares 3/4 and 1/4: exp(0.5623) = 1.7548; 16 codes used 10 times each: 16) and two random
    ones, a (B, 7, 7) grid among them. The messages name the usual slips: the entropy itself (no exp), the
    entropy in bits put into exp, the number of distinct codes, NaN from 0 log 0, counts divided by K
    instead of by the number of choices.
    The exercise of notebook 11; ``ah.vq.perplexity`` is the reference answer.
    """
    title = "perplexity"
    g = torch.Generator().manual_seed(12)
    skewed = torch.multinomial(torch.tensor([8.0, 4, 2, 1, 1, 0, 0, 0] + [0.0] * 56), 6 * 49, replacement=True,
                               generator=g).reshape(6, 7, 7)
    cases = [
        ("[3, 3, 3, 3], 8 codes: one code takes every choice", torch.tensor([3, 3, 3, 3]), 8, 1.0),
        ("[0, 1, 2, 3], 4 codes: all used equally", torch.tensor([0, 1, 2, 3]), 4, 4.0),
        ("[0, 0, 1, 1], 8 codes: two used, six never", torch.tensor([0, 0, 1, 1]), 8, 2.0),
        ("[0, 0, 0, 1], 4 codes: shares 3/4 and 1/4", torch.tensor([0, 0, 0, 1]), 4,
         math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))),
        ("16 codes, each chosen 10 times", torch.arange(16).repeat(10), 16, 16.0),
        ("a (6, 7, 7) code grid, 64 codes, five in use unevenly", skewed, 64, None),
        ("2,000 random choices among 100 codes", torch.randint(0, 100, (2000,), generator=g), 100, None),
    ]
    failures: list[str] = []
    for case, indices, k, by_hand in cases:
        counts = torch.bincount(indices.flatten(), minlength=k).double()
        p = counts / counts.sum()
        used = p[p > 0]
        entropy = float(-(used * used.log()).sum())
        expected = math.exp(entropy)
        if by_hand is not None:
            assert math.isclose(expected, by_hand, rel_tol=1e-9), (case, expected, by_hand)
        try:
            ok, got = _call(fn, (indices.clone(), k), title)
        except Exception as err:  # the learner's code crashed: report it, do not raise
            failures.append(f"{case}: your function raised {type(err).__name__}: {err}")
            continue
        if not ok:
            return False
        value = _one_number(got, "perplexity")
        if isinstance(value, str):
            failures.append(f"{case}: {value}")
            continue
        if math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-6):
            continue
        if math.isnan(value):
            failures.append(f"{case}: NaN: an unused code gives 0 * log 0; count only the codes that were chosen "
                            "(p > 0), since p log p goes to 0 as p goes to 0")
            continue
        slips = [
            (entropy, "that is the entropy in nats; the perplexity is exp(entropy)"),
            (entropy / math.log(2), "that is the entropy in bits; the perplexity is 2 ** (bits) = exp(nats)"),
            (math.exp(entropy / math.log(2)), "you took the entropy in bits (log2) but raised e to it; use "
                                              "exp with natural logs, or 2 ** with log2"),
            (float((counts > 0).sum()), "that counts the distinct codes used; the perplexity weighs them by how "
                                        "often they are chosen"),
            (math.exp(float(-((counts / k)[counts > 0] * (counts / k)[counts > 0].log()).sum())),
             "the shares must be counts divided by the number of choices, not by K, so that they sum to 1"),
        ]
        slip = next((text for wrong, text in slips if not math.isclose(wrong, expected, rel_tol=1e-6)
                     and math.isclose(value, wrong, rel_tol=1e-4, abs_tol=1e-6)), None)
        failures.append(f"{case}: the perplexity is {expected:.4f}, you returned {value:.4f}" + (f": {slip}" if slip else ""))
    return _report(title, failures, len(cases))
