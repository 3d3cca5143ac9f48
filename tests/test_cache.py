"""The classroom cache: the first run trains and saves, a later run loads, a changed setting retrains,
and a corrupt or mismatched checkpoint is reported and retrained, never a crash."""

import json

import pytest
import torch

import autoenc_helpers as ah
from autoenc_helpers import cache


FASHION_SIZES = (1_000, 200)          # the fashion fixture (tests/conftest.py): training and held-out images


def _model(seed=0, latent_dim=2):
    ah.set_seed(seed)
    return ah.MLPVAE(latent_dim=latent_dim, hidden=(32,))


def _run(folder, fashion, *, seed=0, latent_dim=2, **kwargs):
    settings = dict(objective=ah.vae_objective(), epochs=1, device="cpu", progress=False, log=False)
    settings.update(kwargs)
    model = _model(seed, latent_dim)
    history = ah.cached_fit("tiny_vae", model, *fashion, folder=folder, **settings)
    return model, history


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_first_run_trains_and_saves_then_a_second_run_loads(tmp_path, fashion, capsys):
    trained, first = _run(tmp_path, fashion)
    assert "saved checkpoint tiny_vae-" in capsys.readouterr().out
    files = list(tmp_path.glob("tiny_vae-*.pt"))
    assert len(files) == 1

    loaded, second = _run(tmp_path, fashion)
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
def test_a_changed_setting_retrains(tmp_path, fashion, capsys, change):
    _run(tmp_path, fashion)
    capsys.readouterr()
    _run(tmp_path, fashion, **change)
    out = capsys.readouterr().out
    assert "saved checkpoint" in out and "loaded" not in out
    assert len(list(tmp_path.glob("tiny_vae-*.pt"))) == 2


def test_a_different_data_set_retrains(tmp_path, fashion, capsys):
    train, test = fashion
    _run(tmp_path, fashion)
    _run(tmp_path, (train.images[:900], test))
    assert capsys.readouterr().out.count("saved checkpoint") == 2


def test_where_and_how_loudly_do_not_count(fashion):
    model = _model()
    a = cache.settings_of(model, *fashion, epochs=1, device="cpu", progress=False, log=False)
    b = cache.settings_of(model, *fashion, epochs=1)
    assert a == b


def test_a_corrupt_checkpoint_is_reported_and_retrained(tmp_path, fashion, capsys):
    trained, _ = _run(tmp_path, fashion)
    (path,) = tmp_path.glob("tiny_vae-*.pt")
    path.write_bytes(path.read_bytes()[:200])                        # a truncated download, say
    capsys.readouterr()
    retrained, _ = _run(tmp_path, fashion)
    out = capsys.readouterr().out
    assert f"checkpoint {path.name} cannot be used: the file cannot be read" in out
    assert "Training again" in out and "saved checkpoint" in out
    assert torch.equal(_weights(trained), _weights(retrained))       # same settings, same seed: same model
    _, _ = _run(tmp_path, fashion)
    assert "loaded tiny_vae" in capsys.readouterr().out               # the rewritten file is good


def test_a_checkpoint_for_other_settings_is_reported_and_retrained(tmp_path, fashion, capsys):
    _run(tmp_path, fashion)
    (path,) = tmp_path.glob("tiny_vae-*.pt")
    record = torch.load(path, weights_only=True)
    record["settings"] = record["settings"].replace('"epochs": 1', '"epochs": 7')
    torch.save(record, path)
    capsys.readouterr()
    _run(tmp_path, fashion)
    assert "cannot be used: it was saved for other settings. Training again." in capsys.readouterr().out


def test_weights_that_do_not_fit_are_reported_and_retrained(tmp_path, fashion, capsys):
    _run(tmp_path, fashion)
    (path,) = tmp_path.glob("tiny_vae-*.pt")
    record = torch.load(path, weights_only=True)
    record["state_dict"].pop("mu_head.bias")
    torch.save(record, path)
    capsys.readouterr()
    model, history = _run(tmp_path, fashion)
    assert "its weights do not fit the model" in capsys.readouterr().out
    assert history.epochs == 1 and not model.training


