"""The VAE of lessons 04-06: model, reparameterization, losses against references, and real learning."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence

import autoenc_helpers as ah
from baselines import beats_mean_image, mean_image_nats
from autoenc_helpers.models import VAEOutput


class FixedVAE(nn.Module):
    """A stand-in VAE whose outputs are fixed tensors, so loss values can be worked out by hand.

    Image i of a batch made by ``indexed_images`` is recognised by its first pixel, i / 1000,
    so the right rows come back whatever the batching.
    """

    def __init__(self, logits, mu, logvar):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))           # gives the model a device
        self.logits, self.mu, self.logvar = logits, mu, logvar
        self.latent_dim = mu.shape[1]

    def encode(self, x):
        rows = (x[:, 0, 0, 0] * 1000).round().long()
        return self.mu[rows] + 0 * self.anchor, self.logvar[rows]

    def forward(self, x):
        rows = (x[:, 0, 0, 0] * 1000).round().long()
        mu, logvar = self.encode(x)
        return VAEOutput(self.logits[rows], mu, logvar)


def indexed_images(n, generator):
    x = torch.rand(n, 1, 28, 28, generator=generator)
    x[:, 0, 0, 0] = torch.arange(n) / 1000
    return x


FASHION_SIZES = (3_000, 500)          # the fashion fixture (tests/conftest.py): training and held-out images


# -- the model ---------------------------------------------------------------------------------

@pytest.mark.parametrize("latent_dim, hidden, widths", [
    (2, (512, 256), [512, 256, 2, 2, 256, 512, 784]),          # the course's 784-512-256-z
    (20, (400,), [400, 20, 20, 400, 784]),                     # the classic 784-400-20
])
def test_vae_shapes_and_layers(latent_dim, hidden, widths):
    vae = ah.MLPVAE(latent_dim=latent_dim, hidden=hidden)
    assert [m.out_features for m in vae.modules() if isinstance(m, nn.Linear)] == widths
    x = torch.rand(5, 1, 28, 28)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (5, latent_dim)
    out = vae(x)
    assert isinstance(out, VAEOutput) and out.logits.shape == (5, 1, 28, 28) and out.mu.shape == (5, latent_dim)
    logits, mu2, _ = out                                       # unpacks in the documented order
    assert torch.equal(mu2, mu)
    assert vae.sample(3).shape == (3, 1, 28, 28) and vae.reconstruct(x).shape == (5, 1, 28, 28)


def test_decode_gives_probabilities_or_logits():
    vae = ah.MLPVAE(latent_dim=3, hidden=(32,))
    z = 3 * torch.randn(10, 3)
    probabilities, logits = vae.decode(z), vae.decode(z, logits=True)
    assert 0 < probabilities.min() and probabilities.max() < 1
    assert torch.allclose(probabilities, torch.sigmoid(logits))
    assert logits.min() < 0 < logits.max()                    # raw, unbounded outputs
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(vae.reconstruct(x), vae.decode(vae.encode(x)[0]))     # decode(mu): no sampling


def test_vae_checks_shapes_and_arguments():
    vae = ah.MLPVAE(latent_dim=3, hidden=(16,))
    with pytest.raises(ValueError, match=r"\(batch, 1, 28, 28\), got \(4, 784\)"):
        vae(torch.rand(4, 784))
    with pytest.raises(ValueError, match=r"codes of shape \(batch, 3\), got \(4, 2\)"):
        vae.decode(torch.rand(4, 2))
    with pytest.raises(ValueError, match="latent_dim must be a positive int, got 0"):
        ah.MLPVAE(latent_dim=0)
    with pytest.raises(ValueError, match=r"hidden sizes must be one or more positive ints, got \(512, -1\)"):
        ah.MLPVAE(hidden=(512, -1))


def test_encode_and_predict_return_the_pair_for_a_whole_set():
    vae = ah.MLPVAE(latent_dim=4, hidden=(16,))
    x = torch.rand(25, 1, 28, 28)
    mu, logvar = ah.encode(vae, x, batch_size=10)
    assert mu.shape == logvar.shape == (25, 4)
    assert torch.allclose(mu, vae.encode(x)[0], atol=1e-6)
    out = ah.predict(vae, x, batch_size=10)                   # forward, batch by batch: the names survive
    assert out._fields == ("logits", "mu", "logvar") and out.logits.shape == (25, 1, 28, 28)


# -- reparameterize ----------------------------------------------------------------------------

def test_reparameterize_shapes_and_gradients():
    mu = torch.randn(6, 3, requires_grad=True)
    logvar = torch.randn(6, 3, requires_grad=True)
    z = ah.reparameterize(mu, logvar)
    assert z.shape == (6, 3)
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones(6, 3))                          # dz/dmu = 1
    assert torch.allclose(logvar.grad, 0.5 * (z - mu).detach(), atol=1e-6)    # dz/dlogvar = 0.5 sigma eps
    with pytest.raises(ValueError, match=r"mu has shape \(2, 3\) but logvar has \(2, 4\)"):
        ah.reparameterize(torch.zeros(2, 3), torch.zeros(2, 4))


def test_reparameterize_gradient_against_finite_differences():
    # with eps fixed by a freshly seeded generator, z is a smooth function of (mu, logvar)
    def f(mu, logvar):
        return (ah.reparameterize(mu, logvar, torch.Generator().manual_seed(3)) ** 2).sum()

    mu = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (mu, logvar))


def test_reparameterize_draws_have_mean_mu_and_std_sigma():
    n = 100_000
    mu = torch.tensor([-2.0, 0.0, 3.0]).expand(n, 3)
    sigma = torch.tensor([0.5, 1.0, 2.0])
    z = ah.reparameterize(mu, (2 * sigma.log()).expand(n, 3), torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), mu[0], atol=0.02)                 # standard error: sigma / 316
    assert torch.allclose(z.std(0), sigma, rtol=0.02)
    # the same distribution as torch's own pathwise sampler
    reference = Normal(mu[0], sigma).rsample((n,))
    assert torch.allclose(reference.std(0), z.std(0), rtol=0.03)


def test_reparameterize_repeats_with_a_generator():
    mu, logvar = torch.zeros(4, 2), torch.zeros(4, 2)
    a = ah.reparameterize(mu, logvar, torch.Generator().manual_seed(1))
    b = ah.reparameterize(mu, logvar, torch.Generator().manual_seed(1))
    c = ah.reparameterize(mu, logvar, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_reparameterize_draws_eps_with_randn_like_and_the_same_numbers_from_a_generator():
    mu, logvar = torch.randn(6, 3), torch.randn(6, 3)                     # lesson 05 says: eps from torch.randn_like
    torch.manual_seed(7)
    z = ah.reparameterize(mu, logvar)
    torch.manual_seed(7)
    assert torch.equal(z, mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))
    with_generator = ah.reparameterize(mu, logvar, torch.Generator().manual_seed(7))
    assert torch.equal(with_generator, z)                                  # a generator seeded alike: the same draw


# -- the KL ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dims", ["sum", "mean", "none"])
@pytest.mark.parametrize("batch", ["mean", "sum", "none"])
def test_kl_against_torch_distributions(dims, batch):
    g = torch.Generator().manual_seed(0)
    mu = 2 * torch.randn(7, 5, generator=g)
    logvar = 1.5 * torch.randn(7, 5, generator=g)
    per_entry = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))     # (7, 5)
    reference = {"sum": per_entry.sum(1), "mean": per_entry.mean(1), "none": per_entry}[dims]
    reference = {"mean": reference.mean(0), "sum": reference.sum(0), "none": reference}[batch]
    got = ah.gaussian_kl(mu, logvar, dims=dims, batch=batch)
    assert got.shape == reference.shape
    assert torch.allclose(got, reference, rtol=1e-5, atol=1e-6)


def test_kl_by_hand():
    # mu = 1, sigma = 1: 0.5 * (1 + 1 - 1 - 0) = 0.5 nats; mu = 0, sigma = e: 0.5 * (e^2 - 1 - 2)
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    second = 0.5 * (math.e ** 2 - 3)
    per_entry = ah.gaussian_kl(mu, logvar, dims="none", batch="none")
    assert per_entry.flatten().tolist() == pytest.approx([0.5, second, 0, 0])
    assert ah.gaussian_kl(mu, logvar).item() == pytest.approx((0.5 + second) / 2)     # nats per image


def test_kl_bad_arguments_are_named():
    mu = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"dims='max'; expected one of \('sum', 'mean', 'none'\)"):
        ah.gaussian_kl(mu, mu, dims="max")
    with pytest.raises(ValueError, match="batch='all'"):
        ah.gaussian_kl(mu, mu, batch="all")
    with pytest.raises(ValueError, match=r"\(batch, k\), got \(2, 3\) and \(2, 2\)"):
        ah.gaussian_kl(mu, torch.zeros(2, 2))


# -- the reconstruction ------------------------------------------------------------------------

def test_bce_reductions_by_hand():
    # every logit 0 (p = 0.5) against a black target costs ln 2 = 0.6931 nats per pixel;
    # image 0 has one white pixel predicted with logit ln 3 (p = 0.75): -ln 0.75 = 0.2877 nats
    logits = torch.zeros(2, 1, 28, 28)
    x = torch.zeros(2, 1, 28, 28)
    logits[0, 0, 0, 0], x[0, 0, 0, 0] = math.log(3), 1.0
    image0, image1 = 783 * math.log(2) + math.log(4 / 3), 784 * math.log(2)       # 542.9149, 543.4274 nats
    bce = ah.bce_with_logits
    assert bce(logits, x, pixels="sum", batch="none").tolist() == pytest.approx([image0, image1])
    assert bce(logits, x, pixels="sum", batch="mean").item() == pytest.approx((image0 + image1) / 2)
    assert bce(logits, x, pixels="sum", batch="sum").item() == pytest.approx(image0 + image1)
    assert bce(logits, x, pixels="mean", batch="none").tolist() == pytest.approx([image0 / 784, image1 / 784])
    assert bce(logits, x).item() == pytest.approx((image0 + image1) / (2 * 784))
    assert bce(logits, x, pixels="mean", batch="sum").item() == pytest.approx((image0 + image1) / 784)


@pytest.mark.parametrize("pixels", ["mean", "sum"])
@pytest.mark.parametrize("batch", ["mean", "sum", "none"])
def test_bce_with_logits_equals_bce_on_probabilities(pixels, batch):
    g = torch.Generator().manual_seed(1)
    logits = 4 * torch.randn(3, 1, 28, 28, generator=g)
    x = torch.rand(3, 1, 28, 28, generator=g)
    per_pixel = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").flatten(1)   # (3, 784)
    per_image = per_pixel.sum(1) if pixels == "sum" else per_pixel.mean(1)
    reference = {"mean": per_image.mean(), "sum": per_image.sum(), "none": per_image}[batch]
    assert torch.allclose(ah.bce_with_logits(logits, x, pixels=pixels, batch=batch), reference, rtol=1e-4)


def test_bce_from_logits_stays_exact_where_probabilities_saturate():
    logits = torch.full((1, 1, 28, 28), -200.0)          # sigmoid(-200) is 0 in float32
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 0, 0] = 1.0                                  # one white pixel the model is sure is black
    assert ah.bce_with_logits(logits, x, pixels="sum").item() == pytest.approx(200.0, rel=1e-4)
    # on probabilities, log(0) is clamped to -100 by PyTorch: the error is misreported
    assert F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum").item() == pytest.approx(100.0)


def test_bce_rejects_bad_targets():
    scaled = torch.linspace(-1, 1, 784).reshape(1, 1, 28, 28)        # images normalised to [-1, 1]
    with pytest.raises(ValueError, match=r"targets in \[0, 1\].*from -1 to 1"):
        ah.bce_with_logits(torch.zeros(1, 1, 28, 28), scaled)
    with pytest.raises(ValueError, match=r"\(2, 1, 28, 28\) but the target has \(3, 1, 28, 28\)"):
        ah.bce_with_logits(torch.zeros(2, 1, 28, 28), torch.zeros(3, 1, 28, 28))


# -- the objective -----------------------------------------------------------------------------

def _fixed_batch():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(4, 1, 28, 28, generator=g)
    mu, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    return FixedVAE(logits, mu, logvar), indexed_images(4, g)


def test_objective_terms_and_names():
    model, x = _fixed_batch()
    terms = ah.vae_objective()(model, x, x)
    assert list(terms) == ["total_loss", "recon_nats_per_image", "kl_nats_per_image"]
    recon = F.binary_cross_entropy_with_logits(model.logits, x, reduction="sum") / 4       # nats per image
    kl = kl_divergence(Normal(model.mu, torch.exp(0.5 * model.logvar)), Normal(0.0, 1.0)).sum() / 4
    assert terms["recon_nats_per_image"].item() == pytest.approx(recon.item(), rel=1e-5)
    assert terms["kl_nats_per_image"].item() == pytest.approx(kl.item(), rel=1e-5)
    assert terms["total_loss"].item() == pytest.approx((recon + kl).item(), rel=1e-5)
    weighted = ah.vae_objective(recon_factor=3.0, kl_weight=0.5)(model, x, x)
    assert weighted["total_loss"].item() == pytest.approx((3 * recon + 0.5 * kl).item(), rel=1e-5)
    assert weighted["kl_nats_per_image"].item() == pytest.approx(kl.item(), rel=1e-5)     # logged unweighted


def test_mean_reduction_is_seed_004s_division_by_batch_times_784():
    model, x = _fixed_batch()
    probabilities = torch.sigmoid(model.logits)
    kl_sum = ah.gaussian_kl(model.mu, model.logvar, dims="sum", batch="sum")               # nats, whole batch
    mse = ah.vae_objective(recon="mse", reduction="mean")(model, x, x)
    assert list(mse) == ["total_loss", "recon_sq_error_per_image", "kl_nats_per_image"]
    seed_004 = nn.MSELoss()(probabilities, x) + kl_sum / (4 * 28 * 28)
    assert mse["total_loss"].item() == pytest.approx(seed_004.item(), rel=1e-5)
    assert mse["recon_sq_error_per_image"].item() == pytest.approx(((probabilities - x) ** 2).sum().item() / 4,
                                                                   rel=1e-5)
    summed = ah.vae_objective(reduction="sum")(model, x, x)["total_loss"]
    assert ah.vae_objective(reduction="mean")(model, x, x)["total_loss"].item() == pytest.approx(
        summed.item() / 784, rel=1e-5)


def test_free_bits_only_change_what_is_paid():
    model, x = _fixed_batch()
    model.mu = torch.zeros(4, 3, requires_grad=True)
    model.logvar = torch.tensor([[0.0, 0.0, 3.0]]).repeat(4, 1)      # KL per dimension: 0, 0, 0.5 (e^3 - 4)
    plain = ah.vae_objective()(model, x, x)
    floored = ah.vae_objective(free_bits=0.5)(model, x, x)
    big = 0.5 * (math.exp(3) - 4)
    assert plain["kl_nats_per_image"].item() == pytest.approx(big, rel=1e-5)
    assert floored["kl_nats_per_image"].item() == pytest.approx(big, rel=1e-5)            # the true KL is logged
    assert (floored["total_loss"] - plain["total_loss"]).item() == pytest.approx(2 * 0.5, rel=1e-4)
    floored["total_loss"].backward()
    assert torch.equal(model.mu.grad, torch.zeros(4, 3))            # below the floor: no pull towards the prior


@pytest.mark.parametrize("kwargs, match", [
    ({"recon": "l1"}, r"recon='l1'; expected one of \('bce', 'mse'\)"),
    ({"reduction": "none"}, r"reduction='none'; expected one of \('sum', 'mean'\)"),
    ({"recon_factor": -1}, r"recon_factor must be a finite number in \[0, inf\), got -1"),
    ({"kl_weight": math.nan}, r"kl_weight must be a finite number .*, got nan"),
    ({"free_bits": "0.5"}, r"free_bits must be a finite number .*, got '0.5'"),
])
def test_objective_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ah.vae_objective(**kwargs)


def test_objective_needs_a_vae():
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(TypeError, match="forward returns \\(logits, mu, logvar\\).*MLPAutoencoder returned Tensor"):
        ah.vae_objective()(ah.MLPAutoencoder(), x, x)


# -- the negative ELBO and active units --------------------------------------------------------

def test_negative_elbo_samples_z():
    ah.set_seed(0)
    vae = ah.MLPVAE(latent_dim=4, hidden=(32,))
    x = torch.rand(30, 1, 28, 28)
    a = ah.negative_elbo(vae, x, generator=torch.Generator().manual_seed(0))
    b = ah.negative_elbo(vae, x, generator=torch.Generator().manual_seed(0))
    c = ah.negative_elbo(vae, x, generator=torch.Generator().manual_seed(1))
    assert a == b and a != c
    # by hand: BCE at a sampled z, summed over pixels, plus the KL, averaged over images (nats per image)
    with torch.no_grad():
        mu, logvar = vae.encode(x)
        z = ah.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
        logits = vae.decode(z, logits=True)
        by_hand = (F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / 30
                   + ah.gaussian_kl(mu, logvar, dims="sum", batch="mean")).item()
    assert a == pytest.approx(by_hand, rel=1e-5)
    # in batches and with several samples: the same kind of number
    several = ah.negative_elbo(vae, x, n_samples=4, generator=torch.Generator().manual_seed(0), batch_size=7)
    assert several == pytest.approx(a, rel=0.01)
    with pytest.raises(ValueError, match="n_samples must be a positive int, got 0"):
        ah.negative_elbo(vae, x, n_samples=0)


def test_kl_per_dimension_and_active_units():
    g = torch.Generator().manual_seed(4)
    mu = torch.zeros(20, 3)
    mu[:, 0] = torch.randn(20, generator=g)                    # dimension 0 carries information
    logvar = torch.zeros(20, 3)
    logvar[:, 2] = -0.02                                        # dimension 2 is nearly the prior: KL ~ 1e-4
    model = FixedVAE(torch.zeros(20, 1, 28, 28), mu, logvar)
    x = indexed_images(20, g)
    per_dim = ah.kl_per_dimension(model, x, batch_size=6)
    assert per_dim.tolist() == pytest.approx(ah.gaussian_kl(mu, logvar, dims="none", batch="mean").tolist())
    assert per_dim[0] > 0.1 and per_dim[1] == 0 and 0 < per_dim[2] < 0.01
    assert ah.active_units(model, x).tolist() == [True, False, False]
    assert ah.active_units(model, x, threshold=1e-5).tolist() == [True, False, True]


# -- real data -----------------------------------------------------------------------------------

def test_vae_learns_on_fashion_mnist_and_logs_every_term(fashion):
    train, test = fashion
    ah.set_seed(0)
    vae = ah.MLPVAE(latent_dim=8, hidden=(128,))
    untrained = ah.negative_elbo(vae, test, generator=torch.Generator().manual_seed(0))
    history = ah.fit(vae, train, test, objective=ah.vae_objective(), epochs=2, device="cpu", progress=False,
                     log=False)
    trained = ah.negative_elbo(vae, test, generator=torch.Generator().manual_seed(0))
    names = ["total_loss", "recon_nats_per_image", "kl_nats_per_image"]
    assert list(history.train) == names and list(history.test) == names
    assert all(len(values) == 2 for values in (*history.train.values(), *history.test.values()))
    assert untrained == pytest.approx(784 * math.log(2), rel=0.05)       # logits near 0: ln 2 per pixel
    baseline = mean_image_nats(train.images, test.images)               # a VAE that ignores z: about 387 nats
    assert beats_mean_image(trained, baseline, margin=0.95), (trained, baseline)   # 2 epochs: a modest margin
    assert int(ah.active_units(vae, test).sum()) >= 1                   # the code carries information
    # fit's held-out total is the same one-sample estimate (different draws)
    assert history.last("test") == pytest.approx(trained, rel=0.03)


def test_free_bits_restore_collapsed_units(fashion):
    train, test = fashion
    # a reconstruction factor of 10/784 makes the KL 78 times too strong: most units collapse
    counts = {}
    for free_bits in (0.0, 0.25):
        ah.set_seed(0)
        vae = ah.MLPVAE(latent_dim=8, hidden=(128,))
        objective = ah.vae_objective(recon_factor=10 / 784, free_bits=free_bits)
        ah.fit(vae, train, epochs=3, objective=objective, device="cpu", progress=False, log=False)
        counts[free_bits] = int(ah.active_units(vae, test).sum())
    assert counts[0.0] <= 4 and counts[0.25] == 8, counts


# -- sampling draws from the prior ------------------------------------------------------------------------------


def _recorded_codes(model, draw):
    """The codes ``draw()`` hands to ``model.decode``."""
    seen = []
    real = model.decode

    def decode(z, *args, **kwargs):
        seen.append(z.detach().clone())
        return real(z, *args, **kwargs)

    model.decode = decode
    try:
        images = draw()
    finally:
        del model.decode
    return torch.cat(seen), images


@pytest.mark.parametrize("make", [lambda: ah.MLPVAE(latent_dim=4, hidden=(16,)),
                                  lambda: ah.ConvVAE(latent_dim=4, channels=(4, 4, 4, 4)),
                                  lambda: ah.ConditionalVAE(latent_dim=4, hidden=(16,))],
                         ids=["mlp", "conv", "conditional"])
def test_sample_decodes_fresh_draws_of_the_standard_normal(make):
    torch.manual_seed(0)
    model = make()
    extra = (3,) if isinstance(model, ah.ConditionalVAE) else ()
    z, images = _recorded_codes(model, lambda: model.sample(4000, *extra))
    assert z.shape == (4000, 4) and images.shape == (4000, 1, 28, 28)
    assert z.mean(0).abs().max() < 0.1 and (z.std(0) - 1).abs().max() < 0.1     # N(0, I), not z = 0 or a constant
    again, _ = _recorded_codes(model, lambda: model.sample(4000, *extra))
    assert not torch.equal(z, again)                                            # a new draw each call
    g = lambda: torch.Generator().manual_seed(5)                                # noqa: E731
    first, _ = _recorded_codes(model, lambda: model.sample(10, *extra, generator=g()))
    second, _ = _recorded_codes(model, lambda: model.sample(10, *extra, generator=g()))
    assert torch.equal(first, second)                                           # a generator repeats the draw


def test_conditional_samples_depend_on_the_class():
    torch.manual_seed(0)
    cvae = ah.ConditionalVAE(latent_dim=2, hidden=(16,))
    g = lambda: torch.Generator().manual_seed(1)                                # noqa: E731  the same codes
    as_three, as_seven = cvae.sample(8, 3, generator=g()), cvae.sample(8, 7, generator=g())
    assert (as_three - as_seven).abs().mean() > 1e-3


def test_reparameterize_names_what_is_not_a_tensor():
    with pytest.raises(TypeError) as info:
        ah.reparameterize(torch.zeros(2), 0.5)
    assert str(info.value) == "reparameterize expects two tensors (mu, logvar), got Tensor and float"
    with pytest.raises(TypeError) as info:
        ah.reparameterize([0.0], torch.zeros(1))
    assert str(info.value) == "reparameterize expects two tensors (mu, logvar), got list and Tensor"


def test_reparameterize_draws_eps_in_mus_dtype_and_on_mus_device():
    mu, logvar = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    z = ah.reparameterize(mu, logvar, torch.Generator().manual_seed(4))
    eps = torch.randn(5, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    assert z.dtype == torch.float64 and torch.equal(z, mu + torch.exp(0.5 * logvar) * eps)
    # the meta device (shapes, no numbers) stands in for a GPU: eps must be drawn where mu lives
    on_meta = torch.zeros(2, 3, device="meta")
    assert ah.reparameterize(on_meta, on_meta, torch.Generator().manual_seed(0)).device.type == "meta"


@pytest.mark.parametrize("make", [lambda: ah.MLPVAE(latent_dim=2, hidden=(4,)),
                                  lambda: ah.ConvVAE(latent_dim=2, channels=(2, 2, 2, 2))], ids=["mlp", "conv"])
def test_samples_are_drawn_on_the_models_device(make):
    assert make().to("meta").sample(3).device.type == "meta"


def test_mlp_vae_defaults_to_a_two_dimensional_code():
    vae = ah.MLPVAE()
    assert vae.latent_dim == 2 and vae.mu_head.out_features == vae.logvar_head.out_features == 2
