"""Corruptions for the denoising autoencoder: Gaussian noise, masking, salt-and-pepper.

Each function takes clean images with values in [0, 1] and returns a corrupted
copy, also in [0, 1]; the input is never modified. The strength is one number,
the *level*:

- ``gaussian_noise(images, sigma)``: add N(0, sigma^2) to every pixel, then clip
  to [0, 1]. sigma is in units of full brightness (0.1 = a tenth of white).
- ``masking_noise(images, p)``: set each pixel to 0 (black) with probability p.
- ``salt_and_pepper(images, p)``: replace each pixel with probability p by 0 or
  by 1, with equal chance.

The level may be one number for the whole batch or a (B,) tensor, one level per
image. Randomness comes from ``generator`` (a ``torch.Generator``) when given,
so a corruption can be repeated exactly; :class:`Corruption` wraps one kind and
level with its own seeded generator, for ``ah.fit(corrupt=...)`` and
``ah.evaluate(corrupt=...)``; :class:`RandomCorruption` draws a kind and a level
per image, to train one denoiser for every kind of noise.

Two classical denoisers that learn nothing, the baselines a learned denoiser must
beat: ``gaussian_blur(images, sigma)`` and ``median_filter(images, size)``, and
:class:`ImageFilter`, either one as an ``nn.Module`` for ``ah.evaluate``.

Built step by step in notebook 02, where each corruption is first written by hand.
"""

from __future__ import annotations

import hashlib

from collections.abc import Mapping


import torch
import torch.nn.functional as F
from torch import nn

from .validate import integer, number

__all__ = ["NOISE_KINDS", "LEVEL_NAMES", "gaussian_noise", "masking_noise", "salt_and_pepper", "corrupt",
           "Corruption", "RandomCorruption", "expected_mse", "gaussian_blur", "median_filter", "FILTERS",
           "ImageFilter"]

# what the level means for each kind, for error messages and axis labels
LEVEL_NAMES = {"gaussian": "sigma", "masking": "p", "salt_and_pepper": "p"}


def _check_images(images: torch.Tensor, who: str) -> None:
    if not torch.is_tensor(images) or not images.is_floating_point():
        got = f"dtype {images.dtype}" if torch.is_tensor(images) else type(images).__name__
        raise TypeError(f"{who} expects a floating-point tensor of images with values in [0, 1], got {got}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(f"{who} expects pixel values in [0, 1], got values from {float(images.min()):.3g} "
                         f"to {float(images.max()):.3g}")


def _level(level, images: torch.Tensor, who: str, name: str, upper: float | None) -> torch.Tensor:
    """The level as a tensor that broadcasts over (B, ...) images, after checking its range."""
    valid = f"[0, {upper:g}]" if upper is not None else "[0, inf), finite"
    if torch.is_tensor(level):
        if level.dim() > 1 or (level.dim() == 1 and level.shape[0] != images.shape[0]):
            raise ValueError(f"{who}: {name} must be a number or a ({images.shape[0]},) tensor, one per image, "
                             f"got shape {tuple(level.shape)}")
        values = level.detach().float()
    elif isinstance(level, (int, float)) and not isinstance(level, bool):
        values = torch.tensor(float(level))
    else:
        raise TypeError(f"{who}: {name} must be a number in {valid}, got {level!r}")
    bad = ~torch.isfinite(values) | (values < 0)
    if upper is not None:
        bad |= values > upper
    if bad.any():
        worst = values[bad].flatten()[0].item()
        raise ValueError(f"{who}: {name} must lie in {valid}, got {worst!r}")
    values = values.to(device=images.device, dtype=images.dtype)
    return values.reshape(-1, *([1] * (images.dim() - 1))) if values.dim() == 1 else values


def _rand(images: torch.Tensor, generator: torch.Generator | None, normal: bool = False) -> torch.Tensor:
    """Uniform [0, 1) (or standard normal) numbers shaped like images, drawn on the generator's device."""
    draw = torch.randn if normal else torch.rand
    if generator is None:
        return draw(images.shape, device=images.device, dtype=images.dtype)
    return draw(images.shape, generator=generator, device=generator.device, dtype=images.dtype).to(images.device)


