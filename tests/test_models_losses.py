import math

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
    with pytest.raises(ValueError, match="k must be an int from 1 to 5, got 6"):
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


# --- losses: exact behaviour and error messages (they kill mutants listed in tests/MUTATION.md) ---

def test_loss_errors_name_the_function_and_what_was_expected():
    with pytest.raises(ValueError, match=r"^reconstruction has shape \(2, 3\) but the target has \(2, 4\); "
                                         r"they must match$"):
        ah.squared_error(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"^logits have shape \(2, 3\) but the target has \(2, 4\); they must match$"):
        ah.losses.bce_with_logits(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"^bce_with_logits needs targets in \[0, 1\] .* from 0 to 1.5;"):
        ah.losses.bce_with_logits(torch.zeros(1, 2), torch.tensor([[0.0, 1.5]]))
    for fn in (ah.losses.l1_activation_penalty, ah.losses.kl_sparsity_penalty):
        name = fn.__name__
        with pytest.raises(ValueError, match=rf"^{name} expects hidden activations of shape \(batch, n_hidden\), "
                                             r"got \(3,\)$"):
            fn(torch.zeros(3))
        with pytest.raises(ValueError, match=rf"^{name} expects .* got list$"):
            fn([[0.1, 0.2]])
    for call, name in ((lambda: ah.losses.bernoulli_kl(1.5, 0.1), "bernoulli_kl"),
                       (lambda: ah.losses.kl_sparsity_penalty(torch.zeros(2, 3), 1.5), "kl_sparsity_penalty"),
                       (lambda: ah.losses.sparse_objective("kl", weight=1.0, rho=1.5), "sparse_objective")):
        with pytest.raises(ValueError, match=rf"^{name}: the target rate rho must be a finite number in \(0, 1\), "
                                             r"got 1.5$"):
            call()
    with pytest.raises(ValueError, match=r"Use sigmoid hidden units \(ReLU units can exceed 1\) or the L1 penalty\.$"):
        ah.losses.kl_sparsity_penalty(torch.full((2, 3), 2.0))


def test_bernoulli_kl_on_plain_numbers_empty_tensors_and_its_eps():
    kl = ah.losses.bernoulli_kl(0.05, 0.2)                                  # a Python number as rho_hat
    assert kl.dtype == torch.get_default_dtype()
    assert float(kl) == pytest.approx(0.05 * math.log(0.05 / 0.2) + 0.95 * math.log(0.95 / 0.8), rel=1e-5)
    assert ah.losses.bernoulli_kl(0.1, torch.zeros(0)).shape == (0,)         # nothing in, nothing out
    h = torch.zeros(4, 3)                                                   # never active: clamped to eps
    want = 3 * (0.05 * math.log(0.05 / 0.1) + 0.95 * math.log(0.95 / 0.9))
    assert float(ah.losses.kl_sparsity_penalty(h, 0.05, eps=0.1)) == pytest.approx(want, rel=1e-5)
    h = torch.rand(8, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ah.losses.kl_sparsity_penalty(h), ah.losses.kl_sparsity_penalty(h, 0.05))   # rho = 0.05


def test_sparse_objective_defaults_to_the_kl_penalty():
    objective = ah.losses.sparse_objective(weight=1.0)
    assert objective.__name__ == "sparse_objective_kl"


def test_gaussian_kl_names_what_is_not_a_tensor():
    with pytest.raises(TypeError, match=r"^gaussian_kl expects tensors mu and logvar, got Tensor and list$"):
        ah.losses.gaussian_kl(torch.zeros(2, 3), [[0.0] * 3] * 2)


def test_vae_objective_names_itself_records_its_settings_and_needs_a_tuple():
    objective = ah.vae_objective(recon="mse", reduction="mean", recon_factor=0.5, kl_weight=2, free_bits=0.1)
    assert objective.__name__ == objective.__qualname__ == "vae_objective"
    assert objective.settings == dict(recon="mse", reduction="mean", recon_factor=0.5, kl_weight=2.0,
                                      free_bits=0.1)

    class ListVAE(nn.Module):                       # three outputs, but in a list
        def forward(self, x):
            b = x.shape[0]
            return [torch.zeros_like(x), torch.zeros(b, 2), torch.zeros(b, 2)]
    with pytest.raises(TypeError, match=r"ListVAE returned list$"):
        ah.vae_objective()(ListVAE(), torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28))


