"""Fixtures the notifications tests share: one volunteer of grid A, and their request headers."""

from __future__ import annotations

import pytest

from accounts.models import User
from tests import factories
from tests.conftest import Tree


@pytest.fixture
def user(tree: Tree) -> User:
    return factories.make_volunteer(tree.grid_a).user


@pytest.fixture
def headers(user: User) -> dict[str, str]:
    return factories.headers_for(user)
