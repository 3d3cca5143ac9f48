"""Widget callbacks, tested headlessly: set a control's value, check that what is shown changed."""

import numpy as np
import pytest
import torch

import autoenc_helpers as ah
from autoenc_helpers import widgets


@pytest.fixture(scope="module")
def trained():
    train = ah.load_dataset("fashion_mnist", "train", n=3_000, verbose=False)
    test = ah.load_dataset("fashion_mnist", "test", n=300, verbose=False)
    ah.set_seed(0)
    model = ah.MLPAutoencoder()
    ah.fit(model, train, epochs=2, progress=False, log=False, device="cpu")
    return model, test, ah.encode(model, test)


def test_decode_image_is_a_pure_function(trained):
    model, _, codes = trained
    model.train()
    rng = torch.get_rng_state()
    a = widgets.decode_image(model.decode, codes[0].tolist())
    assert a.shape == (28, 28) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    with torch.no_grad():
        assert np.allclose(a, model.decode(codes[:1])[0, 0].numpy(), atol=1e-6)   # exactly the decoder's image
    assert torch.equal(rng, torch.get_rng_state()) and model.training       # no random draw, no mode change
    assert not np.allclose(a, widgets.decode_image(model.decode, codes[1].tolist()))
    with pytest.raises(ValueError, match=r"\(1, 1, H, W\)"):
        widgets.decode_image(lambda z: z, [0.0, 1.0, 2.0])


def test_moving_a_slider_changes_the_image(trained):
    model, test, codes = trained
    explorer = widgets.LatentExplorer(model.decode, codes, images=test.images, labels=test.labels,
                                      classes=test.classes)
    assert len(explorer.sliders) == 3 and explorer.renders == 1
    before = explorer.image.copy()
    slider = explorer.sliders[1]
    slider.value = slider.max
    assert explorer.renders == 2
    assert np.abs(explorer.image - before).max() > 0.05
    assert explorer.code[1] == pytest.approx(slider.max)
    assert "gaps from the nearest real code" in explorer.readout.value


def test_reset_returns_to_an_images_encoding(trained):
    model, test, codes = trained
    explorer = widgets.LatentExplorer(model.decode, codes, images=test.images)
    explorer.sliders[0].value = explorer.sliders[0].min
    explorer.picker.value = 5
    explorer.reset_button.click()
    assert explorer.picker.value == 5 and explorer.shown == 5
    assert np.allclose(explorer.code, codes[5].numpy())
    assert [s.value for s in explorer.sliders] == pytest.approx(codes[5].tolist(), abs=1e-6)
    assert explorer.distance_in_gaps() == pytest.approx(0.0, abs=1e-6)
    assert np.allclose(explorer.image, widgets.decode_image(model.decode, codes[5].tolist()))


def test_far_codes_are_reported_far(trained):
    model, _, codes = trained
    explorer = widgets.LatentExplorer(model.decode, codes)
    explorer.set_code([s.max for s in explorer.sliders])
    assert explorer.distance_in_gaps() > 2
    assert "between real codes" in explorer.readout.value or "far from every" in explorer.readout.value


def test_large_codes_get_the_first_sliders_only():
    model = ah.MLPAutoencoder(latent_dim=20, hidden=(32,))
    codes = torch.randn(50, 20)
    explorer = widgets.LatentExplorer(model.decode, codes, max_sliders=4)
    assert len(explorer.sliders) == 4
    explorer.sliders[3].value = explorer.sliders[3].max
    assert explorer.code[3] == pytest.approx(explorer.sliders[3].max) and explorer.code.shape == (20,)


def test_bad_inputs_are_named():
    model = ah.MLPAutoencoder()
    with pytest.raises(ValueError, match=r"\(N, k\).*\(3,\)"):
        widgets.LatentExplorer(model.decode, torch.zeros(3))
    with pytest.raises(ValueError, match="2 images for 5 codes"):
        widgets.LatentExplorer(model.decode, torch.zeros(5, 3), images=torch.zeros(2, 1, 28, 28))
    explorer = widgets.LatentExplorer(model.decode, torch.randn(5, 3))
    with pytest.raises(ValueError, match="a code of 2 numbers for a 3-D code space"):
        explorer.set_code([0.0, 1.0])


