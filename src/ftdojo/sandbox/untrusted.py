"""Untrusted mode: the agent runs in a sandboxed process of its own, not in the Dojo's.

``Dojo().run(task, UntrustedAgent("package.module:MyAgent"))`` starts the agent in a
child process under the same isolation as every job (no network unless asked for, a
filesystem view in which the private splits, the journals and the evaluator's files do
not exist, a pid namespace, no capabilities) and proxies the session to it over a pipe
(:mod:`ftdojo.sandbox.agent_host` is the child's side). The agent's code never shares memory or a
filesystem view with the Dojo: it sees the raw data, read-only, and a scratch folder.

An attempt to cross the sandbox stops the agent at once; it is recorded in the run as a
violation, and the run ends with the trials finished so far.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import anyio
import anyio.abc
import anyio.to_thread
import attrs
import structlog

from ftdojo.errors import AgentError, BudgetExhausted, FTDojoError, IsolationError
from ftdojo.plans import Plan
from ftdojo.sandbox.cgroups import make_cgroup, remove_cgroup
from ftdojo.sandbox.environment import scrubbed_environment
from ftdojo.sandbox.isolation import FilesystemView, detect_isolation
from ftdojo.sandbox.jobs import Limits
from ftdojo.sandbox.process import SandboxedCommand, process_group, python_module, sandboxed_command
from ftdojo.serialization import from_json, unstructure

if TYPE_CHECKING:
    from ftdojo.session import Session

__all__ = ["AgentHostGrant", "HostedAgent", "UntrustedAgent"]

_log = structlog.get_logger(__name__)
_MAX_REQUEST_BYTES = 4 * 2**20
_HOST_MODULE = "ftdojo.sandbox.agent_host"


@attrs.frozen(kw_only=True)
class AgentHostGrant:
    """What the Dojo lets an untrusted agent's process have, beyond the session's public
    members: nothing else of the Dojo reaches the agent's host."""

    #: The agent's scratch folder (inside the run's folder), its working directory.
    workspace: Path
    #: What the agent's process sees: its workspace writable, the raw data readable, the
    #: private splits, journals and the evaluator's files not at all.
    view: FilesystemView
    #: Each raw source's file (inside the read-only data folder) and format, by source id.
    sources: Mapping[str, Mapping[str, str]]
    #: Records in the run what the agent's process tried that crossed the sandbox.
    report_violations: Callable[[Sequence[Mapping[str, Any]]], None]


@runtime_checkable
class HostedAgent(Protocol):
    """An agent the Dojo hosts in a process of its own: ``Dojo.run`` hands it its grant
    with the session (:class:`UntrustedAgent` is one)."""

    def check_isolation(self) -> None:
        """Raise :class:`~ftdojo.errors.IsolationError` where the agent must not run."""
        ...

    async def run_hosted(self, session: Session, grant: AgentHostGrant) -> None: ...


def _plan(params: dict[str, Any]) -> Plan:
    # Through JSON, so that a malformed plan is a PlanError naming the field.
    return from_json(json.dumps(params.get("plan"), allow_nan=True), Plan)


