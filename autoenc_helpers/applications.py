"""What a trained autoencoder is good for: anomaly detection and features for a classifier (notebook 09).

**Anomaly detection by reconstruction error.** An autoencoder trained on normal images only
reconstructs normal images well and other images badly, so the reconstruction error of an image
is an anomaly score:

1. :func:`reconstruction_scores`: one score per image, the squared error summed over its 784
   pixels (unit: squared intensity per image);
2. :func:`threshold_at_false_alarm_rate`: the threshold, chosen on *validation* normal images for
   a target false-alarm rate (never on the test images, whose numbers would then be too good);
3. :func:`detection_rates` at that threshold on the test images, and :func:`roc` for every
   threshold at once (the ROC curve and the area under it, from scikit-learn).

**Features for classification.** Freeze an encoder trained without labels, then fit a small
classifier on its codes with few labels: :func:`few_labels` draws the same number of labelled
images from each class; :func:`tuned_linear_probe` fits a logistic regression on standardised
features with its regularisation strength chosen by cross-validation on the labelled images
alone, and reports its training and test accuracy (:func:`linear_probe_accuracy` is the same
classifier with one fixed strength).

scikit-learn does the ROC curve, the AUC and the logistic regression: well-tested code that handles
ties and convergence, rather than a hand-written copy (the notebook writes the AUC by hand once,
as an exercise, and checks it against scikit-learn).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .data import ImageSet
from .losses import squared_error
from .models import checked_images, eval_batches
from .validate import integer, number, positive_int

__all__ = ["reconstruction_scores", "train_validation_split", "threshold_at_false_alarm_rate", "detection_rates",
           "roc", "few_labels", "linear_probe_accuracy", "PROBE_CS", "tuned_linear_probe"]


def _scores(scores, who: str) -> np.ndarray:
    """A 1-D float64 numpy array of finite scores, from a tensor, array or list."""
    if torch.is_tensor(scores):
        scores = scores.detach().double().cpu().numpy()
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{who} expects a non-empty 1-D set of scores, one per image, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{who}: the scores contain NaN or infinity; check the model's outputs")
    return values


@torch.no_grad()
def reconstruction_scores(model: nn.Module, data, *, batch_size: int = 1000) -> torch.Tensor:
    """The anomaly score of every image: its squared reconstruction error summed over the 784 pixels.

    Unit: squared intensity per image (pixels in [0, 1]); 0 for a perfect reconstruction. The sum,
    not the mean, so the number reads "how much of the image is wrong"; dividing by 784 would rank
    the images identically. model: an autoencoder whose ``model(x)`` returns the reconstruction,
    (B, 1, 28, 28) in [0, 1]. data: an ImageSet or an (N, 1, 28, 28) tensor. Returns an (N,) float tensor on the CPU.
    """
    images = checked_images(data, "reconstruction_scores")
    parts = [squared_error(model(x), x, pixels="sum", batch="none").cpu()           # (b,) per batch of (b, 1, 28, 28)
             for x, _ in eval_batches(model, images, batch_size)]
    return torch.cat(parts)                                                           # (N,)


def train_validation_split(data: ImageSet, n_validation: int, *, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Split a training set at random into (train, validation), with ``n_validation`` images in the second.

    The validation images are held out from training and used to choose settings such as a threshold;
    the test set stays untouched until the final report. The same seed gives the same split.
    """
    if not isinstance(data, ImageSet):
        raise TypeError(f"train_validation_split expects an ImageSet, got {type(data).__name__}")
    integer(n_validation, "n_validation", low=1, high=len(data) - 1, why=f"the set has {len(data):,} images")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return (data.subset(order[n_validation:].sort().values, "training part"),
            data.subset(order[:n_validation].sort().values, "validation part"))


def threshold_at_false_alarm_rate(normal_scores, rate: float) -> float:
    """The score above which only a fraction ``rate`` of these normal images lie.

    normal_scores: anomaly scores of *validation* normal images. rate: the false-alarm rate to aim
    for, a fraction in (0, 1): 0.05 flags about 5% of normal images. The threshold is the (1 - rate)
    quantile of the scores (linear interpolation between neighbours); an image is flagged as an
    anomaly when its score is *above* it. Written by hand in exercise 2 of notebook 09.
    """
    number(rate, "rate", above=0, below=1, why="a fraction of normal images, e.g. 0.05 for 5%")
    values = _scores(normal_scores, "threshold_at_false_alarm_rate")
    return float(np.quantile(values, 1 - rate))


