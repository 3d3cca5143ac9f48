"""CodeGridExplorer (lesson 11): which control is which, what each panel of its figure shows, what it refuses.

Headless, with an untrained tiny VQ-VAE: these tests read the widget's figure and controls, not the quality of a
model. Lesson 11 tells the learner: pick a position (row and column; "the red square"), move the **code** slider,
and the right panel shows what changed "with the position's 4x4 pixel block outlined in cyan"; a button undoes
the edits. tests/test_vq.py tests the widget with a trained VQ-VAE.
"""

import re

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba

import autoenc_helpers as ah
from autoenc_helpers import widgets
from test_widgets_display import images  # noqa: F401  (the fixture: 30 Fashion-MNIST test images)
from test_widgets_parts import assert_every_width_is_css


def _vq(n_codes=8):
    torch.manual_seed(0)
    return ah.vq.VQVAE(n_codes=n_codes, code_dim=2, channels=(4, 8, 8, 8))


def test_the_controls_are_the_ones_the_lesson_names(images):  # noqa: F811
    explorer = widgets.CodeGridExplorer(_vq(), images.images, labels=images.labels, classes=images.classes)
    assert explorer.picker.description == "image"
    assert [(s.description, s.min, s.max) for s in (explorer.row, explorer.col, explorer.entry)] == [
        ("row", 0, 6), ("column", 0, 6), ("code", 0, 7)]
    assert explorer.reset_button.description == "undo every edit"
    # by default the picker offers the first 20 images, each named by its number and class
    assert len(explorer.picker.options) == 20 and explorer.grids.shape == (20, 7, 7)
    assert explorer.picker.options[0] == (f"test image 0 ({images.classes[int(images.labels[0])]})", 0)
    assert len(widgets.CodeGridExplorer(_vq(), images.images, n_choices=5).picker.options) == 5


def test_every_panel_is_titled_from_the_first_picture_on(images):  # noqa: F811
    explorer = widgets.CodeGridExplorer(_vq(), images.images)
    code = int(explorer.grid[3, 3])
    assert [ax.get_title() for ax in explorer.figure.axes] == [
        "code grid of image 0 (0 edited)", "decoded from its own code", f"edited: (3, 3) = {code}",
        "change (largest 0.00)"]
    explorer.entry.value = (code + 1) % 8
    largest = explorer.panels["change"].max()
    assert [ax.get_title() for ax in explorer.figure.axes] == [
        "code grid of image 0 (1 edited)", "decoded from its own code", f"edited: (3, 3) = {(code + 1) % 8}",
        f"change (largest {largest:.2f})"]
    # a redraw sets each title again: at the same small size, not matplotlib's default title size
    assert [ax.title.get_fontsize() for ax in explorer.figure.axes] == [8] * 4


def test_the_four_panels_fill_the_figure(images):  # noqa: F811
    """The pictures are as large as the 7.4-inch figure allows: the layout leaves only a thin margin (about 0.1
    of an inch each side; a wider padding shrinks every picture by a tenth)."""
    explorer = widgets.CodeGridExplorer(_vq(), images.images[:2])
    boxes = [ax.get_position() for ax in explorer.figure.axes]
    assert boxes[-1].x1 - boxes[0].x0 > 0.97, [b.bounds for b in boxes]


def test_the_readout_names_the_code_before_and_after_the_edit(images):  # noqa: F811
    explorer = widgets.CodeGridExplorer(_vq(), images.images[:2])
    was = int(explorer.grid[2, 5])
    explorer.set_code(2, 5, was)                                     # the position's own code: no edit
    assert explorer.readout.value == f"position (2, 5): code <b>{was}</b> in the image's own grid; 0 position(s) edited"
    now = (was + 3) % 8
    explorer.set_code(2, 5, now)
    assert explorer.readout.value == (f"position (2, 5): code <b>{was}</b> in the image's own grid, <b>{now}</b> now; "
                                      "1 position(s) edited")


def test_set_code_takes_every_codebook_entry_and_refuses_the_others(images):  # noqa: F811
    explorer = widgets.CodeGridExplorer(_vq(), images.images[:2])
    for entry in (0, 7):                                             # the first and the last of 8 codes
        explorer.set_code(1, 1, entry)
        assert int(explorer.edited[1, 1]) == entry == explorer.entry.value
    for entry in (-1, 8):
        with pytest.raises(ValueError, match=re.escape(f"entry must be in 0..7, got {entry}")):
            explorer.set_code(1, 1, entry)


