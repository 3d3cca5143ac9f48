"""ConditionalExplorer (lesson 10): what its picture says, which control is which, the code it keeps, what it refuses.

Headless, with an untrained tiny conditional VAE: these tests read the widget's figure and controls, not the
quality of a model. tests/test_models_conditional.py tests the widget with a trained one.
"""

import re

import numpy as np
import pytest
import torch
from test_widgets_parts import assert_every_width_is_css

import autoenc_helpers as ah
from autoenc_helpers import widgets


def _cvae(latent_dim=2):
    torch.manual_seed(0)
    return ah.ConditionalVAE(latent_dim=latent_dim, hidden=(16,))


def test_the_title_names_the_class_and_the_code_drawn():
    """From the first picture on, the title says which class and which code the image is drawn from."""
    explorer = widgets.ConditionalExplorer(_cvae(), ah.data.FASHION_CLASSES, label=7)
    ax = explorer.figure.axes[0]
    assert ax.get_title() == "Sneaker\nz = (0.00, 0.00)"
    explorer.selector.value = 8
    explorer.sliders[1].value = -1.5
    assert ax.get_title() == "Bag\nz = (0.00, -1.50)"
    wide = widgets.ConditionalExplorer(_cvae(6), ah.data.FASHION_CLASSES, code=[0.5, -1, 2, 0.25, 3, 3])
    assert wide.figure.axes[0].get_title() == "T-shirt/top\nz = (0.50, -1.00, 2.00, 0.25, ...)"   # the first four


def test_each_slider_is_named_by_the_dimension_it_moves():
    explorer = widgets.ConditionalExplorer(_cvae(6), ah.data.FASHION_CLASSES, max_sliders=4)
    assert [s.description for s in explorer.sliders] == ["z[0]", "z[1]", "z[2]", "z[3]"]
    explorer.sliders[3].value = 2.0
    assert explorer.code.tolist() == [0, 0, 0, 2.0, 0, 0]           # z[3] moved, the others kept


@pytest.mark.parametrize("code", [None, [0, 1], np.array([0.0, 1.0])],
                         ids=["default", "a list of ints", "a float64 array"])
def test_the_code_is_float32_whatever_it_was_given_as(code):
    """The code the widget keeps (and reports) is float32, like the code the decoder gets. Given as whole numbers,
    it must still take a slider's fractional value: an integer code would round 2.5 down to 2."""
    model = _cvae()
    explorer = widgets.ConditionalExplorer(model, ah.data.FASHION_CLASSES, code=code)
    assert explorer.code.dtype == np.float32 and explorer.code.shape == (2,)
    explorer.sliders[0].value = 2.5
    assert explorer.code[0] == 2.5
    assert np.array_equal(explorer.image, widgets.conditional_image(model, [2.5, explorer.code[1]], 0))


def test_a_model_that_is_not_a_conditional_vae_is_named():
    """The TypeError says what is needed and names the type given, whichever attribute is missing."""
    for model, name in ((torch.nn.Linear(2, 2), "Linear"),                # no latent_dim, no n_classes
                        (ah.MLPVAE(latent_dim=2, hidden=(8,)), "MLPVAE")):  # a latent_dim, no n_classes
        with pytest.raises(TypeError, match=re.escape("ConditionalExplorer needs a conditional VAE with latent_dim, "
                                                      "n_classes and decode(z, y), like ah.models.ConditionalVAE; "
                                                      f"got {name}")):
            widgets.ConditionalExplorer(model, ah.data.FASHION_CLASSES)


@pytest.mark.parametrize("limits", [(2.0, 2.0), (3, -3)])
def test_limits_must_leave_the_sliders_a_range(limits):
    """low == high leaves a slider with no range (and a step of 0): refused like low > high."""
    with pytest.raises(ValueError, match=re.escape(f"limits must be (low, high) with low < high, got {limits!r}")):
        widgets.ConditionalExplorer(_cvae(), ah.data.FASHION_CLASSES, limits=limits)


def test_every_width_in_the_layout_is_valid_css():
    explorer = widgets.ConditionalExplorer(_cvae(), ah.data.FASHION_CLASSES)
    boxes = [explorer.widget, *explorer.widget.children, *explorer.widget.children[0].children]
    assert explorer.output in boxes and all(s in boxes for s in explorer.sliders) and explorer.selector in boxes
    assert_every_width_is_css(boxes)


def test_a_code_of_the_wrong_length_is_named():
    with pytest.raises(ValueError, match=re.escape("a code of 3 numbers for a 2-D code space")):
        widgets.ConditionalExplorer(_cvae(), ah.data.FASHION_CLASSES, code=[0.0, 1.0, 2.0])