def test_checkpoints_are_read_with_weights_only_whatever_torchs_default(tmp_path, fashion, monkeypatch):
    """torch 2.4 and 2.5 (inside pyproject's range) load with weights_only=False by default, which would run a
    pickled payload; the cache asks for weights_only=True itself, so the refusal above holds on every torch."""
    _run(tmp_path, fashion)
    asked, real_load = [], torch.load

    def load(*args, **kwargs):
        asked.append(kwargs.get("weights_only", "not given"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    _run(tmp_path, fashion)
    assert asked and all(value is True for value in asked), asked


def test_a_file_that_is_not_data_is_refused_without_running_it(tmp_path, fashion, capsys):
    _run(tmp_path, fashion)
    (path,) = tmp_path.glob("tiny_vae-*.pt")

    class Payload:                                                   # unpickling this would call print
        def __reduce__(self):
            return (print, ("code ran from a checkpoint",))

    torch.save({"format": cache.FORMAT, "payload": Payload()}, path)
    capsys.readouterr()
    _run(tmp_path, fashion)
    out = capsys.readouterr().out
    assert "code ran from a checkpoint" not in out
    assert "the file cannot be read" in out and "saved checkpoint" in out


def test_retrain_forces_training(tmp_path, fashion, capsys):
    _run(tmp_path, fashion)
    _run(tmp_path, fashion, retrain=True)
    assert capsys.readouterr().out.count("saved checkpoint") == 2


def test_default_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOENC_CHECKPOINTS", str(tmp_path / "elsewhere"))
    assert cache.checkpoint_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("AUTOENC_CHECKPOINTS")
    assert cache.checkpoint_dir() == ah.data.data_root() / "checkpoints"


def test_bad_arguments_are_named(tmp_path, fashion):
    with pytest.raises(ValueError, match="checkpoint name 'my model/1'"):
        ah.cached_fit("my model/1", _model(), *fashion, folder=tmp_path, epochs=1)
    with pytest.raises(TypeError, match=r"no argument\(s\) \['epoch'\]"):
        ah.cached_fit("ok", _model(), *fashion, folder=tmp_path, epoch=1)
    with pytest.raises(ValueError, match="ready-made optimizer"):
        model = _model()
        ah.cached_fit("ok", model, *fashion, folder=tmp_path, optimizer=torch.optim.SGD(model.parameters(), 0.1))


# -- reliability: never a wrong model, never a lost run -----------------------------------------------------------


def _sparse_run(folder, weight, penalty="kl", capsys=None):
    data = torch.rand(64, 1, 28, 28)
    torch.manual_seed(0)
    model = ah.SparseAutoencoder(64)
    ah.cached_fit("sae", model, data, objective=ah.sparse_objective(penalty, weight=weight), epochs=1, folder=folder,
                  device="cpu", progress=False, log=False)
    return model


def test_a_changed_penalty_weight_or_kind_retrains(tmp_path, capsys):
    _sparse_run(tmp_path, 0.0)
    _sparse_run(tmp_path, 5.0)
    _sparse_run(tmp_path, 5.0, penalty="l1")
    out = capsys.readouterr().out
    assert out.count("saved checkpoint sae-") == 3 and "loaded" not in out


def _key(objective=None, corrupt=None, model=None):
    torch.manual_seed(0)
    model = model or ah.MLPAutoencoder(latent_dim=2, hidden=(8,))
    return cache._digest(cache.settings_of(model, torch.rand(8, 1, 28, 28), objective=objective, corrupt=corrupt))


def _weighted(model, inputs, targets, weight=1.0):
    return {"loss": weight * ((model(inputs) - targets) ** 2).mean()}


WEIGHT = 1.0


def _reads_a_global(model, inputs, targets):
    return {"loss": WEIGHT * ((model(inputs) - targets) ** 2).mean()}


def test_the_values_a_partial_a_closure_or_a_global_captures_are_in_the_key(monkeypatch):
    import functools

    assert _key(functools.partial(_weighted, weight=1.0)) != _key(functools.partial(_weighted, weight=2.0))
    assert _key(functools.partial(_weighted, weight=1.0)) == _key(functools.partial(_weighted, weight=1.0))

    def closure(weight):
        return lambda model, x, y: {"loss": weight * ((model(x) - y) ** 2).mean()}

    assert _key(closure(1.0)) != _key(closure(3.0))
    before = _key(_reads_a_global)
    monkeypatch.setattr(__import__(__name__), "WEIGHT", 4.0)
    assert _key(_reads_a_global) != before


def test_a_callable_whose_settings_cannot_be_read_trains_and_says_so(tmp_path, capsys):
    class Loss:
        def __call__(self, model, inputs, targets):
            return {"loss": ((model(inputs) - targets) ** 2).mean()}

    for _ in range(2):
        history = ah.cached_fit("opaque", ah.MLPAutoencoder(latent_dim=2, hidden=(8,)), torch.rand(16, 1, 28, 28),
                                objective=Loss(), epochs=1, folder=tmp_path, progress=False, log=False)
        assert history.epochs == 1
    out = capsys.readouterr().out
    assert out.count("training without the cache") == 2 and "Loss objects declare no settings" in out
    assert not list(tmp_path.iterdir())


def _model_class(forward_source):
    scope = {"nn": torch.nn, "__name__": "__main__"}       # as in a notebook
    exec("class Tiny(nn.Module):\n"
         "    def __init__(self):\n        super().__init__()\n        self.layer = nn.Linear(784, 784)\n"
         "    def forward(self, x):\n        " + forward_source + "\n", scope)
    torch.manual_seed(0)
    return scope["Tiny"]()


def test_the_models_code_is_in_the_key():
    plain = _model_class("return self.layer(x.flatten(1)).reshape(x.shape)")
    edited = _model_class("return torch_sigmoid(self.layer(x.flatten(1))).reshape(x.shape)")
    same = _model_class("return self.layer(x.flatten(1)).reshape(x.shape)")
    assert repr(plain) == repr(edited)                           # the architecture alone cannot tell them apart
    assert _key(model=plain) != _key(model=edited) and _key(model=plain) == _key(model=same)


@pytest.mark.parametrize("failure", [RuntimeError("PytorchStreamWriter failed writing file: file write failed"),
                                     OSError(28, "No space left on device")])
def test_a_failed_save_keeps_the_trained_model_and_leaves_no_partial_file(tmp_path, fashion, monkeypatch, capsys,
                                                                          failure):
    real_save = torch.save

    def save_then_fail(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)                       # the partial file exists...
        raise failure                                            # ...and then the disk gives up

    monkeypatch.setattr(torch, "save", save_then_fail)
    model, history = _run(tmp_path, fashion)
    assert history.epochs == 1 and not model.training
    out = capsys.readouterr().out
    assert "could not save the checkpoint" in out and "trained but will be trained again next time" in out
    assert not list(tmp_path.iterdir())


def test_a_folder_that_is_a_file_does_not_stop_the_lesson(tmp_path, fashion, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    model, history = _run(blocker / "checkpoints", fashion)
    assert history.epochs == 1
    assert "could not save the checkpoint" in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", bytes(range(256)) * 8])
def test_empty_truncated_and_garbage_checkpoints_are_reported_and_retrained(tmp_path, fashion, capsys, content):
    _run(tmp_path, fashion)
    (path,) = tmp_path.glob("tiny_vae-*.pt")
    path.write_bytes(content)
    capsys.readouterr()
    _, history = _run(tmp_path, fashion)
    out = capsys.readouterr().out
    assert "cannot be used: the file cannot be read" in out and "Training again" in out and history.epochs == 1


@pytest.mark.parametrize("damage", ["no history", "one tensor of the wrong size", "a missing tensor"])
def test_a_checkpoint_that_cannot_be_used_leaves_the_model_untouched(tmp_path, fashion, damage):
    _run(tmp_path, fashion)
    (path,) = tmp_path.glob("tiny_vae-*.pt")
    record = torch.load(path, weights_only=True)
    if damage == "no history":
        del record["history"]
    elif damage == "one tensor of the wrong size":
        last = list(record["state_dict"])[-1]
        record["state_dict"][last] = torch.zeros(3)
    else:
        record["state_dict"].pop(next(iter(record["state_dict"])))
    torch.save(record, path)
    model = _model()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError):
        cache._load(path, model, None, torch.device("cpu"))
    for name, value in model.state_dict().items():
        assert torch.equal(value, initial[name]), name


def test_a_file_holding_code_gets_the_friendly_message(tmp_path, fashion, capsys):
    _run(tmp_path, fashion)
    (path,) = tmp_path.glob("tiny_vae-*.pt")
    torch.save({"format": cache.FORMAT, "payload": cache.Unkeyable("not data")}, path)   # a pickled object
    capsys.readouterr()
    _run(tmp_path, fashion)
    assert "it holds Python objects other than tensors and plain values" in capsys.readouterr().out


def test_stopped_training_is_returned_but_never_saved(tmp_path, fashion, capsys):
    calls = {"n": 0}

    def stops_in_the_second_epoch(model, inputs, targets):
        calls["n"] += 1
        if calls["n"] > 9:                                        # 1,000 images / 128 = 8 batches per epoch
            raise KeyboardInterrupt
        return ah.vae_objective()(model, inputs, targets)

    history = ah.cached_fit("stopped", _model(), *fashion, objective=stops_in_the_second_epoch, epochs=3,
                            folder=tmp_path, device="cpu", progress=False, log=False)
    assert history.interrupted and history.epochs == 1
    assert "so no checkpoint is saved" in capsys.readouterr().out and not list(tmp_path.iterdir())


def test_a_reused_corruption_is_keyed_by_where_its_stream_stands():
    used, fresh = ah.Corruption("gaussian", 0.3, seed=1), ah.Corruption("gaussian", 0.3, seed=1)
    assert _key(corrupt=used) == _key(corrupt=fresh)
    used(torch.rand(2, 1, 28, 28))
    again = ah.Corruption("gaussian", 0.3, seed=1)
    again(torch.rand(2, 1, 28, 28))
    assert _key(corrupt=used) != _key(corrupt=fresh)             # it would draw other noise
    assert _key(corrupt=used) == _key(corrupt=again)             # the same use in a rerun: the same key
    assert "0x" not in json.dumps(cache.settings_of(ah.MLPAutoencoder(2, (8,)), torch.zeros(4, 1, 28, 28),
                                                    corrupt=used), default=repr)


def test_each_setting_that_decides_the_weights_changes_the_key(fashion):
    train, test = fashion

    def key(train=train, test=test, **kwargs):
        torch.manual_seed(0)
        return cache._digest(cache.settings_of(ah.MLPAutoencoder(latent_dim=2, hidden=(8,)), train, test, **kwargs))

    base = key()
    relabelled = train.subset(torch.arange(len(train)))
    relabelled.labels = relabelled.labels.flip(0)
    other_test = test.subset(torch.arange(len(test) - 1))
    changed = {"a held-out set": key(test=other_test),
               "the labels": key(train=relabelled),
               "a corruption": key(corrupt=ah.Corruption("masking", 0.3)),
               "another corruption level": key(corrupt=ah.Corruption("masking", 0.4)),
               "weight_decay": key(weight_decay=1e-5),
               "with_labels": key(with_labels=True),
               "the shuffling seed": key(seed=1)}
    assert all(value != base for value in changed.values()), [name for name, v in changed.items() if v == base]
    assert len(set(changed.values())) == len(changed)
    assert key(device="cpu", progress=False, log=False) == base        # where and how loudly do not count


# --- exact checks of a record (they kill mutants listed in tests/MUTATION.md) ---

def _three_layers():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))