def gaussian_noise(images: torch.Tensor, sigma, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """images + sigma * N(0, 1) noise, clipped to [0, 1]; sigma >= 0, in units of full brightness."""
    _check_images(images, "gaussian_noise")
    sigma = _level(sigma, images, "gaussian_noise", "sigma", None)
    return (images + sigma * _rand(images, generator, normal=True)).clamp(0, 1)


def masking_noise(images: torch.Tensor, p, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each pixel set to 0 with probability p in [0, 1] (dropped), else kept."""
    _check_images(images, "masking_noise")
    p = _level(p, images, "masking_noise", "p", 1.0)
    keep = _rand(images, generator) >= p                                # True with probability 1 - p
    return images * keep


def salt_and_pepper(images: torch.Tensor, p, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each pixel replaced with probability p in [0, 1] by 0 (pepper) or 1 (salt), with equal chance."""
    _check_images(images, "salt_and_pepper")
    p = _level(p, images, "salt_and_pepper", "p", 1.0)
    u = _rand(images, generator)                      # one uniform number per pixel decides both things:
    hit = u < p                                       # u < p: the pixel is replaced ...
    salt = u < p / 2                                  # ... by white in the lower half of [0, p), else black
    return torch.where(hit, salt.to(images.dtype), images)


NOISE_KINDS = {"gaussian": gaussian_noise, "masking": masking_noise, "salt_and_pepper": salt_and_pepper}


def _kind(kind: str):
    if kind not in NOISE_KINDS:
        raise ValueError(f"noise kind {kind!r} is not one of {tuple(NOISE_KINDS)}")
    return NOISE_KINDS[kind]


def corrupt(images: torch.Tensor, kind: str, level, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Corrupt images with the noise ``kind`` ("gaussian", "masking", "salt_and_pepper") at ``level``."""
    return _kind(kind)(images, level, generator=generator)


class _Seeded:
    """A generator made on first use, on the device of the first batch (CPU and GPU draw differently)."""

    def __init__(self, seed: int):
        if not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        self.generator: torch.Generator | None = None

    def _generator(self, images: torch.Tensor) -> torch.Generator:
        if self.generator is None or self.generator.device != images.device:
            self.generator = torch.Generator(device=images.device).manual_seed(self.seed)
        return self.generator

    def _stream(self) -> str:
        """Where the random stream stands: "fresh" before the first draw, else a digest of its state.

        A used object draws other noise than a fresh one with the same seed, so the two must not
        share a checkpoint (``cached_fit``); the same use in a rerun reaches the same state."""
        if self.generator is None:
            return "fresh"
        return hashlib.sha256(self.generator.get_state().cpu().numpy().tobytes()).hexdigest()[:16]


class Corruption(_Seeded):
    """One kind of noise at one level, seeded: ``Corruption("gaussian", 0.3, seed=1)(images)``.

    Two ``Corruption`` objects with the same arguments corrupt the same images
    identically, so several models can be scored on exactly the same noisy inputs.
    """

    def __init__(self, kind: str, level: float, *, seed: int = 0):
        super().__init__(seed)
        _kind(kind)
        _level(level, torch.zeros(1), f"Corruption({kind!r})", LEVEL_NAMES[kind],
               None if kind == "gaussian" else 1.0)
        self.kind, self.level = kind, level

    @property
    def settings(self) -> dict:
        """What decides the noise it draws (the checkpoint cache keys a denoiser by it)."""
        return {"kind": self.kind, "level": float(self.level), "seed": self.seed, "stream": self._stream()}

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return corrupt(images, self.kind, self.level, generator=self._generator(images))

    def __repr__(self) -> str:
        return f"Corruption({self.kind!r}, {LEVEL_NAMES[self.kind]}={self.level:g}, seed={self.seed})"


class RandomCorruption(_Seeded):
    """For every image, a kind drawn uniformly from ``max_levels`` and a level uniform in [0, its maximum].

    max_levels: ``{"gaussian": 0.5, "masking": 0.6, ...}``, the largest level of each kind.
    A denoiser trained with it meets every kind and strength of noise, so one
    model serves the whole noise-level slider.
    """

    def __init__(self, max_levels: Mapping[str, float], *, seed: int = 0):
        super().__init__(seed)
        if not max_levels:
            raise ValueError("max_levels must name at least one noise kind, e.g. {'gaussian': 0.5}")
        for kind, level in max_levels.items():
            _kind(kind)
            _level(level, torch.zeros(1), "RandomCorruption", f"the maximum {LEVEL_NAMES[kind]} of {kind!r}",
                   None if kind == "gaussian" else 1.0)
        self.max_levels = dict(max_levels)

    @property
    def settings(self) -> dict:
        """What decides the noise it draws (the checkpoint cache keys a denoiser by it)."""
        return {"max_levels": {k: float(v) for k, v in sorted(self.max_levels.items())}, "seed": self.seed,
                "stream": self._stream()}

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        g = self._generator(images)
        b = images.shape[0]
        kinds = list(self.max_levels)
        which = torch.randint(len(kinds), (b,), generator=g, device=g.device).to(images.device)   # (B,)
        fraction = torch.rand(b, generator=g, device=g.device).to(images.device)                  # (B,)
        out = images.clone()
        for k, kind in enumerate(kinds):
            rows = which == k
            if rows.any():
                levels = fraction[rows] * self.max_levels[kind]
                out[rows] = corrupt(images[rows], kind, levels, generator=g)
        return out

    def __repr__(self) -> str:
        return f"RandomCorruption({self.max_levels}, seed={self.seed})"


def expected_mse(images: torch.Tensor, kind: str, level: float) -> float:
    """The MSE per pixel that ``kind`` at ``level`` adds on average, from the clean images alone.

    masking: p * mean(x^2); salt-and-pepper: p * mean((x^2 + (1 - x)^2) / 2);
    gaussian (before clipping): sigma^2, which clipping to [0, 1] lowers.
    Used in notebook 02 to check the measured baseline against a formula.
    """
    _check_images(images, "expected_mse")
    _kind(kind)
    _level(level, images, "expected_mse", LEVEL_NAMES[kind], None if kind == "gaussian" else 1.0)
    if kind == "gaussian":
        return float(level) ** 2
    if kind == "masking":
        return float(level) * float((images ** 2).mean())
    return float(level) * float(((images ** 2 + (1 - images) ** 2) / 2).mean())



# ---------------------------------------------------------------------------------------------
# Classical denoisers: no learning, one setting each. Zero padding (black borders), like the
# Fashion-MNIST background; ``scipy.ndimage`` with ``mode="constant"`` gives the same numbers.


def _check_batch(images: torch.Tensor, who: str) -> None:
    if not torch.is_tensor(images) or not images.is_floating_point() or images.dim() != 4:
        got = f"shape {tuple(images.shape)}, dtype {images.dtype}" if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"{who} expects a (B, C, H, W) floating-point tensor of images, got {got}")


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur each image with a Gaussian of standard deviation ``sigma`` pixels (sigma > 0).

    The kernel reaches int(3 * sigma + 0.5) pixels each way (as ``scipy.ndimage.gaussian_filter``
    with ``truncate=3``), is normalised to sum 1 and applied along rows, then columns.
    images: (B, C, H, W) -> (B, C, H, W); values in [0, 1] stay in [0, 1].
    """
    _check_batch(images, "gaussian_blur")
    number(sigma, "gaussian_blur: sigma", above=0, why="in pixels")
    radius = int(3 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()                                         # (2r + 1,)
    c = images.shape[1]
    rows = kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1)                    # (C, 1, 1, 2r + 1)
    out = F.conv2d(images, rows, padding=(0, radius), groups=c)            # along each row
    return F.conv2d(out, rows.transpose(2, 3), padding=(radius, 0), groups=c)   # then each column


def median_filter(images: torch.Tensor, size: int) -> torch.Tensor:
    """Replace each pixel by the median of the ``size`` x ``size`` window around it (size odd, >= 1).

    images: (B, C, H, W) -> (B, C, H, W). Pixels beyond the border count as 0 (black).
    """
    _check_batch(images, "median_filter")
    if integer(size, "median_filter: size", low=1, why="an odd number of pixels") % 2 == 0:
        raise ValueError(f"median_filter: size must be an odd whole number >= 1, got {size!r}")
    b, c, h, w = images.shape
    windows = F.unfold(images.reshape(b * c, 1, h, w), size, padding=size // 2)   # (B*C, size*size, H*W)
    return windows.median(dim=1).values.reshape(b, c, h, w)


FILTERS = {"gaussian_blur": gaussian_blur, "median": median_filter}
_SETTING_NAMES = {"gaussian_blur": "sigma", "median": "size"}


class ImageFilter(nn.Module):
    """A classical filter as a model: ``ImageFilter("median", 3)(images)``, for ``ah.evaluate``.

    kind: ``"gaussian_blur"`` (setting: sigma in pixels) or ``"median"`` (setting: window size).
    It has no parameters and learns nothing.
    """

    def __init__(self, kind: str, setting):
        super().__init__()
        if kind not in FILTERS:
            raise ValueError(f"filter kind {kind!r} is not one of {tuple(FILTERS)}")
        FILTERS[kind](torch.zeros(1, 1, 3, 3), setting)                     # checks the setting now
        self.kind, self.setting = kind, setting

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return FILTERS[self.kind](images, self.setting)

    def extra_repr(self) -> str:
        return f"{self.kind!r}, {_SETTING_NAMES[self.kind]}={self.setting:g}"
