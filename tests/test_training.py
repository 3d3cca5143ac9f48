import math

import pytest
import torch

import autoenc_helpers as ah
from baselines import beats_mean_image, mean_image_mse


@pytest.fixture(scope="module")
def fashion():
    train = ah.load_dataset("fashion_mnist", "train", n=6_000, verbose=False)
    test = ah.load_dataset("fashion_mnist", "test", n=2_000, verbose=False)
    return train, test


@pytest.mark.parametrize("make_model, epochs", [(ah.MLPAutoencoder, 3), (ah.ConvAutoencoder, 5)],
                         ids=["mlp", "conv"])
def test_models_really_learn_on_fashion_mnist(fashion, make_model, epochs):
    train, test = fashion
    ah.set_seed(0)
    model = make_model()
    untrained = ah.evaluate(model, test)["mse_per_pixel"]
    history = ah.fit(model, train, test, epochs=epochs, device="cpu", progress=False, log=False)
    trained = history.last("test")
    assert trained < 0.5 * untrained, (trained, untrained)
    assert history.test["mse_per_pixel"][-1] < history.test["mse_per_pixel"][0]
    # well below the laziest answer, the mean training image for everything (tests/baselines.py)
    baseline = mean_image_mse(train.images, test.images)
    assert beats_mean_image(trained, baseline, margin=0.6), (trained, baseline)


def test_same_seed_same_losses(fashion):
    train, test = fashion
    runs = []
    for _ in range(2):
        ah.set_seed(1)
        model = ah.MLPAutoencoder(latent_dim=2, hidden=(32,))
        h = ah.fit(model, train.images[:1000], test.images[:200], epochs=2, progress=False, log=False, seed=5)
        runs.append((h.train["mse_per_pixel"], h.test["mse_per_pixel"]))
    assert runs[0] == runs[1]


def test_history_records_units_and_epochs(fashion, capsys):
    train, test = fashion
    model = ah.MLPAutoencoder(latent_dim=2, hidden=(16,))
    h = ah.fit(model, train.images[:500], test.images[:100], epochs=2, progress=True, log=True)
    assert h.epochs == 2 and list(h.train) == ["mse_per_pixel"] and list(h.test) == ["mse_per_pixel"]
    assert all(s > 0 for s in h.seconds)
    out = capsys.readouterr().out
    assert "epoch   2/2" in out and "test mse_per_pixel" in out
    assert h.last("train") == h.train["mse_per_pixel"][-1]
    with pytest.raises(KeyError, match="kl"):
        h.last("test", "kl")
    no_test = ah.fit(model, train.images[:200], epochs=1, progress=False, log=False)
    with pytest.raises(ValueError, match="no test values"):
        no_test.last("test")


def test_evaluate_is_the_whole_set_average(fashion):
    _, test = fashion
    model = ah.MLPAutoencoder().eval()
    with torch.no_grad():
        full = ah.squared_error(model(test.images[:777]), test.images[:777]).item()
    assert ah.evaluate(model, test.images[:777], batch_size=100)["mse_per_pixel"] == pytest.approx(full, rel=1e-5)


def test_nan_loss_stops_with_epoch_and_batch(fashion):
    train, _ = fashion
    calls = {"n": 0}

    def objective(model, inputs, targets):
        calls["n"] += 1
        loss = ah.squared_error(model(inputs), targets)
        return {"mse_per_pixel": loss * math.nan if calls["n"] == 3 else loss}

    with pytest.raises(FloatingPointError, match="mse_per_pixel became nan at epoch 1, batch 3 of 8"):
        ah.fit(ah.MLPAutoencoder(), train.images[:1000], epochs=1, objective=objective, progress=False, log=False)


def test_corrupt_feeds_noisy_inputs_against_clean_targets(fashion):
    train, _ = fashion
    clean = train.images[:256]
    seen = []

    def objective(model, inputs, targets):
        seen.append((inputs.clone(), targets.clone()))
        return ah.mse_objective(model, inputs, targets)

    ah.fit(ah.MLPAutoencoder(), clean, epochs=1, objective=objective, progress=False, log=False,
           corrupt=lambda x: (x + 0.1).clamp(0, 1))
    rows = {row.numpy().tobytes() for row in clean}
    for inputs, targets in seen:
        assert all(t.numpy().tobytes() in rows for t in targets), "the targets are the clean images"
        assert torch.equal(inputs, (targets + 0.1).clamp(0, 1)), "the inputs are the corrupted targets"


