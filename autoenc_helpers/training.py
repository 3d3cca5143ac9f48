"""One training loop for every lesson, and batched inference helpers.

:func:`fit` trains a model on in-memory images and returns a :class:`History`
of the train and held-out loss per epoch. An *objective* says what to
minimise: a function ``objective(model, inputs, targets) -> dict`` whose
first entry is the loss to minimise and whose keys carry the unit
(``"mse_per_pixel"``). Every entry is logged. With ``with_labels=True`` the
objective is also handed each batch's labels, ``objective(model, inputs,
targets, labels=...)``, for a model conditioned on the class (notebook 10).
An objective that follows a schedule (KL warm-up, notebook 07) has a method
``set_epoch(epochs_done)``, and ``fit`` tells it how far training has got.

Built step by step in notebook 01, where the loop is first written by hand.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from .data import ImageSet, batch_indices, images_of
from .device import get_device
from .losses import mse_objective
from .models import eval_batches, eval_mode, model_device

__all__ = ["History", "fit", "evaluate", "predict", "encode", "eval_mode", "model_device", "make_optimizer",
           "use_fast_layout", "FAST_LAYOUT"]

Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], dict]


@dataclass
class History:
    """Per-epoch averages: ``train[name][e]`` and ``test[name][e]`` for epoch e+1.

    ``test`` is empty when no held-out data was given. ``seconds[e]`` is the
    wall time of epoch e+1, training and evaluation together. ``interrupted`` is True when
    training was stopped (Stop pressed, KeyboardInterrupt) before its last epoch: the history
    then holds the epochs that finished.
    """

    train: dict[str, list[float]] = field(default_factory=dict)
    test: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    interrupted: bool = False

    @property
    def epochs(self) -> int:
        return len(self.seconds)

    def last(self, split: str = "test", name: str | None = None) -> float:
        """The final epoch's value of ``name`` (the minimised loss by default)."""
        logs = {"train": self.train, "test": self.test}.get(split)
        if logs is None:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not logs:
            raise ValueError(f"this history has no {split} values")
        name = name or next(iter(logs))
        if name not in logs:
            raise KeyError(f"{name!r} is not logged; logged: {list(logs)}")
        return logs[name][-1]


def make_optimizer(model: nn.Module, *, lr: float = 1e-3, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam, with PyTorch's fused kernel where this torch build has one for the model's device.

    The fused kernel updates all parameters in one pass instead of a Python loop
    over them: the same maths, and about 20% less time per epoch for the small
    models of this course on a CPU (``python3 benchmarks/benchmark.py`` in a checkout).
    Build it after moving the model to its device.
    """
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device or torch version
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)


FAST_LAYOUT = True
"""Whether :func:`use_fast_layout` switches convolutional models to channels-last on the CPU.

Set ``ah.training.FAST_LAYOUT = False`` to train in PyTorch's default layout: the numbers stay the
same, only the speed changes (the benchmark's ablation does this to measure what the layout buys).
"""


def use_fast_layout(model: nn.Module, device: torch.device) -> nn.Module:
    """On the CPU, store a convolutional model's weights channels-last; returns the model.

    PyTorch's CPU convolutions (oneDNN) work on channels-last tensors, (B, H, W, C) in memory; a
    model in the default layout pays for converting every activation there and back. Storing the
    weights channels-last makes every convolution's output channels-last too: the same numbers,
    about 1.7x faster per epoch for lesson 08's convolutional VAE on a 2-core CPU (measured by
    ``python3 benchmarks/benchmark.py`` in a checkout). Models without convolutions are left alone, and so
    are GPUs, whose gain depends on the card and the precision; nothing changes when :data:`FAST_LAYOUT`
    is False.
    """
    if FAST_LAYOUT and device.type == "cpu" and any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules()):
        model.to(memory_format=torch.channels_last)
    return model


def _images(data, what: str, model: nn.Module | None = None) -> torch.Tensor:
    """The (N, C, H, W) image tensor of an ImageSet or tensor; its dtype must be the model's."""
    images = images_of(data)
    if not torch.is_tensor(images) or images.dim() != 4:
        got = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"{what} must be an ImageSet or a (N, C, H, W) tensor of images, got {got}")
    weights = next((p for p in model.parameters()), None) if model is not None else None
    if weights is not None and images.dtype != weights.dtype:
        cast = {torch.float32: ".float()", torch.float64: ".double()", torch.float16: ".half()"}.get(weights.dtype, "")
        raise TypeError(f"{what} holds {images.dtype} values but the model computes in {weights.dtype}; "
                        f"convert the images with {cast or f'.to({weights.dtype})'} (the course's data is float32)")
    return images


