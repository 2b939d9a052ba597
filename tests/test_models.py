from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from ftdojo import Dojo, ModelError
from ftdojo.models import default_home, model_info, resolve_local_model

pytestmark = pytest.mark.anyio


async def test_tiny_is_deterministic_and_built_once_under_concurrency(tmp_path: Path) -> None:
    builds: list[dict[str, object]] = []

    def count(event: dict[str, object]) -> None:
        if event.get("type") == "progress" and "built tiny model" in str(event.get("message")):
            builds.append(event)

    first, second = Dojo(home=tmp_path / "a", on_event=count), Dojo(home=tmp_path / "a", on_event=count)
    paths: list[Path] = []

    async def ensure(dojo: Dojo) -> None:
        paths.append(await dojo.ensure_model("tiny"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(ensure, first)
        tg.start_soon(ensure, second)
    assert paths[0] == paths[1]
    assert len(builds) == 1  # the second caller waited instead of building again

    other = await Dojo(home=tmp_path / "b").ensure_model("tiny")
    assert (other / "CHECKSUM").read_text() == (paths[0] / "CHECKSUM").read_text()

    info = model_info("tiny", paths[0])
    assert 1_000_000 <= info.parameters <= 3_000_000
    assert not info.has_chat_template
    assert sorted(p.name for p in paths[0].iterdir() if p.suffix in {".safetensors", ".bin"}) == [
        "model.safetensors"
    ]
    vocab = json.loads((paths[0] / "tokenizer.json").read_text())["model"]["vocab"]
    assert all(str(d) in vocab for d in range(10))  # every digit is a token of its own


def test_a_folder_without_config_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_local_model(str(tmp_path), tmp_path)


def test_a_hub_id_is_left_to_the_hub(tmp_path: Path) -> None:
    assert resolve_local_model("HuggingFaceTB/SmolLM2-135M-Instruct", tmp_path) is None


def test_relative_directories_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Workers run with their workspace as working directory: a relative path would break.
    monkeypatch.chdir(tmp_path)
    dojo = Dojo(home="home", runs_dir="runs")
    assert dojo.home == tmp_path / "home"
    assert dojo.runs_dir == tmp_path / "runs"


async def test_a_corrupted_model_folder_is_rebuilt(tmp_path: Path) -> None:
    folder = await Dojo(home=tmp_path).ensure_model("tiny")
    weights = folder / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:-16] + bytes(16))  # flip the last bytes of the weights
    rebuilt = await Dojo(home=tmp_path).ensure_model("tiny")  # a new Dojo checks again
    assert rebuilt == folder
    assert weights.read_bytes() == good  # deterministic rebuild restored the same weights


async def test_a_model_lock_waits_for_its_holder_in_the_same_process(tmp_path: Path) -> None:
    # anyio reuses the worker thread that took the first lock for the second attempt;
    # filelock would call that a deadlock if the wait were unbounded (the CI failure
    # of the SmolLM2 conversion). The second holder must simply wait its turn.
    from ftdojo.models import file_lock

    order: list[str] = []
    first_inside = anyio.Event()

    async def first() -> None:
        async with file_lock(tmp_path / ".model.lock"):
            order.append("first in")
            first_inside.set()
            await anyio.sleep(1.2)
            order.append("first out")

    async def second() -> None:
        await first_inside.wait()
        async with file_lock(tmp_path / ".model.lock"):
            order.append("second in")

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            tg.start_soon(second)
    assert order == ["first in", "first out", "second in"]


async def test_a_cancelled_waiter_leaves_the_lock_usable(tmp_path: Path) -> None:
    from ftdojo.models import file_lock

    path = tmp_path / ".model.lock"
    async with file_lock(path):
        with anyio.move_on_after(0.7) as scope:
            async with file_lock(path):
                pytest.fail("a held lock was taken twice")
        assert scope.cancelled_caught
    with anyio.fail_after(5):
        async with file_lock(path):
            pass


def test_a_relative_ftdojo_home_is_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README runs the tests with FTDOJO_HOME=.cache/ftdojo; sandboxed jobs run in
    # their own workspace and must get the same folder, not one relative to theirs.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FTDOJO_HOME", ".cache/ftdojo")
    assert default_home() == tmp_path / ".cache" / "ftdojo"
    monkeypatch.delenv("FTDOJO_HOME")
    assert default_home().is_absolute()
