"""KL warm-up (lesson 07): the schedule, the objective that follows it, and fit telling it the epoch."""

import math

import pytest
import torch
import torch.nn.functional as F

import autoenc_helpers as ah
from autoenc_helpers.cache import settings_of
from autoenc_helpers.losses import kl_warmup_weight


# -- the schedule --------------------------------------------------------------------------------

@pytest.mark.parametrize("epochs_done, warmup, final, expected", [
    (0, 2, 1.0, 0.0),            # training starts with no KL at all
    (0.5, 2, 1.0, 0.25),         # a straight line...
    (1, 2, 1.0, 0.5),
    (2, 2, 1.0, 1.0),            # ...reaching the final weight after `warmup` epochs
    (3.7, 2, 1.0, 1.0),          # and staying there
    (1, 4, 0.1, 0.025),          # a beta-VAE's weight is warmed up to its own final value
    (0, 0, 1.0, 1.0),            # warmup 0: no warm-up
    (None, 2, 0.5, 0.5),         # not training: the weight the model is judged by
])
def test_warmup_weight_is_a_linear_ramp(epochs_done, warmup, final, expected):
    assert kl_warmup_weight(epochs_done, warmup, final) == pytest.approx(expected)


def test_warmup_weight_rises_to_one_by_default():
    assert kl_warmup_weight(1, 2) == 0.5                                      # half-way to the plain VAE's 1
    assert kl_warmup_weight(None, 2) == 1.0


@pytest.mark.parametrize("args, match", [
    ((1, -2), r"warmup_epochs must be a finite number in \[0, inf\), got -2"),
    ((-1, 2), r"epochs_done must be a finite number in \[0, inf\), got -1"),
    ((math.nan, 2), r"epochs_done must be a finite number .*, got nan"),
    ((1, 2, -1.0), r"final must be a finite number .*, got -1.0"),
    ((1, "2"), r"warmup_epochs must be a finite number .*, got '2'"),
])
def test_warmup_weight_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        kl_warmup_weight(*args)


# -- the objective -------------------------------------------------------------------------------

def _batch():
    ah.set_seed(0)
    return ah.MLPVAE(latent_dim=3, hidden=(16,)), torch.rand(4, 1, 28, 28)


