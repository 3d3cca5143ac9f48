"""Lesson 12's distributed training: torchrun with two CPU processes gives what one process gives.

The run under ``torchrun --nproc_per_node 2`` is compared, weight by weight, with a single process that
takes the same steps on the concatenated global batches: that proves the gradient averaging (DDP's
all-reduce), the sharding and the checkpoint. The single process evaluates the global batch shard by
shard only so that every image gets the same random code draw as in its process; the mean of the
equal-sized shards' mean losses is the global batch's mean loss, so the gradient is the same.
"""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

import autoenc_helpers as ah
from autoenc_helpers import distributed
from autoenc_helpers.cache import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
# Plain SGD: its step is proportional to the gradient, so a sum where a mean belongs would double every step
# (Adam would hide it: it divides the gradient by its own scale).
RUN = dict(images=256, global_batch=64, epochs=2, lr=1e-4, optimizer="sgd", seed=3, latent_dim=4,
           channels=(8, 16, 16, 16))


@pytest.mark.parametrize("n, world, epoch, seed", [(10, 2, 0, 0), (10, 3, 1, 0), (7, 4, 2, 5), (60, 1, 0, 1),
                                                   (1, 2, 0, 0), (101, 8, 3, 2)])
def test_shards_are_those_of_distributed_sampler(n, world, epoch, seed):
    for rank in range(world):
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        assert distributed.shard_indices(n, world, rank, epoch=epoch, seed=seed).tolist() == list(sampler)


def test_shards_cover_every_image_once_apart_from_the_padding():
    shards = [distributed.shard_indices(1000, 3, r, epoch=1, seed=0) for r in range(3)]
    together = torch.cat(shards)
    assert sorted(set(together.tolist())) == list(range(1000)) and together.numel() == 1002   # 2 repeated
    assert len(together.tolist()) - len(set(together.tolist())) == 2          # only the padding repeats
    assert shards[0].tolist() != distributed.shard_indices(1000, 3, 0, epoch=2, seed=0).tolist()  # reshuffled


@pytest.mark.parametrize("bad", [dict(n=0), dict(world_size=0), dict(rank=2), dict(rank=-1), dict(n=True)])
def test_bad_shard_arguments_are_named(bad):
    args = {"n": 10, "world_size": 2, "rank": 0, **bad}
    with pytest.raises(ValueError, match=next(iter(bad))):
        distributed.shard_indices(args["n"], args["world_size"], args["rank"], epoch=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def torchrun_checkpoint(tmp_path_factory):
    """Run the entry point with two CPU processes; return the checkpoint rank 0 wrote, and the output."""
    out = tmp_path_factory.mktemp("ddp") / "conv_vae.pt"
    port = _free_port()
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
               "-m", "autoenc_helpers.distributed", "--images", str(RUN["images"]), "--test-images", "64",
               "--global-batch", str(RUN["global_batch"]), "--epochs", str(RUN["epochs"]), "--lr", str(RUN["lr"]),
               "--optimizer", RUN["optimizer"],
               "--seed", str(RUN["seed"]), "--latent-dim", str(RUN["latent_dim"]),
               "--channels", *map(str, RUN["channels"]), "--out", str(out), "--no-progress"]
    env = {**os.environ, "AUTOENC_DEVICE": "cpu", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               cwd=ROOT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)                # torchrun and both workers
        output, _ = process.communicate()
        pytest.fail(f"torchrun did not finish in 300 s:\n{output[-3000:]}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    if process.returncode != 0:
        taken = "address already in use" in output.lower() or "eaddrinuse" in output.lower()
        pytest.fail((f"port {port} was taken by another program between choosing and using it; run again\n"
                     if taken else "") + f"torchrun exited with {process.returncode}:\n{output[-3000:]}")
    return out, output


def _single_process_reference() -> ah.ConvVAE:
    """The same steps in one process: per step, the mean loss over the concatenated global batch."""
    images = ah.load_dataset("fashion_mnist", "train", n=RUN["images"], verbose=False).images
    ah.set_seed(RUN["seed"])
    model = ah.ConvVAE(latent_dim=RUN["latent_dim"], channels=RUN["channels"])
    optimizer = torch.optim.SGD(model.parameters(), lr=RUN["lr"])
    objective = ah.vae_objective()
    world, local = 2, RUN["global_batch"] // 2
    streams = []
    for rank in range(world):                     # each process's own stream of sampled codes
        torch.manual_seed(distributed.noise_seed(RUN["seed"], rank))
        streams.append(torch.get_rng_state())
    model.train()
    for epoch in range(1, RUN["epochs"] + 1):
        shards = [distributed.shard_indices(len(images), world, r, epoch=epoch, seed=RUN["seed"]) for r in range(world)]
        for first in range(0, shards[0].numel(), local):
            optimizer.zero_grad(set_to_none=True)
            for rank in range(world):
                torch.set_rng_state(streams[rank])
                x = images[shards[rank][first:first + local]]
                (objective(model, x, x)["total_loss"] / world).backward()   # mean over the global batch
                streams[rank] = torch.get_rng_state()
            optimizer.step()
    return model.eval()


def test_two_processes_take_the_same_steps_as_one_process_on_the_global_batch(torchrun_checkpoint):
    path, output = torchrun_checkpoint
    assert "2 processes (gloo, cpu)" in output
    trained = ah.ConvVAE(latent_dim=RUN["latent_dim"], channels=RUN["channels"])
    load_checkpoint(path, trained, device="cpu")
    reference = _single_process_reference()
    ah.set_seed(RUN["seed"])
    initial = ah.ConvVAE(latent_dim=RUN["latent_dim"], channels=RUN["channels"]).state_dict()
    moved = max(float((trained.state_dict()[k] - initial[k]).abs().max()) for k in initial)
    assert moved > 1e-3, f"training moved the weights (at most {moved:.2g})"
    # Float sums in another order (an all-reduce of two halves against one backward pass) differ in the 7th
    # significant digit, so the weights after 8 SGD steps agree to about 1e-6 of the distance they moved.
    # A sum instead of a mean doubles each step, one process's gradient alone or a wrong shard changes its
    # direction: each moves the weights by a sizeable fraction of `moved`, far outside the tolerance.
    for name, expected in reference.state_dict().items():
        torch.testing.assert_close(trained.state_dict()[name], expected, atol=2e-5, rtol=1e-4, msg=name)


def test_rank_0s_checkpoint_loads_with_weights_only_into_a_fresh_model(torchrun_checkpoint):
    path, _ = torchrun_checkpoint
    saved = torch.load(path, map_location="cpu", weights_only=True)
    assert saved["format"] == ah.cache.FORMAT and '"world_size": 2' in saved["settings"]
    fresh = ah.ConvVAE(latent_dim=RUN["latent_dim"], channels=RUN["channels"])
    history = load_checkpoint(path, fresh, device="cpu")
    assert history.epochs == RUN["epochs"] and not fresh.training
    assert history.test["total_loss"][-1] < history.test["total_loss"][0]


def test_without_torchrun_it_says_how_to_start_it():
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-m", "autoenc_helpers.distributed"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and "torchrun --standalone --nproc_per_node" in done.stderr


def test_a_failed_rendezvous_is_reported_with_where_it_looked():
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port()), "AUTOENC_DEVICE": "cpu",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "autoenc_helpers.distributed", "--rendezvous-timeout", "3"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)   # rank 1 never comes
    assert done.returncode == 1
    assert "could not join the process group (gloo backend, MASTER_ADDR=127.0.0.1" in done.stderr