class _FixedPosterior(nn.Module):
    """encode gives mu = 0, logvar = 0 (KL exactly 0) on dimension 0 and mu = 1 on dimension 1;
    it records the batch sizes it sees."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.batches = []

    def encode(self, x):
        self.batches.append(x.shape[0])
        mu = torch.zeros(x.shape[0], 2)
        mu[:, 1] = 1.0
        return mu, torch.zeros(x.shape[0], 2)


def test_active_units_threshold_is_strict_batches_as_asked_and_names_bad_thresholds():
    model, data = _FixedPosterior(), torch.rand(7, 1, 28, 28)
    assert ah.losses.active_units(model, data, threshold=0.0).tolist() == [False, True]   # KL 0 is not > 0
    assert ah.losses.active_units(model, data, threshold=0.5).tolist() == [False, False]  # KL of dim 1: 0.5 nats
    model.batches.clear()
    ah.losses.active_units(model, data, batch_size=3)
    assert model.batches == [3, 3, 1]
    with pytest.raises(ValueError, match=r"^threshold must be a finite number in \[0, inf\), got -1$"):
        ah.losses.active_units(model, data, threshold=-1)


def test_the_vae_measures_name_themselves_when_the_images_are_wrong():
    flat = torch.rand(2, 784)
    expected = r"^negative_elbo expects images of shape \(batch, 1, 28, 28\), got \(2, 784\)$"
    with pytest.raises(ValueError, match=expected):
        ah.negative_elbo(_FixedPosterior(), flat)
    with pytest.raises(ValueError, match=r"^kl_per_dimension expects images of shape"):
        ah.losses.active_units(_FixedPosterior(), flat)


# --- models: exact messages, bounds, architecture and devices (they kill mutants listed in tests/MUTATION.md) ---

@pytest.mark.parametrize("model, code", [
    (ah.MLPAutoencoder(latent_dim=3, hidden=(8,)), "codes of shape (batch, 3)"),
    (ah.ConvAutoencoder(channels=(4, 2)), "codes of shape (batch, 2, 2, 2)"),
    (ah.PCA(4), "codes of shape (batch, 4)"),
    (ah.SparseAutoencoder(n_hidden=6), "hidden activations of shape (batch, 6)"),
    (ah.MLPVAE(latent_dim=2, hidden=(8,)), "codes of shape (batch, 2)"),
    (ah.ConvVAE(latent_dim=2, channels=(2, 2, 2, 2)), "codes of shape (batch, 2)"),
], ids=["mlp", "conv", "pca", "sparse", "mlp_vae", "conv_vae"])
def test_shape_errors_start_with_the_models_name_and_say_what_was_expected(model, code):
    name = type(model).__name__
    with pytest.raises(ValueError) as info:
        model.encode(torch.rand(2, 784))
    assert str(info.value) == f"{name} expects images of shape (batch, 1, 28, 28), got (2, 784)"
    with pytest.raises(ValueError) as info:
        model.decode(torch.rand(2, 5))
    assert str(info.value) == f"{name}.decode expects {code}, got (2, 5)"


@pytest.mark.parametrize("make, message", [
    (lambda: ah.MLPAutoencoder(latent_dim=0), "latent_dim must be a positive int, got 0"),
    (lambda: ah.MLPAutoencoder(hidden=(8, 0)), "hidden must be one or more positive ints, got (8, 0)"),
    (lambda: ah.ConvAutoencoder(channels=(16, 8, 4)), "channels (c1, c2) must be 2 positive ints, got (16, 8, 4)"),
    (lambda: ah.PCA(0), "n_components must be a positive int, got 0"),
    (lambda: ah.PCA(785), "n_components must be an int in 1..784, got 785"),
])
def test_lesson_01_models_name_the_bad_argument(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message


def test_pca_keeps_up_to_all_784_components():
    assert ah.PCA(784).components.shape == (784, 784)


def _layers(sequential):
    """Each layer as (type, and for convolutions and pooling: channels, kernel, stride, padding)."""
    out = []
    for layer in sequential:
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            out.append((type(layer).__name__, layer.in_channels, layer.out_channels, layer.kernel_size[0],
                        layer.stride[0], layer.padding[0]))
        elif isinstance(layer, nn.MaxPool2d):
            out.append(("MaxPool2d", layer.kernel_size, layer.stride))
        else:
            out.append(type(layer).__name__)
    return out


def test_conv_autoencoder_is_the_drawn_architecture_with_its_output_activation():
    model = ah.ConvAutoencoder()
    assert _layers(model.encoder) == [("Conv2d", 1, 16, 3, 3, 1), "ReLU", ("MaxPool2d", 2, 2),
                                      ("Conv2d", 16, 8, 3, 2, 1), "ReLU", ("MaxPool2d", 2, 1)]
    assert _layers(model.decoder) == [("ConvTranspose2d", 8, 16, 3, 2, 0), "ReLU", ("ConvTranspose2d", 16, 8, 5, 3, 1),
                                      "ReLU", ("ConvTranspose2d", 8, 1, 2, 2, 1), "Sigmoid"]
    torch.manual_seed(0)
    z = 10 * torch.randn(64, 8, 2, 2)                              # large codes: without the activation, out of range
    out = model.decode(z)
    assert 0 < out.min() and out.max() < 1
    out = ah.ConvAutoencoder(output="tanh").decode(z)
    assert -1 < out.min() and out.max() < 1
    assert _layers(ah.ConvAutoencoder(output="none").decoder)[-1] == "Identity"


def test_model_device_and_batches_follow_the_models_device():
    # the meta device (shapes, no numbers) stands in for a GPU on a machine that has none
    assert ah.models.model_device(nn.Identity()) == torch.device("cpu")       # no parameters and no buffers
    assert ah.models.model_device(ah.PCA(2).to("meta")).type == "meta"        # PCA has buffers only
    assert ah.PCA(5).to("meta").first(3).mean.device.type == "meta"
    images, labels = torch.rand(5, 1, 28, 28), torch.arange(5)
    batches = list(ah.models.eval_batches(nn.Linear(1, 1).to("meta"), images, 2, labels))
    assert [tuple(x.shape) for x, _ in batches] == [(2, 1, 28, 28), (2, 1, 28, 28), (1, 1, 28, 28)]
    assert all(x.device.type == "meta" and y.device.type == "meta" for x, (y,) in batches)


def test_eval_batches_in_order_an_empty_set_only_when_asked_and_a_named_batch_size():
    model, images = nn.Linear(1, 1), torch.rand(5, 1, 28, 28)
    batches = list(ah.models.eval_batches(model, images, 2))
    assert torch.equal(torch.cat([x for x, _ in batches]), images) and all(given == () for _, given in batches)
    empty = torch.zeros(0, 1, 28, 28)
    assert list(ah.models.eval_batches(model, empty, 4)) == []
    (x, given), = ah.models.eval_batches(model, empty, 4, at_least_once=True)
    assert x.shape == (0, 1, 28, 28) and given == ()
    with pytest.raises(ValueError) as info:
        next(ah.models.eval_batches(model, images, 0))
    assert str(info.value) == "batch_size must be a positive int, got 0"