def test_gaps_against_a_hand_made_grid():
    codes = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])   # a unit square: every gap is 1
    assert widgets.typical_gap(codes) == pytest.approx(1.0)
    points = torch.tensor([[0.0, 0.0], [0.5, 0.0], [4.0, 1.0]])
    assert widgets.gaps_to_nearest(points, codes).tolist() == pytest.approx([0.0, 0.5, 3.0])
    with pytest.raises(ValueError, match="at least 2 codes"):
        widgets.typical_gap(codes[:1])


def test_picking_without_reset_keeps_the_shown_image(trained):
    model, test, codes = trained
    explorer = widgets.LatentExplorer(model.decode, codes, images=test.images)
    explorer.picker.value = 7                       # chosen, not yet reset
    explorer.sliders[0].value = explorer.sliders[0].max
    assert explorer.shown == 0                      # the left panel still shows the image the code came from


# -- lessons 04-06: the VAE in the latent explorer, and the loss-factor slider -------------------

@pytest.fixture(scope="module")
def vaes():
    train = ah.load_dataset("fashion_mnist", "train", n=1_000, verbose=False)
    test = ah.load_dataset("fashion_mnist", "test", n=100, verbose=False)
    results = []
    for factor in (0.1, 1.0, 10.0):
        ah.set_seed(0)
        vae = ah.MLPVAE(latent_dim=4, hidden=(64,))
        h = ah.fit(vae, train, test, objective=ah.vae_objective(recon_factor=factor), epochs=1, device="cpu",
                   progress=False, log=False)
        results.append({"factor": factor, "model": vae, "recon": h.last("test", "recon_nats_per_image"),
                        "kl": h.last("test", "kl_nats_per_image")})
    return results, test


def test_latent_explorer_takes_a_vae(vaes):
    results, test = vaes
    vae = results[1]["model"]
    mu, _ = ah.encode(vae, test)                                       # the means are the codes
    explorer = widgets.LatentExplorer(vae.decode, mu, images=test.images, dims=[2, 0], limits=(-3, 3))
    assert [s.description for s in explorer.sliders] == ["z[2]", "z[0]"]
    assert all((s.min, s.max) == (-3, 3) for s in explorer.sliders)
    before = explorer.image.copy()
    assert np.allclose(before, widgets.decode_image(vae.decode, mu[0].tolist()))
    explorer.sliders[0].value = 3.0                                    # moves dimension 2
    assert explorer.code[2] == pytest.approx(3.0) and explorer.code[0] == pytest.approx(float(mu[0, 0]))
    assert not np.allclose(explorer.image, before) and 0 <= explorer.image.min() and explorer.image.max() <= 1
    explorer.reset(5)
    assert np.allclose(explorer.code, mu[5].numpy())
    assert [s.value for s in explorer.sliders] == pytest.approx(mu[5, [2, 0]].clamp(-3, 3).tolist(), abs=0.02)
    with pytest.raises(ValueError, match=r"dims must be distinct dimensions in 0..3, got \[4\]"):
        widgets.LatentExplorer(vae.decode, mu, dims=[4])
    with pytest.raises(ValueError, match=r"limits must be \(low, high\) with low < high, got \(3, -3\)"):
        widgets.LatentExplorer(vae.decode, mu, limits=(3, -3))


