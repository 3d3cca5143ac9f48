"""Discrete codes: the vector-quantised autoencoder (VQ-VAE) and a prior over its code grids (lesson 11).

A VQ-VAE (van den Oord, Vinyals and Kavukcuoglu 2017, "Neural Discrete Representation Learning")
replaces the Gaussian code of a VAE by a **codebook** of K learned vectors. The encoder gives one
vector per position of a small grid; each snaps to its nearest codebook entry, so the code of an image
is a grid of integers in 0..K-1.

- :func:`nearest_code`, :func:`quantize`: the nearest-codebook lookup, and the same with the
  straight-through gradient (Bengio, Leonard and Courville 2013) that lets the encoder learn through it.
- :func:`code_usage`, :func:`perplexity`, :func:`grid_bits`: how many codes are used, how evenly, and
  how many bits a code grid holds.
- :class:`VectorQuantizer`: the codebook as a module, with an optional remedy for dead codes (restart
  each code unused for a while at a random encoder output of the current batch).
- :class:`VQVAE`: lesson 08's convolutional network with its bottleneck replaced by a 7x7 grid of codes.
- :func:`vq_objective`: its loss for ``ah.fit``: reconstruction + codebook loss + beta * commitment loss.
- :class:`CodePrior`: a small PixelCNN-style model (van den Oord et al. 2016) over 7x7 code grids,
  trained with ``ah.fit`` and :func:`prior_objective`; ``sample`` draws new grids for the decoder.

Built in notebook 11.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from .losses import bce_with_logits
from .models import _check_conv_channels, _conv_down, _conv_up, check_images, eval_mode, model_device
from .validate import integer, number

__all__ = ["nearest_code", "quantize", "code_usage", "perplexity", "grid_bits", "VQOutput", "VectorQuantizer",
           "VQVAEOutput", "VQVAE", "vq_objective", "code_grids", "MaskedConv2d", "CodePrior", "prior_objective"]


def _positive_int(name: str, value, minimum: int = 1) -> int:
    return integer(value, name, low=minimum)


def _check_codebook(codebook, who: str) -> None:
    if not torch.is_tensor(codebook) or codebook.dim() != 2 or not codebook.is_floating_point():
        got = f"{tuple(codebook.shape)} {codebook.dtype}" if torch.is_tensor(codebook) else type(codebook).__name__
        raise ValueError(f"{who} expects a codebook of shape (K, D), floating point, got {got}")


# ---------------------------------------------------------------------------------------------
# The lookup


def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """The index of the nearest codebook entry, in squared Euclidean distance, for each vector of ``z``.

    z: (..., D) vectors (the channel axis last). codebook: (K, D). Returns (...) int64 in 0..K-1;
    a tie goes to the smaller index. The distance is expanded as |z|^2 - 2 z.e + |e|^2, one matrix
    product for all pairs (B*H*W x K), rather than K subtractions.
    """
    _check_codebook(codebook, "nearest_code")
    if not torch.is_tensor(z) or z.shape[-1] != codebook.shape[1]:
        got = tuple(z.shape) if torch.is_tensor(z) else type(z).__name__
        raise ValueError(f"nearest_code expects vectors of shape (..., {codebook.shape[1]}) (the codebook's D), "
                         f"got {got}")
    flat = z.reshape(-1, z.shape[-1])                                         # (N, D)
    distances = (flat.pow(2).sum(1, keepdim=True)                             # (N, 1)
                 - 2 * flat @ codebook.T                                      # (N, K)
                 + codebook.pow(2).sum(1))                                    # (K,) -> (N, K)
    return distances.argmin(1).reshape(z.shape[:-1])                          # (...)


def quantize(z_e: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Snap each position of an encoder output to its nearest code, with a straight-through gradient.

    z_e: (B, D, H, W) encoder outputs, one D-vector per position. codebook: (K, D).
    Returns ``(z_q, indices)``: z_q (B, D, H, W) holds the chosen codebook vectors, computed as
    z_e + (e - z_e).detach(), so its gradient passes to z_e unchanged and none reaches the codebook
    (which learns from :func:`vq_objective`'s codebook loss); indices (B, H, W) int64 their numbers.
    Lesson 11 explains the straight-through estimator and has you write this (``ah.checks.check_quantize``).
    """
    _check_codebook(codebook, "quantize")
    if not torch.is_tensor(z_e) or z_e.dim() != 4 or z_e.shape[1] != codebook.shape[1]:
        got = tuple(z_e.shape) if torch.is_tensor(z_e) else type(z_e).__name__
        raise ValueError(f"quantize expects encoder outputs of shape (B, {codebook.shape[1]}, H, W), "
                         f"channels first, got {got}")
    indices = nearest_code(z_e.permute(0, 2, 3, 1), codebook)                 # (B, H, W)
    e = codebook[indices].permute(0, 3, 1, 2)                                 # (B, H, W, D) -> (B, D, H, W)
    return z_e + (e - z_e).detach(), indices


