"""The exercise checks of lesson 08, with right and wrong answers."""

import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

import autoenc_helpers as ah
from autoenc_helpers import checks


def good_decoder(k, channels, *, output_padding=1, sigmoid=False, features=None):
    c1, c2, c3, c4 = channels
    layers = [nn.Linear(k, features or c4 * 49), nn.LeakyReLU(), nn.Unflatten(1, (c4, 7, 7)),
              nn.ConvTranspose2d(c4, c3, 3, stride=1, padding=1), nn.LeakyReLU(),
              nn.ConvTranspose2d(c3, c2, 3, stride=2, padding=1, output_padding=output_padding), nn.LeakyReLU(),
              nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=output_padding), nn.LeakyReLU(),
              nn.ConvTranspose2d(c1, 1, 3, stride=1, padding=1)]
    if sigmoid:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def test_conv_decoder_check_accepts_a_right_answer_and_the_package_decoder(capsys):
    assert checks.check_conv_decoder(good_decoder)
    assert checks.check_conv_decoder(lambda k, ch: ah.ConvVAE(latent_dim=k, channels=ch).decoder)
    assert "all 3 hidden tests pass" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda k, ch: good_decoder(k, ch, output_padding=0), "add output_padding=1"),
    (lambda k, ch: good_decoder(k, ch, sigmoid=True), "as after a sigmoid"),
    (lambda k, ch: good_decoder(k, ch, features=3136), "c4 * 7 * 7"),
    (lambda k, ch: nn.Sequential(nn.Linear(k, 784), nn.Unflatten(1, (1, 28, 28))), "no nn.ConvTranspose2d"),
    (lambda k, ch: "a decoder", "should return an nn.Module"),
])
def test_conv_decoder_check_names_each_slip(wrong, words, capsys):
    assert not checks.check_conv_decoder(wrong)
    assert words in capsys.readouterr().out


def test_conv_decoder_check_handles_a_stub(capsys):
    def stub(k, channels):
        raise NotImplementedError
    assert not checks.check_conv_decoder(stub)
    assert "not written yet" in capsys.readouterr().out


def _ranks(v):
    from scipy.stats import rankdata
    return torch.as_tensor(rankdata(v.numpy()), dtype=torch.float64)


def _pearson(a, b):
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_spearman_check_accepts_right_answers(capsys):
    assert checks.check_spearman(lambda a, b: spearmanr(a.numpy(), b.numpy()).statistic)
    assert checks.check_spearman(lambda a, b: _pearson(_ranks(a), _ranks(b)))
    assert "all 5 hidden tests pass" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (_pearson, "Pearson correlation of the values"),
    (lambda a, b: _pearson(a.argsort().double(), b.argsort().double()), "argsort of argsort"),
    (lambda a, b: _pearson(a.argsort().argsort().double(), b.argsort().argsort().double()), "share the average"),
    (lambda a, b: "high", "return one number"),
])
def test_spearman_check_names_each_slip(wrong, words, capsys):
    assert not checks.check_spearman(wrong)
    assert words in capsys.readouterr().out


def test_spearman_check_reports_a_crash(capsys):
    assert not checks.check_spearman(lambda a, b: 1 / 0)
    assert "raised ZeroDivisionError" in capsys.readouterr().out
