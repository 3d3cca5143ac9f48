"""Training throughput of the distributed entry point beside one-process ``ah.fit``, as a Markdown table.

    python benchmarks/distributed_throughput.py                          # CPU: fit, then 2 processes
    AUTOENC_DEVICE=cuda python benchmarks/distributed_throughput.py      # GPU: fit, then one process per GPU

Both train lesson 08's convolutional VAE (or ``--channels``) with the same global batch on the same
images; the table gives images per second of each epoch after the first (the first pays for
start-up: CUDA context, cuDNN's algorithm search, process-group set-up), so the rows compare the
steady state. It measures speed only; the equivalence of the two trainings is what
``tests/test_distributed.py`` proves.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import autoenc_helpers as ah  # noqa: E402


def fit_rates(images: torch.Tensor, args, device: torch.device) -> list[float]:
    ah.set_seed(0)
    model = ah.ConvVAE(latent_dim=args.latent_dim, channels=tuple(args.channels))
    history = ah.fit(model, images, epochs=args.epochs, batch_size=args.global_batch, device=device,
                     objective=ah.vae_objective(), progress=False, log=False)
    return [images.shape[0] / s for s in history.seconds]


def torchrun_rates(processes: int, args, device: torch.device) -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
                   "-m", "autoenc_helpers.distributed", "--device", device.type, "--images", str(args.images),
                   "--test-images", "0", "--epochs", str(args.epochs), "--global-batch", str(args.global_batch),
                   "--latent-dim", str(args.latent_dim), "--channels", *map(str, args.channels),
                   "--out", str(Path(folder) / "throughput.pt"), "--no-progress"]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"torchrun failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return [float(r.replace(",", "")) for r in re.findall(r"\(([\d,]+) images/s over", done.stdout)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=60_000, help="training images (default: 60,000)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per way; the first is not counted (default: 3)")
    p.add_argument("--global-batch", type=int, default=128, help="images per optimizer step (default: 128)")
    p.add_argument("--latent-dim", type=int, default=16)
    p.add_argument("--channels", type=int, nargs=4, default=[16, 32, 32, 32])
    p.add_argument("--processes", type=int, default=None,
                   help="processes for torchrun (default: one per GPU on CUDA, else 2)")
    p.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = p.parse_args()
    device = ah.get_device()
    processes = args.processes or (torch.cuda.device_count() if device.type == "cuda" else 2)
    images = ah.load_dataset("fashion_mnist", "train", n=args.images, verbose=False).images
    started = time.strftime("%Y-%m-%d")
    rows = [("`ah.fit`, one process", fit_rates(images, args, device)),
            (f"`torchrun`, {processes} process{'es' * (processes > 1)} (DDP, "
             f"{'nccl' if device.type == 'cuda' else 'gloo'})", torchrun_rates(processes, args, device))]
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    lines = [f"Conv VAE {tuple(args.channels)}, {args.latent_dim}-D code, {args.images:,} images, global batch "
             f"{args.global_batch}, {args.epochs} epochs on {where}, torch {torch.__version__}, {started}.", "",
             "| way | images/s, median of epochs 2.. | each epoch |", "|---|---|---|"]
    for name, rates in rows:
        steady = rates[1:] or rates
        lines.append(f"| {name} | {statistics.median(steady):,.0f} | {', '.join(f'{r:,.0f}' for r in rates)} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
