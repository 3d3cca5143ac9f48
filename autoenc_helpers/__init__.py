"""autoenc_helpers: the helper package behind the autoencoder course notebooks.

One module per concern; open any of them and read it top to bottom:

- ``config``: smoke mode (``pick``), and whether a false claim stops the run
- ``claims``: ``expect``, a lesson's sentence about its results checked by the run
- ``device``: the GPU toggle (``get_device``) and ``set_seed``
- ``data``: Fashion-MNIST, MNIST and circles in memory, and batching
- ``models``: the autoencoders (and PCA, the linear case), the VAE and ``reparameterize``, the sparse AE
- ``losses``: reconstruction errors with explicit reductions and units; the VAE's BCE, KL and ELBO;
  sparsity penalties (L1, KL towards a rate)
- ``noise``: corruptions for denoising (Gaussian, masking, salt-and-pepper)
- ``training``: the one ``fit`` loop, ``evaluate``, ``predict``, ``encode``
- ``cache``: ``cached_fit``, train once and load afterwards (the classroom mode)
- ``plots``: image grids, loss curves, latent scatters, sweeps
- ``widgets``: sliders that decode live (``LatentExplorer``, ``NoiseExplorer``, ``LossFactorExplorer``,
  ``ConditionalExplorer``)
- ``checks``: the exercise checks
- ``distributed``: the convolutional VAE trained with DistributedDataParallel under torchrun (lesson 12)
- ``vq``: discrete codes, the VQ-VAE, its codebook and a prior over its code grids (lesson 11)
- ``applications``: anomaly scores, thresholds and ROC; few-label classifiers on codes, tuned fairly (lesson 09)
- ``validate``: the argument checks every module shares (``positive_int``, ``number``)

Importing the package sets one global switch of torch, ``torch.set_flush_denormal(True)``: ``device``
says why (and lesson 01's settings).

The maintainers' tools (the notebook runner, the benchmark, mutation testing) live beside the package, in
``tools/`` and ``benchmarks/`` of the repository, and are not installed with it.
"""

from . import cache, checks, claims, config, data, device, losses, models, noise, plots, training, widgets
from .config import SMOKE, is_smoke, pick
from .claims import ClaimError, expect
from .data import DatasetNotFoundError, ImageSet, load_dataset, make_circles
from .device import get_device, set_seed
from .losses import mse_objective, psnr_db, squared_error
from .losses import kl_sparsity_penalty, l1_activation_penalty, sparse_objective, sparsity_stats
from .losses import (active_units, bce_with_logits, gaussian_kl, kl_per_dimension, log_likelihood_iw,
                     negative_elbo, vae_objective)
from .losses import completion_log_likelihood_iw, completion_objective, gaussian_kl_between
from . import applications
from . import distributed
from .models import ConditionalVAE, HalfImageCVAE, HalfImageRegressor
from .models import PCA, ConvAutoencoder, MLPAutoencoder, count_parameters
from .models import SparseAutoencoder
from .models import ConvVAE, MLPVAE, VAEOutput, reparameterize
from .noise import Corruption, RandomCorruption, corrupt
from .training import History, encode, evaluate, fit, predict
from .cache import cached_fit
from . import vq
from .vq import CodePrior, VQVAE, vq_objective

__version__ = "0.1.0"
