"""Jobs forked from the preloaded fork server: the same job, the same limits, the same
report as a spawned worker, without the import cost.

(Every test of ``test_sandbox.py`` and ``test_isolation.py`` also runs both ways; these
check what only the fork server has.)
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from ftdojo.feedback import ErrorKind, Stage
from ftdojo.sandbox import Job, JobOutcome, Limits, SandboxRunner
from ftdojo.sandbox.fork.handle import fork_server
from ftdojo.sandbox.isolation import FilesystemView, detect_isolation

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork servers are Linux only"),
]

# Light preloads keep these tests fast; the default (torch, transformers, peft) is
# measured by benchmarks/bench_trial_speed.py.
LIGHT = ("ftdojo.sandbox.worker", "ftdojo.testing.jobs")


def _job(name: str, payload: dict[str, Any] | None = None, view: FilesystemView | None = None) -> Job:
    return Job(entry=f"ftdojo.testing.jobs:{name}", payload=payload or {}, stage=Stage.TRAIN, view=view)


async def _run(tmp_path: Path, name: str, payload: dict[str, Any] | None = None, **limits: Any) -> JobOutcome:
    return await SandboxRunner(preload=LIGHT).run(
        _job(name, payload), workspace=tmp_path / "ws", limits=Limits(**limits)
    )


async def test_a_forked_job_reports_like_a_spawned_one(tmp_path: Path) -> None:
    forked = await _run(tmp_path / "f", "echo", {"steps": 4, "x": 1})
    spawned = await SandboxRunner(preload=False).run(
        _job("echo", {"steps": 4, "x": 1}), workspace=tmp_path / "s" / "ws", limits=Limits()
    )

    assert (forked.launch, spawned.launch) == ("fork", "spawn")
    assert forked.ok
    assert spawned.ok
    assert forked.result == spawned.result == {"steps": 4, "x": 1}
    assert [e["step"] for e in forked.events if e["type"] == "progress"] == [0, 1, 2, 3]
    assert "echo: printed to stdout" in forked.output


async def test_a_forked_job_gets_the_runners_environment_not_the_servers(tmp_path: Path) -> None:
    forked = await _run(tmp_path / "f", "env")
    spawned = await SandboxRunner(preload=False).run(
        _job("env"), workspace=tmp_path / "s" / "ws", limits=Limits()
    )

    assert forked.ok
    assert spawned.ok
    assert forked.result is not None
    assert spawned.result is not None
    # Same variables (the workspace-specific values differ), none of the server's own.
    assert sorted(forked.result) == sorted(spawned.result)
    assert forked.result["HOME"] == str(tmp_path / "f" / "ws")
    assert "ftdojo-forkserver" not in str(forked.result)


@pytest.mark.parametrize(
    ("name", "kind", "sig"),
    [
        ("crash", ErrorKind.CONFIG, None),  # an unclassified exception in training
        ("kill_self", ErrorKind.OOM, signal.SIGKILL),
        ("segfault", ErrorKind.ENV, signal.SIGSEGV),
        ("hard_exit", ErrorKind.ENV, None),
    ],
)
async def test_how_a_forked_job_ended_is_passed_on(
    tmp_path: Path, name: str, kind: ErrorKind, sig: int | None
) -> None:
    outcome = await _run(tmp_path, name)

    assert outcome.launch == "fork"
    assert outcome.error_kind is kind, outcome.root_cause
    assert outcome.signal == sig


async def test_a_forked_job_that_hangs_gets_sigterm_then_is_gone(tmp_path: Path) -> None:
    beat = tmp_path / "ws" / "beat-pid"
    started = time.monotonic()
    outcome = await _run(tmp_path, "hang", wall_seconds=3, grace_seconds=1)

    assert outcome.launch == "fork"
    assert outcome.error_kind is ErrorKind.TIMEOUT
    assert time.monotonic() - started < 20
    # The job stopped beating: it is dead, not orphaned under the server.
    last = beat.read_text()
    await anyio.sleep(1.0)
    assert beat.read_text() == last


async def test_a_small_memory_limit_is_spawned_and_says_why(tmp_path: Path) -> None:
    server = fork_server({"PATH": os.environ.get("PATH", "")}, modules=LIGHT)
    assert server.ready, server.why
    limit = server.vm_bytes + 64 * 2**20  # below what a forked job inherits plus its room

    outcome = await _run(tmp_path, "echo", memory_bytes=limit)

    assert outcome.ok
    assert outcome.launch == "spawn"
    assert "memory limit" in outcome.launch_note


@pytest.mark.skipif(not detect_isolation().filesystem_view, reason="no filesystem view here")
async def test_the_servers_socket_is_hidden_from_a_forked_job(tmp_path: Path) -> None:
    server = fork_server({"PATH": os.environ.get("PATH", "")}, modules=LIGHT)
    code = (
        "import os\n"
        f"result['seen'] = os.path.exists({str(server.socket_path)!r})\n"
        f"result['folder'] = os.listdir({str(server.socket_path.parent)!r})\n"
    )
    view = FilesystemView.of(writable=[tmp_path / "ws"])
    outcome = await SandboxRunner(preload=LIGHT).run(
        Job(
            entry="ftdojo.testing.jobs:run_code",
            payload={"code": code, "trusted": True},
            stage=Stage.BUILD,
            view=view,
        ),
        workspace=tmp_path / "ws",
        limits=Limits(),
    )

    assert outcome.launch == "fork"
    assert outcome.ok, outcome.root_cause
    assert outcome.result == {"seen": False, "folder": []}


async def test_a_lost_server_fails_the_job_and_the_next_job_gets_a_new_one(tmp_path: Path) -> None:
    server = fork_server({"PATH": os.environ.get("PATH", "")}, modules=LIGHT)
    assert server._process is not None

    async def kill_server_when_running(event: dict[str, Any]) -> None:
        if event.get("type") == "pids" and server._process is not None and server._process.poll() is None:
            server._process.kill()
            server._process.wait()

    runner = SandboxRunner(preload=LIGHT)
    outcome = await runner.run(
        _job("hang"),
        workspace=tmp_path / "ws1",
        limits=Limits(wall_seconds=5, grace_seconds=1),
        on_event=kill_server_when_running,
    )
    # The keeper outlives the server (it is the job's parent, not the server), so the job
    # either ran into its wall-clock limit or the client reported the loss; never a hang.
    assert outcome.error_kind in (ErrorKind.TIMEOUT, ErrorKind.ENV)

    again = await runner.run(_job("echo"), workspace=tmp_path / "ws2", limits=Limits())
    assert again.ok
    assert again.launch == "fork"
    assert fork_server({}, modules=LIGHT) is not server


REFUSAL = b'{"error": "cannot enter the job\'s sandbox: setns(ipc): EPERM"}\n'


@pytest.mark.parametrize("answer", [REFUSAL, b""])
async def test_a_job_the_server_cannot_fork_is_spawned_in_its_sandbox_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: bytes
) -> None:
    # As on a kernel that refuses an ordinary user's setns (seen on a Firecracker VM): the
    # server answers with an error, or goes away, before it forks the job.
    import socket
    import threading

    from ftdojo.sandbox.fork import handle

    def refusing_connect(self: Any) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

        def serve() -> None:
            with theirs:
                _, fds, _, _ = socket.recv_fds(theirs, 1 << 16, 8)
                for fd in fds:
                    os.close(fd)
                if answer:
                    theirs.sendall(answer)

        threading.Thread(target=serve, daemon=True).start()
        return ours

    monkeypatch.setattr(handle.ForkServer, "connect", refusing_connect)
    view = FilesystemView(writable=(str(tmp_path / "ws"),))
    outcome = await SandboxRunner(preload=LIGHT).run(
        _job("echo", {"x": 2}, view=view), workspace=tmp_path / "ws", limits=Limits()
    )
    assert outcome.ok, outcome.root_cause
    assert outcome.result == {"x": 2}
    assert outcome.launch == "spawn"
    expected = "refused the job: cannot enter" if answer else "went away before it forked"
    assert expected in outcome.launch_note
