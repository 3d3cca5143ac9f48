"""Lesson 10's structured-output conditional VAE (Sohn, Lee & Yan 2015): the top half of an image in, plausible
bottom halves out. Shapes, the KL between two Gaussians against torch.distributions, that samples depend on z
and the top half is used, the loss and its likelihood estimate, training that beats the mean-image baseline,
and the exercise check."""

import re

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

import autoenc_helpers as ah
from autoenc_helpers import checks
from autoenc_helpers.losses import completion_log_likelihood_iw, completion_objective, gaussian_kl_between
from autoenc_helpers.models import CompletionOutput, HalfImageCVAE, HalfImageRegressor, join_halves, split_halves


# -- halves and shapes --------------------------------------------------------------------------------

def test_split_and_join_halves_are_inverse():
    x = torch.rand(3, 1, 28, 28)
    top, bottom = split_halves(x)
    assert top.shape == bottom.shape == (3, 1, 14, 28)
    assert torch.equal(top, x[:, :, :14]) and torch.equal(bottom, x[:, :, 14:])
    assert torch.equal(join_halves(top, bottom), x)
    with pytest.raises(ValueError, match=r"top halves of shape \(batch, 1, 14, 28\), got \(3, 1, 28, 28\)"):
        join_halves(x, bottom)
    with pytest.raises(ValueError, match="3 top halves but 2 bottom halves"):
        join_halves(top, bottom[:2])


def test_shapes_at_every_call():
    torch.manual_seed(0)
    model = HalfImageCVAE(latent_dim=5, hidden=(64, 32))
    x = torch.rand(4, 1, 28, 28)
    top, bottom = split_halves(x)
    assert model.recognition[0].in_features == 784 and model.prior_net[0].in_features == 392
    assert model.generation[0][0].in_features == 5 + 392
    mu, logvar = model.encode(top, bottom)
    prior_mu, prior_logvar = model.prior(top)
    assert mu.shape == logvar.shape == prior_mu.shape == prior_logvar.shape == (4, 5)
    out = model(x)
    assert isinstance(out, CompletionOutput) and out.logits.shape == (4, 1, 14, 28)
    probs = model.decode(mu, top)
    assert probs.shape == (4, 1, 14, 28) and 0 < probs.min() and probs.max() < 1
    assert torch.allclose(torch.sigmoid(model.decode(mu, top, logits=True)), probs)
    assert model.sample(top).shape == (4, 1, 14, 28)
    baseline = HalfImageRegressor(hidden=(32,))
    assert baseline(x).shape == (4, 1, 14, 28)
    assert torch.allclose(torch.sigmoid(baseline(x)), baseline.predict(top))


def test_bad_inputs_are_named():
    model = HalfImageCVAE(latent_dim=2, hidden=(8,))
    top = torch.rand(3, 1, 14, 28)
    expected = r"prior expects top halves of shape \(batch, 1, 14, 28\), got \(3, 1, 28, 28\)"
    with pytest.raises(ValueError, match=expected):
        model.prior(torch.rand(3, 1, 28, 28))
    with pytest.raises(ValueError, match=r"decode expects codes of shape \(batch, 2\), got \(3, 4\)"):
        model.decode(torch.zeros(3, 4), top)
    with pytest.raises(ValueError, match="2 codes for 3 top halves"):
        model.decode(torch.zeros(2, 2), top)
    with pytest.raises(ValueError, match="latent_dim must be a positive int"):
        HalfImageCVAE(latent_dim=0)
    with pytest.raises(ValueError, match="hidden sizes must be one or more positive ints"):
        HalfImageRegressor(hidden=())


def test_samples_depend_on_z_and_on_the_top_half():
    torch.manual_seed(1)
    model = HalfImageCVAE(latent_dim=4, hidden=(32,)).eval()
    top = torch.rand(6, 1, 14, 28)
    z1, z2 = torch.randn(6, 4), torch.randn(6, 4)
    assert (model.decode(z1, top) - model.decode(z2, top)).abs().max() > 1e-3          # z changes the output
    assert (model.decode(z1, top) - model.decode(z1, top.flip(0))).abs().max() > 1e-3  # so does the top half
    assert (model.prior(top)[0] - model.prior(top.flip(0))[0]).abs().max() > 1e-3      # and the prior
    one = model.sample(top, generator=torch.Generator().manual_seed(0))
    again = model.sample(top, generator=torch.Generator().manual_seed(0))
    other = model.sample(top, generator=torch.Generator().manual_seed(1))
    assert torch.equal(one, again) and not torch.equal(one, other)


_HALF = r"of shape \(batch, 1, 14, 28\), got \(3, 1, 28, 28\)"


