import pytest
import torch
from torch import nn

import autoenc_helpers as ah


@pytest.mark.parametrize("latent_dim, hidden", [(3, (128, 64, 12)), (2, (256, 128)), (64, (32,))])
@pytest.mark.parametrize("output", ["sigmoid", "tanh", "none"])
def test_mlp_shapes(latent_dim, hidden, output):
    model = ah.MLPAutoencoder(latent_dim=latent_dim, hidden=hidden, output=output)
    x = torch.rand(5, 1, 28, 28)
    z = model.encode(x)
    assert z.shape == (5, latent_dim)
    assert model.decode(z).shape == (5, 1, 28, 28)
    assert model(x).shape == (5, 1, 28, 28)


def test_output_activation_sets_the_range():
    x = torch.rand(64, 1, 28, 28)
    out = ah.MLPAutoencoder(output="sigmoid")(x)
    assert 0 < out.min() and out.max() < 1
    out = ah.MLPAutoencoder(output="tanh")(x)
    assert -1 < out.min() and out.max() < 1
    with pytest.raises(ValueError, match="'relu'.*sigmoid"):
        ah.MLPAutoencoder(output="relu")


def test_default_mlp_is_the_course_architecture():
    model = ah.MLPAutoencoder()
    widths = [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]
    assert widths == [128, 64, 12, 3, 12, 64, 128, 784]


def test_conv_autoencoder_shapes_match_seed_004():
    model = ah.ConvAutoencoder()
    h = torch.rand(2, 1, 28, 28)
    shapes = []
    for layer in (*model.encoder, *model.decoder):
        h = layer(h)
        if not isinstance(layer, (nn.ReLU, nn.Sigmoid)):
            shapes.append(tuple(h.shape[1:]))
    assert shapes == [(16, 10, 10), (16, 5, 5), (8, 3, 3), (8, 2, 2), (16, 5, 5), (8, 15, 15), (1, 28, 28)]
    assert model.latent_dim == 32


@pytest.mark.parametrize("channels", [(16, 8), (32, 4), (4, 16)])
def test_conv_shapes_for_other_widths(channels):
    model = ah.ConvAutoencoder(channels=channels)
    x = torch.rand(3, 1, 28, 28)
    assert model.encode(x).shape == (3, channels[1], 2, 2)
    assert model(x).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("model", [ah.MLPAutoencoder(), ah.ConvAutoencoder(), ah.PCA(4)], ids=type)
@pytest.mark.parametrize("shape", [(5, 784), (5, 28, 28), (5, 3, 28, 28), (5, 1, 32, 32)])
def test_wrong_image_shape_names_both_shapes(model, shape):
    with pytest.raises(ValueError) as info:
        model(torch.rand(shape))
    assert str(tuple(shape)) in str(info.value) and "(batch, 1, 28, 28)" in str(info.value)