def _check_values(images: torch.Tensor, what: str, model: nn.Module | None = None) -> None:
    """Before training: no empty set, no NaN or inf, and values on an image scale ([0, 1] or [-1, 1]).

    A model whose inputs are not images declares the values it takes as ``input_range = (low, high)``
    (lesson 11's ``CodePrior`` takes code numbers 0 to K - 1); those are checked instead.
    """
    if images.shape[0] == 0:
        raise ValueError(f"{what} holds no images; give fit at least one")
    finite = torch.isfinite(images)
    if not bool(finite.all()):
        bad = int((~finite).flatten(1).any(1).sum())
        raise ValueError(f"{what} holds NaN or infinite values in {bad} of its {images.shape[0]:,} images; "
                         "every loss would become NaN. Remove or repair those images")
    low, high = float(images.min()), float(images.max())
    declared = getattr(model, "input_range", None)
    if declared is not None:
        if low < declared[0] or high > declared[1]:
            raise ValueError(f"{what} values run from {low:g} to {high:g}; {type(model).__name__} takes values from "
                             f"{declared[0]:g} to {declared[1]:g}")
        return
    if high > 1.5 or low < -1.5:
        raise ValueError(f"{what} values run from {low:g} to {high:g}; the course's models expect images in [0, 1] "
                         "(or [-1, 1] for a Tanh output). Pixel values 0-255 must be divided by 255 first")


def _labels(data, what: str) -> torch.Tensor:
    """The labels of an ImageSet, for ``with_labels=True``; a bare tensor of images has none."""
    if not isinstance(data, ImageSet):
        got = f"a tensor of shape {tuple(data.shape)}" if torch.is_tensor(data) else type(data).__name__
        raise ValueError(f"with_labels=True hands each batch's labels to the objective, so {what} must be an "
                         f"ImageSet (images with labels), got {got}")
    return data.labels


def _terms(terms) -> dict:
    """An objective's result, checked: a non-empty dict of tensors, ``{"name_with_unit": value}``."""
    if not isinstance(terms, dict) or not terms or not all(torch.is_tensor(v) for v in terms.values()):
        got = (type(terms).__name__ if not isinstance(terms, dict)
               else f"a dict of {[type(v).__name__ for v in terms.values()]}")
        raise TypeError(f"an objective must return a dict of tensors, its first entry the loss to minimise, "
                        f"e.g. {{'mse_per_pixel': loss}}; this one returned {got}")
    return terms


def _check_finite(values: dict[str, float], epoch: int, batch: int, n_batches: int, lr: float) -> None:
    for name, v in values.items():
        if not math.isfinite(v):
            raise FloatingPointError(
                f"{name} became {v} at epoch {epoch}, batch {batch} of {n_batches}. "
                f"Training stopped. Try a lower learning rate (it is {lr:g}) and check that the "
                "inputs hold no NaN and lie in the range the model and loss expect.")


@torch.no_grad()
def evaluate(model: nn.Module, data, *, objective: Objective = mse_objective, batch_size: int = 1000,
             device: torch.device | str | None = None,
             corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None,
             with_labels: bool = False) -> dict[str, float]:
    """Average every term of ``objective`` over ``data`` in eval mode, without autograd.

    Averages are weighted by batch size, so they equal the value over the whole set.
    with_labels: hand each batch's labels to the objective as ``labels=`` (``data`` an ImageSet), as in :func:`fit`.
    """
    device = torch.device(device) if device is not None else model_device(model)
    images = _images(data, "data", model).to(device)
    labels = _labels(data, "data").to(device) if with_labels else None
    totals: dict[str, float] = {}
    with eval_mode(model):
        for idx in batch_indices(images.shape[0], batch_size, shuffle=False, device=device):
            targets = images[idx]
            inputs = corrupt(targets) if corrupt else targets
            extra = {"labels": labels[idx]} if with_labels else {}            # the batch's labels, when asked
            for name, value in _terms(objective(model, inputs, targets, **extra)).items():
                totals[name] = totals.get(name, 0.0) + float(value) * idx.numel()
    return {name: total / images.shape[0] for name, total in totals.items()}