@pytest.mark.parametrize("call, message", [
    (lambda: split_halves(torch.rand(3, 1, 14, 28)),
     r"split_halves expects images of shape \(batch, 1, 28, 28\), got \(3, 1, 14, 28\)"),
    (lambda: join_halves(torch.rand(3, 1, 28, 28), torch.rand(3, 1, 14, 28)),
     r"join_halves \(top\) expects top halves " + _HALF),
    (lambda: join_halves(torch.rand(3, 1, 14, 28), torch.rand(3, 1, 28, 28)),
     r"join_halves \(bottom\) expects bottom halves " + _HALF),
    (lambda: HalfImageCVAE(2, (8,)).prior(torch.rand(3, 1, 28, 28)),
     r"HalfImageCVAE\.prior expects top halves " + _HALF),
    (lambda: HalfImageCVAE(2, (8,)).decode(torch.zeros(3, 4), torch.rand(3, 1, 14, 28)),
     r"HalfImageCVAE\.decode expects codes of shape \(batch, 2\), got \(3, 4\)"),
    (lambda: HalfImageCVAE(2, (8,)).decode(torch.zeros(3, 2), torch.rand(3, 1, 28, 28)),
     r"HalfImageCVAE\.decode expects top halves " + _HALF),
    (lambda: HalfImageCVAE(2, (8,)).decode(torch.zeros(4, 2), torch.rand(3, 1, 14, 28)),
     r"HalfImageCVAE\.decode: 4 codes for 3 top halves"),                  # 4 codes of 2 numbers each
    (lambda: HalfImageRegressor(hidden=(8,)).predict(torch.rand(3, 1, 28, 28)),
     r"HalfImageRegressor\.predict expects top halves " + _HALF),
])
def test_every_message_names_the_call_the_thing_and_its_shape(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert re.fullmatch(message, str(info.value)), str(info.value)


def test_defaults_and_the_architecture_each_model_records():
    model = HalfImageCVAE()
    assert (model.latent_dim, model.hidden, model.mu_head.out_features) == (16, (512, 256), 16)
    assert HalfImageRegressor().hidden == (512, 256)
    assert HalfImageRegressor(hidden=[64, 32]).hidden == (64, 32)          # a list is kept as a tuple


def test_a_generator_makes_the_training_draw_of_z_repeatable():
    """forward(x, generator=g) draws z from q(z | top, bottom) with eps from g, so a seeded call repeats."""
    torch.manual_seed(5)
    model = HalfImageCVAE(latent_dim=3, hidden=(16,))
    x = torch.rand(4, 1, 28, 28)
    top, bottom = split_halves(x)
    out = model(x, generator=torch.Generator().manual_seed(7))
    z = ah.reparameterize(*model.encode(top, bottom), torch.Generator().manual_seed(7))
    assert torch.allclose(out.logits, model.decode(z, top, logits=True))
    assert not torch.allclose(out.logits, model(x, generator=torch.Generator().manual_seed(8)).logits)


# -- the KL between two Gaussians, the objective, the likelihood -------------------------------------------

def test_gaussian_kl_between_matches_torch_distributions():
    g = torch.Generator().manual_seed(2)
    mu_q, mu_p = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g)
    lv_q, lv_p = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g)
    reference = kl_divergence(Normal(mu_q, (0.5 * lv_q).exp()), Normal(mu_p, (0.5 * lv_p).exp()))   # (7, 3)
    assert torch.allclose(gaussian_kl_between(mu_q, lv_q, mu_p, lv_p, dims="none", batch="none"), reference, atol=1e-5)
    assert torch.allclose(gaussian_kl_between(mu_q, lv_q, mu_p, lv_p), reference.sum(1).mean(), atol=1e-5)
    assert torch.allclose(gaussian_kl_between(mu_q, lv_q, mu_p, lv_p, batch="sum"), reference.sum(), atol=1e-4)
    zeros = torch.zeros_like(mu_q)
    assert torch.allclose(gaussian_kl_between(mu_q, lv_q, zeros, zeros), ah.gaussian_kl(mu_q, lv_q), atol=1e-5)
    assert float(gaussian_kl_between(mu_q, lv_q, mu_q, lv_q)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="four tensors of the same shape"):
        gaussian_kl_between(mu_q, lv_q, mu_p[:, :2], lv_p)
    with pytest.raises(ValueError, match="dims='all'"):
        gaussian_kl_between(mu_q, lv_q, mu_p, lv_p, dims="all")


