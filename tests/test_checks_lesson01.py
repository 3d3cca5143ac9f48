"""Lesson 01's exercise check: one epoch of autoencoder training, right and wrong answers."""

import pytest
import torch
import torch.nn.functional as F

from autoenc_helpers import checks


def make_epoch(*, train_mode=True, shuffle=True, use_generator=True, zero_grad=True, step=True,
               loss=F.mse_loss, result="weighted", drop_last=False, in_place=False, input_scale=1.0,
               batch_scale=1, extra_batch=False):
    """A train_epoch written right, or with one chosen mistake."""

    def train_epoch(model, optimizer, images, batch_size, generator):
        if train_mode:
            model.train()
        n = len(images)
        if shuffle:
            order = torch.randperm(n, generator=generator) if use_generator else torch.randperm(n)
        else:
            order = torch.arange(n)
        size = batch_size * batch_scale
        stop = n - n % size if drop_last else n
        starts = list(range(0, stop, size)) + ([0] if extra_batch else [])
        total, weighted, values = 0.0, 0.0, []
        for start in starts:
            batch = images[order[start:start + size]]
            if in_place:
                images.add_(0.001)
            value = loss(model(batch * input_scale), batch)
            if zero_grad:
                optimizer.zero_grad()
            value.backward()
            if step:
                optimizer.step()
            weighted += value.item() * len(batch)
            total += value.item()
            values.append(value)
        return {"weighted": lambda: weighted / n, "plain mean": lambda: total / len(values),
                "last": lambda: values[-1].item(), "tensor": lambda: values[-1], "sum": lambda: total,
                "weighted sum": lambda: weighted, "times 784": lambda: 784 * weighted / n,
                "twice": lambda: 2 * weighted / n, "None": lambda: None}[result]()

    return train_epoch


def test_a_right_answer_passes(capsys):
    assert checks.check_train_epoch(make_epoch())
    assert "all 9 hidden tests pass" in capsys.readouterr().out


def test_the_lesson_solution_style_with_zero_grad_set_to_none_passes(capsys):
    def train_epoch(model, optimizer, images, batch_size, generator):
        model.train()
        order = torch.randperm(len(images), generator=generator).to(images.device)
        total = 0.0
        for start in range(0, len(images), batch_size):
            batch = images[order[start:start + batch_size]]
            loss = torch.nn.MSELoss()(model(batch), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * batch.shape[0]
        return total / len(images)

    assert checks.check_train_epoch(train_epoch)


@pytest.mark.parametrize("mistake, message", [
    (dict(train_mode=False), "call model.train()"),
    (dict(shuffle=False), "stored order"),
    (dict(use_generator=False), "generator=generator"),
    (dict(zero_grad=False), "optimizer.zero_grad() before loss.backward()"),
    (dict(step=False), "call optimizer.step()"),
    (dict(loss=lambda a, b: ((a - b) ** 2).sum()), "the loss is summed"),
    (dict(loss=lambda a, b: (a - b).abs().mean()), "absolute error"),
    (dict(result="plain mean"), "weight each batch's loss by its size"),
    (dict(result="last"), "the last batch's loss alone"),
    (dict(result="tensor"), "return a Python float"),
    (dict(drop_last=True), "never used in the epoch"),
    (dict(in_place=True), "in place"),                       # named by the common runner
])
def test_each_mistake_is_named(capsys, mistake, message):
    assert checks.check_train_epoch(make_epoch(**mistake)) is False
    out = capsys.readouterr().out
    assert "hidden tests failed" in out
    assert message in out


def test_a_stub_gets_a_friendly_message_and_a_crash_is_reported(capsys):
    def stub(model, optimizer, images, batch_size, generator):
        raise NotImplementedError

    assert checks.check_train_epoch(stub) is False
    assert "not written yet" in capsys.readouterr().out

    def crashes(model, optimizer, images, batch_size, generator):
        return model(images[:, :, :5])          # a wrong slice: the first layer expects 784 pixels

    assert checks.check_train_epoch(crashes) is False
    assert "raised" in capsys.readouterr().out


def test_a_function_that_never_runs_the_model_is_told_so(capsys):
    assert checks.check_train_epoch(lambda model, optimizer, images, batch_size, generator: 0.1) is False
    assert "never called model(batch)" in capsys.readouterr().out