def fit(model: nn.Module, train, test=None, *, objective: Objective = mse_objective, epochs: int = 10,
        batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.0,
        optimizer: torch.optim.Optimizer | None = None, device: torch.device | str | None = None,
        corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None, with_labels: bool = False,
        seed: int = 0, progress: bool = True, log: bool = True) -> History:
    """Train ``model`` on ``train`` and return the per-epoch :class:`History`.

    train, test: an :class:`ImageSet` or a (N, 1, 28, 28) tensor of images in
        [0, 1]; ``test`` is optional held-out data, evaluated after every epoch.
    objective: ``objective(model, inputs, targets) -> {name_with_unit: value}``;
        the first entry is minimised (default: MSE per pixel).
    optimizer: default :func:`make_optimizer` (Adam with lr and weight_decay).
    device: default: ``get_device()`` (``AUTOENC_DEVICE``). The model and the
        data are moved there once; on the CPU a convolutional model is also
        switched to the faster channels-last layout (:func:`use_fast_layout`).
    corrupt: for denoising, a function applied to each batch of inputs; the
        clean images stay the targets.
    with_labels: for a model conditioned on the class (``ConditionalVAE``, notebook 10): the
        objective is also handed each batch's labels, ``objective(model, inputs, targets,
        labels=train.labels[idx])``; ``train`` and ``test`` must then be ImageSets.
    seed: seeds the shuffling, so two runs from the same model give the same losses.
    progress: a tqdm progress bar (works in JupyterLab, Colab and a terminal).
    log: print one line per epoch.

    Stopping: pressing Stop (a KeyboardInterrupt) ends training at once and returns the history of
    the epochs that finished, with ``history.interrupted = True`` (``cached_fit`` does not save it).
    A loss that becomes NaN or infinite raises ``FloatingPointError``, whose ``history`` attribute
    holds the finished epochs. Either way the model is left in eval mode. Images must be finite and
    on an image scale ([0, 1], or [-1, 1]), in the model's dtype.

    Schedules: when ``objective`` has a method ``set_epoch``, fit calls it with the number of
    epochs completed so far, as a fraction, before every training step (``e + i / n_batches``
    before step i of epoch e + 1, counting steps from 0), with the whole number ``e + 1``
    before that epoch's held-out evaluation, and with ``None`` when training ends (also on
    error), meaning "not training".
    That is how ``vae_objective(kl_warmup_epochs=...)`` raises its KL weight step by step with
    no second training loop. Such an objective must list its schedule in its ``settings``, which
    ``cached_fit`` keys checkpoints by.

    A model with an ``after_step()`` method has it called after every optimiser step: a model that
    updates part of itself outside the gradient does it there (``ah.vq.VQVAE`` restarts unused codes).
    """
    if not isinstance(epochs, int) or epochs <= 0:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    device = torch.device(device) if device is not None else get_device(verbose=False)
    use_fast_layout(model.to(device), device)
    x_train = _images(train, "train", model).to(device)
    x_test = _images(test, "test", model).to(device) if test is not None else None
    _check_values(x_train, "train", model)
    if x_test is not None:
        _check_values(x_test, "test", model)
    y_train = _labels(train, "train").to(device) if with_labels else None
    if with_labels and test is not None:
        _labels(test, "test")                                               # fail now, not after the first epoch
    optimizer = optimizer or make_optimizer(model, lr=lr, weight_decay=weight_decay)
    lr = optimizer.param_groups[0]["lr"]
    after_step = getattr(model, "after_step", None)                         # a model's own update, if it has one
    generator = torch.Generator().manual_seed(seed)
    n = x_train.shape[0]
    n_batches = math.ceil(n / batch_size)
    history = History()
    set_epoch = getattr(objective, "set_epoch", None)                       # a schedule, if it has one
    if set_epoch is not None and not callable(set_epoch):
        raise TypeError(f"objective.set_epoch must be a method set_epoch(epochs_done), got "
                        f"{type(set_epoch).__name__}")

    bar = tqdm(total=epochs * n_batches, desc="training", unit="batch", disable=not progress, leave=False)
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            model.train()
            sums: dict[str, float] = {}
            for b, idx in enumerate(batch_indices(n, batch_size, shuffle=True, generator=generator, device=device), 1):
                if set_epoch is not None:
                    set_epoch(epoch - 1 + (b - 1) / n_batches)              # epochs done before this step
                targets = x_train[idx]                                      # (b, 1, 28, 28)
                inputs = corrupt(targets) if corrupt else targets
                extra = {"labels": y_train[idx]} if with_labels else {}        # the batch's labels, when asked
                terms = _terms(objective(model, inputs, targets, **extra))
                values = {name: float(value.detach()) for name, value in terms.items()}
                _check_finite(values, epoch, b, n_batches, lr)
                loss = next(iter(terms.values()))                          # the first term is the loss
                if not loss.requires_grad:
                    raise TypeError(f"the objective's first entry, {next(iter(terms))!r}, carries no gradient: "
                                    "compute it from the model's output, without .detach(), .item() or no_grad()")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if callable(after_step):
                    after_step()
                for name, value in values.items():
                    sums[name] = sums.get(name, 0.0) + value * idx.numel()
                bar.update(1)
            for name, total in sums.items():
                history.train.setdefault(name, []).append(total / n)
            if x_test is not None:
                if set_epoch is not None:
                    set_epoch(float(epoch))                                 # the weight at the epoch's end
                for name, value in evaluate(model, test if with_labels else x_test, objective=objective,
                                            device=device, corrupt=corrupt, with_labels=with_labels).items():
                    history.test.setdefault(name, []).append(value)
            history.seconds.append(time.perf_counter() - start)
            bar.set_postfix(epoch=epoch, **{name: f"{v[-1]:.4g}" for name, v in history.train.items()})
            if log:
                parts = [f"train {name} {v[-1]:.5f}" for name, v in history.train.items()]
                parts += [f"test {name} {v[-1]:.5f}" for name, v in history.test.items()]
                print(f"epoch {epoch:>3}/{epochs}  " + "  ".join(parts) + f"  ({history.seconds[-1]:.1f} s)")
    except KeyboardInterrupt:                   # the learner pressed Stop: keep what finished
        history.interrupted = True
        # hold the history consistent: an epoch counts only with its time, train and held-out values
        for logs in (history.train, history.test):
            for name in logs:
                del logs[name][history.epochs:]
        print(f"training stopped after {history.epochs} of {epochs} epochs; the history of the finished epochs "
              "is returned (the model keeps the weights it had when stopped)")
    except FloatingPointError as err:           # a NaN loss: stop, but hand over the finished epochs
        err.history = history
        raise
    finally:
        bar.close()
        if set_epoch is not None:
            set_epoch(None)                                                 # not training any more
        model.eval()
    return history


