"""The learning tests' bar is the mean training image: a model that outputs it must fail the bar."""

import torch
from torch import nn

import autoenc_helpers as ah
from baselines import beats_mean_image, mean_image, mean_image_mse, mean_image_nats


class MeanImageModel(nn.Module):
    """Answers every image with the mean training image: it learned the data set, not the image."""

    def __init__(self, train):
        super().__init__()
        self.register_buffer("image", mean_image(train))
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.image.expand_as(x) + 0 * self.dummy


def test_a_model_that_outputs_the_mean_image_fails_the_learning_bar():
    train = ah.load_dataset("fashion_mnist", "train", n=6_000, verbose=False).images
    test = ah.load_dataset("fashion_mnist", "test", n=2_000, verbose=False).images
    model = MeanImageModel(train)
    error = ah.evaluate(model, test)["mse_per_pixel"]
    assert abs(error - mean_image_mse(train, test)) < 1e-6
    assert not beats_mean_image(error, mean_image_mse(train, test))


def test_the_nats_bar_is_what_a_vae_ignoring_its_code_scores():
    train = ah.load_dataset("fashion_mnist", "train", n=6_000, verbose=False).images
    test = ah.load_dataset("fashion_mnist", "test", n=2_000, verbose=False).images
    bar = mean_image_nats(train, test)
    assert 350 < bar < 420                    # far below a coin flip per pixel (543 nats), so the bar is real
    assert not beats_mean_image(bar, bar)