def test_objective_by_hand_for_both_models():
    torch.manual_seed(3)
    model = HalfImageCVAE(latent_dim=3, hidden=(16,))
    x = torch.rand(5, 1, 28, 28)
    objective = completion_objective()
    torch.manual_seed(10)
    terms = objective(model, x, x)
    torch.manual_seed(10)
    out = model(x)                                                   # the same draw of z
    bottom = x[:, :, 14:]
    recon = F.binary_cross_entropy_with_logits(out.logits, bottom, reduction="none").flatten(1).sum(1).mean()
    kl = gaussian_kl_between(out.mu, out.logvar, out.prior_mu, out.prior_logvar)
    assert list(terms) == ["total_loss", "recon_nats_per_image", "kl_nats_per_image"]
    assert torch.allclose(terms["recon_nats_per_image"], recon) and torch.allclose(terms["kl_nats_per_image"], kl)
    assert torch.allclose(terms["total_loss"], recon + kl)
    baseline = HalfImageRegressor(hidden=(16,))
    terms = objective(baseline, x, x)
    assert list(terms) == ["total_loss", "recon_nats_per_image"]
    expected = F.binary_cross_entropy_with_logits(baseline(x), bottom, reduction="sum") / 5
    assert torch.allclose(terms["total_loss"], expected)
    assert objective.settings["split_row"] == 14
    with pytest.raises(TypeError, match="bottom-half logits of shape"):
        objective(ah.MLPVAE(hidden=(8,)), x, x)


def test_likelihood_estimate_is_exact_for_the_baseline_and_tightens_the_elbo():
    torch.manual_seed(4)
    x = torch.rand(40, 1, 28, 28).round()
    baseline = HalfImageRegressor(hidden=(16,))
    exact = -F.binary_cross_entropy_with_logits(baseline(x), x[:, :, 14:], reduction="none").flatten(1).sum(1)
    assert torch.allclose(completion_log_likelihood_iw(baseline, x, reduction="none"), exact.detach(), atol=1e-4)
    model = HalfImageCVAE(latent_dim=3, hidden=(16,))
    model.train()
    elbo = -ah.evaluate(model, x, objective=completion_objective())["total_loss"]
    iw = completion_log_likelihood_iw(model, x, k=200, generator=torch.Generator().manual_seed(0))
    assert iw > elbo                                                  # log p(bottom | top) >= L_200 >= ELBO
    assert model.training                                             # its mode is given back
    per_image = completion_log_likelihood_iw(model, x, k=3, reduction="none", batch_size=7)
    assert per_image.shape == (40,) and torch.isfinite(per_image).all()
    with pytest.raises(ValueError, match=r"k must be a positive int \(importance samples per image\), got 0"):
        completion_log_likelihood_iw(model, x, k=0)


# -- training -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained():
    """Both models trained briefly on 6,000 images; 500 held-out images."""
    train = ah.load_dataset("fashion_mnist", "train", n=6_000, verbose=False)
    test = ah.load_dataset("fashion_mnist", "test", n=500, verbose=False)
    ah.set_seed(0)
    cvae = HalfImageCVAE(latent_dim=8, hidden=(128,))
    ah.fit(cvae, train, epochs=3, objective=completion_objective(), device="cpu", progress=False, log=False)
    ah.set_seed(0)
    baseline = HalfImageRegressor(hidden=(128,))
    ah.fit(baseline, train, epochs=3, objective=completion_objective(), device="cpu", progress=False, log=False)
    return train, test, cvae, baseline


def test_both_models_beat_the_mean_image_baseline(trained):
    train, test, cvae, baseline = trained
    mean_bottom = train.images[:, :, 14:].mean(0, keepdim=True).clamp(1e-4, 1 - 1e-4)   # (1, 1, 14, 28)
    bottom = test.images[:, :, 14:]
    mean_nll = float(F.binary_cross_entropy(mean_bottom.expand_as(bottom), bottom, reduction="sum") / len(test))
    cvae_nll = -completion_log_likelihood_iw(cvae, test, k=50, generator=torch.Generator().manual_seed(0))
    baseline_nll = -completion_log_likelihood_iw(baseline, test)
    assert cvae_nll < mean_nll - 20, (cvae_nll, mean_nll)
    assert baseline_nll < mean_nll - 20, (baseline_nll, mean_nll)


def test_the_top_half_is_really_used(trained):
    _, test, cvae, baseline = trained
    top, bottom = split_halves(test.images)
    mismatched = join_halves(top.roll(1, 0), bottom)                  # every bottom half under another image's top
    for model in (cvae, baseline):
        right = completion_log_likelihood_iw(model, test, k=20, generator=torch.Generator().manual_seed(0))
        wrong = completion_log_likelihood_iw(model, mismatched, k=20, generator=torch.Generator().manual_seed(0))
        assert right > wrong + 20, (type(model).__name__, right, wrong)


