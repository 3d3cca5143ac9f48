import random

import numpy as np
import pytest
import torch

import autoenc_helpers as ah
from autoenc_helpers import config


@pytest.mark.parametrize("raw, smoke", [("1", True), ("true", True), ("0", False), ("", False), ("off", False)])
def test_pick_follows_autoenc_smoke(monkeypatch, raw, smoke):
    monkeypatch.setenv("AUTOENC_SMOKE", raw)
    assert config.is_smoke() is smoke
    assert ah.pick(full=10, smoke=1) == (1 if smoke else 10)


def test_pick_defaults_to_the_full_lesson(monkeypatch):
    monkeypatch.delenv("AUTOENC_SMOKE", raising=False)
    assert ah.pick(full=[2, 4, 8], smoke=[2]) == [2, 4, 8]


def test_unknown_smoke_value_is_an_error(monkeypatch):
    monkeypatch.setenv("AUTOENC_SMOKE", "maybe")
    with pytest.raises(ValueError, match="maybe"):
        config.is_smoke()


def test_pick_needs_keywords():
    with pytest.raises(TypeError):
        ah.pick(10, 1)


def test_cpu_device_and_printout(capsys):
    assert ah.get_device("cpu") == torch.device("cpu")
    assert "device: cpu" in capsys.readouterr().out


def test_device_from_environment(monkeypatch):
    monkeypatch.setenv("AUTOENC_DEVICE", "CPU")
    assert ah.get_device(verbose=False).type == "cpu"


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    from autoenc_helpers import device as dev
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    assert ah.get_device("auto", verbose=False).type == "cpu"
    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    assert ah.get_device("auto", verbose=False).type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ah.get_device("auto", verbose=False).type == "cuda"


def test_unknown_device_names_the_value():
    with pytest.raises(ValueError, match="'gpu0'"):
        ah.get_device("gpu0")


def test_missing_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        ah.get_device("cuda")


def test_set_seed_seeds_python_numpy_and_torch():
    ah.set_seed(123)
    first = (random.random(), np.random.rand(), torch.rand(3))
    ah.set_seed(123)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])
    ah.set_seed(124)
    other = (random.random(), np.random.rand(), torch.rand(3))
    assert other[0] != first[0] and other[1] != first[1] and not torch.equal(other[2], first[2])


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_set_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed"):
        ah.set_seed(bad)


def test_denormals_are_flushed_after_import():
    # 1e-30 * 1e-10 = 1e-40 is a denormal float32; with flushing on it becomes exactly 0.
    assert (torch.tensor([1e-30]) * 1e-10).item() == 0.0
