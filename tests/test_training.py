import math
import re
import time

import numpy as np
import pytest
import torch

import autoenc_helpers as ah
from baselines import beats_mean_image, mean_image_mse


FASHION_SIZES = (6_000, 2_000)          # the fashion fixture (tests/conftest.py): training and held-out images


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


def test_the_held_out_loss_is_measured_on_corrupted_inputs_against_clean_targets():
    # The held-out set sees the same corruption as training: its inputs are corrupt(images), its targets the images.
    # (This test once compared the logged loss with the model's loss on blank inputs. That cannot tell: a model
    # trained on blank inputs puts out nearly the same image for any input, and its loss on the clean inputs came
    # out within about 1e-6 (relative) of that on blank ones, inside the check's tolerance.)
    images = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    train, test = images[:12], images[12:]
    held_out = []

    def objective(model, inputs, targets):
        terms = ah.mse_objective(model, inputs, targets)
        if not model.training:
            held_out.append((inputs.clone(), targets.clone(), float(terms["mse_per_pixel"])))
        return terms

    history = ah.fit(_tiny(), train, test, objective=objective, corrupt=lambda x: 1 - x, epochs=1, batch_size=4,
                     device="cpu", progress=False, log=False)
    [(inputs, targets, loss)] = held_out                                    # one evaluation of one batch
    assert torch.equal(targets, test) and torch.equal(inputs, 1 - test)
    assert history.test["mse_per_pixel"] == [pytest.approx(loss, rel=1e-6)]


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
    (lambda m, x, y: {"loss": ((m(x) - y) ** 2).mean().detach()},
     r"^the objective's first entry, 'loss', carries no gradient: compute it from the model's output, without "
     r"\.detach\(\), \.item\(\) or no_grad\(\)$"),
])
def test_an_objective_that_returns_the_wrong_thing_is_named(objective, message):
    with pytest.raises(TypeError, match=message):
        ah.fit(ah.MLPAutoencoder(latent_dim=2, hidden=(8,)), torch.rand(8, 1, 28, 28), objective=objective, epochs=1,
               progress=False, log=False)


# -- what fit promises, pinned exactly (written against the surviving mutants of tools/mutation.py) ------------------


def _tiny():
    torch.manual_seed(0)
    return ah.MLPAutoencoder(latent_dim=2, hidden=(8,))


def test_fit_defaults_are_ten_epochs_seed_zero_a_bar_and_a_log(capsys, monkeypatch):
    monkeypatch.setenv("AUTOENC_DEVICE", "cpu")
    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    default = ah.fit(_tiny(), images)
    out, err = capsys.readouterr()
    assert default.epochs == 10 and len(default.train["mse_per_pixel"]) == 10
    assert "epoch  10/10" in out                                            # log=True by default
    assert "training:" in err and "| 0/10 [" in err                          # progress=True by default
    seeded = ah.fit(_tiny(), images, seed=0, progress=False, log=False)
    assert default.train == seeded.train                                    # seed=0 by default
    assert capsys.readouterr() == ("", "")                                  # progress=False, log=False: silent


def test_the_progress_bar_counts_batches_and_is_cleared_at_the_end(capsys):
    ah.fit(_tiny(), torch.rand(64, 1, 28, 28), epochs=2, batch_size=32, device="cpu", log=False)
    err = capsys.readouterr().err
    assert err.startswith("\rtraining:   0%|") and "| 0/4 [" in err and "?batch/s]" in err, err
    assert "epoch=2, mse_per_pixel=" in err
    # one step per batch: 2 of the 4 batches done when epoch 1 ends, all 4 when epoch 2 ends
    assert re.search(r"\| 2/4 \[[^]]*epoch=1, ", err) and re.search(r"\| 4/4 \[[^]]*epoch=2, ", err), err
    assert "\n" not in err and err.endswith("\r")                          # leave=False: nothing stays behind


