"""Loss functions, each with its reduction spelled out and its unit in its name.

A reconstruction error between two batches of images is a (B, 1, 28, 28) grid
of per-pixel errors. Reducing it to one number takes two choices, and the
course always says which it made:

- over the pixels of one image: ``pixels="mean"`` (per pixel) or ``"sum"`` (per image);
- over the images of the batch: ``batch="mean"``, ``"sum"`` or ``"none"`` (one value per image).

For pixel values in [0, 1], the squared error has the unit "squared intensity".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["REDUCTIONS", "squared_error", "mse_objective"]

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


def mse_objective(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """The plain autoencoder's objective: mean squared error per pixel.

    Returns ``{"mse_per_pixel": value}``; the training loop minimises the first
    entry of the dict it gets back and logs every entry under its name.
    """
    return {"mse_per_pixel": squared_error(model(inputs), targets)}
