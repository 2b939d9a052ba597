"""The child side of untrusted mode: ``python -m ftdojo.sandbox.agent_host HANDSHAKE_JSON``.

Runs an agent that the Dojo does not trust in a sandboxed process of its own. The agent
gets a :class:`RemoteSession` with the same members as :class:`ftdojo.Session`: what
never changes during a run (the task card, the catalogue, the model facts, the budget)
comes in the handshake, raw sources are read from the read-only data folder the
sandbox shows, and everything else is a request to the Dojo over the process's pipes,
one JSON object per line: ``{"id", "method", "params"}`` out on stdout, ``{"id",
"result"}`` or ``{"id", "error": {"type", "message"}}`` back on stdin. The agent's own
output goes to stderr. The last line is ``{"method": "done"}`` or ``{"method":
"failed", "params": {"error"}}``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["RemoteSession", "main"]


class _Channel:
    """Blocking request/response over two pipes; safe to call from several threads."""

    def __init__(self, requests_fd: int, responses: BinaryIO) -> None:
        self._requests_fd = requests_fd
        self._responses = responses
        self._lock = threading.Lock()
        self._next = 0

    def send(self, method: str, **params: Any) -> None:
        line = (json.dumps({"method": method, "params": params}, allow_nan=True) + "\n").encode()
        with self._lock:
            os.write(self._requests_fd, line)

    def call(self, method: str, **params: Any) -> Any:
        from ftdojo.errors import AgentError, BudgetExhausted, FTDojoError, PlanError

        with self._lock:
            self._next += 1
            ident = self._next
            line = (
                json.dumps({"id": ident, "method": method, "params": params}, allow_nan=True) + "\n"
            ).encode()
            os.write(self._requests_fd, line)
            raw = self._responses.readline()
        if not raw:
            raise AgentError("the Dojo closed the session")
        answer = json.loads(raw)
        error = answer.get("error")
        if error:
            kinds: dict[str, type[FTDojoError]] = {
                "BudgetExhausted": BudgetExhausted,
                "PlanError": PlanError,
                "AgentError": AgentError,
            }
            raise kinds.get(str(error.get("type")), AgentError)(str(error.get("message")))
        return answer.get("result")


class RemoteSession:
    """What an untrusted agent holds instead of :class:`ftdojo.Session`: the same members."""

    def __init__(self, handshake: dict[str, Any], channel: _Channel) -> None:
        from ftdojo.cards import DataCatalog, TaskCard
        from ftdojo.models import ModelInfo
        from ftdojo.results import Budget, Rejection, Trial
        from ftdojo.serialization import structure

        self._channel = channel
        self.card = structure(handshake["card"], TaskCard)
        self.catalog = structure(handshake["catalog"], DataCatalog)
        self.model = structure(handshake["model"], ModelInfo)
        self.budget = structure(handshake["budget"], Budget)
        self.memory_limit_bytes: int | None = handshake.get("memory_limit_bytes")
        self._sources: dict[str, dict[str, str]] = handshake["sources"]
        self._history = [structure(t, Trial) for t in handshake.get("history", [])]
        self._annotations: dict[str, dict[str, Any]] = handshake.get("annotations", {})
        self._rejections = [structure(r, Rejection) for r in handshake.get("rejections", [])]

    @property
    def history(self) -> tuple[Any, ...]:
        return tuple(self._history)

    @property
    def budget_left(self) -> Any:
        from ftdojo.results import BudgetLeft
        from ftdojo.serialization import structure

        return structure(self._channel.call("budget_left"), BudgetLeft)

    def open_source(self, source_id: str) -> BinaryIO:
        from ftdojo.errors import UnknownSourceError

        if source_id not in self._sources:
            raise UnknownSourceError(f"no raw source {source_id!r}; known: {sorted(self._sources)}")
        return open(self._sources[source_id]["path"], "rb")

    def read_source(self, source_id: str) -> Iterator[dict[str, Any]]:
        from ftdojo.rawformat import iter_records

        with self.open_source(source_id) as handle:
            yield from iter_records(handle, self._sources[source_id]["format"], where=source_id)

    async def _remote(self, method: str, **params: Any) -> Any:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(lambda: self._channel.call(method, **params))

    async def smoke(self, plan: Any) -> Any:
        from ftdojo.feedback import Feedback
        from ftdojo.serialization import structure, unstructure

        return structure(await self._remote("smoke", plan=unstructure(plan)), Feedback)

    async def submit(self, plan: Any) -> Any:
        from ftdojo.results import Trial
        from ftdojo.serialization import structure, unstructure

        trial = structure(await self._remote("submit", plan=unstructure(plan)), Trial)
        self._history.append(trial)
        return trial.feedback

    def choose_final(self, trial_id: str) -> None:
        self._channel.call("choose_final", trial_id=trial_id)

    def annotate(self, trial_id: str, key: str, value: Any) -> None:
        self._channel.call("annotate", trial_id=trial_id, key=key, value=value)
        self._annotations.setdefault(trial_id, {})[key] = value

    def annotations(self, trial_id: str) -> dict[str, Any]:
        return dict(self._annotations.get(trial_id, {}))

    @property
    def rejections(self) -> tuple[Any, ...]:
        return tuple(self._rejections)

    def record_rejection(
        self, plan: Any, reasons: Sequence[str], *, seconds: float, projected_seconds: float | None = None
    ) -> Any:
        from ftdojo.results import Rejection
        from ftdojo.serialization import structure, unstructure

        rejection = structure(
            self._channel.call(
                "record_rejection",
                plan=unstructure(plan),
                reasons=list(reasons),
                seconds=seconds,
                projected_seconds=projected_seconds,
            ),
            Rejection,
        )
        self._rejections.append(rejection)
        return rejection


def _load_agent(entry: str, kwargs: dict[str, Any]) -> Any:
    module_name, _, attribute = entry.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target(**kwargs)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ftdojo.sandbox.agent_host HANDSHAKE_JSON", file=sys.stderr)
        return 2
    handshake_path = Path(args[0]).resolve()
    handshake = json.loads(handshake_path.read_text(encoding="utf-8"))
    # The same resource limits as a job's, before the agent's code is imported.
    from ftdojo.sandbox.worker import apply_limits

    for problem in apply_limits(handshake.get("limits") or {}):
        print(f"ftdojo agent host: {problem}", file=sys.stderr)
    # The request channel is moved off fd 1 so that whatever the agent prints goes to stderr.
    sys.stdout.flush()
    requests_fd = os.dup(1)
    os.dup2(2, 1)
    channel = _Channel(requests_fd, sys.stdin.buffer)

    from ftdojo.sandbox.guard import Guard

    def report(kind: str, detail: str) -> None:
        channel.send("violation", kind=kind, detail=detail, time=time.time())

    guard = Guard(handshake.get("view"), report)
    guard.install()
    try:
        import anyio

        agent = _load_agent(str(handshake["agent"]), dict(handshake.get("kwargs") or {}))
        session = RemoteSession(handshake, channel)
        guard.untrusted = True
        anyio.run(agent.run, session)
    except BaseException as exc:
        traceback.print_exc()
        channel.send("failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        return 1
    channel.send("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