def test_the_log_line_of_each_epoch_gives_the_train_and_held_out_values(capsys):
    images = torch.rand(48, 1, 28, 28)
    history = ah.fit(_tiny(), images[:32], images[32:], epochs=2, batch_size=16, device="cpu", progress=False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for e, line in enumerate(lines):
        assert line == (f"epoch {e + 1:>3}/2  train mse_per_pixel {history.train['mse_per_pixel'][e]:.5f}  "
                        f"test mse_per_pixel {history.test['mse_per_pixel'][e]:.5f}  ({history.seconds[e]:.1f} s)")


def test_fit_uses_the_device_it_is_given_and_reads_autoenc_device_quietly(capsys, monkeypatch):
    monkeypatch.setenv("AUTOENC_DEVICE", "bogus")
    history = ah.fit(_tiny(), torch.rand(8, 1, 28, 28), epochs=1, device="cpu", progress=False, log=False)
    assert history.epochs == 1                                              # the setting was not read
    with pytest.raises(ValueError, match="'bogus' \\(from AUTOENC_DEVICE\\)"):
        ah.fit(_tiny(), torch.rand(8, 1, 28, 28), epochs=1, progress=False, log=False)
    monkeypatch.setenv("AUTOENC_DEVICE", "cpu")
    ah.fit(_tiny(), torch.rand(8, 1, 28, 28), epochs=1, progress=False, log=False)
    assert capsys.readouterr() == ("", "")                                  # no device line


@pytest.mark.parametrize("batch_size, match", [(0, "got 0"), (32.0, "got 32.0"), ("32", "got '32'")])
def test_fit_names_a_batch_size_that_is_not_a_positive_int(batch_size, match):
    with pytest.raises(ValueError, match=f"batch_size must be a positive int, {match}"):
        ah.fit(_tiny(), torch.rand(8, 1, 28, 28), batch_size=batch_size, device="cpu", progress=False, log=False)


def test_fit_trains_one_image_at_a_time():
    history = ah.fit(_tiny(), torch.rand(3, 1, 28, 28), epochs=1, batch_size=1, device="cpu", progress=False,
                     log=False)
    assert history.epochs == 1


def test_each_set_is_named_in_the_errors_about_its_images():
    model, good = _tiny(), torch.rand(8, 1, 28, 28)
    shape_message = r"must be an ImageSet or a \(N, C, H, W\) tensor of images, got \({}, 784\)$"
    with pytest.raises(ValueError, match="^train " + shape_message.format(8)):
        ah.fit(model, torch.rand(8, 784), device="cpu", progress=False, log=False)
    with pytest.raises(ValueError, match="^test " + shape_message.format(4)):
        ah.fit(model, good, torch.rand(4, 784), device="cpu", progress=False, log=False)
    with pytest.raises(TypeError, match=r"^test holds torch.float64 values but the model computes in torch.float32; "
                                        r"convert the images with \.float\(\)"):
        ah.fit(model, good, good.double(), device="cpu", progress=False, log=False)


class _Codes(torch.nn.Module):
    """A model whose inputs are numbers 0 to 7, not images: it declares them as its input_range."""

    input_range = (0, 7)

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.scale * x


def _codes(low, high):
    values = torch.full((4, 1, 2, 2), float(low))
    values[-1, 0, 0, 0] = high
    return values


def test_a_declared_input_range_replaces_the_image_scale_check():
    fine = _codes(0, 7)                                                     # both ends of the range are allowed
    history = ah.fit(_Codes(), fine, fine, epochs=1, device="cpu", progress=False, log=False)
    assert history.epochs == 1
    for low, high in ((0, 8), (-1, 7)):                                      # one end outside is enough
        for train, test, what in ((_codes(low, high), fine, "train"), (fine, _codes(low, high), "test")):
            with pytest.raises(ValueError, match=f"^{what} values run from {low} to {high}; _Codes takes values "
                                                 "from 0 to 7$"):
                ah.fit(_Codes(), train, test, epochs=1, device="cpu", progress=False, log=False)


@pytest.mark.parametrize("low, high, ok", [(0, 1.5, True), (-1.5, 1, True), (0, 2, False), (-2, 1, False)])
def test_the_image_scale_check_allows_one_and_a_half_and_no_more(low, high, ok):
    images = torch.rand(4, 1, 28, 28)
    images[0, 0, 0, 0], images[0, 0, 0, 1] = low, high
    fit = lambda: ah.fit(_tiny(), images, epochs=1, device="cpu", progress=False, log=False)  # noqa: E731
    if ok:
        assert fit().epochs == 1
    else:
        with pytest.raises(ValueError, match=rf"^train values run from {low:g} to {high:g}; the course's models expect "
                                             r"images in \[0, 1\] \(or \[-1, 1\] for a Tanh output\)\. Pixel values "
                                             r"0-255 must be divided by 255 first$"):
            fit()


def test_non_finite_images_are_counted_out_of_the_set():
    images = torch.rand(5, 3, 4, 4)
    images[1, 2, 0, 0], images[3, 0, 1, 1] = float("nan"), float("inf")
    with pytest.raises(ValueError, match=r"^train holds NaN or infinite values in 2 of its 5 images; every loss "
                                         r"would become NaN\. Remove or repair those images$"):
        ah.fit(_Codes(), images, epochs=1, device="cpu", progress=False, log=False)


def test_a_nan_loss_names_the_learning_rate_and_what_to_check():
    def objective(model, inputs, targets):
        return {"mse_per_pixel": ((model(inputs) - targets) ** 2).mean() * float("nan")}

    with pytest.raises(FloatingPointError, match=r"^mse_per_pixel became nan at epoch 1, batch 1 of 2\. Training "
                                                 r"stopped\. Try a lower learning rate \(it is 0\.05\) and check that "
                                                 r"the inputs hold no NaN and lie in the range the model and loss "
                                                 r"expect\.$"):
        ah.fit(_tiny(), torch.rand(8, 1, 28, 28), objective=objective, lr=0.05, batch_size=4, device="cpu",
               progress=False, log=False)


def _labelled(n):
    return ah.ImageSet(torch.rand(n, 1, 28, 28), torch.arange(n) % 3, None, "toy", "train", "random")


def test_with_labels_hands_each_batch_its_own_labels():
    train, test = _labelled(6), _labelled(4)
    seen = []

    def objective(model, inputs, targets, labels):
        rows = [(train.images == t).flatten(1).all(1).nonzero().item() if model.training else None for t in targets]
        seen.append((model.training, rows, labels.tolist()))
        return ah.mse_objective(model, inputs, targets)

    history = ah.fit(_tiny(), train, test, objective=objective, with_labels=True, epochs=1, batch_size=4, device="cpu",
                     progress=False, log=False)
    assert history.epochs == 1
    steps = [(rows, labels) for training, rows, labels in seen if training]
    assert len(steps) == 2 and sorted(r for rows, _ in steps for r in rows) == list(range(6))
    for rows, labels in steps:                                              # the labels of the very images
        assert labels == [int(train.labels[r]) for r in rows]
    assert [labels for training, _, labels in seen if not training] == [test.labels.tolist()]


def test_with_labels_needs_image_sets_and_says_so_before_training():
    calls = []

    def objective(model, inputs, targets, labels):
        calls.append(1)
        return ah.mse_objective(model, inputs, targets)

    for train, test, what, shape in ((torch.rand(6, 1, 28, 28), None, "train", (6, 1, 28, 28)),
                                     (_labelled(6), torch.rand(4, 1, 28, 28), "test", (4, 1, 28, 28))):
        with pytest.raises(ValueError, match=rf"^with_labels=True hands each batch's labels to the objective, so "
                                             rf"{what} must be an ImageSet \(images with labels\), got a tensor of "
                                             rf"shape {re.escape(str(shape))}$"):
            ah.fit(_tiny(), train, test, objective=objective, with_labels=True, epochs=1, device="cpu",
                   progress=False, log=False)
    assert calls == []                                                      # no step was taken


class _Schedule:
    def __init__(self):
        self.calls = []

    def set_epoch(self, epochs_done):
        self.calls.append(epochs_done)

    def __call__(self, model, inputs, targets):
        return ah.mse_objective(model, inputs, targets)


def test_set_epoch_hears_the_fraction_of_training_done_before_each_step_and_none_at_the_end():
    images = torch.rand(12, 1, 28, 28)
    schedule = _Schedule()
    ah.fit(_tiny(), images[:8], images[8:], objective=schedule, epochs=2, batch_size=4, device="cpu", progress=False,
           log=False)
    assert schedule.calls == [0.0, 0.5, 1.0, 1.0, 1.5, 2.0, None]
    schedule = _Schedule()
    ah.fit(_tiny(), images[:8], objective=schedule, epochs=1, batch_size=4, device="cpu", progress=False, log=False)
    assert schedule.calls == [0.0, 0.5, None]                               # no held-out set, no evaluation call


def test_a_set_epoch_that_is_not_a_method_is_named():
    schedule = _Schedule()
    schedule.set_epoch = 3
    with pytest.raises(TypeError, match=r"^objective\.set_epoch must be a method set_epoch\(epochs_done\), got int$"):
        ah.fit(_tiny(), torch.rand(8, 1, 28, 28), objective=schedule, epochs=1, device="cpu", progress=False, log=False)


class _Counting(ah.MLPAutoencoder):
    def __init__(self):
        super().__init__(latent_dim=2, hidden=(8,))
        self.steps = []

    def after_step(self):
        self.steps.append(self.decoder[0].weight.detach().clone())


def test_after_step_runs_after_every_optimiser_step():
    torch.manual_seed(0)
    model = _Counting()
    start = model.decoder[0].weight.detach().clone()
    ah.fit(model, torch.rand(12, 1, 28, 28), epochs=2, batch_size=4, device="cpu", progress=False, log=False)
    assert len(model.steps) == 6                                            # 2 epochs of 3 steps
    assert not torch.equal(model.steps[0], start)                           # the weights had already moved


def test_stop_during_the_held_out_evaluation_drops_that_epochs_train_values(capsys):
    images = torch.rand(48, 1, 28, 28)
    evaluations = {"n": 0}

    def objective(model, inputs, targets):
        if not model.training:
            evaluations["n"] += 1
            if evaluations["n"] == 2:
                raise KeyboardInterrupt
        return ah.mse_objective(model, inputs, targets)

    history = ah.fit(_tiny(), images[:32], images[32:], objective=objective, epochs=3, batch_size=16, device="cpu",
                     progress=False, log=False)
    assert history.interrupted and history.epochs == 1
    assert len(history.train["mse_per_pixel"]) == len(history.test["mse_per_pixel"]) == len(history.seconds) == 1
    assert capsys.readouterr().out == ("training stopped after 1 of 3 epochs; the history of the finished epochs is "
                                       "returned (the model keeps the weights it had when stopped)\n")


def test_history_last_reads_the_held_out_split_by_default_and_names_a_wrong_split():
    history = ah.History(train={"mse_per_pixel": [0.5, 0.4]}, test={"mse_per_pixel": [0.6, 0.45]}, seconds=[1.0, 1.0])
    assert history.last() == 0.45 and history.last("train") == 0.4
    with pytest.raises(ValueError, match=r"^split must be 'train' or 'test', got 'valid'$"):
        history.last("valid")


def test_make_optimizer_is_adam_on_all_parameters_with_the_given_settings():
    model = _tiny()
    default = ah.training.make_optimizer(model)
    assert type(default) is torch.optim.Adam
    assert default.param_groups[0]["lr"] == 1e-3 and default.param_groups[0]["weight_decay"] == 0.0
    assert default.defaults["fused"] is True                               # the CPU has a fused Adam in torch >= 2.4
    chosen = ah.training.make_optimizer(model, lr=0.02, weight_decay=0.1)
    assert chosen.param_groups[0]["lr"] == 0.02 and chosen.param_groups[0]["weight_decay"] == 0.1
    assert chosen.defaults["fused"] is True
    assert [id(p) for p in chosen.param_groups[0]["params"]] == [id(p) for p in model.parameters()]


def test_make_optimizer_falls_back_to_plain_adam_where_there_is_no_fused_kernel(monkeypatch):
    real = torch.optim.Adam

    def no_fused(params, **kwargs):
        if "fused" in kwargs:
            raise RuntimeError("fused=True requires all the params to be floating point Tensors of supported devices")
        return real(params, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", no_fused)
    model = _tiny()
    for kwargs, lr, decay in (({}, 1e-3, 0.0), ({"lr": 0.02, "weight_decay": 0.1}, 0.02, 0.1)):
        optimizer = ah.training.make_optimizer(model, **kwargs)
        assert type(optimizer) is real and not optimizer.defaults["fused"]
        assert optimizer.param_groups[0]["lr"] == lr and optimizer.param_groups[0]["weight_decay"] == decay
        assert [id(p) for p in optimizer.param_groups[0]["params"]] == [id(p) for p in model.parameters()]


def _channels_last(model):
    weights = [p for p in model.parameters() if p.dim() == 4]
    return (all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
            and not all(p.is_contiguous() for p in weights))


def test_use_fast_layout_switches_only_convolutional_models_on_the_cpu_and_only_when_asked(monkeypatch):
    torch.manual_seed(0)
    assert _channels_last(ah.training.use_fast_layout(ah.ConvAutoencoder(), torch.device("cpu")))
    assert not _channels_last(ah.training.use_fast_layout(ah.ConvAutoencoder(), torch.device("cuda")))  # not moved
    monkeypatch.setattr(ah.training, "FAST_LAYOUT", False)
    assert not _channels_last(ah.training.use_fast_layout(ah.ConvAutoencoder(), torch.device("cpu")))


class _Recording(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.sizes = []

    def encode(self, x):
        self.sizes.append(x.shape[0])
        return x.flatten(1)[:, :2]


def test_encode_works_in_batches_of_the_size_asked():
    model = _Recording()
    assert ah.encode(model, torch.rand(2500, 1, 2, 2)).shape == (2500, 2)
    assert model.sizes == [1000, 1000, 500]                                # 1000 by default
    model.sizes.clear()
    ah.encode(model, torch.rand(700, 1, 2, 2), batch_size=300)
    assert model.sizes == [300, 300, 100]


# -- written against the survivors of the complete run (tests/MUTATION.md, training) --------------------------------


def test_the_train_value_of_an_epoch_is_the_average_over_its_images():
    # 10 images in batches of 4, 4 and 2: each batch's value counts as many times as it has images
    images = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    steps = []

    def objective(model, inputs, targets):
        terms = ah.mse_objective(model, inputs, targets)
        steps.append((float(terms["mse_per_pixel"]), inputs.shape[0]))
        return terms

    history = ah.fit(_tiny(), images, objective=objective, epochs=2, batch_size=4, device="cpu", progress=False,
                     log=False)
    assert [size for _, size in steps] == [4, 4, 2, 4, 4, 2]
    expected = [sum(value * size for value, size in steps[e * 3:e * 3 + 3]) / 10 for e in range(2)]
    assert history.train["mse_per_pixel"] == pytest.approx(expected, rel=1e-12)


def test_the_seconds_of_each_epoch_are_its_wall_time():
    start = time.perf_counter()
    history = ah.fit(_tiny(), torch.rand(8, 1, 28, 28), torch.rand(4, 1, 28, 28), epochs=2, batch_size=4,
                     device="cpu", progress=False, log=False)
    wall = time.perf_counter() - start
    assert len(history.seconds) == 2
    assert all(s > 0 for s in history.seconds) and sum(history.seconds) <= wall, (history.seconds, wall)


@pytest.mark.parametrize("data, got", [(np.zeros((8, 1, 28, 28), dtype=np.float32), "ndarray"),
                                       ([[0.0] * 784] * 8, "list")])
def test_images_that_are_not_a_tensor_are_named_by_their_type(data, got):
    # a numpy array has a shape, but the message names its type: the fix is torch.from_numpy, not a reshape
    model, good = _tiny(), torch.rand(8, 1, 28, 28)
    message = rf"must be an ImageSet or a \(N, C, H, W\) tensor of images, got {got}$"
    with pytest.raises(ValueError, match="^train " + message):
        ah.fit(model, data, device="cpu", progress=False, log=False)
    with pytest.raises(ValueError, match="^test " + message):
        ah.fit(model, good, data, device="cpu", progress=False, log=False)
    with pytest.raises(ValueError, match="^data " + message):
        ah.predict(model, data)


@pytest.mark.parametrize("dtype, cast", [(torch.float64, r"\.double\(\)"), (torch.float16, r"\.half\(\)"),
                                         (torch.bfloat16, r"\.to\(torch\.bfloat16\)")])
def test_the_precision_error_says_how_to_convert_to_the_models_dtype(dtype, cast):
    model = _tiny().to(dtype)                                               # a model in another precision
    message = (rf"holds torch\.float32 values but the model computes in {re.escape(str(dtype))}; convert the images "
               rf"with {cast} \(the course's data is float32\)$")
    with pytest.raises(TypeError, match="^train " + message):
        ah.fit(model, torch.rand(8, 1, 28, 28), device="cpu", progress=False, log=False)
    with pytest.raises(TypeError, match="^data " + message):
        ah.predict(model, torch.rand(8, 1, 28, 28))


class _TwoWeights(torch.nn.Module):
    """y = a * x; the weight b enters the loss of the first step only."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.ones(1))
        self.b = torch.nn.Parameter(torch.ones(1))
        self.b_after_step = []

    def forward(self, x):
        return self.a * x

    def after_step(self):
        self.b_after_step.append(float(self.b))


def test_a_weight_that_a_steps_loss_does_not_reach_stays_where_it_is():
    # fit clears the gradients to None before each step, so Adam skips a weight that the step's loss does not
    # reach: its momentum from earlier steps does not carry it on (a zeroed gradient would move it)
    model, steps = _TwoWeights(), []

    def objective(model, inputs, targets):
        steps.append(1)
        loss = ((model(inputs) - targets) ** 2).mean()
        return {"loss": loss + model.b ** 2 if len(steps) == 1 else loss}

    ah.fit(model, torch.rand(12, 1, 2, 2), objective=objective, epochs=1, batch_size=4, lr=0.1, device="cpu",
           progress=False, log=False)
    first, *later = model.b_after_step
    assert first < 1 and later == [first, first], model.b_after_step       # moved by step 1 only

