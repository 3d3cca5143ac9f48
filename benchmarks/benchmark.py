"""Measure the course against reference code, on this machine, in one command.

Run it as a command (it is a benchmark, not a test)::

    python3 benchmarks/benchmark.py                    # everything: about 40 minutes on a 2-core CPU
    python3 benchmarks/benchmark.py --smoke            # small sizes: a few minutes
    python3 benchmarks/benchmark.py --parts training,quality --models mlp_vae

It prints Markdown tables and writes them to ``benchmarks/latest.md`` (``--out``), rewritten after
each part, so an interrupted run keeps what it measured. On a GPU: ``AUTOENC_DEVICE=cuda python3
benchmarks/benchmark.py``. Progress goes to stderr. It runs from a checkout, beside the package it measures
(it is not installed with it).

The parts (``--parts``, default all of them, in this order):

training   Images per second and seconds per epoch over the training images, for the two models
           of ``MODELS`` (the 784-400-20 MLP VAE and lesson 08's convolutional VAE), each trained two
           ways from the same initial weights, epochs interleaved (a, b, a, b, ...) so that both
           see the same machine noise:
           (a) the course: :func:`~autoenc_helpers.training.fit` with ``vae_objective()`` on the
               in-memory images (fused Adam, channels-last convolutions on the CPU);
           (b) the classic reference (pytorch/examples' ``vae/main.py``): torchvision's
               ``DataLoader(FashionMNIST(transform=ToTensor()))``, batch 128, shuffled,
               ``F.binary_cross_entropy`` on sigmoid outputs with ``reduction="sum"`` plus the KL
               summed, plain ``torch.optim.Adam(lr=1e-3)``.
           The speed-up is median (b) / median (a) seconds per epoch.
quality    The held-out negative ELBO per image in nats, with sampling
           (:func:`~autoenc_helpers.losses.negative_elbo`), after 1, 5 and 10 epochs of the same
           runs: both ways must reach the same quality (within 1%) for the speed-up to count.
ablation   What each trick of (a) buys: (a) with one trick off at a time (fused Adam, channels-last,
           all but one thread), (b) with only its data path changed to in-memory batches, and
           candidates that were measured and left out (``torch.compile``), one epoch each.
memory     Peak resident memory (RSS) of a process that loads the data and trains one epoch, one
           fresh subprocess per model and way, so that peaks do not mix.
widgets    Time from a slider change to the PNG the browser receives, for every widget class of
           :mod:`~autoenc_helpers.widgets` (``WIDGET_CASES``), inside an IPython shell with the
           inline backend, so drawing and PNG encoding are counted (subprocess).
notebooks  Full-mode and smoke-mode wall time of every notebook in ``notebooks/``, each run top to
           bottom in a fresh kernel on a copy in a temporary folder, with an empty checkpoint folder
           (nothing loaded from the classroom cache). The committed notebooks are never rewritten.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:          # run as a script from a checkout: the package and tools/ import from it
    sys.path.insert(0, str(ROOT))

from autoenc_helpers import training  # noqa: E402
from autoenc_helpers.data import (SPLITS, ImageSet, batch_indices, clear_cache, data_root, dataset_files,  # noqa: E402
                                  load_dataset)
from autoenc_helpers.device import CHOICES, describe_device, get_device  # noqa: E402
from autoenc_helpers.losses import negative_elbo, vae_objective  # noqa: E402
from autoenc_helpers.models import ConvVAE, MLPAutoencoder, MLPVAE  # noqa: E402
from autoenc_helpers.training import fit, make_optimizer  # noqa: E402
from tools.lessons import LESSONS, TOTAL_BUDGET_S  # noqa: E402

__all__ = ["CONV_VAE_CHANNELS", "MODELS", "PARTS", "WIDGET_CASES", "FULL", "SMOKE", "CourseWay", "ClassicWay",
           "widget_classes", "main"]

DEFAULT_OUT = ROOT / "benchmarks" / "latest.md"
NOTEBOOK_DIR = ROOT / "notebooks"

# --------------------------------------------------------------------------------------
# What is measured

CONV_VAE_CHANNELS = (16, 32, 32, 32)
"""Lesson 08's convolutional VAE (its ``CHANNELS``): the one place the benchmark names it."""

MODELS: dict[str, tuple[str, Callable[[], torch.nn.Module]]] = {
    "mlp_vae": ("MLP VAE 784-400-20", lambda: MLPVAE(latent_dim=20, hidden=(400,))),
    "conv_vae": (f"conv VAE {CONV_VAE_CHANNELS}, 2-D code",
                 lambda: ConvVAE(latent_dim=2, channels=CONV_VAE_CHANNELS)),
}
"""key -> (name in the tables, a function that builds the untrained model)."""

PARTS = ("training", "quality", "ablation", "memory", "widgets", "notebooks")
BATCH_SIZE = 128
LR = 1e-3

SPEEDUP_TARGETS = {"mlp_vae": 3.0, "conv_vae": 1.5}       # (b) / (a) seconds per epoch, at least
QUALITY_TOLERANCE = 0.01                                  # (a) and (b) negative ELBO within 1%
MEMORY_TARGET_MB = 2048
WIDGET_TARGET_MS = 50.0                                   # median, slider change to PNG
NOTEBOOKS_TOTAL_BUDGET_S = TOTAL_BUDGET_S                 # each lesson's own budget: tools/lessons.py


@dataclass(frozen=True)
class Settings:
    """The sizes of one run; ``FULL`` by default, ``SMOKE`` with ``--smoke``."""

    images: int | None        # training images (None: all 60,000)
    test_images: int | None   # held-out images for the negative ELBO and the widgets (None: all 10,000)
    epochs: int               # epochs per way in the training and quality part
    checkpoints: tuple        # epochs after which the negative ELBO is measured
    elbo_samples: int         # z draws per held-out image in the negative ELBO
    ablation_epochs: int      # epochs per ablation row
    widget_moves: int         # timed slider moves per widget case
    notebook_modes: tuple     # "smoke", "full"


