"""The convolutional VAE of lesson 08: shapes at every layer, the VAE interface, and real learning."""

import pytest
import torch

import autoenc_helpers as ah
from baselines import beats_mean_image, mean_image_sq_error_per_image


def test_shapes_at_every_layer_with_the_default_widths():
    vae = ah.ConvVAE(latent_dim=1)
    x = torch.rand(5, 1, 28, 28)
    shapes = []
    h = x
    for layer in vae.encoder:
        h = layer(h)
        if isinstance(layer, torch.nn.Conv2d | torch.nn.Flatten):
            shapes.append(tuple(h.shape[1:]))
    assert shapes == [(32, 28, 28), (64, 14, 14), (64, 7, 7), (64, 7, 7), (3136,)]
    assert vae.n_features == 3136 and vae.mu_head.in_features == 3136
    z = torch.randn(5, 1)
    h = z
    shapes = []
    for layer in vae.decoder:
        h = layer(h)
        if isinstance(layer, torch.nn.ConvTranspose2d | torch.nn.Unflatten):
            shapes.append(tuple(h.shape[1:]))
    assert shapes == [(64, 7, 7), (64, 7, 7), (64, 14, 14), (32, 28, 28), (1, 28, 28)]


@pytest.mark.parametrize("channels", [(32, 64, 64, 64), (8, 16, 16, 4)])
def test_the_vae_interface(channels):
    vae = ah.ConvVAE(latent_dim=3, channels=channels)
    x = torch.rand(4, 1, 28, 28)
    logits, mu, logvar = vae(x)
    assert logits.shape == x.shape and mu.shape == logvar.shape == (4, 3)
    probs = vae.decode(mu)
    assert torch.allclose(probs, torch.sigmoid(vae.decode(mu, logits=True)))
    assert 0 < probs.min() and probs.max() < 1
    assert vae.reconstruct(x).shape == x.shape and vae.sample(6).shape == (6, 1, 28, 28)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(vae(x, generator=g1).logits, vae(x, generator=g2).logits)   # z is sampled, repeatably
    assert not torch.equal(vae(x).logits, vae(x).logits)


def test_channels_last_gives_the_same_numbers():
    ah.set_seed(0)
    vae = ah.ConvVAE(latent_dim=2, channels=(8, 16, 16, 16))
    x = torch.rand(3, 1, 28, 28)
    mu, _ = vae.encode(x)
    fast = vae.to(memory_format=torch.channels_last)
    assert torch.allclose(fast.encode(x)[0], mu, atol=1e-5)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="latent_dim must be a positive int, got 0"):
        ah.ConvVAE(latent_dim=0)
    with pytest.raises(ValueError, match=r"channels \(c1, c2, c3, c4\) must be 4 positive ints, got \(32, 64\)"):
        ah.ConvVAE(channels=(32, 64))
    vae = ah.ConvVAE(latent_dim=2, channels=(4, 4, 4, 4))
    with pytest.raises(ValueError, match=r"ConvVAE expects images of shape \(batch, 1, 28, 28\), got \(2, 784\)"):
        vae.encode(torch.rand(2, 784))
    with pytest.raises(ValueError, match=r"codes of shape \(batch, 2\), got \(2, 3\)"):
        vae.decode(torch.rand(2, 3))


def test_it_learns_the_radius_of_circles():
    """Trained briefly on circles with a 1-D code, the code orders the images by radius."""
    train = ah.load_dataset("circles", "train", n=3_000, verbose=False)
    test = ah.load_dataset("circles", "test", n=500, verbose=False)
    ah.set_seed(0)
    vae = ah.ConvVAE(latent_dim=1, channels=(8, 16, 16, 16))
    objective = ah.vae_objective(recon="mse")
    before = ah.evaluate(vae, test, objective=objective)["total_loss"]
    history = ah.fit(vae, train, test, objective=objective, epochs=3, batch_size=32, progress=False, log=False,
                     device="cpu")
    assert history.last() < 0.5 * before
    baseline = mean_image_sq_error_per_image(train.images, test.images)          # one circle of average radius
    assert beats_mean_image(history.last("test", "recon_sq_error_per_image"), baseline, margin=0.25)
    assert int(ah.active_units(vae, test).sum()) == 1
    mu, _ = ah.encode(vae, test)
    rank = lambda v: v.argsort().argsort().float()                                      # noqa: E731
    spearman = torch.corrcoef(torch.stack([rank(mu[:, 0]), rank(test.labels)]))[0, 1]
    assert abs(float(spearman)) > 0.95


def test_fit_trains_convolutions_channels_last_on_the_cpu():
    conv, mlp = ah.ConvVAE(latent_dim=2, channels=(4, 4, 4, 4)), ah.MLPVAE(latent_dim=2, hidden=(8,))
    data = torch.rand(64, 1, 28, 28)
    for model in (conv, mlp):
        ah.fit(model, data, objective=ah.vae_objective(), epochs=1, device="cpu", progress=False, log=False)
    weight = conv.encoder[2].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert all(p.is_contiguous() for p in mlp.parameters())


def test_defaults_and_every_layer_of_the_architecture():
    vae = ah.ConvVAE()
    assert vae.latent_dim == 2 and vae.channels == (32, 64, 64, 64)
    slopes = [m.negative_slope for m in vae.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert slopes == [0.01] * 8                                    # 4 down, 1 after the decoder's linear layer, 3 up
    convs = [(m.kernel_size, m.stride, m.padding) for m in vae.encoder if isinstance(m, torch.nn.Conv2d)]
    assert convs == [((3, 3), (s, s), (1, 1)) for s in (1, 2, 2, 1)]          # 3x3, padding 1: only the stride shrinks
    ups = [(m.kernel_size, m.stride, m.padding, m.output_padding) for m in vae.decoder
           if isinstance(m, torch.nn.ConvTranspose2d)]
    assert ups == [((3, 3), (s, s), (1, 1), (p, p)) for s, p in ((1, 0), (2, 1), (2, 1), (1, 0))]
    assert [type(m).__name__ for m in vae.decoder] == ["Linear", "LeakyReLU", "Unflatten"] + [
        "ConvTranspose2d", "LeakyReLU"] * 3 + ["ConvTranspose2d"]