def _save_record(tmp_path, change=None, settings=None):
    """A checkpoint of _three_layers(), with ``change(record)`` applied to the record before saving."""
    path = tmp_path / "record.pt"
    history = ah.History(train={"loss": [2.0, 1.0]}, test={"loss": [2.5, 1.5]}, seconds=[0.5, 0.4])
    assert cache.save_checkpoint(path, _three_layers(), history, settings or {"seed": 0})
    if change is not None:
        record = torch.load(path, weights_only=True)
        change(record)
        torch.save(record, path)
    return path


def test_load_checkpoint_restores_the_weights_and_history_on_the_asked_device_in_eval_mode(tmp_path):
    path = _save_record(tmp_path)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)).train()
    history = cache.load_checkpoint(str(path), model, device="cpu")           # a str path works too
    assert history.train == {"loss": [2.0, 1.0]} and history.test == {"loss": [2.5, 1.5]}
    assert history.seconds == [0.5, 0.4]
    for name, value in _three_layers().state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    assert not model.training and next(model.parameters()).device.type == "cpu"
    model.train()
    cache.load_checkpoint(path, model)                                        # default: the course's device
    assert not model.training and next(model.parameters()).device == ah.get_device(verbose=False)


@pytest.mark.parametrize("change, reason", [
    (None, "it is not a format-{FORMAT} checkpoint of this course"),
    ("state", "its weights do not fit the model (missing ['0.bias', '0.weight', '1.bias'], unexpected ['other'])"),
    ("shape", "its weights do not fit the model (2.weight: (3, 4) in the file, (2, 4) in the model)"),
    ("type", "its weights do not fit the model (2.weight: str in the file, (2, 4) in the model)"),
    ("seconds", "its training history is incomplete (TypeError: not a history of at least one epoch)"),
    ("train", "its training history is incomplete (TypeError: not a history of at least one epoch)"),
    ("test", "its training history is incomplete (TypeError: not a history of at least one epoch)"),
])
def test_load_checkpoint_names_the_file_and_exactly_what_is_wrong(tmp_path, change, reason):
    def damage(record):
        if change == "state":
            record["state_dict"] = {"other": torch.zeros(1)}
        elif change == "shape":
            record["state_dict"]["2.weight"] = torch.zeros(3, 4)
        elif change == "type":
            record["state_dict"]["2.weight"] = "weights"
        elif change == "seconds":
            record["history"]["seconds"] = []
        elif change in ("train", "test"):
            record["history"][change] = [1.0]
    if change is None:
        path = tmp_path / "record.pt"
        torch.save([1, 2, 3], path)                                           # not a dict at all
    else:
        path = _save_record(tmp_path, damage)
    reason = reason.replace("{FORMAT}", str(cache.FORMAT))
    with pytest.raises(ValueError) as err:
        cache.load_checkpoint(path, _three_layers(), device="cpu")
    assert str(err.value) == f"checkpoint {path} cannot be used: {reason}"


