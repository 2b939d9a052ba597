"""The sandbox runs misbehaving jobs (ftdojo.testing.jobs) and reports how they ended."""

from __future__ import annotations

import math
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from ftdojo import Dojo
from ftdojo.errors import ConfigError
from ftdojo.feedback import ErrorKind, Stage
from ftdojo.sandbox import Job, JobOutcome, JobRunner, Limits, SandboxRunner, scrubbed_environment
from ftdojo.sandbox.backend import EventCallback
from ftdojo.sandbox.isolation import Isolation, network_isolation_prefix
from ftdojo.sandbox.outcome import MAX_EVENTS
from ftdojo.sandbox.process import process_group
from ftdojo.sandbox.protocol import MAX_EVENT_BYTES

# Every job here runs both ways: spawned, and forked from the preloaded fork server.
pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("launch")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _job(name: str, payload: dict[str, Any] | None = None, stage: Stage = Stage.TRAIN) -> Job:
    return Job(entry=f"ftdojo.testing.jobs:{name}", payload=payload or {}, stage=stage)


async def _run(
    tmp_path: Path,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    stage: Stage = Stage.TRAIN,
    runner: SandboxRunner | None = None,
    on_event: Any = None,
    **limits: Any,
) -> JobOutcome:
    runner = runner or SandboxRunner()
    return await runner.run(
        _job(name, payload, stage), workspace=tmp_path / "ws", limits=Limits(**limits), on_event=on_event
    )


