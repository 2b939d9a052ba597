"""The sandbox's isolation, job by job: what a job can see, write and reach.

These run real child processes under the isolation this machine gives (bubblewrap where
installed). Where a protection is unavailable, the tests that need it are skipped and
the gap is what :class:`ftdojo.Isolation` reports.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ftdojo.errors import IsolationError
from ftdojo.feedback import Stage
from ftdojo.sandbox import Job, JobOutcome, Limits, SandboxRunner
from ftdojo.sandbox.isolation import FilesystemView, detect_isolation

pytestmark = pytest.mark.anyio

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


async def _attack(layout: dict[str, Path], code: str) -> JobOutcome:
    view = FilesystemView.of(writable=[layout["workspace"]], hidden=[layout["private"], layout["runs"]])
    job = Job(entry="ftdojo.testing_jobs:run_code", payload={"code": code}, stage=Stage.BUILD, view=view)
    return await SandboxRunner().run(job, workspace=layout["workspace"], limits=Limits(wall_seconds=60))


def _kinds(outcome: JobOutcome) -> set[str]:
    return {v["kind"] for v in outcome.violations}


@needs_view
async def test_hidden_files_do_not_exist_in_the_view(layout: dict[str, Path]) -> None:
    secret = layout["private"] / "test.jsonl"
    code = (
        f"import os\n"
        f"result['exists'] = os.path.exists({str(secret)!r})\n"
        f"result['listing'] = os.listdir({str(layout['private'])!r})\n"
        f"result['journal'] = os.path.exists({str(layout['runs'] / 'run1' / 'journal.jsonl')!r})\n"
        f"result['own'] = os.path.isdir({str(layout['workspace'])!r})\n"
        f"open({str(secret)!r}).read()\n"
    )
    outcome = await _attack(layout, code)

    assert outcome.ok, outcome.root_cause
    assert outcome.result is not None
    assert outcome.result["exists"] is False
    assert outcome.result["listing"] == []
    assert outcome.result["journal"] is False
    assert outcome.result["own"] is True
    assert "error" in outcome.result  # the read failed
    assert "read_hidden" in _kinds(outcome)
    assert secret.read_text().startswith('{"prompt"')  # untouched on the host


@needs_view
async def test_writes_outside_the_workspace_fail_and_are_reported(layout: dict[str, Path]) -> None:
    target = layout["outside"] / "planted.txt"
    code = f"open({str(target)!r}, 'w').write('x')\n"
    outcome = await _attack(layout, code)

    assert outcome.ok
    assert outcome.result is not None
    assert "Read-only file system" in outcome.result["error"]
    assert not target.exists()
    assert "write_outside" in _kinds(outcome)


@needs_view
async def test_the_package_and_its_metrics_are_read_only(layout: dict[str, Path]) -> None:
    import ftdojo.metrics

    metric_dir = Path(ftdojo.metrics.__file__).parent
    code = f"open({str(metric_dir / 'planted.py')!r}, 'w').write('score = 1.0')\n"
    outcome = await _attack(layout, code)

    assert outcome.result is not None
    assert "error" in outcome.result
    assert not (metric_dir / "planted.py").exists()
    assert "write_outside" in _kinds(outcome)


@needs_view
async def test_a_symlink_to_a_hidden_file_leads_nowhere(layout: dict[str, Path]) -> None:
    secret = layout["private"] / "test.jsonl"
    code = (
        f"import os\n"
        f"os.symlink({str(secret)!r}, 'split.jsonl')\n"
        f"result['text'] = open('split.jsonl').read()\n"
    )
    outcome = await _attack(layout, code)

    assert outcome.result is not None
    assert "text" not in outcome.result
    assert {"link"} <= _kinds(outcome)


async def test_network_connections_fail_and_are_reported(layout: dict[str, Path]) -> None:
    if not FULL.network_off:
        pytest.skip("no network namespace here")
    code = "import socket\nsocket.create_connection(('198.51.100.7', 80), timeout=2)\n"
    outcome = await _attack(layout, code)

    assert outcome.result is not None
    assert "error" in outcome.result
    assert "network" in _kinds(outcome)


@needs_view
async def test_the_parent_is_invisible_and_nothing_can_be_unmounted(layout: dict[str, Path]) -> None:
    code = (
        f"import os, subprocess\n"
        f"result['parent_visible'] = os.path.exists('/proc/{os.getpid()}')\n"
        f"result['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        f"result['umount'] = subprocess.run(['umount', {str(layout['private'])!r}]).returncode\n"
        f"result['caps'] = [l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1]\n"
    )
    outcome = await _attack(layout, code)

    assert outcome.ok, outcome.root_cause
    assert outcome.result is not None
    assert outcome.result["parent_visible"] is False
    assert max(outcome.result["pids"]) < 100  # a pid namespace of its own
    assert outcome.result["umount"] != 0
    assert int(outcome.result["caps"], 16) == 0
    assert "spawn" in _kinds(outcome)


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