def detection_rates(normal_scores, anomalous_scores, threshold: float) -> dict[str, float]:
    """What a threshold does: the share of normal images flagged and the share of anomalies caught.

    Returns fractions in [0, 1]: ``"false_alarm_rate"``, normal images with a score above the
    threshold (false positives / all normals), and ``"detection_rate"``, anomalous images above it
    (true positives / all anomalies, also called recall or true-positive rate).
    """
    normal = _scores(normal_scores, "detection_rates")
    anomalous = _scores(anomalous_scores, "detection_rates")
    threshold = float(threshold)
    return {"false_alarm_rate": float((normal > threshold).mean()),
            "detection_rate": float((anomalous > threshold).mean())}


def roc(normal_scores, anomalous_scores) -> tuple[np.ndarray, np.ndarray, float]:
    """The ROC curve of an anomaly score, and the area under it (scikit-learn's ``roc_curve``, ``roc_auc_score``).

    Every threshold gives one point (false-alarm rate, detection rate); the curve joins them from
    (0, 0) (flag nothing) to (1, 1) (flag everything). The AUC is the probability that a random
    anomalous image scores higher than a random normal one, ties counting one half: 1 is a perfect
    ranking, 0.5 is a coin flip. Returns (false_alarm_rates, detection_rates, auc).
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    normal = _scores(normal_scores, "roc")
    anomalous = _scores(anomalous_scores, "roc")
    truth = np.concatenate([np.zeros(normal.size), np.ones(anomalous.size)])        # 1 = anomaly
    scores = np.concatenate([normal, anomalous])
    fpr, tpr, _ = roc_curve(truth, scores)
    return fpr, tpr, float(roc_auc_score(truth, scores))


def few_labels(labels: torch.Tensor, per_class: int, *, seed: int = 0) -> torch.Tensor:
    """Positions of ``per_class`` images of each class, drawn at random: the few images we pay to label.

    labels: (N,) class indices. Returns a sorted (n_classes * per_class,) int64 tensor of positions
    on the CPU. The same seed gives the same images; a class with fewer than ``per_class`` images
    raises an error that names it.
    """
    if not torch.is_tensor(labels) or labels.dim() != 1 or labels.is_floating_point():
        got = (f"a {labels.dim()}-D {labels.dtype} tensor of shape {tuple(labels.shape)}" if torch.is_tensor(labels)
               else type(labels).__name__)
        raise ValueError(f"few_labels expects a 1-D tensor of class indices (integers), got {got}")
    positive_int(per_class, "per_class")
    labels = labels.cpu()
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in labels.unique().tolist():
        where = (labels == c).nonzero().flatten()                                     # positions of class c
        if where.numel() < per_class:
            raise ValueError(f"class {c} has only {where.numel()} images; {per_class} per class were asked for")
        chosen.append(where[torch.randperm(where.numel(), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def _as_numpy(a, dims: int, what: str) -> np.ndarray:
    a = a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)
    if a.ndim != dims:
        raise ValueError(f"{what} must be {dims}-D, got shape {a.shape}")
    return a


def _probe_arrays(train_features, train_labels, test_features, test_labels):
    """The four inputs of a probe as numpy arrays, their shapes checked against each other."""
    x_train = _as_numpy(train_features, 2, "train_features")
    x_test = _as_numpy(test_features, 2, "test_features")
    y_train, y_test = _as_numpy(train_labels, 1, "train_labels"), _as_numpy(test_labels, 1, "test_labels")
    if x_train.shape[0] != y_train.shape[0] or x_test.shape[0] != y_test.shape[0]:
        raise ValueError(f"{x_train.shape[0]} training features for {y_train.shape[0]} labels, or "
                         f"{x_test.shape[0]} test features for {y_test.shape[0]} labels; they must match")
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(f"training features have {x_train.shape[1]} numbers each, test features "
                         f"{x_test.shape[1]}; use the same encoder for both")
    return x_train, y_train, x_test, y_test


def linear_probe_accuracy(train_features, train_labels, test_features, test_labels, *,
                          max_iter: int = 2000, C: float = 1.0) -> float:
    """Fit a logistic regression on (standardised) features and return its test accuracy, a fraction.

    The classifier is scikit-learn's ``LogisticRegression`` (multinomial, L2 penalty of strength
    1/C) after a ``StandardScaler`` fitted on the training features: each feature is shifted to mean
    0 and scaled to variance 1, so pixels, PCA coordinates and autoencoder codes, which come on very
    different scales, are penalised alike. Features: (N, d) tensors or arrays; labels: (N,).

    The fit runs with one BLAS thread, so the accuracy is the same on every machine whatever its
    number of cores (with two threads the order of the sums changes, and with it, now and then,
    the class of a borderline test image). For these sizes it costs a few seconds at most.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    x_train, y_train, x_test, y_test = _probe_arrays(train_features, train_labels, test_features, test_labels)
    if not (isinstance(C, (int, float)) and math.isfinite(C) and C > 0):
        raise ValueError(f"C must be a positive number, got {C!r}")
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    with threadpool_limits(limits=1, user_api="blas"):                      # the same result on any machine
        classifier.fit(x_train, y_train)
        return float(classifier.score(x_test, y_test))


