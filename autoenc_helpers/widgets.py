"""Interactive widgets: touch a trained model and see the answer at once.

Each widget is built by a factory class that holds its state and returns a
displayable object. The computation is a pure function (a code in, an image
array out), and the slider callbacks only call it and redraw, so the same
function can be tested and timed without a browser.

Redrawing uses matplotlib inside an ``ipywidgets.Output``: it works in
JupyterLab, the classic Notebook and Google Colab with no extension. Sliders
use ``continuous_update=False``: the network runs when you let go.

Speed: a widget makes its figure once and, on every later redraw, only swaps
the image data and the title text, then shows the same figure again. Making a
new figure and laying it out each time cost more than the network and the PNG
together (``python3 benchmarks/benchmark.py --parts widgets`` times it,
from the slider change to the PNG the browser receives). The figure is made
with ``matplotlib.figure.Figure``, not ``plt.subplots``, so pyplot does not
show it a second time at the end of the cell.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import ipywidgets as W
import numpy as np
import torch
from IPython.core.pylabtools import print_figure
from IPython.display import Image, clear_output, display
from matplotlib.figure import Figure

from .losses import psnr_db
from .models import eval_mode, model_device
from .validate import index, number, positive_int
from .noise import LEVEL_NAMES, corrupt
from .plots import image_grid

__all__ = ["Explorer", "decode_image", "typical_gap", "gaps_to_nearest", "LatentExplorer", "denoise_panels",
           "NoiseExplorer", "factor_panels", "ratio_label", "LossFactorExplorer", "conditional_image",
           "ConditionalExplorer", "code_grid_panels", "CodeGridExplorer"]


def _kept_figure(ncols: int, figsize: tuple[float, float], pad: float, draw: Callable, **subplots) -> Figure:
    """A figure a widget keeps and redraws: 1 x ``ncols`` axes, ``draw(axes)`` fills them, laid out once.

    Made without pyplot, so it is not shown again at the end of the cell and needs no closing.
    """
    fig = Figure(figsize=figsize)
    axes = fig.subplots(1, ncols, squeeze=False, **subplots)[0]          # (ncols,) axes
    draw(axes)
    fig.tight_layout(pad=pad)
    return fig


def _picture(ax, image: np.ndarray, title: str) -> None:
    """Show a grey image in [0, 1] on ``ax`` with a small title and no axes.

    Hiding the two axes as well as switching them off draws the same picture, but spares matplotlib
    laying out tick labels nobody sees each time it places the title (a third of a redraw).
    """
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()
    ax.xaxis.set_visible(False)
    ax.yaxis.set_visible(False)


def _redraw(output: W.Output, shown) -> None:
    """Replace what ``output`` shows by ``shown``: a kept figure (rendered to PNG now) or a ready PNG image."""
    with output:
        clear_output(wait=True)
        display(shown)


def _png(fig: Figure) -> Image:
    """The PNG the notebook would receive for ``display(fig)`` (IPython's inline rendering), made now, kept."""
    return Image(data=print_figure(fig, "png"))


class Explorer:
    """Base of every explorer below: the object displays as its ``widget`` (an ipywidgets box)."""

    widget: W.Widget

    def _ipython_display_(self) -> None:
        display(self.widget)


@torch.no_grad()
def decode_image(decode: Callable[[torch.Tensor], torch.Tensor], code: Sequence[float],
                 device: torch.device | str = "cpu") -> np.ndarray:
    """Decode one code into a (28, 28) numpy image with values in [0, 1] (a pure function).

    decode: maps (1, k) codes to (1, 1, 28, 28) images, e.g. ``model.decode``.
    code: k numbers.
    """
    z = torch.as_tensor(np.asarray(code, dtype=np.float32), device=device).reshape(1, -1)   # (1, k)
    image = decode(z)                                                                       # (1, 1, 28, 28)
    if image.dim() != 4 or image.shape[:2] != (1, 1):
        raise ValueError(f"decode must turn a (1, k) code into a (1, 1, H, W) image, gave {tuple(image.shape)}")
    return image[0, 0].clamp(0, 1).float().cpu().numpy()                                    # (28, 28)


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # the exact formula: the faster matrix-product one is off by ~1e-3 for a point and itself
    return torch.cdist(a.float(), b.float(), compute_mode="donot_use_mm_for_euclid_dist")


def _image_picker(n: int, labels, classes, width: str) -> W.Dropdown:
    """A drop-down of the first ``n`` test images, each named by its number and, with labels, its class."""
    names = [f"test image {i}" + (f" ({classes[int(labels[i])]})" if labels is not None and classes else "")
             for i in range(n)]
    return W.Dropdown(options=list(zip(names, range(n))), value=0, description="image", layout=W.Layout(width=width))


def _code_slider(i: int, value: float, low, high, width: str) -> W.FloatSlider:
    """The slider of code dimension ``i``: ``low`` to ``high`` (numbers or 0-d tensors) in 200 steps, at ``value``."""
    return W.FloatSlider(value=float(np.clip(value, float(low), float(high))), min=float(low), max=float(high),
                         step=float((high - low) / 200), description=f"z[{i}]", continuous_update=False,
                         readout_format=".2f", layout=W.Layout(width=width))


def _check_image_batch(images, name: str) -> None:
    """A non-empty (N, 1, 28, 28) torch tensor, or a ValueError naming the argument."""
    if not torch.is_tensor(images) or images.dim() != 4 or images.shape[0] == 0:
        got = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        hint = " (a numpy array: torch.from_numpy(...) makes it a tensor)" if isinstance(images, np.ndarray) else ""
        raise ValueError(f"{name} must be a non-empty (N, 1, 28, 28) torch tensor, got {got}{hint}")


@torch.no_grad()
def _is_vae(model, images: torch.Tensor) -> bool:
    """Whether ``model`` encodes an image into a (mu, logvar) pair and knows its latent size (draws nothing)."""
    if not hasattr(model, "latent_dim") or not callable(getattr(model, "encode", None)):
        return False
    with eval_mode(model):
        out = model.encode(images[:1].to(next(iter(model.parameters()), images).device))
    return isinstance(out, tuple) and len(out) == 2


def _check_labels(labels, classes, n: int) -> None:
    """Labels, when given: an (n,) tensor of class indices, each naming one of ``classes``."""
    if labels is None:
        return
    if not torch.is_tensor(labels) or labels.shape != (n,):
        got = tuple(labels.shape) if torch.is_tensor(labels) else type(labels).__name__
        raise ValueError(f"labels must be an ({n},) tensor, one per image, got {got}")
    if classes is not None and len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)):
        bad = int(labels.max()) if int(labels.max()) >= len(classes) else int(labels.min())
        raise ValueError(f"label {bad} names no class: there are {len(classes)} classes, 0..{len(classes) - 1}")


