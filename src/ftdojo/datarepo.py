"""The raw-data repository: every task's raw sources, read-only and content-addressed.

Each raw source of a task is stored once as canonical JSONL under its sha256
(``root/objects/<sha[:2]>/<sha>``) and described by a :class:`~ftdojo.cards.CatalogEntry`
that an agent receives: fields, record count, token-length statistics with the base
model's tokenizer, a few samples and a note. Catalogues are cached per task version and
tokenizer under ``root/catalogs``. The evaluation splits are *not* stored here: this is
only what agents may read.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import filelock
import structlog

from ftdojo._fs import write_atomic
from ftdojo.cards import CatalogEntry, DataCatalog, TokenStats
from ftdojo.errors import DataError, FTDojoError, IntegrityError, ModelError, UnknownSourceError
from ftdojo.rawformat import dump_records, iter_records, parse_records
from ftdojo.serialization import from_json, to_json
from ftdojo.tasks.spec import RawSource, TaskSpec

__all__ = ["RawDataRepository", "TokenCounter"]

log = structlog.get_logger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_SAMPLES = 3
_SAMPLE_CHARS = 300
_BATCH = 1024
_CHUNK = 1 << 20


class TokenCounter:
    """Counts tokens of text, with a real tokenizer or a whitespace estimate.

    Special tokens (BOS/EOS) are not added: the counts describe the text of a field,
    not a full training sequence.
    """

    def __init__(self, name: str, encode_lengths: Callable[[list[str]], list[int]]) -> None:
        self.name = name
        self._encode_lengths = encode_lengths

    @classmethod
    def from_tokenizer_file(cls, path: Path, name: str) -> TokenCounter:
        """A counter backed by a ``tokenizer.json`` (loaded with the ``tokenizers`` library)."""
        # Imported here so that importing this module stays cheap, and never via
        # transformers, which would pull in torch.
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise ModelError("the 'tokenizers' package is needed to count tokens") from exc
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception
            raise ModelError(f"cannot load tokenizer {path}: {exc}") from exc

        def encode_lengths(texts: list[str]) -> list[int]:
            return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]

        return cls(name, encode_lengths)

    @classmethod
    def whitespace(cls) -> TokenCounter:
        """A rough fallback when no tokenizer is at hand: whitespace-separated words."""
        return cls("whitespace", lambda texts: [len(t.split()) for t in texts])

    @property
    def name_slug(self) -> str:
        """The name made safe as part of a file name (``Qwen/Qwen2.5`` → ``Qwen-Qwen2.5``)."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", self.name).strip("-.")
        return slug or "tokenizer"

    def count(self, text: str) -> int:
        return self._encode_lengths([text])[0]

    def count_batch(self, texts: Iterable[str]) -> list[int]:
        return self._encode_lengths(list(texts))


