"""The exercise checks of lesson 03 that test more than a formula: the sparse objective for ah.fit."""

import pytest
import torch

import autoenc_helpers as ah
from autoenc_helpers import checks, losses


def right(model, inputs, targets, weight, rho):
    h = model.encode(inputs)
    mse = ((model.decode(h) - targets) ** 2).mean()
    kl = losses.kl_sparsity_penalty(h, rho)
    return {"total_loss": mse + weight * kl, "mse_per_pixel": mse, "kl_sparsity_nats": kl}


def _with(**changes):
    """The right answer with some of its entries replaced, each computed from (h, mse, kl, weight, ...)."""
    def answer(model, inputs, targets, weight, rho):
        terms = right(model, inputs, targets, weight, rho)
        h = model.encode(inputs)
        env = dict(h=h, mse=terms["mse_per_pixel"], kl=terms["kl_sparsity_nats"], weight=weight, rho=rho,
                   model=model, inputs=inputs, targets=targets)
        for key, fn in changes.items():
            terms[key] = fn(env)
        return terms
    return answer


def test_the_check_accepts_right_answers_and_the_package_objective(capsys):
    assert checks.check_sparse_kl_objective(right)
    assert "all 5 hidden tests pass" in capsys.readouterr().out
    assert checks.check_sparse_kl_objective(
        lambda m, x, y, w, r: ah.sparse_objective("kl", weight=w, rho=r)(m, x, y))


def test_the_check_leaves_the_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check_sparse_kl_objective(right)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("answer, words", [
    (_with(total_loss=lambda e: e["mse"] + e["kl"]), "added without its weight"),
    (_with(total_loss=lambda e: e["kl"] + e["weight"] * e["mse"]), "multiplies the penalty, not the error"),
    (_with(total_loss=lambda e: e["mse"]), "the error alone"),
    (lambda m, x, y, w, r: right(m, x, x, w, r), "measured against the inputs"),
    (_with(mse_per_pixel=lambda e: ((e["model"].decode(e["h"]) - e["targets"]) ** 2).flatten(1).sum(1).mean(),
           total_loss=lambda e: ((e["model"].decode(e["h"]) - e["targets"]) ** 2).flatten(1).sum(1).mean()
           + e["weight"] * e["kl"]), "summed over the 784 pixels"),
    (_with(kl_sparsity_nats=lambda e: losses.kl_sparsity_penalty(e["h"], 0.05)), "the rho argument"),
    (_with(kl_sparsity_nats=lambda e: losses.bernoulli_kl(e["rho"], e["h"].mean(0)).mean()),
     "averaged the KL over the units"),
    (lambda m, x, y, w, r: {k: v.detach() for k, v in right(m, x, y, w, r).items()}, "carries no gradient"),
    (lambda m, x, y, w, r: dict(reversed(list(right(m, x, y, w, r).items()))), "must be the first entry"),
    (lambda m, x, y, w, r: {"loss": right(m, x, y, w, r)["total_loss"]}, "the dict has no"),
    (lambda m, x, y, w, r: right(m, x, y, w, r)["total_loss"], "return a dict"),
    (_with(kl_sparsity_nats=lambda e: losses.bernoulli_kl(e["rho"], e["h"].mean(0))),
     "must be a tensor holding one number"),
])
def test_the_check_names_each_mistake(answer, words, capsys):
    assert not checks.check_sparse_kl_objective(answer)
    assert words in capsys.readouterr().out


def test_the_check_handles_stubs_and_crashes(capsys):
    def stub(model, inputs, targets, weight, rho):
        raise NotImplementedError

    assert checks.check_sparse_kl_objective(stub) is False
    assert "not written yet" in capsys.readouterr().out
    assert checks.check_sparse_kl_objective(lambda m, x, y, w, r: m.encode(x) @ m.encode(x)) is False
    assert "raised RuntimeError" in capsys.readouterr().out


def test_the_l1_check_has_more_than_three_cases_and_catches_a_per_image_answer(capsys):
    assert checks.check_l1_activation_penalty(losses.l1_activation_penalty)
    assert "all 5 hidden tests pass" in capsys.readouterr().out
    assert not checks.check_l1_activation_penalty(lambda h: h.abs().sum(1).max())   # the largest image, not the mean
