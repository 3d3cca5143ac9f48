"""Golden transcripts of every exercise check: the whole feedback a learner reads, for many answers.

For each ``check_*`` of ``autoenc_helpers/checks.py`` this file holds a list of answers: a right one
(one for each keyword variant of the check), the ``raise NotImplementedError`` stub, generic wrong
answers (None, a number, a tensor of the wrong shape, a tuple, a string, the first argument, a crash in
Python and one inside torch), and one answer for each hint in the check's tables of usual slips. One
test per check calls the check on every answer, with ``checks.SHOWN`` raised so that every finding is
printed, and compares what it printed, what it returned and whether it left the global torch random
state alone with the stored transcript ``tests/transcripts/checks/<check name>.txt``. The first answer
with more findings than a learner is shown runs again with the learner's ``SHOWN``, so the "... and N more"
line is in the transcript too. One test per check, because mutation testing (tools/mutation.py) runs for
each mutant only the tests that reach the mutated function.

So a change to any message, title, hidden case or seed of a check shows up as a diff of its transcript.
When the change is meant, regenerate the transcripts and review the diff before committing it:

    python3 tests/test_checks_transcript.py --write              # every check
    python3 tests/test_checks_transcript.py --write check_psnr   # only these

A crash inside torch shows torch's own words ("mat1 and mat2 shapes cannot be multiplied"): after an upgrade of
torch, regenerate and check that only such lines changed.

Numbers that a message prints at full precision (``tensor.tolist()``, ``{value!r}``) are compared with a
relative tolerance of 1e-5, so a last-digit difference of float32 sums on another CPU does not fail the test;
everything else must match exactly. Only stdout is compared (a warning on stderr may name a machine path).

The last test reads checks.py and asserts that every piece of message text in it (each string literal, and
each literal part of an f-string, of some length) appears in some transcript, except the few listed in
``UNREACHED`` with the reason.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import io
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:                       # run as a script: import the package beside this file
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import autoenc_helpers as ah  # noqa: E402
from autoenc_helpers import checks, losses, noise, vq  # noqa: E402
# The right answers and slips the lesson tests already write, reused (tests/ is on the path, as for baselines.py)
from test_checks import _kl, _kl_terms, _loo_right, _loo_with, _stub, _swapped as _swapped_kl  # noqa: E402
from test_checks_lesson01 import make_epoch  # noqa: E402
from test_checks_lesson03 import _with as _objective_with, right as _objective  # noqa: E402
from test_checks_lesson04 import OneLayerSplit, TwoHeads, bce as _bce_rows, kl as _kl_rows  # noqa: E402
from test_checks_lesson08 import even_decoder, good_decoder  # noqa: E402
from test_models_completion import _loss as _completion  # noqa: E402
from test_noise import refuse_unknown_kinds as _refuse_unknown  # noqa: E402
from test_noise import right_pipeline_one_image_at_a_time as _corruption_one_at_a_time  # noqa: E402

TRANSCRIPTS = Path(__file__).parent / "transcripts" / "checks"
SEED = 1234                      # the learner's global seed before each answer
ALL_SHOWN = 10_000               # checks.SHOWN while the transcripts are made: every finding printed
LOOP_LIMIT_S = 0.2               # checks.TIME_LIMIT_S for the answers that never return


@dataclass
class Answer:
    """One answer to a check: what the learner wrote (``fn``, or ``make()`` for a fresh one with its own
    state), the keyword arguments given to the check, and the settings of the call."""

    label: str
    fn: Callable | None = None
    make: Callable | None = None
    kwargs: dict = field(default_factory=dict)
    time_limit: float | None = None              # checks.TIME_LIMIT_S for this call (an endless loop)
    shown: int = ALL_SHOWN                       # checks.SHOWN for this call

    def function(self):
        return self.make() if self.make is not None else self.fn


def _forever(*args):
    while True:
        pass


def generic(*, skip: tuple = ()) -> list[Answer]:
    """The answers every check gets: the stub, then wrong answers that know nothing of the exercise."""
    answers = [
        Answer("the stub: raise NotImplementedError", _stub),
        Answer("returns None", lambda *a: None),
        Answer("returns a number, 0.5", lambda *a: 0.5),
        Answer("returns a tensor of the wrong shape, torch.zeros(3)", lambda *a: torch.zeros(3)),
        Answer("returns a tuple, (1.0, 2.0)", lambda *a: (1.0, 2.0)),
        Answer("returns a string, '0.5'", lambda *a: "0.5"),
        Answer("returns its first argument", lambda *a: a[0]),
        Answer("crashes in Python: 1 / 0", lambda *a: 1 / 0),
        Answer("crashes inside torch: a product of mismatched matrices",
               lambda *a: torch.ones(2, 3) @ torch.ones(2, 3)),
    ]
    return [a for a in answers if a.label not in skip]


def as_learner_sees_it(answer: Answer) -> Answer:
    """The same answer with the learner's number of findings shown (the "... and N more" line)."""
    return Answer(f"{answer.label} (as a learner sees it, SHOWN = {checks.SHOWN})", answer.fn, answer.make,
                  answer.kwargs, answer.time_limit, shown=checks.SHOWN)


def counting(after: int, right: Callable, wrong: Callable) -> Callable:
    """A fresh answer that is ``right`` for its first ``after`` calls and ``wrong`` from then on."""
    def make():
        calls = []

        def fn(*args):
            calls.append(1)
            return (right if len(calls) <= after else wrong)(*args)
        return fn
    return make


# =============================================================================================
# Lesson 01: the error of each image, and one epoch of training


def _sq(a, b):
    return ((a - b) ** 2).flatten(1).sum(1)


def _edits_x_hat(x_hat, x):
    x_hat.sub_(x)
    return (x_hat ** 2).flatten(1).sum(1)


PER_IMAGE_SQUARED_ERROR = [
    Answer("right: ((x_hat - x) ** 2).flatten(1).sum(1)", _sq),
    Answer("right, in float64", lambda a, b: _sq(a.double(), b.double())),
    *generic(),
    Answer("sums over the batch too: one number", lambda a, b: ((a - b) ** 2).sum()),
    Answer("sums over height and width only: shape (B, 1)", lambda a, b: ((a - b) ** 2).sum((2, 3))),
    Answer("the mean over pixels", lambda a, b: ((a - b) ** 2).flatten(1).mean(1)),
    Answer("the absolute error", lambda a, b: (a - b).abs().flatten(1).sum(1)),
    Answer("computed in bfloat16", lambda a, b: _sq(a.bfloat16(), b.bfloat16())),
    Answer("a list, not a tensor", lambda a, b: _sq(a, b).tolist()),
    Answer("subtracts x from x_hat in place", _edits_x_hat),
    Answer(f"never returns (time limit {LOOP_LIMIT_S} s)", _forever, time_limit=LOOP_LIMIT_S),
]