class UntrustedAgent:
    """An agent the Dojo runs in a sandboxed child process, named by its import path.

    ``entry`` is ``"package.module:factory"``; the child calls ``factory(**kwargs)`` to
    make the agent (``kwargs`` must be JSON data). ``python_path`` adds folders to the
    child's import path. ``allow_network=True`` gives the agent the network (an LLM
    agent needs its endpoint); it is recorded in the run, like every violation.
    ``limits`` bound the agent's process (memory, processes, output); its wall-clock
    limit is the run's time budget plus a margin.

    The agent runs only where its process gets a filesystem view (bubblewrap): without
    one it could read every file the Dojo's user can, and the audit hook in its process
    only records what it does, it stops nothing. ``Dojo.run`` refuses such a run with an
    :class:`~ftdojo.errors.IsolationError` unless ``unsafe_without_filesystem_view=True``
    says, by name, that the user accepts that.
    """

    def __init__(
        self,
        entry: str,
        *,
        kwargs: Mapping[str, Any] | None = None,
        python_path: Sequence[Path | str] = (),
        allow_network: bool = False,
        limits: Limits | None = None,
        unsafe_without_filesystem_view: bool = False,
    ) -> None:
        module, sep, attribute = entry.partition(":")
        if not sep or not module or not attribute:
            raise AgentError(f"an untrusted agent is named 'package.module:factory', got {entry!r}")
        try:
            json.dumps(dict(kwargs or {}))
        except (TypeError, ValueError) as exc:
            raise AgentError(f"the kwargs of {entry!r} must be JSON data: {exc}") from exc
        self.entry = entry
        self.kwargs = dict(kwargs or {})
        self.python_path = tuple(str(Path(p).resolve()) for p in python_path)
        self.allow_network = allow_network
        self.unsafe_without_filesystem_view = unsafe_without_filesystem_view
        self.limits = limits or Limits(memory_bytes=4 * 2**30, output_bytes=256 * 1024)
        #: What the agent's process saw of the sandbox, once it ran.
        self.violations: list[dict[str, Any]] = []

    #: The entry-point group where packages declare agents (``[project.entry-points."ftdojo.agents"]``).
    ENTRY_POINT_GROUP = "ftdojo.agents"

    @classmethod
    def from_entry_point(cls, name: str, **options: Any) -> UntrustedAgent:
        """The agent an installed package declares under ``name`` in the ``ftdojo.agents``
        entry-point group. Only the package's metadata is read here: its code is imported
        in the sandboxed process alone."""
        from importlib.metadata import entry_points

        found = [ep for ep in entry_points(group=cls.ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            known = sorted(ep.name for ep in entry_points(group=cls.ENTRY_POINT_GROUP))
            raise AgentError(
                f"no agent {name!r} in the {cls.ENTRY_POINT_GROUP!r} entry points; known: {known}"
            )
        return cls(found[0].value.replace(" ", ""), **options)

    def __repr__(self) -> str:
        return f"UntrustedAgent({self.entry!r})"

    def check_isolation(self) -> None:
        """Refuse to host the agent where its process would see the whole filesystem (the
        isolation its own process gets on this machine, whatever runs the Dojo's jobs)."""
        isolation = detect_isolation(allow_network=self.allow_network)
        if isolation.filesystem_view or self.unsafe_without_filesystem_view:
            if not isolation.filesystem_view:
                _log.warning(
                    "untrusted agent runs without a filesystem view (unsafe_without_filesystem_view=True)",
                    agent=self.entry,
                )
            return
        raise IsolationError(
            f"{self!r} needs a filesystem view for its process, and this machine gives "
            f"{isolation.describe()}: install bubblewrap (bwrap), or pass "
            "unsafe_without_filesystem_view=True (ftdojo bench --unsafe-without-filesystem-view) "
            "to run it able to read every file you can"
        )

    async def run(self, session: Session) -> None:
        """Refused: the agent's process needs what only the Dojo grants (see :meth:`run_hosted`)."""
        raise AgentError(
            f"{self!r} runs only under Dojo.run, which hands it its sandbox grant with the session"
        )

    async def run_hosted(self, session: Session, grant: AgentHostGrant) -> None:
        """Run the agent in its sandboxed process, serving its session calls until it returns."""
        view = grant.view
        handshake = {
            "agent": self.entry,
            "kwargs": self.kwargs,
            "card": unstructure(session.card),
            "catalog": unstructure(session.catalog),
            "model": unstructure(session.model),
            "budget": unstructure(session.budget),
            "memory_limit_bytes": session.memory_limit_bytes,
            "sources": {source_id: dict(source) for source_id, source in grant.sources.items()},
            "history": [unstructure(t) for t in session.history],
            "annotations": {t.trial_id: session.annotations(t.trial_id) for t in session.history},
            "rejections": [unstructure(r) for r in session.rejections],
            "view": {"writable": view.writable, "hidden": view.hidden, "readable": view.readable},
            "limits": attrs.asdict(self.limits),
        }
        path = grant.workspace / f"handshake-{secrets.token_hex(4)}.json"
        path.write_text(json.dumps(handshake, allow_nan=True), encoding="utf-8")
        await self._serve(session, grant, path)

    def _command(
        self, path: Path, grant: AgentHostGrant, cgroup: Path | None
    ) -> tuple[SandboxedCommand, dict[str, str]]:
        isolation = detect_isolation(allow_network=self.allow_network)
        command = sandboxed_command(
            isolation,
            grant.view,
            workdir=grant.workspace,
            cgroup=cgroup,
            program=python_module(sys.executable, _HOST_MODULE, str(path)),
        )
        env = scrubbed_environment(workspace=grant.workspace, limits=self.limits)
        if self.python_path:
            env["PYTHONPATH"] = os.pathsep.join([*self.python_path, *filter(None, [env.get("PYTHONPATH")])])
        return command, env

    async def _serve(self, session: Session, grant: AgentHostGrant, path: Path) -> None:
        cgroup = await anyio.to_thread.run_sync(make_cgroup, self.limits.max_processes)
        try:
            await self._serve_in(session, grant, path, cgroup)
        finally:
            if cgroup is not None:
                await anyio.to_thread.run_sync(remove_cgroup, cgroup)

    async def _serve_in(
        self, session: Session, grant: AgentHostGrant, path: Path, cgroup: Path | None
    ) -> None:
        command, env = self._command(path, grant, cgroup)
        wall = session.budget.max_seconds
        deadline = time.monotonic() + (wall * 1.5 + 120 if wall else self.limits.wall_seconds)
        async with process_group(
            command.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=grant.workspace,
            env=env,
        ) as process:
            failure = await self._converse(session, grant, process, deadline)
        if failure:
            raise AgentError(f"the untrusted agent failed: {failure}")

    async def _converse(
        self, session: Session, grant: AgentHostGrant, process: anyio.abc.Process, deadline: float
    ) -> str | None:
        """Answer the agent's requests until it is done; why it failed, if it says so."""
        assert process.stdin is not None
        assert process.stdout is not None
        buffer = bytearray()
        try:
            with anyio.fail_after(max(1.0, deadline - time.monotonic())):
                async for chunk in process.stdout:
                    buffer += chunk
                    if len(buffer) > _MAX_REQUEST_BYTES and b"\n" not in buffer:
                        raise AgentError("the untrusted agent sent a request over 4 MiB")
                    while b"\n" in buffer:
                        line, _, rest = bytes(buffer).partition(b"\n")
                        buffer = bytearray(rest)
                        finished = await self._handle(session, grant, line, process)
                        if finished is not None:
                            return finished or None
                raise AgentError("the untrusted agent's process ended without saying it was done")
        except TimeoutError as exc:
            raise AgentError("the untrusted agent ran past the run's time budget and was stopped") from exc

    async def _handle(
        self, session: Session, grant: AgentHostGrant, line: bytes, process: anyio.abc.Process
    ) -> str | None:
        """Answer one request; ``None`` to go on, ``""`` when the agent is done, else why it failed."""
        try:
            request = json.loads(line)
            method = str(request["method"])
            params = dict(request.get("params") or {})
        except (ValueError, KeyError, TypeError) as exc:
            found = {"kind": "protocol", "detail": f"not a session request: {line[:200]!r}"}
            self.violations.append(found)
            grant.report_violations([found])
            raise AgentError(f"the untrusted agent broke the session protocol: {line[:200]!r}") from exc
        if method == "done":
            return ""
        if method == "failed":
            return str(params.get("error", "no reason given"))
        if method == "violation":
            found = {
                "kind": str(params.get("kind", "unknown"))[:64],
                "detail": str(params.get("detail", ""))[:500],
            }
            self.violations.append(found)
            grant.report_violations([found])
            raise AgentError(
                f"the untrusted agent was stopped at a sandbox violation: {found['kind']}: {found['detail']}"
            )
        ident = request.get("id")
        try:
            result = await self._dispatch(session, method, params)
            answer: dict[str, Any] = {"id": ident, "result": result}
        except FTDojoError as exc:
            kind = "BudgetExhausted" if isinstance(exc, BudgetExhausted) else type(exc).__name__
            answer = {"id": ident, "error": {"type": kind, "message": str(exc)}}
        assert process.stdin is not None
        await process.stdin.send((json.dumps(answer, allow_nan=True) + "\n").encode())
        return None

    async def _dispatch(self, session: Session, method: str, params: dict[str, Any]) -> Any:
        if method == "submit":
            await session.submit(_plan(params))
            return unstructure(session.history[-1])
        if method == "smoke":
            return unstructure(await session.smoke(_plan(params)))
        if method == "budget_left":
            return unstructure(session.budget_left)
        if method == "choose_final":
            session.choose_final(str(params["trial_id"]))
            return None
        if method == "annotate":
            session.annotate(str(params["trial_id"]), str(params["key"]), params.get("value"))
            return None
        if method == "record_rejection":
            rejection = session.record_rejection(
                _plan(params),
                [str(r) for r in params.get("reasons", [])],
                seconds=float(params.get("seconds", 0.0)),
                projected_seconds=params.get("projected_seconds"),
            )
            return unstructure(rejection)
        raise AgentError(f"unknown session method {method!r}")
