"""Loss functions, each with its reduction spelled out and its unit in its name.

A reconstruction error between two batches of images is a (B, 1, 28, 28) grid
of per-pixel errors. Reducing it to one number takes two choices, and the
course always says which it made:

- over the pixels of one image: ``pixels="mean"`` (per pixel) or ``"sum"`` (per image);
- over the images of the batch: ``batch="mean"``, ``"sum"`` or ``"none"`` (one value per image).

For pixel values in [0, 1], the squared error has the unit "squared intensity".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["REDUCTIONS", "squared_error", "psnr_db", "mse_objective"]

REDUCTIONS = {"pixels": ("mean", "sum"), "batch": ("mean", "sum", "none")}


def _reduce(per_pixel: torch.Tensor, pixels: str, batch: str) -> torch.Tensor:
    if pixels not in REDUCTIONS["pixels"]:
        raise ValueError(f"pixels={pixels!r}; expected one of {REDUCTIONS['pixels']}")
    if batch not in REDUCTIONS["batch"]:
        raise ValueError(f"batch={batch!r}; expected one of {REDUCTIONS['batch']}")
    per_image = per_pixel.flatten(1)                                     # (B, 784)
    per_image = per_image.mean(1) if pixels == "mean" else per_image.sum(1)   # (B,)
    if batch == "none":
        return per_image
    return per_image.mean() if batch == "mean" else per_image.sum()


def squared_error(x_hat: torch.Tensor, x: torch.Tensor, *, pixels: str = "mean", batch: str = "mean") -> torch.Tensor:
    """Squared error between reconstructions and targets, reduced as asked.

    The defaults give the mean squared error per pixel, averaged over the batch
    (what ``nn.MSELoss()`` computes). ``pixels="sum"`` gives it per image,
    summed over the 784 pixels.
    """
    if x_hat.shape != x.shape:
        raise ValueError(f"reconstruction has shape {tuple(x_hat.shape)} but the target has {tuple(x.shape)}; "
                         "they must match")
    return _reduce(F.mse_loss(x_hat, x, reduction="none"), pixels, batch)


def psnr_db(mse_per_pixel, peak: float = 1.0):
    """Peak signal-to-noise ratio in decibels: 10 * log10(peak**2 / MSE per pixel).

    peak: the brightest possible pixel value (1.0 for images in [0, 1]).
    Higher is better; every 10 dB is a tenfold drop of the MSE (20 dB = an MSE of
    0.01, 30 dB = 0.001). An MSE of 0 gives infinity. Works on a float or a tensor.
    Written by hand as an exercise in notebook 02.
    """
    if torch.is_tensor(mse_per_pixel):
        if (mse_per_pixel < 0).any():
            raise ValueError(f"an MSE cannot be negative, got min {float(mse_per_pixel.min()):.3g}")
        return 10 * torch.log10(peak ** 2 / mse_per_pixel)
    mse = float(mse_per_pixel)
    if mse < 0:
        raise ValueError(f"an MSE cannot be negative, got {mse_per_pixel!r}")
    return math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)


def mse_objective(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """The plain autoencoder's objective: mean squared error per pixel.

    Returns ``{"mse_per_pixel": value}``; the training loop minimises the first
    entry of the dict it gets back and logs every entry under its name.
    """
    return {"mse_per_pixel": squared_error(model(inputs), targets)}
