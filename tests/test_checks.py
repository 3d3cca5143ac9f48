import torch

from autoenc_helpers import checks


def _stub(*args):
    raise NotImplementedError


def test_conv_output_size_check(capsys):
    assert checks.check_conv_output_size(lambda n, k, s, p: (n + 2 * p - k) // s + 1)
    assert "all 10 hidden tests pass" in capsys.readouterr().out
    assert not checks.check_conv_output_size(lambda n, k, s, p: (n + 2 * p - k) // s)
    assert "Off by one" in capsys.readouterr().out
    assert not checks.check_conv_output_size(lambda n, k, s, p: (n + 2 * p - k) / s + 1)
    assert "whole number" in capsys.readouterr().out


def test_conv_transpose_output_size_check(capsys):
    assert checks.check_conv_transpose_output_size(lambda n, k, s, p: (n - 1) * s - 2 * p + k)
    assert not checks.check_conv_transpose_output_size(lambda n, k, s, p: (n - 1) * s + 2 * p + k)
    assert "removes" in capsys.readouterr().out


def test_per_image_error_check(capsys):
    assert checks.check_per_image_squared_error(lambda a, b: ((a - b) ** 2).flatten(1).sum(1))
    capsys.readouterr()
    assert not checks.check_per_image_squared_error(lambda a, b: ((a - b) ** 2).sum())
    assert "reduced over the batch" in capsys.readouterr().out
    assert not checks.check_per_image_squared_error(lambda a, b: ((a - b) ** 2).flatten(1).mean(1))
    assert "mean over pixels" in capsys.readouterr().out
    assert not checks.check_per_image_squared_error(lambda a, b: (a - b).abs().flatten(1).sum(1))
    assert "values differ" in capsys.readouterr().out
    assert not checks.check_per_image_squared_error(lambda a, b: [0.0])
    assert "return a tensor" in capsys.readouterr().out


def test_unwritten_stubs_get_a_friendly_message(capsys):
    for check in (checks.check_conv_output_size, checks.check_conv_transpose_output_size,
                  checks.check_per_image_squared_error):
        assert check(_stub) is False
        assert "not written yet" in capsys.readouterr().out


def test_a_crashing_answer_is_reported_not_raised(capsys):
    def crashes(n, k, s, p):
        return n // 0

    assert checks.check_conv_output_size(crashes) is False
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert checks.check_per_image_squared_error(lambda a, b: a @ b) is False
    assert "raised RuntimeError" in capsys.readouterr().out
