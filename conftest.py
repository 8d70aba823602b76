"""Doctests (``pytest --doctest-modules``) see ``ff``, ``torch`` and ``nn``, as the README's snippets do."""
import doctest

import pytest
from _pytest.doctest import DoctestItem


def pytest_collection_modifyitems(config, items):
    # A docstring whose every example is marked +SKIP (it needs files, the network or minutes)
    # is documentation, not a test: leave it out instead of reporting it as skipped.
    def unrunnable(item):
        return isinstance(item, DoctestItem) and all(e.options.get(doctest.SKIP) for e in item.dtest.examples)

    dropped = [item for item in items if unrunnable(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not unrunnable(item)]


@pytest.fixture(autouse=True)
def _doctest_names(request):
    if not isinstance(request.node, DoctestItem):
        return
    import torch
    from torch import nn

    import frameflex as ff

    torch.manual_seed(0)
    request.getfixturevalue("doctest_namespace").update(ff=ff, torch=torch, nn=nn)
