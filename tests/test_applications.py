"""Lesson 09's applications: anomaly scores, the validation threshold, ROC, few-label classifiers; the
lesson's plots and exercise checks."""

import math
import re
import warnings

import matplotlib
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import autoenc_helpers as ah
from autoenc_helpers import applications as app
from autoenc_helpers import checks

NORMAL = torch.tensor([0, 1, 2, 3, 4])             # T-shirt/top, Trouser, Pullover, Dress, Coat


class _Identity(torch.nn.Module):
    """A perfect 'autoencoder' (its output is its input), with one parameter so it has a device."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x


class _Zeros(_Identity):
    def forward(self, x):
        return torch.zeros_like(x)


FASHION_SIZES = (10_000, 2_000)          # the fashion fixture (tests/conftest.py): training and held-out images


@pytest.fixture(scope="module")
def detector(fashion):
    """An MLP autoencoder trained briefly on the normal classes only."""
    train, _ = fashion
    normal = train.subset(torch.isin(train.labels, NORMAL), "normal classes")
    fit_part, validation = app.train_validation_split(normal, 500, seed=0)
    ah.set_seed(0)
    ae = ah.MLPAutoencoder(latent_dim=16, hidden=(128,))
    ah.fit(ae, fit_part, epochs=3, device="cpu", progress=False, log=False)
    return ae, validation


# -- scores, threshold, rates, ROC -------------------------------------------------------------------

def test_reconstruction_scores_by_hand():
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert torch.equal(app.reconstruction_scores(_Identity(), x), torch.zeros(5))
    expected = (x ** 2).flatten(1).sum(1)                                  # squared error summed over 784 pixels
    assert torch.allclose(app.reconstruction_scores(_Zeros(), x, batch_size=2), expected)
    with pytest.raises(ValueError, match=r"shape \(batch, 1, 28, 28\), got \(5, 784\)"):
        app.reconstruction_scores(_Identity(), x.flatten(1))


def test_anomalies_score_above_normal_images(detector, fashion):
    ae, validation = detector
    _, test = fashion
    scores = app.reconstruction_scores(ae, test)
    normal = torch.isin(test.labels, NORMAL)
    _, _, auc = app.roc(scores[normal], scores[~normal])
    assert auc > 0.8, auc
    footwear = torch.isin(test.labels, torch.tensor([5, 7, 9]))            # sandals, sneakers, ankle boots
    assert app.roc(scores[normal], scores[footwear])[2] > 0.9
    noise = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(1))   # clearly not clothing
    assert app.reconstruction_scores(ae, noise).min() > torch.quantile(scores[normal], 0.99)
    threshold = app.threshold_at_false_alarm_rate(app.reconstruction_scores(ae, validation), 0.05)
    rates = app.detection_rates(scores[normal], scores[~normal], threshold)
    assert 0.01 < rates["false_alarm_rate"] < 0.12                          # chosen on validation, close on test
    assert rates["detection_rate"] > 0.5


def test_threshold_flags_the_asked_share():
    scores = torch.arange(1, 1001, dtype=torch.float32)                      # 1, 2, ..., 1000
    for rate in (0.01, 0.05, 0.2):
        threshold = app.threshold_at_false_alarm_rate(scores, rate)
        assert float((scores > threshold).float().mean()) == pytest.approx(rate, abs=1e-3)
    assert app.threshold_at_false_alarm_rate(np.array([3.0, 1.0, 2.0]), 0.5) == 2.0
    with pytest.raises(ValueError, match=r"rate must be a finite number in \(0, 1\) "
                                         r"\(a fraction of normal images, e.g. 0.05 for 5%\), got 5"):
        app.threshold_at_false_alarm_rate(scores, 5)
    with pytest.raises(ValueError, match="NaN or infinity"):
        app.threshold_at_false_alarm_rate(torch.tensor([1.0, math.nan]), 0.1)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        app.threshold_at_false_alarm_rate(torch.zeros(2, 3), 0.1)


def test_detection_rates_by_hand():
    rates = app.detection_rates([1, 2, 3, 4], [2.5, 5, 6], threshold=3)
    assert rates == {"false_alarm_rate": 0.25, "detection_rate": 2 / 3}     # 4 > 3; 5 and 6 > 3, 2.5 is not


def test_roc_against_counting_pairs_with_ties():
    g = torch.Generator().manual_seed(2)
    normal = torch.randint(0, 6, (300,), generator=g).float()
    anomalous = torch.randint(2, 9, (200,), generator=g).float()
    wins = (anomalous[:, None] > normal[None, :]).float() + 0.5 * (anomalous[:, None] == normal[None, :]).float()
    fpr, tpr, auc = app.roc(normal, anomalous)
    assert auc == pytest.approx(float(wins.mean()))
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc)                     # the area under the drawn curve
    assert app.roc([0.0, 1.0], [2.0, 3.0])[2] == 1.0 and app.roc([2.0, 3.0], [0.0, 1.0])[2] == 0.0


def test_train_validation_split_is_disjoint_and_repeatable(fashion):
    train, _ = fashion
    part, validation = app.train_validation_split(train, 1_000, seed=3)
    assert (len(part), len(validation)) == (9_000, 1_000)
    assert "validation part" in validation.source and validation.classes == train.classes
    together = torch.cat([part.images, validation.images]).flatten(1)
    assert torch.unique(together, dim=0).shape[0] == torch.unique(train.images.flatten(1), dim=0).shape[0]
    again, _ = app.train_validation_split(train, 1_000, seed=3)
    assert torch.equal(again.images, part.images) and torch.equal(again.labels, part.labels)
    with pytest.raises(ValueError, match=r"n_validation must be an int from 1 to 9999 "
                                         r"\(the set has 10,000 images\), got 10000"):
        app.train_validation_split(train, 10_000)


def test_subset_by_mask_and_by_positions(fashion):
    train, _ = fashion
    shoes = train.subset(train.labels == 7, "sneakers")
    assert len(shoes) == int((train.labels == 7).sum()) and bool((shoes.labels == 7).all())
    assert shoes.source.endswith("sneakers") and shoes.classes[7] == "Sneaker"
    picked = train.subset(torch.tensor([5, 0, 9]))
    assert torch.equal(picked.images, train.images[[5, 0, 9]])
    assert picked.labels.tolist() == train.labels[[5, 0, 9]].tolist()
    with pytest.raises(ValueError, match=r"one entry per image, shape \(10000,\), got \(3,\)"):
        train.subset(torch.tensor([True, False, True]))
    with pytest.raises(ValueError, match="boolean mask or a 1-D tensor of whole-number positions"):
        train.subset(torch.tensor([0.0, 1.0]))


# -- few labels and the linear probe --------------------------------------------------------------

def test_few_labels_draws_the_same_number_per_class(fashion):
    train, _ = fashion
    idx = app.few_labels(train.labels, 25, seed=0)
    assert idx.shape == (250,) and torch.equal(idx, idx.sort().values)
    assert torch.bincount(train.labels[idx], minlength=10).tolist() == [25] * 10
    assert torch.equal(idx, app.few_labels(train.labels, 25, seed=0))
    assert not torch.equal(idx, app.few_labels(train.labels, 25, seed=1))
    with pytest.raises(ValueError, match=r"class \d has only \d+ images; 5000 per class were asked for"):
        app.few_labels(train.labels, 5_000)


def test_linear_probe_accuracy():
    g = torch.Generator().manual_seed(4)
    centres = torch.randn(3, 5, generator=g) * 10                            # three far-apart classes in 5-D
    labels = torch.arange(300) % 3
    features = centres[labels] + torch.randn(300, 5, generator=g)
    assert app.linear_probe_accuracy(features[:150], labels[:150], features[150:], labels[150:]) == 1.0
    shuffled = labels[torch.randperm(300, generator=g)]                      # labels unrelated to the features
    assert app.linear_probe_accuracy(features[:150], shuffled[:150], features[150:], shuffled[150:]) < 0.6
    with pytest.raises(ValueError, match="training features have 5 numbers each, test features 4"):
        app.linear_probe_accuracy(features, labels, features[:, :4], labels)
    with pytest.raises(ValueError, match="300 training features for 299 labels"):
        app.linear_probe_accuracy(features, labels[:299], features, labels)


def test_tuned_linear_probe_is_the_fixed_probe_when_the_grid_has_one_value():
    g = torch.Generator().manual_seed(6)
    centres = torch.randn(4, 20, generator=g)
    labels = torch.arange(400) % 4
    features = centres[labels] + 2 * torch.randn(400, 20, generator=g)      # overlapping classes
    for C in (0.01, 1.0):
        tuned = app.tuned_linear_probe(features[:200], labels[:200], features[200:], labels[200:], Cs=[C])
        assert tuned["C"] == C
        assert tuned["test_accuracy"] == app.linear_probe_accuracy(features[:200], labels[:200], features[200:],
                                                                    labels[200:], C=C)
        assert 0.25 < tuned["test_accuracy"] <= tuned["train_accuracy"] <= 1.0   # noisy: fits its own images better
        assert 0.0 < tuned["cv_accuracy"] <= 1.0


def test_tuned_linear_probe_picks_a_strong_penalty_for_few_labels_and_many_noisy_features():
    g = torch.Generator().manual_seed(7)
    labels = torch.arange(2_060) % 2
    signal = (2 * labels - 1).float()[:, None] * 0.4                           # one weak direction of 300
    features = torch.cat([signal + torch.randn(2_060, 1, generator=g),
                          torch.randn(2_060, 299, generator=g)], 1)
    train_x, train_y, test_x, test_y = features[:60], labels[:60], features[60:], labels[60:]
    tuned = app.tuned_linear_probe(train_x, train_y, test_x, test_y, folds=3)
    again = app.tuned_linear_probe(train_x, train_y, test_x, test_y, folds=3)
    assert tuned == again                                                     # deterministic
    assert tuned["C"] <= 0.01                                                 # the grid's strong end
    weak = app.linear_probe_accuracy(train_x, train_y, test_x, test_y, C=100.0)
    assert tuned["train_accuracy"] < 1.0 and weak < tuned["test_accuracy"]


def test_tuned_linear_probe_names_bad_settings():
    features, labels = torch.randn(30, 3), torch.arange(30) % 3              # 10 images per class
    with pytest.raises(ValueError, match=r"folds must be an int from 2 to 10 \(the smallest class has 10"):
        app.tuned_linear_probe(features, labels, features, labels, folds=11)
    with pytest.raises(ValueError, match="Cs must be one or more positive numbers"):
        app.tuned_linear_probe(features, labels, features, labels, Cs=[1.0, -1.0])
    with pytest.raises(ValueError, match="30 training features for 29 labels"):
        app.tuned_linear_probe(features, labels[:29], features, labels)


def test_codes_of_a_trained_autoencoder_classify_far_above_chance(detector, fashion):
    ae, _ = detector
    train, test = fashion
    idx = app.few_labels(train.labels, 50, seed=0)
    accuracy = app.linear_probe_accuracy(ah.encode(ae, train.images[idx]), train.labels[idx],
                                         ah.encode(ae, test), test.labels)
    assert accuracy > 0.5                                                    # chance is 0.1


# -- plots -------------------------------------------------------------------------------------------

def test_score_histograms_and_roc_plots():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = torch.Generator().manual_seed(5)
    normal, anomalous = torch.randn(200, generator=g), torch.randn(100, generator=g) + 2
    fig = ah.plots.plot_score_histograms({"normal": normal, "anomalous": anomalous}, threshold=1.5)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["normal", "anomalous", "threshold 1.5"]
    assert len(ax.patches) == 2 and ax.lines[0].get_xdata()[0] == 1.5     # two outlines, the threshold line
    assert ax.get_ylabel() == "share of the group per bin"
    plt.close(fig)
    curve = app.roc(normal, anomalous)
    fig = ah.plots.plot_roc({"all": curve}, point=(0.05, 0.6))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == f"all (AUC {curve[2]:.3f})" and "5.0% false alarms, 60.0% detected" in labels[-1]
    plt.close(fig)


# -- the exercise checks -----------------------------------------------------------------------------

def _stub(*args):
    raise NotImplementedError


def _auc(normal, anomalous, tie=0.5):
    a, n = anomalous[:, None], normal[None, :]
    return ((a > n).float() + tie * (a == n).float()).mean()


def test_roc_auc_check_accepts_right_answers(capsys):
    assert checks.check_roc_auc(lambda n, a: app.roc(n, a)[2])
    assert checks.check_roc_auc(lambda n, a: _auc(n, a))                     # a 0-dim tensor is one number
    assert checks.check_roc_auc(lambda n, a: roc_auc_score([0] * len(n) + [1] * len(a), torch.cat([n, a])))
    assert "all 8 hidden tests pass" in capsys.readouterr().out


@pytest.mark.parametrize("answer, message", [
    (lambda n, a: _auc(n, a, tie=0.0), "ties count as 0 here"),
    (lambda n, a: _auc(n, a, tie=1.0), "ties count as 1 here"),
    (lambda n, a: _auc(a, n), "normal and anomalous are swapped"),
    (lambda n, a: _auc(n, a) * len(n) * len(a), "that is the number of winning pairs"),
    (lambda n, a: 100 * _auc(n, a), "that is a percentage"),
    (lambda n, a: (a[:, None] > n[None, :]).float().mean(1), "not per image"),
    (lambda n, a: "0.8", "the AUC is 0.8333, you returned 0.8000"),
    (lambda n, a: [0.5], "return a number, the AUC, not list"),
])
def test_roc_auc_check_names_each_slip(answer, message, capsys):
    assert not checks.check_roc_auc(answer)
    assert message in capsys.readouterr().out


def test_threshold_check_accepts_right_answers(capsys):
    assert checks.check_false_alarm_threshold(app.threshold_at_false_alarm_rate)
    assert checks.check_false_alarm_threshold(lambda s, r: torch.quantile(s, 1 - r))
    assert checks.check_false_alarm_threshold(lambda s, r: np.percentile(s.numpy(), 100 * (1 - r)))
    assert checks.check_false_alarm_threshold(lambda s, r: torch.sort(s).values[int((1 - r) * len(s))])
    assert "all 5 hidden tests pass" in capsys.readouterr().out


def _sorts_in_place(scores, rate):
    values = scores.numpy()
    values.sort()                                                            # sorts the caller's tensor too
    return values[int((1 - rate) * len(values))]


@pytest.mark.parametrize("answer, message", [
    (lambda s, r: torch.quantile(s, r), "that is the 0.05 quantile, which flags 95% of normal images"),
    (lambda s, r: np.percentile(s.numpy(), 1 - r), "np.percentile takes a percentage"),
    (lambda s, r: s.mean() + 1.6448536 * s.std(), "mean + z * std is right only for normally distributed scores"),
    (lambda s, r: s.max(), "flags no normal image at all"),
    (_sorts_in_place, "changed its input number 1 in place"),
    (lambda s, r: torch.quantile(s, torch.tensor([1 - r, 0.5])), "not a tensor of shape (2,)"),
])
def test_threshold_check_names_each_slip(answer, message, capsys):
    assert not checks.check_false_alarm_threshold(answer)
    assert message in capsys.readouterr().out


def test_lesson_09_checks_handle_stubs_and_crashes(capsys):
    for check in (checks.check_roc_auc, checks.check_false_alarm_threshold):
        assert check(_stub) is False
        assert "not written yet" in capsys.readouterr().out
        assert check(lambda *args: 1 / 0) is False
        assert "raised ZeroDivisionError" in capsys.readouterr().out


def test_linear_probe_standardises_features_so_their_scale_does_not_decide_the_penalty():
    """A feature that separates the classes on a scale of 1e-3 would need weights of about 1,000 without
    standardisation, which the L2 penalty forbids (accuracy near chance); standardised, it separates them."""
    g = np.random.default_rng(0)
    labels = np.repeat([0, 1], 150)
    informative = (labels * 2 - 1) * 1e-3 + g.normal(0, 2e-4, 300)          # separates the classes, tiny scale
    noise = g.normal(0, 1, 300)                                               # unit scale, no information
    features = np.stack([informative, noise], 1)
    train, test = slice(0, None, 2), slice(1, None, 2)
    accuracy = app.linear_probe_accuracy(features[train], labels[train], features[test], labels[test])
    assert accuracy >= 0.95
    rescaled = features * np.array([1e3, 1e-2])                               # any per-feature scale: same answer
    assert app.linear_probe_accuracy(rescaled[train], labels[train], rescaled[test], labels[test]) == accuracy


# -- inputs, defaults and messages (added after the mutation run; tests/MUTATION.md) -------------------

def test_scores_that_require_grad_or_come_as_float32_arrays_give_the_float64_answer():
    """Scores computed outside torch.no_grad() are accepted, and float32 scores are compared in float64,
    whether they come as a tensor or a numpy array."""
    values = (np.random.default_rng(0).random(10) * 784).astype(np.float32)
    exact = float(np.quantile(values.astype(np.float64), 0.95))              # 725.2233947753906, float32: 725.22339
    with_grad = torch.tensor(values, requires_grad=True) * 1.0
    assert app.threshold_at_false_alarm_rate(with_grad, 0.05) == exact
    assert app.threshold_at_false_alarm_rate(values, 0.05) == exact
    assert app.detection_rates(with_grad, with_grad + 1000, threshold=exact) == {
        "false_alarm_rate": 0.1, "detection_rate": 1.0}                     # the largest of 10 is above
    assert app.roc(with_grad, with_grad + 1000)[2] == 1.0


@pytest.mark.parametrize("call, who", [
    (lambda bad, good: app.threshold_at_false_alarm_rate(bad, 0.05), "threshold_at_false_alarm_rate"),
    (lambda bad, good: app.detection_rates(bad, good, 1.0), "detection_rates"),
    (lambda bad, good: app.detection_rates(good, bad, 1.0), "detection_rates"),
    (lambda bad, good: app.roc(bad, good), "roc"),
    (lambda bad, good: app.roc(good, bad), "roc"),
])
def test_the_score_functions_name_themselves_whichever_scores_are_wrong(call, who):
    good = [1.0, 2.0]
    with pytest.raises(ValueError, match=rf"^{who} expects a non-empty 1-D set of scores, one per image, "
                                         r"got shape \(2, 2\)$"):
        call(np.ones((2, 2)), good)
    with pytest.raises(ValueError, match=rf"^{who}: the scores contain NaN or infinity"):
        call([1.0, math.inf], good)


def test_an_image_exactly_at_the_threshold_is_not_flagged():
    rates = app.detection_rates([1.0, 3.0], [3.0, 3.0, 4.0, 5.0], threshold=3.0)   # flagged: strictly above
    assert rates == {"false_alarm_rate": 0.0, "detection_rate": 0.5}


def test_train_validation_split_names_its_parts_and_seeds_with_zero(fashion):
    train, _ = fashion
    part, validation = app.train_validation_split(train, 100)
    assert part.source == f"{train.source}, training part" and validation.source == f"{train.source}, validation part"
    same_part, _ = app.train_validation_split(train, 100, seed=0)
    assert torch.equal(part.labels, same_part.labels) and torch.equal(part.images, same_part.images)
    with pytest.raises(TypeError, match=r"^train_validation_split expects an ImageSet, got Tensor$"):
        app.train_validation_split(train.images, 100)


def test_few_labels_checks_its_input_seeds_with_zero_and_takes_a_class_that_has_just_enough():
    labels = torch.tensor([0, 1, 1, 2, 2, 2, 0, 1, 2, 2])                   # class 0 has exactly 2 images
    idx = app.few_labels(labels, 2)
    assert torch.equal(idx, app.few_labels(labels, 2, seed=0)) and {0, 6} <= set(idx.tolist())
    assert torch.bincount(labels[idx]).tolist() == [2, 2, 2]
    for bad, got in ((labels.float(), r"a 1-D torch.float32 tensor of shape \(10,\)"),
                     (labels.view(2, 5), r"a 2-D torch.int64 tensor of shape \(2, 5\)"), (labels.tolist(), "list")):
        expected = rf"^few_labels expects a 1-D tensor of class indices \(integers\), got {got}$"
        with pytest.raises(ValueError, match=expected):
            app.few_labels(bad, 2)
    with pytest.raises(ValueError, match=r"^per_class must be a positive int, got 0$"):
        app.few_labels(labels, 0)


@pytest.mark.parametrize("position, name, wanted, shape", [
    (0, "train_features", 2, r"\(30,\)"), (1, "train_labels", 1, r"\(30, 1\)"),
    (2, "test_features", 2, r"\(30,\)"), (3, "test_labels", 1, r"\(30, 1\)"),
])
def test_the_probes_name_the_input_of_the_wrong_shape(position, name, wanted, shape):
    args = [torch.randn(30, 3), torch.arange(30) % 3, torch.randn(30, 3), torch.arange(30) % 3]
    args[position] = args[position][:, 0] if wanted == 2 else args[position][:, None]
    for probe in (app.linear_probe_accuracy, app.tuned_linear_probe):
        with pytest.raises(ValueError, match=rf"^{name} must be {wanted}-D, got shape {shape}$"):
            probe(*args)


def test_the_probes_say_how_many_test_features_and_labels_there_are():
    features, labels = torch.randn(30, 3), torch.arange(30) % 3
    with pytest.raises(ValueError, match=r"^30 training features for 30 labels, or 30 test features for 29 labels; "
                                         r"they must match$"):
        app.linear_probe_accuracy(features, labels, features, labels[:29])


def test_the_probes_accept_features_that_require_grad():
    """Codes from ``model.encoder(x)`` outside torch.no_grad() carry gradients; the probes take them as they are."""
    g = torch.Generator().manual_seed(4)
    centres = torch.randn(3, 5, generator=g) * 10
    labels = torch.arange(60) % 3
    features = (centres[labels] + torch.randn(60, 5, generator=g)).requires_grad_()
    assert app.linear_probe_accuracy(features, labels, features, labels) == 1.0
    assert app.tuned_linear_probe(features, labels, features, labels, Cs=[1.0])["test_accuracy"] == 1.0


def test_linear_probe_refuses_a_penalty_that_is_not_positive_and_defaults_to_c_one():
    features, labels = torch.randn(6, 2), torch.arange(6) % 2
    for C in (0, -1.0, math.inf, "1"):
        with pytest.raises(ValueError, match=rf"^C must be a positive number, got {re.escape(repr(C))}$"):
            app.linear_probe_accuracy(features, labels, features, labels, C=C)
    g = torch.Generator().manual_seed(0)                                      # 4 overlapping classes in 20-D
    labels = torch.arange(400) % 4
    features = torch.randn(4, 20, generator=g)[labels] + 2 * torch.randn(400, 20, generator=g)
    train, test = (features[:40], labels[:40]), (features[200:], labels[200:])
    default = app.linear_probe_accuracy(*train, *test)
    assert default == app.linear_probe_accuracy(*train, *test, C=1.0)      # 0.665; C = 2 gives 0.655 here


def _overlapping_classes():
    """60 labelled and 200 test images of 4 overlapping classes in 20-D: accuracies well below 1."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(400) % 4
    features = torch.randn(4, 20, generator=g)[labels] + 2 * torch.randn(400, 20, generator=g)
    return features[:60].numpy(), labels[:60].numpy(), features[200:].numpy(), labels[200:].numpy()


