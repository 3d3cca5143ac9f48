"""Train lesson 08's convolutional VAE on several processes with PyTorch's DistributedDataParallel.

Lesson 12 (the appendix) explains it; run it under ``torchrun``, which starts one process per GPU (or
per CPU worker) and tells each its rank::

    torchrun --standalone --nproc_per_node 2 -m autoenc_helpers.distributed --epochs 2
    torchrun --standalone --nproc_per_node 4 -m autoenc_helpers.distributed      # 4 GPUs of one machine
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
        -m autoenc_helpers.distributed                                               # on each of 2 machines

(``python -m torch.distributed.run`` is the same program as ``torchrun``.)

What each process does, in order:

1. joins the process group: backend ``nccl`` when the course's device (``AUTOENC_DEVICE``,
   :func:`~autoenc_helpers.device.get_device`) is a GPU, each process on GPU ``LOCAL_RANK``;
   ``gloo`` on the CPU;
2. builds the same model from the same seed and wraps it in ``DistributedDataParallel``, which
   copies rank 0's weights to every process and, during ``backward``, averages the gradients of all
   processes with an all-reduce, so every process takes the same optimizer step;
3. each epoch, takes its shard of the in-memory training images with :func:`shard_indices`, the
   indexing of ``torch.utils.data.DistributedSampler`` (one seeded shuffle shared by all processes,
   every ``world_size``-th image from position ``rank``), in batches of ``global_batch / world_size``;
4. adds up the loss terms of all processes (``all_reduce``) so the logged numbers cover every image;
5. rank 0 alone prints, shows the progress bar and saves the checkpoint, in the classroom cache's
   format (:func:`~autoenc_helpers.cache.save_checkpoint`), which a notebook loads with
   :func:`~autoenc_helpers.cache.load_checkpoint`;
6. leaves the process group (``destroy_process_group``), also when training fails.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .cache import checkpoint_dir, save_checkpoint
from .data import load_dataset
from .device import get_device, set_seed
from .losses import vae_objective
from .models import ConvVAE
from .training import History
from .validate import index, positive_int

__all__ = ["OPTIMIZERS", "shard_indices", "noise_seed", "train_distributed", "main"]

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def shard_indices(n: int, world_size: int, rank: int, *, epoch: int, seed: int = 0) -> torch.Tensor:
    """The positions of the images process ``rank`` trains on in ``epoch``: (ceil(n / world_size),).

    The same indexing as ``torch.utils.data.DistributedSampler(shuffle=True, drop_last=False)``:
    every process draws the same permutation of ``range(n)`` from ``seed + epoch``, pads it by
    repeating its start until its length divides by ``world_size``, and keeps every
    ``world_size``-th entry starting at ``rank``. The shards are disjoint apart from the padding,
    and together they cover every image once per epoch.
    """
    positive_int(n, "n")
    positive_int(world_size, "world_size")
    index(rank, "rank", world_size, "an int (one process of world_size)")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))     # (n,)
    total = math.ceil(n / world_size) * world_size
    order = torch.cat([order, order[:total - n]]) if total > n else order              # padded to (total,)
    return order[rank:total:world_size]                                                 # (total / world_size,)


def noise_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``'s own random draws (the VAE's sampled codes): a different stream each."""
    return 1_000 * (seed + 1) + rank


def _reduce_sums(sums: dict[str, float], count: int, device: torch.device) -> tuple[dict[str, float], int]:
    """Add up every process's sums and image counts (all_reduce); return the totals."""
    names = list(sums)
    packed = torch.tensor([sums[name] for name in names] + [float(count)], dtype=torch.float64, device=device)
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    return dict(zip(names, packed[:-1].tolist())), int(packed[-1].item())


