"""How much faster is in-memory batching than a per-image ``DataLoader``?

Run it as a command (it is a benchmark, not a test)::

    python -m autoenc_helpers.benchmark            # full: 60,000 images, 3 repeats
    python -m autoenc_helpers.benchmark --smoke    # 6,000 images, 1 repeat, a few seconds

It trains the default :class:`~autoenc_helpers.models.MLPAutoencoder`
(784-128-64-12-3, Sigmoid output; `make_optimizer`: Adam, fused where available, lr 1e-3, weight decay 1e-5; MSE per
pixel; batch 128) for one epoch over the Fashion-MNIST training images, two
ways, in the same process and interleaved (a, b, a, b, ...) so that both see
the same machine noise:

(a) the course's way: :func:`~autoenc_helpers.training.fit` on the in-memory
    :class:`~autoenc_helpers.data.ImageSet`, batches are ``x[idx]`` slices
    of one float32 tensor that already lives on the device;
(b) the classic way: ``torchvision.datasets.FashionMNIST`` with
    ``transforms.ToTensor()`` and a ``torch.utils.data.DataLoader``, a
    hand-written loop and ``.to(device)`` per batch.

Reading the files from disk is done once per way, outside the epoch timer,
and reported on its own. Every repeat starts from a freshly seeded model (the
same initial weights for a and b). The table gives the median seconds per
epoch, images per second, the ratio b/a ("speed-up of in-memory batching",
target >= 3x), and the held-out MSE per pixel on the 10,000 test images after
the epoch, to show that both ways did the same amount of training.

The Markdown table is printed and written to ``benchmarks/latest.md`` at the
repository root (``--out`` to change it). ``main`` returns the rows, one dict
per way.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import data as _data
from .data import data_root, export_torchvision_layout, load_dataset
from .device import CHOICES, describe_device, get_device
from .losses import squared_error
from .models import MLPAutoencoder
from .training import evaluate, fit, make_optimizer

__all__ = ["DEFAULT_OUT", "TABLE_HEADER", "SPEEDUP_TARGET", "time_in_memory_epoch", "time_dataloader_epoch",
           "format_table", "main"]

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "benchmarks" / "latest.md"
BATCH_SIZE = 128
LR = 1e-3
WEIGHT_DECAY = 1e-5
SMOKE_IMAGES = 6_000
SPEEDUP_TARGET = 3.0

COLUMNS = ("way", "train images", "s / epoch (median)", "each repeat (s)", "images / s",
           "one-time load (s)", "test MSE / pixel (median)", "time vs (a)")
TABLE_HEADER = "| " + " | ".join(COLUMNS) + " |"
"""The first line of the table; a test can look for it in the written file."""


# --------------------------------------------------------------------------------------
# Helpers


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer read afterwards counts all of it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _fresh_model(seed: int) -> MLPAutoencoder:
    """The default MLPAutoencoder, its weights drawn from ``seed`` (same seed, same weights)."""
    torch.manual_seed(seed)
    return MLPAutoencoder()


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


# --------------------------------------------------------------------------------------
# The two ways of running one epoch


def time_in_memory_epoch(train_set, *, seed: int, device: torch.device) -> tuple[float, torch.nn.Module]:
    """(a) One epoch of ``fit`` on an in-memory ImageSet; returns (seconds, trained model).

    The timer covers the whole ``fit`` call (moving the model, building the
    optimizer, the epoch), not the loading of the data, which the caller did
    beforehand.
    """
    model = _fresh_model(seed)
    _sync(device)
    start = time.perf_counter()
    fit(model, train_set, epochs=1, batch_size=BATCH_SIZE, lr=LR, weight_decay=WEIGHT_DECAY,
        seed=seed, progress=False, log=False, device=device)
    _sync(device)
    return time.perf_counter() - start, model


def time_dataloader_epoch(dataset, *, seed: int, device: torch.device,
                          workers: int = 0) -> tuple[float, torch.nn.Module]:
    """(b) One epoch of a hand-written loop over a ``DataLoader``; returns (seconds, trained model).

    ``dataset`` yields (image tensor, label) pairs, e.g. torchvision's
    FashionMNIST with ``ToTensor()``. Same model, optimizer and loss as (a);
    each batch is moved with ``.to(device)``. The timer covers moving the
    model, building the optimizer and the loader (worker start-up included
    when ``workers > 0``) and the epoch.
    """
    model = _fresh_model(seed)
    _sync(device)
    start = time.perf_counter()
    model.to(device)
    optimizer = make_optimizer(model, lr=LR, weight_decay=WEIGHT_DECAY)   # the same optimizer as fit's
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=workers,
                                         generator=torch.Generator().manual_seed(seed))
    model.train()
    total, count = 0.0, 0
    for images, _ in loader:
        images = images.to(device)                                 # (b, 1, 28, 28)
        loss = squared_error(model(images), images)                # MSE per pixel, like mse_objective
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * images.shape[0]                     # the epoch's average, as fit keeps it
        count += images.shape[0]
    _sync(device)
    seconds = time.perf_counter() - start
    model.eval()
    return seconds, model


# --------------------------------------------------------------------------------------
# Reporting


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.3g}" if seconds < 100 else f"{seconds:.0f}"


def format_table(rows: list[dict], header: dict) -> str:
    """The Markdown report: header lines, the table (one row per way), the speed-up line."""
    lines = [
        "# Benchmark: one epoch of MLPAutoencoder on Fashion-MNIST",
        "",
        f"- date: {header['date']}",
        f"- torch {header['torch']}, torchvision {header['torchvision']}, python {header['python']}",
        f"- device: {header['device']}; torch threads: {header['threads']}; CPU count: {header['cpus']}",
        f"- model: MLPAutoencoder() 784-128-64-12-3, Sigmoid; both ways use `make_optimizer` (Adam, fused "
        f"where available) with lr {LR:g}, weight decay {WEIGHT_DECAY:g}; "
        f"MSE per pixel; batch {BATCH_SIZE}",
        f"- mode: {header['mode']}; {header['repeats']} repeat(s) per way, interleaved a, b, a, b...; "
        f"test MSE on {header['test_images']:,} test images",
        "",
        TABLE_HEADER,
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in rows:
        cells = (
            row["label"],
            f"{row['images']:,}",
            _fmt_s(row["seconds"]),
            ", ".join(_fmt_s(s) for s in row["seconds_all"]),
            f"{row['images_per_second']:,.0f}",
            _fmt_s(row["load_seconds"]),
            f"{row['test_mse_per_pixel']:.5f}",
            f"{row['time_vs_a']:.2f}x",
        )
        lines.append("| " + " | ".join(cells) + " |")
    speedup = rows[-1]["time_vs_a"]
    met = "met" if speedup >= SPEEDUP_TARGET else "NOT met"
    lines += [
        "",
        f"Speed-up of in-memory batching (b/a, median seconds per epoch): **{speedup:.2f}x** "
        f"(target >= {SPEEDUP_TARGET:g}x: {met}).",
        "",
        "One-time load: (a) reading the IDX files into one float32 tensor on the device "
        "(`load_dataset`); (b) building `torchvision.datasets.FashionMNIST` (reads the raw files). "
        "Neither is in the epoch time.",
    ]
    return "\n".join(lines) + "\n"


def _display_path(path: Path) -> str:
    """``path`` relative to the current folder when it lies below it, else its name only."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name


