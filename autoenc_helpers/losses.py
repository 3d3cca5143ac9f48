"""Loss functions, each with its reduction spelled out and its unit in its name.

A reconstruction error between two batches of images is a (B, 1, 28, 28) grid
of per-pixel errors. Reducing it to one number takes two choices, and the
course always says which it made:

- over the pixels of one image: ``pixels="mean"`` (per pixel) or ``"sum"`` (per image);
- over the images of the batch: ``batch="mean"``, ``"sum"`` or ``"none"`` (one value per image).

For pixel values in [0, 1], the squared error has the unit "squared intensity".

The VAE's loss (lessons 04-07) is in nats: the binary cross-entropy of the
pixels (``bce_with_logits``, same two reductions) and the KL of the encoder's
Gaussian from N(0, 1) (``gaussian_kl``, reduced over latent dimensions with
``dims=`` and over the batch). ``vae_objective`` combines them for ``fit``;
``negative_elbo`` evaluates a trained VAE with sampling; ``kl_per_dimension``
and ``active_units`` look for posterior collapse (lesson 07), and ``kl_warmup_weight``
is the KL warm-up schedule ``vae_objective`` can follow.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .models import checked_images, eval_batches, model_device, reparameterize
from .validate import number, positive_int

__all__ = ["REDUCTIONS", "squared_error", "psnr_db", "mse_objective",
           # lesson 03
           "SPARSITY_PENALTIES", "l1_activation_penalty", "bernoulli_kl", "kl_sparsity_penalty", "sparse_objective",
           "sparsity_stats",
           # lessons 04-07
           "KL_DIMS", "bce_with_logits", "gaussian_kl", "kl_warmup_weight", "vae_objective", "negative_elbo",
           "log_likelihood_iw", "kl_per_dimension", "active_units",
           # lesson 10
           "gaussian_kl_between", "completion_objective", "completion_log_likelihood_iw"]

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


mse_objective.settings = {}       # no knobs: its code is the package's, versioned with the course


# ---------------------------------------------------------------------------------------------
# Lesson 03: sparsity penalties on the hidden activations h, of shape (B, n_hidden).
# A sparse autoencoder adds one of them, weighted, to the reconstruction error, so that
# only a few hidden units are active for any one image. Built in notebook 03.

SPARSITY_PENALTIES = ("l1", "kl")
_PENALTY_NAMES = {"l1": "l1_activation_per_image", "kl": "kl_sparsity_nats"}   # logged names, with units


def _check_activations(h, who: str) -> None:
    if not torch.is_tensor(h) or h.dim() != 2:
        got = tuple(h.shape) if torch.is_tensor(h) else type(h).__name__
        raise ValueError(f"{who} expects hidden activations of shape (batch, n_hidden), got {got}")


def _check_rate(rho, who: str) -> None:
    number(rho, f"{who}: the target rate rho", above=0, below=1)


def l1_activation_penalty(h: torch.Tensor) -> torch.Tensor:
    """The L1 sparsity penalty: the sum over hidden units of |h|, averaged over the batch.

    h: (B, n_hidden) hidden activations. Returns a 0-dim tensor in activation units per image. With a
    free decoder it can be dodged by rescaling (``SparseAutoencoder(unit_norm_decoder=True)`` prevents
    that); lesson 03 explains both. Goodfellow, Bengio & Courville 2016, "Deep Learning", section 14.2.1.
    """
    _check_activations(h, "l1_activation_penalty")
    return h.abs().sum(1).mean()                 # (B, n_hidden) -> (B,) -> ()


def bernoulli_kl(rho: float, rho_hat, *, eps: float = 1e-6) -> torch.Tensor:
    """KL(Bernoulli(rho) || Bernoulli(rho_hat)) in nats, element by element.

        rho * log(rho / rho_hat) + (1 - rho) * log((1 - rho) / (1 - rho_hat))

    rho: the target, a number in (0, 1). rho_hat: a tensor (or number) in [0, 1]; the result has its
    shape. rho_hat is first clamped to [eps, 1 - eps], so 0 and 1 give a finite value: below eps (or
    above 1 - eps) the result is the value at eps (about 0.49 nats for rho = 0.05 and eps = 1e-6),
    constant, with zero gradient. eps=0 gives the exact formula, inf at 0 and 1. Lesson 03 plots it.
    """
    _check_rate(rho, "bernoulli_kl")
    if not torch.is_tensor(rho_hat):
        rho_hat = torch.tensor(rho_hat, dtype=torch.get_default_dtype())
    low, high = (float(rho_hat.detach().min()), float(rho_hat.detach().max())) if rho_hat.numel() else (0, 0)
    if low < 0 or high > 1:
        raise ValueError(f"bernoulli_kl: rho_hat must lie in [0, 1], got values from {low:.3g} to {high:.3g}")
    number(eps, "bernoulli_kl: eps", low=0, below=0.5)
    rho_hat = rho_hat.clamp(eps, 1 - eps)
    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))


def kl_sparsity_penalty(h: torch.Tensor, rho: float = 0.05, *, eps: float = 1e-6) -> torch.Tensor:
    """The KL sparsity penalty towards a target mean activation rho, in nats (a 0-dim tensor).

    sum_j KL(Bernoulli(rho) || Bernoulli(rho_hat_j)), with rho_hat_j the mean of unit j's activation over
    the batch (:func:`bernoulli_kl`); 0 when every unit's mean equals rho. h: (B, n_hidden) activations
    in [0, 1], such as sigmoid units (a value outside raises). rho: in (0, 1), e.g. 0.05. eps: as in
    :func:`bernoulli_kl`. It constrains each unit's batch mean and nothing else (lesson 03 shows what
    that allows). Ng 2011, "Sparse autoencoder" (CS294A lecture notes), section 3. Written by hand in
    exercise 1 of lesson 03.
    """
    _check_activations(h, "kl_sparsity_penalty")
    _check_rate(rho, "kl_sparsity_penalty")
    low, high = float(h.detach().min()), float(h.detach().max())
    if low < 0 or high > 1:
        raise ValueError(f"kl_sparsity_penalty needs activations in [0, 1] (its means are compared with rho as "
                         f"Bernoulli probabilities), got "
                         f"values from {low:.3g} to {high:.3g}. Use sigmoid hidden units (ReLU units can exceed 1) "
                         "or the L1 penalty.")
    rho_hat = h.mean(0)                                      # (B, n_hidden) -> (n_hidden,)
    return bernoulli_kl(rho, rho_hat, eps=eps).sum()         # (n_hidden,) -> ()


def sparse_objective(penalty: str = "kl", *, weight: float, rho: float | None = None):
    """The sparse autoencoder's objective for ``fit``: reconstruction error plus a weighted sparsity penalty.

    penalty: ``"kl"`` (:func:`kl_sparsity_penalty` towards the mean activation ``rho``,
        0.05 unless given; needs activations in [0, 1]) or ``"l1"`` (:func:`l1_activation_penalty`).
    weight: what one unit of penalty costs, in MSE per pixel; >= 0. With 0 the model
        trains as a plain autoencoder and the penalty is still logged.
    The model needs ``encode`` (images -> (B, n_hidden) activations) and ``decode``.

    Returns ``objective(model, inputs, targets) -> dict`` with, in this order:

    - ``"total_loss"``: mse_per_pixel + weight * penalty, the number minimised
      (in squared intensity per pixel: the weight converts the penalty into that unit);
    - ``"mse_per_pixel"``: the reconstruction error;
    - ``"kl_sparsity_nats"`` or ``"l1_activation_per_image"``: the penalty, unweighted.

    The objective carries ``objective.settings`` (penalty, weight, rho), which the
    checkpoint cache uses to tell two objectives apart. Written by hand in exercise 2
    of notebook 03.
    """
    if penalty not in SPARSITY_PENALTIES:
        raise ValueError(f"penalty={penalty!r}; expected one of {SPARSITY_PENALTIES}")
    number(weight, "weight", low=0)
    if penalty == "l1" and rho is not None:
        raise ValueError(f"rho={rho!r} is the target of the KL penalty; the L1 penalty has none")
    if penalty == "kl":
        rho = 0.05 if rho is None else rho
        _check_rate(rho, "sparse_objective")
    name = _PENALTY_NAMES[penalty]

    def objective(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        h = model.encode(inputs)                                          # (B, n_hidden)
        mse = squared_error(model.decode(h), targets)                     # ()
        value = kl_sparsity_penalty(h, rho) if penalty == "kl" else l1_activation_penalty(h)
        return {"total_loss": mse + weight * value, "mse_per_pixel": mse, name: value}

    objective.__name__ = objective.__qualname__ = f"sparse_objective_{penalty}"
    objective.settings = dict(penalty=penalty, weight=float(weight), rho=None if rho is None else float(rho))
    return objective


@torch.no_grad()
def sparsity_stats(h: torch.Tensor, *, threshold: float = 0.05, relative: float = 0.1) -> dict[str, float]:
    """How sparse a set of hidden activations is, as plain numbers.

    h: (N, n_hidden) activations, e.g. ``encode(model, test)``. Two kinds of measure.

    With a fixed threshold (an activation is near zero when |h| < threshold). These depend
    on the scale of the activations, which a free decoder can change (see
    :func:`l1_activation_penalty`):

    - ``"mean_activation"``: the average over all images and units;
    - ``"near_zero_fraction"``: the share of (image, unit) pairs that are near zero;
    - ``"active_units_per_image"``: how many units are not near zero, averaged over the images;
    - ``"dead_unit_fraction"``: the share of units near zero on every image.

    Scale-free (unchanged when a unit's activations are all multiplied by the same c > 0):

    - ``"zero_fraction"``: the share of activations exactly 0 (ReLU units; sigmoid units never are);
    - ``"zero_unit_fraction"``: the share of units exactly 0 on every image (dead ReLU units);
    - ``"relative_active_units_per_image"``: how many units per image are above ``relative``
      times that unit's own largest |activation| over the N images, averaged over the images.
    """
    _check_activations(h, "sparsity_stats")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    if not 0 < relative < 1:
        raise ValueError(f"relative must be a fraction strictly between 0 and 1, got {relative!r}")
    size = h.abs()                                                        # (N, n_hidden)
    near_zero = size < threshold                                          # (N, n_hidden) booleans
    zero = h == 0
    largest = size.max(0).values                                          # (n_hidden,): each unit's own scale
    on = (size > relative * largest) & ~zero              # (N, n_hidden): above its own scale's fraction
    return {
        "mean_activation": float(h.mean()),
        "near_zero_fraction": float(near_zero.float().mean()),
        "active_units_per_image": float((~near_zero).float().sum(1).mean()),
        "dead_unit_fraction": float(near_zero.all(0).float().mean()),
        "zero_fraction": float(zero.float().mean()),
        "zero_unit_fraction": float(zero.all(0).float().mean()),
        "relative_active_units_per_image": float(on.float().sum(1).mean()),
    }


# ---------------------------------------------------------------------------------------------
# Lessons 04-07: the VAE's loss. Its two terms are in nats (natural-log units of information):
# the reconstruction, -log p(x | z) for Bernoulli pixels, and the KL of q(z | x) from the prior.

KL_DIMS = ("sum", "mean", "none")
VAE_RECONS = ("bce", "mse")
VAE_REDUCTIONS = ("sum", "mean")
N_PIXELS = 784


def _check_unit_range(x: torch.Tensor, who: str) -> None:
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise ValueError(f"{who} needs targets in [0, 1] (pixel probabilities), got values from {lo:.3g} to "
                         f"{hi:.3g}; images scaled to [-1, 1] do not fit a Bernoulli decoder")


def bce_with_logits(logits: torch.Tensor, x: torch.Tensor, *, pixels: str = "mean",
                    batch: str = "mean") -> torch.Tensor:
    """Binary cross-entropy of targets ``x`` in [0, 1] under Bernoulli pixels with these logits, in nats.

    Per pixel: -[x log p + (1 - x) log(1 - p)] with p = sigmoid(logits), computed stably from the
    logits (the values of ``F.binary_cross_entropy(torch.sigmoid(logits), x)``, without log(0)).
    logits, x: the same shape, (B, 1, 28, 28). Unit: nats per pixel with ``pixels="mean"``, nats per
    image with ``pixels="sum"`` (the VAE's reconstruction term); ``batch="mean"`` averages over the
    images, ``"sum"`` adds them, ``"none"`` keeps one value per image. The defaults (mean, mean) are
    PyTorch's. Written out in lesson 04; its reductions are compared in lesson 06.
    """
    if logits.shape != x.shape:
        raise ValueError(f"logits have shape {tuple(logits.shape)} but the target has {tuple(x.shape)}; "
                         "they must match")
    _check_unit_range(x, "bce_with_logits")
    return _reduce(F.binary_cross_entropy_with_logits(logits, x, reduction="none"), pixels, batch)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, *, dims: str = "sum", batch: str = "mean") -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) in closed form, in nats, for (B, k) means and log-variances.

    Per image and latent dimension: 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2), sigma^2 = exp(logvar).
    dims: over the k latent dimensions, ``"sum"`` (nats per image, the VAE's KL term), ``"mean"`` (nats
    per latent dimension) or ``"none"`` (one value per dimension, see :func:`kl_per_dimension`).
    batch: over the images, ``"mean"``, ``"sum"`` or ``"none"``. Shapes: (B, k), (B,), (k,) or () by
    the choices. Built step by step in lesson 06, checked against ``torch.distributions.kl_divergence``.
    """
    if not (torch.is_tensor(mu) and torch.is_tensor(logvar)):
        raise TypeError(f"gaussian_kl expects tensors mu and logvar, got {type(mu).__name__} and "
                        f"{type(logvar).__name__}")
    if mu.dim() != 2 or mu.shape != logvar.shape:
        raise ValueError(f"gaussian_kl expects mu and logvar of the same shape (batch, k), got {tuple(mu.shape)} "
                         f"and {tuple(logvar.shape)}")
    _check_kl_reductions(dims, batch)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)                      # (B, k) nats
    return _reduce_kl(kl, dims, batch)


def _check_kl_reductions(dims: str, batch: str) -> None:
    """Refuse a reduction a KL term does not know, before any work (shared by the two Gaussian KLs)."""
    if dims not in KL_DIMS:
        raise ValueError(f"dims={dims!r}; expected one of {KL_DIMS}")
    if batch not in REDUCTIONS["batch"]:
        raise ValueError(f"batch={batch!r}; expected one of {REDUCTIONS['batch']}")


def _reduce_kl(kl: torch.Tensor, dims: str, batch: str) -> torch.Tensor:
    """(B, k) nats per image and dimension, reduced over the dimensions, then the batch: (B, k), (B,), (k,) or ()."""
    if dims != "none":
        kl = kl.sum(1) if dims == "sum" else kl.mean(1)                      # (B,)
    if batch == "none":
        return kl
    return kl.mean(0) if batch == "mean" else kl.sum(0)                      # () or (k,)


def _check_number(name: str, value, *, minimum: float = 0.0) -> float:
    return number(value, name, low=minimum)


def kl_warmup_weight(epochs_done: float | None, warmup_epochs: float, final: float = 1.0) -> float:
    """The KL weight of a linear warm-up after ``epochs_done`` epochs of training (Bowman et al. 2016).

    ``final * min(1, epochs_done / warmup_epochs)``: from 0 at the start to ``final`` after
    ``warmup_epochs`` epochs. ``epochs_done`` counts completed epochs as a fraction (1.5 is half-way
    through the second), so the weight rises at every step. ``warmup_epochs=0``: no warm-up;
    ``epochs_done=None`` (not training): ``final``.

    >>> [kl_warmup_weight(e, 2) for e in (0, 0.5, 1, 2, 3)]
    [0.0, 0.25, 0.5, 1.0, 1.0]

    The schedule of :func:`vae_objective` with ``kl_warmup_epochs=...``; lesson 07 uses it.
    """
    final = _check_number("final", final)
    warmup_epochs = _check_number("warmup_epochs", warmup_epochs)
    if epochs_done is None or warmup_epochs == 0:
        return final
    epochs_done = _check_number("epochs_done", epochs_done)
    return final * min(1.0, epochs_done / warmup_epochs)


def vae_objective(*, recon: str = "bce", reduction: str = "sum", recon_factor: float = 1.0,
                  kl_weight: float = 1.0, free_bits: float = 0.0, kl_warmup_epochs: float = 0.0):
    """The VAE's objective for ``ah.fit``: ``scale * (recon_factor * recon + weight * kl)``.

    Returns ``objective(model, inputs, targets, labels=None) -> dict`` for a VAE whose ``forward`` gives
    ``(logits, mu, logvar)`` with z sampled (:class:`~autoenc_helpers.models.MLPVAE`). A conditional VAE
    (``ConditionalVAE``) trained with ``ah.fit(..., with_labels=True)`` is called ``model(inputs, labels)``.
    The dict, in this order (``fit`` minimises the first entry and logs them all):

    - ``"total_loss"``: the number minimised;
    - ``"recon_nats_per_image"`` (``recon="bce"``: BCE from the logits summed over the 784 pixels) or
      ``"recon_sq_error_per_image"`` (``recon="mse"``: squared error of sigmoid(logits) summed over the
      pixels, in squared intensity), averaged over the batch, whatever the reduction;
    - ``"kl_nats_per_image"``: the KL summed over latent dimensions, averaged over the batch (the true
      KL, also when free bits change what is minimised);
    - ``"kl_weight"``, only with a warm-up: the weight in use.

    With ``recon="bce"``, factors 1 and no free bits, ``total_loss`` is the one-sample estimate of the
    negative ELBO in nats per image.

    reduction: ``"sum"`` (scale 1), or ``"mean"`` (scale 1/784: the reconstruction averaged over the
        pixels as well, the KL divided by 784; the same balance of the two terms).
    recon_factor: the reconstruction's weight. kl_weight: the KL's (beta).
    free_bits: in nats per latent dimension (Kingma et al. 2016): the KL term becomes
        ``sum_j max(free_bits, KL_j)`` with KL_j averaged over the batch; 0 turns it off.
    kl_warmup_epochs: the KL weight rises linearly from 0 to ``kl_weight`` over this many epochs
        (:func:`kl_warmup_weight`, Bowman et al. 2016); 0 turns it off. ``fit`` calls
        ``objective.set_epoch(epochs_done)`` before each step and ``set_epoch(None)`` when done.
    Each factor is a finite number >= 0. ``objective.settings`` holds every argument (``kl_warmup_epochs``
    only when not 0, so older checkpoints keep their keys), which keys
    :func:`~autoenc_helpers.cache.cached_fit`'s checkpoints.

    Lesson 04 builds it; lesson 06 explains the reductions, lesson 07 beta, free bits and warm-up.
    """
    if recon not in VAE_RECONS:
        raise ValueError(f"recon={recon!r}; expected one of {VAE_RECONS}")
    if reduction not in VAE_REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}; expected one of {VAE_REDUCTIONS}")
    recon_factor = _check_number("recon_factor", recon_factor)
    kl_weight = _check_number("kl_weight", kl_weight)
    free_bits = _check_number("free_bits", free_bits)
    kl_warmup_epochs = _check_number("kl_warmup_epochs", kl_warmup_epochs)
    scale = 1.0 if reduction == "sum" else 1.0 / N_PIXELS
    recon_name = "recon_nats_per_image" if recon == "bce" else "recon_sq_error_per_image"
    progress = {"epochs_done": None}                   # set by fit through objective.set_epoch

    def objective(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                  labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        out = model(inputs) if labels is None else model(inputs, labels)     # a conditional VAE gets the labels
        if not isinstance(out, tuple) or len(out) != 3:
            raise TypeError(f"vae_objective needs a VAE whose forward returns (logits, mu, logvar), like MLPVAE; "
                            f"{type(model).__name__} returned {type(out).__name__}")
        logits, mu, logvar = out                                             # (B, 1, 28, 28), (B, k), (B, k)
        if recon == "bce":
            recon_per_image = bce_with_logits(logits, targets, pixels="sum", batch="mean")        # nats per image
        else:
            recon_per_image = squared_error(torch.sigmoid(logits), targets, pixels="sum", batch="mean")
        kl_per_dim = gaussian_kl(mu, logvar, dims="none", batch="mean")     # (k,) nats per image
        kl = kl_per_dim.sum()                                                # nats per image
        kl_paid = kl_per_dim.clamp(min=free_bits).sum() if free_bits > 0 else kl
        weight = kl_warmup_weight(progress["epochs_done"], kl_warmup_epochs, kl_weight)
        loss = scale * (recon_factor * recon_per_image + weight * kl_paid)
        terms = {"total_loss": loss, recon_name: recon_per_image, "kl_nats_per_image": kl}
        if kl_warmup_epochs > 0:
            terms["kl_weight"] = torch.tensor(weight)                      # the schedule, logged by fit
        return terms

    def set_epoch(epochs_done: float | None) -> None:
        """How many epochs training has completed (a fraction), or None when it is not training."""
        progress["epochs_done"] = epochs_done

    objective.__name__ = objective.__qualname__ = "vae_objective"
    objective.set_epoch = set_epoch
    objective.settings = dict(recon=recon, reduction=reduction, recon_factor=recon_factor, kl_weight=kl_weight,
                              free_bits=free_bits)
    if kl_warmup_epochs > 0:                           # only when used: older checkpoints keep their keys
        objective.settings["kl_warmup_epochs"] = kl_warmup_epochs
    return objective


def _images_and_labels(data, labels, who: str) -> torch.Tensor:
    """The (N, 1, 28, 28) images of ``data``, after checking that ``labels``, when given, are one per image."""
    x_all = checked_images(data, who)
    if labels is not None and (not torch.is_tensor(labels) or labels.shape != x_all.shape[:1]):
        got = tuple(labels.shape) if torch.is_tensor(labels) else type(labels).__name__
        raise ValueError(f"{who}: labels must be a ({x_all.shape[0]},) tensor, one per image, got {got}")
    return x_all


def _check_count(name: str, value, meaning: str = "") -> None:
    """Refuse anything but a positive int (``meaning``, when given, says what it counts)."""
    positive_int(value, name, meaning)


def _check_iw_reduction(reduction: str) -> None:
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction={reduction!r}; expected 'mean' or 'none'")


@torch.no_grad()
def negative_elbo(model: torch.nn.Module, images, n_samples: int = 1, generator: torch.Generator | None = None,
                  *, labels: torch.Tensor | None = None, batch_size: int = 1000) -> float:
    """The negative ELBO of a VAE on ``images``, in nats per image, evaluated *with sampling*.

    Per image: the BCE of the logits summed over the 784 pixels at z drawn by ``reparameterize`` (not
    z = mu), plus the KL summed over the latent dimensions; averaged over the images and over
    ``n_samples`` draws per image (more samples lower the noise, not the value). Lower is better. For
    grey pixels the BCE is not a normalised log-likelihood: compare models with it, not papers.

    model: a VAE with ``encode(x) -> (mu, logvar)`` and ``decode(z, logits=True)``; run in eval mode.
    images: an ImageSet or an (N, 1, 28, 28) tensor in [0, 1]. generator: on the model's device, for
    draws that repeat. labels: for a conditional VAE, the (N,) labels; the model is then called
    ``encode(x, y)``, ``decode(z, y, logits=True)``, and the result bounds -log p(x | y). Lesson 04.
    """
    _check_count("n_samples", n_samples)
    x_all = _images_and_labels(images, labels, "negative_elbo")
    total = 0.0
    for x, given in eval_batches(model, x_all, batch_size, labels):             # (b, 1, 28, 28), the condition
        mu, logvar = model.encode(x, *given)                                     # (b, k), (b, k)
        kl = gaussian_kl(mu, logvar, dims="sum", batch="sum")                     # nats, summed over the b images
        for _ in range(n_samples):
            z = reparameterize(mu, logvar, generator)                            # (b, k)
            logits = model.decode(z, *given, logits=True)                        # (b, 1, 28, 28)
            total += float(bce_with_logits(logits, x, pixels="sum", batch="sum") + kl)
    return total / (x_all.shape[0] * n_samples)


@torch.no_grad()
def log_likelihood_iw(model: torch.nn.Module, images, k: int = 100, *, labels: torch.Tensor | None = None,
                      generator: torch.Generator | None = None, batch_size: int = 500,
                      reduction: str = "mean") -> float | torch.Tensor:
    """The importance-weighted estimate of log p(x) (Burda et al. 2016), in nats per image.

    L_k = log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x), z_1..z_k drawn from q(z | x), computed as
    logsumexp - log k: a lower bound on log p(x), the ELBO at k = 1, rising towards log p(x) as k grows.
    So ``-log_likelihood_iw(model, x, k)`` sits at or below :func:`negative_elbo`; its BCE caveat holds.

    model: a VAE with ``encode(x) -> (mu, logvar)`` and ``decode(z, logits=True)``, run in eval mode;
        with ``labels`` (a conditional VAE) it is called ``encode(x, y)``, ``decode(z, y, logits=True)``
        and the result estimates log p(x | y).
    images: an ImageSet or an (N, 1, 28, 28) tensor in [0, 1].
    k: importance samples per image (positive int). generator: on the model's device, for draws that repeat.
    batch_size: images decoded together; the ``batch_size * k`` decodes of a batch run in chunks, so
        memory stays bounded.
    reduction: ``"mean"``, the average over the images as a float; ``"none"``, the (N,) tensor of
        per-image estimates on the CPU.
    Lesson 04 uses it to show the gap between the ELBO and log p(x).
    """
    _check_count("k", k, "importance samples per image")
    _check_iw_reduction(reduction)
    _check_count("batch_size", batch_size)
    x_all = _images_and_labels(images, labels, "log_likelihood_iw")
    device = model_device(model)
    log_2pi = math.log(2 * math.pi)
    chunk = max(1, 20_000 // min(batch_size, x_all.shape[0]))                  # samples decoded at once
    estimates = []
    for x, given in eval_batches(model, x_all, batch_size, labels):             # (b, 1, 28, 28), the condition
        b = x.shape[0]
        mu, logvar = model.encode(x, *given)                                 # (b, d), (b, d)
        std = torch.exp(0.5 * logvar)
        log_w = []
        for first in range(0, k, chunk):
            s = min(chunk, k - first)
            eps = torch.randn((s, *mu.shape), generator=generator, device=device, dtype=mu.dtype)  # (s, b, d)
            z = mu + std * eps                                               # (s, b, d)
            log_q = -0.5 * (eps.pow(2) + logvar + log_2pi).sum(-1)           # (s, b) log q(z | x)
            log_prior = -0.5 * (z.pow(2) + log_2pi).sum(-1)                  # (s, b) log p(z)
            repeated = tuple(g.repeat(s, *([1] * (g.dim() - 1))) for g in given)   # labels for s copies
            logits = model.decode(z.reshape(s * b, -1), *repeated, logits=True)      # (s*b, 1, 28, 28)
            targets = x.repeat(s, 1, 1, 1)                                   # (s*b, 1, 28, 28)
            log_px_z = -F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
            log_px_z = log_px_z.flatten(1).sum(1).reshape(s, b)              # (s, b) log p(x | z)
            log_w.append(log_px_z + log_prior - log_q)                       # (s, b)
        log_w = torch.cat(log_w)                                             # (k, b)
        estimates.append((torch.logsumexp(log_w, 0) - math.log(k)).cpu())   # (b,)
    per_image = torch.cat(estimates)                                             # (N,)
    return per_image if reduction == "none" else float(per_image.mean())


@torch.no_grad()
def kl_per_dimension(model: torch.nn.Module, data, *, batch_size: int = 1000) -> torch.Tensor:
    """Each latent dimension's KL from the prior, in nats per image, averaged over ``data``: (k,).

    A dimension whose KL stays near 0 has mu = 0 and sigma = 1 for every image: it carries no
    information about the image, the decoder ignores it (posterior collapse of that unit).
    The values add up to the KL term of the loss. Built step by step in notebook 07.
    """
    x_all = checked_images(data, "kl_per_dimension")
    total = None
    for x, _ in eval_batches(model, x_all, batch_size):
        mu, logvar = model.encode(x)                                             # (b, k), (b, k)
        part = gaussian_kl(mu, logvar, dims="none", batch="sum")                 # (k,)
        total = part if total is None else total + part
    return total / x_all.shape[0]                                                  # (k,)


def active_units(model: torch.nn.Module, data, threshold: float = 0.01, *, batch_size: int = 1000) -> torch.Tensor:
    """Which latent dimensions are in use: a (k,) bool tensor, True where the average KL > ``threshold`` nats.

    The criterion is the KL per dimension of :func:`kl_per_dimension` (nats per image, averaged over
    ``data``), so the count matches the bar chart of those KLs. (Burda et al. 2016 use instead the
    variance of mu across the data, active above 0.01; the two agree on collapsed units, whose mu is
    0 for every image.) ``int(active_units(vae, test).sum())`` counts them. Built in notebook 07.
    """
    threshold = _check_number("threshold", threshold)
    return kl_per_dimension(model, data, batch_size=batch_size) > threshold


# ---------------------------------------------------------------------------------------------
# Lesson 10: the structured-output conditional VAE (Sohn, Lee & Yan 2015), which completes the bottom
# half of an image from its top half. Its prior is a network p(z | top), so its KL is between two
# Gaussians, and its likelihood is that of the bottom half given the top: log p(bottom | top).

def gaussian_kl_between(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor,
                        *, dims: str = "sum", batch: str = "mean") -> torch.Tensor:
    """KL(N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2)) in closed form, in nats, for (B, k) diagonal Gaussians.

    Per image and latent dimension:

        0.5 * (logvar_p - logvar_q + (sigma_q^2 + (mu_q - mu_p)^2) / sigma_p^2 - 1)

    zero exactly when the two Gaussians are equal; with mu_p = 0 and logvar_p = 0 it is
    :func:`gaussian_kl`. ``dims`` and ``batch`` reduce as in :func:`gaussian_kl` (``dims="sum"``,
    ``batch="mean"``: nats per image). Checked against ``torch.distributions.kl_divergence`` in the tests.
    """
    tensors = (mu_q, logvar_q, mu_p, logvar_p)
    if not all(torch.is_tensor(t) for t in tensors):
        raise TypeError("gaussian_kl_between expects four tensors: mu_q, logvar_q, mu_p, logvar_p")
    if mu_q.dim() != 2 or any(t.shape != mu_q.shape for t in tensors):
        raise ValueError(f"gaussian_kl_between expects four tensors of the same shape (batch, k), got "
                         f"{[tuple(t.shape) for t in tensors]}")
    _check_kl_reductions(dims, batch)
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1)   # (B, k)
    return _reduce_kl(kl, dims, batch)


def completion_objective():
    """The objective for ``ah.fit`` of a model that completes the bottom half of an image from its top half.

    The model's ``forward`` takes whole (B, 1, 28, 28) images (it splits them itself) and returns either

    - a :class:`~autoenc_helpers.models.CompletionOutput` (``HalfImageCVAE``): the loss is the conditional
      negative ELBO of the bottom half, in nats per image,
      ``BCE(bottom half, 392 pixels summed) + KL(q(z | top, bottom) || p(z | top))`` with z drawn from q;
    - or a (B, 1, 14, 28) tensor of bottom-half logits (``HalfImageRegressor``, the deterministic
      baseline): the loss is the same BCE alone, which for a network without z is exactly
      -log p(bottom | top) under its independent Bernoulli pixels.

    Returns ``objective(model, inputs, targets) -> dict`` with ``"total_loss"`` (minimised),
    ``"recon_nats_per_image"`` (the bottom half's BCE) and, for the CVAE, ``"kl_nats_per_image"``;
    each averaged over the batch. The targets' bottom half is the output to predict. Its
    ``.settings`` describe it for ``ah.cached_fit``. Built in notebook 10.
    """
    from .models import SPLIT_ROW, CompletionOutput

    def objective(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        out = model(inputs)
        bottom = targets[:, :, SPLIT_ROW:]                                    # (B, 1, 14, 28), what is predicted
        logits = out.logits if isinstance(out, CompletionOutput) else out
        if not torch.is_tensor(logits) or logits.shape != bottom.shape:
            got = tuple(logits.shape) if torch.is_tensor(logits) else type(out).__name__
            raise TypeError(f"completion_objective needs a model whose forward gives bottom-half logits of shape "
                            f"{tuple(bottom.shape)} (or a CompletionOutput holding them); "
                            f"{type(model).__name__} gave {got}")
        recon = bce_with_logits(logits, bottom, pixels="sum", batch="mean")  # nats per image (bottom half)
        if not isinstance(out, CompletionOutput):
            return {"total_loss": recon, "recon_nats_per_image": recon}
        kl = gaussian_kl_between(out.mu, out.logvar, out.prior_mu, out.prior_logvar)   # nats per image
        return {"total_loss": recon + kl, "recon_nats_per_image": recon, "kl_nats_per_image": kl}

    objective.__name__ = objective.__qualname__ = "completion_objective"
    objective.settings = {"output": "bottom half", "split_row": SPLIT_ROW, "recon": "bce, summed over its pixels",
                          "kl": "to the prior network"}
    return objective


@torch.no_grad()
def completion_log_likelihood_iw(model: torch.nn.Module, images, k: int = 100, *,
                                 generator: torch.Generator | None = None, batch_size: int = 500,
                                 reduction: str = "mean") -> float | torch.Tensor:
    """log p(bottom half | top half) in nats per image: importance-weighted for a CVAE, exact for a baseline.

    For a :class:`~autoenc_helpers.models.HalfImageCVAE` (a model with ``prior``, ``encode`` and ``decode``):
    Burda et al. 2016's estimate with the prior network as the prior, log (1/k) sum_i
    p(bottom | top, z_i) p(z_i | top) / q(z_i | top, bottom), z_i drawn from q; a lower bound that rises
    towards log p(bottom | top) as k grows (k = 1: the conditional ELBO). For a model without z whose
    ``forward`` gives bottom-half logits (:class:`~autoenc_helpers.models.HalfImageRegressor`): exactly
    minus the BCE of the bottom half; ``k`` is not used. The BCE caveat of :func:`negative_elbo` holds.

    images: an ImageSet or (N, 1, 28, 28) tensor. reduction: ``"mean"`` (a float) or ``"none"`` (the
    (N,) per-image tensor, on the CPU). Lesson 10.
    """
    from .models import split_halves

    _check_count("k", k, "importance samples per image")
    _check_iw_reduction(reduction)
    x_all = checked_images(images, "completion_log_likelihood_iw")
    device = model_device(model)
    log_2pi = math.log(2 * math.pi)
    estimates = []
    for x, _ in eval_batches(model, x_all, batch_size):                          # (b, 1, 28, 28)
        top, bottom = split_halves(x)                                         # (b, 1, 14, 28) each
        if not hasattr(model, "prior"):                                      # no z: the likelihood is exact
            estimates.append(-bce_with_logits(model(x), bottom, pixels="sum", batch="none").cpu())
            continue
        mu, logvar = model.encode(top, bottom)                                # (b, d) q(z | top, bottom)
        prior_mu, prior_logvar = model.prior(top)                             # (b, d) p(z | top)
        b = x.shape[0]
        chunk = max(1, 20_000 // b)                                           # samples decoded at once
        log_w = []
        for first in range(0, k, chunk):
            s = min(chunk, k - first)
            eps = torch.randn((s, *mu.shape), generator=generator, device=device, dtype=mu.dtype)  # (s, b, d)
            z = mu + torch.exp(0.5 * logvar) * eps                            # (s, b, d) from q
            log_q = -0.5 * (eps.pow(2) + logvar + log_2pi).sum(-1)            # (s, b) log q(z | top, bottom)
            log_prior = -0.5 * ((z - prior_mu).pow(2) / prior_logvar.exp() + prior_logvar + log_2pi).sum(-1)
            logits = model.decode(z.reshape(s * b, -1), top.repeat(s, 1, 1, 1), logits=True)   # (s*b, 1, 14, 28)
            log_p = -bce_with_logits(logits, bottom.repeat(s, 1, 1, 1), pixels="sum", batch="none")
            log_w.append(log_p.reshape(s, b) + log_prior - log_q)             # (s, b)
        estimates.append((torch.logsumexp(torch.cat(log_w), 0) - math.log(k)).cpu())   # (b,)
    per_image = torch.cat(estimates)                                              # (N,)
    return per_image if reduction == "none" else float(per_image.mean())
