"""The parts every widget shares: the PNG it sends, the distances of its readout, its checks of the arguments."""

import re

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from test_widgets import _ae

import autoenc_helpers as ah
from autoenc_helpers import widgets


def assert_every_width_is_css(boxes):
    """The browser silently drops a width that is not a CSS length (the control then takes its default size):
    every width a widget sets must be one (or unset, the default)."""
    for box in boxes:
        width = box.layout.width
        assert width is None or re.fullmatch(r"\d+(\.\d+)?(px|%|em|rem|vw)", width, re.IGNORECASE), (box, width)


def test_the_picture_sent_is_a_png_whatever_the_users_savefig_format():
    """A learner whose matplotlibrc saves figures as SVG or PDF still gets PNG pictures in the widgets."""
    figure = Figure(figsize=(1, 1))
    figure.subplots().plot([0, 1])
    for fmt in ("svg", "pdf", "png"):
        with matplotlib.rc_context({"savefig.format": fmt}):
            assert widgets._png(figure).data[:8] == b"\x89PNG\r\n\x1a\n", fmt


def test_a_real_code_is_exactly_zero_gaps_from_the_real_codes():
    """The matrix-product formula of the distance is off by about 1e-3 for a point and itself; the readout's is not."""
    codes = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    assert widgets.gaps_to_nearest(codes, codes).max().item() == 0.0
    assert widgets.gaps_to_nearest(codes + 10, codes + 10).max().item() == 0.0


def test_the_typical_gap_of_two_codes_is_their_distance():
    assert widgets.typical_gap(torch.tensor([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)
    explorer = widgets.LatentExplorer(_ae().decode, torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    assert explorer.gap == pytest.approx(5.0)


def test_a_numpy_batch_gets_the_whole_message():
    with pytest.raises(ValueError) as error:
        widgets.LatentExplorer(_ae().decode, torch.zeros(3, 2), images=np.zeros((3, 1, 28, 28), np.float32))
    assert str(error.value) == ("images must be a non-empty (N, 1, 28, 28) torch tensor, got ndarray "
                                "(a numpy array: torch.from_numpy(...) makes it a tensor)")
    with pytest.raises(ValueError) as error:
        ah.widgets.CodeGridExplorer(ah.vq.VQVAE(n_codes=4, code_dim=2, channels=(4, 4, 4, 4)), [0.0, 1.0])
    assert str(error.value) == "images must be a non-empty (N, 1, 28, 28) torch tensor, got list"


@pytest.mark.parametrize("labels, message", [
    ([0, 1, 2], "labels must be an (3,) tensor, one per image, got list"),
    (torch.tensor([0, 1]), "labels must be an (3,) tensor, one per image, got (2,)"),
    (torch.tensor([0, 3, 1]), "label 3 names no class: there are 3 classes, 0..2"),   # one past the last
    (torch.tensor([0, -1, 2]), "label -1 names no class: there are 3 classes, 0..2"),  # below the first
    (torch.tensor([-1, 1, 7]), "label 7 names no class: there are 3 classes, 0..2"),
])
def test_bad_labels_are_named_with_what_was_expected(labels, message):
    with pytest.raises(ValueError) as error:
        widgets.LatentExplorer(_ae().decode, torch.randn(3, 2), labels=labels, classes=["a", "b", "c"])
    assert str(error.value) == message


def test_a_picture_is_drawn_on_the_fixed_grey_scale_of_0_to_1():
    """0 is black and 1 white in every picture: a faint image (values 0.2 to 0.6) stays faint, not stretched to
    full contrast, so two pictures side by side can be compared by their greys."""
    fig = Figure()
    ax = fig.subplots()
    widgets._picture(ax, np.linspace(0.2, 0.6, 28 * 28).reshape(28, 28), "faint")
    assert ax.images[0].get_clim() == (0, 1) and ax.images[0].get_cmap().name == "gray"
    assert ax.get_title() == "faint" and ax.title.get_fontsize() == 8
