"""Shared fixtures: one ftdojo home per test session, so the tiny model is built once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ftdojo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # CI points FTDOJO_HOME at a cache inside the checkout; otherwise a fresh folder.
    env = os.environ.get("FTDOJO_HOME")
    # Absolute, as the Dojo makes it: the attack tests aim at the private splits through it.
    return Path(env).resolve() if env else tmp_path_factory.mktemp("ftdojo-home")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
