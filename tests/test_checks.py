import collections

import pytest
import torch

import autoenc_helpers as ah
from autoenc_helpers import checks


def _stub(*args):
    raise NotImplementedError


def test_conv_output_size_check(capsys):
    assert checks.check_conv_output_size(lambda n, k, s, p: (n + 2 * p - k) // s + 1)
    assert "all 10 hidden tests pass" in capsys.readouterr().out
    assert not checks.check_conv_output_size(lambda n, k, s, p: (n + 2 * p - k) // s)
    assert "Off by one" in capsys.readouterr().out
    assert not checks.check_conv_output_size(lambda n, k, s, p: (n + 2 * p - k) / s + 1)
    assert "whole number" in capsys.readouterr().out


def test_conv_transpose_output_size_check(capsys):
    assert checks.check_conv_transpose_output_size(lambda n, k, s, p: (n - 1) * s - 2 * p + k)
    assert not checks.check_conv_transpose_output_size(lambda n, k, s, p: (n - 1) * s + 2 * p + k)
    assert "removes" in capsys.readouterr().out


def test_per_image_error_check(capsys):
    assert checks.check_per_image_squared_error(lambda a, b: ((a - b) ** 2).flatten(1).sum(1))
    capsys.readouterr()
    assert not checks.check_per_image_squared_error(lambda a, b: ((a - b) ** 2).sum())
    assert "reduced over the batch" in capsys.readouterr().out
    assert not checks.check_per_image_squared_error(lambda a, b: ((a - b) ** 2).flatten(1).mean(1))
    assert "mean over pixels" in capsys.readouterr().out
    assert not checks.check_per_image_squared_error(lambda a, b: (a - b).abs().flatten(1).sum(1))
    assert "values differ" in capsys.readouterr().out
    assert not checks.check_per_image_squared_error(lambda a, b: [0.0])
    assert "return a tensor" in capsys.readouterr().out


def test_unwritten_stubs_get_a_friendly_message(capsys):
    for check in (checks.check_conv_output_size, checks.check_conv_transpose_output_size,
                  checks.check_per_image_squared_error):
        assert check(_stub) is False
        assert "not written yet" in capsys.readouterr().out


def test_a_crashing_answer_is_reported_not_raised(capsys):
    def crashes(n, k, s, p):
        return n // 0

    assert checks.check_conv_output_size(crashes) is False
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert checks.check_per_image_squared_error(lambda a, b: a @ b) is False
    assert "raised RuntimeError" in capsys.readouterr().out


# ------------------------------------------------------------------ lesson 03: sparsity penalties

def _kl(h, rho, *, rate=lambda h: h.mean(0), eps=1e-6, log=torch.log, second_term=True):
    """A KL sparsity penalty with knobs to make the usual mistakes on purpose."""
    r = rate(h)
    if eps:
        r = r.clamp(eps, 1 - eps)
    out = rho * log(rho / r)
    if second_term:
        out = out + (1 - rho) * log((1 - rho) / (1 - r))
    return out


def test_l1_activation_penalty_check(capsys):
    assert checks.check_l1_activation_penalty(lambda h: h.abs().sum(1).mean())
    assert "all 5 hidden tests pass" in capsys.readouterr().out
    wrong_answers = {
        "summed over the images too": lambda h: h.abs().sum(),
        "averaged over the units too": lambda h: h.abs().mean(),
        "forgot the absolute value": lambda h: h.sum(1).mean(),
        "that is an L2 penalty": lambda h: (h ** 2).sum(1).mean(),
        "returned a Python number": lambda h: h.abs().sum(1).mean().item(),
        "one value per image": lambda h: h.abs().sum(1),
        "carries no gradient": lambda h: h.detach().abs().sum(1).mean(),
    }
    for message, answer in wrong_answers.items():
        assert not checks.check_l1_activation_penalty(answer), message
        assert message in capsys.readouterr().out


def _swapped(h, rho):
    r = h.mean(0).clamp(1e-6, 1 - 1e-6)
    return (r * torch.log(r / rho) + (1 - r) * torch.log((1 - r) / (1 - rho))).sum()


def test_kl_sparsity_penalty_check(capsys):
    assert checks.check_kl_sparsity_penalty(lambda h, rho: _kl(h, rho).sum())
    out = capsys.readouterr().out
    assert "all 5 hidden tests pass" in out
    wrong_answers = {
        "rho and rho_hat are swapped": _swapped,
        "KL of each image's activation and then averaged": lambda h, rho: _kl(h, rho, rate=lambda h: h).sum(1).mean(),
        "summed over the batch instead of averaging each unit":
            lambda h, rho: _kl(h, rho, rate=lambda h: h.sum(0)).sum(),
        "did you sum over the batch instead of averaging": lambda h, rho: _kl(h, rho, rate=lambda h: h.sum(0),
                                                                              eps=0).sum(),
        "h.mean(0), not h.mean(1)": lambda h, rho: _kl(h, rho, rate=lambda h: h.mean(1)).sum(),
        "averaged the KL over the units": lambda h, rho: _kl(h, rho).mean(),
        "a second one, for the unit being off": lambda h, rho: _kl(h, rho, second_term=False).sum(),
        "the sign is flipped": lambda h, rho: -_kl(h, rho).sum(),
        "log base 10": lambda h, rho: _kl(h, rho, log=torch.log10).sum(),
        "clamp rho_hat into [eps, 1 - eps]": lambda h, rho: _kl(h, rho, eps=0).sum(),
        "one value per hidden unit": lambda h, rho: _kl(h, rho),
    }
    for message, answer in wrong_answers.items():
        assert not checks.check_kl_sparsity_penalty(answer), message
        assert message in capsys.readouterr().out, message


def test_sparsity_checks_accept_the_package_functions_and_handle_stubs_and_crashes(capsys):
    from autoenc_helpers import losses

    assert checks.check_l1_activation_penalty(losses.l1_activation_penalty)
    assert checks.check_kl_sparsity_penalty(losses.kl_sparsity_penalty)
    capsys.readouterr()
    assert checks.check_l1_activation_penalty(_stub) is False
    assert checks.check_kl_sparsity_penalty(_stub) is False
    assert capsys.readouterr().out.count("not written yet") == 2
    assert checks.check_kl_sparsity_penalty(lambda h, rho: h @ h) is False
    assert "raised RuntimeError" in capsys.readouterr().out


# -- lesson 05: reparameterize ---------------------------------------------------------------------

def test_reparameterize_check_accepts_right_answers(capsys):
    from torch.distributions import Normal

    from autoenc_helpers.models import reparameterize

    state = torch.get_rng_state()
    assert checks.check_reparameterize(lambda mu, logvar: mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))
    assert "all 6 hidden tests pass" in capsys.readouterr().out
    assert checks.check_reparameterize(lambda mu, logvar: Normal(mu, torch.exp(0.5 * logvar)).rsample())
    assert checks.check_reparameterize(reparameterize)
    assert torch.equal(torch.get_rng_state(), state)          # the hidden draws leave the learner's seed alone


_WRONG_REPARAMETERIZATIONS = {
    "variance as sigma": (lambda mu, logvar: mu + torch.exp(logvar) * torch.randn_like(mu),
                          "which is the variance"),
    "square root of logvar": (lambda mu, logvar: mu + torch.sqrt(logvar) * torch.randn_like(mu),
                              "square root of a negative log-variance"),
    "no eps": (lambda mu, logvar: mu + 0 * logvar, "no randomness"),
    "Normal.sample": (lambda mu, logvar: torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).sample(),
                      "no gradient"),
    "sigma ignored": (lambda mu, logvar: mu + torch.randn_like(mu), "you returned mu + eps"),
    "one eps for the batch": (lambda mu, logvar: mu + torch.exp(0.5 * logvar) * torch.randn(1),
                              "one eps for the whole batch"),
    "uniform eps": (lambda mu, logvar: mu + torch.exp(0.5 * logvar) * torch.rand_like(mu), "torch.rand"),
    "logvar as sigma": (lambda mu, logvar: mu + logvar * torch.randn_like(mu), "logvar itself as sigma"),
    "flipped sign": (lambda mu, logvar: mu + torch.exp(-0.5 * logvar) * torch.randn_like(mu), "1 / sigma"),
    "wrong shape": (lambda mu, logvar: (mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)).sum(1),
                    "you returned shape"),
}