def test_factor_panels_is_a_pure_function(vaes):
    results, test = vaes
    noise = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    a = widgets.factor_panels(results[0]["model"], test.images[:5], noise)
    assert {k: v.shape for k, v in a.items()} == {"originals": (5, 28, 28), "reconstructions": (5, 28, 28),
                                                  "samples": (6, 28, 28)}
    assert all(v.dtype == np.float32 and 0 <= v.min() and v.max() <= 1 for v in a.values())
    model = results[0]["model"].train()
    rng = torch.get_rng_state()
    b = widgets.factor_panels(model, test.images[:5], noise)
    assert torch.equal(rng, torch.get_rng_state()) and model.training       # no draw of its own, mode restored
    with torch.no_grad():
        model.eval()
        mu, _ = model.encode(test.images[:5])
        assert np.allclose(b["reconstructions"], model.decode(mu)[:, 0].numpy(), atol=1e-6)   # decode(mu), no sampling
        assert np.allclose(b["samples"], model.decode(noise)[:, 0].numpy(), atol=1e-6)         # the given draws
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = widgets.factor_panels(results[2]["model"], test.images[:5], noise)
    assert np.array_equal(a["originals"], c["originals"]) and not np.allclose(a["samples"], c["samples"])


def test_loss_factor_slider_changes_what_is_shown(vaes):
    results, test = vaes
    explorer = widgets.LossFactorExplorer(results[::-1], test.images, n_images=6, n_samples=4)
    assert explorer.factors == [0.1, 1.0, 10.0] and explorer.slider.continuous_update is False
    assert explorer.current["factor"] == 1.0 and explorer.renders == 1   # starts nearest to factor 1
    before = {k: v.copy() for k, v in explorer.panels.items()}
    explorer.slider.value = 0                                            # the model trained with factor 0.1
    assert explorer.renders == 2 and explorer.current["factor"] == 0.1
    assert not np.allclose(explorer.panels["reconstructions"], before["reconstructions"])
    assert not np.allclose(explorer.panels["samples"], before["samples"])
    assert np.array_equal(explorer.panels["originals"], before["originals"])
    assert explorer.panels["reconstructions"].shape == (6, 28, 28) and explorer.panels["samples"].shape == (4, 28, 28)


@pytest.mark.parametrize("value, label", [(784, "784"), (1 / (1 / 784), "784"), (10, "10"), (1 / 0.3, "3.33"),
                                          (1.0, "1"), (1 / 3, "1/3"), (0.1, "1/10"), (1 / 784, "1/784"),
                                          (0.3, "0.3"), (0.0012755102, "1/784")])
def test_ratio_label_writes_beta_as_a_reader_would(value, label):
    assert widgets.ratio_label(value) == label


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_ratio_label_rejects_what_is_not_a_positive_number(bad):
    with pytest.raises(ValueError, match="ratio_label needs a positive finite number"):
        widgets.ratio_label(bad)


def test_loss_factor_slider_names_beta_and_plots_rates_on_a_log_axis(vaes):
    results, test = vaes
    collapsed = {**results[0], "factor": 1 / 784, "kl": 0.0}                 # a KL of 0 has no place on a log axis
    explorer = widgets.LossFactorExplorer([collapsed, *results], test.images, n_images=4, n_samples=4)
    assert [label for label, _ in explorer.slider.options] == ["784", "10", "1", "1/10"]   # beta = 1 / factor
    assert explorer.slider.label == "1" and explorer.slider.description.startswith("β")
    figure = explorer._figure(0)
    plane = figure.axes[2]
    assert plane.get_xscale() == "log" and "log scale" in plane.get_xlabel()
    xs = plane.lines[0].get_xdata()
    assert xs[0] == widgets.RATE_FLOOR and all(x > 0 for x in xs)          # drawn at the floor, not lost
    notes = [t.get_text() for t in plane.texts]
    assert notes[0] == "β 784 (KL < 0.01)" and notes[-1] == "β 1/10"
    assert plane.get_title().startswith("β = 784: rate 0.0")


