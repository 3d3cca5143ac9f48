"""The GPU toggle on a real GPU: every part of the course that touches a device, run on CUDA.

Skipped where there is no CUDA device (CI, this course's 2-core machines); run on a GPU machine with
``python -m pytest tests/test_gpu.py``. The results of the last such run are in benchmarks/gpu.md.
"""

import pytest
import torch

import autoenc_helpers as ah
from autoenc_helpers.cache import load_checkpoint

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


FASHION_SIZES = (4000, 1000)          # the fashion fixture (tests/conftest.py): training and held-out images


def test_the_toggle_gives_the_gpu(monkeypatch):
    monkeypatch.setenv("AUTOENC_DEVICE", "cuda")
    assert ah.get_device().type == "cuda"
    monkeypatch.setenv("AUTOENC_DEVICE", "auto")
    assert ah.get_device().type == "cuda"


def test_fit_trains_on_the_gpu_and_beats_the_mean_image(fashion):
    train, test = fashion
    ah.set_seed(0)
    model = ah.MLPAutoencoder(latent_dim=16, hidden=(256, 128))
    history = ah.fit(model, train, test, epochs=3, device="cuda", progress=False, log=False)
    assert all(p.device.type == "cuda" for p in model.parameters())
    mean_image = train.images.mean(0, keepdim=True)
    baseline = float(((test.images - mean_image) ** 2).mean())
    assert history.last("test") < 0.7 * baseline


def test_a_vae_on_the_gpu_elbo_iw_and_sampling(fashion):
    train, test = fashion
    ah.set_seed(0)
    vae = ah.MLPVAE(latent_dim=8, hidden=(256,))
    ah.fit(vae, train, epochs=2, objective=ah.vae_objective(), device="cuda", progress=False, log=False)
    g = torch.Generator(device="cuda").manual_seed(0)
    elbo = ah.negative_elbo(vae, test, n_samples=2, generator=g)
    iw = -ah.log_likelihood_iw(vae, test.images[:200], k=50, generator=g)
    assert iw < elbo + 1.0
    samples = vae.sample(4, generator=g)
    assert samples.device.type == "cuda" and samples.shape == (4, 1, 28, 28)


def test_a_conv_vae_trains_on_the_gpu(fashion):
    train, _ = fashion
    ah.set_seed(0)
    vae = ah.ConvVAE(latent_dim=4, channels=(8, 16, 16, 16))
    history = ah.fit(vae, train, epochs=2, objective=ah.vae_objective(), device="cuda", progress=False, log=False)
    assert history.train["total_loss"][-1] < history.train["total_loss"][0]


def test_a_checkpoint_saved_on_the_gpu_loads_on_the_cpu(fashion, tmp_path):
    train, test = fashion
    ah.set_seed(0)
    model = ah.MLPVAE(latent_dim=2, hidden=(64,))
    ah.cached_fit("gpu", model, train, test, objective=ah.vae_objective(), epochs=1, device="cuda", folder=tmp_path,
                  progress=False, log=False)
    (path,) = tmp_path.glob("gpu-*.pt")
    fresh = ah.MLPVAE(latent_dim=2, hidden=(64,))
    load_checkpoint(path, fresh, device="cpu")
    on_gpu = {k: v.cpu() for k, v in model.state_dict().items()}
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, on_gpu[name])


def test_corruptions_and_widgets_take_gpu_tensors(fashion):
    _, test = fashion
    images = test.images[:8].cuda()
    noisy = ah.Corruption("gaussian", 0.3, seed=0)(images)
    assert noisy.device.type == "cuda" and 0 <= float(noisy.min()) and float(noisy.max()) <= 1
    model = ah.MLPAutoencoder(latent_dim=2, hidden=(32,)).cuda()
    codes = ah.encode(model, test.images[:50])
    explorer = ah.widgets.LatentExplorer(model.decode, codes, images=test.images[:50])
    assert explorer is not None
