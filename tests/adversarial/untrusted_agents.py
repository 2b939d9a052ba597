"""Agents for the untrusted-mode tests: one honest, the others each try one way out.

Loaded by import path in the agent's sandboxed process (this folder is put on its
import path), never imported into the Dojo's.
"""

from __future__ import annotations

import os
import socket
import subprocess
from typing import Any

from ftdojo import DataRecipe, Plan, SourceSelection, TrainConfig

SMALL = TrainConfig(method="full", learning_rate=1e-3, max_steps=2, batch_size=8, max_length=256)


class Honest:
    """Submits one small plan from what the session shows, then annotates and chooses it."""

    def __init__(self, then: str = "", target: str = "") -> None:
        self.then = then
        self.target = target

    async def run(self, session: Any) -> None:
        source = session.catalog.entries[0].source_id
        first = next(iter(session.read_source(source)))  # raw data is readable
        assert isinstance(first, dict)
        plan = Plan(
            data=DataRecipe(sources=[SourceSelection(source=source)], max_records=32),
            train=SMALL,
            hypothesis=f"{session.card.name}: one small trial ({session.budget_left.trials} left)",
        )
        feedback = await session.submit(plan)
        session.annotate(feedback.trial_id, "note", {"ok": feedback.ok})
        session.choose_final(feedback.trial_id)
        if self.then:
            ATTACKS[self.then](self.target)


def _read(target: str) -> None:
    with open(target) as handle:
        handle.read()


def _write(target: str) -> None:
    with open(target, "a") as handle:
        handle.write("poison")


def _proc(target: str) -> None:
    with open(f"/proc/{target}/environ", "rb") as handle:
        handle.read()


def _connect(target: str) -> None:
    socket.create_connection(("198.51.100.7", 443), timeout=3)


def _spawn(target: str) -> None:
    subprocess.run(["cat", target], check=False)


def _garble(target: str) -> None:
    # The request channel is the one descriptor the host keeps open for writing besides 1 and 2.
    for fd in range(3, 64):
        try:
            os.write(fd, b"this is not a request\n")
        except OSError:
            continue


def _hoard(target: str) -> None:
    bytearray(8 * 2**30)  # past the agent's memory limit


ATTACKS = {
    "hoard": _hoard,
    "read": _read,
    "write": _write,
    "proc": _proc,
    "connect": _connect,
    "spawn": _spawn,
    "garble": _garble,
}


class Attacker:
    """Tries one attack before doing anything else."""

    def __init__(self, attack: str, target: str = "") -> None:
        self.attack = attack
        self.target = target

    async def run(self, session: Any) -> None:
        ATTACKS[self.attack](self.target)
        await session.submit(
            Plan(data=DataRecipe(sources=[SourceSelection(source="worked_solutions")]), train=SMALL)
        )


class Scripted:
    """Submits the plans it is given (as JSON data), in order, until the budget is spent."""

    def __init__(self, plans: list[dict[str, Any]]) -> None:
        from ftdojo.serialization import structure

        self.plans = [structure(plan, Plan) for plan in plans]

    async def run(self, session: Any) -> None:
        from ftdojo.errors import BudgetExhausted

        for plan in self.plans:
            try:
                await session.submit(plan)
            except BudgetExhausted:
                return