def test_settings_that_are_not_json_are_saved_and_checked_the_same_way(tmp_path):
    settings = {"folder": tmp_path, "seed": 0}                                 # a Path: written by repr
    path = _save_record(tmp_path, settings=settings)
    history, _ = cache._load(path, _three_layers(), settings, torch.device("cpu"))
    assert history.seconds == [0.5, 0.4]
    with pytest.raises(ValueError, match="^it was saved for other settings$"):
        cache._load(path, _three_layers(), {"folder": tmp_path, "seed": 1}, torch.device("cpu"))


def test_first_line_of_an_error():
    assert cache._first_line(ValueError("  first\nsecond ")) == "ValueError: first"
    assert cache._first_line(EOFError()) == "EOFError"
    assert cache._first_line(ValueError("x" * 200)) == "ValueError: " + "x" * 120


OUTER, INNER = 1, 2


def _reads_globals_at_two_depths():
    first = OUTER

    def inner():                                  # a nested function: its own code object
        return INNER + len(range(2))
    return first + inner()


def test_global_names_include_those_of_nested_code():
    names = cache._global_names(_reads_globals_at_two_depths.__code__)
    assert {"OUTER", "INNER", "range"} <= names


def test_weights_that_pass_the_checks_but_do_not_copy_leave_the_model_as_it_was(tmp_path):
    def sparse_last(record):                           # right keys and shapes, but a sparse tensor: copy_ fails
        record["state_dict"]["2.bias"] = torch.zeros(2).to_sparse()
        for name in record["state_dict"]:
            if name != "2.bias":
                record["state_dict"][name] = record["state_dict"][name] + 1.0     # would change the model
    path = _save_record(tmp_path, sparse_last)
    model = _three_layers()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(UserWarning, match="sparse"), pytest.raises(ValueError) as err:
        cache.load_checkpoint(path, model, device="cpu")
    assert str(err.value).startswith(f"checkpoint {path} cannot be used: its weights do not fit the model "
                                     "(RuntimeError: Error(s) in loading state_dict for Sequential")
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_unreadable_files_get_the_reason_and_code_gets_the_friendly_message(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError) as err:
        cache.load_checkpoint(empty, _three_layers(), device="cpu")
    message = str(err.value)
    assert message.startswith(f"checkpoint {empty} cannot be used: the file cannot be read (")
    assert "NoneType" not in message and message.endswith(")")
    code = _save_record(tmp_path, lambda record: record.update(payload=cache.Unkeyable("not data")))
    with pytest.raises(ValueError) as err:
        cache.load_checkpoint(code, _three_layers(), device="cpu")
    assert str(err.value) == (f"checkpoint {code} cannot be used: the file cannot be read: it holds Python objects "
                              "other than tensors and plain values, which loading with weights_only=True refuses "
                              "to run")


