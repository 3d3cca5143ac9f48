"""The trivial baseline every learning test must beat: predicting the mean training image.

A model that learned nothing about the image in front of it can still output the average image of the
training set. Its error is the bar a learning test sets, with a margin, so that such a model fails on
purpose, not by luck (``tests/test_baselines.py`` builds that model and checks that it fails).
"""

import torch
import torch.nn.functional as F


def mean_image(train: torch.Tensor) -> torch.Tensor:
    """The (1, 1, 28, 28) average of the training images."""
    return train.mean(0, keepdim=True)


def mean_image_mse(train: torch.Tensor, test: torch.Tensor) -> float:
    """MSE per pixel of answering every held-out image with the mean training image."""
    return float(((test - mean_image(train)) ** 2).mean())


def mean_image_sq_error_per_image(train: torch.Tensor, test: torch.Tensor) -> float:
    """Squared error summed over the pixels of each image, averaged, for the mean-image answer."""
    return float(((test - mean_image(train)) ** 2).flatten(1).sum(1).mean())


def mean_image_nats(train: torch.Tensor, test: torch.Tensor) -> float:
    """BCE in nats per image of Bernoulli pixels whose probabilities are the mean training image.

    The reconstruction term of a VAE that ignores its code cannot do better than this (its decoder
    can only output one image for every code), and its KL is then 0: it is the negative-ELBO bar.
    """
    p = mean_image(train).clamp(1e-4, 1 - 1e-4).expand_as(test)
    return float(F.binary_cross_entropy(p, test, reduction="none").flatten(1).sum(1).mean())


def beats_mean_image(error: float, baseline: float, margin: float = 0.8) -> bool:
    """A learning test's criterion: ``error`` below ``margin`` times the mean-image baseline."""
    return error < margin * baseline