def test_loss_factor_explorer_bad_results_are_named(vaes):
    results, test = vaes
    with pytest.raises(ValueError, match=r"results\[1\] lacks \['kl'\]"):
        widgets.LossFactorExplorer([results[0], {k: v for k, v in results[1].items() if k != "kl"}], test.images)
    with pytest.raises(ValueError, match=r"each factor must appear once, got \[0.1, 0.1\]"):
        widgets.LossFactorExplorer([results[0], results[0]], test.images)
    with pytest.raises(ValueError, match="results is empty"):
        widgets.LossFactorExplorer([], test.images)


def test_widgets_redraw_one_kept_figure_outside_pyplot(trained, vaes):
    import matplotlib.pyplot as plt

    model, test, codes = trained
    explorer = widgets.LatentExplorer(model.decode, codes, images=test.images)
    figure = explorer.figure
    explorer.sliders[0].value = explorer.sliders[0].max
    explorer.reset(3)
    assert explorer.figure is figure and explorer.renders == 3              # redrawn, not made again
    shown = [ax.images[0].get_array() for ax in figure.axes]
    assert np.allclose(shown[1], explorer.image) and np.allclose(shown[0], test.images[3, 0].numpy())

    noise = widgets.NoiseExplorer({"ae": model}, test.images, level=0.2)
    first = noise.figure.axes[0].get_title()
    noise.level.value = 0.8
    assert noise.figure.axes[0].get_title() != first                        # the MSE in the title follows

    results, vtest = vaes
    factor = widgets.LossFactorExplorer(results, vtest.images, n_images=4, n_samples=4)
    assert len(factor.pngs) == len(results) and all(png.data[:4] == b"\x89PNG" for png in factor.pngs)
    assert plt.get_fignums() == []                                          # pyplot holds none of them


# -- reliability: wrong arguments are named at construction ---------------------------------------------------------


def _ae():
    torch.manual_seed(0)
    return ah.MLPAutoencoder(latent_dim=2, hidden=(8,))


@pytest.mark.parametrize("kwargs, message", [
    (dict(codes=torch.zeros(0, 2)), "codes must be a non-empty"),
    (dict(images=np.zeros((10, 1, 28, 28), dtype=np.float32)), "images must be .* torch tensor.*torch.from_numpy"),
    (dict(labels=torch.arange(10) + 5, classes=[str(i) for i in range(10)]), "label 14 names no class"),
    (dict(labels=torch.arange(4)), "labels must be an \\(10,\\) tensor"),
    (dict(margin=-0.5), r"margin must be a finite number in \[0, inf\)"),
])
def test_latent_explorer_names_a_bad_argument(kwargs, message):
    arguments = {"codes": torch.randn(10, 2), **kwargs}
    with pytest.raises(ValueError, match=message):
        ah.widgets.LatentExplorer(_ae().decode, arguments.pop("codes"), **arguments)


@pytest.mark.parametrize("models, kwargs, message", [
    (lambda: ah.MLPVAE(latent_dim=2, hidden=(8,)), {}, "returned VAEOutput.*not a VAE"),
    (_ae, dict(max_levels={"masking": 1.5}), "max_levels\\['masking'\\] must be a finite number in \\[0, 1\\]"),
    (_ae, dict(max_levels={"blur": 0.5}), "names 'blur'"),
])
def test_noise_explorer_names_a_bad_argument(models, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ah.widgets.NoiseExplorer(models(), torch.rand(5, 1, 28, 28), **kwargs)


@pytest.mark.parametrize("model, kwargs, message", [
    (_ae, {}, "is a MLPAutoencoder, not a VAE"),
    (lambda: ah.MLPVAE(latent_dim=2, hidden=(8,)), dict(n_samples=0), "n_samples must be a positive int"),
])
def test_loss_factor_explorer_names_a_bad_argument(model, kwargs, message):
    results = [{"factor": 1.0, "model": model(), "recon": 1.0, "kl": 1.0}]
    with pytest.raises(ValueError, match=message):
        ah.widgets.LossFactorExplorer(results, torch.rand(5, 1, 28, 28), **kwargs)