def test_wrong_code_shape_and_type():
    with pytest.raises(ValueError, match=r"codes of shape \(batch, 3\), got \(4, 2\)"):
        ah.MLPAutoencoder().decode(torch.rand(4, 2))
    with pytest.raises(ValueError, match=r"\(batch, 8, 2, 2\), got \(4, 32\)"):
        ah.ConvAutoencoder().decode(torch.rand(4, 32))
    with pytest.raises(ValueError, match=r"codes of shape \(batch, 4\), got \(4, 3\)"):
        ah.PCA(4).decode(torch.rand(4, 3))
    with pytest.raises(TypeError, match="floating-point"):
        ah.MLPAutoencoder()(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(TypeError, match="ndarray"):
        ah.MLPAutoencoder()(torch.rand(2, 1, 28, 28).numpy())


def test_pca_matches_svd_reference():
    g = torch.Generator().manual_seed(0)
    # low-rank data plus noise, so the components are well separated
    x = (torch.rand(300, 6, generator=g) @ torch.rand(6, 784, generator=g) / 6
         + 0.01 * torch.rand(300, 784, generator=g)).view(300, 1, 28, 28)
    pca = ah.PCA(5).fit(x)
    flat = x.flatten(1)
    centred = flat - flat.mean(0)
    _, s, vh = torch.linalg.svd(centred.double(), full_matrices=False)
    reference = (centred.double() @ vh[:5].T @ vh[:5] + flat.mean(0).double()).float()
    assert torch.allclose(pca(x).flatten(1), reference, atol=1e-4)
    assert torch.allclose(pca.explained_variance.double(), s[:5] ** 2 / 299, rtol=1e-4)
    # nested: the first 3 of 5 components are the 3-component PCA
    assert torch.allclose(pca.first(3)(x), ah.PCA(3).fit(x)(x), atol=1e-4)
    with pytest.raises(ValueError, match="1..5"):
        pca.first(6)


def test_squared_error_reductions_by_hand():
    x = torch.zeros(2, 1, 28, 28)
    x_hat = torch.zeros(2, 1, 28, 28)
    x_hat[0, 0, 0, :4] = 1.0     # image 0: 4 pixels off by 1 -> sum 4
    x_hat[1, 0, 5, 5] = 0.5      # image 1: 1 pixel off by 0.5 -> sum 0.25
    se = ah.squared_error
    assert torch.allclose(se(x_hat, x, pixels="sum", batch="none"), torch.tensor([4.0, 0.25]))
    assert se(x_hat, x, pixels="sum", batch="sum").item() == pytest.approx(4.25)
    assert se(x_hat, x, pixels="sum", batch="mean").item() == pytest.approx(2.125)
    assert se(x_hat, x).item() == pytest.approx(2.125 / 784)
    assert se(x_hat, x).item() == pytest.approx(nn.MSELoss()(x_hat, x).item())
    assert se(x_hat, x, pixels="mean", batch="sum").item() == pytest.approx(4.25 / 784)


def test_squared_error_bad_input():
    with pytest.raises(ValueError, match=r"\(2, 1, 28, 28\).*\(3, 1, 28, 28\)"):
        ah.squared_error(torch.zeros(2, 1, 28, 28), torch.zeros(3, 1, 28, 28))
    with pytest.raises(ValueError, match="pixels='median'"):
        ah.squared_error(torch.zeros(1, 1, 28, 28), torch.zeros(1, 1, 28, 28), pixels="median")
    with pytest.raises(ValueError, match="batch='max'"):
        ah.squared_error(torch.zeros(1, 1, 28, 28), torch.zeros(1, 1, 28, 28), batch="max")


def test_mse_objective_names_its_unit():
    model = ah.MLPAutoencoder()
    x = torch.rand(4, 1, 28, 28)
    terms = ah.mse_objective(model, x, x)
    assert list(terms) == ["mse_per_pixel"]
    assert terms["mse_per_pixel"].item() == pytest.approx(nn.MSELoss()(model(x), x).item())


# -- reliability: bools are not sizes; PCA needs a covariance; noise levels are checked ------------------------


@pytest.mark.parametrize("make", [lambda: ah.MLPAutoencoder(latent_dim=True),
                                  lambda: ah.MLPAutoencoder(hidden=(8, False)),
                                  lambda: ah.ConvAutoencoder(channels=(True, 8)), lambda: ah.PCA(True),
                                  lambda: ah.MLPVAE(latent_dim=True), lambda: ah.ConvVAE(latent_dim=False),
                                  lambda: ah.SparseAutoencoder(n_hidden=True)])
def test_bools_are_not_sizes(make):
    with pytest.raises(ValueError, match="positive int"):
        make()


def test_pca_needs_two_images():
    with pytest.raises(ValueError, match="at least 2 images .* got 1"):
        ah.PCA(2).fit(torch.rand(1, 1, 28, 28))


@pytest.mark.parametrize("kind, level", [("gaussian", -1.0), ("masking", 1.5), ("salt_and_pepper", -0.1)])
def test_expected_mse_checks_the_level(kind, level):
    with pytest.raises(ValueError, match="must lie in"):
        ah.noise.expected_mse(torch.rand(2, 1, 28, 28), kind, level)
