"""The task contract itself: ``params``, and the value semantics derived from it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from ftdojo.errors import TaskSpecError
from ftdojo.tasks.math import MathWordProblems
from ftdojo.tasks.registry import task_from_reference, task_reference
from ftdojo.tasks.spec import EvalItem, Example, RawSource, TaskSpec


class _Echo(TaskSpec):
    name = "echo"
    domain = "test"
    description = "Repeat the prompt."
    output_format = "<text>"
    metric = "accuracy"

    def __init__(self, size: int | None = None) -> None:
        if size is not None:
            self.params = {"size": size}

    def raw_sources(self) -> Sequence[RawSource]:
        return []

    def eval_splits(self) -> tuple[Sequence[EvalItem], Sequence[EvalItem]]:
        return [], []

    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        return None

    def extract_answer(self, output: str) -> str | None:
        return output


class _OtherEcho(_Echo):
    pass


def test_params_default_to_empty_and_the_default_is_read_only() -> None:
    task = _Echo()
    assert task.params == {}
    with pytest.raises(TypeError):
        task.params["size"] = 1  # type: ignore[index]
    assert _Echo().params == {}


def test_repr_eq_and_hash_come_from_class_and_params() -> None:
    assert repr(_Echo(size=3)) == "_Echo(size=3)"
    assert repr(_Echo()) == "_Echo()"
    assert _Echo(size=3) == _Echo(size=3)
    assert hash(_Echo(size=3)) == hash(_Echo(size=3))
    assert _Echo(size=3) != _Echo(size=4)
    assert _Echo() != _OtherEcho()
    assert len({_Echo(size=3), _Echo(size=3), _Echo()}) == 2


def test_a_generated_task_is_equal_to_its_re_creation() -> None:
    task = MathWordProblems(seed=2, validation_size=8, test_size=8)
    assert repr(task) == (
        "MathWordProblems(seed=2, worked_solutions=1500, answers_only=3000, forum_scrape=1500, "
        "trivia_mix=800, homework_sheets=600, validation_size=8, test_size=8)"
    )
    clone = task_from_reference(task_reference(task))
    assert clone == task
    assert hash(clone) == hash(task)
    assert clone != MathWordProblems(seed=3, validation_size=8, test_size=8)


def test_a_raw_source_in_an_unknown_format_is_a_task_spec_error() -> None:
    with pytest.raises(TaskSpecError, match=r"RawSource\.format"):
        RawSource(source_id="x", records=(), note="", format="xml")
    with pytest.raises(ValueError, match="xml"):  # still a ValueError, as before
        RawSource(source_id="x", records=(), note="", format="xml")