class RawDataRepository:
    """Read-only, content-addressed store of raw sources, with cached catalogues.

    Objects are written atomically (temp file, fsync, ``os.replace``) and then made
    read-only (file ``0o444``, its shard directory ``0o555``). Catalogues are plain
    caches and may be deleted at any time; they are rebuilt from the task spec.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- objects ---------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` and return its sha256 (hex); idempotent and process-safe."""
        sha = hashlib.sha256(data).hexdigest()
        shard = self.root / "objects" / sha[:2]
        final = shard / sha
        if _has_size(final, len(data)):
            return sha
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        # The shard directory is read-only between writes; the lock keeps one writer from
        # making it read-only again while another is still creating its temp file there.
        with filelock.FileLock(str(locks / f"{sha[:2]}.lock")):
            if _has_size(final, len(data)):
                return sha
            shard.mkdir(parents=True, exist_ok=True)
            shard.chmod(0o755)
            try:
                # Also replaces an existing object of the wrong size (a truncated write).
                write_atomic(final, data, durable=True, mode=0o444)
            finally:
                shard.chmod(0o555)
        return sha

    def object_path(self, sha256: str) -> Path:
        """Where the object is stored; :class:`UnknownSourceError` if there is none."""
        # Checking the shape also keeps a crafted id from escaping the store.
        if not _SHA256.fullmatch(sha256):
            raise UnknownSourceError(f"not a sha256 hex digest: {sha256!r}")
        path = self.root / "objects" / sha256[:2] / sha256
        if not path.is_file():
            raise UnknownSourceError(f"no object {sha256} in {self.root / 'objects'}")
        return path

    def verify(self, sha256: str) -> None:
        """Re-hash the object; :class:`IntegrityError` naming the file if it changed."""
        path = self.object_path(sha256)
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            raise IntegrityError(f"{path}: content hashes to {digest.hexdigest()}, expected {sha256}")

    # -- catalogues ------------------------------------------------------------

    def add_task(self, spec: TaskSpec, *, tokenizer: TokenCounter) -> DataCatalog:
        """Store the task's raw sources and return their catalogue (cached per version/tokenizer)."""
        path = self._catalog_path(spec.version(), tokenizer.name_slug)
        if path.exists():
            try:
                catalog = self._load_catalog(path)
                if catalog.tokenizer != tokenizer.name:
                    # Two names can share a slug; the cache then belongs to the other one.
                    raise DataError(f"{path} was built with tokenizer {catalog.tokenizer!r}")
                if any(e.example_tokens is None for e in catalog.entries):
                    raise DataError(f"{path} predates example lengths")
                self._check_objects(catalog)
                return catalog
            except (DataError, IntegrityError) as exc:
                log.warning("rebuilding catalogue", path=str(path), error=str(exc))
        entries = tuple(self._add_source(source, tokenizer, spec) for source in spec.raw_sources())
        ids = [e.source_id for e in entries]
        if len(set(ids)) != len(ids):
            raise DataError(f"task {spec.name!r} has duplicate source ids: {ids}")
        catalog = DataCatalog(task=spec.name, tokenizer=tokenizer.name, entries=entries)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, to_json(catalog, indent=2), durable=True)
        return catalog

    def catalog(self, task_version: str, tokenizer_slug: str) -> DataCatalog:
        """A cached catalogue; :class:`UnknownSourceError` if none was built for these."""
        path = self._catalog_path(task_version, tokenizer_slug)
        if not path.exists():
            raise UnknownSourceError(
                f"no catalogue for task version {task_version!r} with tokenizer {tokenizer_slug!r}"
            )
        return self._load_catalog(path)

    # -- reading sources -------------------------------------------------------

    def source_path(self, catalog: DataCatalog, source_id: str) -> Path:
        try:
            entry = catalog[source_id]
        except KeyError:
            known = ", ".join(catalog.source_ids) or "(none)"
            raise UnknownSourceError(
                f"task {catalog.task!r} has no raw source {source_id!r}; known: {known}"
            ) from None
        return self.object_path(entry.sha256)

    def open_source(self, catalog: DataCatalog, source_id: str) -> BinaryIO:
        return self.source_path(catalog, source_id).open("rb")

    def read_records(self, catalog: DataCatalog, source_id: str) -> Iterator[dict[str, Any]]:
        """The source's records; :class:`DataError` naming the file and line if one is bad."""
        path = self.source_path(catalog, source_id)
        with path.open("rb") as f:
            yield from iter_records(f, catalog[source_id].format, where=f"{source_id} ({path})")

    # -- internals -------------------------------------------------------------

    def _catalog_path(self, task_version: str, tokenizer_slug: str) -> Path:
        for part in (task_version, tokenizer_slug):
            if not part or "/" in part or os.sep in part or part.startswith("."):
                raise DataError(f"not usable in a catalogue file name: {part!r}")
        return self.root / "catalogs" / f"{task_version}--{tokenizer_slug}.json"

    def _load_catalog(self, path: Path) -> DataCatalog:
        try:
            return from_json(path.read_bytes(), DataCatalog)
        except (OSError, ValueError) as exc:  # PlanError and UnicodeDecodeError are ValueErrors
            raise DataError(f"corrupt catalogue {path}: {exc}") from exc

    def _check_objects(self, catalog: DataCatalog) -> None:
        # Cheap existence and size checks only; a full re-hash is what verify() is for.
        for entry in catalog.entries:
            path = self.object_path(entry.sha256)
            if path.stat().st_size != entry.size_bytes:
                raise IntegrityError(f"{path}: size differs from the catalogue's {entry.size_bytes}")

    def _add_source(self, source: RawSource, tokenizer: TokenCounter, spec: TaskSpec) -> CatalogEntry:
        where = f"source {source.source_id!r}"
        data = dump_records(source.records, source.format, where=where)
        sha = self.put_bytes(data)
        # Describe the data as an agent will read it back, not the in-memory records
        # (tuples become lists, CSV and Markdown cells become strings).
        records = parse_records(data, source.format, where=where)
        fields = tuple(sorted({key for record in records for key in record}))
        return CatalogEntry(
            source_id=source.source_id,
            sha256=sha,
            format=source.format,
            fields=fields,
            records=len(records),
            size_bytes=len(data),
            token_stats=_token_stats(records, fields, tokenizer),
            samples=tuple(_truncate(record) for record in records[:_SAMPLES]),
            note=_note(source.note, records, fields),
            example_tokens=_example_tokens(records, spec, tokenizer),
        )