def typical_gap(codes: torch.Tensor, sample: int = 1000) -> float:
    """The median distance from a real code to its nearest *other* real code (over the first ``sample`` codes)."""
    if codes.dim() != 2 or codes.shape[0] < 2:
        raise ValueError(f"need an (N, k) tensor of at least 2 codes, got {tuple(codes.shape)}")
    nearest_other = _distances(codes[:sample], codes).topk(2, largest=False).values[:, 1]
    return float(nearest_other.median().clamp_min(1e-12))


def gaps_to_nearest(points: torch.Tensor, codes: torch.Tensor, gap: float | None = None) -> torch.Tensor:
    """For each of the (M, k) points, the distance to the nearest of the (N, k) codes, in typical gaps: (M,)."""
    gap = typical_gap(codes) if gap is None else gap
    return _distances(points, codes).min(1).values / gap


class LatentExplorer(Explorer):
    """One slider per code dimension, decoding live, with a 'reset to this image's encoding' control.

    decode: ``model.decode`` or any function from (1, k) codes to (1, 1, 28, 28) images.
    codes: (N, k) codes of real images. They set each slider's range (their
        min to max, widened by ``margin`` on both sides, so you can leave the
        region the decoder knows) and the readout of how far the current code is
        from the nearest real one.
    images: the (N, 1, 28, 28) images the codes came from, for the reset control.
    labels, classes: optional, to name the images in the picker.
    max_sliders: at most this many sliders (the first dimensions); the other
        dimensions keep the value of the image last reset to.
    dims: which dimensions get a slider, in this order, instead of the first
        ``max_sliders`` (e.g. a VAE's most active units, by ``ah.kl_per_dimension``).
    limits: (low, high) for every slider instead of the range of ``codes``; for a
        VAE, ``(-3, 3)`` covers 99.7% of its N(0, 1) prior in each dimension.

    For a VAE (notebook 04): ``mu, _ = ah.encode(vae, test)`` and
    ``LatentExplorer(vae.decode, mu, images=test.images, limits=(-3, 3))``;
    ``vae.decode`` gives pixel probabilities, the means ``mu`` are the codes.
    """

    def __init__(self, decode: Callable[[torch.Tensor], torch.Tensor], codes: torch.Tensor, *,
                 images: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                 classes: Sequence[str] | None = None, max_sliders: int = 8, margin: float = 0.25,
                 n_choices: int = 20, dims: Sequence[int] | None = None,
                 limits: tuple[float, float] | None = None):
        if not torch.is_tensor(codes) or codes.dim() != 2 or codes.shape[0] == 0:
            raise ValueError(f"codes must be a non-empty (N, k) tensor of real images' codes, got "
                             f"{tuple(codes.shape) if torch.is_tensor(codes) else type(codes).__name__}")
        if images is not None:
            _check_image_batch(images, "images")
            if images.shape[0] != codes.shape[0]:
                raise ValueError(f"{images.shape[0]} images for {codes.shape[0]} codes; they must match")
        _check_labels(labels, classes, codes.shape[0])
        margin = number(margin, "margin", low=0.0)
        self.decode = decode
        self.codes = codes.detach()
        self.device = codes.device
        self.images = images
        k = codes.shape[1]
        lo, hi = self.codes.min(0).values.cpu(), self.codes.max(0).values.cpu()
        span = (hi - lo).clamp_min(1e-6)
        lo, hi = lo - margin * span, hi + margin * span
        if limits is not None:
            if len(limits) != 2 or not float(limits[0]) < float(limits[1]):
                raise ValueError(f"limits must be (low, high) with low < high, got {limits!r}")
            lo, hi = torch.full((k,), float(limits[0])), torch.full((k,), float(limits[1]))
        self.dims = list(range(min(k, max_sliders))) if dims is None else [int(d) for d in dims]
        if not self.dims or len(set(self.dims)) != len(self.dims) or not all(0 <= d < k for d in self.dims):
            raise ValueError(f"dims must be distinct dimensions in 0..{k - 1}, got {dims!r}")
        # the readout's unit: the typical distance between a real code and its nearest real neighbour
        self.gap = typical_gap(self.codes)
        self.code = self.codes[0].cpu().numpy().copy()
        self.shown = 0            # the real image the sliders were last reset to (the left panel)
        self.renders = 0
        self.image: np.ndarray | None = None
        self.figure: Figure | None = None        # made at the first render, then only its image data change

        self.sliders = [_code_slider(i, self.code[i], lo[i], hi[i], "330px") for i in self.dims]
        for slider in self.sliders:
            slider.observe(self._on_slider, names="value")
        self.picker = _image_picker(min(n_choices, codes.shape[0]), labels, classes, "330px")
        self.reset_button = W.Button(description="reset to this image's encoding", layout=W.Layout(width="330px"))
        self.reset_button.on_click(lambda _: self.reset(self.picker.value))
        self.readout = W.HTML(layout=W.Layout(width="330px"))
        self.output = W.Output(layout=W.Layout(width="360px"))
        controls = W.VBox([*self.sliders, self.picker, self.reset_button, self.readout],
                          layout=W.Layout(width="350px"))        # fixed: the figure does not jump
        self.widget = W.HBox([controls, self.output])
        self._quiet = False
        self.render()

    # -- state changes -----------------------------------------------------------------
    def _on_slider(self, change) -> None:
        if self._quiet:
            return
        i = self.dims[self.sliders.index(change["owner"])]      # the dimension this slider moves
        self.code[i] = change["new"]
        self.render()

    def set_code(self, code: Sequence[float]) -> None:
        """Move every slider to ``code`` and redraw once."""
        code = np.asarray(code, dtype=np.float32).reshape(-1)
        if code.shape[0] != self.code.shape[0]:
            raise ValueError(f"a code of {code.shape[0]} numbers for a {self.code.shape[0]}-D code space")
        self.code = code.copy()
        self._quiet = True
        try:
            for slider, d in zip(self.sliders, self.dims):
                slider.value = float(np.clip(code[d], slider.min, slider.max))
        finally:
            self._quiet = False
        self.render()

    def reset(self, index: int) -> None:
        """Set the sliders to the code of real image ``index``."""
        self.picker.value = index
        self.shown = index
        self.set_code(self.codes[index].cpu().numpy())

    # -- drawing ---------------------------------------------------------------------------
    def distance_in_gaps(self) -> float:
        """Distance from the current code to the nearest real code, in typical real-to-real gaps."""
        z = torch.as_tensor(self.code, device=self.device).reshape(1, -1)
        return float(gaps_to_nearest(z, self.codes, self.gap)[0])

    def render(self) -> None:
        self.image = decode_image(self.decode, self.code, self.device)
        self.renders += 1
        d = self.distance_in_gaps()
        verdict = "near real codes" if d < 2 else ("between real codes" if d < 5 else "far from every real code")
        self.readout.value = (f"<b>{d:.1f}</b> gaps from the nearest real code ({verdict})")
        shown = [self.image]                                                      # the right panel
        if self.images is not None:
            shown.insert(0, self.images[self.shown, 0].detach().cpu().numpy())    # the left panel, (28, 28)
        if self.figure is None:
            def draw(axes):
                for ax, image, title in zip(axes, shown, ["chosen image", "decoded code"][-len(shown):]):
                    _picture(ax, image, title)
            self.figure = _kept_figure(len(shown), (1.7 * len(shown), 1.9), 0.3, draw)
        else:
            for ax, image in zip(self.figure.axes, shown):
                ax.images[0].set_data(image)
        _redraw(self.output, self.figure)