FULL = Settings(images=None, test_images=None, epochs=10, checkpoints=(1, 5, 10), elbo_samples=5,
                ablation_epochs=1, widget_moves=40, notebook_modes=("smoke", "full"))
SMOKE = Settings(images=6_000, test_images=1_000, epochs=2, checkpoints=(1, 2), elbo_samples=1,
                 ablation_epochs=1, widget_moves=10, notebook_modes=("smoke",))

_CHILD_MARK = "AUTOENC-BENCHMARK-RESULT "


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer read afterwards counts all of it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _fresh_model(key: str, seed: int) -> torch.nn.Module:
    """Model ``key`` with its initial weights drawn from ``seed`` (same seed, same weights)."""
    torch.manual_seed(seed)
    return MODELS[key][1]()


# --------------------------------------------------------------------------------------
# The two ways of training, one epoch per call


@contextlib.contextmanager
def _threads(n: int | None):
    """Run the block with ``n`` torch threads (None: leave them)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _fast_layout(on: bool):
    """Run the block with ``training.FAST_LAYOUT`` set to ``on`` (channels-last convolutions on the CPU, or not)."""
    before = training.FAST_LAYOUT
    training.FAST_LAYOUT = on
    try:
        yield
    finally:
        training.FAST_LAYOUT = before


class CourseWay:
    """(a) The course's way: ``fit`` on the in-memory images, one epoch per call, one optimizer throughout.

    The ablation switches off one trick at a time: ``fused=False`` gives plain ``torch.optim.Adam``
    instead of :func:`~autoenc_helpers.training.make_optimizer`; ``fast_layout=False`` keeps the
    default memory layout (no :func:`~autoenc_helpers.training.use_fast_layout`); ``threads`` sets
    torch's thread count for the epoch; ``compile=True`` trains ``torch.compile(model)``.
    """

    def __init__(self, model: torch.nn.Module, train, device: torch.device, *, seed: int = 0, fused: bool = True,
                 fast_layout: bool = True, threads: int | None = None, compile: bool = False):
        self.model = model.to(device)
        self.train, self.device, self.seed = train, device, seed
        self.fast_layout, self.threads = fast_layout, threads
        self.optimizer = (make_optimizer(self.model, lr=LR) if fused
                          else torch.optim.Adam(self.model.parameters(), lr=LR))
        # static shapes: with dynamic ones, torch.randn(mu.shape, generator=...) in reparameterize does not trace
        self.trained = torch.compile(self.model, dynamic=False) if compile else self.model
        self.objective = vae_objective()

    def epoch(self, number: int, images=None) -> None:
        """Train one epoch (over ``images``, default the training set); shuffled by seed and epoch number."""
        with _fast_layout(self.fast_layout), _threads(self.threads):
            fit(self.trained, self.train if images is None else images, objective=self.objective, epochs=1,
                batch_size=BATCH_SIZE, optimizer=self.optimizer, seed=1000 * self.seed + number,
                device=self.device, progress=False, log=False)


class ClassicWay:
    """(b) The classic way, as in pytorch/examples' ``vae/main.py``: a ``DataLoader``, BCE on sigmoids, plain Adam.

    batches: a ``DataLoader`` over torchvision's ``FashionMNIST(transform=ToTensor())`` (yields
    (images, labels) per batch), or, for the ablation, any iterable factory of such batches.
    """

    def __init__(self, model: torch.nn.Module, batches: Iterable, device: torch.device):
        self.model = model.to(device)
        self.batches, self.device = batches, device
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)

    @staticmethod
    def loss(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        """The reference loss in nats per batch: BCE summed over pixels and images, plus the KL summed."""
        logits, mu, logvar = model(images)                                   # (B, 1, 28, 28), (B, k), (B, k)
        bce = F.binary_cross_entropy(torch.sigmoid(logits), images, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce + kld

    def epoch(self, number: int, batches: Iterable | None = None) -> None:
        """Train one epoch (over ``batches``, default the loader given at construction)."""
        self.model.train()
        train_loss = 0.0
        for images, _ in self.batches if batches is None else batches:
            images = images.to(self.device)                                   # (B, 1, 28, 28)
            self.optimizer.zero_grad()
            loss = self.loss(self.model, images)
            loss.backward()
            train_loss += loss.item()                                        # as the reference logs it
            self.optimizer.step()
        self.model.eval()


class _InMemoryBatches:
    """(b)'s data path swapped for the course's: ``x[idx]`` batches of the in-memory images, shuffled."""

    def __init__(self, images: torch.Tensor, seed: int):
        self.images, self.generator = images, torch.Generator().manual_seed(seed)

    def __iter__(self):
        n = self.images.shape[0]
        for idx in batch_indices(n, BATCH_SIZE, shuffle=True, generator=self.generator,
                                       device=self.images.device):
            yield self.images[idx], None


@dataclass
class _Data:
    """The data of one run: the course's in-memory sets and torchvision's dataset, with their load times."""

    train: ImageSet
    test: ImageSet
    torchvision_train: torch.utils.data.Dataset | None
    load_a: float
    load_b: float | None


TORCHVISION_FOLDER = "FashionMNIST"
"""Where ``torchvision.datasets.FashionMNIST(root)`` looks: ``root/FashionMNIST/raw/``."""


def export_torchvision_layout(root: str | os.PathLike) -> Path:
    """Put uncompressed copies of the Fashion-MNIST files the course reads where torchvision looks for them.

    After this, ``torchvision.datasets.FashionMNIST(root, download=False)`` works offline too (way (b)
    reads the same files as way (a)). Files already there are kept. Returns the ``raw/`` folder.
    """
    raw = Path(root) / TORCHVISION_FOLDER / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        for source in dataset_files("fashion_mnist", split, root=root):
            target = raw / source.name.removesuffix(".gz")
            if target.is_file():
                continue
            opener = gzip.open if source.suffix == ".gz" else open
            with opener(source, "rb") as fin, open(target, "wb") as fout:
                shutil.copyfileobj(fin, fout)
    return raw


def _load_data(settings: Settings, device: torch.device, root: Path, *, with_torchvision: bool = True) -> _Data:
    """Both ways' data; ``with_torchvision=False`` leaves (b)'s out (and torchvision unimported)."""
    clear_cache()                                        # time the reading of the files, not a cache
    _sync(device)
    start = time.perf_counter()
    train = load_dataset("fashion_mnist", "train", n=settings.images, device=device, root=root, verbose=False)
    _sync(device)
    load_a = time.perf_counter() - start
    test = load_dataset("fashion_mnist", "test", n=settings.test_images, device=device, root=root, verbose=False)
    if not with_torchvision:
        return _Data(train, test, None, load_a, None)
    import torchvision

    export_torchvision_layout(root)                      # torchvision's own reader over the same files (offline)
    start = time.perf_counter()
    tv_train = torchvision.datasets.FashionMNIST(str(root), train=True, download=False,
                                                 transform=torchvision.transforms.ToTensor())
    load_b = time.perf_counter() - start
    if settings.images is not None:
        tv_train = torch.utils.data.Subset(tv_train, range(len(train)))
    if len(tv_train) != len(train):
        raise RuntimeError(f"way (b) has {len(tv_train):,} images and way (a) {len(train):,}; they must match")
    return _Data(train, test, tv_train, load_a, load_b)


def _loader(dataset, seed: int, workers: int = 0) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=workers,
                                       generator=torch.Generator().manual_seed(seed))


def _timed_epoch(way, number: int, device: torch.device) -> tuple[float, float]:
    """One epoch of ``way``: (wall seconds, CPU seconds of this process).

    On a quiet machine the wall time is what a learner waits; on a shared one it also holds the time
    other jobs took the cores, while the CPU time (all of this process's threads) does not.
    """
    _sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    way.epoch(number)
    _sync(device)
    return time.perf_counter() - start, time.process_time() - cpu


def _elbo(model: torch.nn.Module, test, settings: Settings, seed: int, device: torch.device) -> float:
    generator = torch.Generator(device=device).manual_seed(seed)             # the same draws for both ways
    return negative_elbo(model, test, n_samples=settings.elbo_samples, generator=generator)


# --------------------------------------------------------------------------------------
# Parts 1 and 2: throughput and quality, from the same runs


def run_training(key: str, data: _Data, settings: Settings, device: torch.device, *, seed: int = 0,
                 workers: int = 0, quality: bool = True) -> dict:
    """Train model ``key`` both ways, epochs interleaved; return seconds per epoch and negative ELBOs."""
    ways = {
        "a": CourseWay(_fresh_model(key, seed), data.train, device, seed=seed),
        "b": ClassicWay(_fresh_model(key, seed), _loader(data.torchvision_train, seed, workers), device),
    }
    seconds, cpu = {w: [] for w in ways}, {w: [] for w in ways}
    elbo = {w: {} for w in ways}
    for epoch in range(1, settings.epochs + 1):
        for w, way in ways.items():
            wall, used = _timed_epoch(way, epoch, device)
            seconds[w].append(wall)
            cpu[w].append(used)
        line = ", ".join(f"({w}) {seconds[w][-1]:.1f} s" for w in ways)
        if quality and epoch in settings.checkpoints:
            for w, way in ways.items():
                elbo[w][epoch] = _elbo(way.model, data.test, settings, seed, device)
            line += "; -ELBO " + ", ".join(f"({w}) {elbo[w][epoch]:.2f}" for w in ways)
        _log(f"[training] {key} epoch {epoch}/{settings.epochs}: {line}")
    return {"seconds": seconds, "cpu_seconds": cpu, "elbo": elbo}


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.3g}" if seconds < 100 else f"{seconds:.0f}"


def _median(values) -> float:
    return float(statistics.median(values))


def _verdict(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def _quality_gaps(run: dict) -> dict[int, float]:
    """Epoch -> |(a) - (b)| / (b) of the negative ELBO."""
    a, b = run["elbo"]["a"], run["elbo"]["b"]
    return {e: abs(a[e] - b[e]) / abs(b[e]) for e in a if e in b}


TRAINING_HEADER = ("| model | way | s / epoch (median) | images / s | each epoch (s) | CPU s / epoch | "
                   "speed-up (b) / (a) |")
QUALITY_HEADER_START = "| model | way |"
ABLATION_HEADER = ("| model | variant | s / epoch | images / s | time vs (a) | CPU s / epoch | one-time cost (s) | "
                   "what it shows |")
MEMORY_HEADER = "| model | way | peak RSS (MB) | RSS after imports (MB) | target < 2,048 MB |"
WIDGETS_HEADER = ("| widget | case | build (s) | median (ms) | p95 (ms) | CPU median (ms) | moves | PNG (kB) | "
                  "median < 50 ms |")
NOTEBOOKS_HEADER = "| notebook | budget (s) | full mode (s) | smoke mode (s) | within budget |"


def training_table(runs: dict, n_images: int) -> str:
    lines = [TRAINING_HEADER, "|---|---|---|---|---|---|---|"]
    for key, run in runs.items():
        s, c = run["seconds"], run["cpu_seconds"]
        speedup = _median(s["b"]) / _median(s["a"])
        for w, label in (("a", "(a) course: `fit`, in-memory batches"),
                         ("b", "(b) classic: `DataLoader` + `ToTensor`, plain Adam")):
            median = _median(s[w])
            lines.append(f"| {MODELS[key][0]} | {label} | {_fmt_s(median)} | {n_images / median:,.0f} | "
                         f"{', '.join(_fmt_s(x) for x in s[w])} | {_fmt_s(_median(c[w]))} | "
                         f"{'' if w == 'a' else f'**{speedup:.2f}x**'} |")
    lines.append("")
    for key, run in runs.items():
        s, c = run["seconds"], run["cpu_seconds"]
        speedup = _median(s["b"]) / _median(s["a"])
        target = SPEEDUP_TARGETS.get(key)
        gaps = _quality_gaps(run)
        quality = (f"; negative ELBO of (a) within {max(gaps.values()):.2%} of (b) at epochs "
                   f"{', '.join(map(str, gaps))}" if gaps else "")
        verdict = f" (target >= {target:g}x: {_verdict(speedup >= target)})" if target else ""
        lines.append(f"- {MODELS[key][0]}: speed-up **{speedup:.2f}x**{verdict}, by CPU time "
                     f"{_median(c['b']) / _median(c['a']):.2f}x{quality}.")
    return "\n".join(lines)


def quality_table(runs: dict, settings: Settings) -> str:
    epochs = [e for e in settings.checkpoints if e <= settings.epochs]
    head = QUALITY_HEADER_START + "".join(f" after {e} epoch{'s' if e > 1 else ''} |" for e in epochs)
    lines = [head, "|---|---|" + "---|" * len(epochs)]
    for key, run in runs.items():
        for w, label in (("a", "(a) course"), ("b", "(b) classic")):
            cells = "".join(f" {run['elbo'][w][e]:.2f} |" for e in epochs)
            lines.append(f"| {MODELS[key][0]} | {label} |{cells}")
        gaps = _quality_gaps(run)
        cells = "".join(f" {gaps[e]:.2%} {'ok' if gaps[e] <= QUALITY_TOLERANCE else '**over 1%**'} |" for e in epochs)
        lines.append(f"| {MODELS[key][0]} | \\|a - b\\| / b |{cells}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Part 3: the ablation


def run_ablation(key: str, data: _Data, settings: Settings, device: torch.device, *, seed: int = 0,
                 workers: int = 0, compile: bool = True) -> list[dict]:
    """Time (a) with one trick off at a time, (b) with in-memory batches, and the candidates left out."""
    conv = any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in _fresh_model(key, seed).modules())
    threads = torch.get_num_threads()
    variants = [("a", "(a) as the course trains", "reference", {}),
                ("a_plain_adam", "(a) with plain Adam (not fused)", "what fused Adam buys", {"fused": False})]
    if conv and device.type == "cpu":
        variants.append(("a_default_layout", "(a) without channels-last", "what channels-last buys",
                         {"fast_layout": False}))
    if threads > 1 and device.type == "cpu":
        variants.append(("a_one_thread", f"(a) with 1 thread instead of {threads}", "what the threads buy",
                         {"threads": 1}))
    variants.append(("b_in_memory", "(b) with in-memory batches (`x[idx]`), the rest classic",
                     "what the data path costs (b)", None))
    variants.append(("b", "(b) as the classic reference trains", "reference", None))
    if compile:
        variants.append(("a_compiled", "(a) with `torch.compile(model)` (left out)",
                         "compile time against the gain per epoch", {"compile": True}))

    with _fresh_compile_cache():
        return _ablation_rows(key, variants, data, settings, device, seed=seed, workers=workers)


@contextlib.contextmanager
def _fresh_compile_cache():
    """An empty ``torch.compile`` cache for the block: compile time as on a learner's first run, not a rerun's."""
    saved = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="autoenc-bench-inductor-") as folder:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = saved


def _ablation_rows(key: str, variants: list, data: _Data, settings: Settings, device: torch.device, *,
                   seed: int, workers: int) -> list[dict]:
    ways, one_time = {}, {}
    for name, _, _, options in variants:
        model = _fresh_model(key, seed)
        if name == "b":
            ways[name] = ClassicWay(model, _loader(data.torchvision_train, seed, workers), device)
        elif name == "b_in_memory":
            ways[name] = ClassicWay(model, _InMemoryBatches(data.train.images, seed), device)
        else:
            ways[name] = CourseWay(model, data.train, device, seed=seed, **options)
        # Warm-up, untimed: one full batch and one of the epoch's last, smaller size. It sets up what a
        # first step sets up (kernels, caches) for every row alike; for torch.compile it is the compilation
        # (each new batch shape compiles anew), reported as its one-time cost.
        n = len(data.train)
        warm = data.train.images[:BATCH_SIZE + (n % BATCH_SIZE or BATCH_SIZE)]
        _sync(device)
        start = time.perf_counter()
        if isinstance(ways[name], ClassicWay):
            ways[name].epoch(0, batches=[(warm[:BATCH_SIZE], None), (warm[BATCH_SIZE:], None)])
        else:
            ways[name].epoch(0, images=warm)
        _sync(device)
        if options and options.get("compile"):
            one_time[name] = time.perf_counter() - start
            _log(f"[ablation] {key}: torch.compile took {one_time[name]:.1f} s")

    seconds, cpu = {name: [] for name in ways}, {name: [] for name in ways}
    for epoch in range(1, settings.ablation_epochs + 1):
        for name, way in ways.items():
            wall, used = _timed_epoch(way, epoch, device)
            seconds[name].append(wall)
            cpu[name].append(used)
            _log(f"[ablation] {key} {name}: {wall:.2f} s (CPU {used:.2f} s)")
    base = _median(seconds["a"])
    rows = []
    for name, label, shows, _ in variants:
        median = _median(seconds[name])
        rows.append({"model": key, "variant": name, "label": label, "shows": shows, "seconds": median,
                     "cpu_seconds": _median(cpu[name]), "images_per_second": len(data.train) / median,
                     "vs_a": median / base, "one_time": one_time.get(name)})
    return rows


def ablation_table(rows: list[dict]) -> str:
    lines = [ABLATION_HEADER, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        once = _fmt_s(r["one_time"]) if r["one_time"] is not None else ""
        lines.append(f"| {MODELS[r['model']][0]} | {r['label']} | {_fmt_s(r['seconds'])} | "
                     f"{r['images_per_second']:,.0f} | {r['vs_a']:.2f}x | {_fmt_s(r['cpu_seconds'])} | {once} | "
                     f"{r['shows']} |")
    compiled = {r["model"]: r for r in rows if r["variant"] == "a_compiled"}
    base = {r["model"]: r for r in rows if r["variant"] == "a"}
    notes = []
    for key, r in compiled.items():
        gain = base[key]["seconds"] - r["seconds"]
        if gain > 0:
            notes.append(f"- `torch.compile`, {MODELS[key][0]}: {_fmt_s(r['one_time'])} s to compile for "
                         f"{_fmt_s(gain)} s less per epoch: it pays off after {r['one_time'] / gain:.0f} epochs.")
        else:
            notes.append(f"- `torch.compile`, {MODELS[key][0]}: {_fmt_s(r['one_time'])} s to compile, and each "
                         f"epoch is {_fmt_s(-gain)} s slower, not faster: it never pays off here.")
    return "\n".join(lines + ([""] + notes if notes else []))


# --------------------------------------------------------------------------------------
# Part 4: peak memory, one subprocess per model and way


def _rss_mb() -> float | None:
    """This process's peak resident set size so far, in MB (None where the OS does not say).

    On Linux it is ``VmHWM`` of /proc/self/status: ``ru_maxrss`` would not do, since Linux carries the
    parent's peak over into a child started by fork and exec (here the benchmark's own, large, process).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10                      # kB
    except OSError:
        pass
    try:
        import resource
    except ImportError:                                                  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10   # bytes on macOS, KB elsewhere


