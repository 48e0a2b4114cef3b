"""preserved(): a model's train/eval modes (each submodule's) and gradients come back as they were."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cifarhelpers.models import preserved


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Dropout(0.5), nn.Linear(3, 2))


def test_each_submodules_mode_comes_back_not_just_the_top_flag():
    model = _model().train()
    model[1].eval()  # a frozen BatchNorm inside a training model
    with preserved(model):
        model.eval()
        assert not any(m.training for m in model.modules())
    assert model.training and model[0].training and model[2].training
    assert not model[1].training, "model.train(was_training) would have lost this"


def test_gradients_come_back_as_copies_and_none_stays_none():
    model = _model()
    model(torch.randn(8, 4)).sum().backward()
    model[3].bias.grad = None
    before = {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()}
    with preserved(model, grads=True):
        model.zero_grad(set_to_none=False)  # in place: the caller's tensors would change without a copy
        model(torch.randn(8, 4)).sum().backward()
    for name, p in model.named_parameters():
        if before[name] is None:
            assert p.grad is None, name
        else:
            assert torch.equal(p.grad, before[name]), name


def test_gradients_are_left_alone_unless_asked():
    model = _model()
    with preserved(model):
        model(torch.randn(8, 4)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_restores_on_an_exception_too():
    model = _model().train()
    with pytest.raises(RuntimeError, match="inside"):
        with preserved(model, grads=True):
            model.eval()
            model(torch.randn(8, 4)).sum().backward()
            raise RuntimeError("inside")
    assert model.training and all(p.grad is None for p in model.parameters())
