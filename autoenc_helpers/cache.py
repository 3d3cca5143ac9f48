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

import contextlib
import functools
import hashlib
import inspect
import json
import os
import pickle
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from .data import data_root, images_of
from .device import get_device
from .training import History, fit, use_fast_layout

__all__ = ["FORMAT", "Unkeyable", "checkpoint_dir", "settings_of", "checkpoint_path", "save_checkpoint",
           "load_checkpoint",
           "cached_fit"]

FORMAT = 1
"""The layout of a checkpoint file; a file of another format is retrained, not misread."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NOT_SETTINGS = ("device", "progress", "log")       # where and how loudly: the same weights either way


def checkpoint_dir() -> Path:
    """The folder checkpoints live in: ``$AUTOENC_CHECKPOINTS``, else ``checkpoints/`` in the data folder."""
    env = os.environ.get("AUTOENC_CHECKPOINTS")
    return Path(env).expanduser() if env else data_root() / "checkpoints"


class Unkeyable(ValueError):
    """The settings of an argument cannot be determined, so no checkpoint can safely stand for them."""


_PLAIN = (type(None), bool, int, float, str)
_TRUSTED = ("autoenc_helpers", "torch", "numpy", "math", "builtins", "functools")   # code versioned elsewhere


def _code_digest(code) -> str:
    """A digest of compiled code (bytecode, constants, names), stable across runs for the same code."""
    h = hashlib.sha256()
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        h.update(_code_digest(const).encode() if inspect.iscode(const) else repr(const).encode())
    return h.hexdigest()


def _global_names(code) -> set[str]:
    """The names a code object (and the functions and comprehensions inside it) may read as globals."""
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _global_names(const)
    return names


def _trusted(obj) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] in _TRUSTED


def _describe_value(value, depth: int) -> object:
    """A JSON-ready description of a value an objective depends on; Unkeyable when there is none."""
    if isinstance(value, _PLAIN):
        return value if not isinstance(value, float) else repr(value)
    if isinstance(value, (tuple, list)):
        return [_describe_value(v, depth) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _describe_value(v, depth) for k, v in sorted(value.items())}
    if torch.is_tensor(value):
        data = value.detach().cpu().contiguous()
        return {"tensor": list(data.shape), "dtype": str(data.dtype),
                "sha256": hashlib.sha256(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"").hexdigest()}
    if inspect.ismodule(value):
        return {"module": value.__name__}
    if inspect.isclass(value):
        return {"class": f"{value.__module__}.{value.__qualname__}",
                "code": None if _trusted(value) else _class_code(value)}
    if callable(value):
        return _describe_callable(value, depth + 1)
    raise Unkeyable(f"it depends on a {type(value).__name__} value, whose settings cannot be read")


def _describe_callable(fn, depth: int = 0) -> object:
    """What decides what ``fn`` computes: declared settings, or its code and every value it reads."""
    if fn is None:
        return None
    if depth > 4:
        raise Unkeyable("it calls functions nested too deeply to follow")
    name = getattr(fn, "__qualname__", type(fn).__qualname__)
    settings = getattr(fn, "settings", None)
    if settings is not None:                                  # the package's objectives and corruptions say it
        return {"name": name, "settings": _describe_value(settings, depth)}
    if isinstance(fn, functools.partial):
        return {"partial": _describe_callable(fn.func, depth + 1), "args": _describe_value(list(fn.args), depth),
                "keywords": _describe_value(dict(fn.keywords), depth)}
    if inspect.isbuiltin(fn) or (inspect.isfunction(fn) and _trusted(fn) and not fn.__closure__):
        return {"function": f"{getattr(fn, '__module__', None)}.{name}"}   # library code: its version decides
    if inspect.ismethod(fn):
        raise Unkeyable(f"{name} is a method: what it computes depends on its object")
    if not inspect.isfunction(fn):
        raise Unkeyable(f"{type(fn).__name__} objects declare no settings")
    reads = {}
    for global_name in sorted(_global_names(fn.__code__)):
        if global_name in fn.__globals__:
            reads[global_name] = _describe_value(fn.__globals__[global_name], depth)
    return {"name": name, "code": _code_digest(fn.__code__),
            "defaults": _describe_value(list(fn.__defaults__ or ()), depth),
            "kwdefaults": _describe_value(dict(fn.__kwdefaults__ or {}), depth),
            "closure": _describe_value([cell.cell_contents for cell in fn.__closure__ or ()], depth),
            "globals": reads}


def _class_code(cls) -> dict:
    """Digests of the code of every method a class (and its non-torch bases) defines."""
    out = {}
    for klass in cls.__mro__:
        if _trusted(klass) and not klass.__module__.startswith("autoenc_helpers"):
            continue                                          # torch's own classes: their repr says enough
        for attr, member in sorted(vars(klass).items()):
            function = getattr(member, "__func__", member)
            if inspect.isfunction(function):
                out[f"{klass.__qualname__}.{attr}"] = _code_digest(function.__code__)
    return out


def _model_code(model: nn.Module) -> dict:
    """The code of the model's own classes (its forward and every other method), for every submodule."""
    out = {}
    for module in model.modules():
        cls = type(module)
        if not cls.__module__.startswith("torch.") and cls.__qualname__ not in out:
            out[cls.__qualname__] = _class_code(cls)
    return out