def _memory_child(key: str, way: str, settings: Settings, device: torch.device, root: Path, seed: int) -> dict:
    """In a fresh process: load the data, train one epoch of ``key`` the ``way`` way, evaluate; report the peak."""
    after_imports = _rss_mb()
    data = _load_data(settings, device, root, with_torchvision=way == "b")   # the course never imports torchvision
    model = _fresh_model(key, seed)
    if way == "a":
        runner = CourseWay(model, data.train, device, seed=seed)
    else:
        runner = ClassicWay(model, _loader(data.torchvision_train, seed), device)
    runner.epoch(1)
    _elbo(runner.model, data.test, settings, seed, device)
    result = {"peak_mb": _rss_mb(), "after_imports_mb": after_imports}
    if device.type == "cuda":
        result["gpu_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def _child_env() -> dict:
    """The environment for a child process: it imports this very copy of the package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _start_child(args: list[str]) -> subprocess.Popen:
    """Start ``python3 benchmarks/benchmark.py ARGS`` in a fresh process."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_env(),
                            cwd=ROOT)


def _child_result(child: subprocess.Popen, timeout: float = 3600) -> dict | list:
    """Wait for a child and return the result it printed after ``_CHILD_MARK``."""
    stdout, stderr = child.communicate(timeout=timeout)
    for line in reversed(stdout.splitlines()):
        if line.startswith(_CHILD_MARK):
            return json.loads(line[len(_CHILD_MARK):])
    tail = (stderr or stdout).strip().splitlines()[-3:]
    raise RuntimeError(f"`{' '.join(child.args[3:])}` failed (exit {child.returncode}): {' / '.join(tail)}")


