"""The sandbox's isolation, job by job: what a job can see, write and reach.

These run real child processes under the isolation this machine gives (bubblewrap where
installed). Where a protection is unavailable, the tests that need it are skipped and
the gap is what :class:`ftdojo.Isolation` reports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ftdojo.errors import IsolationError
from ftdojo.feedback import ErrorKind, Stage
from ftdojo.sandbox import Job, JobOutcome, Limits, SandboxRunner
from ftdojo.sandbox.isolation import FilesystemView, detect_isolation

# Every protection is checked both ways: spawned jobs, and jobs forked from the preloaded
# fork server (which joins the namespaces bubblewrap made rather than being started in them).
pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("launch")]

FULL = detect_isolation()
needs_view = pytest.mark.skipif(
    not FULL.filesystem_view, reason="no filesystem view here: " + FULL.describe()
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    private = tmp_path / "home" / "private"
    private.mkdir(parents=True)
    (private / "test.jsonl").write_text('{"prompt": "secret question", "answer": "42"}\n')
    runs = tmp_path / "runs"
    workspace = runs / "run1" / "trials" / "t001"
    workspace.mkdir(parents=True)
    (runs / "run1" / "journal.jsonl").write_text('{"kind": "run_started"}\n')
    outside = tmp_path / "outside"
    outside.mkdir()
    return {"private": private, "runs": runs, "workspace": workspace, "outside": outside}


async def _attack(layout: dict[str, Path], code: str, *, trusted: bool = False) -> JobOutcome:
    view = FilesystemView.of(writable=[layout["workspace"]], hidden=[layout["private"], layout["runs"]])
    job = Job(
        entry="ftdojo.testing.jobs:run_code",
        payload={"code": code, "trusted": trusted},
        stage=Stage.BUILD,
        view=view,
    )
    outcome = await SandboxRunner().run(job, workspace=layout["workspace"], limits=Limits(wall_seconds=60))
    assert outcome.launch == ("spawn" if os.environ["FTDOJO_PRELOAD"] == "0" else "fork"), outcome.launch_note
    return outcome


def _kinds(outcome: JobOutcome) -> set[str]:
    return {v["kind"] for v in outcome.violations}


def _shell(command: str) -> str:
    """Code that runs ``command`` in ``sh`` (outside the audit hook's sight) and keeps its
    exit status and output."""
    return (
        "import subprocess\n"
        f"done = subprocess.run(['sh', '-c', {command!r}], capture_output=True, text=True)\n"
        "result['status'] = done.returncode\n"
        "result['out'] = done.stdout + done.stderr\n"
    )


# -- what the kernel enforces, seen with tools the audit hook cannot watch ------------


@needs_view
async def test_hidden_files_do_not_exist_in_the_view(layout: dict[str, Path]) -> None:
    secret = layout["private"] / "test.jsonl"
    journal = layout["runs"] / "run1" / "journal.jsonl"
    command = (
        f"test -e {secret} && echo SECRET-EXISTS; ls -A {layout['private']}; "
        f"test -e {journal} && echo JOURNAL-EXISTS; test -d {layout['workspace']} && echo OWN-OK; "
        f"cat {secret}"
    )
    outcome = await _attack(layout, _shell(command), trusted=True)

    assert outcome.ok, outcome.root_cause
    assert outcome.result is not None
    out = outcome.result["out"]
    assert "SECRET-EXISTS" not in out
    assert "JOURNAL-EXISTS" not in out
    assert "secret question" not in out
    assert "OWN-OK" in out
    assert "No such file" in out
    assert secret.read_text().startswith('{"prompt"')  # untouched on the host


@needs_view
async def test_the_system_is_read_only_but_the_workspace_is_not(layout: dict[str, Path]) -> None:
    import ftdojo.metrics

    metric = Path(ftdojo.metrics.__file__).parent / "planted.py"
    command = (
        f"echo x > {layout['outside'] / 'planted.txt'}; echo x > {metric}; "
        f"echo x > {layout['workspace'] / 'mine.txt'} && echo OWN-WRITTEN"
    )
    outcome = await _attack(layout, _shell(command), trusted=True)

    assert outcome.ok, outcome.root_cause
    assert outcome.result is not None
    assert outcome.result["out"].count("Read-only file system") == 2
    assert "OWN-WRITTEN" in outcome.result["out"]
    assert not (layout["outside"] / "planted.txt").exists()
    assert not metric.exists()
    assert (layout["workspace"] / "mine.txt").read_text() == "x\n"


@needs_view
async def test_the_parent_is_invisible_and_nothing_can_be_unmounted(layout: dict[str, Path]) -> None:
    command = (
        f"test -e /proc/{os.getpid()}/root && echo PARENT-VISIBLE; ls /proc | grep -c '^[0-9]'; "
        f"umount {layout['private']} && echo UNMOUNTED; grep CapEff /proc/self/status"
    )
    outcome = await _attack(layout, _shell(command), trusted=True)

    assert outcome.ok, outcome.root_cause
    assert outcome.result is not None
    out = outcome.result["out"]
    assert "PARENT-VISIBLE" not in out
    assert "UNMOUNTED" not in out
    assert int(out.splitlines()[0]) < 10  # a pid namespace of its own: a handful of processes
    assert "CapEff:\t0000000000000000" in out


async def test_there_is_no_network(layout: dict[str, Path]) -> None:
    if not FULL.network_off:
        pytest.skip("no network namespace here")
    command = "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '"
    outcome = await _attack(layout, _shell(command), trusted=True)

    assert outcome.ok, outcome.root_cause
    assert outcome.result is not None
    assert outcome.result["out"].split() == ["lo"]


# -- what the audit hook sees: each attempt stops the job and is a violation ----------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("read the private split", "read_hidden"),
        ("write outside", "write_outside"),
        ("edit a metric", "write_outside"),
        ("symlink to the split", "link"),
        ("hard link to the split", "link"),
        ("connect out", "network"),
        ("read the parent's files through /proc", "proc_snoop"),
        ("start a process", "spawn"),
        ("load native code", "native_code"),
    ],
)
async def test_each_attempt_stops_the_job_as_a_violation(
    layout: dict[str, Path], name: str, kind: str
) -> None:
    import ftdojo.metrics

    secret = str(layout["private"] / "test.jsonl")
    metric = str(Path(ftdojo.metrics.__file__).parent / "accuracy" / "accuracy.py")
    code = {
        "read the private split": f"open({secret!r}).read()",
        "write outside": f"open({str(layout['outside'] / 'x')!r}, 'w')",
        "edit a metric": f"open({metric!r}, 'a')",
        "symlink to the split": f"import os\nos.symlink({secret!r}, 'split.jsonl')",
        "hard link to the split": f"import os\nos.link({secret!r}, 'split.jsonl')",
        "connect out": "import socket\nsocket.create_connection(('198.51.100.7', 80), timeout=2)",
        "read the parent's files through /proc": f"open('/proc/{os.getppid()}/environ').read()",
        "start a process": "import subprocess\nsubprocess.run(['true'])",
        "load native code": "import ctypes\nctypes.CDLL('libc.so.6')",
    }[name]
    outcome = await _attack(layout, code + "\nresult['finished'] = True\n")

    assert outcome.error_kind is ErrorKind.VIOLATION
    assert outcome.result is None
    assert kind in _kinds(outcome)
    assert "sandbox violation" in outcome.root_cause
    assert not (layout["outside"] / "x").exists()
    assert not (layout["workspace"] / "split.jsonl").exists() or kind == "link"


async def test_strict_isolation_refuses_a_machine_without_it(tmp_path: Path) -> None:
    from ftdojo import Dojo

    class NoNetworkNamespace(SandboxRunner):
        def __init__(self) -> None:
            super().__init__(allow_network=True)

    dojo = Dojo(
        home=tmp_path / "home", runs_dir=tmp_path / "runs", runner=NoNetworkNamespace(), strict_isolation=True
    )
    with pytest.raises(IsolationError, match="network access allowed on purpose"):
        await dojo.baseline("math", model="tiny")
    assert not (tmp_path / "runs").exists()


def test_isolation_describes_its_gaps() -> None:
    from ftdojo import Isolation

    none = Isolation(backend="none", network_off=False, filesystem_view=False, process_isolation=False)
    assert len(none.gaps) == 3
    assert not none.complete
    full = Isolation(backend="bubblewrap", network_off=True, filesystem_view=True, process_isolation=True)
    assert full.complete
    assert "network off" in full.describe()


def test_view_resolution() -> None:
    view = FilesystemView.of(
        writable=["/r/runs/x/t1"], hidden=["/r/runs", "/h/private"], readable=["/r/runs/x/m"]
    )
    assert view.is_hidden("/r/runs/x/journal.jsonl")
    assert view.is_hidden("/h/private/test.jsonl")
    assert not view.is_hidden("/r/runs/x/t1/data/train.jsonl")
    assert not view.is_hidden("/r/runs/x/m/model.safetensors")
    assert not view.is_hidden("/r/runsabc")
    assert view.is_writable("/r/runs/x/t1/a")
    assert not view.is_writable("/r/runs/x/m/a")


async def test_a_fork_bomb_is_capped_and_reported(layout: dict[str, Path]) -> None:
    if FULL.process_limit != "pids cgroup":
        pytest.skip("no pids cgroup here: " + "; ".join(FULL.notes))
    code = (
        "import os, time\n"
        "children = 0\n"
        "try:\n"
        "    for _ in range(100000):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        children += 1\n"
        "except OSError as exc:\n"
        "    result['stopped'] = str(exc)\n"
        "result['children'] = children\n"
    )
    view = FilesystemView.of(writable=[layout["workspace"]], hidden=[layout["private"]])
    job = Job(entry="ftdojo.testing.jobs:run_code", payload={"code": code}, stage=Stage.BUILD, view=view)
    outcome = await SandboxRunner().run(
        job, workspace=layout["workspace"], limits=Limits(wall_seconds=60, max_processes=64)
    )

    # Stopped at its first fork, as a violation; had it not been, the cgroup caps it.
    assert outcome.error_kind is ErrorKind.VIOLATION
    assert "spawn" in _kinds(outcome)


async def test_the_process_cap_holds_for_trusted_jobs_too(layout: dict[str, Path]) -> None:
    if FULL.process_limit != "pids cgroup":
        pytest.skip("no pids cgroup here")
    code = (
        "import os, time\n"
        "children = 0\n"
        "try:\n"
        "    for _ in range(1000):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        children += 1\n"
        "except OSError as exc:\n"
        "    result['stopped'] = str(exc)\n"
        "result['children'] = children\n"
    )
    job = Job(entry="ftdojo.testing.jobs:run_code", payload={"code": code}, stage=Stage.BUILD)  # no view
    outcome = await SandboxRunner().run(
        job, workspace=layout["workspace"], limits=Limits(wall_seconds=60, max_processes=32)
    )

    assert outcome.ok, outcome.root_cause
    assert outcome.result is not None
    assert "stopped" in outcome.result
    assert outcome.result["children"] < 32


NOBODY_SCRIPT = """
import anyio, json, sys
from pathlib import Path
from ftdojo.feedback import Stage
from ftdojo.sandbox import Job, Limits, SandboxRunner
from ftdojo.sandbox.isolation import FilesystemView

root = Path(sys.argv[1])
ws, private = root / "ws", root / "private"
code = "import subprocess\\n" + (
    "done = subprocess.run(['sh', '-c', 'id -u; test -e %s && echo VISIBLE; cat /proc/net/dev | wc -l'],"
    " capture_output=True, text=True)\\nresult['out'] = done.stdout" % (private / "test.jsonl")
)

async def main():
    runner = SandboxRunner()
    view = FilesystemView.of(writable=[ws], hidden=[private])
    job = Job(entry="ftdojo.testing.jobs:run_code", payload={"code": code, "trusted": True},
              stage=Stage.BUILD, view=view)
    outcome = await runner.run(job, workspace=ws, limits=Limits(wall_seconds=60))
    print(json.dumps({"isolation": runner.isolation.describe(), "complete": runner.isolation.complete,
                      "ok": outcome.ok, "cause": outcome.root_cause, "result": outcome.result}))

anyio.run(main)
"""


def test_an_ordinary_user_gets_the_same_isolation(tmp_path_factory: pytest.TempPathFactory) -> None:
    import shutil
    import subprocess
    import sys
    import tempfile

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root (to become nobody) and setpriv")
    root = Path(tempfile.mkdtemp(prefix="ftdojo-nobody-"))
    try:
        os.chmod(root, 0o777)
        for name in ("ws", "private"):
            (root / name).mkdir(mode=0o777)
            os.chmod(root / name, 0o777)
        (root / "private" / "test.jsonl").write_text("secret\n")
        os.chmod(root / "private" / "test.jsonl", 0o644)
        (root / "script.py").write_text(NOBODY_SCRIPT)
        done = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                str(root / "script.py"),
                str(root),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "HOME": str(root)},
            check=False,
        )
        if done.returncode != 0 and "Permission denied" in done.stderr + done.stdout:
            pytest.skip(f"nobody cannot run this interpreter here: {done.stderr[-200:]}")
        assert done.returncode == 0, done.stderr[-2000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        if not report["complete"]:
            pytest.skip(f"no unprivileged namespaces here: {report['isolation']}")
        if not report["ok"] and "execvp" in report["cause"] and "Permission denied" in report["cause"]:
            pytest.skip(f"this interpreter is not reachable by an ordinary user: {report['cause'][-200:]}")
        assert report["ok"], report["cause"]
        out = report["result"]["out"].split()
        assert out[0] == "65534"  # still an ordinary user inside
        assert "VISIBLE" not in out
        assert int(out[-1]) == 3  # /proc/net/dev: two header lines and lo
    finally:
        shutil.rmtree(root, ignore_errors=True)
