import math

import pytest
import torch

import autoenc_helpers as ah


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
    # better than the laziest decoder: the mean training image for everything
    mean_image = train.images.mean(0, keepdim=True).expand_as(test.images)
    assert trained < ah.squared_error(mean_image, test.images).item()


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
    seen = []

    def objective(model, inputs, targets):
        seen.append(torch.equal(inputs, targets))
        return ah.mse_objective(model, inputs, targets)

    ah.fit(ah.MLPAutoencoder(), train.images[:256], epochs=1, objective=objective, progress=False, log=False,
           corrupt=lambda x: (x + 0.1).clamp(0, 1))
    assert seen and not any(seen)


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
