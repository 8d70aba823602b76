"""Doctests (``pytest --doctest-modules``) see ``ff``, ``torch`` and ``nn``, as the README's snippets do."""
import pytest


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    import torch
    from torch import nn

    import frameflex as ff

    torch.manual_seed(0)
    doctest_namespace.update(ff=ff, torch=torch, nn=nn)
