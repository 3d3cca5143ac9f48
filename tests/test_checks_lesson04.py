"""The exercise checks of lesson 04 (the VAE's loss, its encoder head and sampling step), with right answers
and each classic slip."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autoenc_helpers import checks


def kl(mu, logvar):
    return 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(1)


def bce(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


@pytest.mark.parametrize("fn, ok, words", [
    (lambda lg, x, mu, lv: (bce(lg, x) + kl(mu, lv)).mean(), True, "all 5"),
    (lambda lg, x, mu, lv: F.binary_cross_entropy(torch.sigmoid(lg), x, reduction="sum") / x.shape[0]
     + kl(mu, lv).mean(), True, "all 5"),
    (lambda lg, x, mu, lv: F.binary_cross_entropy_with_logits(lg, x) + kl(mu, lv).mean(), False,
     "averaged over the pixels"),
    (lambda lg, x, mu, lv: (bce(lg, x) + kl(mu, lv)).sum(), False, "summed over the batch"),
    (lambda lg, x, mu, lv: (bce(lg, x) - kl(mu, lv)).mean(), False, "wrong sign"),
    (lambda lg, x, mu, lv: (bce(lg, x) + 2 * kl(mu, lv)).mean(), False, "factor 1/2"),
    (lambda lg, x, mu, lv: (bce(lg, x) + 0.5 * (mu ** 2 + (0.5 * lv).exp() - lv - 1).sum(1)).mean(), False,
     "needs the variance"),
    (lambda lg, x, mu, lv: bce(lg, x).mean(), False, "KL term is missing"),
    (lambda lg, x, mu, lv: bce(lg, x) + kl(mu, lv), False, "one number"),
])
def test_check_vae_loss(fn, ok, words, capsys):
    assert checks.check_vae_loss(fn) is ok
    out = capsys.readouterr().out
    assert words in out and ("✅" in out) is ok


def test_check_vae_loss_stub(capsys):
    def stub(*args):
        raise NotImplementedError

    assert checks.check_vae_loss(stub) is False
    assert "not written yet" in capsys.readouterr().out


# ------------------------------------------------------------------ the encoder head and sampling step

class TwoHeads(nn.Module):
    """The reference answer: two linear heads, then z = mu + sigma * eps."""

    def __init__(self, hidden, latent_dim):
        super().__init__()
        self.mu, self.logvar = nn.Linear(hidden, latent_dim), nn.Linear(hidden, latent_dim)

    def forward(self, h):
        mu, logvar = self.mu(h), self.logvar(h)
        return mu, logvar, mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


class OneLayerSplit(nn.Module):
    """Also right: one layer with 2k outputs split in two, and Normal(...).rsample() for the draw."""

    def __init__(self, hidden, latent_dim):
        super().__init__()
        self.both = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, h):
        mu, logvar = self.both(h).chunk(2, dim=1)
        return mu, logvar, torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).rsample()


def slip(draw, second=lambda lv: lv, outputs=3):
    """TwoHeads with one mistake: ``draw(mu, logvar) -> z``; ``second`` is what it returns in logvar's place."""

    class Slip(TwoHeads):
        def forward(self, h):
            mu, logvar = self.mu(h), self.logvar(h)
            return (mu, second(logvar), draw(mu, logvar))[:outputs]

    return Slip


def sigma_head(hidden, latent_dim):
    """Returns sigma = softplus(...) where logvar belongs, and samples with it."""

    class SigmaHead(TwoHeads):
        def forward(self, h):
            mu, sigma = self.mu(h), F.softplus(self.logvar(h))
            return mu, sigma, mu + sigma * torch.randn_like(mu)

    return SigmaHead(hidden, latent_dim)


def same_head(hidden, latent_dim):
    class SameHead(TwoHeads):
        def forward(self, h):
            mu = self.mu(h)
            return mu, mu, mu + torch.exp(0.5 * mu) * torch.randn_like(mu)

    return SameHead(hidden, latent_dim)


@pytest.mark.parametrize("make, ok, words", [
    (TwoHeads, True, "all 5"),
    (OneLayerSplit, True, "all 5"),
    (sigma_head, False, "returned sigma where logvar belongs"),
    (slip(lambda mu, lv: mu + torch.exp(lv) * torch.randn_like(mu)), False, "the variance sigma^2"),
    (slip(lambda mu, lv: mu + torch.randn_like(mu)), False, "you returned mu + eps"),
    (slip(lambda mu, lv: mu + 0 * lv), False, "no randomness"),
    (slip(lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.randn(mu.shape[1])), False, "one eps for the whole batch"),
    (slip(lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.rand_like(mu)), False, "torch.rand"),
    (slip(lambda mu, lv: torch.distributions.Normal(mu, torch.exp(0.5 * lv)).sample()), False, "no gradient"),
    (slip(lambda mu, lv: (mu + torch.exp(0.5 * lv) * torch.randn_like(mu)).detach()), False, "no gradient"),
    (slip(lambda mu, lv: mu + torch.exp(-0.5 * lv) * torch.randn_like(mu)), False, "1 / sigma"),
    (slip(lambda mu, lv: mu + lv.sqrt() * torch.randn_like(mu)), False, "NaN"),
    (slip(lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.randn_like(mu), outputs=2), False,
     "z, the sampled code, is missing"),
    (same_head, False, "two heads"),
    (lambda hidden, k: "not a module", False, "should give an nn.Module"),
])
def test_check_encoder_head(make, ok, words, capsys):
    assert checks.check_encoder_head(make) is ok
    out = capsys.readouterr().out
    assert words in out and ("✅" in out) is ok


def test_check_encoder_head_stub_and_random_state(capsys):
    class Stub(nn.Module):
        def __init__(self, hidden, latent_dim):
            super().__init__()
            raise NotImplementedError

    assert checks.check_encoder_head(Stub) is False
    assert "not written yet" in capsys.readouterr().out
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    checks.check_encoder_head(TwoHeads)
    assert torch.equal(torch.rand(3), expected), "the check leaves the learner's random state alone"


def test_check_encoder_head_reports_a_crash(capsys):
    class Crashes(TwoHeads):
        def forward(self, h):
            return self.mu(h.T)

    assert checks.check_encoder_head(Crashes) is False
    assert "raised RuntimeError" in capsys.readouterr().out
