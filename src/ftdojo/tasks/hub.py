"""The paper's own datasets, loaded from the Hugging Face hub by their ids.

FT-Dojo's tasks are built on public datasets: DeepScaleR-Preview (math, benchmark AIME),
PANORAMA (patents: PAR4PC, PI4PC, NOC4PC), ChemCoTDataset / ChemCoTBench (chemistry),
FinanceIQ (finance) and TableInstruct / TableBench (table QA). The tasks here load those
datasets with ``datasets.load_dataset`` for users who can reach the hub; the built-in
suite (:data:`ftdojo.tasks.registry.SUITE`) is the offline, generated counterpart.

Where each id, config, split and column name comes from is recorded in
``docs/hub-tasks.md``; what could not be confirmed is said there and next to the code
that depends on it.

The split rule is the paper's: of a benchmark's ``n`` items (after dropping repeated
prompts), validation is the first ``min(100, n // 2)`` and test the last
``min(100, n // 2)``. A raw source is the raw dataset less every record whose normalised
prompt (:func:`ftdojo.tasks.spec.normalize_text`) equals a benchmark prompt; the table
tasks also drop records that ask a benchmark question about a benchmark table in another
prompt template.

``datasets`` is imported inside the loading method only, so that importing this module
(and listing the tasks) stays cheap. ``trust_remote_code`` is never passed: a dataset
that needs a loading script is refused by ``datasets`` rather than run. For offline use
and tests, ``local_files`` replaces any hub load by local files of the same schema.
"""

from __future__ import annotations

import ast
import csv
import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import attrs
import structlog

from ftdojo.errors import DataError, TaskSpecError
from ftdojo.scoring.answers import last_boxed, normalize_math_answer
from ftdojo.scoring.chemistry import (
    Edit,
    canonical_smiles,
    edit_reference,
    optimization_reference,
    parse_smiles,
)
from ftdojo.scoring.labels import canonical_paragraphs, parse_paragraph_numbers
from ftdojo.tasks.spec import EvalItem, Example, RawSource, TaskSpec, normalize_text

