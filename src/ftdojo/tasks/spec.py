"""What a task is made of, as the Dojo (not the agent) sees it.

A :class:`TaskSpec` generates its raw sources and its two evaluation splits, turns a
raw record into a training example, reads an answer out of a model's output and names
the metric that scores it. Everything here must be pure Python with no heavy imports:
specs are loaded in the Dojo's own process and re-created inside sandbox workers from
their registered name.
"""

from __future__ import annotations

import abc
import json
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs

from ftdojo.errors import TaskSpecError
from ftdojo.rawformat import FORMATS

__all__ = ["EvalItem", "Example", "RawSource", "Task", "TaskSpec", "normalize_text"]


def normalize_text(text: str) -> str:
    """``text`` folded for near-duplicate comparison: NFKC, lower case, letters and digits only.

    Two prompts that differ only in case, spacing, punctuation or Unicode width
    normalise to the same string; the suite's leak tests compare prompts this way.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\W_]+", " ", folded).strip()


def _check_format(instance: Any, attribute: Any, value: str) -> None:
    if value not in FORMATS:
        raise TaskSpecError(f"RawSource.format must be one of {', '.join(FORMATS)}, got {value!r}")


@attrs.frozen(kw_only=True)
class RawSource:
    """One raw dataset of a task, before it is stored in the repository."""

    source_id: str
    records: tuple[dict[str, Any], ...]
    #: What a practitioner would write after looking at it (shown in the catalogue).
    note: str
    #: How the source is stored: ``"jsonl"``, ``"csv"`` or ``"markdown"`` (see :mod:`ftdojo.rawformat`).
    #: CSV and Markdown cells read back as strings, so ``to_example`` must accept text.
    format: str = attrs.field(default="jsonl", validator=_check_format)


@attrs.frozen(kw_only=True)
class EvalItem:
    """One benchmark item: the user prompt, the reference answer, its category."""

    item_id: str
    prompt: str
    reference: str
    category: str = ""


@attrs.frozen(kw_only=True)
class Example:
    """A training pair: the user prompt and the assistant response the loss is taken on."""

    prompt: str
    response: str
    category: str = ""


class TaskSpec(abc.ABC):
    """Base class of every task; subclasses register with :func:`ftdojo.tasks.register_task`.

    A task is a value: two tasks of the same class with equal :attr:`params` generate the
    same data, so they compare equal, hash alike and print as the constructor call that
    makes them.
    """

    #: Registry name, e.g. ``"math"``.
    name: str
    domain: str
    description: str
    output_format: str
    #: Name of a metric module shipped in :mod:`ftdojo.metrics`.
    metric: str
    categories: tuple[str, ...] = ()
    #: Greedy generation stops at the first of these strings (after an answer appears).
    stop_strings: tuple[str, ...] = ()
    max_new_tokens: int = 128
    #: The raw-data and split generators are deterministic in this seed.
    seed: int = 0
    #: The constructor's keyword arguments, as JSON data: a sandbox worker re-creates the
    #: task in a fresh process as ``type(task)(**task.params)``. A task whose constructor
    #: takes arguments must set it in ``__init__``; the default (no arguments) suits one
    #: that takes none.
    params: Mapping[str, Any] = MappingProxyType({})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and isinstance(other, TaskSpec) and other.params == self.params

    def __hash__(self) -> int:
        return hash((type(self).__qualname__, json.dumps(self.params, sort_keys=True, default=repr)))

    @classmethod
    def from_dir(cls, path: str | os.PathLike[str]) -> TaskSpec:
        """The task a bring-your-own task folder describes (``docs/bring-your-own-task.md``).

        Raises :class:`ftdojo.errors.TaskSpecError` or :class:`ftdojo.errors.DataError`,
        naming the file and the field or line, for a folder that is not a valid task.
        """
        from ftdojo.tasks.folder import FolderTask  # lazy: folder imports this module

        return FolderTask(path)

    @abc.abstractmethod
    def raw_sources(self) -> Sequence[RawSource]:
        """The raw datasets an agent may curate, in a stable order."""

    @abc.abstractmethod
    def eval_splits(self) -> tuple[Sequence[EvalItem], Sequence[EvalItem]]:
        """``(validation, test)``; disjoint, and disjoint from every raw source's prompts."""

    @abc.abstractmethod
    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        """A raw record as a training example, or ``None`` if it cannot be one.

        Raises :class:`ftdojo.DataError` (naming the missing field) for a record
        that does not have the shape the task expects.
        """

    @abc.abstractmethod
    def extract_answer(self, output: str) -> str | None:
        """The answer in a model's output, normalised; ``None`` if the format is not met."""

    def gold_response(self, item: EvalItem) -> str:
        """A response a perfect model would give to ``item``, in the task's output format.

        The suite's tests check the whole chain with it: ``extract_answer`` of this
        response, scored by the metric against ``item.reference``, is fully right.
        """
        raise NotImplementedError(f"task {self.name!r} does not define gold_response")

    def display_reference(self, reference: str) -> str:
        """The reference as an agent should see it in an error sample.

        Most references are the answer itself; tasks whose references are JSON documents
        for their scorer (a molecule and an edit, a chart's data) override this to show
        the part a human would call the expected answer.
        """
        return reference

    def verify(self, record: dict[str, Any]) -> bool | None:
        """Whether a raw record's answer checks out; ``None`` when it cannot be checked."""
        return None

    def version(self) -> str:
        """Changes whenever the generated data would change (used for caching)."""
        return f"{self.name}-seed{self.seed}"


#: The public name of :class:`TaskSpec` (``ftdojo.Task``): subclass it to define a task in
#: code, or call ``Task.from_dir(path)`` to load one from a folder.
Task = TaskSpec