def test_a_record_says_when_and_with_which_torch_it_was_saved_and_folders_are_made(tmp_path):
    import re
    path = tmp_path / "a" / "b" / "record.pt"
    history = ah.History(train={"loss": [1.0]}, test={}, seconds=[0.1])
    assert cache.save_checkpoint(path, _three_layers(), history, {"seed": 0})
    record = torch.load(path, weights_only=True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", record["saved"])
    assert record["torch"] == str(torch.__version__)


def test_checkpoint_path_spells_the_name_and_twelve_hex_digits_and_defaults_to_the_checkpoint_folder():
    path = cache.checkpoint_path("tiny", {"seed": 0})
    assert path.parent == cache.checkpoint_dir()
    assert path.name.startswith("tiny-") and len(path.name) == len("tiny-") + 12 + len(".pt")
    int(path.name[len("tiny-"):-len(".pt")], 16)
    with pytest.raises(ValueError, match=r"^checkpoint name '-x' must be letters, digits, '_', '-' or '\.', "
                                         r"starting with a letter or digit \(it becomes a file name\)$"):
        cache.checkpoint_path("-x", {})


def test_cached_fit_keys_by_the_held_out_set_and_prints_one_line_without_a_device(tmp_path, fashion, capsys):
    train, test = fashion
    settings = dict(objective=ah.vae_objective(), epochs=1, progress=False, log=False)   # no device given
    ah.cached_fit("tiny_vae", _model(), train, test, folder=tmp_path, **settings)
    assert len(capsys.readouterr().out.strip().splitlines()) == 1
    other = ah.load_dataset("fashion_mnist", "test", n=100, verbose=False)
    history = ah.cached_fit("tiny_vae", _model(), train, other, folder=tmp_path, **settings)
    assert "saved checkpoint" in capsys.readouterr().out                  # another held-out set: trained again
    assert len(list(tmp_path.glob("tiny_vae-*.pt"))) == 2 and history.test


def test_an_unkeyable_run_still_gets_its_held_out_history(tmp_path, capsys):
    class Loss:                                              # declares no settings: cannot be keyed
        def __call__(self, model, inputs, targets):
            return {"loss": ((model(inputs) - targets) ** 2).mean()}

    history = ah.cached_fit("opaque", ah.MLPAutoencoder(latent_dim=2, hidden=(8,)), torch.rand(16, 1, 28, 28),
                            torch.rand(8, 1, 28, 28), objective=Loss(), epochs=1, folder=tmp_path, progress=False,
                            log=False)
    assert "training without the cache" in capsys.readouterr().out
    assert len(history.test["loss"]) == 1                    # the held-out set was passed on to fit


def test_a_number_and_its_spelling_as_text_are_different_settings():
    assert cache._describe_value(1, 0) != cache._describe_value("1", 0)


class _UserLayer(torch.nn.Module):                   # defined here, not in a library: its code is keyed
    def forward(self, x):
        return 2 * x


def test_describe_value_spells_out_numbers_tensors_modules_classes_and_lists_of_callables():
    import hashlib
    assert cache._describe_value(1, 0) == 1 and cache._describe_value(0.5, 0) == "0.5"
    t = torch.tensor([1.0, 2.0])
    assert cache._describe_value(t, 0) == {"tensor": [2], "dtype": "torch.float32",
                                           "sha256": hashlib.sha256(t.view(torch.uint8).numpy().tobytes()).hexdigest()}
    assert cache._describe_value(torch.zeros(0), 0)["sha256"] == hashlib.sha256(b"").hexdigest()
    assert cache._describe_value(torch.nn, 0) == {"module": "torch.nn"}
    assert cache._describe_value(torch.nn.Linear, 0) == {"class": "torch.nn.modules.linear.Linear", "code": None}
    user = cache._describe_value(_UserLayer, 0)
    assert set(user) == {"class", "code"} and user["class"].endswith("._UserLayer") and user["code"]
    assert cache._describe_value([len], 0) == [cache._describe_callable(len, 1)]
    assert cache._describe_value({"f": len}, 0) == {"f": cache._describe_callable(len, 1)}
    with pytest.raises(cache.Unkeyable, match="^it depends on a object value, whose settings cannot be read$"):
        cache._describe_value(object(), 0)


def test_the_digest_ignores_the_order_of_settings_and_spells_other_values_by_repr(tmp_path):
    assert cache.checkpoint_path("x", {"a": 1, "b": 2}) == cache.checkpoint_path("x", {"b": 2, "a": 1})
    assert cache.checkpoint_path("x", {"folder": tmp_path}).name.startswith("x-")


def test_a_loaded_checkpoint_says_when_it_was_saved(tmp_path, fashion, capsys):
    import re
    _run(tmp_path, fashion)
    capsys.readouterr()
    _run(tmp_path, fashion)
    assert re.search(r"on \d{4}-\d\d-\d\d \d\d:\d\d UTC\)\. Same settings", capsys.readouterr().out)


# --- the key itself: what a checkpoint records, what must change it and what must not (tests/MUTATION.md) ---

def test_the_settings_a_checkpoint_records_name_every_part_that_decides_the_weights():
    torch.manual_seed(0)
    images = torch.rand(8, 1, 28, 28)
    settings = cache.settings_of(ah.MLPVAE(latent_dim=2, hidden=(8,)), images, images[:4], epochs=3)
    assert set(settings) == {"format", "model", "architecture", "code", "initial_weights_sha256", "train", "test",
                             "fit"}
    assert settings["format"] == cache.FORMAT and settings["model"] == "MLPVAE"
    assert settings["architecture"].startswith("MLPVAE(") and set(settings["code"]) == {"MLPVAE"}
    assert {"MLPVAE.decode", "_GaussianVAE.forward"} <= set(settings["code"]["MLPVAE"])   # the package's code counts
    assert set(settings["train"]) == {"shape", "labels_sha256", "sum", "sample_sha256"}
    assert settings["train"]["shape"] == [8, 1, 28, 28] and settings["test"]["shape"] == [4, 1, 28, 28]
    assert settings["train"]["sum"] == round(float(images.double().sum()), 3)
    assert settings["fit"] == {"objective": {"name": "mse_objective", "settings": {}}, "epochs": 3, "batch_size": 128,
                               "lr": 0.001, "weight_decay": 0.0, "corrupt": None, "with_labels": False, "seed": 0}
    described = cache._describe_callable(ah.Corruption("gaussian", 0.3))
    assert described == {"name": "Corruption", "settings": {"kind": "gaussian", "level": "0.3", "seed": 0,
                                                            "stream": "fresh"}}


def test_spelling_out_a_default_is_the_same_run():
    torch.manual_seed(0)
    model = ah.MLPAutoencoder(latent_dim=2, hidden=(8,))
    images = torch.rand(8, 1, 28, 28)
    implicit = cache.settings_of(model, images)
    explicit = cache.settings_of(model, images, objective=ah.mse_objective, epochs=10, batch_size=128, lr=1e-3,
                                 weight_decay=0.0, corrupt=None, with_labels=False, seed=0)
    assert cache._digest(implicit) == cache._digest(explicit)
    with pytest.raises(ValueError, match=r"^cached_fit cannot key a ready-made optimizer; pass lr and weight_decay "
                                         r"instead$"):
        cache.settings_of(model, images, optimizer=torch.optim.SGD(model.parameters(), 0.1))


def _named(name):
    def objective(model, inputs, targets):
        return {"loss": ((model(inputs) - targets) ** 2).mean()}
    objective.__name__ = objective.__qualname__ = name
    objective.settings = {}
    return objective


def test_objectives_that_declare_the_same_settings_are_told_apart_by_name():
    assert _key(objective=_named("mse_like")) == _key(objective=_named("mse_like"))
    assert _key(objective=_named("mse_like")) != _key(objective=_named("bce_like"))


def test_how_partials_and_functions_are_described():
    import functools
    assert cache._describe_callable(ah.noise.gaussian_noise) == {"function": "autoenc_helpers.noise.gaussian_noise"}
    assert cache._describe_callable(functools.partial(ah.noise.gaussian_noise, sigma=0.5)) == {
        "partial": {"function": "autoenc_helpers.noise.gaussian_noise"}, "args": [], "keywords": {"sigma": "0.5"}}
    described = cache._describe_callable(_weighted)
    assert set(described) == {"name", "code", "defaults", "kwdefaults", "closure", "globals"}
    assert described["name"] == "_weighted" and described["defaults"] == ["1.0"]
    assert described["kwdefaults"] == {} and described["closure"] == []


def _square(x):
    return x * x


def _uses_helpers_everywhere(model, inputs, targets, extra=_square, *, kw=_square):
    inner = _square                                                    # a global function
    return {"loss": (inner(model(inputs) - targets) + extra(inputs) * 0 + kw(inputs) * 0).mean()}


def test_an_objective_that_calls_other_functions_is_keyed_through_them():
    import functools
    closure_fn = (lambda f: (lambda model, x, y: {"loss": f(model(x) - y).mean()}))(_square)
    for objective in (_uses_helpers_everywhere, closure_fn,
                      functools.partial(_weighted, _square), functools.partial(_weighted, weight=_square),
                      _named_with_settings({"f": _square})):
        assert _key(objective=objective) == _key(objective=objective)     # keyable, and stable


def _named_with_settings(settings):
    objective = _named("with_a_function_setting")
    objective.settings = settings
    return objective


def _chain(length):
    """length functions, each calling the next (the last reads nothing): how deep the key follows."""
    scope = {"__name__": "__main__"}
    exec("def f0(model, x, y):\n    return x\n", scope)
    for i in range(1, length):
        exec(f"def f{i}(model, x, y):\n    return f{i - 1}(model, x, y)\n", scope)
    return scope[f"f{length - 1}"]


def test_the_key_follows_five_levels_of_functions_and_says_so_beyond():
    import functools
    cache._describe_callable(_chain(5))
    with pytest.raises(cache.Unkeyable, match="^it calls functions nested too deeply to follow$"):
        cache._describe_callable(_chain(6))
    cache._describe_callable(functools.partial(_chain(4), None))       # a partial is one level too
    with pytest.raises(cache.Unkeyable, match="^it calls functions nested too deeply to follow$"):
        cache._describe_callable(functools.partial(_chain(5), None))


class _Loss:
    def __call__(self, model, inputs, targets):
        return {"loss": ((model(inputs) - targets) ** 2).mean()}

    def compute(self, model, inputs, targets):
        return self(model, inputs, targets)


def test_an_unkeyable_objective_is_named_in_the_reason():
    model, images = ah.MLPAutoencoder(latent_dim=2, hidden=(8,)), torch.rand(4, 1, 28, 28)
    with pytest.raises(cache.Unkeyable) as err:
        cache.settings_of(model, images, objective=_Loss())
    assert str(err.value) == ("the settings of objective=_Loss object cannot be determined: "
                              "_Loss objects declare no settings")
    with pytest.raises(cache.Unkeyable) as err:
        cache.settings_of(model, images, objective=_Loss().compute)
    assert str(err.value) == ("the settings of objective=_Loss.compute cannot be determined: "
                              "_Loss.compute is a method: what it computes depends on its object")


def test_a_layer_without_weights_is_part_of_the_architecture():
    def key(activation):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 784), activation,
                                    torch.nn.Unflatten(1, (1, 28, 28)))
        return _key(model=model)
    assert key(torch.nn.Sigmoid()) != key(torch.nn.ReLU())             # the same weights, another model
    assert key(torch.nn.Sigmoid()) == key(torch.nn.Sigmoid())


