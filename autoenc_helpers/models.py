"""The autoencoders of the course, with the tensor shape written at every layer.

Every model takes images of shape (B, 1, 28, 28) and gives back the same shape.
``encode`` maps images to codes, ``decode`` maps codes back to images, and
``forward`` is ``decode(encode(x))``. A batch of the wrong shape raises a
ValueError that names the shape it got and the shape it expected.

- :class:`MLPAutoencoder`: fully connected, 784-128-64-12-3 by default (the
  architecture of seeds 001 and 004), built step by step in notebook 01.
- :class:`ConvAutoencoder`: Conv2d/MaxPool2d down to an 8x2x2 code and
  ConvTranspose2d back up (seed 004's shapes), built in notebook 01.
- :class:`PCA`: the linear special case, fitted in closed form, with the same
  ``encode``/``decode`` interface so it can stand beside the autoencoders;
  built by hand in notebook 01.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["IMAGE_SHAPE", "OUTPUT_ACTIVATIONS", "check_images", "MLPAutoencoder", "ConvAutoencoder", "PCA",
           "count_parameters"]

IMAGE_SHAPE = (1, 28, 28)
OUTPUT_ACTIVATIONS = ("sigmoid", "tanh", "none")


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


def _output_layer(name: str) -> nn.Module:
    if name not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"output activation {name!r} is not one of {OUTPUT_ACTIVATIONS}")
    # The output range must cover the input range: Sigmoid gives (0, 1) for images in [0, 1];
    # Tanh gives (-1, 1) for images normalised to [-1, 1]; "none" leaves it unbounded.
    return {"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "none": nn.Identity()}[name]


def count_parameters(model: nn.Module) -> int:
    """The number of trainable numbers in a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class MLPAutoencoder(nn.Module):
    """A fully connected autoencoder: 784 -> hidden... -> latent_dim -> ...hidden -> 784.

    latent_dim: size of the code (the bottleneck). 3 by default, so codes can be drawn.
    hidden: widths of the encoder's hidden layers; the decoder mirrors them.
    output: ``"sigmoid"`` for images in [0, 1], ``"tanh"`` for [-1, 1], ``"none"``.

    With the defaults this is the 784-128-64-12-3 network of the course sources,
    ReLU after every hidden layer and no activation on the code itself.
    """

    def __init__(self, latent_dim: int = 3, hidden: Sequence[int] = (128, 64, 12), output: str = "sigmoid"):
        super().__init__()
        if not isinstance(latent_dim, int) or latent_dim <= 0:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        hidden = tuple(hidden)
        if any(not isinstance(h, int) or h <= 0 for h in hidden):
            raise ValueError(f"hidden sizes must be positive ints, got {hidden!r}")
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
    """A convolutional autoencoder with a (channels[1], 2, 2) code.

    The encoder halves the image with strided convolutions and max pooling;
    the decoder grows it back with transposed convolutions. With the default
    channels (16, 8), the shapes are those of the course source (seed 004):

        1x28x28 -> 16x10x10 -> 16x5x5 -> 8x3x3 -> 8x2x2  (a code of 32 numbers)
        8x2x2 -> 16x5x5 -> 8x15x15 -> 1x28x28

    Output sizes follow ``out = (in + 2*padding - kernel) // stride + 1`` for a
    convolution and ``out = (in - 1)*stride - 2*padding + kernel`` for a
    transposed one (notebook 01 works them through).
    """

    def __init__(self, channels: Sequence[int] = (16, 8), output: str = "sigmoid"):
        super().__init__()
        channels = tuple(channels)
        if len(channels) != 2 or any(not isinstance(c, int) or c <= 0 for c in channels):
            raise ValueError(f"channels must be two positive ints (c1, c2), got {channels!r}")
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

    ``encode``: z = (x - mean) @ W, with W the top ``n_components`` eigenvectors
    of the pixel covariance, (784, k). ``decode``: x_hat = z @ W.T + mean.
    No activation anywhere: PCA is the best *linear* code of size k in squared
    error, which is the yardstick a nonlinear autoencoder has to beat.
    Built by hand in notebook 01 first.
    """

    def __init__(self, n_components: int):
        super().__init__()
        if not isinstance(n_components, int) or not 0 < n_components <= 784:
            raise ValueError(f"n_components must be an int in 1..784, got {n_components!r}")
        self.latent_dim = n_components
        self.register_buffer("mean", torch.zeros(784))                         # (784,)
        self.register_buffer("components", torch.zeros(784, n_components))     # (784, k)
        self.register_buffer("explained_variance", torch.zeros(n_components))  # (k,)

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> "PCA":
        """Fit to (N, 1, 28, 28) images; returns self."""
        check_images(images, "PCA.fit")
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
        if not isinstance(k, int) or not 0 < k <= self.latent_dim:
            raise ValueError(f"k must be an int in 1..{self.latent_dim}, got {k!r}")
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