def _lesson_style_epoch(model, optimizer, images, batch_size, generator):
    model.train()
    order = torch.randperm(len(images), generator=generator)
    total = 0.0
    for start in range(0, len(images), batch_size):
        batch = images[order[start:start + batch_size]]
        loss = nn.MSELoss()(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * batch.shape[0]
    return total / len(images)


def _smoke_test_then_global_shuffle(model, optimizer, images, batch_size, generator):
    model(torch.zeros(1, 1, 28, 28))                         # "does the model run?" before training: a stray input
    return make_epoch(use_generator=False)(model, optimizer, images, batch_size, generator)


def _batches_one_too_long(model, optimizer, images, batch_size, generator):
    model.train()
    order = torch.randperm(len(images), generator=generator)
    total = 0.0
    for start in range(0, len(images), batch_size):
        batch = images[order[start:start + batch_size + 1]]     # off by one: each batch overlaps the next
        loss = F.mse_loss(model(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
    return total / len(images)


def _batch_losses_as_a_list(model, optimizer, images, batch_size, generator):
    model.train()
    order = torch.randperm(len(images))                             # and the global generator
    values = []
    for start in range(0, len(images), batch_size):
        batch = images[order[start:start + batch_size]]
        loss = F.mse_loss(model(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values.append(loss.item())
    return values


def _divided_by_the_number_of_images(model, optimizer, images, batch_size, generator):
    return make_epoch(loss=lambda a, b: F.mse_loss(a, b) / len(images))(model, optimizer, images, batch_size, generator)


TRAIN_EPOCH = [
    Answer("right", make_epoch()),
    Answer("right, zero_grad(set_to_none=True) and nn.MSELoss", _lesson_style_epoch),
    *generic(),
    Answer("never calls the model", lambda model, optimizer, images, batch_size, generator: 0.1),
    Answer("no model.train()", make_epoch(train_mode=False)),
    Answer("feeds the model images * 0.5", make_epoch(input_scale=0.5)),
    Answer("drops the last, short batch", make_epoch(drop_last=True)),
    Answer("one extra batch at the end: some images twice", make_epoch(extra_batch=True)),
    Answer("batches of 2 * batch_size", make_epoch(batch_scale=2)),
    Answer("no shuffle: the stored order", make_epoch(shuffle=False)),
    Answer("shuffles with the global generator", make_epoch(use_generator=False)),
    Answer("no optimizer.step()", make_epoch(step=False)),
    Answer("no optimizer.zero_grad()", make_epoch(zero_grad=False)),
    Answer("the squared error summed", make_epoch(loss=lambda a, b: ((a - b) ** 2).sum())),
    Answer("the absolute error", make_epoch(loss=lambda a, b: (a - b).abs().mean())),
    Answer("twice the MSE as the loss", make_epoch(loss=lambda a, b: 2 * F.mse_loss(a, b))),
    Answer("returns the plain mean of the batch losses", make_epoch(result="plain mean")),
    Answer("returns the last batch's loss", make_epoch(result="last")),
    Answer("returns the last batch's loss as a tensor", make_epoch(result="tensor")),
    Answer("returns the sum of the batch losses", make_epoch(result="sum")),
    Answer("returns the weighted sum, not divided", make_epoch(result="weighted sum")),
    Answer("returns 784 times the mean (a sum over pixels)", make_epoch(result="times 784")),
    Answer("returns twice the mean", make_epoch(result="twice")),
    Answer("returns None after training", make_epoch(result="None")),
    Answer("changes the images in place", make_epoch(in_place=True)),
    Answer("runs the model on a zero image first, then shuffles with the global generator",
           _smoke_test_then_global_shuffle),
    Answer("batches one image too long: order[start:start + batch_size + 1]", _batches_one_too_long),
    Answer("returns the list of the batch losses, shuffled with the global generator", _batch_losses_as_a_list),
    Answer("the loss divided by the number of images", _divided_by_the_number_of_images),
    Answer("no optimizer.step(), returns the last batch's loss", make_epoch(step=False, result="last")),
]


# =============================================================================================
# Lesson 02: Gaussian noise, PSNR, random corruption


def _noise(x, s, g):
    return (x + s * torch.randn(x.shape, generator=g)).clamp(0, 1)


def _noise_in_place_at_half(x, s, g):
    if s == 0.5:
        x.add_(s * torch.randn(x.shape, generator=g)).clamp_(0, 1)
        return x
    return _noise(x, s, g)


GAUSSIAN_NOISE = [
    Answer("right: (x + sigma * randn(generator=generator)).clamp(0, 1)", _noise),
    *generic(),
    Answer("sigma squared", lambda x, s, g: (x + s * s * torch.randn(x.shape, generator=g)).clamp(0, 1)),
    Answer("2 * sigma", lambda x, s, g: (x + 2 * s * torch.randn(x.shape, generator=g)).clamp(0, 1)),
    Answer("uniform noise, torch.rand", lambda x, s, g: (x + s * torch.rand(x.shape, generator=g)).clamp(0, 1)),
    Answer("no clipping", lambda x, s, g: x + s * torch.randn(x.shape, generator=g)),
    Answer("clips only above: .clamp(max=1)",
           lambda x, s, g: (x + s * torch.randn(x.shape, generator=g)).clamp(max=1)),
    Answer("clips the noise, not the noisy images",
           lambda x, s, g: x + (s * torch.randn(x.shape, generator=g)).clamp(0, 1)),
    Answer("clips to [0.01, 0.99]", lambda x, s, g: (x + s * torch.randn(x.shape, generator=g)).clamp(0.01, 0.99)),
    Answer("adds in place", lambda x, s, g: x.add_(s * torch.randn(x.shape, generator=g)).clamp_(0, 1)),
    Answer("adds in place, only when sigma = 0.5", _noise_in_place_at_half),
    Answer("ignores the generator", lambda x, s, g: (x + s * torch.randn(x.shape)).clamp(0, 1)),
    Answer("crops the images", lambda x, s, g: _noise(x, s, g)[:, :, :14]),
    Answer("right, on flattened images reshaped to (B, 1, 28, 28)",
           lambda x, s, g: _noise(x.flatten(1), s, g).view(-1, 1, 28, 28)),
]


PSNR = [
    Answer("right: 10 * log10(1 / mse)", lambda m: 10 * math.log10(1 / m)),
    Answer("right, as a tensor", lambda m: 10 * torch.log10(1 / torch.tensor(m))),
    *generic(),
    Answer("20 * log10", lambda m: 20 * math.log10(1 / m)),
    Answer("20 * log10, in float32", lambda m: 20 * torch.log10(1 / torch.tensor(m, dtype=torch.float32))),
    Answer("the natural logarithm", lambda m: 10 * math.log(1 / m)),
    Answer("the sign flipped", lambda m: 10 * math.log10(m)),
    Answer("one dB too many", lambda m: 10 * math.log10(1 / m) + 1),
    Answer("a string with a unit, '20 dB'", lambda m: "20 dB"),
    Answer(f"never returns (time limit {LOOP_LIMIT_S} s)", _forever, time_limit=LOOP_LIMIT_S),
]


def _corrupt_with(images, max_levels, generator, *, kinds_from=None, levels_from=None, level_scale=True,
                  clip=True, clip_below_only=False, clip_noise=False):
    """Draw a kind and a level per image and corrupt it; the keywords make the usual slips."""
    kinds = list(max_levels)
    b = images.shape[0]
    which = (kinds_from(b, len(kinds)) if kinds_from else torch.randint(len(kinds), (b,), generator=generator))
    fraction = levels_from(b) if levels_from else torch.rand(b, generator=generator)
    out = images.clone()
    for k, kind in enumerate(kinds):
        rows = which == k
        if not rows.any():
            continue
        levels = fraction[rows] * (max_levels[kind] if level_scale else 1.0)
        if kind == "gaussian" and not clip:
            noise_ = levels.view(-1, 1, 1, 1) * torch.randn(images[rows].shape, generator=generator)
            noisy = images[rows] + (noise_.clamp(0, 1) if clip_noise else noise_)
            out[rows] = noisy.clamp(min=0) if clip_below_only else noisy
        else:
            out[rows] = ah.corrupt(images[rows], kind, levels, generator=generator)
    return out


def _right_corruption(images, max_levels, generator):
    _refuse_unknown(max_levels)
    return _corrupt_with(images, max_levels, generator)


def _global_state_corruption(images, max_levels, generator, *, times_maximum=True):
    _refuse_unknown(max_levels)
    kinds = list(max_levels)
    which = torch.randint(len(kinds), (images.shape[0],))
    fraction = torch.rand(images.shape[0])
    out = images.clone()
    for k, kind in enumerate(kinds):
        rows = which == k
        if rows.any():
            out[rows] = ah.corrupt(images[rows], kind, fraction[rows] * (max_levels[kind] if times_maximum else 1.0))
    return out


def _one_kind_for_the_batch(images, max_levels, generator):
    _refuse_unknown(max_levels)
    kinds = list(max_levels)
    kind = kinds[int(torch.randint(len(kinds), (1,), generator=generator))]
    return ah.corrupt(images, kind, torch.rand(images.shape[0], generator=generator) * max_levels[kind],
                      generator=generator)


def _lopsided_kinds(images, max_levels, generator):
    _refuse_unknown(max_levels)
    g = generator
    return _corrupt_with(images, max_levels, g,
                         kinds_from=lambda b, k: (torch.rand(b, generator=g) * k ** 2).sqrt().long().clamp(max=k - 1))


def _unnamed_refusal(images, max_levels, generator):
    if any(k not in noise.NOISE_KINDS for k in max_levels):
        raise ValueError("unknown noise kind")
    return _corrupt_with(images, max_levels, generator)


def _silent_on_unknown(images, max_levels, generator):
    known = {k: v for k, v in max_levels.items() if k in noise.NOISE_KINDS}
    return _corrupt_with(images, known, generator) if known else images.clone()


def _global_state_full_levels(images, max_levels, generator):
    return _global_state_corruption(images, max_levels, generator, times_maximum=False)   # levels not times the maximum


def _noise_clipped_before_adding(images, max_levels, generator):
    _refuse_unknown(max_levels)
    return _corrupt_with(images, max_levels, generator, clip=False, clip_noise=True)


def _kinds_with(draw):
    """An answer that draws each image's kind index as ``draw(uniform numbers, number of kinds)``."""
    def fn(images, max_levels, generator):
        _refuse_unknown(max_levels)
        g = generator
        return _corrupt_with(images, max_levels, g, kinds_from=lambda b, k: draw(torch.rand(b, generator=g), k))
    return fn


def _levels_with(draw):
    """An answer that draws each image's level, as a fraction of the maximum, with ``draw(B, generator)``."""
    def fn(images, max_levels, generator):
        _refuse_unknown(max_levels)
        return _corrupt_with(images, max_levels, generator, levels_from=lambda b: draw(b, generator))
    return fn


def _levels_checked_first(images, max_levels, generator):
    """Refuses a level above 1 for any kind before drawing (without naming the kind), but an unknown kind only
    when an image draws it."""
    for kind, top in max_levels.items():
        if kind != "gaussian" and top > 1:
            raise ValueError(f"a level must be at most 1, got {top}")
    return _corrupt_with(images, max_levels, generator)


def _in_place_corruption(images, max_levels, generator):
    images.copy_(_right_corruption(images, max_levels, generator))
    return images


RANDOM_CORRUPTION = [
    Answer("right: one kind and one level per image, all drawn from generator", _right_corruption),
    Answer("right, one image at a time", _corruption_one_at_a_time),
    *generic(),
    Answer("values outside [0, 1]: Gaussian noise not clipped",
           lambda x, m, g: (_refuse_unknown(m), _corrupt_with(x, m, g, clip=False))[1]),
    Answer("values above 1: Gaussian noise clipped at 0 only",
           lambda x, m, g: (_refuse_unknown(m), _corrupt_with(x, m, g, clip=False, clip_below_only=True))[1]),
    Answer("draws from the global random state", _global_state_corruption),
    Answer("ignores the generator it is given: a fixed seed",
           lambda x, m, g: _right_corruption(x, m, torch.Generator().manual_seed(0))),
    Answer("one level for the whole batch",
           lambda x, m, g: (_refuse_unknown(m), _corrupt_with(
               x, m, g, levels_from=lambda b: torch.rand(1, generator=g).expand(b)))[1]),
    Answer("levels between half the maximum and the maximum",
           lambda x, m, g: (_refuse_unknown(m), _corrupt_with(
               x, m, g, levels_from=lambda b: 0.5 + 0.5 * torch.rand(b, generator=g)))[1]),
    Answer("levels up to 1 whatever the maximum",
           lambda x, m, g: (_refuse_unknown(m), _corrupt_with(x, m, g, level_scale=False))[1]),
    Answer("levels up to 1 whatever the maximum, Gaussian noise not clipped",
           lambda x, m, g: (_refuse_unknown(m), _corrupt_with(x, m, g, level_scale=False, clip=False))[1]),
    Answer("one kind for the whole batch", _one_kind_for_the_batch),
    Answer("kinds drawn unevenly (the last kind most often)", _lopsided_kinds),
    Answer("accepts an unknown kind silently", _silent_on_unknown),
    Answer("refuses an unknown kind without naming it", _unnamed_refusal),
    Answer("refuses an unknown kind only when an image draws it (ah.corrupt does)",
           lambda x, m, g: _corrupt_with(x, m, g)),
    Answer("writes the result into the clean images", _in_place_corruption),
    Answer("crops the images", lambda x, m, g: _right_corruption(x, m, g)[:, :, :14]),
    Answer("right on the first call, cropped from the second on",
           make=counting(1, _right_corruption, lambda x, m, g: x[:, :, :14])),
    Answer("right on the first two calls, cropped from the third on",
           make=counting(2, _right_corruption, lambda x, m, g: x[:, :, :14])),
    Answer("draws from the global random state, levels up to 1 whatever the maximum", _global_state_full_levels),
    Answer("the Gaussian noise clipped to [0, 1] before it is added", _noise_clipped_before_adding),
    Answer("levels between 0.2 times the maximum and the maximum",
           _levels_with(lambda b, g: 0.2 + 0.8 * torch.rand(b, generator=g))),
    Answer("levels 0 or the maximum: torch.randint(2, (B,)) times the maximum",
           _levels_with(lambda b, g: torch.randint(2, (b,), generator=g).float())),
    Answer("kinds (rand * (len(kinds) - 1)).long(): the last kind never drawn",
           _kinds_with(lambda u, k: (u * (k - 1)).long())),
    Answer("kinds (rand * (len(kinds) - 1)).round(): the middle kind twice as often",
           _kinds_with(lambda u, k: (u * (k - 1)).round().long())),
    Answer("kinds (rand * (len(kinds) + 1)).long(): an index past the last kind leaves the image clean",
           _kinds_with(lambda u, k: (u * (k + 1)).long())),
    Answer("refuses a level above 1 first, an unknown kind only when an image draws it", _levels_checked_first),
]


# =============================================================================================
# Lesson 03: sparsity penalties and the sparse objective


L1_ACTIVATION_PENALTY = [
    Answer("right: h.abs().sum(1).mean()", lambda h: h.abs().sum(1).mean()),
    Answer("right: losses.l1_activation_penalty", losses.l1_activation_penalty),
    *generic(),
    Answer("summed over the images too", lambda h: h.abs().sum()),
    Answer("averaged over the units too", lambda h: h.abs().mean()),
    Answer("no absolute value", lambda h: h.sum(1).mean()),
    Answer("squared: an L2 penalty", lambda h: (h ** 2).sum(1).mean()),
    Answer("a Python number, .item()", lambda h: h.abs().sum(1).mean().item()),
    Answer("one value per image", lambda h: h.abs().sum(1)),
    Answer("one value per unit", lambda h: h.abs().mean(0)),
    Answer("shape (B, 1)", lambda h: h.abs().sum(1, keepdim=True)),
    Answer("detached", lambda h: h.detach().abs().sum(1).mean()),
    Answer("divides by |h|: nan where h = 0", lambda h: (h.abs() / h.abs()).sum(1).mean()),
    Answer("the largest image, not the mean", lambda h: h.abs().sum(1).max()),
]


def _kl_log_differences(h, rho):
    r = h.mean(0).clamp(1e-6, 1 - 1e-6)
    return (rho * (math.log(rho) - torch.log(r)) + (1 - rho) * (math.log(1 - rho) - torch.log(1 - r))).sum()


KL_SPARSITY_PENALTY = [
    Answer("right: the sum over units of KL(rho || h.mean(0)), clamped", lambda h, rho: _kl(h, rho).sum()),
    Answer("right: losses.kl_sparsity_penalty", losses.kl_sparsity_penalty),
    *generic(),
    Answer("rho and rho_hat swapped", _swapped_kl),
    Answer("the KL of each image's activations, averaged", lambda h, rho: _kl(h, rho, rate=lambda h: h).sum(1).mean()),
    Answer("rho_hat = h.sum(0), clamped", lambda h, rho: _kl(h, rho, rate=lambda h: h.sum(0)).sum()),
    Answer("rho_hat = h.sum(0), not clamped", lambda h, rho: _kl(h, rho, rate=lambda h: h.sum(0), eps=0).sum()),
    Answer("rho_hat = h.mean(1)", lambda h, rho: _kl(h, rho, rate=lambda h: h.mean(1)).sum()),
    Answer("averaged over the units", lambda h, rho: _kl(h, rho).mean()),
    Answer("only the first term", lambda h, rho: _kl(h, rho, second_term=False).sum()),
    Answer("the sign flipped", lambda h, rho: -_kl(h, rho).sum()),
    Answer("log base 10", lambda h, rho: _kl(h, rho, log=torch.log10).sum()),
    Answer("log base 2", lambda h, rho: _kl(h, rho, log=torch.log2).sum()),
    Answer("not clamped: inf or nan for a dead unit", lambda h, rho: _kl(h, rho, eps=0).sum()),
    Answer("one value per unit", lambda h, rho: _kl(h, rho)),
    Answer("a Python number", lambda h, rho: _kl(h, rho).sum().item()),
    Answer("twice the KL", lambda h, rho: 2 * _kl(h, rho).sum()),
    Answer("not clamped, an infinite penalty replaced by 0 (torch.nan_to_num)",
           lambda h, rho: torch.nan_to_num(_kl(h, rho, eps=0).sum(), posinf=0.0)),
    Answer("right: written with differences of logs, log(rho) - log(rho_hat)", _kl_log_differences),
]


def _summed_mse(e):
    return ((e["model"].decode(e["h"]) - e["targets"]) ** 2).flatten(1).sum(1).mean()


SPARSE_KL_OBJECTIVE = [
    Answer("right", _objective),
    Answer("right: ah.sparse_objective('kl', ...)",
           lambda m, x, y, w, r: ah.sparse_objective("kl", weight=w, rho=r)(m, x, y)),
    *generic(),
    Answer("total without the weight", _objective_with(total_loss=lambda e: e["mse"] + e["kl"])),
    Answer("the weight on the error", _objective_with(total_loss=lambda e: e["kl"] + e["weight"] * e["mse"])),
    Answer("total is the error alone", _objective_with(total_loss=lambda e: e["mse"])),
    Answer("total is twice what it should be",
           _objective_with(total_loss=lambda e: 2 * (e["mse"] + e["weight"] * e["kl"]))),
    Answer("the error against the inputs", lambda m, x, y, w, r: _objective(m, x, x, w, r)),
    Answer("the error summed over pixels",
           _objective_with(mse_per_pixel=_summed_mse, total_loss=lambda e: _summed_mse(e) + e["weight"] * e["kl"])),
    Answer("the error doubled", _objective_with(mse_per_pixel=lambda e: 2 * e["mse"])),
    Answer("rho = 0.05 always", _objective_with(kl_sparsity_nats=lambda e: losses.kl_sparsity_penalty(e["h"], 0.05))),
    Answer("the KL averaged over the units",
           _objective_with(kl_sparsity_nats=lambda e: losses.bernoulli_kl(e["rho"], e["h"].mean(0)).mean())),
    Answer("the KL doubled", _objective_with(kl_sparsity_nats=lambda e: 2 * e["kl"])),
    Answer("the KL per unit",
           _objective_with(kl_sparsity_nats=lambda e: losses.bernoulli_kl(e["rho"], e["h"].mean(0)))),
    Answer("the entries as Python floats",
           lambda m, x, y, w, r: {k: v.item() for k, v in _objective(m, x, y, w, r).items()}),
    Answer("every entry detached", lambda m, x, y, w, r: {k: v.detach() for k, v in _objective(m, x, y, w, r).items()}),
    Answer("the entries in reverse order",
           lambda m, x, y, w, r: dict(reversed(list(_objective(m, x, y, w, r).items())))),
    Answer("one key, 'loss'", lambda m, x, y, w, r: {"loss": _objective(m, x, y, w, r)["total_loss"]}),
    Answer("the total alone, not a dict", lambda m, x, y, w, r: _objective(m, x, y, w, r)["total_loss"]),
    Answer("an empty dict", lambda m, x, y, w, r: {}),
]


# =============================================================================================
# Lesson 04: the VAE's loss and the encoder head


VAE_LOSS = [
    Answer("right: (BCE summed over pixels + KL).mean()",
           lambda lg, x, mu, lv: (_bce_rows(lg, x) + _kl_rows(mu, lv)).mean()),
    Answer("right: F.binary_cross_entropy(sigmoid, reduction='sum') / B + KL.mean()",
           lambda lg, x, mu, lv: F.binary_cross_entropy(torch.sigmoid(lg), x, reduction="sum") / x.shape[0]
           + _kl_rows(mu, lv).mean()),
    *generic(),
    Answer("BCE averaged over pixels", lambda lg, x, mu, lv: F.binary_cross_entropy_with_logits(lg, x)
           + _kl_rows(mu, lv).mean()),
    Answer("summed over the batch", lambda lg, x, mu, lv: (_bce_rows(lg, x) + _kl_rows(mu, lv)).sum()),
    Answer("the KL subtracted", lambda lg, x, mu, lv: (_bce_rows(lg, x) - _kl_rows(mu, lv)).mean()),
    Answer("the KL without its 1/2", lambda lg, x, mu, lv: (_bce_rows(lg, x) + 2 * _kl_rows(mu, lv)).mean()),
    Answer("sigma where the variance belongs",
           lambda lg, x, mu, lv: (_bce_rows(lg, x) + 0.5 * (mu ** 2 + (0.5 * lv).exp() - lv - 1).sum(1)).mean()),
    Answer("the KL alone", lambda lg, x, mu, lv: _kl_rows(mu, lv).mean()),
    Answer("the BCE alone", lambda lg, x, mu, lv: _bce_rows(lg, x).mean()),
    Answer("three times the KL", lambda lg, x, mu, lv: (_bce_rows(lg, x) + 3 * _kl_rows(mu, lv)).mean()),
    Answer("one loss per image", lambda lg, x, mu, lv: _bce_rows(lg, x) + _kl_rows(mu, lv)),
]


def head(forward):
    """TwoHeads with ``forward(self, h)`` replaced."""
    return type("Head", (TwoHeads,), {"forward": forward})


def head_draw(draw, outputs=3):
    """TwoHeads whose z is ``draw(mu, logvar)``, returning the first ``outputs`` of (mu, logvar, z)."""
    def forward(self, h):
        mu, logvar = self.mu(h), self.logvar(h)
        return (mu, logvar, draw(mu, logvar))[:outputs]
    return head(forward)


def _sigma_head(self, h):
    mu, sigma = self.mu(h), F.softplus(self.logvar(h))
    return mu, sigma, mu + sigma * torch.randn_like(mu)


def _same_head(self, h):
    mu = self.mu(h)
    return mu, mu, mu + torch.exp(0.5 * mu) * torch.randn_like(mu)


def _mu_twice(self, h):
    logvar = self.logvar(h)
    return self.mu(h), logvar, self.mu(h) + torch.exp(0.5 * logvar) * torch.randn_like(logvar)


def _logvar_twice(self, h):
    mu = self.mu(h)
    return mu, self.logvar(h), mu + torch.exp(0.5 * self.logvar(h)) * torch.randn_like(mu)


class NoParameters(nn.Module):
    def __init__(self, hidden, latent_dim):
        super().__init__()
        self.k = latent_dim

    def forward(self, h):
        mu = logvar = h[:, :self.k]
        return mu, logvar, mu


class SpareLayers(TwoHeads):
    """Right, but with three more layers that forward never uses."""

    def __init__(self, hidden, latent_dim):
        super().__init__(hidden, latent_dim)
        self.spare = nn.Sequential(nn.Linear(hidden, 4), nn.Linear(4, 4), nn.Linear(4, latent_dim))


def _relu_logvar(self, h):
    mu, logvar = self.mu(h), F.relu(self.logvar(h))
    return mu, logvar, mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def forward_raises_from(call: int):
    """TwoHeads whose forward raises NotImplementedError from its ``call``-th call on (a fresh count per check)."""
    def make():
        calls = []

        def forward(self, h):
            calls.append(1)
            if len(calls) >= call:
                raise NotImplementedError
            return TwoHeads.forward(self, h)
        return head(forward)
    return make


def _frozen(hidden, k):
    module = TwoHeads(hidden, k)
    module.requires_grad_(False)
    return module


def _randn(mu):
    return torch.randn_like(mu)


def logvar_shifted(shift):
    """TwoHeads whose log-variance head starts ``shift`` higher: right, with sigma far from 1."""
    def make(hidden, latent_dim):
        module = TwoHeads(hidden, latent_dim)
        with torch.no_grad():
            module.logvar.bias.add_(shift)
        return module
    return make


def _exponential(mu):
    """Noise with the spread of N(0, 1) but mean 1: an exponential draw."""
    return torch.empty_like(mu).exponential_()


ENCODER_HEAD = [
    Answer("right: two nn.Linear heads, z = mu + exp(0.5 * logvar) * randn_like", TwoHeads),
    Answer("right: one layer split in two, Normal(...).rsample()", OneLayerSplit),
    *generic(),
    Answer("returns sigma (softplus) in logvar's place", head(_sigma_head)),
    Answer("sigma = exp(logvar), the variance", head_draw(lambda mu, lv: mu + torch.exp(lv) * _randn(mu))),
    Answer("mu + eps", head_draw(lambda mu, lv: mu + _randn(mu))),
    Answer("no eps: z = mu", head_draw(lambda mu, lv: mu + 0 * lv)),
    Answer("one eps for the whole batch",
           head_draw(lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.randn(mu.shape[1]))),
    Answer("uniform eps, torch.rand_like", head_draw(lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.rand_like(mu))),
    Answer("centred uniform eps, rand_like - 0.5",
           head_draw(lambda mu, lv: mu + torch.exp(0.5 * lv) * (torch.rand_like(mu) - 0.5))),
    Answer("Normal(...).sample()",
           head_draw(lambda mu, lv: torch.distributions.Normal(mu, torch.exp(0.5 * lv)).sample())),
    Answer("z detached", head_draw(lambda mu, lv: (mu + torch.exp(0.5 * lv) * _randn(mu)).detach())),
    Answer("sigma = exp(-0.5 * logvar)", head_draw(lambda mu, lv: mu + torch.exp(-0.5 * lv) * _randn(mu))),
    Answer("sigma = sqrt(logvar)", head_draw(lambda mu, lv: mu + lv.sqrt() * _randn(mu))),
    Answer("2 * mu in z", head_draw(lambda mu, lv: 2 * mu + torch.exp(0.5 * lv) * _randn(mu))),
    Answer("mu + 1 in z", head_draw(lambda mu, lv: mu + 1 + torch.exp(0.5 * lv) * _randn(mu))),
    Answer("2 * sigma in z", head_draw(lambda mu, lv: mu + 2 * torch.exp(0.5 * lv) * _randn(mu))),
    Answer("returns (mu, logvar) only", head_draw(lambda mu, lv: mu, outputs=2)),
    Answer("returns mu only", head(lambda self, h: self.mu(h))),
    Answer("returns four things", head(lambda self, h: (*TwoHeads.forward(self, h), h))),
    Answer("returns (mu, logvar, None)", head(lambda self, h: (*TwoHeads.forward(self, h)[:2], None))),
    Answer("z summed over the latent dimensions",
           head(lambda self, h: (lambda mu, lv, z: (mu, lv, z.sum(1, keepdim=True)))(*TwoHeads.forward(self, h)))),
    Answer("one head for mu and logvar", head(_same_head)),
    Answer("mu computed twice: z uses another tensor", head(_mu_twice)),
    Answer("logvar computed twice: z uses another tensor", head(_logvar_twice)),
    Answer("three layers that forward never uses", SpareLayers),
    Answer("ReLU on the logvar head", head(_relu_logvar)),
    Answer("mu with one column", head(lambda self, h: (self.mu(h)[:, :1], *TwoHeads.forward(self, h)[1:]))),
    Answer("forward raises NotImplementedError", make=forward_raises_from(1)),
    Answer("forward raises NotImplementedError from its 4th call (the gradient test)", make=forward_raises_from(4)),
    Answer("forward raises NotImplementedError from its 5th call (the statistics test)", make=forward_raises_from(5)),
    Answer("right, with a small sigma: the logvar head's bias 8 lower (sigma about 0.02)", logvar_shifted(-8.0)),
    Answer("right, with a large sigma: the logvar head's bias 2 higher", logvar_shifted(2.0)),
    Answer("half-normal eps, randn_like(mu).abs()",
           head_draw(lambda mu, lv: mu + torch.exp(0.5 * lv) * _randn(mu).abs())),
    Answer("exponential eps: the spread of N(0, 1), mean 1",
           head_draw(lambda mu, lv: mu + torch.exp(0.5 * lv) * _exponential(mu))),
    Answer("a module without parameters", NoParameters),
    Answer("every parameter frozen", _frozen),
    Answer("crashes in forward", head(lambda self, h: self.mu(h.T))),
]


# =============================================================================================
# Lesson 05: reparameterize and the leave-one-out score


def _reparam(mu, logvar):
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def _reparam64(mu, logvar):
    return _reparam(mu.double(), logvar.double())


REPARAMETERIZE = [
    Answer("right: mu + exp(0.5 * logvar) * randn_like(mu)", _reparam),
    Answer("right: Normal(mu, sigma).rsample()",
           lambda mu, lv: torch.distributions.Normal(mu, torch.exp(0.5 * lv)).rsample()),
    Answer("right, in float64", _reparam64),
    *generic(),
    Answer("sigma = exp(logvar), the variance", lambda mu, lv: mu + torch.exp(lv) * torch.randn_like(mu)),
    Answer("sigma = sqrt(logvar)", lambda mu, lv: mu + torch.sqrt(lv) * torch.randn_like(mu)),
    Answer("sigma = sqrt(logvar - 1): NaN where logvar >= 0 too",
           lambda mu, lv: mu + torch.sqrt(lv - 1) * torch.randn_like(mu)),
    Answer("no eps", lambda mu, lv: mu + 0 * lv),
    Answer("Normal(...).sample()", lambda mu, lv: torch.distributions.Normal(mu, torch.exp(0.5 * lv)).sample()),
    Answer("mu + eps", lambda mu, lv: mu + torch.randn_like(mu)),
    Answer("one eps for the whole batch", lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.randn(1)),
    Answer("uniform eps", lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.rand_like(mu)),
    Answer("centred uniform eps", lambda mu, lv: mu + torch.exp(0.5 * lv) * (torch.rand_like(mu) - 0.5)),
    Answer("logvar as sigma", lambda mu, lv: mu + lv * torch.randn_like(mu)),
    Answer("sigma = exp(-0.5 * logvar)", lambda mu, lv: mu + torch.exp(-0.5 * lv) * torch.randn_like(mu)),
    Answer("2 * sigma", lambda mu, lv: mu + 2 * torch.exp(0.5 * lv) * torch.randn_like(mu)),
    Answer("mu detached", lambda mu, lv: mu.detach() + torch.exp(0.5 * lv) * torch.randn_like(mu)),
    Answer("2 * mu", lambda mu, lv: 2 * mu + torch.exp(0.5 * lv) * torch.randn_like(mu)),
    Answer("mu + 1", lambda mu, lv: mu + 1 + torch.exp(0.5 * lv) * torch.randn_like(mu)),
    Answer("half-normal eps, randn_like(mu).abs()", lambda mu, lv: mu + torch.exp(0.5 * lv) * _randn(mu).abs()),
    Answer("exponential eps: the spread of N(0, 1), mean 1",
           lambda mu, lv: mu + torch.exp(0.5 * lv) * _exponential(mu)),
    Answer("summed over the last axis", lambda mu, lv: _reparam(mu, lv).sum(1)),
    Answer("right for four calls, then raise NotImplementedError (the statistics test)",
           make=counting(4, _reparam, _stub)),
    Answer("right for three calls, then raise NotImplementedError (the gradient test)",
           make=counting(3, _reparam, _stub)),
]


LEAVE_ONE_OUT_SCORE = [
    Answer("right", _loo_right),
    *generic(),
    Answer("the own sample in the baseline", _loo_with(own=True)),
    Answer("the baseline divided by S", _loo_with(by_s=True)),
    Answer("the score divided by sigma", _loo_with(power=1)),
    Answer("the score not divided", _loo_with(power=0)),
    Answer("z ** 2 in place of f", _loo_with(square=True)),
    Answer("no baseline", _loo_with(none=True)),
    Answer("twice the estimate", _loo_with(scale=2)),
    Answer("S = 1 accepted", _loo_with(no_error=True)),
    Answer("S = 1 refused without naming S", _loo_with(error="too few")),
    Answer("one estimate per row, shape (R, 1)", lambda f, mu, sigma, eps: _loo_right(f, mu, sigma, eps)[:, None]),
]


# =============================================================================================
# Lesson 06: the closed-form KL; lesson 07: free bits


def _kl_divergence_rows(mu, logvar):
    from torch.distributions import Normal, kl_divergence
    return kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1)


GAUSSIAN_KL = [
    Answer("right: 0.5 * (mu^2 + exp(logvar) - 1 - logvar), summed over dim 1",
           lambda mu, lv: _kl_terms(mu, lv).sum(1)),
    Answer("right: -0.5 * (1 + logvar - mu^2 - exp(logvar))",
           lambda mu, lv: -0.5 * (1 + lv - mu ** 2 - lv.exp()).sum(dim=1)),
    Answer("right: torch.distributions.kl_divergence", _kl_divergence_rows),
    *generic(),
    Answer("the sign flipped", lambda mu, lv: -_kl_terms(mu, lv).sum(1)),
    Answer("no 1/2", lambda mu, lv: 2 * _kl_terms(mu, lv).sum(1)),
    Answer("sigma for the variance", lambda mu, lv: 0.5 * (mu ** 2 + torch.exp(0.5 * lv) - 1 - lv).sum(1)),
    Answer("logvar read as log sigma", lambda mu, lv: 0.5 * (mu ** 2 + torch.exp(2 * lv) - 1 - 2 * lv).sum(1)),
    Answer("log sigma in the log term", lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - 1 - 0.5 * lv).sum(1)),
    Answer("no -1", lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - lv).sum(1)),
    Answer("mu not squared", lambda mu, lv: 0.5 * (mu + lv.exp() - 1 - lv).sum(1)),
    Answer("the mean over the dimensions", lambda mu, lv: _kl_terms(mu, lv).mean(1)),
    Answer("the mean over the batch too", lambda mu, lv: _kl_terms(mu, lv).sum(1).mean()),
    Answer("the sum over the batch too", lambda mu, lv: _kl_terms(mu, lv).sum()),
    Answer("the largest image's KL", lambda mu, lv: _kl_terms(mu, lv).sum(1).max()),
    Answer("one value per dimension", lambda mu, lv: _kl_terms(mu, lv)),
    Answer("summed over the images", lambda mu, lv: _kl_terms(mu, lv).sum(0)),
    Answer("shape (B, 1)", lambda mu, lv: _kl_terms(mu, lv).sum(1, keepdim=True)),
    Answer("the square root of logvar: NaN", lambda mu, lv: 0.5 * (mu ** 2 + lv.sqrt() - 1 - lv).sum(1)),
    Answer("detached", lambda mu, lv: _kl_terms(mu, lv).sum(1).detach()),
    Answer("mu detached",
           lambda mu, lv: _kl_terms(mu.detach(), lv).sum(1)),
    Answer("logvar detached",
           lambda mu, lv: _kl_terms(mu, lv.detach()).sum(1)),
    Answer("a list", lambda mu, lv: _kl_terms(mu, lv).sum(1).tolist()),
    Answer("three times the KL", lambda mu, lv: 3 * _kl_terms(mu, lv).sum(1)),
    Answer("the right values with 1.5 times their gradient",
           lambda mu, lv: (lambda k: k + 0.5 * (k - k.detach()))(_kl_terms(mu, lv).sum(1))),
]


def _free_bits(mu, lv, lam):
    return _kl_terms(mu, lv).mean(0).clamp(min=lam).sum()


FREE_BITS_KL = [
    Answer("right: the batch mean per dimension, clamp(min=free_bits), summed", _free_bits),
    Answer("right: torch.maximum with ah.gaussian_kl(dims='none')",
           lambda mu, lv, lam: torch.maximum(ah.gaussian_kl(mu, lv, dims="none", batch="mean"),
                                             torch.tensor(lam)).sum()),
    *generic(),
    Answer("the floor on each image", lambda mu, lv, lam: _kl_terms(mu, lv).clamp(min=lam).sum(1).mean()),
    Answer("the floor on the total", lambda mu, lv, lam: _kl_terms(mu, lv).mean(0).sum().clamp(min=lam)),
    Answer("no floor", lambda mu, lv, lam: _kl_terms(mu, lv).mean(0).sum()),
    Answer("max(0, KL - free_bits)", lambda mu, lv, lam: (_kl_terms(mu, lv).mean(0) - lam).clamp(min=0).sum()),
    Answer("min for max", lambda mu, lv, lam: _kl_terms(mu, lv).mean(0).clamp(max=lam).sum()),
    Answer("summed over the batch, then floored", lambda mu, lv, lam: _kl_terms(mu, lv).sum(0).clamp(min=lam).sum()),
    Answer("summed over the batch", lambda mu, lv, lam: mu.shape[0] * _free_bits(mu, lv, lam)),
    Answer("the mean over dimensions", lambda mu, lv, lam: _kl_terms(mu, lv).mean(0).clamp(min=lam).mean()),
    Answer("one value per dimension", lambda mu, lv, lam: _kl_terms(mu, lv).mean(0).clamp(min=lam)),
    Answer("one value per image", lambda mu, lv, lam: _kl_terms(mu, lv).clamp(min=lam).sum(1)),
    Answer("one value per image, shape (B, 1)",
           lambda mu, lv, lam: _kl_terms(mu, lv).clamp(min=lam).sum(1, keepdim=True)),
    Answer("one value per image and dimension", lambda mu, lv, lam: _kl_terms(mu, lv).clamp(min=lam)),
    Answer("detached", lambda mu, lv, lam: _free_bits(mu, lv, lam).detach()),
    Answer("mu detached: the gradient reaches logvar only", lambda mu, lv, lam: _free_bits(mu.detach(), lv, lam)),
    Answer("a Python float", lambda mu, lv, lam: _free_bits(mu, lv, lam).item()),
    Answer("the gradient goes through the floor",
           lambda mu, lv, lam: (lambda d: (d + (d.clamp(min=lam) - d).detach()).sum())(_kl_terms(mu, lv).mean(0))),
    Answer("three times the term", lambda mu, lv, lam: 3 * _free_bits(mu, lv, lam)),
    Answer("the right value with 1.5 times its gradient",
           lambda mu, lv, lam: (lambda v: v + 0.5 * (v - v.detach()))(_free_bits(mu, lv, lam))),
    Answer("summed over the batch, then floored, in float64",
           lambda mu, lv, lam: _kl_terms(mu.double(), lv.double()).sum(0).clamp(min=lam).sum()),
]


# =============================================================================================
# Lesson 08: output sizes and the convolutional decoder


CONV_OUTPUT_SIZE = [
    Answer("right: (size + 2 * padding - kernel) // stride + 1", lambda n, k, s, p: (n + 2 * p - k) // s + 1),
    *generic(),
    Answer("no + 1", lambda n, k, s, p: (n + 2 * p - k) // s),
    Answer("+ 2", lambda n, k, s, p: (n + 2 * p - k) // s + 2),
    Answer("returns the size itself", lambda n, k, s, p: n),
    Answer("true division: a float", lambda n, k, s, p: (n + 2 * p - k) / s + 1),
    Answer("returns True", lambda n, k, s, p: True),
    Answer("returns 0", lambda n, k, s, p: 0),
]


CONV_TRANSPOSE_OUTPUT_SIZE = [
    Answer("right: (size - 1) * stride - 2 * padding + kernel", lambda n, k, s, p: (n - 1) * s - 2 * p + k),
    *generic(),
    Answer("padding added", lambda n, k, s, p: (n - 1) * s + 2 * p + k),
    Answer("size * stride - 2 * padding", lambda n, k, s, p: n * s - 2 * p),
    Answer("returns 0", lambda n, k, s, p: 0),
]


class SpareDecoder(nn.Module):
    """Right, but with two layers that forward never uses."""

    def __init__(self, k, channels):
        super().__init__()
        self.net = even_decoder(k, channels)
        self.spare = nn.Sequential(nn.Linear(k, 4), nn.Linear(4, 4))

    def forward(self, z):
        return self.net(z)


class SigmoidInForward(nn.Module):
    """Right layers, then torch.sigmoid in forward (no nn.Sigmoid module)."""

    def __init__(self, k, channels):
        super().__init__()
        self.net = even_decoder(k, channels)

    def forward(self, z):
        return torch.sigmoid(self.net(z))


class ViewDecoder(nn.Module):
    """A first layer with 64 * 7 * 7 features, reshaped with .view to (B, c4, 7, 7): it crashes when c4 != 64."""

    def __init__(self, k, channels):
        super().__init__()
        self.c4 = channels[3]
        self.first = nn.Linear(k, 64 * 49)
        self.rest = even_decoder(k, channels)[3:]

    def forward(self, z):
        return self.rest(self.first(z).view(z.shape[0], self.c4, 7, 7))


class LogitsAndProbabilities(nn.Module):
    """Right layers, but forward returns two tensors, (logits, sigmoid(logits))."""

    def __init__(self, k, channels):
        super().__init__()
        self.net = even_decoder(k, channels)

    def forward(self, z):
        logits = self.net(z)
        return logits, torch.sigmoid(logits)


class ClampInForward(nn.Module):
    """Right layers, then the output clamped to [0, 1] in forward: exact 0s and 1s, no sigmoid module."""

    def __init__(self, k, channels):
        super().__init__()
        self.net = even_decoder(k, channels)

    def forward(self, z):
        return self.net(z).clamp(0, 1)


def stride2_decoder(k, channels, *, kernel=3, padding=0, layers=2, stride=2, first=True):
    """A decoder whose stride-2 (or stride-4) layers use the given kernel and padding."""
    c1, c2, c3, c4 = channels
    convs = [nn.ConvTranspose2d(c4, c3, 3, stride=1, padding=1), nn.LeakyReLU()] if first else []
    widths = [c3 if first else c4, c2, c1][:layers + 1]
    for a, b in zip(widths, widths[1:]):
        convs += [nn.ConvTranspose2d(a, b, kernel, stride=stride, padding=padding), nn.LeakyReLU()]
    return nn.Sequential(nn.Linear(k, c4 * 49), nn.LeakyReLU(), nn.Unflatten(1, (c4, 7, 7)), *convs,
                         nn.ConvTranspose2d(widths[-1], 1, 3, stride=1, padding=1))


def _decoder_answers(even: bool) -> list[Answer]:
    kw = {"even_stamps": True} if even else {}
    tag = ", even_stamps=True" if even else ""
    right_without_even_stamps = "kernel 3 (right without even_stamps)" if even else "right: kernel 3"
    answers = [
        Answer(f"right: kernel 4, stride 2, padding 1{tag}", even_decoder, kwargs=kw),
        Answer(f"{right_without_even_stamps}, with output_padding=1{tag}", good_decoder, kwargs=kw),
        Answer(f"{right_without_even_stamps}: ah.ConvVAE's decoder{tag}",
               lambda k, ch: ah.ConvVAE(latent_dim=k, channels=ch).decoder, kwargs=kw),
        *[Answer(a.label + tag, a.fn, kwargs=kw) for a in generic()],
        Answer(f"kernel 3 without output_padding{tag}", lambda k, ch: good_decoder(k, ch, output_padding=0), kwargs=kw),
        Answer(f"a final sigmoid{tag}", lambda k, ch: good_decoder(k, ch, sigmoid=True), kwargs=kw),
        Answer(f"3136 features for the first layer{tag}", lambda k, ch: good_decoder(k, ch, features=3136), kwargs=kw),
        Answer(f"no transposed convolution{tag}",
               lambda k, ch: nn.Sequential(nn.Linear(k, 784), nn.Unflatten(1, (1, 28, 28))), kwargs=kw),
        Answer(f"kernel 4, padding 0{tag}", lambda k, ch: even_decoder(k, ch, padding=0), kwargs=kw),
        Answer(f"kernel 4, padding 2{tag}", lambda k, ch: even_decoder(k, ch, padding=2), kwargs=kw),
        Answer(f"starts from 14 x 14{tag}",
               lambda k, ch: nn.Sequential(nn.Linear(k, 196), nn.Unflatten(1, (1, 14, 14)),
                                           nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1)), kwargs=kw),
        Answer(f"no channel axis: (B, 28, 28){tag}", lambda k, ch: good_decoder(k, ch, flatten=True), kwargs=kw),
        Answer(f"two layers that forward never uses{tag}", SpareDecoder, kwargs=kw),
        Answer(f"right: two transposed convolutions of kernel 4, 7 to 14 to 28{tag}",
               lambda k, ch: stride2_decoder(k, ch, kernel=4, padding=1, first=False), kwargs=kw),
        Answer(f"kernel 3, stride 2, padding 0: 7 to 15{tag}", lambda k, ch: stride2_decoder(k, ch), kwargs=kw),
        Answer(f"kernel 5, stride 2, padding 2: 7 to 13{tag}",
               lambda k, ch: stride2_decoder(k, ch, kernel=5, padding=2), kwargs=kw),
        Answer(f"one doubling only: 7 to 14{tag}",
               lambda k, ch: stride2_decoder(k, ch, kernel=4, padding=1, layers=1), kwargs=kw),
        Answer(f"one transposed convolution of stride 4: 7 to 28{tag}",
               lambda k, ch: stride2_decoder(k, ch, kernel=4, padding=0, layers=1, stride=4), kwargs=kw),
        Answer(f"torch.sigmoid in forward{tag}", SigmoidInForward, kwargs=kw),
        Answer(f"a final ReLU{tag}",
               lambda k, ch: nn.Sequential(even_decoder(k, ch), nn.ReLU()), kwargs=kw),
        Answer(f"reshapes with .view from the wrong number of features{tag}", ViewDecoder, kwargs=kw),
        Answer(f"returns (logits, probabilities), a tuple{tag}", LogitsAndProbabilities, kwargs=kw),
        Answer(f"output_padding=2 with stride 2{tag}", lambda k, ch: good_decoder(k, ch, output_padding=2), kwargs=kw),
        Answer(f"clamps the output to [0, 1] in forward{tag}", ClampInForward, kwargs=kw),
    ]
    return answers


CONV_DECODER = _decoder_answers(even=False) + _decoder_answers(even=True)


# =============================================================================================
# Lesson 09: the AUC and the false-alarm threshold


def _auc(normal, anomalous, tie=0.5):
    a, n = anomalous[:, None], normal[None, :]
    return ((a > n).float() + tie * (a == n).float()).mean()


def _roc_sklearn(n, a):
    from sklearn.metrics import roc_auc_score
    return roc_auc_score([0] * len(n) + [1] * len(a), torch.cat([n, a]))


ROC_AUC = [
    Answer("right: ah.applications.roc", lambda n, a: ah.applications.roc(n, a)[2]),
    Answer("right: pairs, ties counting one half, a 0-dim tensor", _auc),
    Answer("right: sklearn.metrics.roc_auc_score", _roc_sklearn),
    *generic(),
    Answer("ties count 0", lambda n, a: _auc(n, a, tie=0.0)),
    Answer("ties count 1", lambda n, a: _auc(n, a, tie=1.0)),
    Answer("normal and anomalous swapped", lambda n, a: _auc(a, n)),
    Answer("the number of winning pairs", lambda n, a: _auc(n, a) * len(n) * len(a)),
    Answer("a percentage", lambda n, a: 100 * _auc(n, a)),
    Answer("one value per anomaly", lambda n, a: (a[:, None] > n[None, :]).float().mean(1)),
    Answer("always 0.5", lambda n, a: 0.5),
    Answer("a list", lambda n, a: [0.5]),
]


def _sorts_in_place(scores, rate):
    values = scores.numpy()
    values.sort()                                                            # sorts the caller's tensor too
    return values[int((1 - rate) * len(values))]


FALSE_ALARM_THRESHOLD = [
    Answer("right: ah.applications.threshold_at_false_alarm_rate", ah.applications.threshold_at_false_alarm_rate),
    Answer("right: torch.quantile(scores, 1 - rate)", lambda s, r: torch.quantile(s, 1 - r)),
    Answer("right: np.percentile(scores, 100 * (1 - rate))", lambda s, r: np.percentile(s.numpy(), 100 * (1 - r))),
    *generic(),
    Answer("the rate quantile", lambda s, r: torch.quantile(s, r)),
    Answer("np.percentile given a fraction", lambda s, r: np.percentile(s.numpy(), 1 - r)),
    Answer("mean + z * std", lambda s, r: s.mean() + 1.6448536 * s.std()),
    Answer("mean + z * std, z = NormalDist().inv_cdf(1 - rate)",
           lambda s, r: s.mean() + NormalDist().inv_cdf(1 - r) * s.std()),
    Answer("the largest score", lambda s, r: s.max()),
    Answer("the median", lambda s, r: s.median()),
    Answer("a threshold that flags one image more than rate * N (within one image: right)",
           lambda s, r: torch.sort(s).values[int((1 - r) * len(s)) - 2]),
    Answer("a threshold that flags two images more than rate * N",
           lambda s, r: torch.sort(s).values[int((1 - r) * len(s)) - 3]),
    Answer("sorts the scores in place", _sorts_in_place),
    Answer("two quantiles", lambda s, r: torch.quantile(s, torch.tensor([1 - r, 0.5]))),
]


# =============================================================================================
# Lesson 10: the completion loss


def _completion_with(**slip):
    return lambda m, x, e: _completion(m, x, e, **slip)


def _completion_summed_in_float64(model, images, eps):
    top, bottom = images[:, :, :14], images[:, :, 14:]
    mu, logvar = model.encode(top, bottom)
    prior_mu, prior_logvar = model.prior(top)
    logits = model.decode(mu + (0.5 * logvar).exp() * eps, top, logits=True).double()
    bce = F.binary_cross_entropy_with_logits(logits, bottom.double(), reduction="none").flatten(1).sum(1)
    kl = losses.gaussian_kl_between(mu.double(), logvar.double(), prior_mu.double(), prior_logvar.double(),
                                    batch="none")
    return (bce + kl).sum()                                       # the slip: summed over the batch


def _completion_in_place(model, images, eps):
    eps.mul_(2)
    return _completion(model, images, eps / 2)


COMPLETION_LOSS = [
    Answer("right", _completion),
    Answer("right, as a Python float", lambda m, x, e: _completion(m, x, e).item()),
    *generic(),
    Answer("the halves swapped", _completion_with(swap=True)),
    Answer("the KL against N(0, I)", _completion_with(standard_kl=True)),
    Answer("the KL the wrong way round", _completion_with(reversed_kl=True)),
    Answer("z from the prior network", _completion_with(from_prior=True)),
    Answer("sigma = exp(logvar)", _completion_with(sigma_full=True)),
    Answer("the BCE averaged over pixels", _completion_with(pixels_mean=True)),
    Answer("summed over the batch", _completion_with(batch_sum=True)),
    Answer("summed over the batch, the BCE and the KL in float64", _completion_summed_in_float64),
    Answer("no KL", _completion_with(no_kl=True)),
    Answer("one loss per image", _completion_with(per_image=True)),
    Answer("a second sigmoid", _completion_with(twice=True)),
    Answer("twice the loss", _completion_with(scale=2.0)),
    Answer("doubles eps in place", _completion_in_place),
]


# =============================================================================================
# Lesson 11: quantize and perplexity


def _nearest(z_e, codebook):
    return vq.nearest_code(z_e.permute(0, 2, 3, 1), codebook)


def _good_quantize(z_e, codebook):
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])                   # (B*H*W, D)
    idx = torch.cdist(flat, codebook).argmin(1).reshape(z_e.shape[0], *z_e.shape[2:])
    e = codebook[idx].permute(0, 3, 1, 2)
    return z_e + (e - z_e).detach(), idx


def _quantize_variant(pick, straight_through=True, channels_last=False, flat=False, scale=1.0, detach=False):
    def fn(z_e, codebook):
        b, d, h, w = z_e.shape
        idx = pick(z_e, codebook).reshape(b, h, w)
        e = scale * codebook[idx].permute(0, 3, 1, 2)
        z_q = z_e + (e - z_e).detach() if straight_through else e
        if channels_last:
            z_q = z_q.permute(0, 2, 3, 1)
        if detach:
            z_q = z_q.detach()
        return z_q, idx.flatten() if flat else idx
    return fn


QUANTIZE = [
    Answer("right: ah.vq.quantize", vq.quantize),
    Answer("right: cdist, argmin, straight-through", _good_quantize),
    *generic(),
    Answer("no straight-through: codebook[indices]", _quantize_variant(_nearest, straight_through=False)),
    Answer("the largest dot product", _quantize_variant(lambda z, cb: (z.permute(0, 2, 3, 1) @ cb.T).argmax(-1))),
    Answer("the farthest code",
           _quantize_variant(lambda z, cb: (z.permute(0, 2, 3, 1).unsqueeze(-2) - cb).pow(2).sum(-1).argmax(-1))),
    Answer("the nearest in L1 distance",
           _quantize_variant(lambda z, cb: (z.permute(0, 2, 3, 1).unsqueeze(-2) - cb).abs().sum(-1).argmin(-1))),
    Answer("z_e.reshape(-1, D) without moving the channels",
           _quantize_variant(lambda z, cb: vq.nearest_code(z.reshape(-1, z.shape[1]), cb))),
    Answer("z_q channels last", _quantize_variant(_nearest, channels_last=True)),
    Answer("indices flat", _quantize_variant(_nearest, flat=True)),
    Answer("one index per image", lambda z, cb: (_good_quantize(z, cb)[0], _good_quantize(z, cb)[1][:, :1, :1])),
    Answer("z_q flattened", lambda z, cb: (_good_quantize(z, cb)[0].flatten(1), _good_quantize(z, cb)[1])),
    Answer("z_q = z_e", lambda z, cb: (z, _nearest(z, cb))),
    Answer("z_q = 2 * the chosen codes", _quantize_variant(_nearest, scale=2.0)),
    Answer("z_q detached", _quantize_variant(_nearest, detach=True)),
    Answer("no gradient through z_e: codebook[indices] + 0 * z_e",
           lambda z, cb: (cb[_nearest(z, cb)].permute(0, 3, 1, 2) + 0 * z, _nearest(z, cb))),
    Answer("the gradient scaled by 0.1 on the way",
           lambda z, cb: (cb[_nearest(z, cb)].permute(0, 3, 1, 2) + 0.1 * (z - z.detach()), _nearest(z, cb))),
    Answer("right for five calls, then raise NotImplementedError", make=counting(5, vq.quantize, _stub)),
    Answer("the gradient doubled on the way",
           lambda z, cb: (z + (cb[_nearest(z, cb)].permute(0, 3, 1, 2) - z).detach() * 1.0 + z * 1.0 - z.detach(),
                          _nearest(z, cb))),
    Answer("returns the codes as a string", lambda z, cb: "codes"),
]


def _shares(indices, k):
    counts = torch.bincount(indices.flatten(), minlength=k).double()
    return counts / counts.sum(), counts


def _entropy(indices, k):
    p, _ = _shares(indices, k)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def _perplexity_in_bits(indices, k):
    p, _ = _shares(indices, k)
    p = p[p > 0]
    return float(2 ** -(p * p.log2()).sum())


def _entropy_eps(indices, k):
    p = torch.bincount(indices.flatten(), minlength=k).float() / indices.numel()
    return float(-(p * torch.log(p + 1e-6)).sum())


def _perplexity_over_k(indices, k):
    _, counts = _shares(indices, k)
    q = (counts / k)[counts > 0]
    return float(torch.exp(-(q * q.log()).sum()))


PERPLEXITY = [
    Answer("right: ah.vq.perplexity", vq.perplexity),
    Answer("right: 2 ** (entropy in bits)", _perplexity_in_bits),
    *generic(),
    Answer("the entropy in nats", _entropy),
    Answer("the entropy in bits", lambda i, k: _entropy(i, k) / math.log(2)),
    Answer("e ** (entropy in bits)", lambda i, k: math.exp(_entropy(i, k) / math.log(2))),
    Answer("the number of distinct codes", lambda i, k: float((_shares(i, k)[1] > 0).sum())),
    Answer("0 * log 0 left in: NaN", lambda i, k: float(torch.exp(-(_shares(i, k)[0] * _shares(i, k)[0].log()).sum()))),
    Answer("counts divided by K", _perplexity_over_k),
    Answer("one more than the perplexity", lambda i, k: math.exp(_entropy(i, k)) + 1),
    Answer("one value per code", lambda i, k: torch.ones(k)),
    Answer("the entropy in nats, float32, log(p + 1e-6) against NaN", _entropy_eps),
]


# =============================================================================================
# Lesson 12: shard_indices


def _shard(n, world, rank, epoch, seed):
    return ah.distributed.shard_indices(n, world, rank, epoch=epoch, seed=seed)


def _permutation(n, seed):
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


def _padded_every_kth(order, n, world, rank):
    total = -(-n // world) * world
    return (order + order[:total - n])[rank:total:world]


def _blocks(n, world, rank, epoch, seed):
    order = _permutation(n, seed + epoch)
    total = -(-n // world) * world
    order = order + order[:total - n]
    per = total // world
    return order[rank * per:(rank + 1) * per]


SHARD_INDICES = [
    Answer("right: ah.distributed.shard_indices", _shard),
    Answer("right, as a list", lambda *a: _shard(*a).tolist()),
    *generic(),
    Answer("no padding", lambda n, world, rank, epoch, seed: _permutation(n, seed + epoch)[rank::world]),
    Answer("contiguous blocks", _blocks),
    Answer("the same order every epoch", lambda n, world, rank, epoch, seed: _shard(n, world, rank, 0, seed)),
    Answer("seeded with seed * epoch",
           lambda n, world, rank, epoch, seed: _padded_every_kth(_permutation(n, seed * epoch), n, world, rank)),
    Answer("no shuffle", lambda n, world, rank, epoch, seed: _padded_every_kth(list(range(n)), n, world, rank)),
    Answer("the order reversed", lambda *a: _shard(*a).flip(0)),
    Answer("a string of positions", lambda *a: "0, 1"),
    Answer("six positions, 0 to 5", lambda *a: list(range(6))),
    Answer("seven positions, 0 to 6", lambda *a: list(range(7))),
    Answer("right positions, as a column: shape (k, 1)", lambda *a: _shard(*a).unsqueeze(1)),
]


# =============================================================================================
# The test: one per check


ANSWERS: dict[str, list[Answer]] = {
    "check_per_image_squared_error": PER_IMAGE_SQUARED_ERROR,
    "check_train_epoch": TRAIN_EPOCH,
    "check_gaussian_noise": GAUSSIAN_NOISE,
    "check_psnr": PSNR,
    "check_random_corruption": RANDOM_CORRUPTION,
    "check_l1_activation_penalty": L1_ACTIVATION_PENALTY,
    "check_kl_sparsity_penalty": KL_SPARSITY_PENALTY,
    "check_sparse_kl_objective": SPARSE_KL_OBJECTIVE,
    "check_vae_loss": VAE_LOSS,
    "check_encoder_head": ENCODER_HEAD,
    "check_reparameterize": REPARAMETERIZE,
    "check_leave_one_out_score": LEAVE_ONE_OUT_SCORE,
    "check_gaussian_kl": GAUSSIAN_KL,
    "check_free_bits_kl": FREE_BITS_KL,
    "check_conv_output_size": CONV_OUTPUT_SIZE,
    "check_conv_transpose_output_size": CONV_TRANSPOSE_OUTPUT_SIZE,
    "check_conv_decoder": CONV_DECODER,
    "check_roc_auc": ROC_AUC,
    "check_false_alarm_threshold": FALSE_ALARM_THRESHOLD,
    "check_completion_loss": COMPLETION_LOSS,
    "check_quantize": QUANTIZE,
    "check_perplexity": PERPLEXITY,
    "check_shard_indices": SHARD_INDICES,
}


def _run_one(check: Callable, answer: Answer) -> str:
    """What the learner sees for one answer: a header (label, return value, random state), then stdout."""
    torch.manual_seed(SEED)
    before = torch.get_rng_state()
    saved = checks.SHOWN, checks.TIME_LIMIT_S
    checks.SHOWN = answer.shown
    if answer.time_limit is not None:
        checks.TIME_LIMIT_S = answer.time_limit
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            result = check(answer.function(), **answer.kwargs)
    finally:
        checks.SHOWN, checks.TIME_LIMIT_S = saved
    if torch.equal(torch.get_rng_state(), before):
        state = "left alone"
    else:
        state = f"changed, next torch.rand {float(torch.rand(1)):.6f}"
    return f"=== {answer.label}\n--- returned {result!r}; the learner's random state: {state}\n{out.getvalue()}"


def transcript(name: str) -> str:
    """The whole transcript of one check: every answer of ANSWERS[name], in order, then the first answer with more
    findings than a learner is shown, again as a learner sees it."""
    check = getattr(checks, name)
    parts = [_run_one(check, a) for a in ANSWERS[name]]
    many = next((a for a, part in zip(ANSWERS[name], parts) if part.count("\n   - ") > checks.SHOWN), None)
    if many is not None:
        parts.append(_run_one(check, as_learner_sees_it(many)))
    text = (f"# {name}: what the check prints for {len(parts)} answers (SHOWN = {ALL_SHOWN}: every finding).\n"
            f"# Regenerate with `python3 tests/test_checks_transcript.py --write {name}` and review the diff.\n\n"
            + "\n".join(parts))
    return re.sub(r" at 0x[0-9a-f]+", " at 0x...", text)                # memory addresses, if a repr shows one


_NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


def same_transcript(got: str, stored: str) -> bool:
    """Equal, except that numbers printed with 7 or more significant digits may differ by a relative 1e-5."""
    if got == stored:
        return True
    a_parts, b_parts = _NUMBER.split(got), _NUMBER.split(stored)
    a_nums, b_nums = _NUMBER.findall(got), _NUMBER.findall(stored)
    if a_parts != b_parts or len(a_nums) != len(b_nums):
        return False
    for x, y in zip(a_nums, b_nums):
        if x == y:
            continue
        long_form = len(re.sub(r"[^0-9]", "", x.split("e")[0]).lstrip("0")) >= 7
        if not long_form or not math.isclose(float(x), float(y), rel_tol=1e-5, abs_tol=1e-12):
            return False
    return True


@pytest.mark.parametrize("name", list(ANSWERS))
def test_the_check_prints_its_stored_transcript(name):
    path = TRANSCRIPTS / f"{name}.txt"
    regenerate = f"python3 tests/test_checks_transcript.py --write {name}"
    assert path.exists(), f"no stored transcript {path.relative_to(ROOT)}: make it with `{regenerate}`"
    got, stored = transcript(name), path.read_text(encoding="utf-8")
    if not same_transcript(got, stored):
        diff = "".join(difflib.unified_diff(stored.splitlines(True), got.splitlines(True), "stored", "now", n=1))
        pytest.fail(f"{name} prints something else than its stored transcript. If the change is meant, run "
                    f"`{regenerate}` and review the diff before committing it.\n{diff[:6000]}")


def test_every_check_has_answers_and_transcripts_hold_no_machine_paths():
    assert set(ANSWERS) == {n for n in checks.__all__ if n.startswith("check_")}
    for path in TRANSCRIPTS.glob("*.txt"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"/work/|/root/|/tmp/|/home/|[A-Z]:\\\\", text), path.name
        assert path.stem in ANSWERS, f"{path.name} belongs to no check"


# Pieces of text of checks.py that no answer can make a check print, and why (a mutant of them changes nothing
# a learner sees: an equivalent mutant).
_COUNTED = "a name of check_random_corruption's hidden tests: the list is only counted (n_cases), never printed"
_IGNORED = "the label of a check's one case: its crash message does not print it"
UNREACHED: dict[str, str] = {
    "same seed, same damage": _COUNTED, "another seed, other damage": _COUNTED, "input left alone": _COUNTED,
    "levels within the maximum": _COUNTED, "unknown kind refused": _COUNTED,
    "nine properties": _IGNORED, "six properties of the noise": _IGNORED, "one epoch, one step, five epochs": _IGNORED,
}


def _message_pieces() -> list[str]:
    """Each string literal of checks.py (and each literal part of an f-string) that reads as message text."""
    tree = ast.parse((ROOT / "autoenc_helpers" / "checks.py").read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    # the docstring of a module-level constant (a string right after an assignment)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for before, after in zip(body, body[1:]):
                if isinstance(before, (ast.Assign, ast.AnnAssign)) and isinstance(after, ast.Expr) \
                        and isinstance(after.value, ast.Constant):
                    docstrings.add(id(after.value))
    in_fstrings = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    pieces = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value.strip()
            if id(node) in in_fstrings:
                text = text.strip(" ;:,.()[]'")
            if len(text) >= 12 and " " in text:
                pieces.append(text)
    return sorted(set(pieces))


def test_every_message_of_the_checks_appears_in_a_transcript():
    if any("__mutmut_" in name for name in vars(checks)):           # tools/mutation.py: mutmut's copy of checks.py
        pytest.skip("checks.py is mutmut's copy, which holds the text of every mutant")
    shown = "\n".join(p.read_text(encoding="utf-8") for p in TRANSCRIPTS.glob("*.txt"))
    pieces = _message_pieces()
    assert not [p for p in UNREACHED if p not in pieces], "UNREACHED lists text that checks.py no longer has"
    missing = [p for p in pieces if p not in shown and p not in UNREACHED]
    assert not missing, ("message text of checks.py that no transcript shows: write an answer that makes the check "
                         "print it, or list it in UNREACHED with the reason\n" + "\n".join(missing))


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "--write":
        print(__doc__)
        return 2
    names = argv[1:] or list(ANSWERS)
    unknown = [n for n in names if n not in ANSWERS]
    if unknown:
        print(f"no such check: {unknown}; the checks are {list(ANSWERS)}")
        return 2
    TRANSCRIPTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = TRANSCRIPTS / f"{name}.txt"
        text = transcript(name)
        old = path.read_text(encoding="utf-8") if path.exists() else None
        path.write_text(text, encoding="utf-8")
        print(f"{path.relative_to(ROOT)}: {'unchanged' if old == text else 'written'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
