"""What every widget *shows*, not only the state it keeps: headless, so it runs wherever the tests run.

Each widget redraws by handing a picture to ``widgets._redraw`` (a kept matplotlib figure, or a PNG
made ahead of time). These tests record every picture handed over and check, after each control
change, that (1) a new picture was shown, (2) it differs from the one before, and (3) it shows the
state the widget reports (the figure's image data are the widget's current panels). A redraw that
shows nothing, or a kept figure whose images are never updated, fails here.
"""

import numpy as np
import pytest
import torch
from IPython.core.pylabtools import print_figure
from matplotlib.figure import Figure

import autoenc_helpers as ah
from autoenc_helpers import widgets


class Shown:
    """The pictures a widget handed to its output, in order: PNG bytes, and the image arrays of a figure."""

    def __init__(self):
        self.pngs: list[bytes] = []
        self.arrays: list[list[np.ndarray] | None] = []

    def record(self, output, shown):
        if isinstance(shown, Figure):
            self.pngs.append(print_figure(shown, "png"))
            self.arrays.append([np.asarray(im.get_array()) for ax in shown.axes for im in ax.images])
        else:                                                     # a ready PNG (IPython Image)
            self.pngs.append(bytes(shown.data))
            self.arrays.append(None)

    def changed(self, before: int) -> bool:
        """A new picture since ``before`` pictures, different from the last one before it."""
        return len(self.pngs) > before and self.pngs[-1] != self.pngs[before - 1]


@pytest.fixture
def shown(monkeypatch):
    recorder = Shown()
    real = widgets._redraw

    def redraw(output, picture):
        recorder.record(output, picture)
        real(output, picture)

    monkeypatch.setattr(widgets, "_redraw", redraw)
    return recorder


@pytest.fixture(scope="module")
def images():
    return ah.load_dataset("fashion_mnist", "test", n=30, verbose=False)


def _same(a, b):
    return np.allclose(np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32), atol=1e-6)


def test_latent_explorer_shows_the_decoded_current_code(shown, images):
    torch.manual_seed(0)
    model = ah.MLPAutoencoder(latent_dim=3, hidden=(32,))
    codes = ah.encode(model, images)
    explorer = widgets.LatentExplorer(model.decode, codes, images=images.images, labels=images.labels,
                                      classes=images.classes)
    assert len(shown.pngs) == 1
    for step, slider in enumerate(explorer.sliders):
        before = len(shown.pngs)
        slider.value = slider.max if step % 2 == 0 else slider.min
        assert shown.changed(before), f"moving slider {step} showed no new picture"
        assert _same(shown.arrays[-1][-1], explorer.image), "the figure does not show the widget's image"
        assert _same(explorer.image, widgets.decode_image(model.decode, explorer.code))
    before = len(shown.pngs)
    explorer.picker.value = 5
    explorer.reset_button.click()
    assert shown.changed(before)
    assert np.allclose(explorer.code, codes[5].numpy(), atol=1e-6)
    assert _same(shown.arrays[-1][-1], widgets.decode_image(model.decode, codes[5].tolist()))


def test_noise_explorer_shows_its_panels_for_every_control(shown, images):
    torch.manual_seed(0)
    models = {"denoiser": ah.MLPAutoencoder(latent_dim=8, hidden=(32,)), "nothing": torch.nn.Identity()}
    explorer = widgets.NoiseExplorer(models, images.images, kind="gaussian", level=0.2)
    for change in (lambda: setattr(explorer.level, "value", 0.6), lambda: setattr(explorer.kind, "value", "masking"),
                   lambda: setattr(explorer.picker, "value", 3)):
        before = len(shown.pngs)
        change()
        assert shown.changed(before)
        assert all(_same(a, b) for a, b in zip(shown.arrays[-1], explorer.panels.values())), (
            "the figure's images are not the widget's panels")
    assert _same(explorer.panels["clean"], images.images[3, 0].numpy())


def test_loss_factor_explorer_shows_the_picture_of_the_chosen_model(shown, images):
    torch.manual_seed(0)
    results = [{"factor": f, "model": ah.MLPVAE(latent_dim=2, hidden=(16,)), "recon": 200.0 / f, "kl": 3.0 * f}
               for f in (0.5, 1.0, 2.0)]
    explorer = widgets.LossFactorExplorer(results, images.images, n_images=4, n_samples=4)
    for index in (0, 2, 1):
        before = len(shown.pngs)
        explorer.slider.value = index
        assert shown.changed(before)
        assert shown.pngs[-1] == bytes(explorer.pngs[explorer.index].data)
        assert explorer.current is explorer.results[index] and explorer.panels is explorer.all_panels[index]
    assert len(set(shown.pngs)) == 3, "each model's position shows its own picture"


def test_conditional_explorer_shows_the_chosen_class_and_code(shown):
    torch.manual_seed(0)
    model = ah.ConditionalVAE(latent_dim=2, hidden=(16,))
    explorer = widgets.ConditionalExplorer(model, [str(i) for i in range(10)])
    for change in (lambda: setattr(explorer.selector, "value", 7), lambda: setattr(explorer.sliders[0], "value", 2.5),
                   lambda: setattr(explorer.sliders[1], "value", -2.0)):
        before = len(shown.pngs)
        change()
        assert shown.changed(before)
        assert _same(shown.arrays[-1][0], explorer.image)
        assert _same(explorer.image, widgets.conditional_image(model, explorer.code, explorer.label))


def test_code_grid_explorer_shows_the_edited_grid(shown, images):
    torch.manual_seed(0)
    model = ah.vq.VQVAE(n_codes=8, code_dim=2, channels=(4, 8, 8, 8))
    explorer = widgets.CodeGridExplorer(model, images.images, labels=images.labels, classes=images.classes)
    changes = (lambda: setattr(explorer.entry, "value", (explorer.entry.value + 3) % 8),
               lambda: setattr(explorer.row, "value", 5),
               lambda: setattr(explorer.entry, "value", (explorer.entry.value + 5) % 8),
               lambda: explorer.reset_button.click(),
               lambda: setattr(explorer.picker, "value", 2))
    for change in changes:
        before = len(shown.pngs)
        change()
        assert shown.changed(before)
        panels = widgets.code_grid_panels(model, explorer.grid, explorer.edited)
        assert any(a.shape == panels["edited"].shape and _same(a, panels["edited"]) for a in shown.arrays[-1]), \
            "the edited image is the one shown"
    assert torch.equal(explorer.edited, explorer.grids[2])          # a new image starts with its own grid


def test_a_redraw_that_shows_nothing_is_caught(monkeypatch, shown, images):
    """The check itself: a widget whose figure keeps its first image fails the assertions above."""
    torch.manual_seed(0)
    model = ah.MLPAutoencoder(latent_dim=2, hidden=(16,))
    codes = ah.encode(model, images)
    explorer = widgets.LatentExplorer(model.decode, codes)
    monkeypatch.setattr(explorer, "figure", explorer.figure)
    first = shown.arrays[-1][-1].copy()
    for ax in explorer.figure.axes:                  # break it: the image artist ignores new data
        monkeypatch.setattr(ax.images[0], "set_data", lambda data: None)
    explorer.sliders[0].value = explorer.sliders[0].max
    assert _same(shown.arrays[-1][-1], first) and not _same(shown.arrays[-1][-1], explorer.image)