def test_objective_pays_the_scheduled_weight_and_logs_it():
    vae, x = _batch()
    objective = ah.vae_objective(kl_warmup_epochs=2, recon_factor=2.0)
    for epochs_done, weight in ((0.0, 0.0), (1.0, 0.5), (3.0, 1.0), (None, 1.0)):
        objective.set_epoch(epochs_done)
        terms = objective(vae, x, x)
        assert list(terms) == ["total_loss", "recon_nats_per_image", "kl_nats_per_image", "kl_weight"]
        assert terms["kl_weight"].item() == pytest.approx(weight)
        expected = 2.0 * terms["recon_nats_per_image"] + weight * terms["kl_nats_per_image"]
        assert terms["total_loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_a_warmup_shorter_than_an_epoch_is_logged_too():
    vae, x = _batch()
    objective = ah.vae_objective(kl_warmup_epochs=0.5)                        # full weight after half an epoch
    objective.set_epoch(0.25)
    terms = objective(vae, x, x)
    assert terms["kl_weight"].item() == pytest.approx(0.5)
    assert terms["total_loss"].item() == pytest.approx(
        (terms["recon_nats_per_image"] + 0.5 * terms["kl_nats_per_image"]).item(), rel=1e-6)


def test_objective_warms_up_to_its_own_kl_weight_and_keeps_free_bits():
    vae, x = _batch()
    objective = ah.vae_objective(kl_warmup_epochs=4, kl_weight=0.5, free_bits=100.0)
    objective.set_epoch(1.0)                                                  # a quarter of the way: 0.125
    terms = objective(vae, x, x)
    paid = 3 * 100.0                                                          # every dimension below the floor
    assert terms["kl_weight"].item() == pytest.approx(0.125)
    assert terms["total_loss"].item() == pytest.approx(terms["recon_nats_per_image"].item() + 0.125 * paid, rel=1e-6)


def test_without_warmup_nothing_changes():
    vae, x = _batch()
    objective = ah.vae_objective()
    objective.set_epoch(0.0)                                                  # fit calls it for every objective
    terms = objective(vae, x, x)
    assert list(terms) == ["total_loss", "recon_nats_per_image", "kl_nats_per_image"]
    assert terms["total_loss"].item() == pytest.approx(
        (terms["recon_nats_per_image"] + terms["kl_nats_per_image"]).item(), rel=1e-6)


def test_settings_name_the_schedule_and_leave_older_checkpoints_alone():
    # the keys of an objective without warm-up are those of checkpoints saved before warm-up existed
    assert list(ah.vae_objective().settings) == ["recon", "reduction", "recon_factor", "kl_weight", "free_bits"]
    assert ah.vae_objective(kl_warmup_epochs=2).settings["kl_warmup_epochs"] == 2.0
    ah.set_seed(0)
    vae = ah.MLPVAE(latent_dim=2, hidden=(8,))
    x = torch.rand(10, 1, 28, 28)
    keys = [settings_of(vae, x, objective=ah.vae_objective(kl_warmup_epochs=w)) for w in (0, 1, 2, 2)]
    assert keys[0] != keys[1] != keys[2] and keys[2] == keys[3]              # a changed schedule trains again


def test_bad_warmup_is_named():
    with pytest.raises(ValueError, match=r"kl_warmup_epochs must be a finite number in \[0, inf\), got -1"):
        ah.vae_objective(kl_warmup_epochs=-1)


# -- fit tells the objective how far training has got --------------------------------------------

class Recorder:
    """An MSE objective that records every set_epoch call."""

    def __init__(self, fail_at=None):
        self.calls, self.fail_at = [], fail_at

    def set_epoch(self, epochs_done):
        self.calls.append(epochs_done)

    def __call__(self, model, inputs, targets):
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            return {"mse_per_pixel": torch.tensor(math.nan, requires_grad=True)}
        return {"mse_per_pixel": F.mse_loss(model(inputs), targets)}


def test_fit_calls_set_epoch_before_each_step_and_evaluation_then_none():
    ah.set_seed(0)
    model = ah.MLPAutoencoder(latent_dim=2, hidden=(8,))
    x = torch.rand(10, 1, 28, 28)
    recorder = Recorder()
    ah.fit(model, x, x[:4], objective=recorder, epochs=2, batch_size=4, device="cpu", progress=False, log=False)
    third = 1 / 3                                                             # 10 images: 3 batches per epoch
    assert recorder.calls[:-1] == pytest.approx([0, third, 2 * third, 1.0, 1, 1 + third, 1 + 2 * third, 2.0])
    assert recorder.calls[-1] is None                                         # not training any more
    without_test = Recorder()
    ah.fit(model, x, objective=without_test, epochs=1, batch_size=5, device="cpu", progress=False, log=False)
    assert without_test.calls[:-1] == pytest.approx([0, 0.5]) and without_test.calls[-1] is None


def test_fit_ends_the_schedule_even_when_training_fails():
    ah.set_seed(0)
    model = ah.MLPAutoencoder(latent_dim=2, hidden=(8,))
    x = torch.rand(10, 1, 28, 28)
    recorder = Recorder(fail_at=2)
    with pytest.raises(FloatingPointError):
        ah.fit(model, x, objective=recorder, epochs=1, batch_size=4, device="cpu", progress=False, log=False)
    assert recorder.calls[-1] is None


def test_fit_rejects_a_set_epoch_that_is_not_callable():
    class Odd(Recorder):
        set_epoch = 3

    with pytest.raises(TypeError, match="objective.set_epoch must be a method set_epoch\\(epochs_done\\), got int"):
        ah.fit(ah.MLPAutoencoder(latent_dim=2, hidden=(8,)), torch.rand(4, 1, 28, 28), objective=Odd(), epochs=1,
               device="cpu", progress=False, log=False)


FASHION_SIZES = (2_000, 500)          # the fashion fixture (tests/conftest.py): training and held-out images


def test_warmup_in_a_real_fit_logs_the_ramp_and_lets_more_information_through(fashion):
    train, test = fashion
    histories = {}
    for warmup in (0, 2):
        ah.set_seed(0)
        vae = ah.MLPVAE(latent_dim=8, hidden=(128,))
        histories[warmup] = ah.fit(vae, train, test, objective=ah.vae_objective(kl_warmup_epochs=warmup), epochs=2,
                                   batch_size=100, device="cpu", progress=False, log=False)
    ramp = histories[2]
    # 20 batches per epoch: the weights of epoch 1 are 0, 0.025, ..., 0.475 (mean 0.2375), of epoch 2 0.5 ... 0.975
    assert ramp.train["kl_weight"] == pytest.approx([0.2375, 0.7375])
    assert ramp.test["kl_weight"] == pytest.approx([0.5, 1.0])                # the weight at each epoch's end
    assert "kl_weight" not in histories[0].train
    # a KL that costs less early on lets the encoder carry more information about the images
    assert ramp.train["kl_nats_per_image"][0] > 1.5 * histories[0].train["kl_nats_per_image"][0]
    # and the model still learns: far below the 784 ln 2 = 543 nats of an untrained decoder
    assert ramp.last("test", "recon_nats_per_image") + ramp.last("test", "kl_nats_per_image") < 0.75 * 784 * math.log(2)