def test_the_held_out_loss_is_measured_on_corrupted_inputs_against_clean_targets(fashion):
    train, test = fashion
    ah.set_seed(0)
    model = ah.MLPAutoencoder(latent_dim=4, hidden=(16,))
    blank = lambda x: torch.zeros_like(x)                                     # noqa: E731  every input erased
    history = ah.fit(model, train.images[:256], test.images[:300], epochs=1, corrupt=blank, progress=False,
                     log=False, device="cpu")
    expected = float(((ah.predict(model, torch.zeros_like(test.images[:300])) - test.images[:300]) ** 2).mean())
    assert history.last("test") == pytest.approx(expected, rel=1e-5)


def test_weight_decay_reaches_the_optimiser():
    def no_gradient(model, inputs, targets):
        return {"zero": 0.0 * model(inputs).sum()}

    final = {}
    for decay in (0.0, 0.5):
        ah.set_seed(0)
        model = ah.MLPAutoencoder(latent_dim=2, hidden=(8,))
        start = torch.cat([p.detach().flatten() for p in model.parameters()]).norm()
        ah.fit(model, torch.rand(64, 1, 28, 28), objective=no_gradient, epochs=3, weight_decay=decay, progress=False,
               log=False, device="cpu")
        final[decay] = float(torch.cat([p.detach().flatten() for p in model.parameters()]).norm() / start)
    assert final[0.0] == pytest.approx(1.0) and final[0.5] < 0.99     # only the decay moves weights with no gradient


def test_the_seed_decides_the_shuffling(fashion):
    train, _ = fashion
    losses = {}
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        ah.set_seed(0)                                                    # the same initial weights every time
        model = ah.MLPAutoencoder(latent_dim=2, hidden=(8,))
        losses[run] = ah.fit(model, train.images[:512], epochs=2, seed=seed, progress=False, log=False,
                             device="cpu").train["mse_per_pixel"]
    assert losses["a"] == losses["b"] and losses["a"] != losses["c"]


@pytest.mark.parametrize("kwargs, match", [({"epochs": 0}, "epochs"), ({"batch_size": -1}, "batch_size")])
def test_fit_rejects_bad_settings(fashion, kwargs, match):
    train, _ = fashion
    with pytest.raises(ValueError, match=match):
        ah.fit(ah.MLPAutoencoder(), train, progress=False, **kwargs)


def test_fit_rejects_flat_images():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*\(10, 784\)"):
        ah.fit(ah.MLPAutoencoder(), torch.rand(10, 784), progress=False)


def test_predict_and_encode_shapes(fashion):
    _, test = fashion
    model = ah.MLPAutoencoder()
    assert ah.predict(model, test.images[:250], batch_size=100).shape == (250, 1, 28, 28)
    assert ah.encode(model, test, batch_size=300).shape == (len(test), 3)
    assert ah.encode(ah.PCA(2).fit(test.images), test).shape == (len(test), 2)


# -- reliability: stopped runs keep their history, modes are restored, bad inputs are named -------------------------


def _objective_failing_after(n_batches, exception):
    calls = {"n": 0}

    def objective(model, inputs, targets):
        calls["n"] += 1
        if calls["n"] > n_batches:
            if exception is None:                                  # a NaN loss
                return {"mse_per_pixel": ((model(inputs) - targets) ** 2).mean() * float("nan")}
            raise exception
        return ah.losses.mse_objective(model, inputs, targets)

    return objective


