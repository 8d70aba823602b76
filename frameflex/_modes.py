"""The one place a function switches a model's train/eval mode and puts it back."""
from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn

__all__ = ["train_mode"]


@contextlib.contextmanager
def train_mode(model: nn.Module, mode: bool = False) -> Iterator[nn.Module]:
    """Run the block with ``model.train(mode)``; afterwards every submodule gets back its own mode.

    ``model.train(was_training)`` would not do: it sets every submodule to the
    root's mode, so a submodule the user had put in eval mode would come back training.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    >>> _ = net[1].eval()
    >>> with train_mode(net, False):
    ...     net[1].training
    False
    >>> net.training, net[1].training
    (True, False)
    """
    saved = [(m, m.training) for m in model.modules()]
    model.train(mode)
    try:
        yield model
    finally:
        for m, training in saved:
            m.training = training