@pytest.mark.parametrize("name", list(_WRONG_REPARAMETERIZATIONS))
def test_reparameterize_check_names_each_slip(name, capsys):
    answer, message = _WRONG_REPARAMETERIZATIONS[name]
    assert checks.check_reparameterize(answer) is False
    out = capsys.readouterr().out
    assert message in out, out


def test_reparameterize_check_handles_stubs_and_crashes(capsys):
    assert checks.check_reparameterize(_stub) is False
    assert "not written yet" in capsys.readouterr().out
    assert checks.check_reparameterize(lambda mu, logvar: mu @ logvar) is False
    assert "raised RuntimeError" in capsys.readouterr().out


# -- lesson 06: the closed-form KL ------------------------------------------------------------------

def _kl_terms(mu, logvar):
    return 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar)                      # (B, k) nats


def test_gaussian_kl_check_accepts_right_answers(capsys):
    from torch.distributions import Normal, kl_divergence

    from autoenc_helpers.losses import gaussian_kl

    assert checks.check_gaussian_kl(lambda mu, logvar: _kl_terms(mu, logvar).sum(1))
    assert "all 5 hidden tests pass" in capsys.readouterr().out
    assert checks.check_gaussian_kl(lambda mu, logvar: -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(dim=1))
    assert checks.check_gaussian_kl(
        lambda mu, logvar: kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1))
    assert checks.check_gaussian_kl(lambda mu, logvar: gaussian_kl(mu, logvar, batch="none"))


