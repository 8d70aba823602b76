"""Seeded weights and parity fixtures, shared by every arch's parity test.

The fixture format is described in tests/fixtures/README.md.

A parity fixture (tests/fixtures/*.json) records, for one official model: where it
came from, the key list with shapes and dtypes of its state dict in the OFFICIAL
layout, the input seed, and the logits the official code produced. Weights are
not stored: :func:`seeded_state_dict` rebuilds them from the key names, with the
same rule the fixture script used on the official model.

The rule: each tensor gets a torch.Generator seeded with crc32(key); conv/linear
weights ~ N(0, 1/fan_in); biases ~ N(0, 0.01); norm weights ~ 1 + N(0, 0.1) and biases
~ N(0, 0.1); running_mean ~ N(0, 0.1); running_var ~ U(0.5, 1.5); the FFN adapter
weights (``adaconv``) ~ N(0, 0.1); integer buffers are zero. The input is
``torch.randn(shape, generator=torch.Generator().manual_seed(seed))``.
"""
from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import torch

FIXTURES = Path(__file__).parent / "fixtures"


def seeded_tensor(key: str, shape, dtype=torch.float32) -> torch.Tensor:
    shape = tuple(shape)
    if not dtype.is_floating_point:
        return torch.zeros(shape, dtype=dtype)
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    leaf = key.rsplit(".", 1)[-1]
    randn = lambda: torch.randn(shape, generator=g)  # noqa: E731
    if leaf == "running_var":
        t = 0.5 + torch.rand(shape, generator=g)
    elif leaf == "running_mean":
        t = 0.1 * randn()
    elif "adaconv" in key:
        t = 0.1 * randn()
    elif len(shape) >= 2:
        t = randn() / math.sqrt(max(1, math.prod(shape[1:])))
    elif leaf == "weight":  # a norm's affine weight (1-D)
        t = 1 + 0.1 * randn()
    else:  # biases, norm biases, other 1-D parameters
        t = (0.1 if "norm" in key or "bn" in key else 0.01) * randn()
    return t.to(dtype)


_DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64, "float16": torch.float16}


def seeded_state_dict(keys: dict) -> dict[str, torch.Tensor]:
    """``{name: [shape, dtype]}`` (a fixture's key list) -> seeded tensors."""
    return {k: seeded_tensor(k, shape, _DTYPES[dtype]) for k, (shape, dtype) in keys.items()}


def key_list(state_dict: dict) -> dict:
    """The fixture form of a state dict's keys."""
    return {k: [list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in state_dict.items()}


def seeded_input(shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed))


def load_fixture(name: str) -> dict:
    """A fixture with ``logits`` as tensors keyed by frame count (int) or "plain"."""
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    data["logits"] = {(int(k) if k.isdigit() else k): torch.tensor(v) for k, v in data["logits"].items()}
    return data
