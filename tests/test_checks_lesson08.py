"""The exercise check of lesson 08 (the convolutional decoder), with right and wrong answers."""

import pytest
from torch import nn

import autoenc_helpers as ah
from autoenc_helpers import checks


def good_decoder(k, channels, *, output_padding=1, sigmoid=False, features=None, flatten=False):
    """The mirror of the encoder: kernel 3 everywhere, output_padding=1 where the stride is 2."""
    c1, c2, c3, c4 = channels
    layers = [nn.Linear(k, features or c4 * 49), nn.LeakyReLU(), nn.Unflatten(1, (c4, 7, 7)),
              nn.ConvTranspose2d(c4, c3, 3, stride=1, padding=1), nn.LeakyReLU(),
              nn.ConvTranspose2d(c3, c2, 3, stride=2, padding=1, output_padding=output_padding), nn.LeakyReLU(),
              nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=output_padding), nn.LeakyReLU(),
              nn.ConvTranspose2d(c1, 1, 3, stride=1, padding=1)]
    if sigmoid:
        layers.append(nn.Sigmoid())
    if flatten:
        layers.append(nn.Flatten(1, 2))                          # (B, 1, 28, 28) -> (B, 28, 28)
    return nn.Sequential(*layers)


def even_decoder(k, channels, *, padding=1, kernel=4):
    """Kernel 4 with stride 2: every output pixel away from the border gets the same number of stamps."""
    c1, c2, c3, c4 = channels
    return nn.Sequential(
        nn.Linear(k, c4 * 49), nn.LeakyReLU(), nn.Unflatten(1, (c4, 7, 7)),
        nn.ConvTranspose2d(c4, c3, 3, stride=1, padding=1), nn.LeakyReLU(),
        nn.ConvTranspose2d(c3, c2, kernel, stride=2, padding=padding), nn.LeakyReLU(),
        nn.ConvTranspose2d(c2, c1, kernel, stride=2, padding=padding), nn.LeakyReLU(),
        nn.ConvTranspose2d(c1, 1, 3, stride=1, padding=1))


def test_conv_decoder_check_accepts_a_right_answer_and_the_package_decoder(capsys):
    assert checks.check_conv_decoder(good_decoder)
    assert checks.check_conv_decoder(lambda k, ch: ah.ConvVAE(latent_dim=k, channels=ch).decoder)
    assert checks.check_conv_decoder(even_decoder)                  # even stamps are a right answer too
    assert "all 5 hidden tests pass" in capsys.readouterr().out


def test_even_stamps_accepts_kernel_4_and_rejects_kernel_3(capsys):
    assert checks.check_conv_decoder(even_decoder, even_stamps=True)
    assert "all 5 hidden tests pass" in capsys.readouterr().out
    assert not checks.check_conv_decoder(good_decoder, even_stamps=True)
    out = capsys.readouterr().out
    assert "kernel 3 is not a multiple of stride 2" in out and "5 of 5 hidden tests failed" in out


@pytest.mark.parametrize("wrong, words", [
    (lambda k, ch: good_decoder(k, ch, output_padding=0), "add output_padding=1"),
    (lambda k, ch: good_decoder(k, ch, sigmoid=True), "as after a sigmoid"),
    (lambda k, ch: good_decoder(k, ch, features=3136), "c4 * 7 * 7"),
    (lambda k, ch: nn.Sequential(nn.Linear(k, 784), nn.Unflatten(1, (1, 28, 28))), "no nn.ConvTranspose2d"),
    (lambda k, ch: "a decoder", "should return an nn.Module"),
    (lambda k, ch: even_decoder(k, ch, padding=0), "took 7 x 7 to 16 x 16, not 14 x 14"),
    (lambda k, ch: nn.Sequential(nn.Linear(k, 196), nn.Unflatten(1, (1, 14, 14)),
                                 nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1)), "start from 7 x 7"),
])
def test_conv_decoder_check_names_each_slip(wrong, words, capsys):
    assert not checks.check_conv_decoder(wrong)
    assert words in capsys.readouterr().out


def test_a_wrong_padding_is_named_with_even_stamps_too(capsys):
    assert not checks.check_conv_decoder(lambda k, ch: even_decoder(k, ch, padding=2), even_stamps=True)
    out = capsys.readouterr().out
    assert "took 7 x 7 to 12 x 12" in out and "choose the padding" in out


def test_conv_decoder_check_handles_a_stub_and_a_crash(capsys):
    def stub(k, channels):
        raise NotImplementedError
    assert not checks.check_conv_decoder(stub, even_stamps=True)
    assert "not written yet" in capsys.readouterr().out
    assert not checks.check_conv_decoder(lambda k, ch: 1 / 0)
    assert "raised ZeroDivisionError" in capsys.readouterr().out
