"""Figures the lessons draw again and again.

Each function draws on a matplotlib Axes (made for you when not given) and
returns the Figure, so a notebook cell can end with it or adjust it first.
Images are (N, 1, H, W) tensors or arrays with values in [0, 1]; values in
[-1, 1] are shown with ``value_range=(-1, 1)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["to_numpy_images", "image_grid", "show_images", "compare_rows", "plot_history", "plot_latent",
           "plot_error_vs_bottleneck", "readable_name", "plot_activation_histogram", "plot_unit_means", "plot_features",
           "plot_twin_sweep", "plot_score_histograms", "plot_roc"]


def _finish(ax, title: str | None):
    """The common last touches of a line plot: light grid, small legend, optional title; returns the Figure."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def to_numpy_images(images) -> np.ndarray:
    """(N, 1, H, W) or (N, H, W) tensor/array -> (N, H, W) float numpy array on the CPU."""
    if torch.is_tensor(images):
        images = images.detach().float().cpu().numpy()
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4:
        if images.shape[1] != 1:
            raise ValueError(f"expected grey images of shape (N, 1, H, W), got {images.shape}")
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"expected images of shape (N, 1, H, W) or (N, H, W), got {images.shape}")
    return images


def image_grid(images, nrow: int, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile N images into one 2-D array with ``nrow`` images per row (a pure function, easy to test)."""
    imgs = to_numpy_images(images)
    n, h, w = imgs.shape
    if nrow <= 0:
        raise ValueError(f"nrow must be positive, got {nrow}")
    ncol_rows = -(-n // nrow)
    grid = np.full((ncol_rows * (h + pad) - pad, nrow * (w + pad) - pad), pad_value, dtype=np.float32)
    for i, img in enumerate(imgs):
        r, c = divmod(i, nrow)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = img
    return grid


def show_images(images, nrow: int = 10, *, title: str | None = None, ax=None, value_range=(0.0, 1.0),
                size: float = 0.9):
    """Show images as one tiled grid, grey scale, fixed value range (so brightness is comparable)."""
    grid = image_grid(images, nrow, pad_value=value_range[1])
    if ax is None:
        rows = grid.shape[0] / grid.shape[1] * nrow
        _, ax = plt.subplots(figsize=(size * nrow, max(size * rows, 0.9)))
    ax.imshow(grid, cmap="gray", vmin=value_range[0], vmax=value_range[1], interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def compare_rows(rows: Mapping[str, object], n: int = 10, *, title: str | None = None, value_range=(0.0, 1.0),
                 size: float = 0.9):
    """One row of n images per entry, labelled on the left: e.g. originals above reconstructions.

    rows: ``{"original": x, "reconstruction": x_hat}``; each value holds at least n images.
    """
    fig, axes = plt.subplots(len(rows), n, figsize=(size * n + 1.2, size * len(rows) + (0.3 if title else 0)),
                             squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        imgs = to_numpy_images(images)
        if imgs.shape[0] < n:
            raise ValueError(f"row {label!r} has {imgs.shape[0]} images; {n} are needed")
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(imgs[c], cmap="gray", vmin=value_range[0], vmax=value_range[1], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    top = 1 - 0.35 / fig.get_figheight() if title else 1       # leave the title its own strip above the rows
    fig.tight_layout(pad=0.2, rect=(0, 0, 1, top))
    return fig


# Axis labels in words, with units, for the loss names the package logs (a name not listed is shown as it is).
READABLE_NAMES = {
    "mse_per_pixel": "MSE per pixel (squared intensity)",
    "recon_nats_per_image": "reconstruction (nats per image)",
    "kl_nats_per_image": "KL (nats per image)",
    "recon_sq_error_per_image": "squared error per image (summed over pixels)",
}


def readable_name(name: str) -> str:
    """The axis label for a logged loss name: ``"mse_per_pixel"`` -> ``"MSE per pixel (squared intensity)"``."""
    return READABLE_NAMES.get(name, name)


def plot_history(history, *, names: Sequence[str] | None = None, title: str | None = None, ax=None, log_y=False,
                 ylabel: str | None = None, names_in_legend: bool = True):
    """Train (solid) and held-out (dashed) curves of each logged term against the epoch.

    ylabel: the y axis label; by default the term's name in words with its unit (:func:`readable_name`)
        when one term is drawn, "loss" otherwise.
    names_in_legend: legend entries "train <name>" and "held-out <name>"; with False (for one term, whose
        name the y label already gives) they read "training images" and "held-out images".
    """
    names = list(names or history.train)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    epochs = np.arange(1, history.epochs + 1)
    for i, name in enumerate(names):
        color = f"C{i}"
        train_label, test_label = ((f"train {name}", f"held-out {name}") if names_in_legend
                                   else ("training images", "held-out images"))
        ax.plot(epochs, history.train[name], "-o", color=color, ms=3, label=train_label)
        if name in history.test:
            ax.plot(epochs, history.test[name], "--s", color=color, ms=3, label=test_label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or (readable_name(names[0]) if len(names) == 1 else "loss"))
    if log_y:
        ax.set_yscale("log")
    return _finish(ax, title)


def plot_latent(codes, labels, *, classes: Sequence[str] | None = None, ax=None, title: str | None = None,
                s: float = 3.0, alpha: float = 0.6):
    """Scatter 2-D or 3-D codes, coloured by class (or by a continuous label, e.g. a radius).

    codes: (N, 2) or (N, 3); labels: (N,) class indices or numbers.
    """
    z = codes.detach().cpu().numpy() if torch.is_tensor(codes) else np.asarray(codes)
    y = labels.detach().cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    if z.ndim != 2 or z.shape[1] not in (2, 3):
        raise ValueError(f"plot_latent draws codes of shape (N, 2) or (N, 3), got {z.shape}")
    if y.shape[0] != z.shape[0]:
        raise ValueError(f"{z.shape[0]} codes but {y.shape[0]} labels")
    dim = z.shape[1]
    if ax is None:
        fig = plt.figure(figsize=(6.5, 5))
        ax = fig.add_subplot(projection="3d" if dim == 3 else None)
    coords = [z[:, i] for i in range(dim)]
    if classes is not None:
        for k, name in enumerate(classes):
            mask = y == k
            ax.scatter(*[c[mask] for c in coords], s=s, alpha=alpha, color=plt.cm.tab10(k % 10), label=name)
        ax.legend(markerscale=4 / max(s, 0.5) * 2, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    else:
        points = ax.scatter(*coords, s=s, alpha=alpha, c=y, cmap="viridis")
        ax.figure.colorbar(points, ax=ax, shrink=0.8)
    for i, setter in enumerate(("set_xlabel", "set_ylabel", "set_zlabel")[:dim]):
        getattr(ax, setter)(f"z[{i}]")
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def plot_error_vs_bottleneck(sizes: Sequence[int], errors: Mapping[str, Sequence[float]], *,
                             unit: str = "held-out MSE per pixel", ax=None, title: str | None = None):
    """Reconstruction error against code size, one line per method (e.g. autoencoder and PCA)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    for name, values in errors.items():
        if len(values) != len(sizes):
            raise ValueError(f"{name!r} has {len(values)} errors for {len(sizes)} sizes")
        ax.plot(sizes, values, "-o", ms=4, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(sizes), [str(k) for k in sizes])
    ax.set_xlabel("code size (numbers per image)")
    ax.set_ylabel(unit)
    return _finish(ax, title)


# ---------------------------------------------------------------------------------------------
# Hidden activations, features and sweeps (lesson 03, reusable)


def _flat(values) -> np.ndarray:
    return (values.detach().float().cpu().numpy() if torch.is_tensor(values) else np.asarray(values, float)).ravel()


def plot_activation_histogram(activations: Mapping[str, object], *, bins: int = 50, value_range=None,
                              log_y: bool = True, ax=None, title: str | None = None,
                              xlabel: str = "hidden activation"):
    """Histograms of activation values, one outline per entry, as the share of all values per bin.

    activations: ``{"no penalty": h0, "KL penalty": h1}``, each an (N, n_hidden)
    tensor (every value counts). Shares, not counts, so entries of different
    sizes compare; a log y axis (the default) shows the rare large values too.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    flat = {name: _flat(h) for name, h in activations.items()}
    if value_range is None:
        value_range = (min(v.min() for v in flat.values()), max(v.max() for v in flat.values()))
    edges = np.linspace(value_range[0], value_range[1], bins + 1)
    for i, (name, values) in enumerate(flat.items()):
        ax.hist(values, bins=edges, weights=np.full(values.size, 1 / values.size), histtype="step", lw=1.8,
                color=f"C{i}", label=name)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of all activations per bin")
    return _finish(ax, title)


def plot_unit_means(means: Mapping[str, object], *, rho: float | None = None, log_y: bool = False, ax=None,
                    title: str | None = None):
    """Each hidden unit's mean activation, units sorted from the busiest to the quietest; one line per entry.

    means: ``{"no penalty": m0, ...}``, each (n_hidden,), e.g. ``h.mean(0)``.
    rho: draw the target mean activation of the KL penalty as a dashed line.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    for i, (name, m) in enumerate(means.items()):
        values = np.sort(_flat(m))[::-1]
        ax.plot(np.arange(1, values.size + 1), values, color=f"C{i}", lw=1.8, label=name)
    if rho is not None:
        ax.axhline(rho, color="grey", ls="--", lw=1, label=f"target mean activation rho = {rho:g}")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("hidden unit (sorted by mean activation)")
    ax.set_ylabel("mean activation over the images")
    return _finish(ax, title)


def plot_features(weights, *, n: int = 64, nrow: int = 8, ax=None, title: str | None = None, size: float = 0.7):
    """The first n rows of a weight matrix drawn as 28x28 tiles, each scaled on its own.

    weights: (N, 1, 28, 28), (N, 28, 28) or (N, 784), e.g. ``model.features()``.
    Each tile is divided by its largest absolute value, so mid grey is 0, white
    the tile's most positive weight and black its most negative one: tiles show a
    pattern's shape, not its strength.
    """
    w = weights.detach().float().cpu().numpy() if torch.is_tensor(weights) else np.asarray(weights, np.float32)
    if w.ndim == 2:
        if w.shape[1] != 784:
            raise ValueError(f"plot_features draws 28x28 tiles; rows of {w.shape[1]} weights are not 784")
        w = w.reshape(-1, 28, 28)
    w = to_numpy_images(w)[:n]                                              # (n, 28, 28)
    scale = np.abs(w).reshape(len(w), -1).max(1)                            # (n,)
    w = w / np.where(scale > 0, scale, 1)[:, None, None]                    # each tile in [-1, 1]
    grid = image_grid(w, nrow, pad_value=1.0)
    if ax is None:
        rows = -(-len(w) // nrow)
        _, ax = plt.subplots(figsize=(size * nrow, size * rows))
    ax.imshow(grid, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def plot_twin_sweep(x: Sequence[float], left: Sequence[float], right: Sequence[float], *, xlabel: str,
                    left_label: str, right_label: str, right_limits=None, ax=None, title: str | None = None):
    """Two quantities against one swept setting, each on its own y axis (left and right).

    x: the settings, drawn evenly spaced and labelled with their values, so a sweep
    that includes 0 next to 1e-5 and 1e-3 reads well. Returns the Figure; the right
    axis is ``fig.axes[-1]``.
    """
    if not len(x) == len(left) == len(right):
        raise ValueError(f"x, left and right need the same length, got {len(x)}, {len(left)} and {len(right)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    positions = np.arange(len(x))
    ax.plot(positions, list(left), "-o", color="C0", ms=5)
    ax.set_ylabel(left_label, color="C0")
    ax.tick_params(axis="y", colors="C0")
    ax.set_xticks(positions, [f"{v:g}" for v in x])
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(positions, list(right), "--s", color="C1", ms=5)
    twin.set_ylabel(right_label, color="C1")
    twin.tick_params(axis="y", colors="C1")
    if right_limits is not None:
        twin.set_ylim(*right_limits)
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


# ---------------------------------------------------------------------------------------------
# Lesson 09: anomaly scores and ROC curves


def plot_score_histograms(scores: Mapping[str, object], *, threshold: float | None = None, bins: int = 60,
                          xlabel: str = "anomaly score", ax=None, title: str | None = None):
    """Histograms of anomaly scores, one outline per group, as the share of the group per bin.

    scores: ``{"normal (test)": s0, "anomalous (test)": s1}``, each (N,) scores; shares, not counts,
    so groups of different sizes compare. threshold: drawn as a dashed vertical line. Returns the Figure.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    flat = {name: _flat(s) for name, s in scores.items()}
    edges = np.linspace(min(v.min() for v in flat.values()), max(v.max() for v in flat.values()), bins + 1)
    for i, (name, values) in enumerate(flat.items()):
        ax.hist(values, bins=edges, weights=np.full(values.size, 1 / values.size), histtype="step", lw=1.8,
                color=f"C{i}", label=name)
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.3g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of the group per bin")
    return _finish(ax, title)


def plot_roc(curves: Mapping[str, tuple], *, point: tuple[float, float] | None = None, ax=None,
             title: str | None = None):
    """ROC curves: detection rate against false-alarm rate, with the diagonal of a coin flip.

    curves: ``{"all anomalies": (fpr, tpr, auc), ...}`` as returned by ``applications.roc``; each
    legend entry gives its AUC. point: (false-alarm rate, detection rate) of the chosen threshold,
    drawn as a dot. Returns the Figure.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 4.2))
    for i, (name, (fpr, tpr, auc)) in enumerate(curves.items()):
        ax.plot(_flat(fpr), _flat(tpr), color=f"C{i}", lw=1.8, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="coin flip (AUC 0.5)")
    if point is not None:
        ax.scatter([point[0]], [point[1]], s=50, color="k", zorder=3,
                   label=f"threshold: {point[0]:.1%} false alarms, {point[1]:.1%} detected")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false-alarm rate (normal images flagged)")
    ax.set_ylabel("detection rate (anomalies flagged)")
    return _finish(ax, title)
