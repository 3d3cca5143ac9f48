"""Train once, load afterwards: the classroom mode.

A teacher presenting a lesson should not wait for training in front of a class, and a learner who
re-opens a notebook should not wait for the same model twice. :func:`cached_fit` is :func:`fit`
with a memory:

- the first run trains the model as usual and saves its weights and its training history under
  ``data/checkpoints/`` (``$AUTOENC_CHECKPOINTS`` when set), in a file named after the model and a
  digest of its **settings**;
- a later run with the same settings loads that file instead of training, and says so;
- change any setting (epochs, learning rate, architecture, seed, data, objective...) and the digest
  changes, so the model is trained again and saved under the new digest.

The settings are everything that decides the trained weights: the model's architecture and its
initial weights (so the seed counts), the training and held-out data (size and a fingerprint of the
values), and every argument of ``fit`` that changes the result (``epochs``, ``batch_size``, ``lr``,
``weight_decay``, ``seed``, the objective and its settings, the corruption). Where to train
(``device``) and how to report (``progress``, ``log``) do not count.

Checkpoints are read with ``torch.load(..., weights_only=True)``, which loads tensors and plain
Python values but never runs code from the file. A file that is corrupt, was written for other
settings, or no longer fits the model is reported and the model is trained again: a bad checkpoint
never stops a lesson. Delete the folder to start afresh; nothing in it is committed.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from .data import ImageSet, data_root
from .device import get_device
from .training import History, fit, use_fast_layout

__all__ = ["FORMAT", "checkpoint_dir", "settings_of", "checkpoint_path", "save_checkpoint", "load_checkpoint",
           "cached_fit"]

FORMAT = 1
"""The layout of a checkpoint file; a file of another format is retrained, not misread."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NOT_SETTINGS = ("device", "progress", "log")       # where and how loudly: the same weights either way


def checkpoint_dir() -> Path:
    """The folder checkpoints live in: ``$AUTOENC_CHECKPOINTS``, else ``checkpoints/`` in the data folder."""
    env = os.environ.get("AUTOENC_CHECKPOINTS")
    return Path(env).expanduser() if env else data_root() / "checkpoints"


def _describe_function(fn) -> object:
    """A stable description of an objective or corruption: its settings, else its name and source."""
    if fn is None:
        return None
    settings = getattr(fn, "settings", None)
    name = getattr(fn, "__qualname__", type(fn).__qualname__)
    if settings is not None:
        return {"name": name, "settings": settings}
    if not inspect.isroutine(fn):                          # a callable object, e.g. ah.Corruption(...)
        return {"name": name, "state": repr(sorted((k, repr(v)) for k, v in vars(fn).items()))}
    try:
        return {"name": name, "source": inspect.getsource(fn)}
    except (OSError, TypeError):                           # no source to read: the name must do
        return {"name": name, "module": getattr(fn, "__module__", None)}


def _fingerprint_data(data) -> object:
    """Size and a digest of a data set: every 97th image, the sum of all of them, and the labels."""
    if data is None:
        return None
    images = data.images if isinstance(data, ImageSet) else data
    if not torch.is_tensor(images):
        raise TypeError(f"cached_fit expects an ImageSet or a tensor of images, got {type(data).__name__}")
    sample = images[::97].detach().float().cpu().contiguous()
    labels = getattr(data, "labels", None)          # a conditional model (with_labels=True) learns from them too
    return {"shape": list(images.shape),
            "labels_sha256": None if labels is None else hashlib.sha256(
                labels.detach().cpu().contiguous().numpy().tobytes()).hexdigest(),
            "sum": round(float(images.detach().double().sum()), 3),
            "sample_sha256": hashlib.sha256(sample.numpy().tobytes()).hexdigest()}


def _fingerprint_weights(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def settings_of(model: nn.Module, train, test=None, **fit_kwargs) -> dict:
    """Everything that decides the trained weights, as a JSON-ready dict (the checkpoint's key).

    Takes the same arguments as :func:`~autoenc_helpers.training.fit`; call it on the *untrained*
    model, since its initial weights are part of the settings.
    """
    if "optimizer" in fit_kwargs:
        raise ValueError("cached_fit cannot key a ready-made optimizer; pass lr and weight_decay instead")
    arguments = inspect.signature(fit).parameters
    unknown = sorted(set(fit_kwargs) - set(arguments))
    if unknown:
        raise TypeError(f"fit() has no argument(s) {unknown}")
    chosen = {name: fit_kwargs.get(name, p.default) for name, p in arguments.items()
              if p.kind is p.KEYWORD_ONLY and name not in _NOT_SETTINGS and name != "optimizer"}
    for name in ("objective", "corrupt"):
        chosen[name] = _describe_function(chosen[name])
    return {"format": FORMAT,
            "model": type(model).__qualname__,
            "architecture": repr(model),
            "initial_weights_sha256": _fingerprint_weights(model),
            "train": _fingerprint_data(train),
            "test": _fingerprint_data(test),
            "fit": chosen}


def _digest(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=repr).encode()).hexdigest()