# ---------------------------------------------------------------------------------------------
# Lesson 02: the noise-level widget


@torch.no_grad()
def denoise_panels(models: Mapping[str, torch.nn.Module], image: torch.Tensor, kind: str, level: float, *,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """Corrupt one clean image and denoise it with each model (a pure function).

    models: ``{"denoising AE": dae, ...}``, each mapping (1, 1, 28, 28) images to the same shape.
    image: one clean (1, 28, 28) image in [0, 1]. The noise is drawn from a
    generator seeded with ``seed``, so the same arguments give the same panels.
    Returns (28, 28) arrays in order: ``"corrupted"``, one per model, ``"clean"``.
    """
    if not torch.is_tensor(image) or tuple(image.shape) != (1, 28, 28):
        got = tuple(image.shape) if torch.is_tensor(image) else type(image).__name__
        raise ValueError(f"denoise_panels needs one (1, 28, 28) image, got {got}")
    clean = image.unsqueeze(0)                                                   # (1, 1, 28, 28)
    generator = torch.Generator(device=clean.device).manual_seed(seed)
    noisy = corrupt(clean, kind, level, generator=generator)                    # (1, 1, 28, 28)
    panels = {"corrupted": noisy}
    for name, model in models.items():
        with eval_mode(model):
            panels[name] = model(noisy)
    panels["clean"] = clean
    return {name: x[0, 0].clamp(0, 1).float().cpu().numpy() for name, x in panels.items()}


class NoiseExplorer(Explorer):
    """A noise-level slider and a noise-type selector: corrupted | denoised by each model | clean, redrawn live.

    models: ``{"denoising AE": dae, "plain AE": ae}`` (or one model).
    images: (N, 1, 28, 28) clean held-out images; a picker chooses among the first ``n_choices``.
    max_levels: the slider's top for each noise kind (sigma for Gaussian, p otherwise).
    Each panel's title gives its MSE per pixel against the clean image and the PSNR in dB.
    """

    def __init__(self, models, images: torch.Tensor, *, kind: str = "gaussian", level: float = 0.3,
                 max_levels: Mapping[str, float] | None = None, seed: int = 0, n_choices: int = 20,
                 labels: torch.Tensor | None = None, classes: Sequence[str] | None = None):
        self.models = dict(models) if isinstance(models, Mapping) else {"denoised": models}
        _check_image_batch(images, "images")
        _check_labels(labels, classes, images.shape[0])
        for name, model in self.models.items():                  # each model must map an image to an image
            with torch.no_grad(), eval_mode(model):
                out = model(images[:1].to(next(iter(model.parameters()), images).device))   # nn.Identity has none
            if not torch.is_tensor(out) or out.shape != images[:1].shape:
                got = type(out).__name__ if not torch.is_tensor(out) else f"shape {tuple(out.shape)}"
                raise ValueError(f"models[{name!r}] returned {got}; the noise explorer needs models whose output "
                                 "is the denoised image, (1, 1, 28, 28) for one image (a plain or denoising "
                                 "autoencoder, not a VAE)")
        self.images, self.seed = images, seed
        self.max_levels = dict(max_levels or {"gaussian": 1.0, "masking": 1.0, "salt_and_pepper": 1.0})
        for name, top in self.max_levels.items():
            if name not in LEVEL_NAMES:
                raise ValueError(f"max_levels names {name!r}; the noise kinds are {tuple(LEVEL_NAMES)}")
            number(top, f"max_levels[{name!r}]", low=0.0, high=None if name == "gaussian" else 1.0)
            if top <= 0:
                raise ValueError(f"max_levels[{name!r}] must be above 0, got {top!r}")
        if kind not in self.max_levels:
            raise ValueError(f"kind {kind!r} is not one of {tuple(self.max_levels)}")
        self.renders = 0
        self.panels: dict[str, np.ndarray] = {}
        self.figure: Figure | None = None        # made at the first render, then only images and titles change

        self.kind = W.Dropdown(options=[(k.replace("_", "-"), k) for k in self.max_levels], value=kind,
                               description="noise type", layout=W.Layout(width="300px"))
        self.level = W.FloatSlider(value=level, min=0.0, max=self.max_levels[kind], step=0.01,
                                   description=LEVEL_NAMES[kind], continuous_update=False, readout_format=".2f",
                                   layout=W.Layout(width="300px"))
        self.picker = _image_picker(min(n_choices, images.shape[0]), labels, classes, "300px")
        self._quiet = False
        self.kind.observe(self._on_kind, names="value")
        self.level.observe(self._on_level, names="value")
        self.picker.observe(lambda _: self.render(), names="value")
        self.output = W.Output()
        self.widget = W.VBox([W.HBox([self.kind, self.level, self.picker]), self.output])
        self.render()

    def _on_level(self, change) -> None:
        if not self._quiet:
            self.render()

    def _on_kind(self, change) -> None:
        # the slider's name and top follow the kind; the level stays where it is when it still fits
        self._quiet = True
        try:
            self.level.max = self.max_levels[change["new"]]
            self.level.value = min(self.level.value, self.level.max)
            self.level.description = LEVEL_NAMES[change["new"]]
        finally:
            self._quiet = False
        self.render()

    def render(self) -> None:
        image = self.images[self.picker.value]
        self.panels = denoise_panels(self.models, image, self.kind.value, self.level.value, seed=self.seed)
        self.renders += 1
        clean = self.panels["clean"]
        titles = []
        for name, panel in self.panels.items():
            mse = float(((panel - clean) ** 2).mean())
            titles.append(name if name == "clean" else f"{name}\nMSE {mse:.4f} · {psnr_db(mse):.1f} dB")
        if self.figure is None:
            def draw(axes):
                for ax, panel, title in zip(axes, self.panels.values(), titles):
                    _picture(ax, panel, title)
            n = len(self.panels)
            self.figure = _kept_figure(n, (1.9 * n, 2.2), 0.3, draw)
        else:
            for ax, panel, title in zip(self.figure.axes, self.panels.values(), titles):
                ax.images[0].set_data(panel)
                ax.set_title(title, fontsize=8)
        _redraw(self.output, self.figure)


# ---------------------------------------------------------------------------------------------
# Lesson 07: the reconstruction-loss factor of a VAE, and its beta = 1 / factor


@torch.no_grad()
def factor_panels(model: torch.nn.Module, images: torch.Tensor, noise: torch.Tensor) -> dict[str, np.ndarray]:
    """What one trained VAE shows: reconstructions of fixed images and decodings of fixed noise (a pure function).

    model: a VAE, ``encode(x) -> (mu, logvar)`` and ``decode(z)`` -> probabilities (``ah.MLPVAE``).
    images: (n, 1, 28, 28) held-out images in [0, 1], reconstructed as decode(mu), without sampling,
        so the same arguments give the same panels.
    noise: (m, k) draws from N(0, I), the prior; pass the same noise for every model so their
        samples can be compared picture by picture.
    Returns float32 arrays in [0, 1]: ``"originals"`` (n, 28, 28), ``"reconstructions"`` (n, 28, 28),
    ``"samples"`` (m, 28, 28).
    """
    if not torch.is_tensor(images) or images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"images must be a non-empty (n, 1, 28, 28) tensor, got "
                         f"{tuple(images.shape) if torch.is_tensor(images) else type(images).__name__}")
    device = next(model.parameters()).device
    with eval_mode(model):
        mu, _ = model.encode(images.to(device))                           # (n, k)
        reconstructions = model.decode(mu)                                 # (n, 1, 28, 28)
        samples = model.decode(noise.to(device))                           # (m, 1, 28, 28)
    arrays = {"originals": images, "reconstructions": reconstructions, "samples": samples}
    return {name: x[:, 0].clamp(0, 1).float().cpu().numpy() for name, x in arrays.items()}