def _is_dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A killed orphan stays a zombie until pid 1 reaps it, and some containers' pid 1
    # never does; a zombie runs no code, so it counts as dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _eventually_dead(pid: int, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not _is_dead(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _eventually_silent(beat: Path, seconds: float = 3.0) -> bool:
    """Whether the process rewriting ``beat`` every 50 ms stopped (it runs in a pid namespace
    of its own where one is available, so its pid says nothing here)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        before = beat.read_text()
        time.sleep(0.3)
        if beat.read_text() == before:
            return True
    return False


@pytest.mark.anyio
async def test_echo_returns_payload_and_streams_events_live(tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []

    async def on_event(event: dict[str, Any]) -> None:
        await anyio.lowlevel.checkpoint()
        received.append(event)

    payload = {"steps": 4, "text": "héllo", "nested": {"a": [1, 2.5, None]}}
    outcome = await _run(tmp_path, "echo", payload, on_event=on_event)

    assert outcome.ok, outcome.root_cause
    assert outcome.result == payload
    assert outcome.error_kind is None
    assert outcome.root_cause == ""
    assert outcome.exit_code == 0
    assert outcome.signal is None
    assert not outcome.timed_out
    assert [e["type"] for e in received] == ["progress"] * 4 + ["result"]
    assert [e["step"] for e in received[:4]] == [0, 1, 2, 3]
    assert all(isinstance(e["time"], float) for e in received)
    assert list(outcome.events) == received
    # What the job printed to stdout went to the captured output, not the event channel.
    assert "echo: printed to stdout" in outcome.output
    assert outcome.peak_memory_mb is not None
    assert outcome.peak_memory_mb > 1
    assert outcome.warnings == ()
    assert (tmp_path / "ws" / "job.json").is_file()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("stage", "kind"),
    [(Stage.BUILD, ErrorKind.DATA), (Stage.TRAIN, ErrorKind.CONFIG), (Stage.EVALUATE, ErrorKind.ENV)],
)
async def test_crash_is_classified_by_stage(tmp_path: Path, stage: Stage, kind: ErrorKind) -> None:
    outcome = await _run(tmp_path, "crash", {"message": "the tokenizer exploded"}, stage=stage)

    assert not outcome.ok
    assert outcome.result is None
    assert outcome.error_kind is kind
    assert outcome.exit_code == 1
    assert "RuntimeError" in outcome.root_cause
    assert "the tokenizer exploded" in outcome.root_cause
    assert "testing/jobs.py" in outcome.root_cause  # where it was raised
    assert len(outcome.root_cause) <= 1500
    assert "Traceback (most recent call last)" in outcome.output


@pytest.mark.anyio
async def test_timeout_kills_the_whole_group_even_when_sigterm_is_ignored(tmp_path: Path) -> None:
    pids: dict[str, int] = {}

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "pids":
            pids.update(pid=event["pid"], grandchild=event["grandchild"])

    started = time.monotonic()
    outcome = await _run(
        tmp_path,
        "hang",
        {"ignore_sigterm": True, "grandchild": True},
        on_event=on_event,
        wall_seconds=2,
        grace_seconds=1,
    )
    elapsed = time.monotonic() - started

    assert outcome.timed_out
    assert outcome.error_kind is ErrorKind.TIMEOUT
    assert not outcome.ok
    assert outcome.signal == signal.SIGKILL
    assert "wall-clock limit" in outcome.root_cause
    assert elapsed < 2 + 1 + 3
    assert set(pids) == {"pid", "grandchild"}
    assert _eventually_silent(tmp_path / "ws" / "beat-pid")
    assert _eventually_silent(tmp_path / "ws" / "beat-grandchild")


@pytest.mark.anyio
async def test_timeout_ends_early_when_the_child_obeys_sigterm(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome = await _run(tmp_path, "hang", wall_seconds=1, grace_seconds=10)

    assert outcome.error_kind is ErrorKind.TIMEOUT
    assert outcome.signal == signal.SIGTERM
    assert time.monotonic() - started < 1 + 3  # did not sit out the grace period


@pytest.mark.anyio
@pytest.mark.parametrize("chunk_bytes", [None, 64 * 2**20], ids=["at-once", "until-full"])
async def test_memory_limit_gives_oom(tmp_path: Path, chunk_bytes: int | None) -> None:
    payload: dict[str, Any] = {"bytes": 4 * 2**30}
    if chunk_bytes:
        payload["chunk_bytes"] = chunk_bytes
    outcome = await _run(tmp_path, "allocate", payload, memory_bytes=2**30)

    assert outcome.error_kind is ErrorKind.OOM
    assert "MemoryError" in outcome.root_cause
    assert outcome.exit_code == 1
    assert outcome.peak_memory_mb is not None
    assert outcome.peak_memory_mb < 1024


@pytest.mark.anyio
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
async def test_peak_memory_is_the_jobs_own_not_the_parents(tmp_path: Path) -> None:
    # A long test session or agent process grows large; Linux hands ru_maxrss across
    # fork and exec, so a naive measure would blame the job for the parent's memory.
    held = bytearray(1536 * 2**20)
    held[:: resource.getpagesize()] = b"\x01" * len(range(0, len(held), resource.getpagesize()))
    outcome = await _run(tmp_path, "echo", {"x": 1})
    del held

    assert outcome.ok, outcome.root_cause
    assert outcome.peak_memory_mb is not None
    assert 0 < outcome.peak_memory_mb < 512


@pytest.mark.anyio
async def test_sigkill_we_did_not_send_is_oom(tmp_path: Path) -> None:
    outcome = await _run(tmp_path, "kill_self")

    assert outcome.error_kind is ErrorKind.OOM
    assert outcome.signal == signal.SIGKILL
    assert outcome.exit_code is None
    assert "out-of-memory killer" in outcome.root_cause
    assert not outcome.timed_out


@pytest.mark.anyio
async def test_segfault_is_env_with_signal(tmp_path: Path) -> None:
    outcome = await _run(tmp_path, "segfault")

    assert outcome.error_kind is ErrorKind.ENV
    assert outcome.signal == signal.SIGSEGV
    assert outcome.exit_code is None
    assert "SIGSEGV" in outcome.root_cause


@pytest.mark.anyio
async def test_flood_of_output_is_capped_and_does_not_block(tmp_path: Path) -> None:
    limits = Limits()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome = await _run(tmp_path, "flood", {"megabytes": 50})
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # The parent never held the 100 MiB that went through the pipe (ru_maxrss is in KiB).
    assert (peak_after - peak_before) / 1024 < 40

    assert outcome.ok, outcome.root_cause
    assert outcome.result == {"megabytes": 50}
    assert len(outcome.output) <= limits.output_bytes + 100
    assert "bytes dropped" in outcome.output
    assert any("output truncated" in w for w in outcome.warnings)


@pytest.mark.anyio
async def test_nan_loss_is_diverged_and_the_nan_reaches_the_parent(tmp_path: Path) -> None:
    outcome = await _run(tmp_path, "nan_loss")

    assert outcome.error_kind is ErrorKind.DIVERGED
    assert "loss became NaN at step 2" in outcome.root_cause
    steps = [e for e in outcome.events if e["type"] == "train_step"]
    assert steps[0]["loss"] == 2.5
    assert math.isnan(steps[1]["loss"])
    assert math.isinf(steps[1]["grad_norm"])


@pytest.mark.anyio
async def test_child_environment_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("SOME_UNRELATED_VARIABLE", "x")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    runner = SandboxRunner(extra_env={"FTDOJO_MARKER": "present"})
    outcome = await _run(tmp_path, "env", runner=runner, threads=2)

    assert outcome.ok, outcome.root_cause
    env = outcome.result
    assert env is not None
    assert "OPENAI_API_KEY" not in env
    assert "HF_TOKEN" not in env
    assert "SOME_UNRELATED_VARIABLE" not in env
    assert not any("secret" in value for value in env.values())
    assert env["OPENBLAS_CORETYPE"] == "Haswell"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["HOME"] == str(tmp_path / "ws")
    assert env["TMPDIR"] == str(tmp_path / "ws" / "tmp")
    assert (tmp_path / "ws" / "tmp").is_dir()
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"
    assert env["FTDOJO_MARKER"] == "present"


@pytest.mark.parametrize(
    "key", ["MY_API_KEY", "HF_TOKEN", "db_password", "AWS_REGION", "OPENAI_ORG", "SERVICE_CREDENTIALS"]
)
def test_secret_looking_extra_env_is_rejected(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        SandboxRunner(extra_env={key: "value"})
    with pytest.raises(ConfigError, match=key):
        scrubbed_environment(workspace=tmp_path, limits=Limits(), extra={key: "value"})


def test_pythonpath_is_passed_only_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert "PYTHONPATH" not in scrubbed_environment(workspace=tmp_path, limits=Limits())
    monkeypatch.setenv("PYTHONPATH", "/somewhere/src")
    env = scrubbed_environment(workspace=tmp_path, limits=Limits(), extra={"CUDA_VISIBLE_DEVICES": ""})
    assert env["PYTHONPATH"] == "/somewhere/src"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert "OMP_NUM_THREADS" not in env


@pytest.mark.anyio
async def test_cancelling_run_kills_the_child_and_grandchild(tmp_path: Path) -> None:
    pids: dict[str, int] = {}

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "pids":
            pids.update(pid=event["pid"], grandchild=event["grandchild"])

    started = time.monotonic()
    with anyio.move_on_after(1.5) as scope:
        await _run(tmp_path, "hang", {"ignore_sigterm": True, "grandchild": True}, on_event=on_event)
    assert scope.cancelled_caught
    assert time.monotonic() - started < 4
    assert set(pids) == {"pid", "grandchild"}
    assert _eventually_silent(tmp_path / "ws" / "beat-pid")
    assert _eventually_silent(tmp_path / "ws" / "beat-grandchild")


@pytest.mark.anyio
async def test_on_event_exception_kills_the_child_and_propagates(tmp_path: Path) -> None:
    pids: dict[str, int] = {}

    def on_event(event: dict[str, Any]) -> None:
        pids.update(pid=event["pid"], grandchild=event["grandchild"])
        raise ValueError("consumer broke")

    with pytest.raises(ValueError, match="consumer broke"):
        await _run(tmp_path, "hang", {"grandchild": True}, on_event=on_event, wall_seconds=30)
    assert pids
    assert _eventually_silent(tmp_path / "ws" / "beat-pid")
    assert _eventually_silent(tmp_path / "ws" / "beat-grandchild")


@pytest.mark.anyio
async def test_garbage_on_the_event_channel_is_ignored_with_a_warning(tmp_path: Path) -> None:
    outcome = await _run(tmp_path, "garbage_events")

    assert outcome.ok, outcome.root_cause
    assert outcome.result == {"survived": True}
    assert [e["type"] for e in outcome.events] == ["after_garbage", "result"]
    assert any("ignored 4 event line(s)" in w for w in outcome.warnings)
    assert any(f"over {MAX_EVENT_BYTES} bytes" in w for w in outcome.warnings)


@pytest.mark.anyio
async def test_events_beyond_the_cap_are_dropped_but_the_result_is_kept(tmp_path: Path) -> None:
    calls = 0

    def on_event(event: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1

    outcome = await _run(tmp_path, "many_events", {"count": MAX_EVENTS + 50}, on_event=on_event)

    assert outcome.ok, outcome.root_cause
    assert len(outcome.events) == MAX_EVENTS + 1
    assert outcome.events[-1]["type"] == "result"
    assert calls == MAX_EVENTS + 51  # the live callback sees everything
    assert any("events dropped: 50" in w for w in outcome.warnings)


@pytest.mark.anyio
async def test_large_result_goes_through_the_workspace(tmp_path: Path) -> None:
    payload = {"blob": "y" * (2 * MAX_EVENT_BYTES)}
    outcome = await _run(tmp_path, "echo", payload)

    assert outcome.ok, outcome.root_cause
    assert outcome.result == payload


@pytest.mark.anyio
async def test_exit_without_a_result_names_the_last_traceback(tmp_path: Path) -> None:
    stderr = (
        "some log line\n"
        "Traceback (most recent call last):\n"
        '  File "/x/outer.py", line 3, in outer\n'
        "    inner()\n"
        '  File "/x/inner.py", line 7, in inner\n'
        "    raise ValueError('bad shape')\n"
        "    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "ValueError: bad shape\n"
    )
    outcome = await _run(tmp_path, "hard_exit", {"stderr": stderr, "code": 4})

    assert outcome.error_kind is ErrorKind.ENV
    assert outcome.exit_code == 4
    assert "exited with code 4" in outcome.root_cause
    assert 'File "/x/inner.py", line 7, in inner' in outcome.root_cause
    assert "ValueError: bad shape" in outcome.root_cause
    assert "outer.py" not in outcome.root_cause
    assert "^^^" not in outcome.root_cause


@pytest.mark.anyio
async def test_exit_with_memory_message_is_oom(tmp_path: Path) -> None:
    outcome = await _run(tmp_path, "hard_exit", {"stderr": "mmap: Cannot allocate memory\n", "code": 1})

    assert outcome.error_kind is ErrorKind.OOM
    assert "Cannot allocate memory" in outcome.root_cause


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ("ftdojo.testing.jobs:no_such_job", "no_such_job"),
        ("ftdojo.no_such_module:run", "ModuleNotFoundError"),
    ],
)
async def test_unimportable_entry_is_env(tmp_path: Path, entry: str, text: str) -> None:
    job = Job(entry=entry, payload={}, stage=Stage.BUILD)
    outcome = await SandboxRunner().run(job, workspace=tmp_path, limits=Limits())

    assert outcome.error_kind is ErrorKind.ENV
    assert text in outcome.root_cause


def test_invalid_job_and_limits_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"package\.module:function"):
        Job(entry="ftdojo.testing.jobs.echo", payload={}, stage=Stage.BUILD)
    with pytest.raises(ConfigError, match="wall_seconds"):
        Limits(wall_seconds=0)
    with pytest.raises(ConfigError, match="grace_seconds"):
        Limits(grace_seconds=-1)


@pytest.mark.anyio
async def test_network_is_off_by_default_and_only_an_explicit_flag_turns_it_on(tmp_path: Path) -> None:
    if await anyio.to_thread.run_sync(network_isolation_prefix) is None:
        pytest.skip("unshare cannot create a network namespace here")
    runner = SandboxRunner()
    outcome = await _run(tmp_path, "network", runner=runner)

    assert outcome.ok, outcome.root_cause
    assert outcome.result == {"interfaces": ["lo"]}
    assert runner.isolation.network_off
    assert not runner.isolation.network_allowed

    allowed = SandboxRunner(allow_network=True)
    outcome = await _run(tmp_path / "allowed", "network", runner=allowed)
    assert outcome.ok, outcome.root_cause
    assert outcome.result is not None
    assert outcome.result["interfaces"] != ["lo"]
    assert not allowed.isolation.network_off
    assert allowed.isolation.network_allowed
    assert any("allow_network=True" in gap for gap in allowed.isolation.gaps)


def test_sandbox_imports_nothing_heavy() -> None:
    code = (
        "import sys, ftdojo.sandbox, ftdojo.sandbox.worker, ftdojo.sandbox.runner, ftdojo.testing.jobs\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'peft', 'datasets') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


@pytest.mark.anyio
async def test_a_job_past_its_disk_quota_is_killed_as_disk(tmp_path: Path) -> None:
    outcome = await _run(
        tmp_path, "fill_disk", {"bytes": 400 * 2**20}, disk_bytes=16 * 2**20, wall_seconds=60
    )

    assert outcome.error_kind is ErrorKind.DISK
    assert "disk quota of 16 MiB" in outcome.root_cause
    assert (tmp_path / "ws" / "fill.bin").stat().st_size < 200 * 2**20  # stopped long before the end

    within = await _run(tmp_path / "small", "fill_disk", {"bytes": 4 * 2**20}, disk_bytes=64 * 2**20)
    assert within.ok, within.root_cause


class _InlineRunner:
    """The least a backend needs: ``isolation`` and ``run`` (it runs nothing)."""

    isolation = Isolation(backend="inline", network_off=False, filesystem_view=False, process_isolation=False)

    async def run(
        self, job: Job, *, workspace: Path, limits: Limits, on_event: EventCallback | None = None
    ) -> JobOutcome:
        return JobOutcome(
            ok=True,
            result={"entry": job.entry},
            error_kind=None,
            root_cause="",
            exit_code=0,
            signal=None,
            timed_out=False,
            duration_s=0.0,
            peak_memory_mb=None,
            events=(),
            output="",
            warnings=(),
        )


@pytest.mark.anyio
async def test_the_sandbox_runner_and_a_minimal_backend_are_job_runners(tmp_path: Path) -> None:
    assert isinstance(SandboxRunner(), JobRunner)
    inline = _InlineRunner()
    assert isinstance(inline, JobRunner)
    assert not isinstance(object(), JobRunner)

    outcome = await inline.run(_job("echo"), workspace=tmp_path, limits=Limits())
    assert outcome.result == {"entry": "ftdojo.testing.jobs:echo"}
    dojo = Dojo(home=tmp_path / "home", runs_dir=tmp_path / "runs", runner=inline)
    assert dojo.isolation.backend == "inline"


@pytest.mark.anyio
async def test_a_process_group_goes_down_whole_when_its_block_is_cancelled() -> None:
    # What the untrusted agent's host runs under: the leader and what it forked are
    # killed, and the leader reaped, however the block ends.
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    grandchild = 0
    with anyio.move_on_after(2.0) as scope:
        async with process_group([sys.executable, "-c", code]) as process:
            assert process.stdout is not None
            grandchild = int((await process.stdout.receive()).split()[0])
            await anyio.sleep(60)
    assert scope.cancelled_caught
    assert process.returncode is not None
    assert grandchild
    assert _eventually_dead(grandchild)
