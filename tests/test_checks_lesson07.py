"""The exercise check of lesson 07 (the free-bits KL term): right answers pass, each usual slip is named."""

import pytest
import torch

from autoenc_helpers import checks
from autoenc_helpers.losses import gaussian_kl


def _per_dim(mu, logvar):
    return 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar)                     # (B, k) nats


def _stub(mu, logvar, free_bits):
    raise NotImplementedError


def test_free_bits_check_accepts_right_answers(capsys):
    assert checks.check_free_bits_kl(lambda mu, lv, lam: _per_dim(mu, lv).mean(0).clamp(min=lam).sum())
    assert "all 5 hidden tests pass" in capsys.readouterr().out
    assert checks.check_free_bits_kl(
        lambda mu, lv, lam: torch.maximum(gaussian_kl(mu, lv, dims="none", batch="mean"), torch.tensor(lam)).sum())
    assert checks.check_free_bits_kl(
        lambda mu, lv, lam: torch.where(_per_dim(mu, lv).mean(0) > lam, _per_dim(mu, lv).mean(0),
                                        torch.full((mu.shape[1],), float(lam))).sum())


_WRONG = {
    "floor per image": (lambda mu, lv, lam: _per_dim(mu, lv).clamp(min=lam).sum(1).mean(),
                        "floored each image's KL before averaging"),
    "floor on the total": (lambda mu, lv, lam: _per_dim(mu, lv).mean(0).sum().clamp(min=lam),
                           "you floored the total KL"),
    "k times the floor on the total": (lambda mu, lv, lam: _per_dim(mu, lv).mean(0).sum().clamp(min=mu.shape[1] * lam),
                                       "no floor on each dimension"),
    "max(0, KL - lambda)": (lambda mu, lv, lam: (_per_dim(mu, lv).mean(0) - lam).clamp(min=0).sum(),
                            "the same gradient, but free_bits * k lower"),
    "min for max": (lambda mu, lv, lam: _per_dim(mu, lv).mean(0).clamp(max=lam).sum(), "min where max belongs"),
    "sum over the batch, then floor": (lambda mu, lv, lam: _per_dim(mu, lv).sum(0).clamp(min=lam).sum(),
                                       "summed each dimension's KL over the batch"),
    "mean over dimensions": (lambda mu, lv, lam: _per_dim(mu, lv).mean(0).clamp(min=lam).mean(),
                             "averaged over the latent dimensions"),
    "no floor": (lambda mu, lv, lam: _per_dim(mu, lv).mean(0).sum(), "no floor on each dimension"),
    "one value per dimension": (lambda mu, lv, lam: _per_dim(mu, lv).mean(0).clamp(min=lam),
                                "one value per latent dimension"),
    "one value per image": (lambda mu, lv, lam: _per_dim(mu, lv).clamp(min=lam).sum(1), "one value per image"),
    "detached": (lambda mu, lv, lam: _per_dim(mu, lv).mean(0).clamp(min=lam).sum().detach(), "carries no gradient"),
    "a float": (lambda mu, lv, lam: _per_dim(mu, lv).mean(0).clamp(min=lam).sum().item(), "return a tensor"),
    "gradient through the floor": (
        # the right values, but dimensions below the floor still get the KL's gradient
        lambda mu, lv, lam: (lambda d: (d + (d.clamp(min=lam) - d).detach()).sum())(_per_dim(mu, lv).mean(0)),
        "the gradient is not"),
}


@pytest.mark.parametrize("name", list(_WRONG))
def test_free_bits_check_names_each_slip(name, capsys):
    answer, message = _WRONG[name]
    assert checks.check_free_bits_kl(answer) is False
    out = capsys.readouterr().out
    assert message in out, out


def test_free_bits_check_handles_stubs_and_crashes(capsys):
    assert checks.check_free_bits_kl(_stub) is False
    assert "not written yet" in capsys.readouterr().out
    assert checks.check_free_bits_kl(lambda mu, lv, lam: mu @ lv) is False
    assert "raised RuntimeError" in capsys.readouterr().out


def test_the_straddling_case_tells_the_slips_apart():
    """The hidden batch must make each slip give a different number, or the messages could name the wrong one."""
    g = torch.Generator().manual_seed(0)
    mu = torch.cat([1.5 * torch.randn(32, 8, generator=g), 0.3 * torch.randn(32, 8, generator=g)], 1)
    logvar = torch.cat([torch.randn(32, 8, generator=g) - 1.5, 0.1 * torch.randn(32, 8, generator=g)], 1)
    # a floor on the total equals no floor when the total is above it: the check names both in one message
    values = [float(fn(mu, logvar, 0.5)) for name, (fn, _) in _WRONG.items()
              if name not in ("detached", "a float", "gradient through the floor", "one value per dimension",
                              "one value per image", "floor on the total", "k times the floor on the total")]
    right = float(_per_dim(mu, logvar).mean(0).clamp(min=0.5).sum())
    values.append(right)
    assert len({round(v, 3) for v in values}) == len(values), values
