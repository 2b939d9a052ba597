"""What an agent is told about a task: its card and the catalogue of its raw data."""

from __future__ import annotations

from typing import Any

import attrs

from ftdojo.errors import UnknownSourceError

__all__ = ["CatalogEntry", "DataCatalog", "TaskCard", "TokenStats"]


@attrs.frozen(kw_only=True)
class TaskCard:
    """A task as an agent sees it: what to learn, in which format, scored how."""

    name: str
    domain: str
    description: str
    #: The exact answer format the evaluator reads, e.g. ``\\boxed{<number>}``.
    output_format: str
    metric: str
    base_model: str
    categories: tuple[str, ...] = ()
    validation_size: int = 0
    #: Training ``max_length`` the base model's context allows.
    max_context: int = 2048


@attrs.frozen(kw_only=True)
class TokenStats:
    """Token-length statistics of one field, with the base model's tokenizer."""

    p50: float
    p99: float
    max: int
    mean: float


@attrs.frozen(kw_only=True)
class CatalogEntry:
    """One raw source: where its bytes are, what they look like, what to think of them."""

    source_id: str
    sha256: str
    format: str
    fields: tuple[str, ...]
    records: int
    size_bytes: int
    token_stats: dict[str, TokenStats]
    samples: tuple[dict[str, Any], ...]
    #: What a practitioner would write after looking at the source.
    note: str
    #: Tokens of a record as a training example (the task's prompt and response, with the
    #: rationale where the record has one), before the prompt template; ``None`` in
    #: catalogues from before it was measured.
    example_tokens: TokenStats | None = None


@attrs.frozen(kw_only=True)
class DataCatalog:
    task: str
    tokenizer: str
    entries: tuple[CatalogEntry, ...]

    def __getitem__(self, source_id: str) -> CatalogEntry:
        for entry in self.entries:
            if entry.source_id == source_id:
                return entry
        raise UnknownSourceError(f"no raw source {source_id!r} in the catalogue of task {self.task!r}")

    @property
    def source_ids(self) -> tuple[str, ...]:
        return tuple(e.source_id for e in self.entries)
