"""losses.py: what the other test files of the module leave open (see tests/MUTATION.md, section losses).

PSNR on tensors, bernoulli_kl on a numpy number, and the errors and the cache identity of the lesson-10
functions (gaussian_kl_between, completion_objective) and of the likelihood measures given wrong labels.
"""

import math

import numpy as np
import pytest
import torch

import autoenc_helpers as ah
from autoenc_helpers.losses import bernoulli_kl, completion_objective, gaussian_kl_between


def test_psnr_db_on_a_tensor_follows_the_same_formula_as_on_a_number():
    psnr = ah.psnr_db(torch.tensor([0.0, 0.01, 0.1]))                  # an MSE of 0 is a perfect copy: inf dB
    assert psnr[0] == math.inf
    assert torch.allclose(psnr[1:], torch.tensor([20.0, 10.0]))
    # images in [0, 2]: the peak enters squared, as for a number (tests/test_noise.py)
    assert torch.allclose(ah.psnr_db(torch.tensor([0.04, 0.0004]), peak=2.0), torch.tensor([20.0, 40.0]))
    with pytest.raises(ValueError, match=r"^an MSE cannot be negative, got min -0\.5$"):
        ah.psnr_db(torch.tensor([0.01, -0.5]))


def test_bernoulli_kl_of_a_numpy_number_is_a_tensor_of_the_default_dtype():
    rate = np.float64(0.2)                                              # what np.mean or np.linspace hand back
    kl = bernoulli_kl(0.05, rate)
    assert kl.dtype == torch.get_default_dtype()
    assert float(kl) == pytest.approx(0.05 * math.log(0.05 / 0.2) + 0.95 * math.log(0.95 / 0.8), rel=1e-5)


def test_gaussian_kl_between_names_the_four_tensors_it_expects():
    mu = torch.zeros(2, 3)
    with pytest.raises(TypeError, match=r"^gaussian_kl_between expects four tensors: mu_q, logvar_q, mu_p, "
                                        r"logvar_p$"):
        gaussian_kl_between(mu, mu, 0.0, mu)


def test_the_likelihood_measures_say_what_the_wrong_labels_were():
    torch.manual_seed(0)
    cvae = ah.ConditionalVAE(latent_dim=2, hidden=(8,))
    x = torch.rand(4, 1, 28, 28)
    for labels, got in ((torch.arange(3), r"\(3,\)"), (torch.arange(4)[:, None], r"\(4, 1\)"), ([0, 1, 2, 3], "list")):
        with pytest.raises(ValueError, match=rf"^negative_elbo: labels must be a \(4,\) tensor, one per image, "
                                             rf"got {got}$"):
            ah.negative_elbo(cvae, x, labels=labels)


def test_completion_objective_names_itself_keeps_its_settings_and_says_what_a_wrong_model_gave():
    objective = completion_objective()
    assert objective.__name__ == objective.__qualname__ == "completion_objective"
    # what ah.cached_fit keys the checkpoints of lesson 10 by: a change here retrains every cached model
    assert objective.settings == {"output": "bottom half", "split_row": 14, "recon": "bce, summed over its pixels",
                                  "kl": "to the prior network"}
    x = torch.rand(5, 1, 28, 28)
    need = (r"^completion_objective needs a model whose forward gives bottom-half logits of shape \(5, 1, 14, 28\) "
            r"\(or a CompletionOutput holding them\); ")
    with pytest.raises(TypeError, match=need + r"MLPAutoencoder gave \(5, 1, 28, 28\)$"):   # whole images
        objective(ah.MLPAutoencoder(hidden=(8,)), x, x)
    with pytest.raises(TypeError, match=need + r"MLPVAE gave VAEOutput$"):                  # not a tensor at all
        objective(ah.MLPVAE(hidden=(8,)), x, x)
