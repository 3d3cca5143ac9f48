"""The exercise check of lesson 04 (the VAE's loss), with the right answer and each classic slip."""

import pytest
import torch
import torch.nn.functional as F

from autoenc_helpers import checks


def kl(mu, logvar):
    return 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(1)


def bce(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


@pytest.mark.parametrize("fn, ok, words", [
    (lambda lg, x, mu, lv: (bce(lg, x) + kl(mu, lv)).mean(), True, "all 3"),
    (lambda lg, x, mu, lv: F.binary_cross_entropy(torch.sigmoid(lg), x, reduction="sum") / x.shape[0]
     + kl(mu, lv).mean(), True, "all 3"),
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