_WRONG_KLS = {
    "sign flipped": (lambda mu, logvar: -_kl_terms(mu, logvar).sum(1), "the sign is flipped"),
    "no 1/2": (lambda mu, logvar: 2 * _kl_terms(mu, logvar).sum(1), "the factor 1/2 is missing"),
    "sigma for the variance": (lambda mu, logvar: 0.5 * (mu ** 2 + torch.exp(0.5 * logvar) - 1 - logvar).sum(1),
                               "where the formula needs the variance"),
    "logvar read as log sigma": (lambda mu, logvar: 0.5 * (mu ** 2 + torch.exp(2 * logvar) - 1 - 2 * logvar).sum(1),
                                 "you read logvar as log sigma"),
    "log sigma in the log term": (lambda mu, logvar: 0.5 * (mu ** 2 + logvar.exp() - 1 - 0.5 * logvar).sum(1),
                                  "not log sigma = 0.5 * logvar"),
    "no -1": (lambda mu, logvar: 0.5 * (mu ** 2 + logvar.exp() - logvar).sum(1), "the -1 inside the bracket"),
    "mu not squared": (lambda mu, logvar: 0.5 * (mu + logvar.exp() - 1 - logvar).sum(1), "mu must be squared"),
    "mean over dims": (lambda mu, logvar: _kl_terms(mu, logvar).mean(1), "averaged over the latent dimensions"),
    "mean over the batch": (lambda mu, logvar: _kl_terms(mu, logvar).sum(1).mean(), "you averaged over the batch"),
    "sum over the batch": (lambda mu, logvar: _kl_terms(mu, logvar).sum(), "you summed over the batch"),
    "per dimension": (lambda mu, logvar: _kl_terms(mu, logvar), "one value per latent dimension"),
    "over the images": (lambda mu, logvar: _kl_terms(mu, logvar).sum(0), "you reduced over the images"),
    "square root of logvar": (lambda mu, logvar: 0.5 * (mu ** 2 + logvar.sqrt() - 1 - logvar).sum(1), "NaN"),
    "detached": (lambda mu, logvar: _kl_terms(mu, logvar).sum(1).detach(), "carry no gradient"),
    "mu detached": (lambda mu, logvar: _kl_terms(mu.detach(), logvar).sum(1), "no gradient reaches mu"),
    "logvar detached": (lambda mu, logvar: _kl_terms(mu, logvar.detach()).sum(1), "no gradient reaches logvar"),
    "a list": (lambda mu, logvar: _kl_terms(mu, logvar).sum(1).tolist(), "return a tensor"),
}


