import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import autoenc_helpers as ah  # noqa: E402
from autoenc_helpers import plots  # noqa: E402


def teardown_function():
    plt.close("all")


def test_image_grid_places_each_image():
    images = torch.stack([torch.full((1, 2, 3), float(i)) for i in range(5)])   # 5 images of 2x3
    grid = plots.image_grid(images, nrow=3, pad=1, pad_value=-1)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2)
    assert (grid[0:2, 0:3] == 0).all() and (grid[0:2, 4:7] == 1).all() and (grid[3:5, 4:7] == 4).all()
    assert (grid[3:5, 8:11] == -1).all()      # the sixth slot is empty padding


def test_image_grid_rejects_colour_images():
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        plots.image_grid(np.zeros((2, 3, 28, 28)), nrow=2)


def test_compare_rows_draws_one_row_per_entry():
    x = torch.rand(10, 1, 28, 28)
    fig = plots.compare_rows({"original": x, "reconstruction": 1 - x}, n=10)
    assert len(fig.axes) == 20
    assert fig.axes[10].get_ylabel() == "reconstruction"
    with pytest.raises(ValueError, match="row 'short' has 3 images"):
        plots.compare_rows({"short": x[:3]}, n=5)


def test_history_latent_and_sweep_plots():
    h = ah.History(train={"mse_per_pixel": [0.05, 0.03]}, test={"mse_per_pixel": [0.04, 0.031]}, seconds=[1, 1])
    fig = plots.plot_history(h)
    assert [line.get_label() for line in fig.axes[0].lines] == ["train mse_per_pixel", "held-out mse_per_pixel"]
    codes, labels = torch.randn(100, 3), torch.randint(0, 10, (100,))
    assert plots.plot_latent(codes, labels, classes=ah.data.FASHION_CLASSES).axes[0].name == "3d"
    fig = plots.plot_latent(codes[:, :2], torch.rand(100))                    # continuous labels get a colour bar
    assert len(fig.axes) == 2 and fig.axes[1].get_label() == "<colorbar>"
    labels = torch.rand(100)
    fig = plots.plot_latent(codes[:, :2], labels)
    assert np.allclose(fig.axes[0].collections[0].get_array(), labels.numpy())        # coloured by the value
    with pytest.raises(ValueError, match=r"\(N, 2\) or \(N, 3\)"):
        plots.plot_latent(torch.randn(10, 5), torch.zeros(10))
    fig = plots.plot_error_vs_bottleneck([2, 4], {"AE": [0.03, 0.02], "PCA": [0.05, 0.03]})
    assert fig.axes[0].get_ylabel() == "held-out MSE per pixel"
    with pytest.raises(ValueError, match="'AE' has 1 errors for 2 sizes"):
        plots.plot_error_vs_bottleneck([2, 4], {"AE": [0.03]})


def test_history_y_label_is_words_with_a_unit():
    h = ah.History(train={"mse_per_pixel": [0.05, 0.03]}, test={"mse_per_pixel": [0.04, 0.031]}, seconds=[1, 1])
    assert plots.plot_history(h).axes[0].get_ylabel() == "MSE per pixel (squared intensity)"
    assert plots.plot_history(h, ylabel="error").axes[0].get_ylabel() == "error"
    odd = ah.History(train={"my_loss": [1.0]}, seconds=[1])
    assert plots.plot_history(odd).axes[0].get_ylabel() == "my_loss"          # a name not in the table: as it is
    assert plots.readable_name("kl_nats_per_image") == "KL (nats per image)"


def test_history_legend_without_names_and_titled_rows_keep_the_title_clear():
    h = ah.History(train={"mse_per_pixel": [0.05, 0.03]}, test={"mse_per_pixel": [0.04, 0.031]}, seconds=[1, 1])
    fig = plots.plot_history(h, names_in_legend=False)
    assert [line.get_label() for line in fig.axes[0].lines] == ["training images", "held-out images"]
    x = torch.rand(10, 1, 28, 28)
    fig = plots.compare_rows({f"k={k}": x for k in range(6)}, title="six rows under a title")
    fig.canvas.draw()
    top_of_images = max(ax.get_position().y1 for ax in fig.axes)
    title_bottom = fig._suptitle.get_window_extent().y0 / fig.bbox.height
    assert top_of_images <= title_bottom + 1e-3, "the images must stay below the title"