def test_set_code_draws_once_however_many_controls_it_moves(images):  # noqa: F811
    """set_code moves the row, the column and the code slider: one picture, not one per control."""
    explorer = widgets.CodeGridExplorer(_vq(), images.images[:2])
    before = explorer.renders
    explorer.set_code(6, 0, (int(explorer.grid[6, 0]) + 1) % 8)     # row 3 -> 6, column 3 -> 0, a new code
    assert explorer.renders == before + 1


def test_the_grid_panel_shows_each_code_as_its_number_and_one_fixed_colour(images, monkeypatch):  # noqa: F811
    """Colour = code index: the colour scale spans every code, 0 to n_codes - 1, whatever codes this image uses
    (here only code 3 and 5), so a code has the same colour in every image's grid; and each cell shows its number
    from the first picture on."""
    model = _vq()
    grid = torch.full((7, 7), 3)
    grid[0] = 5
    monkeypatch.setattr(model, "encode", lambda x: grid.expand(len(x), 7, 7).clone())
    explorer = widgets.CodeGridExplorer(model, images.images)
    image = explorer.figure.axes[0].images[0]
    assert image.get_clim() == (0, 7)
    numbers = [t.get_text() for t in explorer.figure.axes[0].texts]
    assert numbers == [str(int(v)) for v in grid.flatten()]
    explorer.set_code(6, 0, 7)
    assert explorer.figure.axes[0].texts[42].get_text() == "7" and image.get_clim() == (0, 7)
    assert np.array_equal(image.get_array(), explorer.edited.numpy())


def test_a_three_digit_code_fits_inside_its_cell(images):  # noqa: F811
    """Lesson 11 uses 128 codes (and its exercise 512): a number like 127 must fit in its cell of the 7x7 grid,
    or the numbers run into each other."""
    explorer = widgets.CodeGridExplorer(_vq(128), images.images[:2])
    explorer.set_code(3, 3, 127)
    ax = explorer.figure.axes[0]
    text = ax.texts[3 * 7 + 3]
    assert text.get_text() == "127"
    cell = ax.transData.transform((1, 0))[0] - ax.transData.transform((0, 0))[0]          # display units
    width = text.get_window_extent().width
    assert width < 0.9 * cell, f"the number is {width:.1f} wide in a cell {cell:.1f} wide"


def _outline(patch):
    return (tuple(float(v) for v in patch.get_xy()), patch.get_width(), patch.get_height(), patch.get_fill(),
            patch.get_edgecolor())


def test_the_outlines_mark_the_position_and_its_pixel_block(images):  # noqa: F811
    """The red square on the grid, and the cyan outline of the 4x4 pixel block on the change panel: both at the
    selected position, both outlines (not filled: the cells and pixels under them stay visible), from the first
    picture on and after the position moves."""
    explorer = widgets.CodeGridExplorer(_vq(), images.images)
    red, cyan = to_rgba("red"), to_rgba("cyan")
    assert explorer._cell in explorer.figure.axes[0].patches and explorer._block in explorer.figure.axes[3].patches
    for row, col in ((3, 3), (5, 1), (0, 6)):
        explorer.row.value, explorer.col.value = row, col
        assert _outline(explorer._cell) == ((col - 0.5, row - 0.5), 1, 1, False, red)
        assert _outline(explorer._block) == ((4 * col - 0.5, 4 * row - 0.5), 4, 4, False, cyan)


def test_the_change_panel_is_coloured_unlike_the_images_and_the_code_grid(images):  # noqa: F811
    """The change is a heat map: its colours must not read as a grey image or as code indices (the grid's map)."""
    explorer = widgets.CodeGridExplorer(_vq(), images.images)
    maps = [ax.images[0].get_cmap().name for ax in explorer.figure.axes]
    assert maps[1] == maps[2] == "gray"
    assert maps[3] not in (maps[0], "gray"), maps


def test_a_model_that_is_not_a_vq_vae_is_named(images):  # noqa: F811
    with pytest.raises(TypeError, match=re.escape(
            "CodeGridExplorer needs a VQ-VAE with n_codes, grid_shape, encode(x) -> code grids and decode(grids), "
            "like ah.vq.VQVAE; got MLPAutoencoder")):
        widgets.CodeGridExplorer(ah.MLPAutoencoder(), images.images)


def test_every_width_in_the_layout_is_valid_css(images):  # noqa: F811
    explorer = widgets.CodeGridExplorer(_vq(), images.images)
    boxes = [explorer.widget, *explorer.widget.children, *explorer.widget.children[0].children]
    assert {explorer.output, explorer.picker, explorer.reset_button, explorer.readout} <= set(boxes)
    assert_every_width_is_css(boxes)