@pytest.mark.parametrize("name", list(_WRONG_KLS))
def test_gaussian_kl_check_names_each_slip(name, capsys):
    answer, message = _WRONG_KLS[name]
    assert checks.check_gaussian_kl(answer) is False
    out = capsys.readouterr().out
    assert message in out, out


def test_gaussian_kl_check_handles_stubs_and_crashes(capsys):
    assert checks.check_gaussian_kl(_stub) is False
    assert "not written yet" in capsys.readouterr().out
    assert checks.check_gaussian_kl(lambda mu, logvar: mu @ logvar) is False
    assert "raised RuntimeError" in capsys.readouterr().out


# -- reliability: answers in another precision, endless loops and in-place edits ----------------------------------


def test_a_right_answer_computed_in_float64_is_accepted(capsys):
    assert ah.checks.check_per_image_squared_error(
        lambda x_hat, x: ((x_hat.double() - x.double()) ** 2).flatten(1).sum(1))

    def reparameterize64(mu, logvar):
        mu, logvar = mu.double(), logvar.double()
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    assert ah.checks.check_reparameterize(reparameterize64)


def test_an_endless_loop_is_reported_as_too_long(monkeypatch, capsys):
    monkeypatch.setattr(ah.checks, "TIME_LIMIT_S", 0.2)

    def never_returns(x_hat, x):
        while True:
            pass

    assert not ah.checks.check_per_image_squared_error(never_returns)
    assert "took longer than 0.2 s" in capsys.readouterr().out


def test_an_in_place_edit_of_the_input_is_reported(capsys):
    def edits_its_input(x_hat, x):
        x_hat.sub_(x)
        return (x_hat ** 2).flatten(1).sum(1)

    assert not ah.checks.check_per_image_squared_error(edits_its_input)
    assert "changed its input number 1 in place" in capsys.readouterr().out


def test_a_tuple_or_named_tuple_of_float64_tensors_comes_back_in_float32():
    # what _learner does to a result such as quantize's (codes, quantized), or a named tuple of them
    Pair = collections.namedtuple("Pair", "quantized codes")
    plain = checks._as_float32((torch.ones(2, dtype=torch.float64), 3))
    assert type(plain) is tuple and plain[0].dtype == torch.float32 and plain[1] == 3
    named = checks._as_float32(Pair(torch.ones(2, dtype=torch.float64), torch.zeros(2, dtype=torch.int64)))
    assert type(named) is Pair
    assert named.quantized.dtype == torch.float32 and named.codes.dtype == torch.int64


def test_exactly_shown_findings_are_printed_without_an_and_more_line(capsys):
    assert checks.SHOWN == 3
    assert not checks.check_per_image_squared_error(lambda x_hat, x: (x_hat - x).abs().flatten(1).sum(1))
    out = capsys.readouterr().out
    assert "3 of 3 hidden tests failed" in out and out.count("\n   - ") == 3
    assert "more" not in out


def test_a_stub_left_in_the_refusal_of_unknown_kinds_is_named_by_its_check(capsys):
    from test_noise import _draw_and_corrupt

    def refusal_not_written(images, max_levels, generator):
        if any(kind not in ah.noise.NOISE_KINDS for kind in max_levels):
            raise NotImplementedError                       # the one branch the learner has not written yet
        return _draw_and_corrupt(images, max_levels, generator)

    assert checks.check_random_corruption(refusal_not_written) is False
    assert "⏳ random_corruption: not written yet" in capsys.readouterr().out

# -- lesson 05: the leave-one-out baseline ----------------------------------------------------------

def _loo_right(f, mu, sigma, eps):
    if eps.shape[1] < 2:
        raise ValueError(f"S must be at least 2 for a leave-one-out baseline, got S = {eps.shape[1]}")
    z = mu + sigma * eps
    fz = f(z)
    baseline = (fz.sum(1, keepdim=True) - fz) / (eps.shape[1] - 1)
    return ((fz - baseline) * (z - mu) / sigma ** 2).mean(1)


