"""Lesson 10's conditional VAE: labels checked, the label really conditions the decoder, fit hands labels over,
and the class selector widget, tested headlessly."""

import re

import numpy as np
import pytest
import torch

import autoenc_helpers as ah
from baselines import beats_mean_image, mean_image_nats
from autoenc_helpers import widgets
from autoenc_helpers.models import ConditionalVAE, check_labels


FASHION_SIZES = (6_000, 1_000)          # the fashion fixture (tests/conftest.py): training and held-out images


@pytest.fixture(scope="module")
def trained(fashion):
    """A small CVAE trained for two epochs, and its held-out loss before and after."""
    train, test = fashion
    ah.set_seed(0)
    cvae = ConditionalVAE(latent_dim=2, hidden=(256,))
    objective = ah.vae_objective()
    before = ah.evaluate(cvae, test, objective=objective, with_labels=True)
    history = ah.fit(cvae, train, test, objective=objective, epochs=2, device="cpu", with_labels=True,
                     progress=False, log=False)
    return cvae, before, history


def test_shapes_at_every_call():
    cvae = ConditionalVAE(latent_dim=3, n_classes=10, hidden=(64, 32))
    x, y = torch.rand(5, 1, 28, 28), torch.tensor([0, 1, 9, 4, 4])
    mu, logvar = cvae.encode(x, y)
    assert mu.shape == logvar.shape == (5, 3)
    assert cvae.encoder[0].in_features == 784 + 10 and cvae.decoder[0].in_features == 3 + 10
    out = cvae(x, y)
    assert isinstance(out, ah.VAEOutput) and out.logits.shape == (5, 1, 28, 28)
    probs = cvae.decode(mu, y)
    assert probs.shape == (5, 1, 28, 28) and 0 < probs.min() and probs.max() < 1
    assert torch.allclose(torch.sigmoid(cvae.decode(mu, y, logits=True)), probs)
    assert torch.equal(cvae.reconstruct(x, y), probs)
    assert cvae.sample(4, 7).shape == (4, 1, 28, 28)
    assert cvae.sample(2, torch.tensor([3, 8])).shape == (2, 1, 28, 28)
    assert cvae.sample(3, np.int64(2)).shape == (3, 1, 28, 28)          # a numpy integer is a class index too


@pytest.mark.parametrize("labels, error, match", [
    (torch.tensor([0, 3, 10, 2]), ValueError, r"label 10 is out of range; the classes are 0..9"),
    (torch.tensor([0, -1, 1, 2]), ValueError, r"label -1 is out of range"),
    (torch.tensor([0.0, 1.0, 2.0, 3.0]), TypeError, r"whole numbers .* got dtype torch.float32"),
    (torch.tensor([True, False, True, True]), TypeError, r"got dtype torch.bool"),
    (torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3]), 10), ValueError,
     r"shape \(batch,\).*got \(4, 10\): pass class indices .* not one-hot"),
    (torch.tensor([1, 2]), ValueError, r"2 labels for 4 images"),
    ("Trouser", TypeError, r"got str: 'Trouser'"),
])
def test_bad_labels_are_named(labels, error, match):
    cvae = ConditionalVAE(hidden=(16,))
    with pytest.raises(error, match=match):
        cvae.encode(torch.rand(4, 1, 28, 28), labels)


def test_other_bad_calls_are_named():
    cvae = ConditionalVAE(hidden=(16,))
    with pytest.raises(TypeError, match=r"needs each image's label: call model\(x, y\).*with_labels=True"):
        cvae(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="label 12 is out of range"):
        cvae.sample(3, 12)
    with pytest.raises(ValueError, match=r"codes of shape \(batch, 2\), got \(3, 5\)"):
        cvae.decode(torch.zeros(3, 5), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="n_classes must be an int >= 2, got 1"):
        ConditionalVAE(n_classes=1)
    with pytest.raises(ValueError, match="hidden sizes"):
        ConditionalVAE(hidden=())
    assert check_labels(3, 10, "test").tolist() == [3]


def test_fit_hands_each_batch_its_own_labels():
    n = 300
    images = (torch.arange(n, dtype=torch.float32) / n).reshape(n, 1, 1, 1).expand(n, 1, 28, 28).contiguous()
    data = ah.ImageSet(images, torch.arange(n), None, "toy", "train", "made here")   # label i on image i
    model = ah.MLPAutoencoder(latent_dim=2, hidden=(8,))
    seen = []

    def objective(model, inputs, targets, labels):
        assert torch.equal((inputs[:, 0, 0, 0] * n).round().long(), labels)        # each image with its label
        seen.append(labels)
        return {"mse_per_pixel": ah.squared_error(model(inputs), targets)}

    ah.fit(model, data, data, objective=objective, epochs=2, batch_size=64, with_labels=True, device="cpu",
           progress=False, log=False)
    training = torch.cat(seen[:5])                                                    # epoch 1: 5 shuffled batches
    assert sorted(training.tolist()) == list(range(n)) and training.tolist() != list(range(n))
    assert ah.evaluate(model, data, objective=objective, with_labels=True, batch_size=100)["mse_per_pixel"] > 0