def memory_table(rows: list[dict]) -> str:
    lines = [MEMORY_HEADER, "|---|---|---|---|---|"]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {MODELS[r['model']][0]} | {r['way']} | failed: {r['error']} | | |")
            continue
        peak, base = r["peak_mb"], r["after_imports_mb"]
        gpu = f" (GPU {r['gpu_peak_mb']:,.0f} MB)" if r.get("gpu_peak_mb") is not None else ""
        ok = "" if peak is None else _verdict(peak < MEMORY_TARGET_MB)
        peak = "n/a" if peak is None else f"{peak:,.0f}"
        base = "n/a" if base is None else f"{base:,.0f}"
        lines.append(f"| {MODELS[r['model']][0]} | {r['way']} | {peak}{gpu} | {base} | {ok} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Part 5: widget latency, in an IPython shell with the inline backend (a subprocess)


def widget_classes() -> list[str]:
    """Every widget class of :mod:`autoenc_helpers.widgets`, found by its base class ``Explorer``."""
    from autoenc_helpers import widgets

    return sorted(name for name, obj in vars(widgets).items()
                  if isinstance(obj, type) and issubclass(obj, widgets.Explorer) and obj is not widgets.Explorer)


def _latent_case(make_model, codes_fn=None, **kwargs):
    """A LatentExplorer over ``make_model()``'s codes of the held-out images; moves slider 0 across its range."""
    def build(test, device):
        from autoenc_helpers import widgets
        from autoenc_helpers.training import encode

        model = make_model().to(device).eval()
        codes = encode(model, test)
        codes = codes[0] if isinstance(codes, tuple) else codes                 # a VAE's means
        explorer = widgets.LatentExplorer(model.decode, codes, images=test.images, labels=test.labels,
                                          classes=test.classes, **kwargs)
        slider = explorer.sliders[0]
        values = torch.linspace(slider.min, slider.max, 41).tolist()
        return explorer, lambda i: setattr(slider, "value", values[i % 41])
    return build


def _noise_case(test, device):
    from autoenc_helpers import widgets

    models = {name: MLPAutoencoder(latent_dim=32, hidden=(256, 128)).to(device).eval()
              for name in ("denoising AE", "plain AE")}
    explorer = widgets.NoiseExplorer(models, test.images, kind="masking", level=0.5, labels=test.labels,
                                     classes=test.classes)
    values = torch.linspace(0.0, 1.0, 41)[1:].tolist()
    return explorer, lambda i: setattr(explorer.level, "value", values[i % 40])


def _factor_case(test, device):
    from autoenc_helpers import widgets

    factors = (1 / 784, 0.1, 0.3, 1, 10, 784)                          # lesson 07's sweep: beta = 784 ... 1/784
    results = [{"factor": f, "model": MLPVAE(latent_dim=16, hidden=(512, 256)).to(device).eval(),
                "recon": 240.0 + 8 * i, "kl": 30.0 - 4 * i} for i, f in enumerate(factors)]
    explorer = widgets.LossFactorExplorer(results, test.images, n_images=8, n_samples=8, value=1.0)
    n = len(results)
    return explorer, lambda i: setattr(explorer.slider, "value", (explorer.slider.value + 1) % n)


def _conditional_case(test, device):
    from autoenc_helpers import models, widgets

    model = models.ConditionalVAE(latent_dim=2, n_classes=len(test.classes)).to(device).eval()
    explorer = widgets.ConditionalExplorer(model, test.classes)
    slider = explorer.sliders[0]
    values = torch.linspace(slider.min, slider.max, 41).tolist()
    return explorer, lambda i: setattr(slider, "value", values[i % 41])


def _code_grid_case(test, device):
    from autoenc_helpers import vq, widgets

    model = vq.VQVAE(n_codes=128, code_dim=16, channels=(8, 16, 16, 16)).to(device).eval()
    explorer = widgets.CodeGridExplorer(model, test.images)
    return explorer, lambda i: setattr(explorer.entry, "value", (explorer.entry.value + 1) % model.n_codes)


WIDGET_CASES: dict[str, list[tuple[str, Callable]]] = {
    "LatentExplorer": [
        ("lesson 01: MLP AE, 3-D code", _latent_case(MLPAutoencoder)),
        ("lesson 04: MLP VAE 784-512-256-20, 8 sliders",
         _latent_case(lambda: MLPVAE(latent_dim=20, hidden=(512, 256)), dims=range(8), limits=(-3, 3))),
        ("lesson 08: conv VAE, 16-D code, 6 sliders",
         _latent_case(lambda: ConvVAE(latent_dim=16, channels=CONV_VAE_CHANNELS), dims=range(6), limits=(-3, 3))),
    ],
    "NoiseExplorer": [("lesson 02: two MLP AEs 784-256-128-32", _noise_case)],
    "LossFactorExplorer": [("lesson 07: six MLP VAEs 784-512-256-16", _factor_case)],
    "ConditionalExplorer": [("lesson 10: conditional MLP VAE, 2-D code", _conditional_case)],
    "CodeGridExplorer": [("lesson 11: VQ-VAE, 7x7 grid of 128 codes, one code changed", _code_grid_case)],
}
"""Widget class -> [(case, build(test, device) -> (widget, move(i)))]: one place that lists every widget.

A widget class of ``widgets.py`` without an entry here shows up in the table as not measured (and
``tests/test_benchmark.py`` fails), so a new widget gets timed. Models are untrained: the time to
decode does not depend on the weights."""


def _widgets_child(settings: Settings, device: torch.device, root: Path) -> list[dict]:
    """Time every widget case inside an IPython shell with the inline backend, as a notebook kernel draws."""
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    class Shell(InteractiveShell):
        def enable_gui(self, gui=None):                  # the inline backend needs no GUI event loop
            pass

    class Published(DisplayPublisher):
        """Keeps what a kernel would send to the browser: here, count the PNGs and their size."""

        pngs, png_bytes = 0, 0

        def publish(self, data, metadata=None, *args, **kwargs):
            if "image/png" in data:
                self.pngs += 1
                self.png_bytes = len(data["image/png"])

        def clear_output(self, wait=False):
            pass

    shell = Shell.instance()
    shell.display_pub = Published(shell=shell)
    shell.enable_matplotlib("inline")                    # display(fig) now renders the PNG, as in Jupyter

    test = load_dataset("fashion_mnist", "test", n=settings.test_images, device=device, root=root, verbose=False)
    rows = []
    for name in widget_classes():
        cases = WIDGET_CASES.get(name)
        if not cases:
            rows.append({"widget": name, "case": "", "error": "not measured: add a case to WIDGET_CASES"})
            continue
        for case, build in cases:
            row = {"widget": name, "case": case}
            try:
                torch.manual_seed(0)
                start = time.perf_counter()
                widget, move = build(test, device)
                row["build_s"] = time.perf_counter() - start
                for i in range(3):                       # warm-up: first draws fill matplotlib's caches
                    move(i)
                times, cpu, pngs = [], [], shell.display_pub.pngs
                for i in range(3, 3 + settings.widget_moves):
                    start, used = time.perf_counter(), time.process_time()
                    move(i)
                    _sync(device)
                    times.append(time.perf_counter() - start)
                    cpu.append(time.process_time() - used)
                times.sort()
                row.update(moves=len(times), median_ms=1000 * _median(times), cpu_median_ms=1000 * _median(cpu),
                           p95_ms=1000 * times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
                           pngs=shell.display_pub.pngs - pngs, png_kb=shell.display_pub.png_bytes / 1024)
            except Exception as err:                     # one broken case must not hide the others
                row["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else ''}"
            rows.append(row)
            _log(f"[widgets] {name} ({case}): " + (row["error"] if "error" in row else
                                                   f"median {row['median_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms"))
    return rows


def widgets_table(rows: list[dict]) -> str:
    lines = [WIDGETS_HEADER, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['widget']} | {r['case']} | {r['error']} | | | | | | |")
            continue
        shown = "" if r["pngs"] == r["moves"] else f" ({r['pngs']} PNGs!)"
        lines.append(f"| {r['widget']} | {r['case']} | {r['build_s']:.2f} | {r['median_ms']:.1f} | "
                     f"{r['p95_ms']:.1f} | {r['cpu_median_ms']:.1f} | {r['moves']}{shown} | {r['png_kb']:.0f} | "
                     f"{_verdict(r['median_ms'] < WIDGET_TARGET_MS and r['pngs'] == r['moves'])} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Part 6: the notebooks, as a learner runs them


def notebook_budget(path: Path) -> int | None:
    """The lesson's full-mode time budget in seconds, from its row in tools/lessons.py (None: no row)."""
    lesson = LESSONS.get(Path(path).stem)
    return lesson.budget_s if lesson else None


def time_notebook(path: Path, *, smoke: bool, device: str) -> float:
    """Run a copy of ``path`` top to bottom in a fresh kernel; return its wall time. The original is untouched.

    :func:`tools.notebooks.execute` gives the kernel an empty temporary checkpoint folder
    (``AUTOENC_CHECKPOINTS``), so every model is trained as on a learner's first run.
    """
    from tools.notebooks import execute

    with tempfile.TemporaryDirectory(prefix="autoenc-bench-nb-") as folder:
        copy = Path(folder) / path.name
        shutil.copyfile(path, copy)
        return execute(copy, smoke=smoke, device=device)


def run_notebooks(paths: list[Path], settings: Settings, device: torch.device) -> list[dict]:
    rows = []
    for path in paths:
        row = {"notebook": path.name, "budget_s": notebook_budget(path)}
        for mode in settings.notebook_modes:
            try:
                row[mode] = time_notebook(path, smoke=mode == "smoke", device=device.type)
            except Exception as err:                     # a failing notebook is a result, not a crash
                row[f"{mode}_error"] = f"{type(err).__name__}: {str(err).strip().splitlines()[-1][:100]}"
            _log(f"[notebooks] {path.name} {mode}: " +
                 (f"{row[mode]:.0f} s" if mode in row else row[f"{mode}_error"]))
        rows.append(row)
    return rows


def notebooks_table(rows: list[dict], settings: Settings) -> str:
    lines = [NOTEBOOKS_HEADER, "|---|---|---|---|---|"]

    def cell(row, mode):
        if mode not in settings.notebook_modes:
            return "not run"
        return _fmt_s(row[mode]) if mode in row else f"failed: {row.get(f'{mode}_error', '?')}"

    for r in rows:
        budget = r["budget_s"]
        ok = _verdict(r["full"] <= budget) if "full" in r and budget else ""
        lines.append(f"| {r['notebook']} | {budget or ''} | {cell(r, 'full')} | {cell(r, 'smoke')} | {ok} |")
    if "full" in settings.notebook_modes and rows:
        complete = all("full" in r for r in rows)
        total = sum(r.get("full", 0.0) for r in rows)
        ok = _verdict(complete and total <= NOTEBOOKS_TOTAL_BUDGET_S)
        smoke_total = sum(r.get("smoke", 0.0) for r in rows)
        lines.append(f"| **all {len(rows)}** | {NOTEBOOKS_TOTAL_BUDGET_S} | **{_fmt_s(total)}** | "
                     f"{_fmt_s(smoke_total) if 'smoke' in settings.notebook_modes else ''} | {ok} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# The report


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _header(args, settings: Settings, device: torch.device, parts: list[str], started: float,
            load_start: tuple, data: _Data | None) -> list[str]:
    import torchvision

    cpus = os.cpu_count()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    load_now = os.getloadavg() if hasattr(os, "getloadavg") else None
    lines = [
        "# Benchmark: the course against reference code",
        "",
        f"- command: `{' '.join(['python3 benchmarks/benchmark.py', *args])}`",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"took {(time.perf_counter() - started) / 60:.1f} min",
        f"- torch {torch.__version__}, torchvision {torchvision.__version__}, python {platform.python_version()}",
        f"- device: {describe_device(device)}; CPU: {_cpu_name()}, {cpus} cores"
        + (f" ({affinity} usable)" if affinity is not None and affinity != cpus else ""),
    ]
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")
                    if k in os.environ)
    lines.append(f"- torch threads: {torch.get_num_threads()}" + (f" ({env})" if env else ""))
    if load_now is not None:
        lines.append(f"- load average (1 min) at start {load_start[0]:.2f}, at end {load_now[0]:.2f} "
                     f"(on a quiet machine both stay below 0.5 per core)")
    mode = "smoke" if args_smoke(args) else "full"
    if data is not None:
        lines.append(f"- mode: {mode}; {len(data.train):,} training images, {len(data.test):,} held-out images; "
                     f"batch {BATCH_SIZE}, Adam lr {LR:g}; one-time load: (a) `load_dataset` "
                     f"{data.load_a:.2f} s, (b) torchvision `FashionMNIST` {data.load_b:.2f} s (not in any epoch)")
    else:
        lines.append(f"- mode: {mode}")
    lines.append(f"- parts: {', '.join(parts)}")
    return lines


def args_smoke(args: list[str]) -> bool:
    return "--smoke" in args


def _sections(results: dict, settings: Settings, n_images: int | None) -> list[str]:
    out = []
    if "training" in results:
        out += ["", "## Training throughput", "",
                f"Seconds per epoch over the {n_images:,} training images, median of {settings.epochs} "
                "epochs per way, the ways' epochs interleaved; both ways start from the same weights. "
                "CPU s: the process's CPU time, all threads; when it is well below the wall time times the "
                "threads, other jobs shared the cores.", "",
                training_table(results["training"], n_images)]
    if "quality" in results:
        out += ["", "## Quality: held-out negative ELBO (nats per image, lower is better)", "",
                f"`negative_elbo(model, test, n_samples={settings.elbo_samples})`, z sampled, the same draws "
                "for both ways; from the runs above.", "", quality_table(results["quality"], settings)]
    if "ablation" in results:
        out += ["", "## Ablation: where the speed-up of (a) comes from", "",
                f"{settings.ablation_epochs} epoch(s) per row after an untimed warm-up of two batches, rows "
                "interleaved; `time vs (a)` above 1 means slower than the course's way.", "",
                ablation_table(results["ablation"])]
    if "memory" in results:
        out += ["", "## Peak memory of a training process", "",
                "One fresh process per row: load the data, train one epoch, evaluate the negative ELBO; "
                "peak resident set size (`VmHWM`); importing torch alone takes about 0.5 GB of it.", "",
                memory_table(results["memory"])]
    if "widgets" in results:
        out += ["", "## Widget latency: slider change to the PNG the browser receives", "",
                "Inside an IPython shell with the inline backend: the callback, the network, drawing the "
                "figure and encoding the PNG are counted; the message to the browser and its painting are not. "
                "Untrained models of each lesson's size.", "", widgets_table(results["widgets"])]
    if "notebooks" in results:
        out += ["", "## Notebooks: wall time as a learner runs them", "",
                "Each notebook run top to bottom in a fresh kernel, on a copy in a temporary folder, with an "
                "empty checkpoint folder (every model trained).", "",
                notebooks_table(results["notebooks"], settings)]
    return out


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name


# --------------------------------------------------------------------------------------
# The command


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """States each option's default, except where there is none to state."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python3 benchmarks/benchmark.py",
        description="Measure the course against reference code (training speed and quality, an ablation, "
                    "peak memory, widget latency, notebook wall time) and write Markdown tables.",
        formatter_class=_Defaults,
    )
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, any of {', '.join(PARTS)}")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, any of {', '.join(MODELS)}")
    p.add_argument("--smoke", action="store_true",
                   help=f"small sizes: {SMOKE.images:,} training images, {SMOKE.epochs} epochs, notebooks in "
                        "smoke mode only")
    p.add_argument("--images", type=int, default=None, help="training images (default: 60,000; smoke: 6,000)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per way (default: 10; smoke: 2)")
    p.add_argument("--notebooks", nargs="*", type=Path, default=None,
                   help="notebooks to time (default: every notebooks/*.ipynb)")
    p.add_argument("--no-compile", action="store_true", help="leave the torch.compile rows out of the ablation")
    p.add_argument("--workers", type=int, default=0, help="num_workers of the DataLoader in way (b)")
    p.add_argument("--device", choices=CHOICES, default=None,
                   help="where to train; when left out, AUTOENC_DEVICE decides (auto when unset)")
    p.add_argument("--data", type=Path, default=None,
                   help="data root; when left out, data_root(): AUTOENC_DATA, else data/ of the checkout")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the Markdown report is written")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the shuffling")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)   # "memory:KEY:WAY" or "widgets"
    return p


def _settings(args) -> Settings:
    settings = SMOKE if args.smoke else FULL
    if args.images is not None:
        if args.images < BATCH_SIZE:
            raise SystemExit(f"--images must be at least {BATCH_SIZE}, got {args.images}")
        settings = replace(settings, images=args.images)
    if args.epochs is not None:
        if args.epochs < 1:
            raise SystemExit(f"--epochs must be at least 1, got {args.epochs}")
        settings = replace(settings, epochs=args.epochs)
    return settings


def _choose(text: str, allowed, what: str) -> list[str]:
    chosen = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in chosen if x not in allowed]
    if unknown or not chosen:
        raise SystemExit(f"unknown {what} {unknown or text!r}; choose from {', '.join(allowed)}")
    return [x for x in allowed if x in chosen]           # in the canonical order


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the report, write it to ``--out``; return the results by part."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    settings = _settings(args)
    if args.workers < 0:
        raise SystemExit(f"--workers must be 0 or more, got {args.workers}")
    device = get_device(args.device or None, verbose=False)
    root = Path(args.data) if args.data is not None else data_root()

    if args.child:                                       # a subprocess of the memory or widgets part
        if args.child == "widgets":
            result = _widgets_child(settings, device, root)
        else:
            _, key, way = args.child.split(":")
            result = _memory_child(key, way, settings, device, root, args.seed)
        print(_CHILD_MARK + json.dumps(result), flush=True)
        return result

    parts = _choose(args.parts, PARTS, "part")
    keys = _choose(args.models, list(MODELS), "model")
    started = time.perf_counter()
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else (0.0,)
    shared = [f for f in ("--smoke",) if args.smoke] + (["--images", str(settings.images)] if args.images else []) \
        + (["--device", args.device] if args.device else []) + (["--data", str(root)] if args.data else [])

    results: dict = {}
    data = None
    if {"training", "quality", "ablation"} & set(parts):
        data = _load_data(settings, device, root)
    out = Path(args.out)

    def report() -> str:
        lines = _header(argv, settings, device, parts, started, load_start, data)
        lines += _sections(results, settings, len(data.train) if data else None)
        text = "\n".join(lines) + "\n"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        return text

    if "training" in parts or "quality" in parts:
        runs = {key: run_training(key, data, settings, device, seed=args.seed, workers=args.workers,
                                  quality="quality" in parts) for key in keys}
        if "training" in parts:
            results["training"] = runs
        if "quality" in parts:
            results["quality"] = runs
        report()
    if "ablation" in parts:
        results["ablation"] = [row for key in keys for row in
                               run_ablation(key, data, settings, device, seed=args.seed, workers=args.workers,
                                            compile=not args.no_compile)]
        report()
    if "memory" in parts:
        # one process per model and way, run side by side: nothing is timed here, and each has its own peak
        children = {(key, way): _start_child(["--child", f"memory:{key}:{way}", "--seed", str(args.seed), *shared])
                    for key in keys for way in ("a", "b")}
        rows = []
        for (key, way), child in children.items():
            row = {"model": key, "way": "(a) course" if way == "a" else "(b) classic"}
            try:
                row.update(_child_result(child))
            except Exception as err:
                row["error"] = str(err)[:200]
            _log(f"[memory] {key} ({way}): " + (row["error"] if "error" in row else f"{row['peak_mb']:.0f} MB"))
            rows.append(row)
        results["memory"] = rows
        report()
    if "widgets" in parts:
        results["widgets"] = _child_result(_start_child(["--child", "widgets", *shared]))
        report()
    if "notebooks" in parts:
        paths = [Path(p) for p in args.notebooks] if args.notebooks else sorted(NOTEBOOK_DIR.glob("*.ipynb"))
        results["notebooks"] = run_notebooks(paths, settings, device)
        report()

    text = report()
    print(text, end="")
    _log(f"\nwrote {_display_path(out)}")
    return results


if __name__ == "__main__":
    main()
