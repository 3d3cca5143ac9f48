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
    a = widgets.decode_image(model.decode, codes[0].tolist())
    assert a.shape == (28, 28) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert np.array_equal(a, widgets.decode_image(model.decode, codes[0].tolist()))
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
