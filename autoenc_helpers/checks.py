"""Exercise checks: run hidden tests on a learner's function and say, in plain words, what is right.

Each ``check_*`` function takes the learner's function, prints one line per
finding and returns True when every hidden test passes. A stub that still
raises ``NotImplementedError`` gets a friendly "not written yet" and False,
never a crash, so a notebook runs top to bottom before the exercises are done.

A check is a list of hidden test cases, a table of the usual slips (a known
wrong answer and the hint it earns) and what is special to it; one runner,
``_run_cases``, calls the learner's function, catches and reports. The
sections follow the lessons, 01 to 12.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Callable, Iterable
from functools import partial

import torch
from torch import nn

__all__ = [
    "check_per_image_squared_error", "check_train_epoch",                               # 01
    "check_gaussian_noise", "check_psnr", "check_random_corruption",                     # 02
    "check_l1_activation_penalty", "check_kl_sparsity_penalty", "check_sparse_kl_objective",   # 03
    "check_vae_loss", "check_encoder_head",                                              # 04
    "check_reparameterize", "check_leave_one_out_score",                                 # 05
    "check_gaussian_kl",                                                                 # 06
    "check_free_bits_kl",                                                                # 07
    "check_conv_output_size", "check_conv_transpose_output_size", "check_conv_decoder",  # 08
    "check_roc_auc", "check_false_alarm_threshold",                                      # 09
    "check_completion_loss",                                                             # 10
    "check_quantize", "check_perplexity",                                                # 11
    "check_shard_indices",                                                               # 12
]

PASS, FAIL = "✅", "❌"

SHOWN = 3
"""How many findings a failed check prints (the rest are counted, "... and N more"); the tests raise it."""


# ---------------------------------------------------------------------------------------------
# The runner every check shares: call the learner's function, catch, judge, report

TIME_LIMIT_S = 5
"""Seconds one hidden test may take before the check gives up on it ("took too long")."""


class TookTooLong(Exception):
    """The learner's function ran past the time limit of one hidden test."""


class _NotWritten(Exception):
    """The learner's function still raises NotImplementedError (and the check has said so)."""


class _Slip(Exception):
    """A finding about the learner's answer, raised from deep inside a hidden test."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Interrupt the block after ``seconds`` (main thread on Unix; elsewhere no limit)."""
    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def stop(signum, frame):
        raise TookTooLong(f"it took longer than {seconds:g} s on one hidden test; look for a loop that never ends")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _as_float32(value):
    """A floating result in another precision (float64, float16) as float32, so it compares with the reference."""
    if torch.is_tensor(value) and value.is_floating_point() and value.dtype != torch.float32:
        return value.float()
    if isinstance(value, tuple) and any(torch.is_tensor(v) for v in value):
        return type(value)(*map(_as_float32, value)) if hasattr(value, "_fields") else tuple(map(_as_float32, value))
    return value


def _learner(fn: Callable, args: tuple, title: str):
    """Call the learner's function on one hidden test and return its result, a floating one in float32.

    The one place that decides "not written yet": when ``fn`` still raises NotImplementedError it prints
    a friendly line and raises _NotWritten, which ends the check. Raises TookTooLong past the time limit,
    and ValueError when the function changed one of its input tensors in place (which a caller would not
    expect), so the check reports both as findings.
    """
    before = [a.detach().clone() if torch.is_tensor(a) else None for a in args]
    try:
        with _time_limit(TIME_LIMIT_S):
            result = fn(*args)
    except NotImplementedError:
        print(f"⏳ {title}: not written yet. Replace `raise NotImplementedError` with your code and run the cell "
              "again.")
        raise _NotWritten from None
    for position, (arg, copy) in enumerate(zip(args, before)):
        if copy is not None and not torch.equal(arg.detach(), copy):
            raise ValueError(f"it changed its input number {position + 1} in place; compute a new tensor "
                             "instead (for example x = x + noise, not x += noise or x.add_(noise))")
    return _as_float32(result)


def _raises(fn: Callable, args: tuple, title: str) -> Exception | None:
    """The error the learner's function raises on ``args``, or None when it returns (for inputs it must refuse)."""
    try:
        _learner(fn, args, title)
    except _NotWritten:
        raise
    except Exception as err:
        return err
    return None