def _example_tokens(records: Sequence[dict[str, Any]], spec: TaskSpec, tokenizer: TokenCounter) -> TokenStats:
    """Token lengths of the records as the task renders them into training examples.

    The raw fields' lengths understate them: a task's prompt wraps its fields in
    instructions and its response adds the answer format, and a plan's ``max_length``
    must hold the whole example. Records the task cannot use count as nothing.
    """
    texts: list[str] = []
    for record in records:
        try:
            example = spec.to_example(dict(record), include_rationale=True)
        except (FTDojoError, KeyError, TypeError, ValueError):
            example = None
        if example is not None:
            texts.append(f"{example.prompt}\n{example.response}")
    counts: list[int] = []
    for start in range(0, len(texts), _BATCH):
        counts.extend(tokenizer.count_batch(texts[start : start + _BATCH]))
    counts.sort()
    if not counts:
        return TokenStats(p50=0.0, p99=0.0, max=0, mean=0.0)
    return TokenStats(
        p50=_nearest_rank(counts, 50),
        p99=_nearest_rank(counts, 99),
        max=counts[-1],
        mean=sum(counts) / len(counts),
    )


def _token_stats(
    records: Sequence[dict[str, Any]], fields: Sequence[str], tokenizer: TokenCounter
) -> dict[str, TokenStats]:
    stats: dict[str, TokenStats] = {}
    for field in fields:
        texts = [r[field] for r in records if isinstance(r.get(field), str)]
        if not texts:
            continue
        counts: list[int] = []
        for start in range(0, len(texts), _BATCH):
            counts.extend(tokenizer.count_batch(texts[start : start + _BATCH]))
        counts.sort()
        stats[field] = TokenStats(
            p50=_nearest_rank(counts, 50),
            p99=_nearest_rank(counts, 99),
            max=counts[-1],
            mean=sum(counts) / len(counts),
        )
    return stats


def _nearest_rank(sorted_values: Sequence[int], percent: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``percent``% at or below it."""
    rank = max(1, math.ceil(percent / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def _truncate(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= _SAMPLE_CHARS else value[:_SAMPLE_CHARS] + "…"
    if isinstance(value, dict):
        return {k: _truncate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_truncate(v) for v in value]
    return value


def _non_empty(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, dict)):
        return bool(value)
    return True  # numbers and booleans, 0 and False included, are values


def _note(note: str, records: Sequence[dict[str, Any]], fields: Sequence[str]) -> str:
    # The practitioner's words, then numbers computed from the data that back them up.
    n = len(records)
    facts = f"{n} records"
    if n:
        facts += f"; fields: {', '.join(fields)}"
        shares = [
            f"{100 * sum(_non_empty(r.get(field)) for r in records) / n:.1f}% '{field}'" for field in fields
        ]
        facts += f"; non-empty: {', '.join(shares)}"
    facts += "."
    return f"{note.rstrip()}\n{facts}" if note.strip() else facts


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False