def test_with_labels_needs_labelled_data(fashion):
    train, test = fashion
    cvae = ConditionalVAE(hidden=(16,))
    with pytest.raises(ValueError, match=r"so train must be an ImageSet .* got a tensor of shape \(100, 1, 28, 28\)"):
        ah.fit(cvae, train.images[:100], objective=ah.vae_objective(), with_labels=True, progress=False, log=False)
    with pytest.raises(ValueError, match="so test must be an ImageSet"):
        ah.fit(cvae, train.subset(torch.arange(100)), test.images[:50], objective=ah.vae_objective(),
               with_labels=True, progress=False, log=False)
    with pytest.raises(TypeError, match=r"needs each image's label"):          # labels forgotten: a clear error
        ah.fit(cvae, train.subset(torch.arange(100)), objective=ah.vae_objective(), progress=False, log=False)


def test_cvae_learns(trained, fashion):
    cvae, before, history = trained
    train, test = fashion
    assert before["total_loss"] > 500                         # about 784 ln 2 = 543 nats: a coin flip per pixel
    assert history.last("test") < 0.6 * before["total_loss"]
    baseline = mean_image_nats(train.images, test.images)
    assert beats_mean_image(history.last("test"), baseline, margin=0.85), (history.last("test"), baseline)
    assert history.test["total_loss"][-1] < history.test["total_loss"][0]
    assert list(history.test) == ["total_loss", "recon_nats_per_image", "kl_nats_per_image"]


def test_the_decoder_output_depends_on_the_label(trained, fashion):
    """Same codes, another label: other images; and the true label reconstructs better than a wrong one."""
    cvae, _, _ = trained
    _, test = fashion
    with torch.no_grad():
        z = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
        as_trousers = cvae.decode(z, torch.full((16,), 1))
        as_sneakers = cvae.decode(z, torch.full((16,), 7))
        assert (as_trousers - as_sneakers).abs().mean() > 0.03
        mu, _ = cvae.encode(test.images, test.labels)                      # codes made with the true labels

        def recon(y):
            return float(ah.bce_with_logits(cvae.decode(mu, y, logits=True), test.images, pixels="sum"))

        right, wrong = recon(test.labels), recon((test.labels + 5) % 10)
    assert wrong > right + 10, (right, wrong)                              # nats per image


def test_negative_elbo_with_labels(trained, fashion):
    cvae, _, history = trained
    _, test = fashion
    def gen():
        return torch.Generator().manual_seed(0)
    right = ah.negative_elbo(cvae, test, n_samples=2, generator=gen(), labels=test.labels)
    assert right == pytest.approx(history.last("test"), rel=0.02)         # the one-sample estimate of fit
    wrong = ah.negative_elbo(cvae, test, n_samples=2, generator=gen(), labels=(test.labels + 1) % 10)
    assert wrong > right + 10                                             # the label carries information
    with pytest.raises(ValueError, match=r"labels must be a \(1000,\) tensor"):
        ah.negative_elbo(cvae, test, labels=test.labels[:10])


# -- the widget ------------------------------------------------------------------------------------

def test_conditional_image_is_a_pure_function(trained):
    cvae, _, _ = trained
    cvae.train()
    rng = torch.get_rng_state()
    a = widgets.conditional_image(cvae, [0.5, -0.5], 3)
    assert torch.equal(rng, torch.get_rng_state()) and cvae.training         # no random draw, mode restored
    cvae.eval()
    assert a.shape == (28, 28) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert not np.allclose(a, widgets.conditional_image(cvae, [0.5, -0.5], 4))   # the class decides
    assert np.allclose(a, cvae.decode(torch.tensor([[0.5, -0.5]]), torch.tensor([3]))[0, 0].detach().numpy(),
                       atol=1e-6)


def test_changing_the_class_changes_the_image(trained):
    cvae, _, _ = trained
    explorer = widgets.ConditionalExplorer(cvae, ah.data.FASHION_CLASSES, label=1)
    assert explorer.renders == 1 and explorer.label == 1 and len(explorer.sliders) == 2
    assert [name for name, _ in explorer.selector.options][:2] == ["T-shirt/top", "Trouser"]
    assert all(s.continuous_update is False and (s.min, s.max) == (-3, 3) for s in explorer.sliders)
    before = explorer.image.copy()
    explorer.selector.value = 8                                            # Bag
    assert explorer.renders == 2 and explorer.label == 8
    assert np.abs(explorer.image - before).mean() > 0.05
    assert np.array_equal(explorer.image, widgets.conditional_image(cvae, [0.0, 0.0], 8))


def test_moving_a_slider_changes_the_image(trained):
    cvae, _, _ = trained
    explorer = widgets.ConditionalExplorer(cvae, ah.data.FASHION_CLASSES, label=0)
    before = explorer.image.copy()
    explorer.sliders[1].value = 2.5
    assert explorer.renders == 2 and explorer.code.tolist() == [0.0, 2.5]
    assert np.abs(explorer.image - before).max() > 0.05
    assert explorer.label == 0