@torch.no_grad()
def predict(model: nn.Module, data, *, batch_size: int = 1000, fn: Callable | None = None) -> torch.Tensor:
    """Apply ``fn`` (default: the model itself) to ``data`` in batches, in eval mode, without autograd.

    Data go to the model's device; results come back on that device. When ``fn`` returns a tuple
    of tensors (a VAE's ``encode`` gives ``(mu, logvar)``), each part is joined over the batches
    and the same kind of tuple comes back.
    """
    images = _images(data, "data", model)
    fn = fn or model                            # an empty set still runs once, so the result has its shape
    outs = [fn(x) for x, _ in eval_batches(model, images, batch_size, at_least_once=True)]
    if isinstance(outs[0], tuple):
        parts = [torch.cat(part) for part in zip(*outs)]
        return type(outs[0])(*parts) if hasattr(outs[0], "_fields") else tuple(parts)   # a NamedTuple keeps its names
    return torch.cat(outs)


def encode(model: nn.Module, data, *, batch_size: int = 1000) -> torch.Tensor:
    """The codes ``model.encode`` gives ``data``, computed in batches: (N, latent...).

    For a VAE, the pair ``(mu, logvar)``: ``mu, logvar = encode(vae, test)``; plot the means ``mu``.
    """
    return predict(model, data, batch_size=batch_size, fn=model.encode)
