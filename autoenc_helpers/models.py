"""The autoencoders of the course, in the order of the lessons, with the tensor shape written at every layer.

Every model takes images of shape (B, 1, 28, 28). ``encode`` maps images to codes, ``decode`` maps
codes back to images, and ``forward`` is ``decode(encode(x))`` (a VAE samples z in between). A batch
of the wrong shape raises a ValueError that names the shape it got and the shape it expected.

- Lesson 01: :class:`MLPAutoencoder` (784-128-64-12-3 by default); :class:`ConvAutoencoder`
  (convolutions down to an 8x2x2 code, used by the tests and not by a lesson); :class:`PCA`, the
  linear case, fitted in closed form with the same ``encode``/``decode`` interface.
- Lesson 03: :class:`SparseAutoencoder`, one wide hidden layer (784-1024-784 by default).
- Lessons 04-07: :class:`MLPVAE` (784-512-256-z by default), :class:`VAEOutput` and :func:`reparameterize`.
- Lesson 08: :class:`ConvVAE`, the same interface with a convolutional encoder and decoder.
- Lesson 10: :class:`ConditionalVAE` (the label fed to encoder and decoder); :class:`HalfImageCVAE`
  (Sohn et al. 2015: bottom halves given the top half) and :class:`HalfImageRegressor`, its
  deterministic baseline.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch
from torch import nn

from .data import images_of
from .validate import integer, positive_int, positive_ints

__all__ = ["IMAGE_SHAPE", "OUTPUT_ACTIVATIONS", "check_images", "checked_images", "model_device", "eval_mode",
           "eval_batches", "count_parameters",
           # lesson 01
           "MLPAutoencoder", "ConvAutoencoder", "PCA",
           # lesson 03
           "HIDDEN_ACTIVATIONS", "SparseAutoencoder",
           # lessons 04-07
           "VAEOutput", "reparameterize", "MLPVAE",
           # lesson 08
           "ConvVAE",
           # lesson 10
           "check_labels", "ConditionalVAE",
           "SPLIT_ROW", "HALF_SHAPE", "split_halves", "join_halves", "CompletionOutput", "HalfImageCVAE",
           "HalfImageRegressor"]

IMAGE_SHAPE = (1, 28, 28)
OUTPUT_ACTIVATIONS = ("sigmoid", "tanh", "none")


# ---------------------------------------------------------------------------------------------
# Shared helpers


def check_images(x, who: str, expected: tuple[int, ...] = IMAGE_SHAPE, what: str = "images") -> None:
    """Raise a clear error unless ``x`` is a float tensor of shape (B, *expected).

    ``what`` names the thing in the message: "images" for model inputs, "codes" for decoder inputs.
    """
    shape = f"(batch, {', '.join(map(str, expected))})"
    if not torch.is_tensor(x):
        raise TypeError(f"{who} expects a torch.Tensor of {what} of shape {shape}, got {type(x).__name__}")
    if x.dim() != len(expected) + 1 or tuple(x.shape[1:]) != tuple(expected):
        raise ValueError(f"{who} expects {what} of shape {shape}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{who} expects floating-point {what}, got dtype {x.dtype}")


def checked_images(data, who: str) -> torch.Tensor:
    """The (N, 1, 28, 28) float images of an ImageSet or a tensor, or the error :func:`check_images` gives."""
    images = images_of(data)
    check_images(images, who)
    return images


def _output_layer(name: str) -> nn.Module:
    if name not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"output activation {name!r} is not one of {OUTPUT_ACTIVATIONS}")
    # The output range must cover the input range: Sigmoid gives (0, 1) for images in [0, 1];
    # Tanh gives (-1, 1) for images normalised to [-1, 1]; "none" leaves it unbounded.
    return {"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "none": nn.Identity()}[name]


def model_device(model: nn.Module) -> torch.device:
    """The device a model's parameters (or, for PCA, its buffers) live on."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``with eval_mode(model):`` runs the block in eval mode and restores the model's mode afterwards,
    also when the block raises (a learner's Stop, a bad input), so a model is never left switched."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def eval_batches(model: nn.Module, images: torch.Tensor, batch_size: int, labels: torch.Tensor | None = None, *,
                 at_least_once: bool = False) -> Iterator[tuple[torch.Tensor, tuple]]:
    """Batched inference, in one place: yield ``(x, given)`` per batch of ``images``, in order, in eval mode.

    ``x`` is the batch on the model's device; ``given`` is ``()`` or, with ``labels``, the batch's labels
    (a conditional model's condition), so the caller writes ``model.encode(x, *given)``. Run it under
    ``torch.no_grad()``. ``at_least_once``: an empty set still gives one (empty) batch, so a result has its shape.
    """
    device = model_device(model)
    batch_size = positive_int(batch_size, "batch_size")
    with eval_mode(model):
        for start in range(0, max(images.shape[0], int(at_least_once)), batch_size):
            x = images[start:start + batch_size].to(device)
            yield x, (() if labels is None else (labels[start:start + batch_size].to(device),))