def test_a_global_batch_that_does_not_split_evenly_is_refused(monkeypatch):
    monkeypatch.setattr(distributed.dist, "get_rank", lambda: 0)
    monkeypatch.setattr(distributed.dist, "get_world_size", lambda: 3)
    with pytest.raises(ValueError, match="global_batch=64 must be a whole multiple of the 3 processes"):
        distributed.train_distributed(ah.ConvVAE(), torch.rand(6, 1, 28, 28), epochs=1, global_batch=64,
                                      device=torch.device("cpu"))


# -- the exercise check of lesson 12 ------------------------------------------------------------------


def _right(n, world, rank, epoch, seed):
    return distributed.shard_indices(n, world, rank, epoch=epoch, seed=seed)


def _no_padding(n, world, rank, epoch, seed):
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))[rank::world]


def _blocks(n, world, rank, epoch, seed):
    order = _right(n, 1, 0, epoch, seed).tolist()
    total = -(-n // world) * world
    order = order + order[:total - n]
    per = total // world
    return order[rank * per:(rank + 1) * per]


def _same_every_epoch(n, world, rank, epoch, seed):
    return distributed.shard_indices(n, world, rank, epoch=0, seed=seed)


def _unshuffled(n, world, rank, epoch, seed):
    total = -(-n // world) * world
    return (list(range(n)) + list(range(total - n)))[rank:total:world]


def test_the_check_accepts_the_right_answer_as_a_tensor_or_a_list(capsys):
    assert ah.checks.check_shard_indices(_right)
    assert ah.checks.check_shard_indices(lambda *a: _right(*a).tolist())
    assert "all 6 hidden tests pass" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [(_no_padding, "pad the shuffled positions"),
                                         (_blocks, "not a contiguous block"),
                                         (_same_every_epoch, "seed the shuffle with seed + epoch"),
                                         (_unshuffled, "shuffle first")])
def test_the_check_names_each_slip(wrong, hint, capsys):
    assert not ah.checks.check_shard_indices(wrong)
    assert hint in capsys.readouterr().out


def test_the_check_handles_a_stub_a_crash_and_a_wrong_type(capsys):
    def stub(*args):
        raise NotImplementedError

    assert not ah.checks.check_shard_indices(stub)
    assert "not written yet" in capsys.readouterr().out
    assert not ah.checks.check_shard_indices(lambda *a: 1 / 0)
    assert "raised ZeroDivisionError" in capsys.readouterr().out
    assert not ah.checks.check_shard_indices(lambda *a: "0, 1")
    assert "return a 1-D tensor or list" in capsys.readouterr().out
