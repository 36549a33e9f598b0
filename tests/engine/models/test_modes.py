"""Eval mode inside a block, the caller's mode restored afterwards, even on an error."""

from __future__ import annotations

import pytest
from torch import nn

from engine.models.components.modes import evaluating


@pytest.mark.parametrize("was_training", [True, False])
def test_mode_is_restored(was_training: bool) -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    model.train(was_training)
    with evaluating(model):
        assert not model.training and not model[1].training
    assert model.training is was_training and model[1].training is was_training


def test_mode_is_restored_after_an_error() -> None:
    model = nn.Linear(2, 2).train()
    with pytest.raises(RuntimeError), evaluating(model):
        raise RuntimeError("boom")
    assert model.training
