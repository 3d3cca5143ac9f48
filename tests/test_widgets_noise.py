"""The noise explorer of lesson 02: its controls, what its figure says, and how it names a bad argument.

Headless and without training: a tiny untrained autoencoder stands in for the lesson's models (the
widget shows whatever a model returns; these tests check what it shows and says about it).
"""

import re

import numpy as np
import pytest
import torch

from autoenc_helpers import widgets
from autoenc_helpers.losses import psnr_db
from autoenc_helpers.noise import LEVEL_NAMES, corrupt
from test_widgets import _ae


def _images(n=6):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_noise_explorer_controls_start_where_the_lesson_says():
    explorer = widgets.NoiseExplorer(_ae(), _images())
    assert explorer.kind.description == "noise type"
    assert list(explorer.kind.options) == [("gaussian", "gaussian"), ("masking", "masking"),
                                           ("salt-and-pepper", "salt_and_pepper")]   # as a reader writes them
    assert explorer.kind.value == "gaussian"
    assert (explorer.level.value, explorer.level.min, explorer.level.max) == (0.3, 0.0, 1.0)
    assert explorer.level.description == LEVEL_NAMES["gaussian"] == "sigma"
    assert explorer.level.continuous_update is False


def test_noise_explorer_starts_with_the_kind_it_is_given():
    images = _images()
    explorer = widgets.NoiseExplorer({"ae": _ae()}, images, kind="masking", level=0.5)
    assert explorer.kind.value == "masking" and explorer.level.description == "p"
    clean = images[:1]
    expected = corrupt(clean, "masking", 0.5, generator=torch.Generator().manual_seed(0))[0, 0].clamp(0, 1)
    assert np.array_equal(explorer.panels["corrupted"], expected.numpy())     # masked, not Gaussian noise


def test_noise_explorer_titles_give_each_panels_error_and_keep_their_size():
    explorer = widgets.NoiseExplorer({"ae": _ae(), "nothing": torch.nn.Identity()}, _images(), level=0.4)

    def expected_titles():
        clean = explorer.panels["clean"]
        titles = []
        for name, panel in explorer.panels.items():
            mse = float(((panel - clean) ** 2).mean())
            titles.append(name if name == "clean" else f"{name}\nMSE {mse:.4f} · {psnr_db(mse):.1f} dB")
        return titles

    figure = explorer.figure
    assert list(explorer.panels) == ["corrupted", "ae", "nothing", "clean"]
    assert [ax.get_title() for ax in figure.axes] == expected_titles()
    assert figure.axes[-1].get_title() == "clean"                # no error of the clean image against itself
    assert tuple(figure.get_size_inches()) == pytest.approx((1.9 * 4, 2.2))   # 1.9 in per panel, one row
    assert {ax.title.get_fontsize() for ax in figure.axes} == {8}
    explorer.level.value = 0.8                                                # a redraw swaps the titles in place
    assert explorer.figure is figure
    assert [ax.get_title() for ax in figure.axes] == expected_titles()
    assert {ax.title.get_fontsize() for ax in figure.axes} == {8}             # the same size as the first drawing


@pytest.mark.parametrize("kwargs, message", [
    (dict(models=torch.nn.Flatten()),
     "models['denoised'] returned shape (1, 784); the noise explorer needs models whose output is the denoised "
     "image, (1, 1, 28, 28) for one image (a plain or denoising autoencoder, not a VAE)"),
    (dict(max_levels={"gaussian": 0.0}), "max_levels['gaussian'] must be above 0, got 0.0"),
    (dict(kind="blur"), "kind 'blur' is not one of ('gaussian', 'masking', 'salt_and_pepper')"),
    (dict(kind="masking", max_levels={"gaussian": 2.0}), "kind 'masking' is not one of ('gaussian',)"),
])
def test_noise_explorer_names_the_bad_value_and_what_was_expected(kwargs, message):
    arguments = {"models": _ae(), **kwargs}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        widgets.NoiseExplorer(arguments.pop("models"), _images(), **arguments)
