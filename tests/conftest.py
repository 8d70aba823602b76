"""Fixtures; the models themselves are in _models.py."""
import pytest

from _models import build


@pytest.fixture
def shared_net():
    return build("shared_bn3d")
