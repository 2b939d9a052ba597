"""Fakes for testing code built on ftdojo (and ftdojo's own tests).

* :class:`ScriptedAgent` submits a fixed list of plans, one trial each, and keeps
  every feedback — for checking a task, a sandbox set-up or failure handling without
  an agent's judgement in the way.
* :class:`ObservingAgent` wraps any agent and records everything the session showed
  it, so a test can search it (for example for held-out data that must not be there).
* :class:`ChatCompletionsServer` is a loopback HTTP server that speaks the OpenAI
  chat-completions protocol with scripted :class:`ChatReply` answers (plans, garbage,
  slow answers, 429 and 500), for testing an LLM planner without a model or a network.

:mod:`ftdojo.testing.jobs` holds misbehaving sandbox jobs (hangs, crashes, floods),
for checking that a sandbox contains them.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import attrs

from ftdojo.errors import BudgetExhausted
from ftdojo.feedback import Feedback
from ftdojo.plans import Plan

if TYPE_CHECKING:
    from ftdojo.cards import DataCatalog, TaskCard
    from ftdojo.models import ModelInfo
    from ftdojo.results import Budget, BudgetLeft, Rejection, Trial
    from ftdojo.session import Agent, Session

_T = TypeVar("_T")

__all__ = ["ChatCompletionsServer", "ChatReply", "ObservingAgent", "ScriptedAgent"]


class ScriptedAgent:
    """Submits ``plans`` in order (stopping early if the budget runs out)."""

    def __init__(self, plans: Iterable[Plan], *, smoke_first: bool = False) -> None:
        self.plans = list(plans)
        self.smoke_first = smoke_first
        self.feedback: list[Feedback] = []
        self.smoke_feedback: list[Feedback] = []

    async def run(self, session: Session) -> None:
        for plan in self.plans:
            if self.smoke_first:
                self.smoke_feedback.append(await session.smoke(plan))
            try:
                self.feedback.append(await session.submit(plan))
            except BudgetExhausted:
                return


class _RecordingSession:
    """Passes every call through to the real session and keeps what came back.

    It spells out every member of :class:`~ftdojo.session.Session` (a test keeps the
    two in step), so the wrapped agent sees the protocol and nothing more.
    """

    def __init__(self, session: Session, seen: list[Any]) -> None:
        self._session = session
        self._seen = seen

    def _keep(self, value: _T) -> _T:
        self._seen.append(value)
        return value

    @property
    def card(self) -> TaskCard:
        return self._keep(self._session.card)

    @property
    def catalog(self) -> DataCatalog:
        return self._keep(self._session.catalog)

    @property
    def model(self) -> ModelInfo:
        return self._keep(self._session.model)

    @property
    def history(self) -> tuple[Trial, ...]:
        return self._keep(self._session.history)

    @property
    def budget(self) -> Budget:
        return self._keep(self._session.budget)

    @property
    def budget_left(self) -> BudgetLeft:
        return self._keep(self._session.budget_left)

    @property
    def memory_limit_bytes(self) -> int | None:
        return self._keep(self._session.memory_limit_bytes)

    @property
    def rejections(self) -> tuple[Rejection, ...]:
        return self._keep(self._session.rejections)

    def open_source(self, source_id: str) -> BinaryIO:
        return self._keep(self._session.open_source(source_id))

    def read_source(self, source_id: str) -> Iterator[dict[str, Any]]:
        return self._keep(self._session.read_source(source_id))

    async def smoke(self, plan: Plan) -> Feedback:
        return self._keep(await self._session.smoke(plan))

    async def submit(self, plan: Plan) -> Feedback:
        return self._keep(await self._session.submit(plan))

    def choose_final(self, trial_id: str) -> None:
        self._session.choose_final(trial_id)
        self._keep(None)

    def annotate(self, trial_id: str, key: str, value: Any) -> None:
        self._session.annotate(trial_id, key, value)
        self._keep(None)

    def annotations(self, trial_id: str) -> dict[str, Any]:
        return self._keep(self._session.annotations(trial_id))

    def record_rejection(
        self, plan: Plan, reasons: Sequence[str], *, seconds: float, projected_seconds: float | None = None
    ) -> Rejection:
        return self._keep(
            self._session.record_rejection(
                plan, reasons, seconds=seconds, projected_seconds=projected_seconds
            )
        )


class ObservingAgent:
    """Runs ``inner`` and records every object the session handed it in ``seen``."""

    def __init__(self, inner: Agent) -> None:
        self.inner = inner
        self.seen: list[Any] = []

    async def run(self, session: Session) -> None:
        await self.inner.run(_RecordingSession(session, self.seen))


@attrs.frozen(kw_only=True)
class ChatReply:
    """One scripted answer of :class:`ChatCompletionsServer`.

    ``status`` 200 answers with ``content`` as the assistant's message; any other status
    answers with an OpenAI-style error body. ``delay`` seconds pass before the answer
    (a slow server); ``retry_after`` is sent as ``Retry-After-Ms`` (for 429 and 5xx).
    """

    content: str | None = None
    status: int = 200
    delay: float = 0.0
    retry_after: float | None = None


class ChatCompletionsServer:
    """A loopback server for ``POST /v1/chat/completions`` that answers from a script.

    Use as a context manager; ``base_url`` is what an OpenAI client wants. Each request
    takes the next reply (a plain string is a 200 answer with that content); when the
    script is used up, the server answers 500 "no scripted reply left", so a test that
    asks more than it planned fails loudly. ``requests`` holds every request body.
    """

    def __init__(self, replies: Iterable[ChatReply | str] = (), *, host: str = "127.0.0.1") -> None:
        self._replies = [r if isinstance(r, ChatReply) else ChatReply(content=r) for r in replies]
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def add(self, *replies: ChatReply | str) -> None:
        with self._lock:
            self._replies += [r if isinstance(r, ChatReply) else ChatReply(content=r) for r in replies]

    def _next(self, body: dict[str, Any]) -> ChatReply:
        with self._lock:
            self.requests.append(body)
            if not self._replies:
                return ChatReply(status=500, content="no scripted reply left")
            return self._replies.pop(0)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                # The client may have given up (its timeout), as a test of a slow server intends.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"unparsed": raw.decode(errors="replace")}
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}, {})
                    return
                reply = server._next(body if isinstance(body, dict) else {"body": body})
                if reply.delay:
                    time.sleep(reply.delay)
                headers = {}
                if reply.retry_after is not None:
                    headers["Retry-After-Ms"] = str(int(reply.retry_after * 1000))
                if reply.status != 200:
                    error = {"message": reply.content or f"scripted error {reply.status}", "type": "scripted"}
                    self._send(reply.status, {"error": {**error, "code": reply.status}}, headers)
                    return
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{len(server.requests)}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": str(body.get("model", "scripted")) if isinstance(body, dict) else "scripted",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply.content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    },
                    headers,
                )

        return Handler

    def __enter__(self) -> ChatCompletionsServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="chat-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