def test_the_data_fingerprint_sees_every_97th_image_and_the_sum():
    def key(images):
        torch.manual_seed(0)
        return cache._digest(cache.settings_of(ah.MLPAutoencoder(latent_dim=2, hidden=(8,)), images))

    torch.manual_seed(1)
    images = torch.rand(100, 1, 28, 28)
    shuffled = images.clone()                                         # image 97's pixels reordered: same sum
    shuffled[97] = shuffled[97].flatten().flip(0).reshape(1, 28, 28)
    nudged = images.clone()                                           # image 1 (not sampled): the sum moves
    nudged[1, 0, 0, 0] += 0.01
    assert len({key(images), key(shuffled), key(nudged)}) == 3
    with pytest.raises(TypeError, match=r"^cached_fit expects an ImageSet or a tensor of images, got list$"):
        cache.settings_of(ah.MLPAutoencoder(latent_dim=2, hidden=(8,)), [images])


def test_the_models_code_counts_its_names_constants_nested_code_and_static_helpers():
    def model(forward, helper="return x.sigmoid()", mixin="return x"):
        scope = {"nn": torch.nn, "__name__": "__main__"}
        exec("class Mixin:\n    def post(self, x):\n        " + mixin + "\n"
             "class Tiny(nn.Module, Mixin):\n"
             "    def __init__(self):\n        super().__init__()\n        self.layer = nn.Linear(784, 784)\n"
             "    @staticmethod\n    def squash(x):\n        " + helper + "\n"
             "    def forward(self, x):\n        " + forward + "\n", scope)
        torch.manual_seed(0)
        return scope["Tiny"]()

    plain = "return self.post(self.squash(self.layer(x.flatten(1)))).reshape(x.shape)"
    nested = "return (lambda y: 2 * y)(self.layer(x.flatten(1))).reshape(x.shape)"
    base = _key(model=model(plain))
    assert _key(model=model(plain)) == base                                          # a rerun: the same key
    assert _key(model=model(nested)) == _key(model=model(nested))                    # nested code too
    changed = {"a name": _key(model=model(plain.replace("flatten", "ravel"))),       # only co_names differ
               "a constant": _key(model=model(nested.replace("2 *", "3 *"))),
               "a static helper": _key(model=model(plain, helper="return x.tanh()")),
               "a mixin after nn.Module": _key(model=model(plain, mixin="return 2 * x"))}
    assert all(value != base for value in changed.values()), [n for n, v in changed.items() if v == base]
    assert changed["a constant"] != _key(model=model(nested))
    assert set(cache._class_code(_UserLayer)) == {"_UserLayer.forward"}              # torch's classes: no code
    torch.manual_seed(0)
    assert set(cache.settings_of(model(plain), torch.rand(4, 1, 28, 28))["code"]) == {"Tiny"}