def test_pressing_stop_returns_the_finished_epochs_in_eval_mode(capsys):
    images = torch.rand(64, 1, 28, 28)
    model = ah.MLPAutoencoder(latent_dim=2, hidden=(8,))
    history = ah.fit(model, images, images[:16], objective=_objective_failing_after(3, KeyboardInterrupt()),
                     epochs=5, batch_size=32, device="cpu", progress=False, log=False)
    assert history.interrupted and history.epochs == 1
    assert len(history.train["mse_per_pixel"]) == 1 and len(history.test["mse_per_pixel"]) == 1
    assert not model.training
    assert "training stopped after 1 of 5 epochs" in capsys.readouterr().out


def test_a_nan_loss_hands_over_the_finished_epochs_in_eval_mode():
    images = torch.rand(64, 1, 28, 28)
    model = ah.MLPAutoencoder(latent_dim=2, hidden=(8,))
    with pytest.raises(FloatingPointError, match="became nan at epoch 2, batch 2") as info:
        ah.fit(model, images, objective=_objective_failing_after(3, None), epochs=5, batch_size=32, device="cpu",
               progress=False, log=False)
    assert info.value.history.epochs == 1 and not info.value.history.interrupted
    assert not model.training


class _Breaks(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(784, 784)

    def forward(self, x):
        raise RuntimeError("broken on purpose")


@pytest.mark.parametrize("call", [lambda m, x: ah.evaluate(m, x), lambda m, x: ah.predict(m, x),
                                  lambda m, x: ah.widgets.denoise_panels({"m": m}, x[0], "gaussian", 0.1)])
def test_eval_mode_is_restored_when_inference_raises(call):
    model = _Breaks().train()
    with pytest.raises(RuntimeError, match="broken on purpose"):
        call(model, torch.rand(3, 1, 28, 28))
    assert model.training


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_images_in_another_precision_are_named(dtype):
    model = ah.MLPAutoencoder(latent_dim=2, hidden=(8,))
    images = torch.rand(8, 1, 28, 28, dtype=dtype)
    for call in (lambda: ah.fit(model, images, epochs=1, progress=False, log=False), lambda: ah.predict(model, images)):
        with pytest.raises(TypeError, match=f"holds {dtype} values but the model computes in torch.float32"):
            call()


def test_inference_on_no_images_returns_empty_results():
    model = ah.MLPAutoencoder(latent_dim=2, hidden=(8,))
    assert ah.predict(model, torch.rand(0, 1, 28, 28)).shape == (0, 1, 28, 28)
    assert ah.encode(model, torch.rand(0, 1, 28, 28)).shape == (0, 2)
    mu, logvar = ah.encode(ah.MLPVAE(latent_dim=3, hidden=(8,)), torch.rand(0, 1, 28, 28))
    assert mu.shape == logvar.shape == (0, 3)


@pytest.mark.parametrize("train, test, message", [
    (torch.rand(0, 1, 28, 28), None, "train holds no images"),
    (torch.rand(8, 1, 28, 28) * 255, None, "train values run from .* to .*; .*divided by 255"),
    (torch.rand(8, 1, 28, 28), torch.full((4, 1, 28, 28), float("nan")), "test holds NaN or infinite values in 4 of"),
])
def test_bad_training_data_is_named_before_training(train, test, message):
    with pytest.raises(ValueError, match=message):
        ah.fit(ah.MLPAutoencoder(latent_dim=2, hidden=(8,)), train, test, epochs=1, progress=False, log=False)


@pytest.mark.parametrize("objective, message", [
    (lambda m, x, y: ((m(x) - y) ** 2).mean(), "must return a dict of tensors.*returned Tensor"),
    (lambda m, x, y: {}, "must return a dict of tensors"),
    (lambda m, x, y: {"loss": float(((m(x) - y) ** 2).mean())}, "returned a dict of \\['float'\\]"),
    (lambda m, x, y: {"loss": ((m(x) - y) ** 2).mean().detach()}, "'loss', carries no gradient"),
])
def test_an_objective_that_returns_the_wrong_thing_is_named(objective, message):
    with pytest.raises(TypeError, match=message):
        ah.fit(ah.MLPAutoencoder(latent_dim=2, hidden=(8,)), torch.rand(8, 1, 28, 28), objective=objective, epochs=1,
               progress=False, log=False)
