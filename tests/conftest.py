"""Fixtures shared by the test files (the repository's own conftest.py sets up the test session)."""

import pytest

import autoenc_helpers as ah


@pytest.fixture(scope="module")
def fashion(request):
    """(train, test): the first Fashion-MNIST images of each split, as many as the test file asks for.

    A test file sets ``FASHION_SIZES = (n_train, n_test)``; its thresholds are tuned to those numbers.
    """
    sizes = getattr(request.module, "FASHION_SIZES", None)
    if sizes is None:
        raise RuntimeError(f"{request.module.__name__} uses the fashion fixture: set FASHION_SIZES = (n_train, n_test)")
    n_train, n_test = sizes
    train = ah.load_dataset("fashion_mnist", "train", n=n_train, verbose=False)
    test = ah.load_dataset("fashion_mnist", "test", n=n_test, verbose=False)
    return train, test
