"""Fixtures for the ledger core tests: a test network and a store in a temporary directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.store import Store
from tests.helpers import EU_PARTICIPANTS, TestNetwork


@pytest.fixture
def make_network() -> Callable[..., TestNetwork]:
    """A factory: make_network(participants=..., suspended=..., parameters=...)."""
    return TestNetwork


@pytest.fixture
def network() -> TestNetwork:
    """BE, AE, IN and RU, one country each, every participant a validator."""
    return TestNetwork()


@pytest.fixture
def eu_network() -> TestNetwork:
    """The same network plus EU standing for DE, CZ and FR."""
    return TestNetwork(EU_PARTICIPANTS)


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[Callable[..., Store]]:
    """A factory of stores under tmp_path, closed at teardown."""
    opened: list[Store] = []

    def make(net: TestNetwork, name: str = "chain", **kwargs: Any) -> Store:
        store = Store(tmp_path / name, net.genesis, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(network: TestNetwork, make_store: Callable[..., Store]) -> Store:
    return make_store(network)