def _check_indices(indices, n_codes: int, who: str) -> torch.Tensor:
    if not torch.is_tensor(indices) or indices.is_floating_point() or indices.dtype == torch.bool:
        got = indices.dtype if torch.is_tensor(indices) else type(indices).__name__
        raise TypeError(f"{who} expects code indices as a tensor of whole numbers, got {got}")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= n_codes):
        bad = indices[(indices < 0) | (indices >= n_codes)][0].item()
        raise ValueError(f"{who}: code index {bad} is out of range; the codebook has entries 0..{n_codes - 1}")
    return indices.long()


def code_usage(indices: torch.Tensor, n_codes: int) -> torch.Tensor:
    """How often each of the ``n_codes`` entries was chosen in ``indices`` (any shape): (K,) int64 counts."""
    n_codes = _positive_int("n_codes", n_codes)
    indices = _check_indices(indices, n_codes, "code_usage")
    return torch.bincount(indices.flatten(), minlength=n_codes)


def perplexity(indices: torch.Tensor, n_codes: int) -> torch.Tensor:
    """exp(entropy) of how the codes are used: the number of equally used codes that would be as spread out.

    indices: chosen code numbers, any shape. With p_k the share of the choices that fell on code k,
    perplexity = exp(-sum_k p_k log p_k), unused codes adding 0 (0 log 0 = 0). It is 1 when one code
    takes every choice and K when all K are used equally; in between it counts the codes "in use",
    weighted by how much. A scalar tensor.
    """
    counts = code_usage(indices, n_codes).double()
    if counts.sum() == 0:
        raise ValueError("perplexity needs at least one chosen code, got an empty tensor of indices")
    p = counts / counts.sum()                                                 # (K,) shares, summing to 1
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()                      # nats; 0 log 0 counts 0
    return torch.exp(entropy).float()


def grid_bits(positions: int, n_codes: int) -> float:
    """The bits a grid of ``positions`` codes, each one of ``n_codes``, can hold: positions * log2(K)."""
    return _positive_int("positions", positions) * math.log2(_positive_int("n_codes", n_codes))


# ---------------------------------------------------------------------------------------------
# The codebook as a module


class VQOutput(NamedTuple):
    """What :class:`VectorQuantizer` returns.

    z_q: (B, D, H, W) the chosen codes with the straight-through gradient (what the decoder gets).
    e: (B, D, H, W) the same codes with the codebook's own gradient (what the codebook loss needs).
    indices: (B, H, W) int64 code numbers.
    """

    z_q: torch.Tensor
    e: torch.Tensor
    indices: torch.Tensor


