"""The classroom cache: the first run trains and saves, a later run loads, a changed setting retrains,
and a corrupt or mismatched checkpoint is reported and retrained, never a crash."""

import pytest
import torch

import autoenc_helpers as ah
from autoenc_helpers import cache


@pytest.fixture(scope="module")
def data():
    train = ah.load_dataset("fashion_mnist", "train", n=1_000, verbose=False)
    test = ah.load_dataset("fashion_mnist", "test", n=200, verbose=False)
    return train, test


def _model(seed=0, latent_dim=2):
    ah.set_seed(seed)
    return ah.MLPVAE(latent_dim=latent_dim, hidden=(32,))


def _run(folder, data, *, seed=0, latent_dim=2, **kwargs):
    settings = dict(objective=ah.vae_objective(), epochs=1, device="cpu", progress=False, log=False)
    settings.update(kwargs)
    model = _model(seed, latent_dim)
    history = ah.cached_fit("tiny_vae", model, *data, folder=folder, **settings)
    return model, history


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_first_run_trains_and_saves_then_a_second_run_loads(tmp_path, data, capsys):
    trained, first = _run(tmp_path, data)
    assert "saved checkpoint tiny_vae-" in capsys.readouterr().out
    files = list(tmp_path.glob("tiny_vae-*.pt"))
    assert len(files) == 1

    loaded, second = _run(tmp_path, data)
    out = capsys.readouterr().out
    assert "loaded tiny_vae from checkpoint" in out and "no training" in out
    assert torch.equal(_weights(trained), _weights(loaded))          # the trained weights, not the fresh ones
    assert not torch.equal(_weights(loaded), _weights(_model()))
    assert second.test == first.test and second.train == first.train and second.epochs == 1
    assert not loaded.training
    assert list(tmp_path.glob("tiny_vae-*.pt")) == files             # nothing new was written


@pytest.mark.parametrize("change", [dict(epochs=2), dict(lr=3e-3), dict(seed=1), dict(latent_dim=3),
                                    dict(objective=ah.vae_objective(recon_factor=2.0)), dict(batch_size=64)],
                         ids=lambda c: next(iter(c)))
def test_a_changed_setting_retrains(tmp_path, data, capsys, change):
    _run(tmp_path, data)
    capsys.readouterr()
    _run(tmp_path, data, **change)
    out = capsys.readouterr().out
    assert "saved checkpoint" in out and "loaded" not in out
    assert len(list(tmp_path.glob("tiny_vae-*.pt"))) == 2


def test_a_different_data_set_retrains(tmp_path, data, capsys):
    train, test = data
    _run(tmp_path, data)
    _run(tmp_path, (train.images[:900], test))
    assert capsys.readouterr().out.count("saved checkpoint") == 2


def test_where_and_how_loudly_do_not_count(data):
    model = _model()
    a = cache.settings_of(model, *data, epochs=1, device="cpu", progress=False, log=False)
    b = cache.settings_of(model, *data, epochs=1)
    assert a == b


def test_a_corrupt_checkpoint_is_reported_and_retrained(tmp_path, data, capsys):
    trained, _ = _run(tmp_path, data)
    (path,) = tmp_path.glob("tiny_vae-*.pt")
    path.write_bytes(path.read_bytes()[:200])                        # a truncated download, say
    capsys.readouterr()
    retrained, _ = _run(tmp_path, data)
    out = capsys.readouterr().out
    assert f"checkpoint {path.name} cannot be used: the file cannot be read" in out
    assert "Training again" in out and "saved checkpoint" in out
    assert torch.equal(_weights(trained), _weights(retrained))       # same settings, same seed: same model
    _, _ = _run(tmp_path, data)
    assert "loaded tiny_vae" in capsys.readouterr().out               # the rewritten file is good


def test_a_checkpoint_for_other_settings_is_reported_and_retrained(tmp_path, data, capsys):
    _run(tmp_path, data)
    (path,) = tmp_path.glob("tiny_vae-*.pt")
    record = torch.load(path, weights_only=True)
    record["settings"] = record["settings"].replace('"epochs": 1', '"epochs": 7')
    torch.save(record, path)
    capsys.readouterr()
    _run(tmp_path, data)
    assert "cannot be used: it was saved for other settings. Training again." in capsys.readouterr().out


def test_weights_that_do_not_fit_are_reported_and_retrained(tmp_path, data, capsys):
    _run(tmp_path, data)
    (path,) = tmp_path.glob("tiny_vae-*.pt")
    record = torch.load(path, weights_only=True)
    record["state_dict"].pop("mu_head.bias")
    torch.save(record, path)
    capsys.readouterr()
    model, history = _run(tmp_path, data)
    assert "its weights do not fit the model" in capsys.readouterr().out
    assert history.epochs == 1 and not model.training


def test_a_file_that_is_not_data_is_refused_without_running_it(tmp_path, data, capsys):
    _run(tmp_path, data)
    (path,) = tmp_path.glob("tiny_vae-*.pt")

    class Payload:                                                   # unpickling this would call print
        def __reduce__(self):
            return (print, ("code ran from a checkpoint",))

    torch.save({"format": cache.FORMAT, "payload": Payload()}, path)
    capsys.readouterr()
    _run(tmp_path, data)
    out = capsys.readouterr().out
    assert "code ran from a checkpoint" not in out
    assert "the file cannot be read" in out and "saved checkpoint" in out


def test_retrain_forces_training(tmp_path, data, capsys):
    _run(tmp_path, data)
    _run(tmp_path, data, retrain=True)
    assert capsys.readouterr().out.count("saved checkpoint") == 2


def test_default_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENC_CHECKPOINTS", str(tmp_path / "elsewhere"))
    assert cache.checkpoint_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("AUTOENC_CHECKPOINTS")
    assert cache.checkpoint_dir() == ah.data.data_root() / "checkpoints"


def test_bad_arguments_are_named(tmp_path, data):
    with pytest.raises(ValueError, match="checkpoint name 'my model/1'"):
        ah.cached_fit("my model/1", _model(), *data, folder=tmp_path, epochs=1)
    with pytest.raises(TypeError, match=r"no argument\(s\) \['epoch'\]"):
        ah.cached_fit("ok", _model(), *data, folder=tmp_path, epoch=1)
    with pytest.raises(ValueError, match="ready-made optimizer"):
        model = _model()
        ah.cached_fit("ok", model, *data, folder=tmp_path, optimizer=torch.optim.SGD(model.parameters(), 0.1))
