"""LatentExplorer: its controls, the ranges of its sliders, its readout and its figure, headless and fast."""

import pytest
import torch
from test_widgets import _ae

from autoenc_helpers import widgets

# a unit square of real codes: every real code's nearest other one is 1 away, so the typical gap is 1
SQUARE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def test_the_sliders_span_the_real_codes_widened_by_a_quarter_in_200_steps():
    codes = torch.tensor([[0.0, -2.0], [4.0, 6.0], [1.0, 0.0]])           # spans 4 and 8
    explorer = widgets.LatentExplorer(_ae().decode, codes)
    assert [s.description for s in explorer.sliders] == ["z[0]", "z[1]"]
    assert [(s.min, s.max) for s in explorer.sliders] == [(-1.0, 5.0), (-4.0, 8.0)]   # default margin 0.25
    assert [s.step for s in explorer.sliders] == pytest.approx([6 / 200, 12 / 200])
    assert [s.value for s in explorer.sliders] == [0.0, -2.0]                 # at the first real code
    assert all(s.continuous_update is False for s in explorer.sliders)
    wide = widgets.LatentExplorer(_ae().decode, codes, limits=(-3, 3))
    assert [(s.min, s.max, s.step) for s in wide.sliders] == [(-3.0, 3.0, pytest.approx(0.03))] * 2


def test_the_controls_say_what_they_do_and_name_the_images():
    images = torch.rand(4, 1, 28, 28)
    classes = ["T-shirt", "Trouser", "Pullover"]
    explorer = widgets.LatentExplorer(_ae().decode, SQUARE, images=images, labels=torch.tensor([2, 0, 1, 2]),
                                      classes=classes)
    assert explorer.reset_button.description == "reset to this image's encoding"
    assert explorer.picker.description == "image"
    assert [name for name, _ in explorer.picker.options] == [
        "test image 0 (Pullover)", "test image 1 (T-shirt)", "test image 2 (Trouser)", "test image 3 (Pullover)"]
    # class names need both the labels and the classes; either alone names the images by number
    for kwargs in (dict(classes=classes), dict(labels=torch.tensor([2, 0, 1, 2]))):
        alone = widgets.LatentExplorer(_ae().decode, SQUARE, images=images, n_choices=2, **kwargs)
        assert alone.picker.options == (("test image 0", 0), ("test image 1", 1))


def test_the_controls_column_has_a_fixed_width_so_the_figure_does_not_jump():
    explorer = widgets.LatentExplorer(_ae().decode, SQUARE, images=torch.rand(4, 1, 28, 28))
    controls, output = explorer.widget.children
    parts = [controls, output, *controls.children]
    assert explorer.readout in parts and explorer.reset_button in parts and explorer.picker in parts
    assert all(isinstance(p.layout.width, str) and p.layout.width.lower().endswith("px") for p in parts), \
        [(type(p).__name__, p.layout.width) for p in parts]


@pytest.mark.parametrize("code, readout", [
    ([0.0, 0.0], "<b>0.0</b> gaps from the nearest real code (near real codes)"),
    ([0.0, 2.9], "<b>1.9</b> gaps from the nearest real code (near real codes)"),
    ([0.0, 3.0], "<b>2.0</b> gaps from the nearest real code (between real codes)"),
    ([0.0, 5.9], "<b>4.9</b> gaps from the nearest real code (between real codes)"),
    ([0.0, 6.0], "<b>5.0</b> gaps from the nearest real code (far from every real code)"),
])
def test_the_readout_counts_gaps_to_the_nearest_real_code(code, readout):
    explorer = widgets.LatentExplorer(_ae().decode, SQUARE)
    explorer.set_code(code)
    assert explorer.readout.value == readout


def test_the_panels_are_titled_and_the_figure_is_small():
    images = torch.rand(4, 1, 28, 28)
    explorer = widgets.LatentExplorer(_ae().decode, SQUARE, images=images)
    assert [ax.get_title() for ax in explorer.figure.axes] == ["chosen image", "decoded code"]
    assert tuple(explorer.figure.get_size_inches()) == pytest.approx((3.4, 1.9))   # 1.7 inches per panel
    alone = widgets.LatentExplorer(_ae().decode, SQUARE)
    assert [ax.get_title() for ax in alone.figure.axes] == ["decoded code"]
    assert tuple(alone.figure.get_size_inches()) == pytest.approx((1.7, 1.9))


def test_limits_must_have_low_below_high():
    with pytest.raises(ValueError, match=r"limits must be \(low, high\) with low < high, got \(1, 1\)"):
        widgets.LatentExplorer(_ae().decode, SQUARE, limits=(1, 1))


def test_it_decodes_on_the_codes_device_whatever_torchs_default_device():
    """A learner who set torch's default device (``torch.set_default_device("cuda")``) still gets the codes'
    device for the decoder's input; "meta" stands in for the GPU here: a meta tensor holds no numbers."""
    seen = []

    def decode(z):
        seen.append(z.device)
        return torch.zeros(1, 1, 28, 28, device=z.device) + z.sum()

    with torch.device("meta"):
        explorer = widgets.LatentExplorer(decode, SQUARE)
        explorer.set_code([0.5, 0.0])
    assert seen == [torch.device("cpu")] * 2
    assert explorer.image[0, 0] == pytest.approx(0.5) and explorer.readout.value.startswith("<b>0.5</b>")