def _said(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _crash_named(case: tuple, err: BaseException) -> str:
    """How a crash reads for a case whose first item is its description."""
    return f"{case[0]}: your function raised {_said(err)}"


def _report(title: str, failures: list[str], n_cases: int) -> bool:
    if failures:
        print(f"{FAIL} {title}: {len(failures)} of {n_cases} hidden tests failed.")
        for line in failures[:SHOWN]:
            print(f"   - {line}")
        if len(failures) > SHOWN:
            print(f"   - ... and {len(failures) - SHOWN} more")
        return False
    print(f"{PASS} {title}: all {n_cases} hidden tests pass.")
    return True


def _run_cases(title: str, cases: list, test: Callable, *, crash: Callable = _crash_named,
               n_cases: int | None = None, seed: int | None = None, report: Callable = _report) -> bool:
    """Run a check's hidden tests and report them: the loop that every ``check_*`` shares.

    ``test(case)`` calls the learner's function through ``_learner`` and judges the answer. It returns
    what is wrong: None, one sentence, or several (a list, or a generator that yields them, so that the
    findings made before a crash are kept); a ``_Slip`` raised inside is a finding too. Any other error
    is the learner's code crashing: ``crash(case, err)`` says it as a finding instead of raising. The
    first hidden test that is not written yet ends the check: False, after ``_learner`` has said so.

    n_cases: how many hidden tests the report counts (default: one per case).
    seed: run on a copy of the global random state seeded with it, so the learner's own state is left alone.
    report: how the findings are printed, ``_report`` unless a check needs its own.
    """
    failures: list[str] = []
    with contextlib.ExitStack() as private:
        if seed is not None:
            private.enter_context(torch.random.fork_rng(devices=[]))
            torch.manual_seed(seed)
        for case in cases:
            try:
                found = test(case)
                if isinstance(found, str):
                    found = [found]
                for finding in found or ():
                    if finding:
                        failures.append(finding)
            except _NotWritten:
                return False
            except _Slip as slip:
                failures.append(str(slip))
            except Exception as err:  # the learner's code crashed: report it, do not raise
                failures.append(crash(case, err))
    return report(title, failures, len(cases) if n_cases is None else n_cases)


def _first_slip(got, slips: Iterable[tuple], same: Callable) -> str | None:
    """The hint of the (wrong answer, hint) in ``slips`` that ``got`` matches, else None.

    When several slips give the same value on a hidden test (a degenerate case: the prior itself, one code
    for everything), the check cannot tell which one was made, so the hint names each of them.
    """
    hints = list(dict.fromkeys(hint for wrong, hint in slips if same(got, wrong)))
    if len(hints) > 1:
        return ("one of these usual slips, which give the same value here: "
                + " ".join(f"({i}) {hint}" for i, hint in enumerate(hints, 1)))
    return hints[0] if hints else None


def _hint(slip: str | None) -> str:
    return f": {slip}" if slip else ""


def _fmt(values) -> str:
    return "[" + ", ".join(f"{float(v):.2f}" for v in values) + "]"


def _one_number(got, what: str) -> float | str:
    """The learner's result as a float, or a sentence saying why it is not one number."""
    if torch.is_tensor(got):
        if got.numel() != 1:
            return f"return one number, the {what}, not a tensor of shape {tuple(got.shape)}"
        return float(got.detach())
    if isinstance(got, bool):
        return f"return a number, the {what}, not {got!r}"
    try:
        return float(got)
    except (TypeError, ValueError):
        return f"return a number, the {what}, not {type(got).__name__}"


_NAN_LOGVAR = ("z contains NaN where logvar < 0: the square root of a negative log-variance. logvar can be any "
               "real number; sigma = exp(0.5 * logvar) is always positive")


# ---------------------------------------------------------------------------------------------
# Lesson 01: the error of each image, and one epoch of training written as a function


def check_per_image_squared_error(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(x_hat, x) -> (B,)``: squared error summed over each image's pixels, one number per image."""
    title = "per_image_squared_error"
    g = torch.Generator().manual_seed(7)

    def test(shape):
        x = torch.rand(shape, generator=g)
        x_hat = torch.rand(shape, generator=g)
        expected = ((x_hat - x) ** 2).flatten(1).sum(1)
        got = _learner(fn, (x_hat, x), title)
        if not torch.is_tensor(got):
            return f"return a tensor, not {type(got).__name__}"
        if tuple(got.shape) != (shape[0],):
            hint = ("you reduced over the batch too: keep one number per image"
                    if got.dim() == 0 else "sum over every axis except the first (the batch)")
            return (f"for a batch of shape {shape} the result should have shape ({shape[0]},), "
                    f"got {tuple(got.shape)}: {hint}")
        if torch.allclose(got, expected / (shape[1] * shape[2] * shape[3]), rtol=1e-4):
            return "you took the mean over pixels; the exercise asks for the sum (per image, not per pixel)"
        if not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
            return (f"for a batch of shape {shape} the values differ: expected {expected[:3].tolist()}, "
                    f"got {got[:3].tolist()}")
        return None

    return _run_cases(title, [(4, 1, 28, 28), (1, 1, 28, 28), (3, 1, 5, 7)], test,
                      crash=lambda shape, err: f"for a batch of shape {shape} your function raised {_said(err)}")


class _Recorder(nn.Module):
    """Wraps a model and records, for every forward call, the mode, the input and the output."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.calls: list[tuple[bool, torch.Tensor, torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        self.calls.append((self.training, x.detach().clone(), out.detach().clone()))
        return out


def _tiny_autoencoder(seed: int) -> _Recorder:
    """A small 784-16-2-16-784 autoencoder (Sigmoid output), weights drawn from ``seed``, wrapped to record."""
    torch.manual_seed(seed)
    inner = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 2),       # (B, 2)
                          nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 784), nn.Sigmoid(),
                          nn.Unflatten(1, (1, 28, 28)))                                         # (B, 1, 28, 28)
    return _Recorder(inner)


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor], atol: float = 1e-5) -> bool:
    return all(torch.allclose(x, y, atol=atol, rtol=1e-4) for x, y in zip(a, b))


def _one_sgd_step(seed: int, images: torch.Tensor, lr: float, *, zero_grad: bool = True,
                  loss: Callable = nn.functional.mse_loss, garbage: float = 0.0) -> list[torch.Tensor]:
    """The parameters after one SGD step on the whole batch, done right (or with a chosen mistake)."""
    model = _tiny_autoencoder(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for p in model.parameters():
        p.grad = torch.full_like(p, garbage)                      # what a previous step may have left behind
    value = loss(model(images), images)
    if zero_grad:
        optimizer.zero_grad()
    value.backward()
    optimizer.step()
    return _params(model)


def check_train_epoch(fn: Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor, int, torch.Generator], float]
                      ) -> bool:
    """Check ``fn(model, optimizer, images, batch_size, generator) -> float``: one epoch of autoencoder training.

    Hidden tests, on a small autoencoder and 50 random 28x28 images: the model is put in training mode; every
    image is used exactly once, in minibatches of at most ``batch_size``, in an order shuffled with
    ``generator``; one SGD step on a single batch matches ``zero_grad``, MSE per pixel, ``backward``, ``step``
    even when stale gradients are left on the parameters; the images are not changed; the return value is a
    float, the epoch's mean training MSE per pixel weighted by batch size; and five epochs lower the loss.
    """
    title = "train_epoch"
    images = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(11))

    def epoch(_):
        # 1. one ordinary epoch: 50 images in batches of 16 (16, 16, 16, 2), model handed over in eval mode;
        # the common runner reports images changed in place
        model = _tiny_autoencoder(0)
        model.eval()
        before = _params(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        torch.manual_seed(123)
        got = _learner(fn, (model, optimizer, images, 16, torch.Generator().manual_seed(5)), title)
        calls = model.calls
        if not calls:
            yield "your function never called model(batch): the forward pass is missing"
            return
        if not all(mode for mode, _, _ in calls):
            yield ("the model ran in eval mode: call model.train() at the start of the epoch "
                   "(the model may come from an evaluation, as it did here)")
        seen = torch.cat([x for _, x, _ in calls])                                   # (total, 1, 28, 28)
        sizes = [x.shape[0] for _, x, _ in calls]
        match = (seen.flatten(1)[:, None, :] == images.flatten(1)[None]).all(-1)     # (total, 50)
        counts = match.sum(0)
        if not match.any(1).all():                   # then which images were used cannot be told
            yield "the model saw inputs that are not the training images: feed it images[idx] unchanged"
        elif (counts == 0).any():
            yield (f"{int((counts == 0).sum())} of 50 images were never used in the epoch "
                   "(a dropped last batch?): every image once")
        elif (counts > 1).any():
            yield (f"some images were used more than once ({sum(sizes)} forward rows for 50 images): "
                   "cut one permutation into consecutive batches")
        if max(sizes) > 16:
            yield (f"a batch of {max(sizes)} images with batch_size = 16: "
                   "take images[order[start:start + batch_size]]")
        if match.any(1).all() and (counts == 1).all():
            position = match.float().argmax(1)                                       # dataset index of each row
            if torch.equal(position, torch.arange(50)):
                yield ("the images came in their stored order: shuffle them each epoch with "
                       "torch.randperm(n, generator=generator)")
            else:
                model2 = _tiny_autoencoder(0)
                torch.manual_seed(456)                                               # a different global seed
                fn(model2, torch.optim.SGD(model2.parameters(), lr=0.1), images, 16,
                   torch.Generator().manual_seed(5))
                again = torch.cat([x for _, x, _ in model2.calls])
                if not torch.equal(again, seen):
                    yield ("two runs with generators seeded alike shuffled differently: "
                           "pass generator=generator to torch.randperm")
        if _same(before, _params(model), atol=0.0):
            yield ("the parameters did not change: call optimizer.step() after loss.backward() "
                   "(and optimizer.zero_grad() before backward, not between backward and step)")
        # the return value: the epoch's mean loss per pixel, each batch weighted by its size
        batch_losses = torch.stack([((out - x) ** 2).mean() for _, x, out in calls])
        weights = torch.tensor(sizes, dtype=torch.float32)
        expected = float((batch_losses * weights).sum() / weights.sum())
        if torch.is_tensor(got):
            yield ("return a Python float (loss.item()), not a tensor: a tensor keeps the whole graph "
                   "of the last batch alive")
        elif isinstance(got, bool) or not isinstance(got, (int, float)):
            yield f"return the epoch's mean training loss as a float, not {type(got).__name__} {got!r}"
        elif not math.isclose(got, expected, rel_tol=1e-3):
            slips = [(float(batch_losses.mean()), "the plain mean of the batch losses: the last batch holds only 2 "
                      "images, so weight each batch's loss by its size (loss.item() * len(batch)), then divide by "
                      "the number of images"),
                     (float(batch_losses[-1]), "the last batch's loss alone: return the average over the epoch"),
                     (float(batch_losses.sum()), "the sum of the batch losses: divide by the number of images "
                      "after weighting each batch by its size"),
                     (float((batch_losses * weights).sum()), "the weighted sum: divide it by the number of images"),
                     (expected * 784, "a sum over pixels: the loss is the mean over pixels (F.mse_loss)")]
            hint = (_first_slip(got, slips, lambda a, b: math.isclose(a, b, rel_tol=1e-3))
                    or "the mean squared error per pixel over the epoch, each batch weighted by its size")
            yield f"you returned {got:.5f}, the epoch's mean training MSE per pixel was {expected:.5f}: {hint}"
        # 2. one batch holding every image, with stale gradients left on the parameters: the step must match
        model = _tiny_autoencoder(1)
        for p in model.parameters():
            p.grad = torch.full_like(p, 0.3)
        fn(model, torch.optim.SGD(model.parameters(), lr=0.5), images, 64, torch.Generator().manual_seed(0))
        after = _params(model)
        if not _same(after, _one_sgd_step(1, images, 0.5)):
            slips = [(dict(zero_grad=False, garbage=0.3), "the gradients left by an earlier step were added to this "
                      "one: call optimizer.zero_grad() before loss.backward()"),
                     (dict(loss=lambda a, b: ((a - b) ** 2).sum()),
                      "the loss is summed: use the mean squared error per pixel, F.mse_loss(x_hat, batch)"),
                     (dict(loss=lambda a, b: (a - b).abs().mean()),
                      "that is the absolute error: the loss is the squared error, F.mse_loss")]
            hint = (_first_slip(after, slips, lambda got, slip: _same(got, _one_sgd_step(1, images, 0.5, **slip)))
                    or "loss = F.mse_loss(model(batch), batch); optimizer.zero_grad(); loss.backward(); "
                       "optimizer.step()")
            yield f"one step on a batch of all 50 images does not match plain training: {hint}"
        # 3. a few epochs with Adam must lower the loss
        model = _tiny_autoencoder(2)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        generator = torch.Generator().manual_seed(3)
        losses = [fn(model, optimizer, images, 10, generator) for _ in range(5)]
        # lower by more than rounding: a model that never steps gives the same loss up to the order of the sums
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in losses) and \
                not losses[-1] < (1 - 1e-3) * losses[0]:
            yield f"five epochs with Adam did not lower the loss ({losses[0]:.4f} -> {losses[-1]:.4f})"

    # the hidden tests seed the global random state (models, a global seed that must not matter): on a copy
    return _run_cases(title, ["one epoch, one step, five epochs"], epoch, n_cases=9, seed=0,
                      crash=lambda _, err: f"your function raised {_said(err)}")


# ---------------------------------------------------------------------------------------------
# Lesson 02: corruption and PSNR


def check_gaussian_noise(fn: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]) -> bool:
    """Check ``fn(images, sigma, generator) -> noisy images``: N(0, sigma^2) noise added, clipped to [0, 1]."""
    title = "gaussian_noise"
    grey = torch.full((64, 1, 28, 28), 0.5)                 # mid-grey: clipping is negligible for sigma = 0.1

    def noise(_):
        noisy = _learner(fn, (grey.clone(), 0.1, torch.Generator().manual_seed(0)), title)
        if not torch.is_tensor(noisy) or noisy.shape != grey.shape:
            got = tuple(noisy.shape) if torch.is_tensor(noisy) else type(noisy).__name__
            yield f"return a tensor of the input's shape {tuple(grey.shape)}, got {got}"
            return
        diff = noisy - grey
        std, mean = float(diff.std()), float(diff.mean())
        if abs(mean) > 0.01:
            yield (f"the noise should average 0, yours averages {mean:.3f}: torch.randn draws N(0, 1), "
                   "torch.rand draws uniform numbers in [0, 1)")
        if abs(std - 0.1) > 0.005:
            hint = ("that is sigma squared: sigma is the standard deviation, multiply randn by sigma itself"
                    if abs(std - 0.01) < 0.002 else "multiply standard normal noise by sigma")
            yield f"with sigma = 0.1 the noise should have standard deviation 0.1, yours has {std:.4f}: {hint}"
        again = fn(grey.clone(), 0.1, torch.Generator().manual_seed(0))
        if not torch.equal(again, noisy):
            yield ("two calls with generators seeded alike gave different noise: "
                   "pass generator=generator to torch.randn")
        bright = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1))
        before = bright.clone()
        out = fn(bright, 0.5, torch.Generator().manual_seed(2))
        if not torch.equal(bright, before):
            yield ("your function changed the clean images in place: build a new tensor "
                   "(images + noise), do not add into the input")
        if float(out.min()) < 0 or float(out.max()) > 1:
            yield (f"values run from {float(out.min()):.2f} to {float(out.max()):.2f}; "
                   "clip them to [0, 1] with .clamp(0, 1), like the clean pixels")
        same = fn(bright, 0.0, torch.Generator().manual_seed(3))
        if not torch.allclose(same, bright):
            yield "with sigma = 0 the images should come back unchanged"

    return _run_cases(title, ["six properties of the noise"], noise, n_cases=6,
                      crash=lambda _, err: f"your function raised {_said(err)}")


def check_psnr(fn: Callable[[float], float]) -> bool:
    """Check ``fn(mse) -> PSNR in dB`` for images in [0, 1] (peak value 1)."""
    title = "psnr"

    def test(mse):
        expected = 10 * math.log10(1 / mse)
        got = _learner(fn, (mse,), title)
        try:
            got = float(got)
        except (TypeError, ValueError):
            return f"psnr({mse}) returned {got!r}; return a number of decibels"
        if math.isclose(got, expected, rel_tol=1e-4):
            return None
        slips = [(2 * expected, "20·log10 is for an amplitude such as the RMSE; the MSE is a power, so 10·log10"),
                 (-expected, "the sign is flipped: a smaller error must give a larger PSNR"),
                 (10 * math.log(1 / mse), "that is the natural logarithm; decibels use log base 10 (math.log10)")]
        hint = (_first_slip(got, slips, lambda a, b: math.isclose(a, b, rel_tol=1e-4))
                or "PSNR = 10 · log10(peak² / MSE), with peak = 1 for pixels in [0, 1]")
        return f"psnr({mse}) should be {expected:.2f} dB, you returned {got:.2f}: {hint}"

    return _run_cases(title, [0.01, 0.001, 0.0025, 0.1, 0.04], test,
                      crash=lambda mse, err: f"psnr({mse}) raised {_said(err)}")


def check_random_corruption(fn: Callable[[torch.Tensor, dict, torch.Generator], torch.Tensor]) -> bool:
    """Check ``fn(images, max_levels, generator) -> corrupted images``: a kind and a level drawn per image.

    For every image, a kind drawn uniformly from the keys of ``max_levels`` and a level uniform in
    [0, that kind's maximum], all random numbers from ``generator``. Hidden tests: the shape, the range
    [0, 1], the input left alone, the same seed giving the same result whatever the global seed,
    another seed giving another result, one level per image (spread as uniform numbers are) and
    never above the maximum, one kind per image (each kind in about its share of the images), and
    an unknown kind refused with an error that names it, even next to a known kind that the only
    image draws. The exercise of notebook 02;
    :class:`~autoenc_helpers.noise.RandomCorruption` does the same with its own generator.
    """
    title = "random_corruption"
    names = ["shape", "range", "input left alone", "same seed, same damage", "another seed, other damage",
             "one level per image", "levels within the maximum", "one kind per image", "unknown kind refused"]

    def run(images, max_levels, seed, global_seed=0):
        torch.manual_seed(global_seed)                   # a learner who uses the global generator is caught
        return _learner(fn, (images, dict(max_levels), torch.Generator().manual_seed(seed)), title)

    def as_images(out, like, what):
        if not torch.is_tensor(out) or tuple(out.shape) != tuple(like.shape):
            got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
            raise _Slip(f"{what}: return a tensor of the input's shape {tuple(like.shape)}, got {got}")
        return out.detach().float()

    def corruption(_):
        # the common runner reports clean images changed in place
        mixed = {"gaussian": 0.6, "masking": 0.5, "salt_and_pepper": 0.3}
        pictures = torch.rand(96, 1, 28, 28, generator=torch.Generator().manual_seed(11))
        before = pictures.clone()
        try:
            first = as_images(run(pictures, mixed, seed=1), pictures, "with three kinds")
            if float(first.min()) < 0 or float(first.max()) > 1:
                yield (f"values run from {float(first.min()):.2f} to {float(first.max()):.2f}: keep them "
                       "in [0, 1] (ah.corrupt clips Gaussian noise for you)")
            again = as_images(run(before.clone(), mixed, seed=1, global_seed=123), pictures, "a second call")
            if not torch.equal(again, first):
                yield ("two calls with generators seeded alike gave different results: draw every "
                       "random number (the kinds, the levels and the noise) with generator=generator, "
                       "never from the global torch random state")
            other = as_images(run(before.clone(), mixed, seed=2), pictures, "another seed")
            if torch.equal(other, first):
                yield ("another seed gave exactly the same damage: the random numbers must come "
                       "from the generator you are given")
        except _Slip as slip:
            yield str(slip)

        # one kind, masking up to 0.8, on white images: each image's share of black pixels is its level
        white = torch.ones(400, 1, 28, 28)
        try:
            out = as_images(run(white, {"masking": 0.8}, seed=3), white, "masking only")
            share = (out == 0).float().flatten(1).mean(1)                          # (400,) about each level
            if float(share.std()) < 0.1:
                yield (f"every image got about the same level (black share {float(share.mean()):.2f} "
                       f"+- {float(share.std()):.2f}): draw one level per image, "
                       "torch.rand(B, generator=generator) * the maximum")
            elif not 0.17 <= float(share.std()) <= 0.29 or float(share.min()) > 0.1 or float(share.max()) < 0.65:
                yield (f"the levels should spread evenly over [0, 0.8] (from about 0 to 0.8, standard "
                       f"deviation about 0.23); your images' black shares run from "
                       f"{float(share.min()):.2f} to {float(share.max()):.2f} (standard deviation "
                       f"{float(share.std()):.2f})")
            if float(share.max()) > 0.86:
                yield (f"some images lost {float(share.max()):.0%} of their pixels, above the maximum "
                       "p = 0.8: a level is a uniform number in [0, 1) times the kind's maximum")
        except _Slip as slip:
            yield str(slip)

        # three kinds on mid-grey images: the values tell the kind (masking: 0 and 0.5; salt-and-pepper:
        # also 1; Gaussian: anything else)
        grey = torch.full((600, 1, 28, 28), 0.5)
        try:
            out = as_images(run(grey, mixed, seed=4), grey, "three kinds")
            flat = out.flatten(1)
            other_values = ((flat != 0) & (flat != 0.5) & (flat != 1)).any(1)
            salt = (flat == 1).any(1) & ~other_values
            masked = (flat == 0).any(1) & ~salt & ~other_values
            shares = {"gaussian": float(other_values.float().mean()), "masking": float(masked.float().mean()),
                      "salt_and_pepper": float(salt.float().mean())}
            if max(shares.values()) > 0.9 or sum(v > 0.05 for v in shares.values()) < 2:
                yield ("every image got the same kind of noise: draw one kind per image, "
                       "torch.randint(len(kinds), (B,), generator=generator)")
            elif not all(0.2 <= v <= 0.47 for v in shares.values()):
                yield ("each of the three kinds should hit about a third of the images; yours: "
                       + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
            clean = float((flat == 0.5).all(1).float().mean())      # a right answer leaves about 0.2% clean
            if clean > 0.05:
                yield (f"{clean:.0%} of the mid-grey images came back unchanged, where levels uniform in "
                       "[0, maximum] leave almost none: give every image one of the kinds (an index from 0 to "
                       "len(kinds) - 1) at its own level")
            std = (flat[other_values] - 0.5).std(1) if other_values.any() else torch.zeros(1)
            if float(std.max()) > 0.6 * 1.15:
                yield (f"a Gaussian image has noise of standard deviation {float(std.max()):.2f}, "
                       "above the maximum sigma = 0.6")
        except _Slip as slip:
            yield str(slip)

        err = _raises(fn, (grey[:4], {"blur": 0.5}, torch.Generator().manual_seed(5)), title)
        if err is None:
            yield ("an unknown kind ('blur') was accepted silently: let it raise an error that names "
                   "it (ah.corrupt does)")
        elif "blur" not in str(err):
            yield (f"an unknown kind raised {type(err).__name__}: {err!s:.80}, which does not "
                   "name the kind ('blur')")
        # a known kind next to an unknown one, one image: refused whichever kind the image draws
        elif any(_raises(fn, (grey[:1], {"masking": 0.5, "blur": 0.3}, torch.Generator().manual_seed(seed)), title)
                 is None for seed in range(6, 14)):
            yield ("{'masking': 0.5, 'blur': 0.3} was accepted when the one image drew masking: "
                   "check every key of max_levels before drawing anything, not only the kinds "
                   "that happen to be drawn")

    # the hidden tests draw on a private copy of the global random state (run() seeds it before each call)
    return _run_cases(title, ["nine properties"], corruption, n_cases=len(names), seed=0,
                      crash=lambda _, err: f"your function raised {_said(err)}")


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


def _penalty_test(fn: Callable, title: str, expected_fn: Callable, wrong_fn: Callable, nan_hint: str,
                  finite_hint: str, positive_hint: str = "") -> Callable:
    """The hidden test both penalty checks share, for cases (description, h, extra args). An expected
    value of None asks only for a finite (finite_hint says how), positive (positive_hint) penalty."""

    def test(case):
        name, h, extra = case
        got = _learner(fn, (h.clone().requires_grad_(True), *extra), title)
        value, problem = _penalty_value(got, name, *h.shape)
        expected = expected_fn(h, *extra)
        if problem is None and expected is None:
            if not math.isfinite(value):
                problem = f"{name}: you returned {value}; {finite_hint}"
            elif value <= 0:
                problem = f"{name}: you returned {value:.6g}; {positive_hint}"
        elif problem is None:
            problem = _diagnose(value, expected, wrong_fn(h, *extra), name)
            if problem is not None and math.isnan(value):
                problem += f": {nan_hint}"
        return problem

    return test


def check_l1_activation_penalty(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(h) -> penalty``: the sum over units of |h|, averaged over the images of the batch."""
    g = torch.Generator().manual_seed(3)
    cases = [
        # by hand: the images sum to 0 + 0.5 + 0.25 = 0.75 and 1 + 0 + 0.25 = 1.25; their mean is 1.0
        ("h = [[0, 0.5, 0.25], [1, 0, 0.25]]", torch.tensor([[0.0, 0.5, 0.25], [1.0, 0.0, 0.25]]), ()),
        ("8 images, 20 ReLU units", torch.relu(torch.randn(8, 20, generator=g)), ()),
        ("5 images, 7 tanh units (negative values too)", torch.tanh(torch.randn(5, 7, generator=g)), ()),
        ("1 image, 1024 sigmoid units", torch.sigmoid(torch.randn(1, 1024, generator=g)), ()),
        ("64 images, 3 units, every activation 0", torch.zeros(64, 3), ()),
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
    return _run_cases(title, cases, _penalty_test(fn, title, expected, wrong, "the L1 penalty needs no logarithm or "
                                                  "division", "the L1 penalty needs no logarithm or division"))


def _bernoulli_kl_sum(rho: float, rho_hat: torch.Tensor, eps: float = 1e-6, log=torch.log) -> torch.Tensor:
    r = rho_hat.clamp(eps, 1 - eps)
    return rho * log(rho / r) + (1 - rho) * log((1 - rho) / (1 - r))        # elementwise, in nats for torch.log


def check_kl_sparsity_penalty(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> bool:
    """Check ``fn(h, rho) -> penalty``: the sum over units j of KL(Bernoulli(rho) || Bernoulli(rho_hat_j)),
    with rho_hat_j the mean of unit j over the batch, in nats."""
    title = "kl_sparsity_penalty"
    g = torch.Generator().manual_seed(4)
    dead_and_saturated = torch.sigmoid(torch.randn(10, 6, generator=g))
    dead_and_saturated[:, 0], dead_and_saturated[:, 1] = 0.0, 1.0       # a unit always 0, a unit always 1
    cases = [
        # by hand: rho_hat = [0.2, 0.6];
        # unit 1: 0.1*ln(0.1/0.2) + 0.9*ln(0.9/0.8) = -0.0693147 + 0.1060047 = 0.0366900
        # unit 2: 0.1*ln(0.1/0.6) + 0.9*ln(0.9/0.4) = -0.1791759 + 0.7298369 = 0.5506610; sum 0.5873510
        ("h = [[0.1, 0.5], [0.3, 0.7]], rho = 0.1", torch.tensor([[0.1, 0.5], [0.3, 0.7]]), (0.1,)),
        ("16 images, 10 sigmoid units, rho = 0.05", torch.sigmoid(torch.randn(16, 10, generator=g)), (0.05,)),
        ("every unit already at the target rate (h = 0.2 everywhere, rho = 0.2)", torch.full((4, 3), 0.2), (0.2,)),
        ("32 images, 50 sigmoid units, rho = 0.3", torch.sigmoid(2 * torch.randn(32, 50, generator=g) - 1), (0.3,)),
        ("a unit always at 0 and one always at 1, rho = 0.05", dead_and_saturated, (0.05,)),
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

    return _run_cases(title, cases, _penalty_test(
        fn, title, expected, wrong,
        "that is the log of a negative number. rho_hat must be a rate in [0, 1]: did you sum over the batch instead "
        "of averaging each unit over the batch first (h.mean(0))?",
        "clamp rho_hat into [eps, 1 - eps] (e.g. eps = 1e-6) before the logarithms, so that a unit whose mean is "
        "exactly 0 or 1 costs a large finite penalty, not inf or nan",
        "a unit always at 0 or always at 1 is far from the target rate, so the penalty must be large and "
        "positive (a KL divergence is never negative): check the signs and both terms of the formula"))


_OBJECTIVE_KEYS = ["total_loss", "mse_per_pixel", "kl_sparsity_nats"]


def _objective_terms(got, case: str) -> tuple[dict | None, str | None]:
    """The learner's dict of 0-dim tensors, or None and what is wrong with it."""
    if not isinstance(got, dict):
        return None, f"{case}: return a dict of named numbers ({', '.join(_OBJECTIVE_KEYS)}), not {type(got).__name__}"
    missing = [key for key in _OBJECTIVE_KEYS if key not in got]
    if missing:
        return None, f"{case}: the dict has no {missing}; it needs the keys {_OBJECTIVE_KEYS}"
    if list(got)[0] != "total_loss":
        return None, (f"{case}: 'total_loss' must be the first entry (ah.fit minimises the first one), "
                      f"yours starts with {list(got)[0]!r}")
    for key in _OBJECTIVE_KEYS:
        value = got[key]
        if not torch.is_tensor(value) or value.numel() != 1:
            what = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
            return None, f"{case}: {key!r} must be a tensor holding one number, got {what}"
    if not got["total_loss"].requires_grad:
        return None, (f"{case}: 'total_loss' carries no gradient, so training could not follow it: compute it "
                      "from model.encode and model.decode without .detach(), .item() or torch.no_grad()")
    return {key: float(got[key].detach()) for key in _OBJECTIVE_KEYS}, None


def check_sparse_kl_objective(fn: Callable[..., dict]) -> bool:
    """Check ``fn(model, inputs, targets, weight, rho) -> dict``: a sparse autoencoder's objective for ``ah.fit``.

    Expected, in this order: ``"total_loss"`` = mse_per_pixel + weight * kl_sparsity_nats;
    ``"mse_per_pixel"``: the squared error of ``model.decode(h)`` against the *targets*, averaged
    over pixels and images; ``"kl_sparsity_nats"``: the KL penalty of ``h = model.encode(inputs)``
    towards ``rho``, in nats (the sum over units of KL(rho || each unit's mean over the batch)).
    """
    from .losses import kl_sparsity_penalty
    from .models import SparseAutoencoder

    title = "sparse_kl_objective"
    g = torch.Generator().manual_seed(5)
    cases = []
    for n_hidden, batch, weight, rho, noisy in [(16, 8, 1e-3, 0.05, False), (16, 8, 0.0, 0.05, False),
                                               (40, 5, 0.1, 0.2, False), (24, 6, 0.01, 0.05, True),
                                               (32, 3, 1.0, 0.5, False)]:
        with torch.random.fork_rng():                                      # leave the learner's random state alone
            torch.manual_seed(len(cases))
            model = SparseAutoencoder(n_hidden=n_hidden, activation="sigmoid")
        targets = torch.rand(batch, 1, 28, 28, generator=g)
        inputs = (targets + 0.3 * torch.randn(targets.shape, generator=g)).clamp(0, 1) if noisy else targets
        name = (f"{batch} {'noisy ' if noisy else ''}images, {n_hidden} sigmoid units, weight {weight:g}, "
                f"rho {rho:g}")
        cases.append((name, model, inputs, targets, weight, rho))

    def test(case):
        name, model, inputs, targets, weight, rho = case
        with torch.no_grad():
            h = model.encode(inputs)                                        # (B, n_hidden)
            out = model.decode(h)                                           # (B, 1, 28, 28)
            mse = float(((out - targets) ** 2).mean())
            kl = float(kl_sparsity_penalty(h, rho))
            mse_vs_inputs = float(((out - inputs) ** 2).mean())
            kl_default_rho = float(kl_sparsity_penalty(h, 0.05))
            kl_unit_mean = kl / h.shape[1]
        terms, problem = _objective_terms(_learner(fn, (model, inputs, targets, weight, rho), title), name)
        if problem:
            return problem
        wrong_mse = [(mse_vs_inputs, "the error is measured against the inputs; compare the reconstruction "
                                     "with the targets (they differ when the inputs are corrupted)"),
                     (mse * 784, "that is the squared error summed over the 784 pixels; the name says per "
                                 "pixel: average over pixels and images (.mean())")]
        wrong_kl = [(kl_default_rho, "you used rho = 0.05 whatever rho was passed; use the rho argument"),
                    (kl_unit_mean, "you averaged the KL over the units; the penalty is its sum over the units")]
        wrong_total = [(mse + kl, "the penalty is added without its weight: total = mse + weight * kl"),
                       (kl + weight * mse, "the weight multiplies the penalty, not the error"),
                       (mse, "the total is the error alone: add weight * kl")]
        return (_diagnose(terms["mse_per_pixel"], mse, wrong_mse, f"{name}, 'mse_per_pixel'")
                or _diagnose(terms["kl_sparsity_nats"], kl, wrong_kl, f"{name}, 'kl_sparsity_nats'")
                or _diagnose(terms["total_loss"], mse + weight * kl, wrong_total, f"{name}, 'total_loss'"))

    return _run_cases(title, cases, test)


# ---------------------------------------------------------------------------------------------
# Lesson 04: the VAE's loss, and the encoder's head that gives mu, logvar and a draw of z


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

    def test(case):
        b, k = case
        logits = torch.randn(b, 1, 28, 28, generator=g) * 3
        x = torch.rand(b, 1, 28, 28, generator=g)
        mu, logvar = torch.randn(b, k, generator=g), torch.randn(b, k, generator=g)
        recon = bce_with_logits(logits, x, pixels="sum", batch="none")               # (b,) nats per image
        kl = gaussian_kl(mu, logvar, dims="sum", batch="none")                       # (b,) nats per image
        expected = float((recon + kl).mean())
        got = _learner(fn, (logits, x, mu, logvar), title)
        if not torch.is_tensor(got) or got.numel() != 1:
            got_desc = tuple(got.shape) if torch.is_tensor(got) else type(got).__name__
            return (f"return one number (a 0-dim tensor) for the batch, got {got_desc}: "
                    "average the per-image losses over the batch")
        got = float(got)
        if math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-4):
            return None
        sigma = torch.exp(0.5 * logvar)
        slips = [
            (float((recon / 784 + kl).mean()),
             "the reconstruction is averaged over the pixels; the ELBO sums it over the 784 pixels of each image"),
            (float((recon + kl).sum()),
             "the loss is summed over the batch; average it over the images, so it is per image"),
            (float((recon - kl).mean()),
             "the KL has the wrong sign: it is a penalty, 0.5 * (mu^2 + sigma^2 - log sigma^2 - 1) >= 0"),
            (float((recon + 2 * kl).mean()), "the KL misses its factor 1/2"),
            (float((recon + 0.5 * (mu ** 2 + sigma - logvar - 1).sum(1)).mean()),
             "the KL uses sigma = exp(0.5 * logvar) where it needs the variance sigma^2 = exp(logvar)"),
            (float(kl.mean()), "the reconstruction term is missing"),
            (float(recon.mean()), "the KL term is missing"),
        ]
        slip = _first_slip(got, slips, lambda a, b: math.isclose(a, b, rel_tol=1e-4))
        return (f"for a batch of {b} image{'s' * (b != 1)} with {k} latent dimensions the loss should be "
                f"{expected:.2f} nats per image, you returned {got:.2f}" + _hint(slip))

    def crashed(case, err):
        b, k = case
        return f"for a batch of {b} image{'s' * (b != 1)} with {k} latent dimensions your function raised {_said(err)}"

    return _run_cases(title, [(8, 2), (3, 20), (1, 5), (16, 1), (5, 64)], test, crash=crashed)


_HEAD_SHAPES = [(256, 2, 8), (512, 20, 3), (16, 1, 5)]       # (hidden, latent_dim, batch)


def _head_outputs(out, batch: int, k: int) -> tuple[tuple | None, str | None]:
    """The (mu, logvar, z) a learner's head returned, or None and what is wrong with it."""
    if not isinstance(out, (tuple, list)):
        return None, (f"forward should return three tensors (mu, logvar, z), got one {type(out).__name__}")
    if len(out) != 3:
        return None, (f"forward returned {len(out)} things; return three: (mu, logvar, z)"
                      + (": z, the sampled code, is missing" if len(out) == 2 else ""))
    if not all(torch.is_tensor(t) for t in out):
        return None, ("forward should return three tensors (mu, logvar, z), got "
                      + ", ".join(type(t).__name__ for t in out))
    shapes = [tuple(t.shape) for t in out]
    if any(s != (batch, k) for s in shapes):
        return None, (f"for a batch of {batch} hidden vectors and latent_dim={k}, mu, logvar and z should each have "
                      f"shape ({batch}, {k}); got {shapes[0]}, {shapes[1]} and {shapes[2]}")
    return tuple(out), None


def check_encoder_head(make_head: Callable[[int, int], nn.Module]) -> bool:
    """Check ``make_head(hidden, latent_dim)``: an nn.Module whose forward(h) returns ``(mu, logvar, z)``.

    The end of a VAE's encoder (notebook 04): from hidden features h of shape (B, hidden), two heads give
    the mean mu and the log-variance logvar of q(z | x), each (B, latent_dim), and z = mu + sigma * eps
    is one reparameterised draw, sigma = exp(0.5 * logvar), eps ~ N(0, 1) drawn per entry.
    ``make_head`` is usually the learner's class itself, ``check_encoder_head(EncoderHead)``.

    Hidden tests: the three shapes for three (hidden, latent_dim, batch) settings; the gradient of z
    reaches every parameter (both heads), dz/dmu = 1 and dz/dlogvar = 0.5 * (z - mu) for the mu and logvar
    returned; over 20,000 draws of one input, z has mean mu and standard deviation sigma. The messages name
    the usual slips: sigma (or a positive, softplus-ed output) returned in place of logvar, the variance
    exp(logvar) used as sigma, mu + eps without sigma, no eps or one eps for the whole batch, uniform eps,
    one head used for both mu and logvar, and ``Normal(...).sample()``, which cuts the gradient.
    """
    title = "EncoderHead"

    def build(hidden, k):
        head = _learner(make_head, (hidden, k), title)
        if not isinstance(head, nn.Module):
            raise _Slip(f"{title}({hidden}, {k}) should give an nn.Module, got {type(head).__name__}")
        if not any(p.requires_grad for p in head.parameters()):
            raise _Slip(f"{title}({hidden}, {k}) has no trainable parameters: the heads are layers, e.g. "
                           "nn.Linear(hidden, latent_dim) for mu and another for logvar")
        return head

    def shape_case(hidden, k, batch):
        def case():
            head = build(hidden, k)
            out, problem = _head_outputs(_learner(head, (torch.randn(batch, hidden),), title), batch, k)
            return problem
        return case

    def gradient_case():
        hidden, k, batch = 64, 6, 256
        head = build(hidden, k)
        h = 2 * torch.randn(batch, hidden)
        out, problem = _head_outputs(_learner(head, (h,), title), batch, k)
        if problem:
            return problem
        mu, logvar, z = out
        if torch.isnan(z).any():
            return _NAN_LOGVAR
        if torch.equal(mu, logvar):
            return ("mu and logvar are the same numbers: the encoder needs two heads (two nn.Linear layers, or one "
                    "with 2 * latent_dim outputs split in two)")
        if not z.requires_grad:
            return ("z carries no gradient, so the encoder could never learn: Normal(...).sample(), .detach() or "
                    "torch.no_grad() cut the graph. Build z = mu + sigma * eps (or use .rsample())")
        if not bool((logvar < 0).any()):
            return ("logvar is never negative: return the log-variance head's raw output (no ReLU, softplus or exp). "
                    "log sigma^2 < 0 means sigma < 1, which most codes need; if you returned sigma, return logvar "
                    "and compute sigma = exp(0.5 * logvar) inside forward")
        grads = torch.autograd.grad(z.sum(), (mu, logvar), retain_graph=True, allow_unused=True)
        if grads[0] is None:
            return "z is not computed from the mu you return: compute mu once and use it in z = mu + sigma * eps"
        if grads[1] is None:
            return ("z is not computed from the logvar you return: sigma = exp(0.5 * logvar) must come from the "
                    "returned logvar (returning sigma, or a second output, in its place is the usual slip)")
        problems = []
        if not torch.allclose(grads[0], torch.ones_like(mu)):
            problems.append("dz/dmu should be 1 everywhere (z = mu + sigma * eps)")
        if not torch.allclose(grads[1], 0.5 * (z - mu).detach(), rtol=1e-3, atol=1e-5):
            problems.append("dz/dlogvar should be 0.5 * sigma * eps = 0.5 * (z - mu): make sigma = exp(0.5 * logvar)")
        z.sum().backward()
        silent = [name for name, p in head.named_parameters()
                  if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
        if silent:
            problems.append(f"no gradient from z reaches {silent[:4]}: both heads must feed z")
        return "; ".join(problems) or None

    def statistics_case():
        hidden, k, n = 32, 6, 20_000
        head = build(hidden, k)
        h = (3 * torch.randn(1, hidden)).expand(n, hidden).clone()       # one input, 20,000 times
        out, problem = _head_outputs(_learner(head, (h,), title), n, k)
        if problem:
            return problem
        mu, second, z = (t.detach().float() for t in out)
        mu, second = mu[0], second[0]                                    # every row is the same input
        if torch.isnan(z).any():
            return _NAN_LOGVAR
        std = z.std(0)
        if bool((std < 1e-6).all()):
            again = _learner(head, (h,), title)[2].detach().float()
            if not torch.equal(again, z):
                return ("every row of z is the same draw: you drew one eps for the whole batch; draw one per "
                        "entry, eps = torch.randn_like(sigma)")
            return "z has no randomness (z = mu?): add sigma * eps with eps = torch.randn_like(sigma)"

        def close(a, b, rel=0.05):
            return bool(((a - b).abs() <= rel * b.abs() + 1e-3).all())

        sigma = torch.exp(0.5 * second)
        problems = []
        mean = z.mean(0)
        if not bool(((mean - mu).abs() <= 0.05 * std + 0.01).all()):
            if bool(((mean - mu - 0.5 * sigma).abs() <= 0.05 * sigma + 0.01).all()):
                return ("the draws average mu + sigma / 2 and spread like uniform noise: eps comes from torch.rand; "
                        "draw it from N(0, 1) with torch.randn_like")
            problems.append(f"the mean of many draws of z should be the mu you return, {_fmt(mu)}; it is {_fmt(mean)}")
        if not close(std, sigma):
            slips = [
                (second.abs(), "z spreads by your second output itself: you returned sigma where logvar belongs. "
                               "Return the log-variance and compute sigma = exp(0.5 * logvar) inside forward"),
                (torch.exp(second), "the spread of z is exp(logvar), the variance sigma^2; sigma is its square root, "
                                    "exp(0.5 * logvar)"),
                (torch.ones(k), "z spreads by 1 whatever logvar says: you returned mu + eps; multiply eps by "
                                "sigma = exp(0.5 * logvar)"),
                (torch.exp(-0.5 * second), "the spread is 1 / sigma: the sign in exp(0.5 * logvar) is flipped"),
                (sigma / math.sqrt(12), "the spread is that of uniform noise: eps must come from N(0, 1) "
                                        "(torch.randn_like), not torch.rand_like"),
            ]
            hint = next((text for expected, text in slips if close(std, expected)), None)
            problems.append(hint or f"the standard deviation of many draws of z should be sigma = exp(0.5 * logvar) = "
                                    f"{_fmt(sigma)}; it is {_fmt(std)}")
        return "; ".join(problems) or None

    # a finding that several hidden tests make is shown once (and counted for each)
    return _run_cases(title, [*(shape_case(*s) for s in _HEAD_SHAPES), gradient_case, statistics_case],
                      lambda case: case(), seed=0, report=_report_once,
                      crash=lambda case, err: f"your module raised {_said(err)}")


def _report_once(title: str, failures: list[str], n_cases: int) -> bool:
    """Like ``_report``, but each distinct finding printed once, the first ``SHOWN`` of them."""
    if not failures:
        return _report(title, [], n_cases)
    print(f"{FAIL} {title}: {len(failures)} of {n_cases} hidden tests failed.")
    for line in list(dict.fromkeys(failures))[:SHOWN]:
        print(f"   - {line}")
    return False


# ---------------------------------------------------------------------------------------------
# Lesson 05: the reparameterization trick, and the score function with a leave-one-out baseline


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

    shapes = [shape_case(s) for s in [(5, 3), (1, 2), (64, 20)]]
    return _run_cases(
        title, [*shapes, gradient_case, statistics_cases], lambda case: case(), n_cases=3 + 1 + 2, seed=0,
        crash=lambda case, err: (f"on 20,000 draws your function raised {_said(err)}" if case is statistics_cases
                                 else f"your function raised {_said(err)}"),
        report=lambda title, failures, n: _report(title, list(dict.fromkeys(failures)), n))   # the same sentence once


def _loo_reference(f: Callable, mu: float, sigma: float, eps: torch.Tensor, own: bool = False,
                   denominator: str = "S - 1", score_power: int = 2) -> torch.Tensor:
    """The leave-one-out score-function estimate (and, with the flags, the usual slips), (R, S) -> (R,)."""
    z = mu + sigma * eps                                        # (R, S)
    fz = f(z)                                                   # (R, S)
    s = eps.shape[1]
    if own:
        baseline = fz.mean(1, keepdim=True)                     # every sample, its own included: biased
    else:
        baseline = (fz.sum(1, keepdim=True) - fz) / ((s - 1) if denominator == "S - 1" else s)
    score = (z - mu) / sigma ** score_power                     # d/dmu log N(z; mu, sigma^2) = (z - mu) / sigma^2
    return ((fz - baseline) * score).mean(1)


def check_leave_one_out_score(fn: Callable) -> bool:
    """Check ``fn(f, mu, sigma, eps) -> (R,)``: the score-function estimate of d/dmu E[f(z)], leave-one-out baseline.

    z = mu + sigma * eps, eps of shape (R, S): R independent estimates of S samples each. Each sample's
    baseline is the mean of f over the *other* S - 1 samples of its row, so the estimate stays unbiased:
    mean over the row of (f(z_i) - b_i) * (z_i - mu) / sigma^2. Hidden tests: the shape for three eps
    shapes; the values, exactly, for three (f, mu, sigma); and S = 1 refused with an error that names
    S. The messages name the usual slips: the own sample in the baseline (a biased estimate), S instead
    of S - 1, the score divided by sigma instead of sigma^2, no baseline, f(z) = z^2 written in place of f.
    The exercise of notebook 05.
    """
    title = "leave_one_out_score"
    square = lambda z: z ** 2                                  # noqa: E731 - the lesson's objective
    cube = lambda z: z ** 3                                    # noqa: E731
    bumpy = lambda z: torch.sin(3 * z) + z                     # noqa: E731
    gen = torch.Generator().manual_seed(7)

    def shape_case(shape, eps):
        got = _learner(fn, (square, 1.0, 1.0, eps.clone()), title)
        if not torch.is_tensor(got) or tuple(got.shape) != (shape[0],):
            have = tuple(got.shape) if torch.is_tensor(got) else type(got).__name__
            return (f"for eps of shape {shape} return one estimate per row, shape ({shape[0]},); you "
                    f"returned {have}. Average over the S samples of each row, .mean(1)")
        return None

    def values_case(case, f, mu, sigma, eps):
        got = _learner(fn, (f, mu, sigma, eps.clone()), title)
        if not torch.is_tensor(got) or tuple(got.shape) != (eps.shape[0],):
            return None                                          # reported by the shape cases
        got = got.detach().double()
        expected = _loo_reference(f, mu, sigma, eps)
        if torch.allclose(got, expected, rtol=1e-6, atol=1e-8):
            return None
        slips = [
            (_loo_reference(f, mu, sigma, eps, own=True), "your baseline includes the sample's own f(z_i) "
             "(the mean of the whole row), so the estimate is biased: leave it out, "
             "b_i = (sum of f over the row - f(z_i)) / (S - 1)"),
            (_loo_reference(f, mu, sigma, eps, denominator="S"), "the baseline divides by S; the other samples "
             "of the row are S - 1"),
            (_loo_reference(f, mu, sigma, eps, score_power=1), "the score of mu is (z - mu) / sigma**2, "
             "you divided by sigma"),
            (_loo_reference(f, mu, sigma, eps, score_power=0), "the score of mu is (z - mu) / sigma**2, "
             "you left out the division"),
            (((mu + sigma * eps) ** 2 - ((mu + sigma * eps) ** 2).sum(1, keepdim=True).sub((mu + sigma * eps) ** 2)
              / (eps.shape[1] - 1)).mul((sigma * eps) / sigma ** 2).mean(1),
             "you wrote z**2 where f(z) belongs: call the f you are given"),
            ((f(mu + sigma * eps) * eps / sigma).mean(1), "there is no baseline: subtract b_i from f(z_i)"),
        ]
        hint = _first_slip(got, slips, lambda a, b: torch.allclose(a, b, rtol=1e-6, atol=1e-8))
        gap = float((got - expected).abs().max())
        return f"for {case} your estimates differ from the right ones by up to {gap:.3g}" + _hint(hint)

    def one_sample_case(eps):
        err = _raises(fn, (square, 1.0, 1.0, eps), title)
        if err is None:
            return ("with S = 1 sample there is no other sample to make a baseline from: raise a ValueError "
                    "that says S must be at least 2")
        if "S" not in str(err) and "sample" not in str(err):
            return (f"S = 1 raised {type(err).__name__}: {err!s:.80}, which names neither S nor the "
                    "samples: say that S must be at least 2")
        return None

    # (how a crash names the case, the hidden test)
    cases = [(f"eps of shape {shape}", partial(shape_case, shape, torch.randn(shape, generator=gen,
                                                                             dtype=torch.float64)))
             for shape in [(5, 4), (1, 2), (64, 16)]]
    eps = torch.randn(2000, 5, generator=gen, dtype=torch.float64)
    functions = [(square, "z**2", 1.0, 1.0), (cube, "z**3", -0.5, 1.5), (bumpy, "sin(3z) + z", 0.3, 0.5)]
    # no sigma of 2: there a score divided by sigma and a doubled estimate are the same numbers
    for f, name, mu, sigma in functions:
        case = f"f(z) = {name}, mu = {mu}, sigma = {sigma}"
        cases.append((case, partial(values_case, case, f, mu, sigma, eps)))
    cases.append(("S = 1", partial(one_sample_case, torch.randn(10, 1, generator=gen, dtype=torch.float64))))
    return _run_cases(title, cases, lambda case: case[1](),
                      crash=lambda case, err: f"for {case[0]} your function raised {_said(err)}")


# ---------------------------------------------------------------------------------------------
# Lesson 06: the closed-form KL of the encoder's Gaussian from N(0, 1)


def check_gaussian_kl(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(mu, logvar) -> (B,)``: KL(N(mu, sigma^2) || N(0, 1)) in nats, summed over the latent
    dimensions, one value per image.

    Hidden tests: two cases worked by hand (the prior itself gives 0) and three random batches, each
    compared with ``torch.distributions.kl_divergence`` summed over the dimensions; the result must
    carry the KL's gradient to mu and to logvar alike. The messages name the usual slips: the sign
    flipped, the 1/2 forgotten, sigma used where the variance is needed, logvar read as log sigma, the
    -1 or the square of mu missing, a mean over the dimensions instead of the sum, one value per
    dimension, a reduction over the batch, and an input detached.
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

    def test(case):
        name, mu, logvar = case
        b, k = mu.shape
        per_dim = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))       # (b, k) nats
        expected = per_dim.sum(1)                                                            # (b,)
        mu_in, logvar_in = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
        got = _learner(fn, (mu_in, logvar_in), title)
        if not torch.is_tensor(got):
            return f"{name}: return a tensor, one KL per image, not {type(got).__name__}"
        if tuple(got.shape) != (b,):
            if got.numel() == 1 and b > 1:
                value, mean = float(got.detach()), float(expected.mean())
                if math.isclose(mean, float(expected.sum()), rel_tol=1e-4, abs_tol=1e-5):
                    hint = "you reduced over the batch"                # every KL is 0: mean and sum agree
                elif math.isclose(value, mean, rel_tol=1e-4, abs_tol=1e-5):
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
            return f"{name}: the result should have shape ({b},), one KL per image, got {tuple(got.shape)}: {hint}"
        value = got.detach().float()
        if torch.allclose(value, expected, rtol=1e-4, atol=1e-5):
            if not got.requires_grad:
                return (f"{name}: the values are right but carry no gradient, so training could not "
                        "follow them: compute them with torch operations on mu and logvar, without "
                        ".detach(), .item(), .numpy() or torch.no_grad()")
            # d KL / d mu = mu and d KL / d logvar = (exp(logvar) - 1) / 2: both inputs must be followed
            grads = torch.autograd.grad(got.sum(), (mu_in, logvar_in), allow_unused=True)
            for what, grad, right in (("mu", grads[0], mu), ("logvar", grads[1], 0.5 * (logvar.exp() - 1))):
                if grad is None:
                    return (f"{name}: the values are right but no gradient reaches {what}, so training could "
                            f"not move {what} by this term: use {what} itself, not a detached copy or a "
                            "number made from it")
                if not torch.allclose(grad.float(), right, rtol=1e-4, atol=1e-5):
                    return (f"{name}: the values are right here, but the gradient with respect to {what} is not "
                            "the KL's: a formula that agrees with the KL only at these values, or a detached part, "
                            "gives another gradient")
            return None
        if torch.isnan(value).any():
            return (f"{name}: your result contains NaN. logvar can be negative: the variance is "
                    "exp(logvar), never a square root or a logarithm of logvar")
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
        slip = _first_slip(value, slips, lambda a, b: torch.allclose(a, b.float(), rtol=1e-4, atol=1e-5))
        return (f"{name}: expected {_fmt(expected[:3])} nats (first images), you returned {_fmt(value[:3])}"
                + _hint(slip))

    return _run_cases(title, cases, test)


# ---------------------------------------------------------------------------------------------
# Lesson 07: the free-bits KL term


def _free_bits_reference(mu: torch.Tensor, logvar: torch.Tensor, free_bits: float) -> torch.Tensor:
    per_dim = (0.5 * (mu ** 2 + logvar.exp() - 1 - logvar)).mean(0)               # (k,) nats, batch average
    return per_dim.clamp(min=free_bits).sum()                                     # () nats per image


def check_free_bits_kl(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> bool:
    """Check ``fn(mu, logvar, free_bits) -> ()``: the KL term with free bits (Kingma et al. 2016), nats per image.

    Expected: each latent dimension's KL from N(0, 1), averaged over the batch, floored at
    ``free_bits`` and summed over the dimensions: ``sum_j max(free_bits, mean_b KL_bj)``.
    Hidden tests: the prior itself (every dimension pays the floor, worked by hand), a floor of 0
    (the plain KL), every dimension above the floor, a batch whose dimensions straddle the floor,
    and a single image; on the straddling batch, the gradient must reach the dimensions above the
    floor exactly as the plain KL's does and be 0 for those below it (that is what makes the bits
    free). The messages name the usual slips: the floor applied to each image before the batch
    average, to the total KL instead of each dimension (or not at all), ``max(0, KL_j - free_bits)``
    in place of ``max(free_bits, KL_j)``, min for max, a sum over the batch, a mean over the
    dimensions, and one value per image or per dimension instead of one number.
    The exercise of notebook 07; ``ah.vae_objective(free_bits=...)`` computes the same term.
    """
    title = "free_bits_kl"
    g = torch.Generator().manual_seed(7)

    def straddling():
        # dimensions 0-7 busy (mean KL about 2 nats), 8-15 nearly collapsed (about 0.05 nats): the floor 0.5
        # lies between them, and single images of the quiet dimensions reach above it now and then
        mu = torch.cat([1.5 * torch.randn(32, 8, generator=g), 0.3 * torch.randn(32, 8, generator=g)], 1)
        logvar = torch.cat([torch.randn(32, 8, generator=g) - 1.5, 0.1 * torch.randn(32, 8, generator=g)], 1)
        return mu, logvar

    cases = [
        # by hand: mu = 0, sigma = 1 costs 0 nats in each of 3 dimensions; each pays the floor: 3 * 0.5 = 1.5
        ("the prior itself (4 images, 3 dimensions), floor 0.5", torch.zeros(4, 3), torch.zeros(4, 3), 0.5),
        ("8 images, 4 dimensions, floor 0 (no free bits: the plain KL)",
         torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g), 0.0),
        ("6 images, 5 dimensions, every dimension above the floor 0.1",
         2 + torch.rand(6, 5, generator=g), torch.randn(6, 5, generator=g) - 1, 0.1),
        ("32 images, 16 dimensions straddling the floor 0.5", *straddling(), 0.5),
        ("one image, 6 dimensions, floor 1", torch.randn(1, 6, generator=g), torch.randn(1, 6, generator=g), 1.0),
    ]

    def test(case):
        name, mu, logvar, lam = case
        b, k = mu.shape
        expected = _free_bits_reference(mu, logvar, lam)
        mu_in, logvar_in = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
        got = _learner(fn, (mu_in, logvar_in, lam), title)
        if not torch.is_tensor(got):
            return f"{name}: return a tensor (one number, nats per image), not {type(got).__name__}"
        if got.numel() != 1:
            shape = tuple(got.shape)
            if shape in ((k,), (1, k)) and k != b:
                hint = "that is one value per latent dimension: sum them over the dimensions"
            elif shape in ((b,), (b, 1)):
                hint = ("that is one value per image: average each dimension's KL over the batch first, floor "
                        "it, then sum over the dimensions")
            else:
                hint = "reduce to one number: the batch average per dimension, floored, summed over dimensions"
            return f"{name}: return one number, got shape {shape}: {hint}"
        value = float(got.detach())
        if math.isclose(value, float(expected), rel_tol=1e-4, abs_tol=1e-5):
            if lam > 0 and name.startswith("32 images"):
                if not got.requires_grad:
                    return (f"{name}: the value is right but carries no gradient: compute it with torch "
                            "operations on mu and logvar, without .detach(), .item() or torch.no_grad()")
                grad_mu, = torch.autograd.grad(got.reshape(()), mu_in, allow_unused=True)
                mu_ref = mu.clone().requires_grad_(True)
                ref_grad, = torch.autograd.grad(_free_bits_reference(mu_ref, logvar, lam), mu_ref)
                if grad_mu is None or not torch.allclose(grad_mu, ref_grad, rtol=1e-4, atol=1e-6):
                    return (f"{name}: the value is right but the gradient is not: dimensions above the "
                            "floor must get the KL's own gradient, those below it none (use clamp(min=...) "
                            "or torch.maximum on the batch-averaged KL of each dimension)")
            return None
        per_bk = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar)                        # (b, k) nats
        per_dim = per_bk.mean(0)                                                    # (k,)
        # a floor on the total, and a sum over the batch, named only where the hint before them does not say it
        floored_total = per_dim.sum().clamp(min=lam) if float(per_dim.sum()) < lam else math.nan
        batch_sum = per_bk.sum(0).clamp(min=lam).sum()
        batch_sum_after = (math.nan if math.isclose(b * float(expected), float(batch_sum), rel_tol=1e-4)
                           else b * expected)
        slips = [
            (per_bk.clamp(min=lam).sum(1).mean(),
             "you floored each image's KL before averaging over the batch; the floor applies to each dimension's "
             "batch average (a dimension busy on a few images and silent on the rest must still count as below "
             "the floor)"),
            (per_dim.sum(), "there is no floor on each dimension (a floor on the total KL does nothing once the "
                            "total is above it): a dimension whose batch-averaged KL is below free_bits must count "
                            "as free_bits"),
            (floored_total,
             "you floored the total KL; free bits floors each latent dimension separately: sum_j max(free_bits, KL_j)"),
            ((per_dim - lam).clamp(min=0).sum(),
             "that is sum_j max(0, KL_j - free_bits): the same gradient, but free_bits * k lower than the term of "
             "Kingma et al., sum_j max(free_bits, KL_j)"),
            (per_dim.clamp(max=lam).sum(), "min where max belongs: the floor is max(free_bits, KL_j)"),
            (batch_sum,
             "you summed each dimension's KL over the batch; average it over the images (nats per image)"),
            (batch_sum_after, "you summed over the batch; average over the images (nats per image)"),
            (per_dim.clamp(min=lam).mean(), "you averaged over the latent dimensions; the KL of an image is their sum"),
        ]
        slip = _first_slip(value, slips, lambda a, b: math.isclose(a, float(b), rel_tol=1e-4, abs_tol=1e-5))
        return f"{name}: expected {float(expected):.4f} nats per image, you returned {value:.4f}" + _hint(slip)

    return _run_cases(title, cases, test)


# ---------------------------------------------------------------------------------------------
# Lesson 08: the sizes of convolutions and transposed convolutions, and the convolutional decoder


def _check_sizes(fn: Callable, title: str, cases: list[tuple], make_layer: Callable, hint: Callable) -> bool:
    def test(case):
        size, *layer_args = case
        layer = make_layer(*layer_args)
        with torch.no_grad():
            expected = layer(torch.zeros(1, 1, size, size)).shape[-1]   # what PyTorch itself gives
        got = _learner(fn, case, title)
        if isinstance(got, bool) or not isinstance(got, int):
            return (f"for {case} you returned {got!r} ({type(got).__name__}); a size is a whole number (int). "
                    "Floor division // keeps it one.")
        if got != expected:
            return f"for {case} you returned {got}, PyTorch gives {expected}. {hint(got, expected)}"
        return None

    # building the reference layer draws its weights: on a copy of the global random state
    return _run_cases(title, cases, test, seed=0, crash=lambda case, err: f"{title}{case} raised {_said(err)}")


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


def _decoder_sizes(decoder: nn.Module, z: torch.Tensor) -> tuple[torch.Tensor, list[tuple], list[nn.Module]]:
    """Run the decoder; record each transposed convolution's (input side, output shape) and the layer."""
    sizes: list[tuple] = []
    layers: list[nn.Module] = []

    def record(m, inputs, out):
        sizes.append((tuple(inputs[0].shape[-2:]), tuple(out.shape[1:])))
        layers.append(m)

    hooks = [m.register_forward_hook(record) for m in decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    try:
        out = decoder(z)
    finally:
        for h in hooks:
            h.remove()
    return out, sizes, layers


def _layer_text(m: nn.ConvTranspose2d) -> str:
    extra = f", output_padding={m.output_padding[0]}" if m.output_padding[0] else ""
    return (f"ConvTranspose2d({m.in_channels}, {m.out_channels}, kernel {m.kernel_size[0]}, stride {m.stride[0]}, "
            f"padding {m.padding[0]}{extra})")


def check_conv_decoder(make_decoder: Callable[[int, tuple], nn.Module], *, even_stamps: bool = False) -> bool:
    """Check ``make_decoder(latent_dim, channels) -> nn.Module``: codes (B, k) -> logits (B, 1, 28, 28).

    A convolutional VAE's decoder (notebook 08): a linear layer to c4 x 7 x 7 features, unflattened,
    then transposed convolutions that grow 7 x 7 to 14 x 14 and to 28 x 28, ending on one channel of
    logits (no sigmoid: the loss takes logits). ``channels = (c1, c2, c3, c4)``.

    even_stamps: also require that every transposed convolution with stride s > 1 has a kernel size
        that is a multiple of s, so that every output pixel away from the border receives the same
        number of stamps (no built-in checkerboard, Odena et al. 2016): kernel 4 with stride 2.

    Hidden tests, for five latent sizes and channel widths: the output shape, transposed convolutions
    that start from 7 x 7 and reach 14 x 14 and 28 x 28, logits that are neither squashed into (0, 1)
    nor cut at 0, a gradient that reaches every parameter, and (``even_stamps``) the kernel sizes. The
    messages name the usual slips: a missing ``output_padding=1`` with kernel 3 (13 x 13 instead of
    14 x 14), a padding that gives the wrong size (with the layer and the size it gave), the wrong
    number of features for the first linear layer, a final sigmoid or ReLU, a missing channel axis,
    kernel 3 with stride 2 where even stamps are asked for.
    """
    title = "make_decoder"
    cases = [(1, (16, 32, 32, 32)), (2, (8, 16, 16, 16)), (5, (4, 8, 8, 12)), (16, (16, 32, 32, 32)),
             (3, (6, 10, 12, 14))]

    def test(case):
        k, channels = case
        name = f"make_decoder({k}, {channels})"
        decoder = _learner(make_decoder, (k, channels), title)
        if not isinstance(decoder, nn.Module):
            return f"{name} should return an nn.Module (e.g. nn.Sequential), got {type(decoder).__name__}"
        torch.manual_seed(0)
        z = torch.randn(6, k) * 2
        out, sizes, layers = _decoder_sizes(decoder, z)
        if not sizes:
            return f"{name} has no nn.ConvTranspose2d: the decoder grows the image with transposed convolutions"
        grown = [(inp[0], shape[1]) for inp, shape in sizes]          # (input side, output side) per layer
        if not torch.is_tensor(out) or tuple(out.shape) != (6, 1, 28, 28):
            got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
            slip = ""
            wrong = [(m, i, o) for m, (i, o) in zip(layers, grown) if m.stride[0] > 1 and o != 2 * i]
            if wrong:
                m, i, o = wrong[0]
                slip = f": {_layer_text(m)} took {i} x {i} to {o} x {o}, not {2 * i} x {2 * i}"
                if m.kernel_size[0] == 3 and m.stride[0] == 2 and o == 2 * i - 1:
                    slip += "; with kernel 3, stride 2 and padding 1 that is 2n - 1, so add output_padding=1"
                else:
                    slip += (". The size is (n - 1) * stride - 2 * padding + kernel (+ output_padding): "
                             "choose the padding")
            elif torch.is_tensor(out) and out.dim() == 3:
                slip = ": the channel axis is missing; images are (B, 1, 28, 28)"
            return (f"{name}: for 6 codes the output should have shape (6, 1, 28, 28), got {got}; "
                    f"the transposed convolutions went {grown}{slip}")
        outputs = {o for _, o in grown}
        if grown[0][0] != 7 or not {14, 28} <= outputs:
            return (f"{name}: the transposed convolutions went {grown} (input side, output side); start "
                    "from 7 x 7 and double to 14 and 28 with stride 2 (the mirror of the encoder)")
        uneven = [m for m in layers if m.stride[0] > 1 and m.kernel_size[0] % m.stride[0]]
        if even_stamps and uneven:
            m = uneven[0]
            return (f"{name}: {_layer_text(m)}: kernel {m.kernel_size[0]} is not a multiple of stride "
                    f"{m.stride[0]}, so neighbouring output pixels receive different numbers of stamps "
                    "(the checkerboard of section 1). Use kernel 4 with stride 2, and the padding that "
                    "doubles the size")
        leaves = [m for m in decoder.modules() if not list(m.children())]
        with torch.no_grad():
            far = decoder(z * 100)                  # logits grow with a far code; probabilities stay in (0, 1)
        if isinstance(leaves[-1], nn.Sigmoid) or (float(far.min()) >= 0 and float(far.max()) <= 1):
            return (f"{name}: every output lies in [0, 1], as after a sigmoid. Return the logits "
                    "(no activation after the last layer): the VAE's decode applies the sigmoid, and "
                    "the loss works from logits")
        if float(far.min()) >= 0:                   # a final ReLU: no logit below 0, and often no gradient at all
            return (f"{name}: no output is below 0, as after a ReLU. Return the logits (no activation after the "
                    "last layer): a pixel more likely dark than bright needs a logit below 0")
        out.square().mean().backward()
        silent = [n for n, p in decoder.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        if silent:
            return f"{name}: no gradient reaches {silent[:3]}: every layer should be used in forward"
        return None

    def crashed(case, err):
        k, channels = case
        hint = ""
        if any(words in str(err) for words in ("mat1 and mat2", "shape", "multiply up")):
            hint = (f" (the first linear layer takes the {k} code numbers and gives c4 * 7 * 7 = "
                    f"{channels[3] * 49} features, which nn.Unflatten(1, ({channels[3]}, 7, 7)) reshapes)")
        return f"make_decoder({k}, {channels}) raised {type(err).__name__}: {str(err)[:150]}{hint}"

    # the codes are drawn from a seeded global state: on a copy of it, so the learner's own is left alone
    return _run_cases(title, cases, test, crash=crashed, seed=0)


# ---------------------------------------------------------------------------------------------
# Lesson 09: anomaly detection, the AUC and the threshold


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

    def test(case):
        name, normal, anomalous = case
        truth = torch.cat([torch.zeros(len(normal)), torch.ones(len(anomalous))]).numpy()
        expected = float(roc_auc_score(truth, torch.cat([normal, anomalous]).numpy()))
        got = _learner(fn, (normal.clone(), anomalous.clone()), title)
        value = _one_number(got, "AUC")
        if isinstance(value, str):
            hint = (": average over every (anomaly, normal) pair, not per image"
                    if torch.is_tensor(got) and got.dim() == 1 and got.numel() in (len(normal), len(anomalous)) else "")
            return f"{name}: {value}{hint}"
        if math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-9):
            return None
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
        slip = _first_slip(value, slips, lambda got, wrong: not math.isclose(wrong, expected, abs_tol=1e-9)
                           and math.isclose(got, wrong, rel_tol=1e-6, abs_tol=1e-9))
        return f"{name}: the AUC is {expected:.4f}, you returned {value:.4f}" + _hint(slip)

    return _run_cases(title, cases, test)


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

    def test(case):
        name, scores, rate = case
        # the common runner reports scores sorted in place
        value = _one_number(_learner(fn, (scores.clone(), rate), title), "threshold")
        if isinstance(value, str):
            return f"{name}: {value}"
        n = len(scores)
        n_above = int((scores > value).sum())                                  # normal images flagged
        above = n_above / n
        if abs(n_above - rate * n) <= 1 + 1e-6:                                # within one image of the target
            return None
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
        slip = _first_slip(value, slips, lambda a, b: math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6))
        return (f"{name}: your threshold {value:.4g} flags {n_above:,} of these {n:,} normal images "
                f"({above:.2%}), not about {rate * n:,.0f} ({rate:.0%})" + _hint(slip))

    return _run_cases(title, cases, test)


# ---------------------------------------------------------------------------------------------
# Lesson 10: the structured-output conditional VAE's loss, from the split of the image to the KL between two Gaussians


def _completion_case(seed: int, latent_dim: int, batch: int, images: str):
    """A small HalfImageCVAE whose prior is far from N(0, I), a batch of images and the noise eps.

    The recognition network's sigma is well above 1 and the decoder's weights on z are ten times their
    initial size, so that where z comes from and how wide it is move the loss by tenths of a nat or more:
    in an untrained decoder z barely matters, and a slip in sigma would pass.
    """
    from .models import HalfImageCVAE

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = HalfImageCVAE(latent_dim=latent_dim, hidden=(16,)).eval()
    with torch.no_grad():                                    # a prior network whose Gaussians are not N(0, I)
        model.prior_mu_head.bias.copy_(torch.randn(latent_dim, generator=g) + 1.0)
        model.prior_logvar_head.bias.copy_(torch.rand(latent_dim, generator=g) - 1.0)
        model.logvar_head.bias.copy_(torch.rand(latent_dim, generator=g) + 0.5)
        first = next(layer for layer in model.generation.modules() if isinstance(layer, nn.Linear))
        first.weight[:, :latent_dim] *= 10                   # its inputs are [z, top half]
    x = torch.rand(batch, 1, 28, 28, generator=g)
    if images == "binary":
        x = x.round()
    elif images == "dark bottom":
        x[:, :, 14:] *= 0.05
    eps = torch.randn(batch, latent_dim, generator=g)
    return model, x, eps


def _completion_variants(model, x, eps) -> dict[str, float]:
    """The right conditional negative ELBO and the values of the usual slips, in nats per image."""
    import torch.nn.functional as F

    from .losses import gaussian_kl, gaussian_kl_between

    def value(top, bottom, *, z_from="q", sigma="half", kl="prior", pixels="sum", batch="mean", double_sigmoid=False):
        mu, logvar = model.encode(top, bottom)
        prior_mu, prior_logvar = model.prior(top)
        m, lv = (mu, logvar) if z_from == "q" else (prior_mu, prior_logvar)
        std = torch.exp(0.5 * lv) if sigma == "half" else torch.exp(lv)
        logits = model.decode(m + std * eps, top, logits=True)
        if double_sigmoid:
            logits = torch.sigmoid(logits)
        bce = F.binary_cross_entropy_with_logits(logits, bottom, reduction="none").flatten(1)   # (B, 392)
        recon = bce.sum(1) if pixels == "sum" else bce.mean(1)                                  # (B,)
        if kl == "prior":
            kl_value = gaussian_kl_between(mu, logvar, prior_mu, prior_logvar, batch="none")
        elif kl == "standard":
            kl_value = gaussian_kl(mu, logvar, batch="none")
        elif kl == "reversed":
            kl_value = gaussian_kl_between(prior_mu, prior_logvar, mu, logvar, batch="none")
        else:
            kl_value = torch.zeros_like(recon)
        per_image = recon + kl_value
        return float(per_image.mean() if batch == "mean" else per_image.sum())

    top, bottom = x[:, :, :14], x[:, :, 14:]
    with torch.no_grad():
        return {
            "right": value(top, bottom),
            "the top and the bottom half are swapped: the condition is rows 0..13 (x[:, :, :14]), the output "
            "rows 14..27": value(bottom, top),
            "the KL is taken against N(0, I); here the prior is the prior network's Gaussian p(z | top), so use "
            "the KL between two Gaussians": value(top, bottom, kl="standard"),
            "the KL is the wrong way round: KL(q || p), q the recognition network's Gaussian, p the prior "
            "network's": value(top, bottom, kl="reversed"),
            "z is drawn from the prior network; in training it comes from the recognition network, "
            "q(z | top, bottom)": value(top, bottom, z_from="p"),
            "sigma is exp(0.5 * logvar), not exp(logvar)": value(top, bottom, sigma="full"),
            "the BCE is averaged over the pixels; sum it over the bottom half's 392 pixels (nats per image)":
                value(top, bottom, pixels="mean"),
            "the loss is summed over the batch; average it over the images": value(top, bottom, batch="sum"),
            "the KL term is missing": value(top, bottom, kl="none"),
            "the sigmoid is applied twice: decode(..., logits=True) gives logits, which the BCE with logits takes "
            "as they are": value(top, bottom, double_sigmoid=True),
        }


def check_completion_loss(fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(model, images, eps) -> loss``: the conditional negative ELBO of the bottom half given the top.

    model: a ``HalfImageCVAE``; images: (B, 1, 28, 28); eps: (B, k) standard normal noise to draw z with.
    The answer is one number in nats per image, averaged over the batch: the BCE of the bottom half
    (rows 14..27) summed over its pixels, at z = mu + exp(0.5 * logvar) * eps from the recognition
    network q(z | top, bottom), plus KL(q(z | top, bottom) || p(z | top)) summed over the latent
    dimensions, p the prior network's Gaussian.

    Hidden tests: five small models whose prior networks are far from N(0, I), with batches of 1 to 8
    random, binary or dark-bottomed images. The messages name the usual slips: halves swapped, the KL
    against N(0, I) or the wrong way round, z drawn from the prior network, sigma = exp(logvar), the
    BCE averaged over pixels, the batch summed, no KL, a second sigmoid. The exercise of notebook 10;
    ``ah.completion_objective()`` computes the same loss (with its own draws of eps).
    """
    title = "completion_loss"
    cases = [(0, 2, 4, "random"), (1, 5, 1, "random"), (2, 3, 8, "binary"), (3, 4, 6, "dark bottom"),
             (4, 1, 3, "binary")]

    def test(case):
        seed, latent_dim, batch, images = case
        name = f"{batch} {images} image{'s' * (batch != 1)}, latent_dim={latent_dim}"
        model, x, eps = _completion_case(seed, latent_dim, batch, images)
        variants = _completion_variants(model, x, eps)
        expected = variants.pop("right")
        got = _learner(fn, (model, x.clone(), eps.clone()), title)   # the common runner reports in-place edits
        value = _one_number(got, "loss")
        if isinstance(value, str):
            hint = (": average the per-image losses over the batch"
                    if torch.is_tensor(got) and got.dim() == 1 and got.numel() == batch else "")
            return f"{name}: {value}{hint}"
        if math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-4):
            return None
        slip = _first_slip(value, [(wrong, text) for text, wrong in variants.items()],
                           lambda got, wrong: not math.isclose(wrong, expected, rel_tol=1e-4)
                           and math.isclose(got, wrong, rel_tol=1e-4, abs_tol=1e-4))
        return f"{name}: the loss is {expected:.3f} nats per image, you returned {value:.3f}" + _hint(slip)

    def crashed(case, err):
        seed, latent_dim, batch, images = case
        return f"{batch} {images} image{'s' * (batch != 1)}, latent_dim={latent_dim}: your function raised {_said(err)}"

    # the small models are built from a seeded global state: on a copy of it
    return _run_cases(title, cases, test, crash=crashed, seed=0)


# ---------------------------------------------------------------------------------------------
# Lesson 11: the nearest-codebook quantiser with a straight-through gradient, and codebook perplexity


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
    gradient = ("the gradient test", None, None)

    def unpack(got, case):
        if not isinstance(got, (tuple, list)) or len(got) != 2 or not all(torch.is_tensor(t) for t in got):
            return None, f"{case}: return two tensors, (z_q, indices), not {type(got).__name__}"
        return got, None

    def test(case):
        if case is gradient:
            return gradient_case()
        name, z_e, book = case
        b, d, h, w = z_e.shape
        expected = _brute_force_codes(z_e, book)                             # (B, H, W)
        got, problem = unpack(_learner(fn, (z_e.clone(), book.clone()), title), name)
        if problem:
            return problem
        z_q, indices = got[0].detach(), got[1]
        if indices.numel() == b * h * w and tuple(indices.shape) != (b, h, w):
            return (f"{name}: indices have shape {tuple(indices.shape)}; give one per position, "
                    f"(B, H, W) = {(b, h, w)} (reshape them)")
        if tuple(indices.shape) != (b, h, w):
            return f"{name}: indices should have shape (B, H, W) = {(b, h, w)}, got {tuple(indices.shape)}"
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
            slip = _first_slip(indices, slips, lambda got, wrong: not torch.equal(wrong, expected)
                               and torch.equal(got, wrong))
            return (f"{name}: wrong indices, e.g. {indices.flatten()[:4].tolist()} where the nearest codes "
                    f"are {expected.flatten()[:4].tolist()}" + _hint(slip))
        chosen = book[expected].permute(0, 3, 1, 2)                          # (B, D, H, W)
        if tuple(z_q.shape) != (b, d, h, w):
            hint = (": that is channels last; permute back to (B, D, H, W)"
                    if tuple(z_q.shape) == (b, h, w, d) else "")
            return f"{name}: z_q should have the shape of z_e, {(b, d, h, w)}, got {tuple(z_q.shape)}{hint}"
        if torch.allclose(z_q, z_e) and not torch.allclose(chosen, z_e):
            return (f"{name}: z_q equals z_e: the forward pass must output the chosen codebook vectors "
                    "(the straight-through trick changes only the gradient)")
        if not torch.allclose(z_q, chosen, atol=1e-5):
            return (f"{name}: the indices are right but z_q does not hold the chosen codebook vectors "
                    "codebook[indices], channels first")
        return None

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

    return _run_cases(title, [*cases, gradient], test,
                      crash=lambda case, err: (f"in the gradient test your function raised {_said(err)}"
                                               if case is gradient else _crash_named(case, err)))


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
    expected = []                                  # (entropy in nats, perplexity) of each case
    for case, indices, k, by_hand in cases:
        counts = torch.bincount(indices.flatten(), minlength=k).double()
        p = counts / counts.sum()
        used = p[p > 0]
        entropy = float(-(used * used.log()).sum())
        expected.append((counts, entropy, math.exp(entropy)))
        if by_hand is not None:
            assert math.isclose(math.exp(entropy), by_hand, rel_tol=1e-9), (case, math.exp(entropy), by_hand)

    def test(case):
        (name, indices, k, _), (counts, entropy, perplexity) = case
        value = _one_number(_learner(fn, (indices.clone(), k), title), "perplexity")
        if isinstance(value, str):
            return f"{name}: {value}"
        if math.isclose(value, perplexity, rel_tol=1e-4, abs_tol=1e-6):
            return None
        if math.isnan(value):
            return (f"{name}: NaN: an unused code gives 0 * log 0; count only the codes that were chosen "
                    "(p > 0), since p log p goes to 0 as p goes to 0")
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
        slip = _first_slip(value, slips, lambda got, wrong: not math.isclose(wrong, perplexity, rel_tol=1e-6)
                           and math.isclose(got, wrong, rel_tol=1e-4, abs_tol=1e-6))
        return f"{name}: the perplexity is {perplexity:.4f}, you returned {value:.4f}" + _hint(slip)

    return _run_cases(title, list(zip(cases, expected)), test, crash=lambda case, err: _crash_named(case[0], err))


# ---------------------------------------------------------------------------------------------
# Lesson 12: which images each process trains on (DistributedSampler's indexing)


def check_shard_indices(fn: Callable[[int, int, int, int, int], object]) -> bool:
    """Check ``fn(n, world_size, rank, epoch, seed)``: the positions process ``rank`` trains on in ``epoch``.

    The reference is PyTorch's own ``torch.utils.data.DistributedSampler(shuffle=True)`` with that
    seed, after ``set_epoch(epoch)``. Hidden tests: sizes that divide evenly and sizes that need
    padding, one to five processes, several epochs and seeds. The messages name the usual slips:
    no padding, contiguous blocks instead of every ``world_size``-th entry, the same order every epoch,
    a shuffle seeded with ``seed`` alone or with ``seed * epoch``, and no shuffle at all.
    The exercise of notebook 12; ``ah.distributed.shard_indices`` is the reference answer.
    """
    from torch.utils.data import DistributedSampler

    title = "shard_indices"
    cases = [(10, 2, 0, 0, 0), (10, 2, 1, 0, 0), (10, 3, 2, 1, 0), (7, 4, 3, 2, 5), (100, 5, 1, 4, 1), (8, 1, 0, 3, 2)]

    def reference(n, world, rank, epoch, seed):
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    def permutation(n, seed):
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()

    def slips(n, world, rank, epoch, seed):
        total = math.ceil(n / world) * world
        order = permutation(n, seed + epoch)
        padded = order + order[:total - n]
        per = total // world
        return [
            (order[rank::world], "pad the shuffled positions by repeating their start until the length divides "
                                 "by world_size, so every process takes as many steps as the others"),
            (padded[rank * per:(rank + 1) * per], "take every world_size-th position starting at rank "
                                                  "(order[rank::world_size]), not a contiguous block"),
            ((permutation(n, seed) + permutation(n, seed)[:total - n])[rank:total:world],
             "seed the shuffle with seed + epoch, so each epoch has a new order that every process agrees on"),
            ((permutation(n, seed * epoch) + permutation(n, seed * epoch)[:total - n])[rank:total:world]
             if seed * epoch != seed else None,                                    # else the slip before says it
             "seed the shuffle with seed + epoch, not seed * epoch"),
            ((list(range(n)) + list(range(total - n)))[rank:total:world],
             "shuffle first: torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))"),
        ]

    def test(case):
        expected = reference(*case)
        got = _learner(fn, case, title)
        try:
            got = [int(i) for i in (got.tolist() if torch.is_tensor(got) else got)]
        except (TypeError, ValueError):
            return f"shard_indices{case} returned {type(got).__name__}; return a 1-D tensor or list of positions"
        if got == expected:
            return None
        slip = _first_slip(got, slips(*case), lambda a, b: a == b)
        return (f"shard_indices{case}: DistributedSampler gives {expected[:6]}{'...' * (len(expected) > 6)}, "
                f"you returned {got[:6]}{'...' * (len(got) > 6)}" + _hint(slip))

    return _run_cases(title, cases, test, crash=lambda case, err: f"shard_indices{case} raised {_said(err)}")
