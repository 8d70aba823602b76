"""Doctests (``pytest --doctest-modules``) see ``ff``, ``torch`` and ``nn``, as the README's snippets do."""
import pytest
from _pytest.doctest import DoctestItem


@pytest.fixture(autouse=True)
def _doctest_names(request):
    if not isinstance(request.node, DoctestItem):
        return
    import torch
    from torch import nn

    import frameflex as ff

    torch.manual_seed(0)
    request.getfixturevalue("doctest_namespace").update(ff=ff, torch=torch, nn=nn)