class VectorQuantizer(nn.Module):
    """A codebook of ``n_codes`` vectors of size ``code_dim``, and the nearest-code lookup.

    The codebook starts uniform in [-1/K, 1/K]. ``forward(z_e)`` returns :class:`VQOutput`.
    restart_dead: after each optimiser step (``ah.fit`` calls :meth:`after_step`), move each code that no
        position of the last ``dead_after`` training batches chose onto a randomly chosen encoder output
        of the current batch (as Dhariwal et al. 2020, "Jukebox", restart rarely used codes). Lesson 11
        explains why unused codes stay dead.
    dead_after: training batches without a single use before a code counts as dead.
    """

    def __init__(self, n_codes: int, code_dim: int, *, restart_dead: bool = False, dead_after: int = 20):
        super().__init__()
        self.n_codes = _positive_int("n_codes", n_codes, minimum=2)
        self.code_dim = _positive_int("code_dim", code_dim)
        self.dead_after = _positive_int("dead_after", dead_after)
        self.restart_dead = bool(restart_dead)
        self.codebook = nn.Parameter(torch.empty(self.n_codes, self.code_dim).uniform_(-1 / n_codes, 1 / n_codes))
        # batches since each code was last chosen in training; saved with the weights
        self.register_buffer("idle_batches", torch.zeros(self.n_codes, dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))   # how many codes were restarted
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None           # the last training batch

    def extra_repr(self) -> str:
        return (f"n_codes={self.n_codes}, code_dim={self.code_dim}, restart_dead={self.restart_dead}, "
                f"dead_after={self.dead_after}")

    def forward(self, z_e: torch.Tensor) -> VQOutput:
        """(B, D, H, W) encoder outputs -> VQOutput(z_q (B, D, H, W), e (B, D, H, W), indices (B, H, W))."""
        z_q, indices = quantize(z_e, self.codebook)
        e = self.lookup(indices)                                              # (B, D, H, W), codebook's gradient
        if self.training:                                                     # for after_step: usage and outputs
            self._last = (indices.detach(), z_e.detach().permute(0, 2, 3, 1).reshape(-1, self.code_dim))
        return VQOutput(z_q, e, indices)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, H, W) code numbers -> (B, D, H, W) codebook vectors."""
        indices = _check_indices(indices, self.n_codes, f"{type(self).__name__}.lookup")
        return self.codebook[indices].permute(0, 3, 1, 2)                     # (B, H, W, D) -> (B, D, H, W)

    @torch.no_grad()
    def after_step(self) -> int:
        """Count idle batches and, with ``restart_dead``, restart dead codes; returns how many were restarted."""
        if self._last is None:
            return 0
        indices, z = self._last                                               # (B, H, W), (B*H*W, D)
        self._last = None
        self.idle_batches += 1
        self.idle_batches[indices.unique()] = 0
        if not self.restart_dead:
            return 0
        dead = (self.idle_batches >= self.dead_after).nonzero().flatten()     # (n_dead,)
        if dead.numel() == 0:
            return 0
        chosen = torch.randint(z.shape[0], (dead.numel(),), device=z.device)  # one encoder output per dead code
        self.codebook[dead] = z[chosen]
        self.idle_batches[dead] = 0
        self.restarts += dead.numel()
        return int(dead.numel())


# ---------------------------------------------------------------------------------------------
# The VQ-VAE


class VQVAEOutput(NamedTuple):
    """What a :class:`VQVAE`'s ``forward`` returns: everything :func:`vq_objective` needs.

    logits: (B, 1, 28, 28) decoder outputs before the sigmoid. z_e: (B, D, 7, 7) encoder outputs.
    e: (B, D, 7, 7) their codes (codebook gradient). indices: (B, 7, 7) int64 code numbers.
    """

    logits: torch.Tensor
    z_e: torch.Tensor
    e: torch.Tensor
    indices: torch.Tensor


class VQVAE(nn.Module):
    """A vector-quantised autoencoder: a 7x7 grid of codes, each one of ``n_codes`` learned vectors.

    Lesson 08's ``ConvVAE`` with the bottleneck replaced: the same convolutions
    (``models._conv_down``/``_conv_up``), and instead of the Gaussian's two linear heads a 1x1
    convolution to one ``code_dim``-vector per position, each snapped to its nearest codebook entry::

        (B, 1, 28, 28) -> ... -> (B, c4, 7, 7) -> 1x1 conv (B, D, 7, 7) = z_e -> indices (B, 7, 7), z_q (B, D, 7, 7)
        z_q -> 1x1 conv (B, c4, 7, 7) -> ... -> (B, 1, 28, 28) logits

    n_codes: K, the codebook size. code_dim: D, the size of each codebook vector.
    channels: (c1, c2, c3, c4), the convolutions' widths, as in ``ConvVAE``.
    restart_dead, dead_after: the dead-code remedy of :class:`VectorQuantizer`.

    - ``encode(x)`` -> (B, 7, 7) int64 code grid; ``encode_continuous(x)`` -> z_e, before the lookup;
    - ``decode(indices, logits=False)`` -> (B, 1, 28, 28) pixel probabilities (logits if asked);
    - ``forward(x)`` -> :class:`VQVAEOutput`; ``reconstruct(x)`` -> decode(encode(x));
    - ``after_step()``: called by ``ah.fit`` after each optimiser step (the dead-code restarts).

    Lesson 11 builds it.
    """

    grid_shape = (7, 7)

    def __init__(self, n_codes: int = 64, code_dim: int = 16, channels=(16, 32, 32, 32), *,
                 restart_dead: bool = False, dead_after: int = 20, negative_slope: float = 0.01):
        super().__init__()
        channels = _check_conv_channels(channels)
        self.channels = channels
        c4 = channels[3]
        self.quantizer = VectorQuantizer(n_codes, code_dim, restart_dead=restart_dead, dead_after=dead_after)
        self.n_codes, self.code_dim = self.quantizer.n_codes, self.quantizer.code_dim
        self.encoder = nn.Sequential(
            *_conv_down(channels, negative_slope),                          # (B, 1, 28, 28) -> (B, c4, 7, 7)
            nn.Conv2d(c4, code_dim, 1),                                     # -> (B, D, 7, 7) = z_e
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(code_dim, c4, 1), nn.LeakyReLU(negative_slope),       # (B, D, 7, 7) -> (B, c4, 7, 7)
            *_conv_up(channels, negative_slope),                            # -> (B, 1, 28, 28) logits
        )

    @property
    def positions(self) -> int:
        """Codes per image: 7 * 7 = 49."""
        return self.grid_shape[0] * self.grid_shape[1]

    def bits_per_image(self) -> float:
        """What one code grid can hold: 49 * log2(K) bits."""
        return grid_bits(self.positions, self.n_codes)

    def encode_continuous(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) images -> (B, D, 7, 7) encoder outputs z_e, before quantisation."""
        check_images(x, type(self).__name__)
        return self.encoder(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) images -> (B, 7, 7) int64 code grid."""
        return nearest_code(self.encode_continuous(x).permute(0, 2, 3, 1), self.quantizer.codebook)

    def decode(self, indices: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """(B, 7, 7) code grid -> (B, 1, 28, 28) probabilities in (0, 1), or logits if ``logits``."""
        who = f"{type(self).__name__}.decode"
        if not torch.is_tensor(indices) or indices.dim() != 3 or tuple(indices.shape[1:]) != self.grid_shape:
            got = tuple(indices.shape) if torch.is_tensor(indices) else type(indices).__name__
            raise ValueError(f"{who} expects code grids of shape (batch, 7, 7), got {got}")
        out = self.decoder(self.quantizer.lookup(indices))                 # (B, D, 7, 7) -> (B, 1, 28, 28)
        return out if logits else torch.sigmoid(out)

    def forward(self, x: torch.Tensor) -> VQVAEOutput:
        """(B, 1, 28, 28) images -> VQVAEOutput(logits, z_e, e, indices); the decoder sees z_q (straight-through)."""
        z_e = self.encode_continuous(x)                                     # (B, D, 7, 7)
        z_q, e, indices = self.quantizer(z_e)                               # (B, D, 7, 7) x2, (B, 7, 7)
        return VQVAEOutput(self.decoder(z_q), z_e, e, indices)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) images -> (B, 1, 28, 28) probabilities decoded from their code grids."""
        return self.decode(self.encode(x))

    def after_step(self) -> int:
        """After an optimiser step (``ah.fit`` calls it): the quantiser's bookkeeping and dead-code restarts."""
        return self.quantizer.after_step()