_RESULT_KEYS = ("factor", "model", "recon", "kl")
RATE_FLOOR = 0.01
"""Nats per image: the rate-distortion panel's log axis starts here, and a smaller KL is drawn on it."""


def ratio_label(value: float) -> str:
    """A positive number as a reader writes it: ``784``, ``3.33``, ``1``, ``1/3``, ``1/784`` (a pure function).

    Numbers below 1 whose inverse is (nearly) a whole number are written as ``1/n``; others keep three
    significant digits. Used for beta = 1 / factor on the widget's slider and plot.
    """
    value = float(value)
    if not value > 0 or value == float("inf"):
        raise ValueError(f"ratio_label needs a positive finite number, got {value!r}")
    if value < 1:
        inverse = 1 / value
        if abs(inverse - round(inverse)) < 1e-3 * inverse:
            return f"1/{round(inverse)}"
    return f"{value:.3g}"


class LossFactorExplorer(Explorer):
    """A slider over reconstruction-loss factors; each position shows a VAE really trained with that factor.

    The slider and the plot name each model by its beta = 1 / factor (the weight of the KL against a
    reconstruction weighted 1, lesson 06), written as a reader would (``ratio_label``): 784, 10, 1, 1/10, 1/784.

    results: one dict per trained model, ``{"factor": 10.0, "model": vae, "recon": ..., "kl": ...}``,
        with the model's held-out reconstruction term (the distortion, e.g. ``history.last("test",
        "recon_nats_per_image")``) and KL term (the rate, ``"kl_nats_per_image"``). The widget trains
        nothing and interpolates nothing: the notebook trains the models, every position is one of them.
    images: (N, 1, 28, 28) held-out images; the first ``n_images`` are reconstructed by every model.
    n_samples, seed: the prior samples are decodings of ``n_samples`` fixed draws of N(0, I) made
        from ``seed``, the same draws for every model.
    recon_label, kl_label: the axis labels, with units.

    Each position shows: originals above the model's reconstructions, its prior samples, and the
    rate-distortion plane (KL on a log x axis, since the rates of the models span several powers of
    ten; a KL below ``RATE_FLOOR`` is drawn at the floor and marked; reconstruction on y) with every
    model's point and the current one highlighted. All panels, and the PNG of every position, are made
    once at construction, so moving the slider only swaps pictures (about 1 ms instead of 0.2 s).
    Built for notebook 07.
    """

    def __init__(self, results: Sequence[Mapping], images: torch.Tensor, *, n_images: int = 8, n_samples: int = 8,
                 seed: int = 0, value: float | None = None,
                 recon_label: str = "distortion: BCE (nats per image)",
                 kl_label: str = "rate: KL (nats per image, log scale)"):
        results = list(results)
        if not results:
            raise ValueError("results is empty: train at least one model, one dict per loss factor")
        for i, r in enumerate(results):
            missing = [key for key in _RESULT_KEYS if not isinstance(r, Mapping) or key not in r]
            if missing:
                raise ValueError(f"results[{i}] lacks {missing}; each result is a dict with keys {_RESULT_KEYS}")
            if not _is_vae(r["model"], images):
                raise ValueError(f"results[{i}]['model'] is a {type(r['model']).__name__}, not a VAE; the loss-factor "
                                 "explorer shows VAEs (encode gives mu and logvar, decode draws the prior's samples)")
        n_samples = positive_int(n_samples, "n_samples")
        n_images = positive_int(n_images, "n_images")
        self.results = sorted(results, key=lambda r: float(r["factor"]))
        self.factors = [float(r["factor"]) for r in self.results]
        if len(set(self.factors)) != len(self.factors):
            raise ValueError(f"each factor must appear once, got {self.factors}")
        if not all(f > 0 for f in self.factors):
            raise ValueError(f"every factor must be positive (beta = 1 / factor), got {self.factors}")
        self.labels = [ratio_label(1 / f) for f in self.factors]                      # beta, e.g. "1/784"
        if not torch.is_tensor(images) or images.dim() != 4 or images.shape[0] == 0:
            raise ValueError(f"images must be a non-empty (N, 1, 28, 28) tensor, got "
                             f"{tuple(images.shape) if torch.is_tensor(images) else type(images).__name__}")
        self.recon_label, self.kl_label = recon_label, kl_label
        self.images = images[:n_images]
        # the same noise for every model with the same latent size: same seed, same draws
        self.all_panels = []
        for r in self.results:
            k = r["model"].latent_dim
            noise = torch.randn(n_samples, k, generator=torch.Generator().manual_seed(seed))   # (m, k)
            self.all_panels.append(factor_panels(r["model"], self.images, noise))
        self.renders = 0
        self.index = 0
        self.panels: dict[str, np.ndarray] = {}
        # every position's picture, rendered to PNG once here (~0.1 s each): moving the slider only swaps them
        self.pngs = [_png(self._figure(i)) for i in range(len(self.results))]

        start = 1.0 if value is None else float(value)
        first = min(range(len(self.factors)), key=lambda i: abs(self.factors[i] - start))   # nearest to 1 by default
        self.slider = W.SelectionSlider(options=[(label, i) for i, label in enumerate(self.labels)], value=first,
                                        description="β (KL weight)", continuous_update=False,
                                        layout=W.Layout(width="420px"), style={"description_width": "initial"})
        self.slider.observe(lambda _: self.render(), names="value")
        self.output = W.Output()
        self.widget = W.VBox([self.slider, self.output])
        self.render()

    @property
    def current(self) -> Mapping:
        """The result shown now."""
        return self.results[self.index]

    def render(self) -> None:
        self.index = self.slider.value
        self.panels = self.all_panels[self.index]
        self.renders += 1
        _redraw(self.output, self.pngs[self.index])

    def _figure(self, index: int) -> Figure:
        """The whole picture for position ``index``: reconstructions, prior samples, the rate-distortion plane."""
        panels, r = self.all_panels[index], self.results[index]

        def draw(axes):
            pair = np.concatenate([panels["originals"], panels["reconstructions"]])          # (2n, 28, 28)
            axes[0].imshow(image_grid(pair, nrow=len(panels["originals"])), cmap="gray", vmin=0, vmax=1)
            axes[0].set_title("held-out images (top) and reconstructions", fontsize=9)
            samples = panels["samples"]
            axes[1].imshow(image_grid(samples, nrow=max(1, (len(samples) + 1) // 2)), cmap="gray", vmin=0, vmax=1)
            axes[1].set_title("samples from the prior", fontsize=9)
            for ax in axes[:2]:
                ax.set_axis_off()
            ax = axes[2]
            rates = [max(float(x["kl"]), RATE_FLOOR) for x in self.results]       # a log axis has no 0
            distortions = [float(x["recon"]) for x in self.results]
            ax.plot(rates, distortions, "-o", color="0.6", ms=4, zorder=1)
            for i, (label, x, y, result) in enumerate(zip(self.labels, rates, distortions, self.results)):
                floored = float(result["kl"]) < RATE_FLOOR
                above = i % 2 == 0                           # alternate sides of the curve, so labels do not collide
                ax.annotate(f"β {label}" + (f" (KL < {RATE_FLOOR:g})" if floored else ""), (x, y),
                            textcoords="offset points", xytext=(4, 4) if above else (-4, -11),
                            ha="left" if above else "right", fontsize=7, color="0.4")
            ax.scatter([rates[index]], [distortions[index]], s=90, color="C3", zorder=2,
                       label=f"β = {self.labels[index]}")
            ax.set_xscale("log")
            ax.set_xlim(RATE_FLOOR / 2, max(rates) * 4)
            ax.set_xlabel(self.kl_label, fontsize=8)
            ax.set_ylabel(self.recon_label, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            ax.set_title(f"β = {self.labels[index]}: rate {float(r['kl']):.1f}, distortion {float(r['recon']):.1f}",
                         fontsize=9)

        return _kept_figure(3, (11, 3.2), 0.4, draw, gridspec_kw={"width_ratios": [2.2, 1.1, 1.5]})


# ---------------------------------------------------------------------------------------------
# Lesson 10: the conditional VAE's class selector and latent sliders


@torch.no_grad()
def conditional_image(model: torch.nn.Module, code: Sequence[float], label: int) -> np.ndarray:
    """Decode one code as one class with a conditional decoder: a (28, 28) numpy image in [0, 1] (a pure function).

    model: a conditional VAE, ``decode(z, y)`` with z (1, k) and y (1,) class indices (``ah.models.ConditionalVAE``).
    code: k numbers. label: the class index.
    """
    device = next(model.parameters()).device
    y = torch.tensor([int(label)], device=device)                                       # (1,)
    with eval_mode(model):
        return decode_image(lambda z: model.decode(z, y), code, device)                  # (28, 28)


class ConditionalExplorer(Explorer):
    """A class selector and one slider per latent dimension: the conditional decoder draws the chosen class live.

    model: a trained conditional VAE (``ah.models.ConditionalVAE``), ``decode(z, y)``.
    classes: the class names, one per class the model knows (``test.classes``); the selector lists them.
    label: the class shown first. code: the starting code (default: the origin, the prior's mean).
    limits: every slider's (low, high); ``(-3, 3)`` covers 99.7% of the N(0, 1) prior in each dimension.
    max_sliders: at most this many sliders (the first dimensions); the others stay at ``code``.

    Keep the sliders still and change the class: the same code, so the same "style", drawn as another
    class. Keep the class and move a slider: the style changes within the class. Built for notebook 10.
    """

    def __init__(self, model: torch.nn.Module, classes: Sequence[str], *, label: int = 0,
                 code: Sequence[float] | None = None, limits: tuple[float, float] = (-3.0, 3.0),
                 max_sliders: int = 8):
        k = int(getattr(model, "latent_dim", 0))
        n_classes = int(getattr(model, "n_classes", 0))
        if k <= 0 or n_classes <= 0 or not hasattr(model, "decode"):
            raise TypeError(f"ConditionalExplorer needs a conditional VAE with latent_dim, n_classes and "
                            f"decode(z, y), like ah.models.ConditionalVAE; got {type(model).__name__}")
        classes = list(classes)
        if len(classes) != n_classes:
            raise ValueError(f"{len(classes)} class names for a model of {n_classes} classes; give one name per class")
        index(label, "label", n_classes, "a class index")
        if len(limits) != 2 or not float(limits[0]) < float(limits[1]):
            raise ValueError(f"limits must be (low, high) with low < high, got {limits!r}")
        self.model, self.classes = model, classes
        self.code = np.zeros(k, np.float32) if code is None else np.asarray(code, dtype=np.float32).reshape(-1).copy()
        if self.code.shape[0] != k:
            raise ValueError(f"a code of {self.code.shape[0]} numbers for a {k}-D code space")
        lo, hi = float(limits[0]), float(limits[1])
        self.renders = 0
        self.image: np.ndarray | None = None
        self.figure: Figure | None = None      # made at the first render, then only its image and title change

        self.selector = W.Dropdown(options=[(name, i) for i, name in enumerate(classes)], value=label,
                                   description="class", layout=W.Layout(width="300px"))
        self.sliders = [_code_slider(i, self.code[i], lo, hi, "300px") for i in range(min(k, max_sliders))]
        self.selector.observe(lambda _: self.render(), names="value")
        for slider in self.sliders:
            slider.observe(self._on_slider, names="value")
        self.output = W.Output(layout=W.Layout(width="260px"))
        controls = W.VBox([self.selector, *self.sliders], layout=W.Layout(width="320px"))   # fixed: no jumping
        self.widget = W.HBox([controls, self.output])
        self.render()

    @property
    def label(self) -> int:
        """The class shown now."""
        return int(self.selector.value)

    def _on_slider(self, change) -> None:
        self.code[self.sliders.index(change["owner"])] = change["new"]
        self.render()

    def render(self) -> None:
        self.image = conditional_image(self.model, self.code, self.label)
        self.renders += 1
        title = (f"{self.classes[self.label]}\nz = ({', '.join(f'{v:.2f}' for v in self.code[:4])}"
                 f"{', ...' if self.code.shape[0] > 4 else ''})")
        if self.figure is None:
            self.figure = _kept_figure(1, (2.4, 2.6), 0.3, lambda axes: _picture(axes[0], self.image, title))
        else:
            ax = self.figure.axes[0]
            ax.images[0].set_data(self.image)
            ax.set_title(title, fontsize=8)
        _redraw(self.output, self.figure)


# ---------------------------------------------------------------------------------------------
# Lesson 11: edit one position of a VQ-VAE's code grid


@torch.no_grad()
def code_grid_panels(model: torch.nn.Module, grid: torch.Tensor, edited: torch.Tensor) -> dict[str, np.ndarray]:
    """Decode a code grid before and after an edit (a pure function).

    model: a VQ-VAE, ``decode(indices)`` with indices (B, 7, 7) -> (B, 1, 28, 28) probabilities (``ah.vq.VQVAE``).
    grid, edited: (7, 7) int64 code grids, the image's own and the edited one.
    Returns float32 (28, 28) arrays in [0, 1]: ``"original"`` (decoded from ``grid``), ``"edited"``
    (decoded from ``edited``), and ``"change"``, the absolute difference of the two.
    """
    for name, g in (("grid", grid), ("edited", edited)):
        if not torch.is_tensor(g) or tuple(g.shape) != tuple(getattr(model, "grid_shape", (7, 7))):
            got = tuple(g.shape) if torch.is_tensor(g) else type(g).__name__
            raise ValueError(f"{name} must be one code grid of shape {getattr(model, 'grid_shape', (7, 7))}, got {got}")
    with eval_mode(model):
        both = model.decode(torch.stack([grid, edited]).to(model_device(model)))   # (2, 1, 28, 28)
    original, after = (x[0].clamp(0, 1).float().cpu().numpy() for x in both)  # (28, 28) each
    return {"original": original, "edited": after, "change": np.abs(after - original)}


class CodeGridExplorer(Explorer):
    """Pick a position of an image's 7x7 code grid, give it another codebook entry, see what the decoder draws.

    model: a trained VQ-VAE (``ah.vq.VQVAE``): ``encode(x)`` gives (B, 7, 7) code grids, ``decode`` draws them.
    images: (N, 1, 28, 28) held-out images; a picker chooses among the first ``n_choices``.
    labels, classes: optional, to name the images in the picker.

    Controls: the image; the row and the column of the position (the grid panel outlines it); the codebook
    entry at that position (moving it edits the grid); a button that undoes every edit. Panels: the edited
    code grid (colour and number = code index), the image decoded from its own code, the image decoded from
    the edited code, and the absolute change, with the 4x4 pixel block under the position outlined.
    Edits add up: change one position, move to another and change it too. Built for notebook 11.
    """

    def __init__(self, model: torch.nn.Module, images: torch.Tensor, *, labels: torch.Tensor | None = None,
                 classes: Sequence[str] | None = None, n_choices: int = 20, row: int = 3, col: int = 3):
        n_codes = int(getattr(model, "n_codes", 0))
        shape = tuple(getattr(model, "grid_shape", ()))
        if n_codes < 2 or len(shape) != 2 or not hasattr(model, "encode") or not hasattr(model, "decode"):
            raise TypeError(f"CodeGridExplorer needs a VQ-VAE with n_codes, grid_shape, encode(x) -> code grids and "
                            f"decode(grids), like ah.vq.VQVAE; got {type(model).__name__}")
        _check_image_batch(images, "images")
        index(row, "row", shape[0])
        index(col, "col", shape[1])
        self.model, self.images, self.n_codes, self.shape = model, images, n_codes, shape
        self.block = images.shape[-1] // shape[1]                     # pixels per position: 28 / 7 = 4
        n = min(n_choices, images.shape[0])
        with torch.no_grad(), eval_mode(model):
            self.grids = model.encode(images[:n].to(model_device(model))).cpu()    # (n, 7, 7) the images' own codes
        self.renders = 0
        self.panels: dict[str, np.ndarray] = {}
        self.figure: Figure | None = None        # made at the first render, then only its data change

        self.picker = _image_picker(n, labels, classes, "300px")
        self.row = W.IntSlider(value=row, min=0, max=shape[0] - 1, description="row", continuous_update=False,
                               layout=W.Layout(width="300px"))
        self.col = W.IntSlider(value=col, min=0, max=shape[1] - 1, description="column", continuous_update=False,
                               layout=W.Layout(width="300px"))
        self.entry = W.IntSlider(value=0, min=0, max=n_codes - 1, description="code", continuous_update=False,
                                 layout=W.Layout(width="300px"))
        self.reset_button = W.Button(description="undo every edit", layout=W.Layout(width="300px"))
        self.readout = W.HTML(layout=W.Layout(width="300px"))
        self.output = W.Output(layout=W.Layout(width="640px"))
        self._quiet = False
        self.picker.observe(lambda _: self.load(self.picker.value), names="value")
        self.row.observe(self._on_position, names="value")
        self.col.observe(self._on_position, names="value")
        self.entry.observe(self._on_entry, names="value")
        self.reset_button.on_click(lambda _: self.reset())
        controls = W.VBox([self.picker, self.row, self.col, self.entry, self.reset_button, self.readout],
                          layout=W.Layout(width="320px"))       # fixed: the figure does not jump
        self.widget = W.HBox([controls, self.output])
        self.load(0)

    # -- state changes -----------------------------------------------------------------
    @property
    def position(self) -> tuple[int, int]:
        """The (row, column) selected now."""
        return int(self.row.value), int(self.col.value)

    def _show_entry(self) -> None:
        """Move the code slider to the code at the selected position, without redrawing."""
        self._quiet = True
        try:
            self.entry.value = int(self.edited[self.position])
        finally:
            self._quiet = False

    def load(self, index: int) -> None:
        """Show image ``index`` with its own code grid, no edits."""
        self.index = int(index)
        self.grid = self.grids[self.index].clone()                   # (7, 7)
        self.edited = self.grid.clone()
        self._show_entry()
        self.render()

    def reset(self) -> None:
        """Undo every edit of the current image's grid."""
        self.edited = self.grid.clone()
        self._show_entry()
        self.render()

    def set_code(self, row: int, col: int, entry: int) -> None:
        """Put codebook entry ``entry`` at position (row, col) and redraw once (what the three sliders do)."""
        if not 0 <= int(entry) < self.n_codes:
            raise ValueError(f"entry must be in 0..{self.n_codes - 1}, got {entry!r}")
        self._quiet = True
        try:
            self.row.value, self.col.value = int(row), int(col)
        finally:
            self._quiet = False
        self.edited[int(row), int(col)] = int(entry)
        self._show_entry()
        self.render()

    def _on_position(self, change) -> None:
        if self._quiet:
            return
        self._show_entry()
        self.render()

    def _on_entry(self, change) -> None:
        if self._quiet:
            return
        self.edited[self.position] = int(change["new"])
        self.render()

    # -- drawing ---------------------------------------------------------------------------
    def render(self) -> None:
        from matplotlib.patches import Rectangle

        self.panels = code_grid_panels(self.model, self.grid, self.edited)
        self.renders += 1
        r, c = self.position
        n_edits = int((self.edited != self.grid).sum())
        grid = self.edited.numpy()
        titles = [f"code grid of image {self.index} ({n_edits} edited)", "decoded from its own code",
                  f"edited: ({r}, {c}) = {int(self.edited[r, c])}",
                  f"change (largest {self.panels['change'].max():.2f})"]
        pictures = [self.panels["original"], self.panels["edited"], self.panels["change"]]
        b = self.block
        if self.figure is None:
            def draw(axes):
                ax = axes[0]
                ax.imshow(grid, cmap="viridis", vmin=0, vmax=self.n_codes - 1)
                self._numbers = [[ax.text(j, i, str(grid[i, j]), ha="center", va="center", fontsize=6,
                                          color="white") for j in range(self.shape[1])] for i in range(self.shape[0])]
                self._cell = ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="red", lw=2))
                ax.set_title(titles[0], fontsize=8)
                ax.set_axis_off()
                for ax, picture, title in zip(axes[1:], pictures, titles[1:]):
                    _picture(ax, picture, title)
                axes[3].images[0].set_cmap("magma")
                square = Rectangle((c * b - 0.5, r * b - 0.5), b, b, fill=False, ec="cyan", lw=1)
                self._block = axes[3].add_patch(square)
            self.figure = _kept_figure(4, (7.4, 2.2), 0.3, draw)
        else:
            axes = self.figure.axes
            axes[0].images[0].set_data(grid)
            for i in range(self.shape[0]):
                for j in range(self.shape[1]):
                    self._numbers[i][j].set_text(str(grid[i, j]))
            self._cell.set_xy((c - 0.5, r - 0.5))
            self._block.set_xy((c * b - 0.5, r * b - 0.5))
            for ax, picture, title in zip(axes, [None, *pictures], titles):
                if picture is not None:
                    ax.images[0].set_data(picture)
                ax.set_title(title, fontsize=8)
        was, now = int(self.grid[r, c]), int(self.edited[r, c])
        self.readout.value = (f"position ({r}, {c}): code <b>{was}</b> in the image's own grid"
                              + (f", <b>{now}</b> now" if now != was else "") + f"; {n_edits} position(s) edited")
        _redraw(self.output, self.figure)