# --------------------------------------------------------------------------------------
# The command


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m autoenc_helpers.benchmark",
        description="Time one epoch of the default MLPAutoencoder on Fashion-MNIST: in-memory batching "
                    "(the course's fit) against torchvision's DataLoader, and write a Markdown table.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--repeats", type=int, default=3, help="epochs timed per way (the median is reported)")
    p.add_argument("--workers", type=int, default=0, help="num_workers of the DataLoader in way (b)")
    p.add_argument("--device", choices=CHOICES, default=None,
                   help="where to train; when left out, AUTOENC_DEVICE decides (auto when unset)")
    p.add_argument("--data", type=Path, default=None,
                   help="data root; when left out, data_root(): AUTOENC_DATA, else data/ of the checkout")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the Markdown table is written")
    p.add_argument("--seed", type=int, default=0, help="seed of repeat 1 (repeat r uses seed + r - 1)")
    p.add_argument("--smoke", action="store_true",
                   help=f"only the first {SMOKE_IMAGES:,} training images and 1 repeat (a few seconds)")
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark, print and write the table, and return its rows (one dict per way)."""
    import torchvision

    args = _parser().parse_args(argv)
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be at least 1, got {args.repeats}")
    if args.workers < 0:
        raise SystemExit(f"--workers must be 0 or more, got {args.workers}")
    repeats = 1 if args.smoke else args.repeats
    device = get_device(args.device or None, verbose=False)
    root = Path(args.data) if args.data is not None else data_root()

    # (a) loading: from the files, not from an earlier call's cache in this process.
    _data._read_split.cache_clear()
    _sync(device)
    start = time.perf_counter()
    train_set = load_dataset("fashion_mnist", "train", n=SMOKE_IMAGES if args.smoke else None,
                             device=device, root=root, verbose=False)
    _sync(device)
    load_a = time.perf_counter() - start
    n_images = len(train_set)
    test_set = load_dataset("fashion_mnist", "test", device=device, root=root, verbose=False)

    # (b) loading: torchvision's own reader, over files exported into its layout (works offline).
    export_torchvision_layout("fashion_mnist", root)
    start = time.perf_counter()
    tv_train = torchvision.datasets.FashionMNIST(str(root), train=True, download=False,
                                                 transform=torchvision.transforms.ToTensor())
    load_b = time.perf_counter() - start
    if args.smoke:
        tv_train = torch.utils.data.Subset(tv_train, range(n_images))
    if len(tv_train) != n_images:
        raise RuntimeError(f"way (b) has {len(tv_train):,} images and way (a) {n_images:,}; they must match")

    seconds = {"a": [], "b": []}
    mse = {"a": [], "b": []}
    for r in range(repeats):
        seed = args.seed + r
        s, model = time_in_memory_epoch(train_set, seed=seed, device=device)
        seconds["a"].append(s)
        mse["a"].append(evaluate(model, test_set, device=device)["mse_per_pixel"])
        s, model = time_dataloader_epoch(tv_train, seed=seed, device=device, workers=args.workers)
        seconds["b"].append(s)
        mse["b"].append(evaluate(model, test_set, device=device)["mse_per_pixel"])

    median_a = _median(seconds["a"])
    rows = []
    for way, label, load in (
        ("a", "(a) in-memory `fit` (`x[idx]` batches)", load_a),
        ("b", f"(b) torchvision `DataLoader` + `ToTensor` (num_workers={args.workers})", load_b),
    ):
        median = _median(seconds[way])
        rows.append({
            "way": way,
            "label": label,
            "images": n_images,
            "repeats": repeats,
            "workers": args.workers if way == "b" else None,
            "seconds": median,
            "seconds_all": list(seconds[way]),
            "images_per_second": n_images / median,
            "load_seconds": load,
            "test_mse_per_pixel": _median(mse[way]),
            "time_vs_a": median / median_a,
            "device": device.type,
        })

    cpus = os.cpu_count()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    header = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "device": describe_device(device),
        "threads": torch.get_num_threads(),
        "cpus": f"{cpus}" + (f" ({affinity} usable)" if affinity is not None and affinity != cpus else ""),
        "mode": f"smoke (first {n_images:,} training images)" if args.smoke else f"full ({n_images:,} training images)",
        "repeats": repeats,
        "test_images": len(test_set),
    }
    table = format_table(rows, header)
    print(table, end="")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table, encoding="utf-8")
    print(f"\nwrote {_display_path(out)}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