__all__ = [
    "AimeMath",
    "ChemEditing",
    "ChemOptimization",
    "ChemReaction",
    "ChemUnderstanding",
    "FieldMap",
    "FinanceIQExam",
    "HubDataset",
    "HubRows",
    "HubSource",
    "HubTask",
    "PatentNovelty",
    "PatentParagraph",
    "PatentPriorArt",
    "TableDataAnalysis",
    "TableFactCheck",
    "TableNumericalReasoning",
    "TableVisualization",
    "split_benchmark",
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


def _maybe_json(value: Any) -> Any:
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


def _field(record: Mapping[str, Any], name: str, task: str) -> Any:
    if name not in record:
        raise DataError(f"{task} record is missing the {name!r} field (has: {sorted(record)})")
    return record[name]


def _text(record: Mapping[str, Any], name: str, task: str) -> str:
    value = _field(record, name, task)
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
        return _text(record, fields.prompt, self.name).strip() + self.INSTRUCTION

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        """The reference the metric compares against, in the form ``extract_answer`` returns."""
        return _text(record, fields.answer, self.name).strip()

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


# -- math: DeepScaleR-Preview, benchmark AIME 2025 --------------------------------------------


_DEEPSCALER = HubDataset(
    key="deepscaler", dataset_id="agentica-org/DeepScaleR-Preview-Dataset", split="train"
)
_AIME_I = HubDataset(key="aime2025_i", dataset_id="opencompass/AIME2025", config="AIME2025-I", split="test")
_AIME_II = HubDataset(
    key="aime2025_ii", dataset_id="opencompass/AIME2025", config="AIME2025-II", split="test"
)


class AimeMath(HubTask):
    """Competition math: train on DeepScaleR-Preview, evaluate on AIME 2025 (15 + 15 problems)."""

    name = "hub_aime"
    domain = "math"
    description = (
        "Competition mathematics (AIME level). Raw data: DeepScaleR-Preview (~40k problems from "
        "AIME 1984-2023, AMC, Omni-MATH and STILL with answers, most without worked solutions). "
        "Evaluation: AIME 2025 I (validation) and II (test); the last \\boxed{...} is read."
    )
    output_format = "\\boxed{<answer>}"
    metric = "accuracy"
    max_new_tokens = 2048
    RAW = (
        HubSource(
            source_id="deepscaler",
            rows=(HubRows(dataset=_DEEPSCALER),),
            note=(
                "Competition problems (problem, answer, solution). Most records have an empty "
                "solution; the solutions present are short official write-ups with a boxed answer."
            ),
        ),
    )
    BENCHMARK = (HubRows(dataset=_AIME_I), HubRows(dataset=_AIME_II))
    RAW_FIELDS = FieldMap(prompt="problem", answer="answer", rationale="solution")
    BENCHMARK_FIELDS = FieldMap(prompt="question", answer="answer")
    # The wording of the AIME 2025 prompt in the paper's OpenCompass configuration.
    INSTRUCTION = "\nRemember to put your final answer within \\boxed{}."

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        return normalize_math_answer(_text(record, fields.answer, self.name).strip())

    def render_response(self, answer: str, rationale: str) -> str:
        final = f"The answer is \\boxed{{{answer}}}."
        if not rationale:
            return final
        return rationale if last_boxed(rationale) is not None else f"{rationale}\n{final}"

    def extract_answer(self, output: str) -> str | None:
        content = last_boxed(output)
        return None if content is None else normalize_math_answer(content)

    def verify(self, record: dict[str, Any]) -> bool | None:
        """Whether the solution's boxed answer equals the answer field; ``None`` without both."""
        solution, answer = record.get("solution"), record.get("answer")
        if not isinstance(solution, str) or answer is None:
            return None
        boxed = self.extract_answer(solution)
        return None if boxed is None else boxed == normalize_math_answer(str(answer).strip())


# -- patents: PANORAMA ---------------------------------------------------------------------


_PANORAMA_ID = "LG-AI-Research/PANORAMA"
_ANSWER_LINE = re.compile(r"Answer:\s*(.+)")


def _panorama(task_dir: str, split: str) -> HubDataset:
    return HubDataset(
        key=f"panorama_{task_dir.lower()}_{split}", dataset_id=_PANORAMA_ID, data_dir=task_dir, split=split
    )


def _last_answer_line(output: str) -> str | None:
    matches = _ANSWER_LINE.findall(output)
    return matches[-1].strip() if matches else None


def _claims_text(claims: Any) -> list[str]:
    claims = _maybe_json(claims)
    if not isinstance(claims, list):
        return []
    texts = []
    for claim in claims:
        if isinstance(claim, Mapping):
            texts.append(str(claim.get("claim_text", claim.get("text", ""))))
        else:
            texts.append(str(claim))
    return texts


def _target_claim(context: Mapping[str, Any], claim_number: Any) -> str:
    claims = _claims_text(context.get("claims"))
    try:
        index = int(str(claim_number)) - 1
    except ValueError:
        return ""
    return claims[index] if 0 <= index < len(claims) else ""


class _PanoramaTask(HubTask):
    """Shared prompt pieces of the three PANORAMA tasks (same columns in train and test)."""

    TASK_DIR: ClassVar[str]
    domain = "patent"
    # PANORAMA's records carry no worked reasoning; NOC4PC's answer may hold the examiner's reason.
    RAW_FIELDS = FieldMap(prompt="context", answer="gold_answers")
    BENCHMARK_FIELDS = FieldMap(prompt="context", answer="gold_answers")
    max_new_tokens = 32
    stop_strings = ("\n",)

    def _context_block(self, record: Mapping[str, Any], *, all_claims: bool) -> str:
        context = _maybe_json(_field(record, "context", self.name))
        if not isinstance(context, Mapping):
            raise DataError(
                f"{self.name} record field 'context' must be an object, got {type(context).__name__}"
            )
        number = record.get("claim_number", "?")
        lines = [
            f"Application {record.get('application_number', '?')}, target claim {number}",
            f"Title: {context.get('title', '')}",
            f"Abstract: {context.get('abstract', '')}",
        ]
        if all_claims:
            lines.append("Claims:")
            lines += [f"{k}. {text}" for k, text in enumerate(_claims_text(context.get("claims")), start=1)]
        else:
            lines.append(f"Claim {number}: {_target_claim(context, number)}")
        return "\n".join(lines)


def _letters(value: Any) -> list[str]:
    """Option letters A-H from a list, a JSON list or a comma/space separated string."""
    value = _maybe_json(value)
    parts = [str(v) for v in value] if isinstance(value, list) else re.split(r"[,\s]+", str(value or ""))
    return sorted(
        {p.strip().upper() for p in parts if len(p.strip()) == 1 and "A" <= p.strip().upper() <= "H"}
    )


class PatentPriorArt(_PanoramaTask):
    """PANORAMA PAR4PC: which of eight candidate patents (A-H) were cited against a claim."""

    name = "hub_patent_prior_art"
    description = (
        "PANORAMA PAR4PC: given a patent application (title, abstract, claims), a target claim and "
        "eight candidate patents A-H, name the candidates the examiner cited against the claim. "
        "Scored by macro-F1 over the letters, as in the paper (an item is right when its set of "
        "letters is exactly the cited set)."
    )
    output_format = "Answer: <letters, e.g. A or A, C>"
    metric = "macro_f1"
    RAW = (
        HubSource(
            source_id="par4pc_train",
            rows=(HubRows(dataset=_panorama("PAR4PC", "train")),),
            note=(
                "USPTO office actions: application context, eight candidate patents with claims, "
                "gold (cited), silver and negative letters. No reasoning; prompts are long."
            ),
        ),
    )
    BENCHMARK = (HubRows(dataset=_panorama("PAR4PC", "test")),)
    INSTRUCTION = (
        "\nWhich candidates (A-H) were cited? End with one line 'Answer: <letters>', e.g. 'Answer: A, C'."
    )

    def format_prompt(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        options = _maybe_json(_field(record, "options", self.name))
        if not isinstance(options, Mapping):
            raise DataError(
                f"{self.name} record field 'options' must be an object, got {type(options).__name__}"
            )
        lines = [self._context_block(record, all_claims=True), "", "Candidates:"]
        for letter, details in sorted(options.items()):
            details = _maybe_json(details)
            if not isinstance(details, Mapping):  # Arrow fills letters a row lacks with null
                continue
            lines.append(f"{letter}: {details.get('patent_id', '')} {details.get('title', '')}".rstrip())
            lines.append(f"   Abstract: {details.get('abstract', '')}")
            claims = _claims_text(details.get("claims"))
            if claims:
                lines.append("   Claims: " + " | ".join(claims))
        return "\n".join(lines) + self.INSTRUCTION

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        return ",".join(_letters(_field(record, fields.answer, self.name)))

    def render_response(self, answer: str, rationale: str) -> str:
        return f"Answer: {answer.replace(',', ', ')}"

    def extract_answer(self, output: str) -> str | None:
        line = _last_answer_line(output)
        if line is None:
            return None
        letters = _letters(line)
        return ",".join(letters) if letters else None


class PatentParagraph(_PanoramaTask):
    """PANORAMA PI4PC: which paragraph of a prior-art document the examiner cited."""

    name = "hub_patent_paragraph"
    description = (
        "PANORAMA PI4PC: given a target claim, a prior-art specification and five of its "
        "paragraphs (keyed by paragraph number), name the paragraph the examiner cited. "
        "A gold paragraph scores 1; the metric reads gold and silver keys from the reference."
    )
    output_format = "Answer: <paragraph number>"
    metric = "gold_hit_rate"
    RAW = (
        HubSource(
            source_id="pi4pc_train",
            rows=(HubRows(dataset=_panorama("PI4PC", "train")),),
            note=(
                "Target claim, prior-art specification and five candidate paragraphs per record, "
                "with gold, silver and negative paragraph keys. No reasoning; specifications are long."
            ),
        ),
    )
    BENCHMARK = (HubRows(dataset=_panorama("PI4PC", "test")),)
    INSTRUCTION = "\nWhich paragraph was cited? End with one line 'Answer: <paragraph number>'."

    def format_prompt(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        prior = _maybe_json(record.get("prior_art_specification")) or {}
        options = _maybe_json(_field(record, "options", self.name))
        if not isinstance(options, Mapping):
            raise DataError(
                f"{self.name} record field 'options' must be an object, got {type(options).__name__}"
            )
        if not isinstance(prior, Mapping):
            prior = {"specification": str(prior)}
        # A struct column holds every key any row has; this row's paragraphs are the non-null ones.
        options = {str(k): v for k, v in options.items() if v is not None}

        def order(key: str) -> tuple[int, str]:
            return (int(key), key) if key.isdigit() else (1 << 30, key)

        lines = [
            self._context_block(record, all_claims=False),
            "",
            f"Prior art {prior.get('patent_id', '')}: {prior.get('title', '')}".rstrip(),
            f"Abstract: {prior.get('abstract', '')}",
            f"Specification: {prior.get('specification', '')}",
            "",
            "Paragraphs:",
            *(f"{key}: {options[key]}" for key in sorted(map(str, options), key=order)),
        ]
        return "\n".join(lines) + self.INSTRUCTION

    @staticmethod
    def _keys(value: Any) -> list[int]:
        value = _maybe_json(value)
        items = value if isinstance(value, list) else re.findall(r"\d+", str(value or ""))
        keys = []
        for item in items:
            try:
                keys.append(int(str(item).strip()))
            except ValueError:
                continue
        return sorted(set(keys))

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        # gold_hit_rate's reference: the gold paragraph number(s). Silver paragraphs (partly
        # relevant) are not gold, so a silver answer is a miss, as in the paper's gold hit rate.
        gold = self._keys(_field(record, "gold_answers", self.name))
        return canonical_paragraphs(set(gold)) if gold else ""

    def answer_for_training(self, record: Mapping[str, Any]) -> str:
        gold = self._keys(_field(record, "gold_answers", self.name))
        return str(gold[0]) if gold else ""

    def render_response(self, answer: str, rationale: str) -> str:
        return f"Answer: {answer}"

    def extract_answer(self, output: str) -> str | None:
        line = _last_answer_line(output)
        numbers = parse_paragraph_numbers(line.strip().rstrip(".")) if line is not None else None
        return canonical_paragraphs(numbers) if numbers else None


_NOVELTY_CODES = ("ALLOW", "102", "103")


class PatentNovelty(_PanoramaTask):
    """PANORAMA NOC4PC: allow the claim, or reject it under 35 U.S.C. 102 or 103."""

    name = "hub_patent_novelty"
    description = (
        "PANORAMA NOC4PC: given a target claim and the cited prior art (claims and cited "
        "paragraphs), decide ALLOW, 102 (anticipated, not novel) or 103 (obvious). Macro-F1."
    )
    output_format = "Answer: ALLOW | 102 | 103"
    metric = "macro_f1"
    RAW_FIELDS = FieldMap(prompt="context", answer="answer")
    BENCHMARK_FIELDS = FieldMap(prompt="context", answer="answer")
    RAW = (
        HubSource(
            source_id="noc4pc_train",
            rows=(HubRows(dataset=_panorama("NOC4PC", "train")),),
            note=(
                "Target claim with the cited prior art and the examiner's decision (ALLOW, 102, 103). "
                "Classes are imbalanced; the examiner's reason, where present, is office-action prose."
            ),
        ),
    )
    BENCHMARK = (HubRows(dataset=_panorama("NOC4PC", "test")),)
    INSTRUCTION = "\nDecide ALLOW, 102 or 103. End with one line 'Answer: <ALLOW|102|103>'."

    def format_prompt(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        lines = [self._context_block(record, all_claims=False), "", "Cited prior art:"]
        specs = _maybe_json(record.get("prior_art_specifications")) or []
        for number, spec in enumerate(specs if isinstance(specs, list) else [], start=1):
            spec = _maybe_json(spec)
            if not isinstance(spec, Mapping):
                continue
            lines.append(f"#{number} {spec.get('patent_id', '')}: {spec.get('title', '')}".rstrip())
            lines.append(f"   Abstract: {spec.get('abstract', '')}")
            claims = _claims_text(spec.get("claims"))
            if claims:
                lines.append("   Claims: " + " | ".join(claims))
            for paragraph in spec.get("paragraphs") or []:
                if isinstance(paragraph, Mapping):
                    lines.append(f"   [{paragraph.get('key', '')}] {paragraph.get('content', '')}")
        return "\n".join(lines) + self.INSTRUCTION

    def _answer(self, record: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        answer = _maybe_json(_field(record, name, self.name))
        return answer if isinstance(answer, Mapping) else {"code": answer}

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        code = str(self._answer(record, fields.answer).get("code") or "").strip().upper()
        return code if code in _NOVELTY_CODES else ""

    def rationale_of(self, record: Mapping[str, Any]) -> str:
        # The answer object's "reason" key is an assumption (the paper's loader reads only "code").
        reason = self._answer(record, self.RAW_FIELDS.answer).get("reason")
        return reason.strip() if isinstance(reason, str) else ""

    def render_response(self, answer: str, rationale: str) -> str:
        return f"{rationale}\nAnswer: {answer}" if rationale else f"Answer: {answer}"

    def extract_answer(self, output: str) -> str | None:
        line = _last_answer_line(output)
        if line is None:
            return None
        code = line.strip().strip(".'\"`").upper()
        return code if code in _NOVELTY_CODES else None


# -- chemistry: ChemCoTDataset / ChemCoTBench -----------------------------------------------


_CHEMCOT_ID = "OpenMol/ChemCoTDataset"
_CHEMCOTBENCH = HubDataset(key="chemcotbench", dataset_id="OpenMol/ChemCoTBench", split="train")

# The JSON key each subtask's query asks the answer under (from the paper's ChemCoTBench loaders).
_CHEM_ANSWER_KEYS: dict[str, str] = {
    "fg_count": "count",
    "ring_count": "count",
    "equivalence": "output",
    "ring_system_scaffold": "output",
    "Murcko_scaffold": "Output Scaffold",
    "add": "output",
    "delete": "output",
    "sub": "output",
    "logp": "Final Target Molecule",
    "solubility": "Final Target Molecule",
    "qed": "Final Target Molecule",
    "drd": "Final Target Molecule",
    "gsk": "Final Target Molecule",
    "jnk": "Final Target Molecule",
    "fs": "Major Product",
    "fs_major_product": "Major Product",
    "fs_by_product": "Major Product",
    "retro": "Reactants",
    "rcr": "condition",
    "nepp": "output",
    "mechsel": "choice",
}
_CHEM_KEY_ORDER = (
    "Final Target Molecule",
    "Final_Target_Molecule",
    "Major Product",
    "Reactants",
    "Output Scaffold",
    "count",
    "choice",
    "condition",
    "output",
    "answer",
)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


def _json_objects(text: str) -> list[Mapping[str, Any]]:
    """Every JSON object that can be decoded from ``text``, left to right."""
    decoder = json.JSONDecoder()
    found: list[Mapping[str, Any]] = []
    k = text.find("{")
    while k != -1:
        try:
            value, end = decoder.raw_decode(text, k)
        except json.JSONDecodeError:
            k = text.find("{", k + 1)
            continue
        if isinstance(value, Mapping):
            found.append(value)
        k = text.find("{", end)
    return found


def chem_answer(output: str, keys: Iterable[str] = _CHEM_KEY_ORDER) -> str | None:
    """The answer in a ChemCoT-style JSON response: the last object holding one of ``keys``."""
    ordered = tuple(keys)
    # Objects inside ```json fences are found as well: the fence is only backticks around them.
    for obj in reversed(_json_objects(_THINK.sub("", output))):
        for key in ordered:
            value = obj.get(key)
            if value is not None and not isinstance(value, (Mapping, list)) and str(value).strip():
                return str(value).strip()
    return None


def _meta(record: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = _maybe_json(record.get("meta"))
    return meta if isinstance(meta, Mapping) else {}


class _ChemTask(HubTask):
    """ChemCoT tasks: the query is the prompt (it states its JSON answer format)."""

    domain = "chemistry"
    max_new_tokens = 1024
    BENCHMARK_FIELDS = FieldMap(prompt="query", answer="gt", category="subtask", item_id="id")
    # The gold answer of a ChemCoTDataset record is not a documented column: it is looked for
    # in "gt" (rcr), then in meta, then in the struct_cot JSON. Unconfirmed, see docs/hub-tasks.md.
    RAW_FIELDS = FieldMap(prompt="query", answer="gt", rationale="struct_cot", category="subtask")

    def answer_for_training(self, record: Mapping[str, Any]) -> str:
        if isinstance(record.get("gt"), (str, int, float)) and str(record["gt"]).strip():
            return self._raw_answer_text(str(record["gt"]).strip(), record)
        meta = _meta(record)
        for key in ("gt", "answer", "reference", "target", "output"):
            value = meta.get(key)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
                return self._raw_answer_text(str(value).strip(), record)
        cot = record.get("struct_cot")
        found = chem_answer(cot) if isinstance(cot, str) else None
        return self._raw_answer_text(found, record) if found else ""

    def _raw_answer_text(self, value: str, record: Mapping[str, Any]) -> str:
        inner = chem_answer(value) if value.startswith("{") else None
        return inner or value

    def rationale_of(self, record: Mapping[str, Any]) -> str:
        for name in ("struct_cot", "raw_cot", "cot_result"):
            value = record.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return ""

    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        prompt = self.format_prompt(record, self.RAW_FIELDS)
        answer = self.answer_for_training(record)
        if not prompt.strip() or not answer:
            return None
        subtask = str(record.get("subtask", ""))
        final = json.dumps({_CHEM_ANSWER_KEYS.get(subtask, "output"): answer}, ensure_ascii=False)
        rationale = self.rationale_of(record) if include_rationale else ""
        # A structured CoT may already end in the answer object; repeating it would teach a stutter.
        if rationale and chem_answer(rationale) == answer:
            response = rationale
        else:
            response = f"{rationale}\n{final}" if rationale else final
        return Example(prompt=prompt, response=response, category=subtask)

    def extract_answer(self, output: str) -> str | None:
        return chem_answer(output)


def _chemcot(task_dir: str) -> HubDataset:
    return HubDataset(
        key=f"chemcot_{task_dir}", dataset_id=_CHEMCOT_ID, data_dir=f"chemcotbench-cot/{task_dir}"
    )


class ChemUnderstanding(_ChemTask):
    """ChemCoTBench mol_und: count groups and rings, extract scaffolds, decide SMILES equivalence."""

    name = "hub_chem_understanding"
    description = (
        "ChemCoTBench molecule understanding: functional-group and ring counts, Murcko and "
        'ring-system scaffolds, SMILES equivalence. Answers are JSON ({"count": n}, '
        '{"output": "Yes"}, {"Output Scaffold": SMILES}); SMILES compare canonicalised.'
    )
    output_format = 'JSON: {"count": n} | {"output": "Yes"/"No"} | {"Output Scaffold": "<SMILES>"}'
    metric = "accuracy"
    categories = ("fg_count", "ring_count", "Murcko_scaffold", "ring_system_scaffold", "equivalence")
    RAW = (
        HubSource(
            source_id="chemcot_mol_und",
            rows=(HubRows(dataset=_chemcot("mol_und")),),
            note=(
                "ChemCoT molecule-understanding queries with structured (struct_cot) and free "
                "(raw_cot) reasoning."
            ),
        ),
    )
    BENCHMARK = (HubRows(dataset=_CHEMCOTBENCH, where=(("task", "mol_und"),)),)

    @staticmethod
    def _canonical(answer: str) -> str:
        text = answer.strip().strip("'\"`")
        if text.lower() in ("yes", "no", "true", "false"):
            return "Yes" if text.lower() in ("yes", "true") else "No"
        if re.fullmatch(r"[+-]?\d+(?:\.0+)?", text):
            return str(int(float(text)))
        return canonical_smiles(text) or text

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        raw = _text(record, fields.answer, self.name).strip()
        return self._canonical(chem_answer(raw) or raw) if raw else ""

    def extract_answer(self, output: str) -> str | None:
        found = chem_answer(output)
        return None if found is None else self._canonical(found)


# ChemCoTBench group name -> the mol_edit_correct group that means the same thing.
_CHEM_GROUPS = {"hydroxyl": "hydroxyl", "amine": "amino", "carboxyl": "carboxylic_acid", "nitrile": "nitrile"}


class ChemEditing(_ChemTask):
    """ChemCoTBench mol_edit: add, delete or substitute a functional group."""

    name = "hub_chem_editing"
    description = (
        "ChemCoTBench molecule editing: add, delete or substitute one functional group of a "
        'molecule, answering {"output": "<SMILES>"}. Correct when the edited molecule is '
        "valid and its group counts changed exactly as asked (RDKit SMARTS)."
    )
    output_format = '{"output": "<SMILES>"}'
    metric = "mol_edit_correct"
    categories = ("add", "delete", "sub")
    RAW = (
        HubSource(
            source_id="chemcot_mol_edit",
            rows=(HubRows(dataset=_chemcot("mol_edit")),),
            note="ChemCoT editing queries (add/delete/sub a functional group) with reasoning traces.",
        ),
    )
    BENCHMARK = (HubRows(dataset=_CHEMCOTBENCH, where=(("task", "mol_edit"),)),)
    _SOURCE = re.compile(r"(?:Input Molecule|Molecule SMILES|Source Molecule):\s*([^\s,]+)")

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        """mol_edit_correct's reference, or ``""`` (item left out) for an edit it cannot score.

        The metric tracks eight groups; of ChemCoTBench's twenty, four have a counterpart
        there (hydroxyl, amine, carboxyl, nitrile). Items editing any other group are left
        out of the benchmark rather than scored by a rule that does not fit them.
        """
        found = self._SOURCE.search(_text(record, fields.prompt, self.name))
        source = found.group(1).rstrip(".") if found else ""
        if parse_smiles(source) is None:
            return ""
        meta = _meta(record)
        added = _CHEM_GROUPS.get(str(meta.get("added_group", "")).strip().lower())
        removed = _CHEM_GROUPS.get(str(meta.get("removed_group", "")).strip().lower())
        subtask = str(record.get("subtask", ""))
        try:
            if subtask == "add" and added:
                edit = Edit(op="add", group=added)
            elif subtask == "delete" and removed:
                edit = Edit(op="remove", group=removed)
            elif subtask == "sub" and added and removed:
                edit = Edit(op="replace", group=removed, new_group=added)
            else:
                return ""
        except ValueError:  # e.g. a substitution of a group by itself
            return ""
        example = str(meta.get("reference", "")).strip() or None
        return edit_reference(source, edit, example=example)

    def display_reference(self, reference: str) -> str:
        try:
            ref = json.loads(reference)
            edit = ref["edit"]
        except (ValueError, KeyError, TypeError):
            return reference
        change = f"{edit.get('group')} -> {edit['new_group']}" if edit.get("new_group") else edit.get("group")
        example = f" (e.g. {ref['example']})" if ref.get("example") else ""
        return f"{edit.get('op')} {change} on {ref.get('source')}{example}"


class ChemOptimization(_ChemTask):
    """ChemCoTBench mol_opt: change a molecule to improve a property (LogP, QED, DRD2, ...)."""

    name = "hub_chem_optimization"
    description = (
        "ChemCoTBench molecule optimisation: propose a molecule that improves a physicochemical "
        "(logp, solubility, qed) or target (drd, gsk, jnk) property of a source molecule, answering "
        '{"Final Target Molecule": "<SMILES>"}. Success when the property improves.'
    )
    output_format = '{"Final Target Molecule": "<SMILES>"}'
    metric = "mol_opt_success"
    # Benchmark categories: the properties the metric can compute (raw data has all six).
    categories = ("logp", "qed")
    RAW = (
        HubSource(
            source_id="chemcot_mol_opt",
            rows=(HubRows(dataset=_chemcot("mol_opt")),),
            note="ChemCoT optimisation queries over six properties with reasoning traces.",
        ),
    )
    BENCHMARK = (HubRows(dataset=_CHEMCOTBENCH, where=(("task", "mol_opt"),)),)
    _SOURCE = re.compile(r"Source Molecule:\s*([^\s]+)")

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        """mol_opt_success's reference, or ``""`` (item left out) for a property it cannot compute.

        The metric computes logP and QED (as ChemCoTBench does, with RDKit); solubility (ESOL)
        and the DRD2, GSK3-beta and JNK3 activity oracles are not available offline, so those
        items are left out. ChemCoTBench counts any improvement; the metric also asks for a
        change above noise and the same Murcko scaffold.
        """
        prop = str(record.get("subtask", ""))
        if prop not in self.categories:
            return ""
        found = self._SOURCE.search(_text(record, fields.prompt, self.name))
        source = found.group(1).rstrip(".,") if found else str(_meta(record).get("source", ""))
        if parse_smiles(source) is None:
            return ""
        return optimization_reference(source, prop, "increase")

    def display_reference(self, reference: str) -> str:
        try:
            ref = json.loads(reference)
        except ValueError:
            return reference
        return f"same scaffold as {ref.get('source', '?')} with higher {ref.get('property', '?')}"


class ChemReaction(_ChemTask):
    """ChemCoTBench reactions with SMILES answers: forward synthesis, retrosynthesis, next step."""

    name = "hub_chem_reaction"
    description = (
        "ChemCoTBench reaction prediction with SMILES answers: major product (fs), reactants "
        "(retro), next elementary-step product (nepp). Scored by exact match of the molecules."
    )
    output_format = '{"Major Product": "<SMILES>"} | {"Reactants": "<SMILES>"} | {"output": "<SMILES>"}'
    metric = "smiles_exact_match"
    categories = ("fs", "retro", "nepp")
    RAW = (
        HubSource(
            source_id="chemcot_rxn",
            rows=(
                HubRows(
                    dataset=HubDataset(
                        key="chemcot_rxn",
                        dataset_id=_CHEMCOT_ID,
                        # rcr.json has other columns than the fs files; the paper's code lists the
                        # three files and renames rcr's cot_result (handled in rationale_of).
                        data_files=(
                            "chemcotbench-cot/rxn/fs_major_product.json",
                            "chemcotbench-cot/rxn/fs_by_product.json",
                            "chemcotbench-cot/rxn/rcr.json",
                        ),
                    )
                ),
            ),
            note=(
                "ChemCoT reaction records: major- and by-product prediction with reasoning, and "
                "reaction-condition (catalyst) questions whose answers are not SMILES."
            ),
        ),
    )
    # rcr and mechsel answers are conditions and letters, which no SMILES metric can score.
    BENCHMARK = tuple(
        HubRows(dataset=_CHEMCOTBENCH, where=(("task", "reaction"), ("subtask", sub)))
        for sub in ("fs", "retro", "nepp")
    )
    BENCHMARK_ORDER = "round_robin"

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        raw = _text(record, fields.answer, self.name).strip()
        answer = (chem_answer(raw) or raw) if raw else ""
        # smiles_exact_match refuses a reference that is not a molecule (a broken item).
        return answer if canonical_smiles(answer) is not None else ""


# -- finance: FinanceIQ ---------------------------------------------------------------------


_FINANCEIQ_ID = "Duxiaoman-DI/FinanceIQ"
# English slug -> the Chinese file name (OpenCompass's FinanceIQ subject mapping).
_FINANCEIQ_SUBJECTS: dict[str, str] = {
    "certified_public_accountant": "注册会计师（CPA）",
    "banking_qualification": "银行从业资格",
    "securities_qualification": "证券从业资格",
    "fund_qualification": "基金从业资格",
    "insurance_qualification": "保险从业资格CICE",
    "economic_analyst": "经济师",
    "taxation_practitioner": "税务师",
    "futures_qualification": "期货从业资格",
    "certified_fin_planner": "理财规划师",
    "actuary_fin_math": "精算师-金融数学",
}
_FINANCE_ANSWER = re.compile(r"答案\s*[:：]\s*\(?([A-Da-d])\)?")


def _financeiq(slug: str) -> HubDataset:
    return HubDataset(
        key=f"financeiq_{slug}",
        dataset_id=_FINANCEIQ_ID,
        data_files=(f"data/test/{_FINANCEIQ_SUBJECTS[slug]}.csv",),
        split="train",
    )


def _column(record: Mapping[str, Any], name: str, task: str) -> Any:
    """Column ``name`` matched case-insensitively (the CSV headers are capitalised)."""
    if name in record:
        return record[name]
    for key, value in record.items():
        if key.strip().lower() == name.lower():
            return value
    raise DataError(f"{task} record is missing the {name!r} field (has: {sorted(record)})")


class FinanceIQExam(HubTask):
    """FinanceIQ: Chinese financial certification exams, single choice A-D, ten subjects."""

    name = "hub_finance_exam"
    domain = "finance"
    description = (
        "FinanceIQ: single-choice questions (A-D, in Chinese) from ten financial certification "
        "exams (CPA, banking, securities, funds, insurance, economist, tax, futures, financial "
        "planner, actuary). The last line must read 答案：<letter>."
    )
    output_format = "答案：<A|B|C|D>"
    metric = "accuracy"
    categories = tuple(_FINANCEIQ_SUBJECTS)
    max_new_tokens = 16
    stop_strings = ("\n",)
    RAW = (
        HubSource(
            source_id="financeiq_train",
            rows=tuple(HubRows(dataset=_financeiq(s), take="head", category=s) for s in _FINANCEIQ_SUBJECTS),
            note=(
                "Exam questions with four options and the answer letter, no explanations. Subjects "
                "are very unevenly sized (CPA and banking large, actuary tiny)."
            ),
        ),
    )
    # The paper's code takes each subject file's last min(ceil(n/2), 100) rows as its benchmark
    # and the rows before as training data; interleaving the subjects keeps both splits mixed.
    BENCHMARK = tuple(HubRows(dataset=_financeiq(s), take="tail", category=s) for s in _FINANCEIQ_SUBJECTS)
    BENCHMARK_ORDER = "round_robin"
    RAW_FIELDS = FieldMap(prompt="Question", answer="Answer", category="category")
    BENCHMARK_FIELDS = FieldMap(prompt="Question", answer="Answer", category="category")
    INSTRUCTION = "\n请在最后一行写出“答案：”和正确选项的字母，例如“答案：A”。"

    def format_prompt(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        subject = str(record.get("category", ""))
        subject_name = _FINANCEIQ_SUBJECTS.get(subject, subject)
        question = str(_column(record, fields.prompt, self.name) or "").strip()
        if not question:
            return ""
        options = "\n".join(f"{x}. {str(_column(record, x, self.name) or '').strip()}" for x in "ABCD")
        header = f"以下是关于{subject_name}的单项选择题，请给出正确答案。"
        return f"{header}\n\n题目：{question}\n{options}{self.INSTRUCTION}"

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        answer = str(_column(record, fields.answer, self.name) or "").strip().upper()
        return answer if answer in ("A", "B", "C", "D") else ""

    def render_response(self, answer: str, rationale: str) -> str:
        return f"答案：{answer}"

    def extract_answer(self, output: str) -> str | None:
        matches = _FINANCE_ANSWER.findall(output)
        if matches:
            return str(matches[-1]).upper()
        bare = output.strip().strip(".。").upper()
        return bare if bare in ("A", "B", "C", "D") else None


# -- tables: TableInstruct / TableBench -----------------------------------------------------


_TABLEINSTRUCT = HubDataset(
    key="tableinstruct", dataset_id="Multilingual-Multimodal-NLP/TableInstruct", split="train"
)
# The paper's OpenCompass configurations evaluate the direct-prompting (DP) file.
_TABLEBENCH_DP = HubDataset(
    key="tablebench_dp",
    dataset_id="Multilingual-Multimodal-NLP/TableBench",
    data_files=("TableBench_DP.jsonl",),
    split="train",
)
_INSTRUCTION_TYPES = ("DP", "TCoT", "SCoT", "PoT")
_INSTRUCTION_NOTES = {
    "DP": "direct answers: the response is just 'Final Answer: ...'",
    "TCoT": "textual step-by-step reasoning ending in 'Final Answer: ...'",
    "SCoT": "symbolic reasoning with simulated Python steps before the final answer",
    "PoT": "Python programs that print the final answer (the response holds code, not the answer)",
}
_FINAL_ANSWER = re.compile(r"Final Answer:\s*(.*)")
_CODE_BLOCK = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_PYTHON_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL | re.IGNORECASE)


_CHART_KINDS = {"bar": "bar", "hbar": "horizontal_bar", "line": "line", "pie": "pie", "scatter": "scatter"}


def _y_series(answer: str) -> list[float] | None:
    """The one series of a TableBench ``y_references = [[...]]`` answer; ``None`` otherwise.

    The right-hand side is read with ``ast.literal_eval``: the answer is data, never run.
    """
    _, _, literal = answer.partition("=")
    try:
        value = ast.literal_eval(literal.strip()) if literal.strip() else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], list) and value[0]):
        return None
    return _numbers(value[0])


def _numbers(cells: Sequence[Any]) -> list[float] | None:
    out = []
    for cell in cells:
        try:
            number = float(str(cell).replace(",", "").strip())
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        out.append(number)
    return out


def _same_series(values: Sequence[float], series: Sequence[float]) -> bool:
    return len(values) == len(series) and all(
        math.isclose(v, r, rel_tol=1e-6, abs_tol=1e-9) for v, r in zip(values, series, strict=True)
    )


def _final_answer(text: str) -> str | None:
    """The last 'Final Answer:' line outside code: a program's print() is not its answer."""
    matches = _FINAL_ANSWER.findall(_CODE_BLOCK.sub("", text))
    if not matches:
        return None
    answer = matches[-1].strip()
    return answer or None


def _table_sources(qtype: str) -> tuple[HubSource, ...]:
    """One raw source per TableInstruct instruction type: they differ the way curated data does."""
    return tuple(
        HubSource(
            source_id=f"tableinstruct_{kind.lower()}",
            rows=(HubRows(dataset=_TABLEINSTRUCT, where=(("qtype", qtype), ("instruction_type", kind))),),
            note=f"TableInstruct {qtype} questions, {_INSTRUCTION_NOTES[kind]}.",
        )
        for kind in _INSTRUCTION_TYPES
    )


def _table_benchmark(qtype: str) -> tuple[HubRows, ...]:
    return (HubRows(dataset=_TABLEBENCH_DP, where=(("qtype", qtype),)),)


class _TableTask(HubTask):
    """TableBench: the dataset's own instruction is the prompt (table, question and format)."""

    domain = "table_qa"
    max_new_tokens = 512
    RAW_FIELDS = FieldMap(prompt="instruction", answer="response", rationale="response", category="qsubtype")
    BENCHMARK_FIELDS = FieldMap(prompt="instruction", answer="answer", category="qsubtype", item_id="id")

    def leak_keys(self, record: Mapping[str, Any], fields: FieldMap) -> set[str]:
        keys = super().leak_keys(record, fields)
        question, table = record.get("question"), _maybe_json(record.get("table"))
        if isinstance(question, str) and question.strip():
            # The same question about the same table under another instruction template is
            # still the benchmark item.
            keys.add(
                "q:"
                + normalize_text(question)
                + "|t:"
                + json.dumps(table, sort_keys=True, ensure_ascii=False)
            )
        return keys

    def _canonical(self, answer: str) -> str:
        return answer.strip().rstrip(".").strip()

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        return self._canonical(_text(record, fields.answer, self.name))

    def answer_for_training(self, record: Mapping[str, Any]) -> str:
        # As written in the data ("Yes", not the folded "yes" the metric compares).
        found = _final_answer(_text(record, self.RAW_FIELDS.answer, self.name))
        return found.strip() if found else ""

    def rationale_of(self, record: Mapping[str, Any]) -> str:
        return _text(record, self.RAW_FIELDS.answer, self.name).strip()

    def render_response(self, answer: str, rationale: str) -> str:
        # TableInstruct responses already end in "Final Answer: ..."; without the rationale the
        # response is that line alone, the direct-prompting format the benchmark asks for.
        return rationale if rationale else f"Final Answer: {answer}"

    def extract_answer(self, output: str) -> str | None:
        found = _final_answer(output)
        return None if found is None else self._canonical(found)


class TableFactCheck(_TableTask):
    name = "hub_table_fact_check"
    RAW = _table_sources("FactChecking")
    BENCHMARK = _table_benchmark("FactChecking")
    description = (
        "TableBench fact checking: decide whether a statement about a JSON table holds "
        "(MatchBased, Multi-hop FactChecking); answer on a last line 'Final Answer: ...'."
    )
    output_format = "Final Answer: <Yes/No or the asked value>"
    metric = "accuracy"
    categories = ("MatchBased", "Multi-hop FactChecking")
    max_new_tokens = 64
    stop_strings = ("\n",)

    def _canonical(self, answer: str) -> str:
        # Case and end punctuation carry no meaning in a verdict ("yes." is "Yes").
        return " ".join(answer.strip().rstrip(".").split()).casefold()


class TableNumericalReasoning(_TableTask):
    name = "hub_table_numerical"
    RAW = _table_sources("NumericalReasoning")
    BENCHMARK = _table_benchmark("NumericalReasoning")
    description = (
        "TableBench numerical reasoning over a JSON table: aggregation, arithmetic, comparison, "
        "counting, ranking, time-based and multi-hop calculations. Numbers count within 10 %."
    )
    output_format = "Final Answer: <number(s) or name(s)>"
    metric = "tolerance_accuracy"
    categories = (
        "Aggregation",
        "ArithmeticCalculation",
        "Comparison",
        "Counting",
        "Domain-Specific",
        "Multi-hop NumericalReasoing",  # the dataset's own spelling
        "Ranking",
        "Time-basedCalculation",
    )
    max_new_tokens = 64
    stop_strings = ("\n",)


class TableDataAnalysis(_TableTask):
    name = "hub_table_analysis"
    RAW = _table_sources("DataAnalysis")
    BENCHMARK = _table_benchmark("DataAnalysis")
    description = (
        "TableBench data analysis over a JSON table: anomaly detection, causal, correlation, "
        "descriptive, impact and statistical analysis, trend forecasting. Numbers count within 10 %."
    )
    output_format = "Final Answer: <value(s) or short text>"
    metric = "tolerance_accuracy"
    categories = (
        "AnomalyDetection",
        "CausalAnalysis",
        "CorrelationAnalysis",
        "DescriptiveAnalysis",
        "ImpactAnalysis",
        "StatisticalAnalysis",
        "TrendForecasting",
    )
    max_new_tokens = 256


class TableVisualization(_TableTask):
    """TableBench chart generation: Python (pandas + matplotlib) that draws the asked chart."""

    name = "hub_table_visualization"
    RAW = _table_sources("Visualization")
    BENCHMARK = _table_benchmark("Visualization")
    description = (
        "TableBench chart generation: write Python (pandas reads table.csv, matplotlib draws) "
        "for the asked chart. Passes when the drawn data equal the reference chart's data."
    )
    output_format = "```python\n<code>\n```"
    metric = "chart_pass_at_1"
    categories = ("ChartGeneration",)
    max_new_tokens = 512

    def reference_of(self, record: Mapping[str, Any], fields: FieldMap) -> str:
        """chart_pass_at_1's reference, or ``""`` (item left out) where it cannot be stated.

        TableBench states the expected chart as ``y_references = [[...], ...]`` (one list per
        series) and a ``chart_type``; the metric checks one table column drawn as one chart
        kind. An item becomes a reference when its chart type is one the metric draws
        (bar, hbar, line, pie, scatter), it has one series, and exactly one table column
        holds that series in table order (for a scatter, exactly one other numeric column is
        the x axis). Area, radar and waterfall charts and multi-series items are left out.
        """
        from ftdojo.scoring.charts import ChartReference  # lazy: only this task needs it

        kind = _CHART_KINDS.get(str(record.get("chart_type", "")).strip().lower())
        series = _y_series(_text(record, fields.answer, self.name))
        table = _maybe_json(record.get("table"))
        if kind is None or series is None or not isinstance(table, Mapping):
            return ""
        columns, data = table.get("columns"), table.get("data")
        if not isinstance(columns, list) or not isinstance(data, list) or not data:
            return ""
        header = [str(c) for c in columns]
        if len(set(header)) != len(header) or not all(
            isinstance(r, list) and len(r) == len(header) for r in data
        ):
            return ""
        numeric = {name: _numbers([row[k] for row in data]) for k, name in enumerate(header)}
        matches = [
            name for name, values in numeric.items() if values is not None and _same_series(values, series)
        ]
        if len(matches) != 1:
            return ""
        y = matches[0]
        others = [name for name in header if name != y and (kind != "scatter" or numeric[name] is not None)]
        if not others or (kind == "scatter" and len(others) != 1):
            return ""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if cell is None else str(cell) for cell in row] for row in data])
        try:
            return ChartReference(csv=buffer.getvalue(), kind=kind, x=others[0], y=y).to_json()
        except ValueError:
            return ""

    def display_reference(self, reference: str) -> str:
        try:
            ref = json.loads(reference)
        except ValueError:
            return reference
        return f"a {ref.get('kind', '?')} chart of column {ref.get('y', '?')!r} (x: {ref.get('x', '?')!r})"

    def answer_for_training(self, record: Mapping[str, Any]) -> str:
        response = _text(record, self.RAW_FIELDS.answer, self.name)
        blocks = _PYTHON_BLOCK.findall(response)
        return blocks[-1].strip() if blocks else ""

    def render_response(self, answer: str, rationale: str) -> str:
        return rationale if rationale else f"```python\n{answer}\n```"

    def extract_answer(self, output: str) -> str | None:
        blocks = _PYTHON_BLOCK.findall(output)
        return blocks[-1].strip() if blocks and blocks[-1].strip() else None