def count_parameters(model: nn.Module) -> int:
    """The number of trainable numbers in a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _mlp(widths: Sequence[int]) -> nn.Sequential:
    """Linear layers between consecutive widths, each followed by a ReLU: (B, widths[0]) -> (B, widths[-1])."""
    layers: list[nn.Module] = []
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(w_in, w_out), nn.ReLU()]
    return nn.Sequential(*layers)


def _check_hidden(hidden) -> tuple[int, ...]:
    return positive_ints(hidden, "hidden sizes")


# ---------------------------------------------------------------------------------------------
# Lesson 01: the plain autoencoder, its convolutional variant, and PCA (the linear case)


class MLPAutoencoder(nn.Module):
    """A fully connected autoencoder: 784 -> hidden... -> latent_dim -> ...hidden -> 784.

    latent_dim: size of the code (the bottleneck). 3 by default, so codes can be drawn.
    hidden: widths of the encoder's hidden layers; the decoder mirrors them.
    output: ``"sigmoid"`` for images in [0, 1], ``"tanh"`` for [-1, 1], ``"none"``.

    With the defaults this is a 784-128-64-12-3 network, ReLU after every hidden layer and no activation on the
    code itself.
    """

    def __init__(self, latent_dim: int = 3, hidden: Sequence[int] = (128, 64, 12), output: str = "sigmoid"):
        super().__init__()
        latent_dim = positive_int(latent_dim, "latent_dim")
        hidden = positive_ints(hidden, "hidden")
        self.latent_dim, self.hidden, self.output = latent_dim, hidden, output
        n_pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]        # 784

        widths = (n_pixels, *hidden)
        layers: list[nn.Module] = [nn.Flatten()]                            # (B, 1, 28, 28) -> (B, 784)
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]                   # (B, w_in) -> (B, w_out)
        layers.append(nn.Linear(widths[-1], latent_dim))                    # (B, hidden[-1]) -> (B, latent_dim)
        self.encoder = nn.Sequential(*layers)

        back = (latent_dim, *reversed(hidden))
        layers = []
        for w_in, w_out in zip(back[:-1], back[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]                   # (B, w_in) -> (B, w_out)
        layers += [nn.Linear(back[-1], n_pixels),                            # (B, hidden[0]) -> (B, 784)
                   _output_layer(output),
                   nn.Unflatten(1, IMAGE_SHAPE)]                             # (B, 784) -> (B, 1, 28, 28)
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) images -> (B, latent_dim) codes."""
        check_images(x, type(self).__name__)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) codes -> (B, 1, 28, 28) images."""
        check_images(z, f"{type(self).__name__}.decode", expected=(self.latent_dim,), what="codes")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class ConvAutoencoder(nn.Module):
    """A convolutional autoencoder with a (channels[1], 2, 2) code; no lesson uses it (the tests train it).

    Strided convolutions and max pooling down, transposed convolutions up. With channels (16, 8)::

        1x28x28 -> 16x10x10 -> 16x5x5 -> 8x3x3 -> 8x2x2  (a code of 32 numbers)
        8x2x2 -> 16x5x5 -> 8x15x15 -> 1x28x28

    Lesson 08 explains how the convolutions' strides, kernels and padding set these sizes.
    """

    def __init__(self, channels: Sequence[int] = (16, 8), output: str = "sigmoid"):
        super().__init__()
        channels = positive_ints(channels, "channels (c1, c2)", count=2)
        c1, c2 = channels
        self.channels, self.output = channels, output
        self.code_shape = (c2, 2, 2)
        self.latent_dim = c2 * 2 * 2
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size=3, stride=3, padding=1),   # (B, 1, 28, 28) -> (B, c1, 10, 10)
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),                  # -> (B, c1, 5, 5)
            nn.Conv2d(c1, c2, kernel_size=3, stride=2, padding=1),  # -> (B, c2, 3, 3)
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=1),                  # -> (B, c2, 2, 2)
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, kernel_size=3, stride=2),             # (B, c2, 2, 2) -> (B, c1, 5, 5)
            nn.ReLU(),
            nn.ConvTranspose2d(c1, c2, kernel_size=5, stride=3, padding=1),  # -> (B, c2, 15, 15)
            nn.ReLU(),
            nn.ConvTranspose2d(c2, 1, kernel_size=2, stride=2, padding=1),   # -> (B, 1, 28, 28)
            _output_layer(output),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) images -> (B, c2, 2, 2) codes."""
        check_images(x, type(self).__name__)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, c2, 2, 2) codes -> (B, 1, 28, 28) images."""
        check_images(z, f"{type(self).__name__}.decode", expected=self.code_shape, what="codes")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class PCA(nn.Module):
    """Principal component analysis as a linear autoencoder with tied weights.

    ``encode``: z = (x - mean) @ W, with W (784, k) the top ``n_components`` eigenvectors of the pixel
    covariance; ``decode``: x_hat = z @ W.T + mean. The best linear code of size k in squared error, the
    yardstick of lesson 01, which builds it by hand first.
    """

    def __init__(self, n_components: int):
        super().__init__()
        if positive_int(n_components, "n_components") > 784:
            raise ValueError(f"n_components must be an int in 1..784, got {n_components!r}")
        self.latent_dim = n_components
        self.register_buffer("mean", torch.zeros(784))                         # (784,)
        self.register_buffer("components", torch.zeros(784, n_components))     # (784, k)
        self.register_buffer("explained_variance", torch.zeros(n_components))  # (k,)

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> "PCA":
        """Fit to (N, 1, 28, 28) images; returns self."""
        check_images(images, "PCA.fit")
        if images.shape[0] < 2:
            raise ValueError(f"PCA.fit needs at least 2 images to estimate a covariance, got {images.shape[0]}")
        x = images.flatten(1).float()                                           # (N, 784)
        mean = x.mean(0)                                                         # (784,)
        centred = x - mean                                                       # (N, 784)
        cov = (centred.T @ centred).double() / (x.shape[0] - 1)                  # (784, 784)
        eigvals, eigvecs = torch.linalg.eigh(cov)                                # ascending order
        top = eigvals.argsort(descending=True)[: self.latent_dim]
        self.mean.copy_(mean.float())
        self.components.copy_(eigvecs[:, top].float())
        self.explained_variance.copy_(eigvals[top].float())
        return self

    def first(self, k: int) -> "PCA":
        """A PCA that keeps only the first k of these components (no refit: they are nested)."""
        integer(k, "k", low=1, high=self.latent_dim)
        smaller = PCA(k).to(self.mean.device)
        smaller.mean.copy_(self.mean)
        smaller.components.copy_(self.components[:, :k])
        smaller.explained_variance.copy_(self.explained_variance[:k])
        return smaller

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) -> (B, k)."""
        check_images(x, "PCA")
        return (x.flatten(1) - self.mean) @ self.components

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, k) -> (B, 1, 28, 28)."""
        check_images(z, "PCA.decode", expected=(self.latent_dim,), what="codes")
        return (z @ self.components.T + self.mean).unflatten(1, IMAGE_SHAPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


# ---------------------------------------------------------------------------------------------
# Lesson 03: the sparse autoencoder


HIDDEN_ACTIVATIONS = ("sigmoid", "relu")


class SparseAutoencoder(nn.Module):
    """One wide hidden layer, 784 -> n_hidden -> 784, to be trained with a sparsity penalty.

    n_hidden: hidden units (1024 by default, more than the 784 pixels: over-complete).
    activation: ``"sigmoid"``, in (0, 1), for the KL penalty; ``"relu"``, in [0, inf) and exactly 0
        for a negative input, for the L1 penalty.
    output: the decoder's last activation, ``"sigmoid"`` for images in [0, 1].
    unit_norm_decoder: when True, the decoder uses each column V_j of its weight as V_j / ||V_j||, of
        length 1, so that an L1 penalty cannot be dodged by shrinking activations and growing columns
        (lesson 03 explains). ``decode`` divides the activations by the lengths instead, the same sum:
        call ``decode``, not ``self.decoder``.

    ``encode`` returns the hidden activations (B, n_hidden): the code is the layer.
    """

    def __init__(self, n_hidden: int = 1024, activation: str = "sigmoid", output: str = "sigmoid",
                 unit_norm_decoder: bool = False):
        super().__init__()
        positive_int(n_hidden, "n_hidden")
        if activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"hidden activation {activation!r} is not one of {HIDDEN_ACTIVATIONS}")
        if not isinstance(unit_norm_decoder, bool):
            raise ValueError(f"unit_norm_decoder must be True or False, got {unit_norm_decoder!r}")
        self.n_hidden = self.latent_dim = n_hidden
        self.activation, self.output, self.unit_norm_decoder = activation, output, unit_norm_decoder
        n_pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]         # 784
        self.encoder = nn.Sequential(
            nn.Flatten(),                                                   # (B, 1, 28, 28) -> (B, 784)
            nn.Linear(n_pixels, n_hidden),                                  # -> (B, n_hidden)
            nn.Sigmoid() if activation == "sigmoid" else nn.ReLU(),         # the activations h
        )
        self.decoder = nn.Sequential(
            nn.Linear(n_hidden, n_pixels),                                  # (B, n_hidden) -> (B, 784)
            _output_layer(output),
            nn.Unflatten(1, IMAGE_SHAPE),                                   # -> (B, 1, 28, 28)
        )

    def extra_repr(self) -> str:
        return f"unit_norm_decoder={self.unit_norm_decoder}"              # in the printout, and in cached_fit's key

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) images -> (B, n_hidden) hidden activations."""
        check_images(x, type(self).__name__)
        return self.encoder(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """(B, n_hidden) hidden activations -> (B, 1, 28, 28) images."""
        check_images(h, f"{type(self).__name__}.decode", expected=(self.n_hidden,), what="hidden activations")
        if self.unit_norm_decoder:                                          # column j used as V_j / ||V_j||:
            h = h / self.decoder[0].weight.norm(dim=0).clamp_min(1e-12)    # (B, n_hidden) / (n_hidden,), same sum
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def features(self, part: str = "decoder") -> torch.Tensor:
        """Each hidden unit's weights as a 28x28 image: (n_hidden, 1, 28, 28), detached.

        ``"decoder"``: column j of the decoder's weight as the decoder uses it (of length 1
        with ``unit_norm_decoder``), the pattern unit j adds to the output per unit of
        activation. ``"encoder"``: row j of the encoder's weight, the pattern of pixels that
        excites unit j (a template it matches the image against).
        """
        if part == "decoder":
            weights = self.decoder[0].weight.T                              # (784, n_hidden) -> (n_hidden, 784)
            if self.unit_norm_decoder:
                weights = weights / weights.norm(dim=1, keepdim=True).clamp_min(1e-12)
        elif part == "encoder":
            weights = self.encoder[1].weight                                # (n_hidden, 784)
        else:
            raise ValueError(f"part must be 'decoder' or 'encoder', got {part!r}")
        return weights.detach().clone().unflatten(1, IMAGE_SHAPE)          # (n_hidden, 1, 28, 28)


# ---------------------------------------------------------------------------------------------
# Lessons 04-07: the variational autoencoder


class VAEOutput(NamedTuple):
    """What a VAE's ``forward`` returns: everything its loss needs, by name (and unpackable in this order).

    logits: (B, 1, 28, 28) decoder outputs *before* the sigmoid; ``torch.sigmoid(logits)`` are the
        pixel probabilities. The loss takes logits because BCE computed from them is numerically stable.
    mu, logvar: (B, k) mean and log-variance of the encoder's Gaussian q(z | x), one per latent dimension.
    """

    logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw z ~ N(mu, sigma^2) as z = mu + sigma * eps, with eps ~ N(0, 1) and sigma = exp(0.5 * logvar).

    mu, logvar: tensors of the same shape, (B, k) in a VAE; z has that shape. Gradients reach both
    (eps depends on no parameter). generator: a ``torch.Generator`` on mu's device, for draws that
    repeat; None draws eps with ``torch.randn_like(mu)``. Lesson 05 explains the trick and has you
    write it (``ah.checks.check_reparameterize``).
    """
    if not (torch.is_tensor(mu) and torch.is_tensor(logvar)):
        raise TypeError(f"reparameterize expects two tensors (mu, logvar), got {type(mu).__name__} and "
                        f"{type(logvar).__name__}")
    if mu.shape != logvar.shape:
        raise ValueError(f"mu has shape {tuple(mu.shape)} but logvar has {tuple(logvar.shape)}; they must match")
    sigma = torch.exp(0.5 * logvar)                                                   # (B, k), always > 0
    if generator is None:
        eps = torch.randn_like(mu)                                                    # (B, k), no gradient
    else:   # the same numbers randn_like would draw, from the given generator (randn_like takes none in older torch)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + sigma * eps                                                           # (B, k)


class _GaussianVAE(nn.Module):
    """What every VAE of the course shares, given its own ``encode`` and ``decode``.

    A subclass defines ``encode(x) -> (mu, logvar)`` and ``decode(z, logits=False)``; this base adds
    ``forward`` (z sampled), ``reconstruct`` (z = mu) and ``sample`` (z from the prior).
    """

    latent_dim: int

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        """(B, 1, 28, 28) images -> VAEOutput(logits (B, 1, 28, 28), mu (B, k), logvar (B, k)), z sampled."""
        mu, logvar = self.encode(x)                                         # (B, k), (B, k)
        z = reparameterize(mu, logvar, generator)                           # (B, k)
        return VAEOutput(self.decode(z, logits=True), mu, logvar)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) images -> (B, 1, 28, 28) probabilities of decode(mu): no sampling."""
        return self.decode(self.encode(x)[0])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images decoded from z ~ N(0, I), the prior: (n, 1, 28, 28) probabilities."""
        z = torch.randn(n, self.latent_dim, generator=generator, device=model_device(self))   # (n, k)
        return self.decode(z)


class MLPVAE(_GaussianVAE):
    """A fully connected VAE: 784 -> hidden... -> (mu, logvar); z -> ...hidden -> 784 logits.

    latent_dim: size of z (2 by default, so the latent space can be drawn).
    hidden: widths of the encoder's hidden layers, mirrored by the decoder; ``hidden=(400,),
        latent_dim=20`` is the 784-400-20 VAE of pytorch/examples ``vae/main.py``.

    The interface every VAE of the course shares:

    - ``encode(x)`` -> ``(mu, logvar)``, each (B, latent_dim): the Gaussian q(z | x);
    - ``decode(z, logits=False)`` -> (B, 1, 28, 28) pixel probabilities in (0, 1); ``logits=True``
      gives the logits before the sigmoid (for ``ah.bce_with_logits``);
    - ``forward(x, generator=None)`` -> :class:`VAEOutput`, z sampled by :func:`reparameterize` in
      eval mode too (the ELBO is defined with a sample);
    - ``reconstruct(x)`` -> probabilities of decode(mu); ``sample(n)`` -> n images decoded from z ~ N(0, I).

    Lesson 04 builds it step by step.
    """

    def __init__(self, latent_dim: int = 2, hidden: Sequence[int] = (512, 256)):
        super().__init__()
        positive_int(latent_dim, "latent_dim")
        hidden = _check_hidden(hidden)
        self.latent_dim, self.hidden = latent_dim, hidden
        n_pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]        # 784

        widths = (n_pixels, *hidden)
        layers: list[nn.Module] = [nn.Flatten()]                            # (B, 1, 28, 28) -> (B, 784)
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]                   # (B, w_in) -> (B, w_out)
        self.encoder = nn.Sequential(*layers)                               # -> (B, widths[-1])
        self.mu_head = nn.Linear(widths[-1], latent_dim)                    # (B, widths[-1]) -> (B, k)
        self.logvar_head = nn.Linear(widths[-1], latent_dim)                # (B, widths[-1]) -> (B, k), any real

        back = (latent_dim, *reversed(hidden))
        layers = []
        for w_in, w_out in zip(back[:-1], back[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]                   # (B, w_in) -> (B, w_out)
        layers += [nn.Linear(back[-1], n_pixels),                            # (B, back[-1]) -> (B, 784) logits
                   nn.Unflatten(1, IMAGE_SHAPE)]                             # (B, 784) -> (B, 1, 28, 28)
        self.decoder = nn.Sequential(*layers)   # no sigmoid here: decode() applies it unless logits=True

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, 28, 28) images -> (mu, logvar), each (B, latent_dim)."""
        check_images(x, type(self).__name__)
        h = self.encoder(x)                                                 # (B, hidden[-1])
        return self.mu_head(h), self.logvar_head(h)                         # (B, k), (B, k)

    def decode(self, z: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """(B, latent_dim) codes -> (B, 1, 28, 28): probabilities in (0, 1), or the raw logits if ``logits``."""
        check_images(z, f"{type(self).__name__}.decode", expected=(self.latent_dim,), what="codes")
        out = self.decoder(z)                                               # (B, 1, 28, 28) logits
        return out if logits else torch.sigmoid(out)


# ---------------------------------------------------------------------------------------------
# Lesson 08: the convolutional VAE


def _check_conv_channels(channels) -> tuple[int, int, int, int]:
    """``channels`` as a tuple (c1, c2, c3, c4) of four positive ints, or a ValueError naming it."""
    return positive_ints(channels, "channels (c1, c2, c3, c4)", count=4)


def _conv_down(channels: Sequence[int], negative_slope: float) -> list[nn.Module]:
    """The convolutional trunk of lesson 08's encoder (and of ``vq.VQVAE``'s): four 3x3 convolutions with
    padding 1, each followed by a LeakyReLU, so that only the stride changes the size.

    (B, 1, 28, 28) -> (B, c1, 28, 28) -> (B, c2, 14, 14) -> (B, c3, 7, 7) -> (B, c4, 7, 7)
    """
    c1, c2, c3, c4 = channels
    return [nn.Conv2d(1, c1, 3, stride=1, padding=1), nn.LeakyReLU(negative_slope),    # -> (B, c1, 28, 28)
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.LeakyReLU(negative_slope),   # -> (B, c2, 14, 14)
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.LeakyReLU(negative_slope),   # -> (B, c3, 7, 7)
            nn.Conv2d(c3, c4, 3, stride=1, padding=1), nn.LeakyReLU(negative_slope)]   # -> (B, c4, 7, 7)


def _conv_up(channels: Sequence[int], negative_slope: float) -> list[nn.Module]:
    """The mirror image of :func:`_conv_down` with transposed convolutions, ending in logits (no activation).

    (B, c4, 7, 7) -> (B, c3, 7, 7) -> (B, c2, 14, 14) -> (B, c1, 28, 28) -> (B, 1, 28, 28)
    """
    c1, c2, c3, c4 = channels
    return [nn.ConvTranspose2d(c4, c3, 3, stride=1, padding=1), nn.LeakyReLU(negative_slope),   # -> (B, c3, 7, 7)
            nn.ConvTranspose2d(c3, c2, 3, stride=2, padding=1, output_padding=1),
            nn.LeakyReLU(negative_slope),                                                     # -> (B, c2, 14, 14)
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1),
            nn.LeakyReLU(negative_slope),                                                     # -> (B, c1, 28, 28)
            nn.ConvTranspose2d(c1, 1, 3, stride=1, padding=1)]                                # -> (B, 1, 28, 28)


class ConvVAE(_GaussianVAE):
    """A convolutional variational autoencoder, with MLPVAE's interface.

    latent_dim: size of z. channels: (c1, c2, c3, c4), the widths of the four convolutions; the
    default (32, 64, 64, 64) flattens to 64 x 7 x 7 = 3136 features. negative_slope: of the LeakyReLU
    after every convolution (0.01, PyTorch's default).

    Encoder: :func:`_conv_down`, then flatten (B, c4*49) and two linear heads, mu (B, k) and logvar (B, k).
    Decoder: linear (B, k) -> (B, c4*49) -> (B, c4, 7, 7), then :func:`_conv_up` to (B, 1, 28, 28) logits;
    ``decode`` applies the sigmoid unless ``logits=True``. Lesson 08 builds it and explains the sizes.
    """

    def __init__(self, latent_dim: int = 2, channels: Sequence[int] = (32, 64, 64, 64), negative_slope: float = 0.01):
        super().__init__()
        positive_int(latent_dim, "latent_dim")
        channels = _check_conv_channels(channels)
        self.latent_dim, self.channels = latent_dim, channels
        c4 = channels[3]
        self.n_features = c4 * 7 * 7                                        # 3136 for the default channels
        self.encoder = nn.Sequential(
            *_conv_down(channels, negative_slope),                          # (B, 1, 28, 28) -> (B, c4, 7, 7)
            nn.Flatten(),                                                   # -> (B, c4*49)
        )
        self.mu_head = nn.Linear(self.n_features, latent_dim)               # (B, c4*49) -> (B, k)
        self.logvar_head = nn.Linear(self.n_features, latent_dim)           # (B, c4*49) -> (B, k), any real
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, self.n_features), nn.LeakyReLU(negative_slope),   # (B, k) -> (B, c4*49)
            nn.Unflatten(1, (c4, 7, 7)),                                    # -> (B, c4, 7, 7)
            *_conv_up(channels, negative_slope),                            # -> (B, 1, 28, 28) logits
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, 28, 28) images -> (mu, logvar), each (B, latent_dim)."""
        check_images(x, type(self).__name__)
        h = self.encoder(x)                                                 # (B, c4*49)
        return self.mu_head(h), self.logvar_head(h)                         # (B, k), (B, k)

    def decode(self, z: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """(B, latent_dim) codes -> (B, 1, 28, 28): probabilities in (0, 1), or the raw logits if ``logits``."""
        check_images(z, f"{type(self).__name__}.decode", expected=(self.latent_dim,), what="codes")
        out = self.decoder(z)                                               # (B, 1, 28, 28) logits
        return out if logits else torch.sigmoid(out)


# ---------------------------------------------------------------------------------------------
# Lesson 10: the conditional VAE, whose encoder and decoder are both told the class


def check_labels(y, n_classes: int, who: str, batch: int | None = None) -> torch.Tensor:
    """Return ``y`` as an int64 tensor of class indices, or raise an error that names the bad value.

    y: a (B,) tensor of whole numbers in 0..n_classes-1 (a python int is accepted too and becomes a
    (1,) tensor). batch: when given, B must equal it (one label per image). The checks, in order:
    a tensor (or int); whole numbers (a float or bool tensor is refused, since 2.7 is no class);
    shape (B,) (a one-hot (B, n_classes) matrix is refused with a hint: the model makes the one-hot
    itself); every value in range.
    """
    if isinstance(y, bool) or not (torch.is_tensor(y) or isinstance(y, numbers.Integral)):
        raise TypeError(f"{who} expects class labels as a tensor of whole numbers (or an int), "
                        f"got {type(y).__name__}: {y!r}")
    if not torch.is_tensor(y):
        y = torch.tensor([int(y)])
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{who} expects class labels as whole numbers (an int64 tensor of class indices), "
                        f"got dtype {y.dtype}"
                        + (f" with values such as {y.flatten()[0].item()!r}" if y.numel() else ""))
    if y.dim() != 1:
        hint = (": pass class indices such as tensor([3, 0, 7]), not one-hot rows; the model makes the one-hot "
                "itself" if y.dim() == 2 and y.shape[1] == n_classes else "")
        raise ValueError(f"{who} expects labels of shape (batch,), one class index per image, got "
                         f"{tuple(y.shape)}{hint}")
    if batch is not None and y.shape[0] != batch:
        raise ValueError(f"{who}: {y.shape[0]} labels for {batch} images; give one label per image")
    if y.numel():
        bad = y[(y < 0) | (y >= n_classes)]
        if bad.numel():
            raise ValueError(f"{who}: label {bad[0].item()} is out of range; the classes are 0..{n_classes - 1}")
    return y.long()


class ConditionalVAE(nn.Module):
    """A conditional VAE: encoder and decoder both receive the class label as a one-hot vector.

    latent_dim: size of z, the "style" the label does not give (2 by default, so it can be drawn).
    n_classes: how many classes the labels run over (10 for Fashion-MNIST and MNIST).
    hidden: widths of the encoder's hidden layers, mirrored by the decoder (784-512-256-z as MLPVAE)::

        encoder: [x flattened (B, 784), one_hot(y) (B, n)] -> hidden... -> mu (B, k), logvar (B, k)
        decoder: [z (B, k), one_hot(y) (B, n)] -> ...hidden -> (B, 784) -> (B, 1, 28, 28) logits

    MLPVAE's interface with a label in every call: ``encode(x, y)``, ``decode(z, y, logits=False)``,
    ``forward(x, y, generator=None)`` -> :class:`VAEOutput` (train with ``ah.fit(...,
    objective=ah.vae_objective(), with_labels=True)``), ``reconstruct(x, y)``, and ``sample(n, y)``
    with y one class (an int) or one label per image. Labels are (B,) class indices, checked by
    :func:`check_labels`. Lesson 10 builds it.
    """

    def __init__(self, latent_dim: int = 2, n_classes: int = 10, hidden: Sequence[int] = (512, 256)):
        super().__init__()
        positive_int(latent_dim, "latent_dim")
        integer(n_classes, "n_classes", low=2)
        hidden = _check_hidden(hidden)
        self.latent_dim, self.n_classes, self.hidden = latent_dim, n_classes, hidden
        n_pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]        # 784

        widths = (n_pixels + n_classes, *hidden)
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]                   # (B, w_in) -> (B, w_out)
        self.encoder = nn.Sequential(*layers)                               # (B, 784 + n) -> (B, hidden[-1])
        self.mu_head = nn.Linear(widths[-1], latent_dim)                    # (B, hidden[-1]) -> (B, k)
        self.logvar_head = nn.Linear(widths[-1], latent_dim)                # (B, hidden[-1]) -> (B, k), any real

        back = (latent_dim + n_classes, *reversed(hidden))
        layers = []
        for w_in, w_out in zip(back[:-1], back[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]                   # (B, w_in) -> (B, w_out)
        layers += [nn.Linear(back[-1], n_pixels),                            # (B, hidden[0]) -> (B, 784) logits
                   nn.Unflatten(1, IMAGE_SHAPE)]                             # (B, 784) -> (B, 1, 28, 28)
        self.decoder = nn.Sequential(*layers)   # no sigmoid here: decode() applies it unless logits=True

    def one_hot(self, y: torch.Tensor, batch: int, who: str) -> torch.Tensor:
        """(B,) class indices -> (B, n_classes) float one-hot rows on the model's device, labels checked."""
        y = check_labels(y, self.n_classes, who, batch).to(model_device(self))
        return nn.functional.one_hot(y, self.n_classes).float()             # (B, n_classes)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, 28, 28) images and (B,) labels -> (mu, logvar), each (B, latent_dim)."""
        check_images(x, type(self).__name__)
        c = self.one_hot(y, x.shape[0], f"{type(self).__name__}.encode")   # (B, n_classes)
        h = self.encoder(torch.cat([x.flatten(1), c], 1))                   # (B, 784 + n) -> (B, hidden[-1])
        return self.mu_head(h), self.logvar_head(h)                         # (B, k), (B, k)

    def decode(self, z: torch.Tensor, y: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """(B, latent_dim) codes and (B,) labels -> (B, 1, 28, 28) probabilities, or logits if ``logits``."""
        check_images(z, f"{type(self).__name__}.decode", expected=(self.latent_dim,), what="codes")
        c = self.one_hot(y, z.shape[0], f"{type(self).__name__}.decode")   # (B, n_classes)
        out = self.decoder(torch.cat([z, c], 1))                            # (B, k + n) -> (B, 1, 28, 28) logits
        return out if logits else torch.sigmoid(out)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> VAEOutput:
        """(B, 1, 28, 28) images and (B,) labels -> VAEOutput(logits, mu, logvar), z sampled."""
        if y is None:
            raise TypeError(f"{type(self).__name__} needs each image's label: call model(x, y); to train it, "
                            "ah.fit(..., with_labels=True) hands the objective each batch's labels")
        mu, logvar = self.encode(x, y)                                      # (B, k), (B, k)
        z = reparameterize(mu, logvar, generator)                           # (B, k)
        return VAEOutput(self.decode(z, y, logits=True), mu, logvar)

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) images and their (B,) labels -> probabilities of decode(mu, y): no sampling."""
        return self.decode(self.encode(x, y)[0], y)

    def sample(self, n: int, y, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images of the class(es) ``y`` decoded from z ~ N(0, I): (n, 1, 28, 28) probabilities.

        y: one class index (an int) for all n images, or a (n,) tensor of labels, one per image.
        """
        positive_int(n, "n")
        device = model_device(self)
        who = f"{type(self).__name__}.sample"
        if torch.is_tensor(y):                                              # one label per image
            y = check_labels(y, self.n_classes, who, batch=n)               # (n,)
        else:                                                               # one class for all n images
            y = check_labels(y, self.n_classes, who).expand(n)              # (n,)
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)            # (n, k)
        return self.decode(z, y)


