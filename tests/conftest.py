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


@pytest.fixture(params=["spawn", "fork"])
def launch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test twice: with every job spawned, and with jobs forked from the preloaded
    fork server (the default on Linux); runners created in the test follow it."""
    monkeypatch.setenv("FTDOJO_PRELOAD", "1" if request.param == "fork" else "0")
    return str(request.param)