PROBE_CS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)    # the grid of C = 1 / (strength of the L2 penalty)


def tuned_linear_probe(train_features, train_labels, test_features, test_labels, *, Cs=PROBE_CS,
                       folds: int = 3, seed: int = 0, max_iter: int = 1000) -> dict[str, float]:
    """A logistic regression whose penalty is tuned on the labelled images alone; its accuracies.

    A fair comparison of features gives each the classifier's best setting, chosen without the test
    images. The L2 penalty's strength 1/C matters most: 784 pixels and 10 labelled images per class
    need a strong penalty, 32 code numbers and 1,000 per class a weak one. So:

    1. split the labelled images into ``folds`` parts with the classes in equal shares
       (scikit-learn's ``StratifiedKFold``, shuffled with ``seed``);
    2. for every C in ``Cs``: fit on all parts but one (standardiser and classifier, as in
       :func:`linear_probe_accuracy`), score on the part left out, for each part in turn; the
       cross-validated accuracy of C is the share of labelled images it classified right;
    3. refit on all the labelled images with the best C (on a tie, the smallest C: the stronger
       penalty), then measure its accuracy on those training images and on the test images.

    With 10 labels per class keep ``folds`` small (3 leaves 6 or 7 images per class for each fit);
    every class needs at least ``folds`` labelled images. The fits along the grid start from the
    previous C's weights (``warm_start``), which changes the cost, not the answer. They run with
    one BLAS thread, so the result is the same on any machine. Fits with a weak penalty on data a
    line separates may stop at ``max_iter`` before the weights settle; their convergence warnings
    are silenced, since the accuracy, what is measured here, has long stopped changing by then.

    Returns ``{"C", "cv_accuracy", "train_accuracy", "test_accuracy"}``, accuracies as fractions.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    x_train, y_train, x_test, y_test = _probe_arrays(train_features, train_labels, test_features, test_labels)
    Cs = sorted(float(c) for c in Cs)
    if not Cs or not all(math.isfinite(c) and c > 0 for c in Cs):
        raise ValueError(f"Cs must be one or more positive numbers, got {Cs!r}")
    present = np.unique(y_train)
    smallest = int(min((y_train == c).sum() for c in present)) if present.size else 0
    if smallest < 2:
        raise ValueError("tuned_linear_probe needs at least 2 labelled training images of each class to "
                         "cross-validate, got " + (f"{smallest} in its smallest class" if present.size else
                                                   "no training images"))
    integer(folds, "folds", low=2, high=smallest, why=f"the smallest class has {smallest} labelled images")

    correct = np.zeros(len(Cs))                                             # right answers on held-out parts
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for fit_part, held_out in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x_train, y_train):
            scaler = StandardScaler().fit(x_train[fit_part])
            a, b = scaler.transform(x_train[fit_part]), scaler.transform(x_train[held_out])
            classifier = LogisticRegression(max_iter=max_iter, warm_start=True)
            for j, C in enumerate(Cs):                                       # weakest penalty last
                classifier.set_params(C=C).fit(a, y_train[fit_part])
                correct[j] += (classifier.predict(b) == y_train[held_out]).sum()
        best = int(np.argmax(correct))                                      # the first maximum: smallest C
        final = make_pipeline(StandardScaler(), LogisticRegression(C=Cs[best], max_iter=max_iter))
        final.fit(x_train, y_train)
        return {"C": Cs[best], "cv_accuracy": float(correct[best] / len(y_train)),
                "train_accuracy": float(final.score(x_train, y_train)),
                "test_accuracy": float(final.score(x_test, y_test))}
