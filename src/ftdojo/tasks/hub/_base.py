"""What every hub task shares: where data lives, loading, the split rule, the generic task.

A hub task (:class:`HubTask`) is a configuration of datasets and columns; the domain
modules next to this one define the paper's tasks on it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import attrs
import structlog

from ftdojo.errors import DataError, TaskSpecError
from ftdojo.tasks.spec import EvalItem, Example, RawSource, TaskSpec, normalize_text

__all__ = [
    "EVAL_SPLIT_LIMIT",
    "FieldMap",
    "HubDataset",
    "HubRows",
    "HubSource",
    "HubTask",
    "maybe_json",
    "required_field",
    "split_benchmark",
    "text_field",
]

log = structlog.get_logger(__name__)

#: Bumped whenever a change here changes the records or items a task builds (part of ``version()``).
_HUB_TASK_VERSION = 1

#: How many benchmark items each evaluation split takes at most (the paper's rule).
EVAL_SPLIT_LIMIT = 100

_LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_TAKES = ("all", "head", "tail")


# -- where data lives ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class HubDataset:
    """One ``datasets.load_dataset`` call: a hub dataset id and the arguments that pick its rows.

    ``key`` names the load in ``local_files`` overrides and in error messages; several
    raw sources or benchmark slices may share one load (it is made once per task).
    """

    key: str
    dataset_id: str
    config: str | None = None
    split: str = "train"
    data_dir: str | None = None
    data_files: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"split={self.split!r}"]
        if self.config:
            parts.insert(0, f"config={self.config!r}")
        if self.data_dir:
            parts.append(f"data_dir={self.data_dir!r}")
        if self.data_files:
            parts.append(f"data_files={list(self.data_files)!r}")
        return f"Hugging Face dataset {self.dataset_id!r} ({', '.join(parts)})"


def _check_take(instance: Any, attribute: Any, value: str) -> None:
    if value not in _TAKES:
        raise TaskSpecError(f"HubRows.take must be one of {', '.join(_TAKES)}, got {value!r}")


@attrs.frozen(kw_only=True)
class HubRows:
    """The rows of a :class:`HubDataset` that a source or a benchmark uses.

    ``where`` keeps rows whose field equals the value (every pair must hold). ``take``
    keeps all rows, or splits them the way the paper's code splits FinanceIQ's files:
    ``"tail"`` is the last ``min(ceil(n / 2), 100)`` rows, ``"head"`` the rows before.
    ``category`` labels rows that carry no category field of their own.
    """

    dataset: HubDataset
    where: tuple[tuple[str, str], ...] = ()
    take: str = attrs.field(default="all", validator=_check_take)
    category: str | None = None


@attrs.frozen(kw_only=True)
class HubSource:
    """A raw source: the rows it is made of and what a practitioner would note about it."""

    source_id: str
    rows: tuple[HubRows, ...]
    note: str


@attrs.frozen(kw_only=True)
class FieldMap:
    """Which columns of a dataset hold the prompt, the answer, a rationale and a category."""

    prompt: str
    answer: str
    rationale: str | None = None
    category: str | None = None
    item_id: str | None = None


# -- small helpers ---------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON data, so that a row can be stored as a JSON line.

    Arrow columns can hold timestamps, bytes and NaN, none of which JSON has.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Decimal):
        return str(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return _jsonable(tolist())
    return str(value)


def maybe_json(value: Any) -> Any:
    """``value`` parsed when it is a JSON object or array written as text, else unchanged.

    The parquet files of PANORAMA and ChemCoTBench store nested fields sometimes as
    structures and sometimes as JSON strings; the paper's loaders accept both.
    """
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def required_field(record: Mapping[str, Any], name: str, task: str) -> Any:
    if name not in record:
        raise DataError(f"{task} record is missing the {name!r} field (has: {sorted(record)})")
    return record[name]


def text_field(record: Mapping[str, Any], name: str, task: str) -> str:
    value = required_field(record, name, task)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise DataError(f"{task} record field {name!r} must be text or a number, got {type(value).__name__}")


def _offline_hint() -> str:
    flags = [
        v for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if os.environ.get(v, "").strip() not in ("", "0")
    ]
    if flags:
        return f"{'/'.join(flags)} is set and the dataset is not in the local cache"
    return (
        "check network access to huggingface.co, and that you accepted the dataset's terms "
        "on its hub page if it is gated (then log in with `hf auth login`)"
    )


def split_benchmark(items: Sequence[EvalItem]) -> tuple[list[EvalItem], list[EvalItem]]:
    """The paper's split: validation = the first ``min(100, n // 2)`` items, test = the last as many."""
    k = min(EVAL_SPLIT_LIMIT, len(items) // 2)
    return list(items[:k]), list(items[len(items) - k :])


def _take(rows: list[dict[str, Any]], take: str) -> list[dict[str, Any]]:
    if take == "all":
        return rows
    tail = min(math.ceil(len(rows) / 2), EVAL_SPLIT_LIMIT)
    return rows[len(rows) - tail :] if take == "tail" else rows[: len(rows) - tail]


def _round_robin(groups: Sequence[Sequence[EvalItem]]) -> list[EvalItem]:
    merged: list[EvalItem] = []
    for k in range(max((len(g) for g in groups), default=0)):
        merged.extend(g[k] for g in groups if k < len(g))
    return merged


# -- the generic task -----------------------------------------------------------------------


class HubTask(TaskSpec):
    """A task whose raw data and benchmark are Hugging Face datasets.

    A subclass is a configuration: class attributes name the datasets (``RAW``,
    ``BENCHMARK``), the columns (``RAW_FIELDS``, ``BENCHMARK_FIELDS``), the prompt
    instruction and the metric; the hooks below (:meth:`format_prompt`,
    :meth:`reference_of`, :meth:`render_response`, :meth:`extract_answer`) turn rows into
    prompts, references and responses.

    Parameters (kept in ``params``, JSON data, so a worker re-creates the same task):

    - ``local_files``: ``{load key: path or [paths]}`` loads those :class:`HubDataset` keys
      from local ``.jsonl``/``.json``/``.csv``/``.parquet`` files of the same schema
      instead of the hub (offline use, tests).
    - ``cache_dir``: where ``datasets`` keeps what it downloads and prepares.
    - ``revisions``: ``{dataset id: git revision}`` pins a dataset to a commit.
    """

    #: Shown by ``ftdojo tasks`` next to the suite's groups.
    GROUP: ClassVar[str] = "hub"
    RAW: ClassVar[tuple[HubSource, ...]] = ()
    BENCHMARK: ClassVar[tuple[HubRows, ...]] = ()
    RAW_FIELDS: ClassVar[FieldMap]
    BENCHMARK_FIELDS: ClassVar[FieldMap]
    #: Appended to every prompt, training and evaluation alike, so both have one shape.
    INSTRUCTION: ClassVar[str] = ""
    #: ``"concat"`` keeps benchmark slices in order; ``"round_robin"`` interleaves them, so
    #: that the first and last items (validation and test) cover every slice.
    BENCHMARK_ORDER: ClassVar[str] = "concat"

    def __init__(
        self,
        *,
        local_files: Mapping[str, str | Sequence[str]] | None = None,
        cache_dir: str | None = None,
        revisions: Mapping[str, str] | None = None,
    ) -> None:
        known = {rows.dataset.key for src in self.RAW for rows in src.rows} | {
            rows.dataset.key for rows in self.BENCHMARK
        }
        local: dict[str, list[str]] = {}
        for key, files in (local_files or {}).items():
            if key not in known:
                raise TaskSpecError(
                    f"task {self.name!r}: local_files names {key!r}, which is none of its loads: "
                    f"{', '.join(sorted(known))}"
                )
            paths = [files] if isinstance(files, str) else list(files)
            if not paths or not all(isinstance(p, str) for p in paths):
                raise TaskSpecError(
                    f"task {self.name!r}: local_files[{key!r}] must be a path or a list of paths"
                )
            local[key] = [str(Path(p).expanduser().resolve()) for p in paths]
        if cache_dir is not None and not isinstance(cache_dir, str):
            raise TaskSpecError(f"task {self.name!r}: cache_dir must be a path string, got {cache_dir!r}")
        pins = dict(revisions or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in pins.items()):
            raise TaskSpecError(f"task {self.name!r}: revisions must map dataset ids to revision strings")
        self._local = local
        self._cache_dir = cache_dir
        self._revisions = pins
        self.params: dict[str, Any] = {}
        if local:
            self.params["local_files"] = {k: list(v) for k, v in sorted(local.items())}
        if cache_dir is not None:
            self.params["cache_dir"] = cache_dir
        if pins:
            self.params["revisions"] = dict(sorted(pins.items()))
        self._loaded: dict[str, list[dict[str, Any]]] = {}
        self._built: tuple[tuple[RawSource, ...], tuple[EvalItem, ...], tuple[EvalItem, ...]] | None = None

    # -- loading ----------------------------------------------------------------------

    def _load(self, dataset: HubDataset) -> list[dict[str, Any]]:
        """Every row of ``dataset`` as JSON data, loaded once per task."""
        if dataset.key in self._loaded:
            return self._loaded[dataset.key]
        local = self._local.get(dataset.key)
        what = (
            dataset.describe()
            if local is None
            else f"local files {local} (standing in for {dataset.dataset_id!r})"
        )
        try:
            import datasets  # lazy: pulls in pyarrow and pandas
        except ImportError as exc:  # pragma: no cover - datasets is a dependency
            raise DataError(
                f"task {self.name!r} needs the 'datasets' package to load {what}: {exc}"
            ) from None
        try:
            if local is not None:
                suffixes = {Path(p).suffix.lower() for p in local}
                builders = {_LOCAL_BUILDERS.get(s) for s in suffixes}
                if len(builders) != 1 or None in builders:
                    raise TaskSpecError(
                        f"task {self.name!r}: local_files[{dataset.key!r}] must be files of one kind, "
                        f"one of {', '.join(_LOCAL_BUILDERS)}; got {sorted(suffixes)}"
                    )
                loaded = datasets.load_dataset(
                    builders.pop(), data_files=local, split="train", cache_dir=self._cache_dir
                )
            else:
                loaded = datasets.load_dataset(
                    dataset.dataset_id,
                    name=dataset.config,
                    split=dataset.split,
                    data_dir=dataset.data_dir,
                    data_files=list(dataset.data_files) or None,
                    cache_dir=self._cache_dir,
                    revision=self._revisions.get(dataset.dataset_id),
                )
        except TaskSpecError:
            raise
        except Exception as exc:  # any loader failure (network, auth, schema) becomes one clear error
            first_line = (str(exc).strip().splitlines() or [""])[0][:300]
            hint = _offline_hint() if local is None else "check that the files exist and share one schema"
            raise DataError(
                f"task {self.name!r}: cannot load {what}: {type(exc).__name__}: {first_line} ({hint})"
            ) from None
        rows = [_jsonable(dict(row)) for row in loaded]
        self._loaded[dataset.key] = rows
        return rows

    def _rows(self, selection: HubRows) -> list[dict[str, Any]]:
        rows = self._load(selection.dataset)
        for field, _ in selection.where:
            if rows and field not in rows[0]:
                raise DataError(
                    f"task {self.name!r}: {selection.dataset.describe()} has no {field!r} column to select "
                    f"rows by (columns: {sorted(rows[0])})"
                )
        picked = [dict(r) for r in rows if all(str(r.get(f)) == v for f, v in selection.where)]
        picked = _take(picked, selection.take)
        if selection.category is not None:
            key = self.RAW_FIELDS.category or "category"
            for row in picked:
                row.setdefault(key, selection.category)
        return picked

    # -- hooks ------------------------------------------------------------------------

    def format_prompt(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        """The prompt a model sees for ``record``, whose columns ``fields`` names."""
        return text_field(record, fields.prompt, self.name).strip() + self.INSTRUCTION

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        """The reference the metric compares against, in the form ``extract_answer`` returns."""
        return text_field(record, fields.answer, self.name).strip()

    def category_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        if fields.category is None:
            return ""
        value = record.get(fields.category)
        return value if isinstance(value, str) else ""

    def rationale_of(self, record: Mapping[str, Any]) -> str:
        name = self.RAW_FIELDS.rationale
        value = record.get(name) if name else None
        return value.strip() if isinstance(value, str) else ""

    def render_response(self, answer: str, rationale: str) -> str:
        """The response a training example teaches: the rationale (if any) then the answer."""
        return f"{rationale}\n{answer}" if rationale else answer

    def answer_for_training(self, record: Mapping[str, Any]) -> str:
        """The raw record's answer, in the form the response states it."""
        return self.reference_of(record, self.RAW_FIELDS)

    def leak_keys(self, record: Mapping[str, Any], fields: FieldMap) -> set[str]:
        """Keys two records share when one is the other's question; raw records sharing one
        with a benchmark item are dropped."""
        return {normalize_text(self.format_prompt(record, fields))}

    # -- building ----------------------------------------------------------------------

    def _benchmark_items(self) -> tuple[list[EvalItem], set[str]]:
        groups: list[list[EvalItem]] = []
        seen: set[str] = set()
        used_ids: set[str] = set()
        keys: set[str] = set()
        fields = self.BENCHMARK_FIELDS
        skipped = 0
        for selection in self.BENCHMARK:
            group: list[EvalItem] = []
            for index, row in enumerate(self._rows(selection)):
                keys |= self.leak_keys(row, fields)
                prompt = self.format_prompt(row, fields)
                reference = self.reference_of(row, fields)
                normalized = normalize_text(prompt)
                if not prompt.strip() or not reference or normalized in seen:
                    skipped += 1
                    continue
                seen.add(normalized)
                raw_id = row.get(fields.item_id) if fields.item_id else None
                item_id = str(raw_id) if raw_id not in (None, "") else f"{selection.dataset.key}-{index:05d}"
                if item_id in used_ids:  # ids are only unique within one file of some datasets
                    item_id = f"{item_id}-{selection.dataset.key}-{index:05d}"
                used_ids.add(item_id)
                group.append(
                    EvalItem(
                        item_id=item_id,
                        prompt=prompt,
                        reference=reference,
                        category=self.category_of(row, fields) or (selection.category or ""),
                    )
                )
            groups.append(group)
        if skipped:
            log.info(
                "skipped benchmark rows (blank or repeated prompt, or no reference)",
                task=self.name,
                rows=skipped,
            )
        items = (
            _round_robin(groups) if self.BENCHMARK_ORDER == "round_robin" else [i for g in groups for i in g]
        )
        if len(items) < 2:
            raise DataError(
                f"task {self.name!r}: the benchmark has {len(items)} usable items; at least 2 are needed"
            )
        return items, keys

    def _build(self) -> tuple[tuple[RawSource, ...], tuple[EvalItem, ...], tuple[EvalItem, ...]]:
        if self._built is not None:
            return self._built
        items, benchmark_keys = self._benchmark_items()
        validation, test = split_benchmark(items)
        sources = []
        for source in self.RAW:
            kept: list[dict[str, Any]] = []
            dropped = 0
            for selection in source.rows:
                for row in self._rows(selection):
                    try:
                        leaks = bool(self.leak_keys(row, self.RAW_FIELDS) & benchmark_keys)
                    except DataError:  # no prompt to compare; to_example cannot use it either
                        leaks = False
                    if leaks:
                        dropped += 1
                    else:
                        kept.append(row)
            if dropped:
                log.info(
                    "dropped raw records that repeat benchmark items",
                    task=self.name,
                    records=dropped,
                    source=source.source_id,
                )
            if not kept:
                raise DataError(f"task {self.name!r}: raw source {source.source_id!r} has no records")
            sources.append(RawSource(source_id=source.source_id, records=tuple(kept), note=source.note))
        self._built = (tuple(sources), tuple(validation), tuple(test))
        return self._built

    # -- TaskSpec ------------------------------------------------------------------------

    def raw_sources(self) -> Sequence[RawSource]:
        """One source per entry of ``RAW``; records are fresh copies on every call."""
        sources = self._build()[0]
        return [attrs.evolve(src, records=tuple(dict(r) for r in src.records)) for src in sources]

    def eval_splits(self) -> tuple[Sequence[EvalItem], Sequence[EvalItem]]:
        """``(validation, test)`` by the paper's rule (see :func:`split_benchmark`)."""
        _, validation, test = self._build()
        return list(validation), list(test)

    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        """The record's prompt and, as the response, its rationale (if asked for) and answer.

        ``None`` for a record with a blank prompt or no usable answer; :class:`DataError`
        naming the field for a record without the prompt or answer column.
        """
        prompt = self.format_prompt(record, self.RAW_FIELDS)
        answer = self.answer_for_training(record)
        if not prompt.strip() or not answer:
            return None
        rationale = self.rationale_of(record) if include_rationale else ""
        response = self.render_response(answer, rationale)
        return Example(prompt=prompt, response=response, category=self.category_of(record, self.RAW_FIELDS))

    def version(self) -> str:
        """Task name, loader version, parameters and the size and time stamp of each local file.

        The hub's content is not part of it: pin ``revisions`` for data that must not change.
        """
        stamps = {}
        for key, paths in sorted(self._local.items()):
            for path in paths:
                try:
                    stat = os.stat(path)
                except OSError:
                    stamps[f"{key}:{path}"] = "missing"
                else:
                    stamps[f"{key}:{path}"] = f"{stat.st_size}:{stat.st_mtime_ns}"
        state = json.dumps({"params": self.params, "local": stamps}, sort_keys=True)
        digest = hashlib.sha256(state.encode("utf-8")).hexdigest()[:12]
        return f"{self.name}-hub{_HUB_TASK_VERSION}-{digest}"