def train_distributed(model: nn.Module, train: torch.Tensor, test: torch.Tensor | None = None, *,
                      epochs: int, global_batch: int, lr: float = 1e-3, optimizer: str = "adam", seed: int = 0,
                      objective=None, device: torch.device, progress: bool = True) -> History:
    """Train ``model`` with DistributedDataParallel in a process group that is already set up.

    Every process calls it with the same arguments: the full (N, 1, 28, 28) training images (each
    process trains on its shard of them) and, optionally, held-out images (each process scores
    its shard; the results are added up). ``global_batch`` images per optimizer step, split evenly
    over the processes; ``optimizer`` is ``"adam"`` (the course's) or ``"sgd"`` (plain SGD, whose step
    grows with the gradient, so it shows whether the gradients were averaged). Returns the per-epoch
    :class:`History` of the whole run (the same on every process); the model is left in eval mode, on ``device``.
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    if positive_int(global_batch, "global_batch") % world:
        raise ValueError(f"global_batch={global_batch!r} must be a whole multiple of the {world} processes")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r}; expected one of {sorted(OPTIMIZERS)}")
    local_batch = global_batch // world
    objective = objective or vae_objective()
    ddp = DistributedDataParallel(model.to(device), device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = OPTIMIZERS[optimizer](ddp.parameters(), lr=lr)
    x_train = train.to(device)
    x_test = test.to(device) if test is not None else None
    torch.manual_seed(noise_seed(seed, rank))               # this process's own stream of sampled codes
    history = History()
    steps = math.ceil(math.ceil(x_train.shape[0] / world) / local_batch)
    bar = tqdm(total=epochs * steps, desc=f"training on {world} processes", unit="step",
               disable=not progress or rank != 0, leave=False)
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            ddp.train()
            mine = shard_indices(x_train.shape[0], world, rank, epoch=epoch, seed=seed).to(device)
            sums: dict[str, float] = {}
            for first in range(0, mine.numel(), local_batch):
                x = x_train[mine[first:first + local_batch]]                  # (local_batch, 1, 28, 28)
                terms = objective(ddp, x, x)
                optimizer.zero_grad(set_to_none=True)
                next(iter(terms.values())).backward()   # DDP averages the gradients over the processes here
                optimizer.step()
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + float(value.detach()) * x.shape[0]
                bar.update(1)
            totals, seen = _reduce_sums(sums, mine.numel(), device)
            for name, total in totals.items():
                history.train.setdefault(name, []).append(total / seen)
            if x_test is not None:
                ddp.eval()
                held_out = torch.arange(rank, x_test.shape[0], world, device=device)
                sums = {}
                # scoring draws codes too: on a fork of the random state, so training's stream goes on as if
                # nothing had been drawn (and a run with held-out images takes the same steps as one without)
                with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                    for first in range(0, held_out.numel(), 1000):
                        x = x_test[held_out[first:first + 1000]]
                        for name, value in objective(ddp.module, x, x).items():
                            sums[name] = sums.get(name, 0.0) + float(value) * x.shape[0]
                totals, seen = _reduce_sums(sums, held_out.numel(), device)
                for name, total in totals.items():
                    history.test.setdefault(name, []).append(total / seen)
            history.seconds.append(time.perf_counter() - start)
            if rank == 0:
                parts = [f"train {name} {v[-1]:.2f}" for name, v in history.train.items()]
                parts += [f"test {name} {v[-1]:.2f}" for name, v in history.test.items()]
                rate = x_train.shape[0] / history.seconds[-1]
                print(f"epoch {epoch}/{epochs}  " + "  ".join(parts) + f"  ({rate:,.0f} images/s over "
                      f"{world} processes)", flush=True)
    finally:
        bar.close()
    model.eval()
    return history


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="torchrun --standalone --nproc_per_node N -m autoenc_helpers.distributed",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=2, help="passes over the training images (default: 2)")
    p.add_argument("--images", type=int, default=None, help="use the first N training images (default: all)")
    p.add_argument("--test-images", type=int, default=2000, help="held-out images scored each epoch (default: "
                                                                   "2000; 0 for none)")
    p.add_argument("--global-batch", type=int, default=128,
                   help="images per optimizer step, over all processes together (default: 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: 1e-3)")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam", help="default: adam")
    p.add_argument("--latent-dim", type=int, default=16, help="size of the code z (default: 16)")
    p.add_argument("--channels", type=int, nargs=4, default=[16, 32, 32, 32], metavar="C",
                   help="the four convolutions' widths (default: 16 32 32 32, lesson 08's network)")
    p.add_argument("--seed", type=int, default=0, help="initial weights, shuffling, sampled codes (default: 0)")
    p.add_argument("--out", type=Path, default=None,
                   help="checkpoint file (default: <checkpoint folder>/distributed_conv_vae.pt)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                   help="where to train (default: AUTOENC_DEVICE, else auto): cuda runs one process per GPU")
    p.add_argument("--rendezvous-timeout", type=float, default=120,
                   help="seconds to wait for every process to join (default: 120)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        print("autoenc_helpers.distributed runs one process per worker under torchrun, which sets RANK and "
              "WORLD_SIZE; start it as\n  torchrun --standalone --nproc_per_node 2 -m autoenc_helpers.distributed",
              file=sys.stderr)
        return 2
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = get_device(args.device, verbose=False)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        print(f"autoenc_helpers.distributed trains on CUDA GPUs or the CPU, not on {device.type}; "
              "set AUTOENC_DEVICE=cpu", file=sys.stderr)
        return 2
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=args.rendezvous_timeout))
    except Exception as err:                        # the rendezvous failed: say where it looked and what to check
        print(f"rank {rank}: could not join the process group ({backend} backend, "
              f"MASTER_ADDR={os.environ.get('MASTER_ADDR')}, MASTER_PORT={os.environ.get('MASTER_PORT')}): "
              f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}. Check that every machine "
              "can reach that address and that the port is free (torchrun --standalone picks a free one).",
              file=sys.stderr)
        return 1
    try:
        verbose = rank == 0
        train = load_dataset("fashion_mnist", "train", n=args.images, verbose=verbose).images
        test = load_dataset("fashion_mnist", "test", n=args.test_images, verbose=verbose).images \
            if args.test_images else None
        set_seed(args.seed)                          # the same initial weights in every process
        model = ConvVAE(latent_dim=args.latent_dim, channels=tuple(args.channels))
        if verbose:
            print(f"{world} processes ({backend}, {device.type}); each trains on 1/{world} of {train.shape[0]:,} "
                  f"images per epoch, {args.global_batch // world} per step; global batch {args.global_batch}",
                  flush=True)
        objective = vae_objective()
        history = train_distributed(model, train, test, epochs=args.epochs, global_batch=args.global_batch,
                                    lr=args.lr, optimizer=args.optimizer, seed=args.seed, objective=objective,
                                    device=device,
                                    progress=not args.no_progress)
        if rank == 0:
            out = args.out or checkpoint_dir() / "distributed_conv_vae.pt"
            settings = {"model": "ConvVAE", "latent_dim": args.latent_dim, "channels": list(args.channels),
                        "objective": objective.settings, "epochs": args.epochs, "images": train.shape[0],
                        "global_batch": args.global_batch, "lr": args.lr, "optimizer": args.optimizer,
                        "seed": args.seed,
                        "world_size": world, "backend": backend}
            if save_checkpoint(out, model, history, settings):
                print(f"saved checkpoint {out.name} (rank 0)", flush=True)
            else:
                return 1
        dist.barrier()                               # nobody leaves before the checkpoint is written
        return 0
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