# ---------------------------------------------------------------------------------------------
# Lesson 10: structured output. Given the top half of an image, the bottom half: one input, many
# right answers. A conditional VAE with a prior network (Sohn, Lee & Yan 2015) draws several of them;
# a deterministic network trained on the same loss can only draw their blurry average.

SPLIT_ROW = 14                       # rows 0..13 are the top half, rows 14..27 the bottom half
HALF_SHAPE = (1, SPLIT_ROW, 28)      # each half: (1, 14, 28), 392 pixels
_HALF_PIXELS = SPLIT_ROW * 28        # 392


def split_halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 1, 28, 28) images -> (top, bottom), each (B, 1, 14, 28): rows 0..13 and rows 14..27."""
    check_images(x, "split_halves")
    return x[:, :, :SPLIT_ROW], x[:, :, SPLIT_ROW:]


def join_halves(top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
    """(B, 1, 14, 28) top and bottom halves -> (B, 1, 28, 28) images, top above bottom."""
    check_images(top, "join_halves (top)", expected=HALF_SHAPE, what="top halves")
    check_images(bottom, "join_halves (bottom)", expected=HALF_SHAPE, what="bottom halves")
    if top.shape[0] != bottom.shape[0]:
        raise ValueError(f"join_halves: {top.shape[0]} top halves but {bottom.shape[0]} bottom halves")
    return torch.cat([top, bottom], dim=2)                                  # (B, 1, 28, 28)


class CompletionOutput(NamedTuple):
    """What :class:`HalfImageCVAE`'s ``forward`` returns: everything its loss needs, by name.

    logits: (B, 1, 14, 28) the generation network's outputs for the bottom half, before the sigmoid.
    mu, logvar: (B, k) the recognition network's Gaussian q(z | top, bottom), from which z was drawn.
    prior_mu, prior_logvar: (B, k) the prior network's Gaussian p(z | top).
    """

    logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    prior_mu: torch.Tensor
    prior_logvar: torch.Tensor


class HalfImageCVAE(nn.Module):
    """The structured-output conditional VAE of Sohn, Lee & Yan (2015): bottom halves given the top half.

    Three networks, whose roles lesson 10 explains::

        prior p(z | top):                top (B, 1, 14, 28) -> (B, 392) -> hidden... -> prior_mu, prior_logvar (B, k)
        recognition q(z | top, bottom):  x (B, 1, 28, 28) -> (B, 784) -> hidden... -> mu, logvar (B, k)
        generation p(bottom | top, z):   [z, top] (B, k + 392) -> ...hidden -> (B, 1, 14, 28) logits

    - ``prior(top)`` -> ``(prior_mu, prior_logvar)``; ``encode(top, bottom)`` -> ``(mu, logvar)``;
    - ``decode(z, top, logits=False)`` -> (B, 1, 14, 28) bottom-half probabilities (or logits);
    - ``forward(x, generator=None)`` -> :class:`CompletionOutput` for whole images x, z drawn from q
      (train with ``ah.fit(model, train, objective=ah.completion_objective())``);
    - ``sample(top, generator=None)`` -> one bottom half per top half, z drawn from the prior network.

    latent_dim: size of z. hidden: widths of the recognition and prior networks; the generation
    network mirrors them.
    """

    def __init__(self, latent_dim: int = 16, hidden: Sequence[int] = (512, 256)):
        super().__init__()
        positive_int(latent_dim, "latent_dim")
        hidden = _check_hidden(hidden)
        self.latent_dim, self.hidden = latent_dim, hidden
        n_pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]         # 784

        self.recognition = _mlp((n_pixels, *hidden))                        # (B, 784) -> (B, hidden[-1])
        self.mu_head = nn.Linear(hidden[-1], latent_dim)                    # -> (B, k)
        self.logvar_head = nn.Linear(hidden[-1], latent_dim)                # -> (B, k), any real
        self.prior_net = _mlp((_HALF_PIXELS, *hidden))                      # (B, 392) -> (B, hidden[-1])
        self.prior_mu_head = nn.Linear(hidden[-1], latent_dim)              # -> (B, k)
        self.prior_logvar_head = nn.Linear(hidden[-1], latent_dim)          # -> (B, k)
        self.generation = nn.Sequential(
            _mlp((latent_dim + _HALF_PIXELS, *reversed(hidden))),           # (B, k + 392) -> (B, hidden[0])
            nn.Linear(hidden[0], _HALF_PIXELS),                             # -> (B, 392) logits
            nn.Unflatten(1, HALF_SHAPE))                                    # -> (B, 1, 14, 28)

    def _top(self, top: torch.Tensor, who: str) -> torch.Tensor:
        check_images(top, f"{type(self).__name__}.{who}", expected=HALF_SHAPE, what="top halves")
        return top.flatten(1)                                               # (B, 392)

    def prior(self, top: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, 14, 28) top halves -> the prior network's (mu, logvar), each (B, latent_dim)."""
        h = self.prior_net(self._top(top, "prior"))                         # (B, hidden[-1])
        return self.prior_mu_head(h), self.prior_logvar_head(h)

    def encode(self, top: torch.Tensor, bottom: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top and bottom halves, each (B, 1, 14, 28) -> the recognition network's (mu, logvar), each (B, k)."""
        h = self.recognition(join_halves(top, bottom).flatten(1))           # (B, 784) -> (B, hidden[-1])
        return self.mu_head(h), self.logvar_head(h)

    def decode(self, z: torch.Tensor, top: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """(B, k) codes and (B, 1, 14, 28) top halves -> (B, 1, 14, 28) bottom halves: probabilities, or logits."""
        check_images(z, f"{type(self).__name__}.decode", expected=(self.latent_dim,), what="codes")
        flat_top = self._top(top, "decode")
        if flat_top.shape[0] != z.shape[0]:
            raise ValueError(f"{type(self).__name__}.decode: {z.shape[0]} codes for {flat_top.shape[0]} top halves")
        out = self.generation(torch.cat([z, flat_top], 1))                  # (B, k + 392) -> (B, 1, 14, 28)
        return out if logits else torch.sigmoid(out)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> CompletionOutput:
        """(B, 1, 28, 28) whole images -> CompletionOutput; z drawn from q(z | top, bottom) (training)."""
        top, bottom = split_halves(x)                                       # (B, 1, 14, 28) each
        mu, logvar = self.encode(top, bottom)                               # (B, k), (B, k)
        prior_mu, prior_logvar = self.prior(top)                            # (B, k), (B, k)
        z = reparameterize(mu, logvar, generator)                           # (B, k)
        return CompletionOutput(self.decode(z, top, logits=True), mu, logvar, prior_mu, prior_logvar)

    def sample(self, top: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One plausible bottom half per top half: z ~ p(z | top), decoded. (B, 1, 14, 28) probabilities."""
        prior_mu, prior_logvar = self.prior(top)                            # (B, k), (B, k)
        return self.decode(reparameterize(prior_mu, prior_logvar, generator), top)


class HalfImageRegressor(nn.Module):
    """Lesson 10's deterministic baseline: a network from the top half straight to the bottom half, no z.

    ``[top (B, 392)] -> hidden... -> (B, 392) -> (B, 1, 14, 28)`` logits of Bernoulli pixels, trained on
    the same loss as :class:`HalfImageCVAE` (``ah.completion_objective()``). ``forward(x)`` takes whole
    (B, 1, 28, 28) images and uses only their top half; ``predict(top)`` gives bottom-half probabilities.
    """

    def __init__(self, hidden: Sequence[int] = (512, 256)):
        super().__init__()
        hidden = _check_hidden(hidden)
        self.hidden = hidden
        self.net = nn.Sequential(
            _mlp((_HALF_PIXELS, *hidden)),                                  # (B, 392) -> (B, hidden[-1])
            nn.Linear(hidden[-1], _HALF_PIXELS),                            # -> (B, 392) logits
            nn.Unflatten(1, HALF_SHAPE))                                    # -> (B, 1, 14, 28)

    def predict(self, top: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """(B, 1, 14, 28) top halves -> (B, 1, 14, 28) bottom halves: probabilities, or logits."""
        check_images(top, f"{type(self).__name__}.predict", expected=HALF_SHAPE, what="top halves")
        out = self.net(top.flatten(1))
        return out if logits else torch.sigmoid(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) whole images -> (B, 1, 14, 28) logits for the bottom half, from the top half alone."""
        return self.predict(split_halves(x)[0], logits=True)