def _fingerprint_data(data) -> object:
    """Size and a digest of a data set: every 97th image, the sum of all of them, and the labels."""
    if data is None:
        return None
    images = images_of(data)
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
    model, since its initial weights are part of the settings. The model counts with its architecture,
    its initial weights and the code of its own classes; an objective or corruption with its declared
    ``settings``, or else its code and every value it reads (defaults, closure, globals). Raises
    :class:`Unkeyable` when an argument's settings cannot be determined.
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
        try:
            chosen[name] = _describe_callable(chosen[name])
        except Unkeyable as reason:
            what = getattr(chosen[name], '__qualname__', type(chosen[name]).__name__ + ' object')
            raise Unkeyable(f"the settings of {name}={what} "
                            f"cannot be determined: {reason}") from None
    return {"format": FORMAT,
            "model": type(model).__qualname__,
            "architecture": repr(model),
            "code": _model_code(model),
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


def _first_line(err: BaseException) -> str:
    """The first line of an exception's message (some, like a bare EOFError, have none)."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:120]}" if text else type(err).__name__


def _check_record(saved, model: nn.Module, settings: dict | None) -> History:
    """Check the whole record against the model before anything is copied; return its History."""
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ValueError(f"it is not a format-{FORMAT} checkpoint of this course")
    if settings is not None and saved.get("settings") != json.dumps(settings, sort_keys=True, default=repr):
        raise ValueError("it was saved for other settings")
    state, expected = saved.get("state_dict"), model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        missing = sorted(set(expected) - set(state or {}))[:3]
        extra = sorted(set(state or {}) - set(expected))[:3]
        raise ValueError(f"its weights do not fit the model (missing {missing}, unexpected {extra})")
    for key, tensor in expected.items():
        if not torch.is_tensor(state[key]) or state[key].shape != tensor.shape:
            got = tuple(state[key].shape) if torch.is_tensor(state[key]) else type(state[key]).__name__
            raise ValueError(f"its weights do not fit the model ({key}: {got} in the file, "
                             f"{tuple(tensor.shape)} in the model)")
    record = saved.get("history")
    try:
        history = History(**{key: record[key] for key in ("train", "test", "seconds")})
        if not (isinstance(history.train, dict) and isinstance(history.test, dict)
                and isinstance(history.seconds, list) and history.seconds):
            raise TypeError("not a history of at least one epoch")
    except (KeyError, TypeError) as err:
        raise ValueError(f"its training history is incomplete ({_first_line(err)})") from None
    return history


def _load(path: Path, model: nn.Module, settings: dict | None, device: torch.device) -> tuple[History, dict]:
    """Load a checkpoint into ``model``; raise ValueError with the reason when it cannot be used.

    settings: the checkpoint must have been saved for these (None: any settings). The record is
    checked in full before the model is touched, so a file that cannot be used leaves the model as
    it was (its initial weights, which the retraining then starts from).
    """
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:   # holds objects weights_only refuses ("unsupported GLOBAL ...")
        if "global" in str(err).lower() or "weights_only" in str(err):
            raise ValueError("the file cannot be read: it holds Python objects other than tensors and plain "
                             "values, which loading with weights_only=True refuses to run") from None
        raise ValueError(f"the file cannot be read ({_first_line(err)})") from None
    except Exception as err:            # empty, truncated, not a torch file
        raise ValueError(f"the file cannot be read ({_first_line(err)})") from None
    history = _check_record(saved, model, settings)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    try:
        model.load_state_dict(saved["state_dict"], strict=True)
    except Exception as err:            # a dtype that does not convert, ...: give the model its weights back
        model.load_state_dict(before)
        raise ValueError(f"its weights do not fit the model ({_first_line(err)})") from None
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
        print(f"could not save the checkpoint {path.name} ({_first_line(err)})")
        with contextlib.suppress(OSError):
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
    try:
        settings = settings_of(model, train, test, **fit_kwargs)
    except Unkeyable as reason:             # never key a model by a name alone: train, and say so
        print(f"{name}: {reason}, so no checkpoint can stand for this run; training without the cache.")
        return fit(model, train, test, **fit_kwargs)
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
    if history.interrupted:
        print(f"{name}: training was stopped after {history.epochs} epoch(s), so no checkpoint is saved.")
    elif save_checkpoint(path, model, history, settings):
        print(f"saved checkpoint {path.name} in {path.parent.name}/; the next run with these settings loads it.")
    else:
        print(f"the model of {name} is trained but will be trained again next time.")
    return history