def _check_weight(name: str, value) -> float:
    return number(value, name, low=0)


def vq_objective(*, beta: float = 0.25, codebook_weight: float = 1.0):
    """The VQ-VAE's objective for ``ah.fit``: reconstruction + codebook loss + beta * commitment loss.

    For a model whose ``forward`` gives :class:`VQVAEOutput` (:class:`VQVAE`). Entries, in order:

    - ``"total_loss"``: what is minimised, ``recon + codebook_weight * codebook + beta * commitment``;
    - ``"recon_nats_per_image"``: BCE from the logits, summed over the 784 pixels, averaged over the batch;
    - ``"codebook_loss_per_image"``: |sg(z_e) - e|^2 summed over the 49 positions and D dimensions: moves
      each chosen code towards the encoder outputs that chose it (its only gradient is the codebook's);
    - ``"commitment_loss_per_image"``: |z_e - sg(e)|^2, the same number, but its gradient goes to the
      encoder: it keeps the encoder's outputs near the codes they chose (sg = stop-gradient, ``detach``);
    - ``"perplexity"``: exp(entropy) of the batch's code usage (:func:`perplexity`), between 1 and K;
    - ``"codes_used"``: how many different codes the batch chose.

    The last two are logged, not minimised; averaged per epoch by ``fit``, they are averages of per-batch
    values (128 images, 6,272 choices, in training; 1,000 images in ``evaluate``).

    beta: the weight of the commitment loss (0.25 in van den Oord et al. 2017). codebook_weight: of the
    codebook loss (1 in the paper; 0 leaves the codebook where it started).
    """
    beta = _check_weight("beta", beta)
    codebook_weight = _check_weight("codebook_weight", codebook_weight)

    def objective(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        out = model(inputs)
        if not isinstance(out, VQVAEOutput):
            raise TypeError(f"vq_objective needs a VQ-VAE whose forward returns VQVAEOutput (ah.vq.VQVAE); "
                            f"{type(model).__name__} returned {type(out).__name__}")
        recon = bce_with_logits(out.logits, targets, pixels="sum", batch="mean")        # nats per image
        codebook = (out.z_e.detach() - out.e).pow(2).flatten(1).sum(1).mean()          # per image
        commitment = (out.z_e - out.e.detach()).pow(2).flatten(1).sum(1).mean()        # per image
        loss = recon + codebook_weight * codebook + beta * commitment
        return {"total_loss": loss, "recon_nats_per_image": recon, "codebook_loss_per_image": codebook,
                "commitment_loss_per_image": commitment,
                "perplexity": perplexity(out.indices, model.n_codes),
                "codes_used": (code_usage(out.indices, model.n_codes) > 0).sum().float()}

    objective.__name__ = objective.__qualname__ = "vq_objective"
    objective.settings = dict(beta=beta, codebook_weight=codebook_weight)
    return objective


@torch.no_grad()
def code_grids(model: VQVAE, data, *, batch_size: int = 1000) -> torch.Tensor:
    """The code grids of a set of images as a (N, 1, 7, 7) float tensor: the 'images' a :class:`CodePrior` trains on.

    Each value is a whole number, the code index; ``ah.fit`` takes 4-D float tensors, so the grids travel as
    one-channel 7x7 pictures of indices. ``grids[:, 0].long()`` gives them back as (N, 7, 7) integers.
    """
    from .training import predict

    return predict(model, data, batch_size=batch_size, fn=model.encode).unsqueeze(1).float()


# ---------------------------------------------------------------------------------------------
# The prior over code grids: a small PixelCNN


class MaskedConv2d(nn.Conv2d):
    """A convolution that sees only the positions before the centre in raster order (rows, then columns).

    kind ``"A"`` hides the centre too (the first layer: a position must not see its own code);
    ``"B"`` lets it through (later layers: the centre then holds features of earlier positions only).
    The PixelCNN's masks (van den Oord, Kalchbrenner and Kavukcuoglu 2016, "Pixel Recurrent Neural Networks").
    """

    def __init__(self, kind: str, in_channels: int, out_channels: int, kernel_size: int):
        if kind not in ("A", "B"):
            raise ValueError(f"kind must be 'A' or 'B', got {kind!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, so the kernel has a centre, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.kind = kind
        mask = torch.ones(kernel_size, kernel_size)
        c = kernel_size // 2
        mask[c, c + (kind == "B"):] = 0                                      # the centre row, from the centre on
        mask[c + 1:] = 0                                                     # every row below
        self.register_buffer("mask", mask)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, " + super().extra_repr()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class CodePrior(nn.Module):
    """An autoregressive prior over 7x7 code grids: p(grid) = prod_i p(code_i | codes before i), raster order.

    n_codes: K. channels: the width of the hidden layers. layers: how many masked 3x3 layers follow the
    first masked 5x5 one (more layers see further back).

    Input: code grids as (B, 1, 7, 7) floats holding whole numbers (:func:`code_grids`), or (B, 7, 7)
    integers. Each code is embedded as a ``channels``-vector; the masked convolutions make the output
    at each position depend only on the codes before it::

        (B, 7, 7) codes -> embedding (B, C, 7, 7) -> masked 5x5 "A" -> layers x (ReLU, masked 3x3 "B")
        -> ReLU, 1x1 conv -> (B, K, 7, 7) logits of p(code_i | codes before i)

    ``sample(n)`` draws n grids one position at a time (49 passes); ``bits(grids)`` gives each grid's
    negative log-likelihood in bits. Train it with ``ah.fit(prior, grids, objective=ah.vq.prior_objective())``.
    Built in notebook 11.
    """

    grid_shape = (7, 7)

    @property
    def input_range(self) -> tuple[int, int]:
        """The values ``fit`` accepts as inputs: code numbers, 0 to K - 1 (not pixel intensities)."""
        return (0, self.n_codes - 1)

    def __init__(self, n_codes: int, channels: int = 64, layers: int = 4):
        super().__init__()
        self.n_codes = _positive_int("n_codes", n_codes, minimum=2)
        channels, layers = _positive_int("channels", channels), _positive_int("layers", layers, minimum=0)
        self.embed = nn.Embedding(self.n_codes, channels)
        body: list[nn.Module] = [MaskedConv2d("A", channels, channels, 5)]
        for _ in range(layers):
            body += [nn.ReLU(), MaskedConv2d("B", channels, channels, 3)]
        body += [nn.ReLU(), nn.Conv2d(channels, self.n_codes, 1)]
        self.net = nn.Sequential(*body)

    def _grid(self, grids: torch.Tensor) -> torch.Tensor:
        who = f"{type(self).__name__}"
        if torch.is_tensor(grids) and grids.dim() == 4 and grids.shape[1] == 1:
            if grids.is_floating_point():
                if not torch.equal(grids, grids.round()):
                    raise ValueError(f"{who} expects code grids holding whole numbers (code indices); these hold "
                                     "fractions. Make them with ah.vq.code_grids(model, data)")
                grids = grids.long()
            grids = grids[:, 0]
        if not torch.is_tensor(grids) or grids.dim() != 3 or tuple(grids.shape[1:]) != self.grid_shape:
            got = tuple(grids.shape) if torch.is_tensor(grids) else type(grids).__name__
            raise ValueError(f"{who} expects code grids of shape (batch, 7, 7) or (batch, 1, 7, 7), got {got}")
        return _check_indices(grids, self.n_codes, who)

    def forward(self, grids: torch.Tensor) -> torch.Tensor:
        """(B, 1, 7, 7) or (B, 7, 7) code grids -> (B, K, 7, 7) logits of each code given the codes before it."""
        codes = self._grid(grids)                                           # (B, 7, 7) int64
        h = self.embed(codes).permute(0, 3, 1, 2)                           # (B, 7, 7, C) -> (B, C, 7, 7)
        return self.net(h)                                                  # (B, K, 7, 7)

    def bits(self, grids: torch.Tensor) -> torch.Tensor:
        """(B, ...) code grids -> (B,) negative log-likelihood of each grid under the prior, in bits."""
        codes = self._grid(grids)
        nats = F.cross_entropy(self(codes), codes, reduction="none").flatten(1).sum(1)   # (B,)
        return nats / math.log(2)

    @torch.no_grad()
    def sample(self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n code grids, (n, 7, 7) int64, one position at a time in raster order."""
        n = _positive_int("n", n)
        number(temperature, "temperature", above=0)
        grids = torch.zeros(n, *self.grid_shape, dtype=torch.long, device=model_device(self))
        with eval_mode(self):
            for r in range(self.grid_shape[0]):
                for c in range(self.grid_shape[1]):
                    logits = self(grids)[:, :, r, c] / temperature          # (n, K): depends on earlier codes only
                    probs = torch.softmax(logits.float(), 1)
                    grids[:, r, c] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        return grids


def prior_objective():
    """The prior's objective for ``ah.fit``: the negative log-likelihood of each code grid.

    ``"nll_nats_per_grid"``: cross-entropy summed over the 49 positions, averaged over the batch (minimised);
    ``"bits_per_grid"``: the same in bits, the length of the grid's code under this prior.
    """

    def objective(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        codes = model._grid(targets)                                        # (B, 7, 7) int64
        nats = F.cross_entropy(model(codes), codes, reduction="none").flatten(1).sum(1).mean()
        return {"nll_nats_per_grid": nats, "bits_per_grid": nats / math.log(2)}

    objective.__name__ = objective.__qualname__ = "prior_objective"
    objective.settings = {}
    return objective
