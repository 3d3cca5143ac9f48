"""The claims helper: a lesson's sentence about its own results is checked by the run that made them."""

import numpy as np
import pytest
import torch

import autoenc_helpers as ah
from autoenc_helpers.claims import ClaimError


@pytest.fixture
def full(monkeypatch):
    """A full run as the notebook runner makes it: false claims raise."""
    monkeypatch.setenv("AUTOENC_SMOKE", "0")
    monkeypatch.setenv("AUTOENC_CLAIMS", "raise")


@pytest.fixture
def learner(monkeypatch):
    """A learner's own full-mode session: the runner's variable is not set."""
    monkeypatch.setenv("AUTOENC_SMOKE", "0")
    monkeypatch.delenv("AUTOENC_CLAIMS", raising=False)


@pytest.fixture
def smoke(monkeypatch):
    monkeypatch.setenv("AUTOENC_SMOKE", "1")


def test_a_true_claim_prints_itself_and_its_values(full, capsys):
    assert ah.expect(18.2 > 15.2, "the denoiser beats the plain autoencoder", dae_db=18.2, plain_db=15.2)
    out = capsys.readouterr().out
    assert out.startswith("✔ the denoiser beats the plain autoencoder")
    assert "dae_db = 18.2" in out and "plain_db = 15.2" in out


def test_a_false_claim_raises_naming_the_claim_and_the_values(full):
    with pytest.raises(ClaimError) as info:
        ah.expect(14.8 > 15.2, "the denoiser beats the plain autoencoder", dae_db=14.8, plain_db=15.2)
    message = str(info.value)
    assert "the denoiser beats the plain autoencoder" in message
    assert "dae_db = 14.8" in message and "plain_db = 15.2" in message


def test_claim_error_is_an_assertion_error_so_it_stops_a_notebook_run(full):
    with pytest.raises(AssertionError):
        ah.expect(False, "never true")


def test_smoke_mode_reports_the_claim_as_unchecked_and_never_raises(smoke, capsys):
    assert ah.expect(False, "the curve falls", first=1.0, last=2.0) is None
    out = capsys.readouterr().out
    assert "not checked" in out and "smoke" in out and "the curve falls" in out


@pytest.mark.parametrize("condition", [torch.tensor(True), torch.tensor([True]), np.bool_(True), np.array([True]), 1])
def test_one_element_tensors_and_arrays_are_conditions(full, condition):
    assert ah.expect(condition, "holds")


@pytest.mark.parametrize("condition", [torch.tensor(False), np.bool_(False), 0])
def test_false_one_element_values_fail(full, condition):
    with pytest.raises(ClaimError):
        ah.expect(condition, "holds")


@pytest.mark.parametrize("condition", [torch.tensor([True, False]), np.array([True, True]), "yes", None, 0.5])
def test_ambiguous_conditions_are_refused(full, condition):
    with pytest.raises(TypeError, match="expect needs"):
        ah.expect(condition, "holds")


@pytest.mark.parametrize("claim", ["", "   ", None, 3])
def test_the_claim_must_be_a_sentence(full, claim):
    with pytest.raises(ValueError, match="claim"):
        ah.expect(True, claim)


def test_values_are_shown_readably(full, capsys):
    ah.expect(True, "shown", ratio=torch.tensor(2.3456789), counts=[1, 2, 3], name="pixels", nan=float("nan"),
              big=np.float32(1234567.0))
    out = capsys.readouterr().out
    assert "ratio = 2.346" in out and "counts = [1, 2, 3]" in out and "name = 'pixels'" in out
    assert "nan = nan" in out and "big = 1.235e+06" in out


def test_in_a_learners_session_a_false_claim_is_printed_with_a_cross_and_the_run_goes_on(learner, capsys):
    assert ah.expect(14.8 > 15.2, "the denoiser beats the plain autoencoder", dae_db=14.8, plain_db=15.2) is False
    out = capsys.readouterr().out
    assert out.startswith("✘ not shown by this run: the denoiser beats the plain autoencoder")
    assert "dae_db = 14.8" in out and "plain_db = 15.2" in out and "settings" in out


def test_in_a_learners_session_a_true_claim_is_still_checked(learner, capsys):
    assert ah.expect(True, "holds", x=1) is True
    assert capsys.readouterr().out.startswith("✔ holds")


def test_an_unknown_claims_setting_is_named(monkeypatch):
    monkeypatch.setenv("AUTOENC_SMOKE", "0")
    monkeypatch.setenv("AUTOENC_CLAIMS", "loud")
    with pytest.raises(ValueError, match="AUTOENC_CLAIMS='loud'.*'raise' or 'warn'"):
        ah.expect(False, "never true")


def test_the_notebook_runner_makes_false_claims_fail_the_run(tmp_path):
    import nbformat
    from nbclient.exceptions import CellExecutionError

    from tools import notebooks

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# 99 · probe\n\n**Study time:** about 5 minutes."),
                nbformat.v4.new_code_cell("import autoenc_helpers as ah\nah.expect(1 > 2, 'one beats two', one=1)")]
    path = tmp_path / "99_probe.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(CellExecutionError, match="ClaimError"):
        notebooks.execute(path, smoke=False, timeout=120)
