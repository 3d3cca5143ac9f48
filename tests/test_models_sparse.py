"""Lesson 03: the sparsity penalties, the sparse objective, SparseAutoencoder and its plots."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.distributions import Bernoulli, kl_divergence  # noqa: E402

import autoenc_helpers as ah  # noqa: E402
from autoenc_helpers import losses, plots  # noqa: E402


def teardown_function():
    plt.close("all")


# ------------------------------------------------------------------ the penalties, against hand-computed values

def test_l1_penalty_by_hand():
    h = torch.tensor([[0.1, -0.5], [0.3, 0.7]])
    # image 1: |0.1| + |-0.5| = 0.6; image 2: 0.3 + 0.7 = 1.0; mean over the 2 images: 0.8
    assert ah.l1_activation_penalty(h).item() == pytest.approx(0.8, abs=1e-6)


def test_kl_penalty_by_hand():
    h = torch.tensor([[0.1, 0.5], [0.3, 0.7]])
    # rho_hat = mean over the batch = [(0.1 + 0.3) / 2, (0.5 + 0.7) / 2] = [0.2, 0.6]; rho = 0.1
    # unit 1: 0.1 * ln(0.1 / 0.2) + 0.9 * ln(0.9 / 0.8) = 0.1 * (-0.693147) + 0.9 * 0.117783 = 0.036690
    # unit 2: 0.1 * ln(0.1 / 0.6) + 0.9 * ln(0.9 / 0.4) = 0.1 * (-1.791759) + 0.9 * 0.810930 = 0.550661
    # sum over the units: 0.587351 nats
    assert ah.kl_sparsity_penalty(h, 0.1).item() == pytest.approx(0.587351, abs=1e-5)


def test_bernoulli_kl_matches_torch_distributions():
    rho_hat = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    for rho in (0.05, 0.3, 0.9):
        reference = kl_divergence(Bernoulli(probs=torch.full_like(rho_hat, rho)), Bernoulli(probs=rho_hat))
        torch.testing.assert_close(losses.bernoulli_kl(rho, rho_hat), reference)


def test_kl_is_zero_at_the_target_and_pulls_means_towards_it():
    assert ah.kl_sparsity_penalty(torch.full((8, 5), 0.05), 0.05).item() == pytest.approx(0.0, abs=1e-6)
    h = torch.tensor([[0.3, 0.01], [0.5, 0.01]], requires_grad=True)    # unit 1's mean above the target, 2's below
    ah.kl_sparsity_penalty(h, 0.05).backward()
    assert (h.grad[:, 0] > 0).all() and (h.grad[:, 1] < 0).all()        # gradient descent moves both towards 0.05


def test_kl_stays_finite_for_dead_and_saturated_units():
    h = torch.zeros(10, 3)
    h[:, 1] = 1.0
    value = ah.kl_sparsity_penalty(h, 0.05)
    assert math.isfinite(value.item()) and value.item() > 10


def test_kl_shape_near_silence_is_cheap_and_the_clamp_caps_it():
    def kl(m, eps=0):
        return losses.bernoulli_kl(0.05, torch.tensor(m, dtype=torch.float64), eps=eps).item()
    # 0.05 ln(0.05/0.01) + 0.95 ln(0.95/0.99) = 0.080472 - 0.039181 = 0.041291
    assert kl(0.01) == pytest.approx(0.041291, abs=1e-5)
    # 0.05 ln(0.05/0.2) + 0.95 ln(0.95/0.8) = -0.069315 + 0.163258 = 0.093943
    assert kl(0.2) == pytest.approx(0.093943, abs=1e-5)
    assert kl(0.01) < kl(0.2)
    # the exact KL grows without bound towards 0, slowly; the default clamp holds it at its value at 1e-6
    assert kl(1e-3) < kl(1e-6) < kl(1e-9) and math.isinf(kl(0.0))
    assert kl(0.0, eps=1e-6) == pytest.approx(kl(1e-6), rel=1e-9) == pytest.approx(0.4918, abs=1e-3)
    rho_hat = torch.tensor([1e-8, 1e-3], requires_grad=True)
    losses.bernoulli_kl(0.05, rho_hat).sum().backward()
    assert rho_hat.grad[0] == 0 and rho_hat.grad[1] < 0          # below eps: no push back; above: pushed up
    for eps in (-1e-6, 0.5, "1e-6", True):
        with pytest.raises(ValueError, match="eps must be"):
            losses.bernoulli_kl(0.05, rho_hat, eps=eps)


def test_kl_sees_only_the_mean_activation():
    spread = torch.full((20, 1), 0.05)                            # 0.05 on every image
    rare = torch.zeros(20, 1)
    rare[0] = 1.0                                                 # 1 on one image in 20, 0 on the others
    assert ah.kl_sparsity_penalty(spread, 0.05).item() == pytest.approx(0.0, abs=1e-6)
    assert ah.kl_sparsity_penalty(rare, 0.05).item() == pytest.approx(0.0, abs=1e-6)


def test_penalties_reject_bad_input():
    h = torch.rand(4, 6)
    for rho in (0, 1, 1.5, -0.1, True, "0.05"):
        with pytest.raises(ValueError, match=r"rho must be a finite number in \(0, 1\)"):
            ah.kl_sparsity_penalty(h, rho)
    with pytest.raises(ValueError, match=r"activations in \[0, 1\].*from 0.* to 2.*sigmoid"):
        ah.kl_sparsity_penalty(torch.tensor([[0.0, 2.0]]), 0.05)
    with pytest.raises(ValueError, match=r"from -0.5 to"):
        ah.kl_sparsity_penalty(torch.tensor([[-0.5, 0.2]]), 0.05)
    for penalty in (ah.l1_activation_penalty, ah.kl_sparsity_penalty):
        with pytest.raises(ValueError, match=r"\(batch, n_hidden\), got \(2, 1, 28, 28\)"):
            penalty(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"rho_hat must lie in \[0, 1\]"):
        losses.bernoulli_kl(0.1, torch.tensor([1.5]))


def test_sparsity_stats_by_hand():
    h = torch.tensor([[0.0, 0.5], [0.01, 0.2]])
    stats = ah.sparsity_stats(h, threshold=0.05)
    assert stats["mean_activation"] == pytest.approx((0.0 + 0.5 + 0.01 + 0.2) / 4)
    assert stats["near_zero_fraction"] == pytest.approx(2 / 4)        # 0.0 and 0.01 are below 0.05
    assert stats["active_units_per_image"] == pytest.approx(1.0)      # one unit per image is on
    assert stats["dead_unit_fraction"] == pytest.approx(1 / 2)        # unit 1 is off on both images
    assert stats["zero_fraction"] == pytest.approx(1 / 4)             # only the 0.0 is exactly zero
    assert stats["zero_unit_fraction"] == 0                           # unit 1 is 0.01 on image 2
    # unit 1's largest value is 0.01: 0.01 > 0.1 * 0.01 is on, 0.0 is not; unit 2's is 0.5: 0.5 and 0.2 are on
    assert stats["relative_active_units_per_image"] == pytest.approx((1 + 2) / 2)
    with pytest.raises(ValueError, match="threshold"):
        ah.sparsity_stats(h, threshold=0)
    for relative in (0, 1, 1.5):
        with pytest.raises(ValueError, match="relative must be"):
            ah.sparsity_stats(h, relative=relative)


def test_scale_free_stats_do_not_change_when_a_unit_is_rescaled():
    h = torch.relu(torch.randn(50, 8, generator=torch.Generator().manual_seed(0)))
    scaled = h * torch.tensor([1, 10, 0.1, 3, 1, 1, 100, 0.5])            # each unit by its own factor
    a, b = ah.sparsity_stats(h), ah.sparsity_stats(scaled)
    for key in ("zero_fraction", "zero_unit_fraction", "relative_active_units_per_image"):
        assert a[key] == pytest.approx(b[key]), key
    assert a["near_zero_fraction"] != pytest.approx(b["near_zero_fraction"])   # the fixed threshold is fooled


# ------------------------------------------------------------------ the objective

@pytest.mark.parametrize("penalty, name", [("kl", "kl_sparsity_nats"), ("l1", "l1_activation_per_image")])
def test_objective_keys_and_total(penalty, name):
    model = ah.SparseAutoencoder(n_hidden=32)
    x = torch.rand(6, 1, 28, 28)
    terms = ah.sparse_objective(penalty, weight=0.01)(model, x, x)
    assert list(terms) == ["total_loss", "mse_per_pixel", name]
    h = model.encode(x)
    expected = ah.kl_sparsity_penalty(h, 0.05) if penalty == "kl" else ah.l1_activation_penalty(h)
    assert terms[name].item() == pytest.approx(expected.item(), rel=1e-5)
    assert terms["mse_per_pixel"].item() == pytest.approx(ah.squared_error(model(x), x).item(), rel=1e-5)
    assert terms["total_loss"].item() == pytest.approx(terms["mse_per_pixel"].item() + 0.01 * expected.item(),
                                                       rel=1e-5)


def test_objective_declares_its_settings_for_the_checkpoint_cache():
    kl = ah.sparse_objective("kl", weight=1e-4)
    assert kl.settings == {"penalty": "kl", "weight": 1e-4, "rho": 0.05}
    assert ah.sparse_objective("kl", weight=1e-4, rho=0.2).settings["rho"] == 0.2
    assert ah.sparse_objective("l1", weight=3e-5).settings == {"penalty": "l1", "weight": 3e-5, "rho": None}
    assert kl.__qualname__ == "sparse_objective_kl"
    model = ah.SparseAutoencoder(n_hidden=16)
    images = torch.rand(8, 1, 28, 28)
    assert (ah.cache.settings_of(model, images, objective=kl)
            != ah.cache.settings_of(model, images, objective=ah.sparse_objective("kl", weight=1e-3)))


def test_objective_uses_rho_and_rejects_bad_arguments():
    model = ah.SparseAutoencoder(n_hidden=16)
    x = torch.rand(4, 1, 28, 28)
    low = ah.sparse_objective("kl", weight=1.0, rho=0.2)(model, x, x)["kl_sparsity_nats"]
    assert low.item() == pytest.approx(ah.kl_sparsity_penalty(model.encode(x), 0.2).item(), rel=1e-5)
    with pytest.raises(ValueError, match="penalty='l2'"):
        ah.sparse_objective("l2", weight=0.1)
    for weight in (-1, float("nan"), "0.1", None):
        with pytest.raises(ValueError, match=r"weight must be a finite number in \[0, inf\)"):
            ah.sparse_objective("kl", weight=weight)
    with pytest.raises(ValueError, match="rho=0.1 is the target of the KL penalty"):
        ah.sparse_objective("l1", weight=0.1, rho=0.1)
    with pytest.raises(ValueError, match="rho must be"):
        ah.sparse_objective("kl", weight=0.1, rho=2)


def test_kl_objective_on_relu_units_says_what_to_do():
    model = ah.SparseAutoencoder(n_hidden=64, activation="relu")
    with torch.no_grad():
        model.encoder[1].bias.fill_(2.0)                                   # every unit above 1
    x = torch.rand(4, 1, 28, 28)
    with pytest.raises(ValueError, match="Use sigmoid hidden units"):
        ah.sparse_objective("kl", weight=0.1)(model, x, x)


# ------------------------------------------------------------------ the model

@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_sparse_autoencoder_shapes_and_ranges(activation):
    model = ah.SparseAutoencoder(n_hidden=1024, activation=activation)
    x = torch.rand(5, 1, 28, 28)
    h = model.encode(x)
    assert h.shape == (5, 1024) and model.latent_dim == 1024
    assert model.decode(h).shape == (5, 1, 28, 28) and model(x).shape == (5, 1, 28, 28)
    assert h.min() >= 0 and (h.max() < 1 if activation == "sigmoid" else True)
    # 784 * 1024 weights + 1024 biases in, 1024 * 784 weights + 784 biases out
    assert ah.count_parameters(model) == 784 * 1024 + 1024 + 1024 * 784 + 784


def test_sparse_autoencoder_features_are_its_weights():
    model = ah.SparseAutoencoder(n_hidden=20)
    dec, enc = model.features(), model.features("encoder")
    assert dec.shape == enc.shape == (20, 1, 28, 28)
    torch.testing.assert_close(dec[3].flatten(), model.decoder[0].weight[:, 3])
    torch.testing.assert_close(enc[3].flatten(), model.encoder[1].weight[3])
    with pytest.raises(ValueError, match="part must be"):
        model.features("middle")


def test_unit_norm_decoder_holds_every_column_at_length_one_while_training():
    model = ah.SparseAutoencoder(n_hidden=48, activation="relu", unit_norm_decoder=True)
    x = torch.rand(16, 1, 28, 28)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)     # small steps: larger ones silence every unit
    for _ in range(5):
        optimizer.zero_grad()
        ah.sparse_objective("l1", weight=1e-3)(model, x, x)["total_loss"].backward()
        optimizer.step()
    torch.testing.assert_close(model.features().flatten(1).norm(dim=1), torch.ones(48))
    assert (model.encode(x) > 0).float().mean() > 0.1       # live units: the comparisons below see real activations
    # the free matrix V behind it is not of length 1: the constraint is doing the work
    assert not torch.allclose(model.decoder[0].weight.norm(dim=0), torch.ones(48), atol=1e-3)
    # it computes what a plain decoder with the columns V_j / ||V_j|| computes, gradients included
    plain = ah.SparseAutoencoder(n_hidden=48, activation="relu")
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        plain.decoder[0].weight.copy_(model.features().flatten(1).T)
    torch.testing.assert_close(plain(x), model(x))
    v = model.decoder[0].weight.detach().clone().requires_grad_(True)
    h = model.encode(x).detach()
    by_columns = torch.sigmoid(torch.nn.functional.linear(h, v / v.norm(dim=0), model.decoder[0].bias))
    by_columns.sum().backward()
    model.zero_grad()
    model.decode(h).sum().backward()
    torch.testing.assert_close(model.decoder[0].weight.grad, v.grad)
    assert ah.SparseAutoencoder(n_hidden=48).features().flatten(1).norm(dim=1).std() > 0   # off by default
    # the checkpoint cache keys the architecture by its printout: the two kinds must not share a checkpoint
    from autoenc_helpers.cache import settings_of
    torch.manual_seed(0)
    a = settings_of(ah.SparseAutoencoder(n_hidden=8), x)
    torch.manual_seed(0)
    b = settings_of(ah.SparseAutoencoder(n_hidden=8, unit_norm_decoder=True), x)
    assert a["initial_weights_sha256"] == b["initial_weights_sha256"] and a["architecture"] != b["architecture"]


def test_with_a_free_decoder_rescaling_beats_the_l1_penalty():
    # ReLU is positively homogeneous: encoder / c and decoder * c give the same output, a c-fold smaller L1
    model = ah.SparseAutoencoder(n_hidden=64, activation="relu")
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        h, out = model.encode(x), model(x)
        model.encoder[1].weight /= 10
        model.encoder[1].bias /= 10
        model.decoder[0].weight *= 10
        torch.testing.assert_close(model(x), out)
        assert ah.l1_activation_penalty(model.encode(x)).item() == pytest.approx(
            ah.l1_activation_penalty(h).item() / 10, rel=1e-5)


def test_sparse_autoencoder_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'tanh' is not one of"):
        ah.SparseAutoencoder(activation="tanh")
    with pytest.raises(ValueError, match="n_hidden must be a positive int"):
        ah.SparseAutoencoder(n_hidden=0)
    with pytest.raises(ValueError, match="unit_norm_decoder must be True or False"):
        ah.SparseAutoencoder(unit_norm_decoder="yes")
    model = ah.SparseAutoencoder(n_hidden=10)
    with pytest.raises(ValueError, match=r"\(batch, 1, 28, 28\), got \(3, 784\)"):
        model.encode(torch.rand(3, 784))
    with pytest.raises(ValueError, match=r"hidden activations of shape \(batch, 10\)"):
        model.decode(torch.rand(3, 11))


# ------------------------------------------------------------------ on real data: the penalties make the code sparse

FASHION_SIZES = (3_000, 1_000)          # the fashion fixture (tests/conftest.py): training and held-out images


@pytest.mark.parametrize("penalty, activation, weight, lr", [("kl", "sigmoid", 1e-3, 3e-3), ("l1", "relu", 1e-4, 1e-3)])
def test_penalty_really_sparsifies_on_fashion_mnist(fashion, penalty, activation, weight, lr):
    train, test = fashion
    stats = {}
    for w in (0.0, weight):
        ah.set_seed(0)
        model = ah.SparseAutoencoder(n_hidden=256, activation=activation)
        history = ah.fit(model, train, test, objective=ah.sparse_objective(penalty, weight=w), epochs=2, lr=lr,
                         device="cpu", progress=False, log=False)
        assert list(history.test)[0] == "total_loss"
        stats[w] = ah.sparsity_stats(ah.encode(model, test))
    plain, sparse = stats[0.0], stats[weight]
    assert sparse["mean_activation"] < 0.5 * plain["mean_activation"], (plain, sparse)
    assert sparse["near_zero_fraction"] > plain["near_zero_fraction"] + 0.2, (plain, sparse)


# ------------------------------------------------------------------ plots

def test_plot_features_scales_each_tile():
    weights = torch.stack([torch.full((784,), 0.001), torch.linspace(-5, 2, 784)])   # tiny and large weights
    fig = plots.plot_features(weights, n=2, nrow=2)
    grid = fig.axes[0].images[0].get_array()
    assert grid[:28, :28].max() == pytest.approx(1.0)                 # the tiny tile is shown at full strength
    assert grid[:28, 29:].min() == pytest.approx(-1.0) and grid[:28, 29:].max() == pytest.approx(0.4)
    with pytest.raises(ValueError, match="not 784"):
        plots.plot_features(torch.rand(3, 100))


def test_plot_twin_sweep_has_two_axes_and_checks_lengths():
    fig = plots.plot_twin_sweep([0, 1e-5, 1e-3], [0.005, 0.006, 0.012], [0.1, 0.5, 0.7], xlabel="weight",
                                left_label="mse_per_pixel", right_label="near-zero fraction", right_limits=(0, 1))
    assert len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "1e-05", "0.001"]
    assert fig.axes[1].get_ylim() == (0, 1)
    with pytest.raises(ValueError, match="same length"):
        plots.plot_twin_sweep([0, 1], [1.0], [2.0, 3.0], xlabel="x", left_label="a", right_label="b")


def test_activation_plots_draw_one_line_per_entry():
    h0, h1 = torch.rand(50, 30), torch.rand(50, 30) ** 4
    fig = plots.plot_activation_histogram({"no penalty": h0, "penalty": h1})
    assert len(fig.axes[0].patches) == 2
    fig = plots.plot_unit_means({"no penalty": h0.mean(0), "penalty": h1.mean(0)}, rho=0.05)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3 and list(lines[0].get_ydata()) == sorted(h0.mean(0).tolist(), reverse=True)


def test_sparse_autoencoder_defaults_to_1024_hidden_units():
    assert ah.SparseAutoencoder().n_hidden == 1024


def test_unit_norm_decoder_divides_each_activation_by_its_columns_length():
    torch.manual_seed(0)
    model = ah.SparseAutoencoder(n_hidden=6, activation="relu", output="none", unit_norm_decoder=True)
    with torch.no_grad():                                          # columns shorter and longer than 1
        model.decoder[0].weight *= torch.tensor([0.01, 0.02, 0.1, 1.0, 2.0, 10.0]) / model.decoder[0].weight.norm(dim=0)
    h = torch.rand(4, 6) + 0.5                                     # activations well away from 0
    plain = ah.SparseAutoencoder(n_hidden=6, activation="relu", output="none")
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        plain.decoder[0].weight /= plain.decoder[0].weight.norm(dim=0)   # each column V_j / ||V_j||
    torch.testing.assert_close(model.decode(h), plain.decode(h))
    assert (model.decode(h) - model.decode(2 * h)).abs().max() > 0.1   # the output does depend on h