def test_conditional_explorer_bad_inputs_are_named(trained):
    cvae, _, _ = trained
    with pytest.raises(ValueError, match="3 class names for a model of 10 classes"):
        widgets.ConditionalExplorer(cvae, ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"label must be a class index in 0..9, got 10"):
        widgets.ConditionalExplorer(cvae, ah.data.FASHION_CLASSES, label=10)
    with pytest.raises(ValueError, match="a code of 3 numbers for a 2-D code space"):
        widgets.ConditionalExplorer(cvae, ah.data.FASHION_CLASSES, code=[0, 0, 0])
    with pytest.raises(ValueError, match=r"limits must be \(low, high\)"):
        widgets.ConditionalExplorer(cvae, ah.data.FASHION_CLASSES, limits=(1, -1))
    with pytest.raises(TypeError, match="needs a conditional VAE"):
        widgets.ConditionalExplorer(ah.MLPVAE(), ah.data.FASHION_CLASSES)


# -- what each message says, to the letter, and the draw of z -------------------------------------------

@pytest.mark.parametrize("labels, message", [
    (torch.tensor([2.5, 0.0]),
     "who expects class labels as whole numbers (an int64 tensor of class indices), got dtype torch.float32 "
     "with values such as 2.5"),                                          # the first value, the one a learner typed
    (torch.tensor([]),
     "who expects class labels as whole numbers (an int64 tensor of class indices), got dtype torch.float32"),
    (torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3]), 10),
     "who expects labels of shape (batch,), one class index per image, got (4, 10): pass class indices such as "
     "tensor([3, 0, 7]), not one-hot rows; the model makes the one-hot itself"),
    (torch.zeros(4, 3, dtype=torch.long),                                 # 2-D but not one-hot rows: no hint
     "who expects labels of shape (batch,), one class index per image, got (4, 3)"),
    (torch.tensor(3),                                                     # a 0-dim tensor: no hint either
     "who expects labels of shape (batch,), one class index per image, got ()"),
])
def test_check_labels_messages_in_full(labels, message):
    with pytest.raises((TypeError, ValueError)) as info:
        check_labels(labels, 10, "who")
    assert str(info.value) == message


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m.encode(torch.rand(3, 784), torch.tensor([0, 1, 2])), ValueError,
     r"ConditionalVAE expects images of shape \(batch, 1, 28, 28\), got \(3, 784\)"),
    (lambda m: m.encode(torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 10])), ValueError,
     r"ConditionalVAE\.encode: label 10 is out of range; the classes are 0\.\.9"),
    (lambda m: m.decode(torch.zeros(3, 5), torch.tensor([0, 1, 2])), ValueError,
     r"ConditionalVAE\.decode expects codes of shape \(batch, 2\), got \(3, 5\)"),
    (lambda m: m.decode(torch.zeros(3, 2), torch.tensor([0, 1, 10])), ValueError,
     r"ConditionalVAE\.decode: label 10 is out of range; the classes are 0\.\.9"),
    (lambda m: m.decode(torch.zeros(3, 2), torch.tensor([0, 1])), ValueError,
     r"ConditionalVAE\.decode: 2 labels for 3 images; give one label per image"),
    (lambda m: m(torch.rand(2, 1, 28, 28)), TypeError,
     r"ConditionalVAE needs each image's label: call model\(x, y\); to train it, ah\.fit\(\.\.\., "
     r"with_labels=True\) hands the objective each batch's labels"),
    (lambda m: m.sample(3, 12), ValueError,
     r"ConditionalVAE\.sample: label 12 is out of range; the classes are 0\.\.9"),
    (lambda m: m.sample(3, torch.tensor([1, 2])), ValueError,           # a tensor: one label per image, 3 wanted
     r"ConditionalVAE\.sample: 2 labels for 3 images; give one label per image"),
    (lambda m: m.sample(2, torch.tensor([1, 10])), ValueError,
     r"ConditionalVAE\.sample: label 10 is out of range; the classes are 0\.\.9"),
    (lambda m: m.sample(0, 3), ValueError, r"n must be a positive int, got 0"),
    (lambda m: ConditionalVAE(latent_dim=0), ValueError, r"latent_dim must be a positive int, got 0"),
])
def test_conditional_vae_errors_name_the_method_and_the_value(call, error, message):
    cvae = ConditionalVAE(latent_dim=2, hidden=(16,))
    with pytest.raises(error) as info:
        call(cvae)
    assert re.fullmatch(message, str(info.value)), str(info.value)


def test_a_generator_makes_the_draw_of_z_repeatable():
    """forward(x, y, generator=g) draws z = mu + sigma * eps with eps from g, so a seeded call repeats."""
    torch.manual_seed(0)
    cvae = ConditionalVAE(latent_dim=2, hidden=(16,))
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    out = cvae(x, y, generator=torch.Generator().manual_seed(5))
    mu, logvar = cvae.encode(x, y)
    z = ah.reparameterize(mu, logvar, torch.Generator().manual_seed(5))
    assert torch.allclose(out.logits, cvae.decode(z, y, logits=True))
    other = cvae(x, y, generator=torch.Generator().manual_seed(6))
    assert not torch.allclose(out.logits, other.logits)