def test_an_unreadable_pickle_gets_the_friendly_message_only_when_it_holds_code(tmp_path, monkeypatch):
    import pickle
    path = _save_record(tmp_path)
    friendly = ("the file cannot be read: it holds Python objects other than tensors and plain values, which "
                "loading with weights_only=True refuses to run")
    for message, reason in [("Unsupported global: GLOBAL builtins.eval", friendly),        # torch 2.4's words
                            ("Weights only load failed: re-run with weights_only=False", friendly),
                            ("invalid load key, 'x'.", "the file cannot be read (UnpicklingError: invalid load "
                                                       "key, 'x'.)")]:
        def refuse(*args, message=message, **kwargs):
            raise pickle.UnpicklingError(message)
        monkeypatch.setattr(torch, "load", refuse)
        with pytest.raises(ValueError) as err:
            cache._load(path, _three_layers(), None, torch.device("cpu"))
        assert str(err.value) == reason, message


def test_extra_weights_are_named_three_at_most_and_none_is_called_missing(tmp_path):
    def extra(record):
        for i in range(4):
            record["state_dict"][f"extra{i}"] = torch.zeros(1)
    path = _save_record(tmp_path, extra)
    with pytest.raises(ValueError) as err:
        cache.load_checkpoint(path, _three_layers(), device="cpu")
    assert str(err.value).endswith("its weights do not fit the model (missing [], unexpected "
                                   "['extra0', 'extra1', 'extra2'])")