def checkpoint_path(name: str, settings: dict, folder: str | os.PathLike | None = None) -> Path:
    """Where the checkpoint of ``name`` with these settings lives: ``<folder>/<name>-<12 hex digits>.pt``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"checkpoint name {name!r} must be letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit (it becomes a file name)")
    folder = Path(folder) if folder is not None else checkpoint_dir()
    return folder / f"{name}-{_digest(settings)[:12]}.pt"


def _history_to_dict(history: History) -> dict:
    return {"train": history.train, "test": history.test, "seconds": history.seconds}


def _load(path: Path, model: nn.Module, settings: dict | None, device: torch.device) -> tuple[History, dict]:
    """Load a checkpoint into ``model``; raise ValueError with the reason when it cannot be used.

    settings: the checkpoint must have been saved for these (None: any settings).
    """
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:            # truncated, not a torch file, or holding something that is not data
        if "Unsupported global" in str(err):
            raise ValueError("the file cannot be read: it holds Python objects other than tensors and plain "
                             "values, which loading with weights_only=True refuses to run")
        raise ValueError(f"the file cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ValueError(f"it is not a format-{FORMAT} checkpoint of this course")
    if settings is not None and saved.get("settings") != json.dumps(settings, sort_keys=True, default=repr):
        raise ValueError("it was saved for other settings")
    try:
        model.load_state_dict(saved["state_dict"], strict=True)
        history = History(**{key: saved["history"][key] for key in ("train", "test", "seconds")})
    except (KeyError, RuntimeError, TypeError) as err:
        raise ValueError(f"its weights do not fit the model ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:120]})")
    use_fast_layout(model.to(device), device)
    model.eval()
    return history, saved


def save_checkpoint(path: str | os.PathLike, model: nn.Module, history: History, settings: dict) -> bool:
    """Write ``model``'s weights and ``history`` to ``path`` in the checkpoint format of :func:`cached_fit`.

    The file is written to a temporary name first and renamed, so a crash never leaves a half-written
    checkpoint. Returns True when saved; when the disk refuses (read-only folder, full disk, ...) it
    prints why, removes the temporary file and returns False: a failed save never loses a trained model.
    """
    path = Path(path)
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    record = {"format": FORMAT, "settings": json.dumps(settings, sort_keys=True, default=repr),
              "state_dict": state, "history": _history_to_dict(history),
              "saved": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "torch": str(torch.__version__)}
    partial = path.with_suffix(f".{os.getpid()}.{time.monotonic_ns()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(record, partial)
        os.replace(partial, path)
        return True
    except Exception as err:                # read-only, disk full, ...: say so and keep the trained model
        print(f"could not save the checkpoint {path.name} ({type(err).__name__}: {err})")
        partial.unlink(missing_ok=True)
        return False


def load_checkpoint(path: str | os.PathLike, model: nn.Module, device: torch.device | str | None = None) -> History:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model``; return its :class:`History`.

    For a file whose settings you know (a distributed run's output, lesson 12); :func:`cached_fit` finds
    and checks its own files. Read with ``weights_only=True``. Raises ValueError naming the file and
    the reason when it cannot be used; ``model`` ends on ``device`` (default: the course's) in eval mode.
    """
    path = Path(path)
    device = torch.device(device) if device is not None else get_device(verbose=False)
    try:
        history, _ = _load(path, model, None, device)
    except ValueError as reason:
        raise ValueError(f"checkpoint {path} cannot be used: {reason}") from None
    return history


def cached_fit(name: str, model: nn.Module, train, test=None, *, retrain: bool = False,
               folder: str | os.PathLike | None = None, **fit_kwargs) -> History:
    """:func:`fit`, or load the result of an earlier identical ``fit``: returns the :class:`History`.

    name: a short label for the file, e.g. ``"lesson08_conv_vae"``; the settings digest is appended.
    model, train, test, fit_kwargs: exactly what :func:`fit` takes. ``model`` is trained in place or
        gets the saved weights; either way it ends on the device and in eval mode, as after ``fit``.
    retrain: train even when a checkpoint with these settings exists (and overwrite it).
    folder: where checkpoints live (default :func:`checkpoint_dir`).

    Prints one line saying whether the model was loaded or trained and saved, with the file name.
    """
    settings = settings_of(model, train, test, **fit_kwargs)
    path = checkpoint_path(name, settings, folder)
    device = fit_kwargs.get("device")
    device = torch.device(device) if device is not None else get_device(verbose=False)

    if path.exists() and not retrain:
        try:
            history, saved = _load(path, model, settings, device)
        except ValueError as reason:
            print(f"checkpoint {path.name} cannot be used: {reason}. Training again.")
        else:
            took = sum(history.seconds)
            print(f"loaded {name} from checkpoint {path.name} (trained {history.epochs} epochs in {took:.0f} s "
                  f"on {saved.get('saved', '?')}). Same settings, so no training; to train again pass "
                  f"retrain=True or delete the file from {path.parent.name}/.")
            return history

    history = fit(model, train, test, **fit_kwargs)
    if save_checkpoint(path, model, history, settings):
        print(f"saved checkpoint {path.name} in {path.parent.name}/; the next run with these settings loads it.")
    else:
        print(f"the model of {name} is trained but will be trained again next time.")
    return history
