"""The importance-weighted estimate of log p(x) against an exact answer.

The test model has a 1-D code and a decoder whose logits are linear in z, so
p(x) = integral of N(z; 0, 1) p(x | z) dz can be computed to many digits by quadrature on a fine grid:
that is the exact answer the estimate must reach as k grows.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import autoenc_helpers as ah

GRID = torch.linspace(-10, 10, 20_001, dtype=torch.float64)        # z values for the quadrature
# Draws in the tests use seeds of 100 and above: images_from's seeds would redraw the codes that made the images.


class LinearDecoderVAE(nn.Module):
    """Bernoulli pixels with logits = a * z + b (784 pixels); the encoder is chosen by ``posterior``.

    posterior="exact": q(z | x) is the Gaussian with the true posterior's mean and variance (from the
    quadrature), so the importance weights are nearly equal; "prior": q(z | x) = N(0, 1), a poor
    proposal, so the ELBO is loose and only many samples close the gap.
    """

    latent_dim = 1

    def __init__(self, posterior: str, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a = nn.Parameter(0.12 * torch.randn(784, generator=g))
        self.b = nn.Parameter(0.5 * torch.randn(784, generator=g))
        self.posterior = posterior

    def decode(self, z, logits=False):
        out = (z[:, :1] * self.a + self.b).reshape(-1, 1, 28, 28)      # (n, 1, 28, 28)
        return out if logits else torch.sigmoid(out)

    def log_joint_on_grid(self, x):
        """(N, G) log p(x | z) + log p(z) for every image and grid point, in float64."""
        logits = GRID[:, None] * self.a.double() + self.b.double()      # (G, 784)
        flat = x.flatten(1).double()                                    # (N, 784)
        log_px_z = flat @ F.logsigmoid(logits).T + (1 - flat) @ F.logsigmoid(-logits).T    # (N, G)
        return log_px_z - 0.5 * (GRID ** 2 + math.log(2 * math.pi))

    def exact_log_px(self, x):
        """(N,) log p(x) by quadrature."""
        dz = float(GRID[1] - GRID[0])
        return torch.logsumexp(self.log_joint_on_grid(x), 1) + math.log(dz)

    def encode(self, x):
        if self.posterior == "prior":
            zeros = torch.zeros(x.shape[0], 1)
            return zeros, zeros
        weights = torch.softmax(self.log_joint_on_grid(x), 1)          # (N, G) the posterior on the grid
        mean = weights @ GRID
        var = weights @ GRID ** 2 - mean ** 2
        return mean[:, None].float(), var.log()[:, None].float()


@torch.no_grad()
def images_from(model, n, seed=1):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 1, generator=g)
    return torch.bernoulli(model.decode(z), generator=g)                # (n, 1, 28, 28) binary images


@pytest.fixture(scope="module")
def exact_case():
    model = LinearDecoderVAE("exact")
    x = images_from(model, 64)
    with torch.no_grad():
        return model, x, model.exact_log_px(x)


def test_with_the_true_posterior_as_proposal_it_matches_the_exact_log_likelihood(exact_case):
    model, x, exact = exact_case
    g = torch.Generator().manual_seed(0)
    estimate = ah.log_likelihood_iw(model, x, k=500, generator=g, reduction="none")
    assert estimate.shape == (64,)
    assert torch.allclose(estimate.double(), exact, atol=0.02), (estimate.double() - exact).abs().max()


def test_with_a_poor_proposal_more_samples_close_the_gap_from_below():
    model = LinearDecoderVAE("prior")
    x = images_from(model, 200)
    with torch.no_grad():
        exact = float(model.exact_log_px(x).mean())
    bounds = {}
    for k in (1, 10, 100, 2000):
        bounds[k] = ah.log_likelihood_iw(model, x, k=k, generator=torch.Generator().manual_seed(100 + k))
    assert bounds[1] < bounds[10] < bounds[100] < bounds[2000] <= exact + 0.02, (bounds, exact)
    assert exact - bounds[1] > 1.0                           # the ELBO is loose here: a real gap to close
    assert exact - bounds[2000] < 0.1 * (exact - bounds[1])  # and 2,000 samples close most of it


def test_k_equal_1_is_the_sampled_elbo_in_expectation():
    model = LinearDecoderVAE("prior")
    x = images_from(model, 4000, seed=3)
    l1 = ah.log_likelihood_iw(model, x, k=1, generator=torch.Generator().manual_seed(105), reduction="none")
    elbo = -ah.negative_elbo(model, x, n_samples=4, generator=torch.Generator().manual_seed(106))
    standard_error = float(l1.std()) / math.sqrt(len(l1))
    assert abs(float(l1.mean()) - elbo) < 4 * standard_error, (float(l1.mean()), elbo, standard_error)


def test_chunking_over_images_and_samples_does_not_change_the_estimate(exact_case):
    model, x, exact = exact_case
    small = ah.log_likelihood_iw(model, x, k=40, batch_size=7, generator=torch.Generator().manual_seed(101))
    large = ah.log_likelihood_iw(model, x, k=40, batch_size=64, generator=torch.Generator().manual_seed(102))
    assert small == pytest.approx(float(exact.mean()), abs=0.02)
    assert large == pytest.approx(float(exact.mean()), abs=0.02)


def test_a_course_vae_gives_a_bound_tighter_than_its_elbo_and_restores_train_mode():
    torch.manual_seed(0)
    vae = ah.MLPVAE(latent_dim=2, hidden=(32,))
    x = torch.rand(50, 1, 28, 28).round()
    vae.train()
    iw = ah.log_likelihood_iw(vae, x, k=200, generator=torch.Generator().manual_seed(0))
    elbo = -ah.negative_elbo(vae, x, n_samples=20, generator=torch.Generator().manual_seed(0))
    assert iw > elbo
    assert vae.training


def test_a_conditional_vae_is_called_with_its_labels():
    torch.manual_seed(0)
    cvae = ah.ConditionalVAE(latent_dim=2, hidden=(32,))
    x = torch.rand(12, 1, 28, 28)
    y = torch.arange(12) % 10
    per_image = ah.log_likelihood_iw(cvae, x, k=5, labels=y, reduction="none")
    assert per_image.shape == (12,) and torch.isfinite(per_image).all()
    with pytest.raises(ValueError, match="labels must be a \\(12,\\) tensor"):
        ah.log_likelihood_iw(cvae, x, k=5, labels=y[:3])


@pytest.mark.parametrize("bad", [dict(k=0), dict(k=2.5), dict(k=True), dict(reduction="sum"), dict(batch_size=0)])
def test_bad_arguments_are_named(bad):
    vae = ah.MLPVAE(latent_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match=next(iter(bad))):
        ah.log_likelihood_iw(vae, torch.rand(2, 1, 28, 28), **{"k": 3, **bad})