def test_the_saved_time_is_utc_on_a_machine_in_another_zone(tmp_path, monkeypatch):
    import time
    from datetime import datetime, timedelta, timezone
    monkeypatch.setenv("TZ", "XYZ-9")                                  # nine hours ahead of UTC, no tzdata needed
    time.tzset()
    try:
        before = datetime.now(timezone.utc).replace(second=0, microsecond=0, tzinfo=None)
        path = _save_record(tmp_path)
        saved = datetime.strptime(torch.load(path, weights_only=True)["saved"], "%Y-%m-%d %H:%M UTC")
        assert before <= saved <= before + timedelta(minutes=1)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_failed_save_says_why_and_loading_without_a_device_prints_nothing_more(tmp_path, monkeypatch, capsys):
    path = _save_record(tmp_path)
    capsys.readouterr()
    cache.load_checkpoint(path, _three_layers())
    assert capsys.readouterr().out == ""

    def full(obj, f, *args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(torch, "save", full)
    history = ah.History(train={"loss": [1.0]}, test={}, seconds=[0.1])
    assert not cache.save_checkpoint(tmp_path / "again.pt", _three_layers(), history, {})
    assert capsys.readouterr().out == ("could not save the checkpoint again.pt "
                                       "([Errno 28] No space left on device)\n").replace("([", "(OSError: [")


def test_a_record_without_a_saved_time_is_loaded_with_a_question_mark(tmp_path, fashion, capsys):
    _run(tmp_path, fashion)
    (path,) = tmp_path.iterdir()
    record = torch.load(path, weights_only=True)
    del record["saved"]
    torch.save(record, path)
    capsys.readouterr()
    _run(tmp_path, fashion)
    assert " on ?). Same settings" in capsys.readouterr().out
