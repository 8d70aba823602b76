"""The one place that turns what a model returns into logits.

Zoo models return a tensor; transformers models return a ``ModelOutput`` (a dict
subclass with ``.logits``). Everything that reads a model's prediction
(forward_multi, FFNLoss, evaluate, cascade) goes through :func:`logits_of`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["logits_of"]


def logits_of(output: Any) -> torch.Tensor:
    """The logits in ``output``: a tensor as is, else its ``.logits`` / ``["logits"]``.

    >>> logits_of(torch.zeros(2, 5)).shape
    torch.Size([2, 5])
    >>> logits_of({"logits": torch.zeros(2, 5), "hidden_states": None}).shape
    torch.Size([2, 5])
    """
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if logits is None and isinstance(output, Mapping):
        logits = output.get("logits")
    if isinstance(logits, torch.Tensor):
        return logits
    raise TypeError(
        f"expected the model to return logits (a tensor, or an output with .logits such as a transformers "
        f"ModelOutput), got {type(output).__name__}"
        + (" (return_dict=False gives a tuple: keep the default return_dict=True)" if isinstance(output, tuple) else ""))