def test_trained_samples_differ_with_z(trained):
    _, test, cvae, _ = trained
    top = test.images[:50, :, :14]
    with torch.no_grad():
        draws = torch.stack([cvae.sample(top, generator=torch.Generator().manual_seed(s))
                             for s in range(8)])   # (8, 50, ...)
    spread = draws.std(0).flatten(1).sum(1)                           # per top half, summed over pixels
    assert float(spread.median()) > 1.0, spread.median()


# -- the exercise check -------------------------------------------------------------------------------------

def _loss(model, images, eps, *, swap=False, standard_kl=False, reversed_kl=False, from_prior=False,
          sigma_full=False, pixels_mean=False, batch_sum=False, no_kl=False, per_image=False, twice=False, scale=1.0):
    """The completion loss, with knobs that make the usual slips on purpose (tests/test_checks_transcript.py too)."""
    top, bottom = images[:, :, :14], images[:, :, 14:]
    if swap:
        top, bottom = bottom, top
    mu, logvar = model.encode(top, bottom)
    prior_mu, prior_logvar = model.prior(top)
    m, lv = (prior_mu, prior_logvar) if from_prior else (mu, logvar)
    z = m + (lv.exp() if sigma_full else (0.5 * lv).exp()) * eps
    logits = model.decode(z, top, logits=True)
    logits = torch.sigmoid(logits) if twice else logits
    bce = F.binary_cross_entropy_with_logits(logits, bottom, reduction="none").flatten(1)
    recon = bce.mean(1) if pixels_mean else bce.sum(1)
    if no_kl:
        kl = 0
    elif standard_kl:
        kl = ah.gaussian_kl(mu, logvar, batch="none")
    elif reversed_kl:
        kl = gaussian_kl_between(prior_mu, prior_logvar, mu, logvar, batch="none")
    else:
        kl = gaussian_kl_between(mu, logvar, prior_mu, prior_logvar, batch="none")
    loss = scale * (recon + kl)
    return loss if per_image else (loss.sum() if batch_sum else loss.mean())


def test_completion_loss_check_accepts_right_answers(capsys):
    assert checks.check_completion_loss(_loss)
    assert checks.check_completion_loss(lambda m, x, e: _loss(m, x, e).item())       # a float is one number too

    def with_helpers(model, images, eps):
        top, bottom = ah.models.split_halves(images)
        mu, logvar = model.encode(top, bottom)
        logits = model.decode(mu + torch.exp(0.5 * logvar) * eps, top, logits=True)
        recon = ah.bce_with_logits(logits, bottom, pixels="sum", batch="mean")
        return recon + gaussian_kl_between(mu, logvar, *model.prior(top))
    assert checks.check_completion_loss(with_helpers)
    assert "all 5 hidden tests pass" in capsys.readouterr().out


@pytest.mark.parametrize("slip, words", [
    (dict(swap=True), "the top and the bottom half are swapped"),
    (dict(standard_kl=True), "the KL is taken against N(0, I)"),
    (dict(from_prior=True), "z is drawn from the prior network"),
    (dict(sigma_full=True), "sigma is exp(0.5 * logvar)"),
    (dict(pixels_mean=True), "the BCE is averaged over the pixels"),
    (dict(batch_sum=True), "the loss is summed over the batch"),
    (dict(no_kl=True), "the KL term is missing"),
    (dict(per_image=True), "average the per-image losses over the batch"),
    (dict(twice=True), "the sigmoid is applied twice"),
])
def test_completion_loss_check_names_each_slip(slip, words, capsys):
    assert not checks.check_completion_loss(lambda m, x, e: _loss(m, x, e, **slip))
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("slip", [dict(from_prior=True), dict(sigma_full=True)], ids=["z from the prior", "sigma"])
def test_where_z_comes_from_and_how_wide_it_is_fail_every_hidden_case(slip, capsys):
    # the hidden models' decoders must depend on z: in an untrained one these slips moved the loss by hundredths
    assert not checks.check_completion_loss(lambda m, x, e: _loss(m, x, e, **slip))
    assert "5 of 5 hidden tests failed" in capsys.readouterr().out


def test_completion_loss_check_handles_stubs_crashes_and_changed_inputs(capsys):
    def stub(model, images, eps):
        raise NotImplementedError
    assert not checks.check_completion_loss(stub)
    assert "not written yet" in capsys.readouterr().out
    assert not checks.check_completion_loss(lambda m, x, e: 1 / 0)
    assert "raised ZeroDivisionError" in capsys.readouterr().out

    def in_place(model, images, eps):
        eps.mul_(2)
        return _loss(model, images, eps / 2)
    assert not checks.check_completion_loss(in_place)
    assert "in place" in capsys.readouterr().out                       # the common runner names the slip
    assert not checks.check_completion_loss(lambda m, x, e: "low")
    assert "return a number, the loss, not str" in capsys.readouterr().out
