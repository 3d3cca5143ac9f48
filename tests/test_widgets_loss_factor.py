"""The loss-factor explorer of lesson 07: its defaults, what each panel of its figure shows, and its messages.

Headless and without training: tiny untrained VAEs stand in for the lesson's models, with made-up
rates and distortions (the widget draws what it is given; these tests check that it draws it faithfully).
"""

import re

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba

import autoenc_helpers as ah
from autoenc_helpers import widgets
from autoenc_helpers.plots import image_grid


def _images(n=10):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25   # no pixel at 0 or 1


def _results(kls=(30.0, 3.0, widgets.RATE_FLOOR, 0.0), factors=(10.0, 1.0, 0.1, 1 / 784)):
    torch.manual_seed(0)
    return [{"factor": f, "model": ah.MLPVAE(latent_dim=2, hidden=(16,)), "recon": 200.0 + 10 * i, "kl": kl}
            for i, (f, kl) in enumerate(zip(factors, kls))]


def test_loss_factor_explorer_defaults():
    explorer = widgets.LossFactorExplorer(_results(), _images())
    assert {k: v.shape for k, v in explorer.panels.items()} == {
        "originals": (8, 28, 28), "reconstructions": (8, 28, 28), "samples": (8, 28, 28)}   # 8 images, 8 samples
    plane = explorer._figure(0).axes[2]
    assert plane.get_xlabel() == "rate: KL (nats per image, log scale)"
    assert plane.get_ylabel() == "distortion: BCE (nats per image)"
    assert explorer.slider.description == "β (KL weight)"
    assert explorer.slider.style.description_width == "initial"               # the whole description, not cut


def test_loss_factor_figure_shows_the_models_panels_on_a_fixed_grey_scale():
    explorer = widgets.LossFactorExplorer(_results(), _images(), n_images=3, n_samples=4)
    for index in range(len(explorer.results)):
        figure, panels = explorer._figure(index), explorer.all_panels[index]
        pictures, samples, plane = figure.axes
        assert len(pictures.images) == 1 and len(samples.images) == 1 and not plane.images
        pair = np.concatenate([panels["originals"], panels["reconstructions"]])
        assert np.array_equal(pictures.images[0].get_array(), image_grid(pair, nrow=3))      # originals over recons
        assert np.array_equal(samples.images[0].get_array(), image_grid(panels["samples"], nrow=2))   # 2 x 2
        assert pictures.images[0].get_clim() == (0, 1) and samples.images[0].get_clim() == (0, 1)   # 0 is black
        assert [ax.get_title() for ax in (pictures, samples)] == ["held-out images (top) and reconstructions",
                                                                   "samples from the prior"]
        assert {ax.title.get_fontsize() for ax in figure.axes} == {9}


def test_loss_factor_plane_highlights_the_current_model_and_marks_only_a_kl_below_the_floor():
    explorer = widgets.LossFactorExplorer(_results(), _images(), n_images=2, n_samples=2)
    assert explorer.labels == ["784", "10", "1", "1/10"]
    plane = explorer._figure(1).axes[2]
    curve, = plane.lines
    assert to_rgba(curve.get_color()) == to_rgba("0.6")                       # every model: a grey curve
    current, = plane.collections
    assert [tuple(c) for c in current.get_facecolors()] == [to_rgba("C3")]     # the current one: red
    assert current.get_offsets().tolist() == [[widgets.RATE_FLOOR, 220.0]]    # beta 10's KL is RATE_FLOOR itself
    assert current.get_zorder() > max(curve.get_zorder(), plane.xaxis.get_zorder(), plane.yaxis.get_zorder())
    assert [t.get_text() for t in plane.get_legend().get_texts()] == ["β = 10"]
    assert [t.get_text() for t in plane.texts] == ["β 784 (KL < 0.01)", "β 10", "β 1", "β 1/10"]   # 0.01 is not < 0.01
    assert {t.get_fontsize() for t in plane.get_legend().get_texts()} == {7}
    assert {t.get_fontsize() for t in plane.get_xticklabels() + plane.get_yticklabels()} == {7}
    assert {plane.xaxis.label.get_fontsize(), plane.yaxis.label.get_fontsize()} == {8}


@pytest.mark.parametrize("change, message", [
    (dict(results=[]), "results is empty: train at least one model, one dict per loss factor"),
    (dict(results=[{"factor": 1.0, "model": torch.nn.Identity(), "recon": 1.0, "kl": 1.0}]),
     "results[0]['model'] is a Identity, not a VAE; the loss-factor explorer shows VAEs (encode gives mu and "
     "logvar, decode draws the prior's samples)"),
    (dict(n_images=0), "n_images must be a positive int, got 0"),
    (dict(factors=(0.0, 1.0)), "every factor must be positive (beta = 1 / factor), got [0.0, 1.0]"),
    (dict(images=torch.zeros(0, 1, 28, 28)), "images must be a non-empty (N, 1, 28, 28) tensor, got (0, 1, 28, 28)"),
])
def test_loss_factor_explorer_names_the_bad_value_and_what_was_expected(change, message):
    change = dict(change)
    results = change.pop("results", None)
    if results is None:
        results = _results(factors=change.pop("factors", (1.0, 10.0)), kls=(1.0, 1.0))
    images = change.pop("images", _images())
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        widgets.LossFactorExplorer(results, images, **change)