def test_tuned_probe_cross_validates_as_documented_with_its_max_iter_in_every_fit():
    """Step 1 and 2 of the docstring by hand, for one C: 3 stratified folds shuffled with seed 0, each scored by a fit
    on the other two with ``max_iter`` iterations. Two iterations are far from convergence, so a fit that ignored
    max_iter (and ran to scikit-learn's default of 100) would score differently; the warnings of those unfinished
    fits are silenced in the tuned probe and shown by the fixed one."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    x, y, test_x, test_y = _overlapping_classes()
    right = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for fit_part, held_out in StratifiedKFold(3, shuffle=True, random_state=0).split(x, y):
            scaler = StandardScaler().fit(x[fit_part])
            fitted = LogisticRegression(C=1.0, max_iter=2).fit(scaler.transform(x[fit_part]), y[fit_part])
            right += int((fitted.predict(scaler.transform(x[held_out])) == y[held_out]).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                        # no warning gets out
        tuned = app.tuned_linear_probe(x, y, test_x, test_y, Cs=[1.0], max_iter=2)
    assert tuned["cv_accuracy"] == right / len(y)                             # 0.7 here; 0.65 with 100 iterations
    with pytest.warns(ConvergenceWarning):
        fixed = app.linear_probe_accuracy(x, y, test_x, test_y, C=1.0, max_iter=2)
    assert tuned["test_accuracy"] == fixed != app.linear_probe_accuracy(x, y, test_x, test_y, C=1.0, max_iter=100)


def test_tuned_probe_works_with_three_labels_per_class_by_default():
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(9) % 3
    features = torch.randn(3, 4, generator=g)[labels] * 5 + torch.randn(9, 4, generator=g)
    tuned = app.tuned_linear_probe(features, labels, features, labels)       # 3 folds: one image per class per fold
    assert tuned["C"] in app.PROBE_CS and 0.0 <= tuned["cv_accuracy"] <= 1.0


def test_tuned_probe_refuses_a_zero_penalty_and_an_empty_training_set():
    features, labels = torch.randn(30, 3), torch.arange(30) % 3
    with pytest.raises(ValueError, match=r"^Cs must be one or more positive numbers, got \[0.0, 1.0\]$"):
        app.tuned_linear_probe(features, labels, features, labels, Cs=[1.0, 0.0])
    with pytest.raises(ValueError, match=r"^tuned_linear_probe needs at least 2 labelled training images of each "
                                         r"class to cross-validate, got no training images$"):
        app.tuned_linear_probe(features[:0], labels[:0], features, labels)
    with pytest.raises(ValueError, match=r"^tuned_linear_probe needs at least 2 labelled training images of each "
                                         r"class to cross-validate, got 1 in its smallest class$"):
        app.tuned_linear_probe(features[:4], labels[:4], features, labels)          # labels 0, 1, 2, 0


def test_tuned_probe_cross_validates_two_labelled_images_per_class_in_two_folds():
    """2 images per class is the least that can be cross-validated (each fold fits on one, scores the other):
    taken, not refused."""
    g = torch.Generator().manual_seed(2)
    labels = torch.arange(6) % 3
    features = torch.randn(3, 4, generator=g)[labels] * 5 + torch.randn(6, 4, generator=g)
    tuned = app.tuned_linear_probe(features, labels, features, labels, folds=2)
    assert tuned["C"] in app.PROBE_CS and tuned["cv_accuracy"] * 6 == round(tuned["cv_accuracy"] * 6)


def test_tuned_probe_picks_a_weak_penalty_when_only_a_weak_penalty_separates_the_classes():
    """The class is in the difference of two strongly correlated features. A strong L2 penalty keeps the weights
    near the class means' direction (the first feature alone, swamped by the shared noise); a weak one finds the
    difference."""
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 2
    shared = rng.normal(0, 1, 300)
    features = np.stack([shared + 0.3 * (2 * labels - 1) + 0.05 * rng.normal(0, 1, 300), shared], 1)
    train, test = (features[:150], labels[:150]), (features[150:], labels[150:])
    tuned = app.tuned_linear_probe(*train, *test)
    assert tuned["C"] >= 1.0 and tuned["test_accuracy"] > 0.95              # 1.0 and 1.0 here
    assert app.linear_probe_accuracy(*train, *test, C=min(app.PROBE_CS)) < 0.8   # 0.63 with the grid's strongest


def test_the_probes_fit_with_one_blas_thread_even_where_the_caller_allows_more(monkeypatch):
    """The docstrings' promise that makes a probe's accuracy the same on every machine: during every fit, each BLAS
    library runs one thread, though the caller set two."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_info, threadpool_limits

    seen = []
    fit = LogisticRegression.fit

    def spy(self, *args, **kwargs):
        seen.extend(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")
        return fit(self, *args, **kwargs)

    if not any(pool["user_api"] == "blas" for pool in threadpool_info()):
        pytest.skip("no BLAS library that threadpoolctl can see")
    monkeypatch.setattr(LogisticRegression, "fit", spy)
    features, labels = torch.randn(30, 3, generator=torch.Generator().manual_seed(0)), torch.arange(30) % 3
    with threadpool_limits(limits=2, user_api="blas"):
        app.linear_probe_accuracy(features, labels, features, labels)
        app.tuned_linear_probe(features, labels, features, labels, Cs=[0.1, 1.0])
    assert seen and set(seen) == {1}, seen