def _loo_loop(f, mu, sigma, eps):                    # the same, one row and one sample at a time
    if eps.shape[1] < 2:
        raise ValueError("need at least 2 samples per row")
    out = []
    for row in eps:
        z = mu + sigma * row
        fz = f(z)
        terms = [(fz[i] - torch.cat([fz[:i], fz[i + 1:]]).mean()) * (z[i] - mu) / sigma ** 2 for i in range(len(row))]
        out.append(torch.stack(terms).mean())
    return torch.stack(out)


def _loo_with(**changes):
    def answer(f, mu, sigma, eps):
        s = eps.shape[1]
        if s < 2 and not changes.get("no_error"):
            raise ValueError(changes.get("error", "S must be at least 2"))
        z = mu + sigma * eps
        fz = z ** 2 if changes.get("square") else f(z)
        if changes.get("own"):
            baseline = fz.mean(1, keepdim=True)
        elif changes.get("none"):
            baseline = 0
        else:
            baseline = (fz.sum(1, keepdim=True) - fz) / (s if changes.get("by_s") else s - 1)
        return changes.get("scale", 1) * ((fz - baseline) * (z - mu) / sigma ** changes.get("power", 2)).mean(1)
    return answer


@pytest.mark.parametrize("answer", [_loo_right, _loo_loop])
def test_leave_one_out_check_accepts_right_answers(answer, capsys):
    assert checks.check_leave_one_out_score(answer) is True
    assert "all 7 hidden tests pass" in capsys.readouterr().out


@pytest.mark.parametrize("answer, words", [
    (_loo_with(own=True), "includes the sample's own"),
    (_loo_with(by_s=True), "divides by S"),
    (_loo_with(power=1), "you divided by sigma"),
    (_loo_with(power=0), "you left out the division"),
    (_loo_with(square=True), "call the f you are given"),
    (_loo_with(none=True), "there is no baseline"),
    (_loo_with(no_error=True), "raise a ValueError"),
    (lambda f, mu, sigma, eps: _loo_right(f, mu, sigma, eps)[:, None], "one estimate per row"),
])
def test_leave_one_out_check_names_each_slip(answer, words, capsys):
    assert checks.check_leave_one_out_score(answer) is False
    out = capsys.readouterr().out
    assert words in out, out


def test_leave_one_out_check_handles_stubs_and_crashes(capsys):
    assert checks.check_leave_one_out_score(_stub) is False
    assert "not written yet" in capsys.readouterr().out
    assert checks.check_leave_one_out_score(lambda f, mu, sigma, eps: eps @ eps) is False
    assert "raised RuntimeError" in capsys.readouterr().out


# -- the common runner: None is an answer, a stub ends the check, findings before a crash are kept -----------------

def test_a_function_that_returns_none_is_judged_not_taken_for_unwritten(capsys):
    assert checks.check_psnr(lambda mse: None) is False
    out = capsys.readouterr().out
    assert "not written yet" not in out
    assert "psnr(0.01) returned None; return a number of decibels" in out
    assert "5 of 5 hidden tests failed" in out


def test_a_stub_met_after_a_crash_ends_the_check_with_one_line(capsys):
    calls = []

    def crashes_then_stub(mse):
        calls.append(mse)
        if len(calls) == 1:
            raise RuntimeError("first call")
        raise NotImplementedError

    assert checks.check_psnr(crashes_then_stub) is False
    out = capsys.readouterr().out
    assert out.count("not written yet") == 1 and "hidden tests" not in out, out
    assert len(calls) == 2                                     # the check stopped at the stub


def test_findings_made_before_a_crash_are_kept(capsys):
    def uniform_then_crash(images, sigma, generator):
        if sigma == 0.5:
            raise RuntimeError("boom")
        return images + sigma * torch.rand(images.shape, generator=generator)

    assert checks.check_gaussian_noise(uniform_then_crash) is False
    out = capsys.readouterr().out
    assert "3 of 6 hidden tests failed" in out, out
    assert "the noise should average 0" in out and "your function raised RuntimeError: boom" in out
