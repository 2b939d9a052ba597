"""Bring your own task: a folder that describes a task, read into a :class:`FolderTask`.

The folder layout (``docs/bring-your-own-task.md`` has a complete worked example)::

    my_task/
        task.toml          what the task is, how to read an answer, which fields hold what
        raw/               the raw sources an agent may curate: *.jsonl, *.csv, *.md tables
        validation.jsonl   {"prompt", "reference", "category"?, "item_id"?} per line
        test.jsonl         the same, held out

Everything is checked when the folder is read, so a broken folder fails at
:meth:`TaskSpec.from_dir <ftdojo.tasks.spec.TaskSpec.from_dir>` rather than in the middle of
a run. Every defect raises :class:`ftdojo.errors.TaskSpecError` (``task.toml``: syntax,
fields, values) or :class:`ftdojo.errors.DataError` (raw sources and evaluation files),
with a message that names the file and the field or line.

A worker process re-creates the task from ``params = {"path": <absolute path>}``; the
folder is read again there, and :meth:`FolderTask.version` (a hash of every file in the
folder) tells whether it is still the folder the run started with.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ftdojo.errors import DataError, TaskSpecError
from ftdojo.rawformat import parse_records
from ftdojo.scoring.answers import last_boxed
from ftdojo.tasks.spec import EvalItem, Example, RawSource, TaskSpec, normalize_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]  # not installed on 3.11+

__all__ = ["ANSWER_RULES", "RAW_SUFFIXES", "FolderTask"]

TOML_FILE = "task.toml"
RAW_DIR = "raw"
VALIDATION_FILE = "validation.jsonl"
TEST_FILE = "test.jsonl"

#: File suffix of a raw source -> its :mod:`ftdojo.rawformat` format.
RAW_SUFFIXES = {".jsonl": "jsonl", ".csv": "csv", ".md": "markdown"}
#: How an answer is read out of a model's output (see :meth:`FolderTask.extract_answer`).
ANSWER_RULES = ("regex", "boxed", "last_line")

# Names end up in file names (catalogues, caches) and plans: keep them to a safe alphabet.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_SOURCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TOP_KEYS = {
    "name",
    "domain",
    "description",
    "output_format",
    "metric",
    "categories",
    "stop_strings",
    "max_new_tokens",
    "answer",
    "fields",
    "template",
    "notes",
}
_EVAL_KEYS = {"prompt", "reference", "category", "item_id"}
# What a response says when the toml gives no template.response, per answer rule.
_DEFAULT_RESPONSE = {
    "boxed": "The answer is \\boxed{{answer}}.",
    "last_line": "{answer}",
    "regex": "{answer}",
}


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}.get(
        type(value), "a table" if isinstance(value, Mapping) else type(value).__name__
    )


class _Toml:
    """One table of ``task.toml``, read with type checks that name the file and the field."""

    def __init__(self, data: Mapping[str, Any], path: Path, prefix: str = "") -> None:
        self.data = data
        self.path = path
        self.prefix = prefix

    def where(self, key: str) -> str:
        return f"{self.path}: field '{self.prefix}{key}'"

    def reject_unknown(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                raise TaskSpecError(
                    f"{self.where(key)} is not a known field; known fields here: {', '.join(sorted(allowed))}"
                )

    def string(self, key: str, default: str | None = None, *, allow_empty: bool = False) -> str:
        if key not in self.data:
            if default is None:
                raise TaskSpecError(f"{self.where(key)} is missing (a string is required)")
            return default
        value = self.data[key]
        if not isinstance(value, str):
            raise TaskSpecError(f"{self.where(key)} must be a string, got {_type_name(value)}")
        if not allow_empty and not value.strip():
            raise TaskSpecError(f"{self.where(key)} must not be empty")
        return value

    def optional_string(self, key: str) -> str | None:
        return self.string(key) if key in self.data else None

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise TaskSpecError(f"{self.where(key)} must be an array of non-empty strings, got {value!r}")
        if len(set(value)) != len(value):
            raise TaskSpecError(f"{self.where(key)} repeats an entry: {value!r}")
        return tuple(value)

    def integer(self, key: str, default: int, *, minimum: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TaskSpecError(f"{self.where(key)} must be an integer, got {_type_name(value)}")
        if value < minimum:
            raise TaskSpecError(f"{self.where(key)} must be at least {minimum}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise TaskSpecError(f"{self.where(key)} must be true or false, got {_type_name(value)}")
        return value

    def table(self, key: str) -> _Toml:
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            raise TaskSpecError(f"{self.where(key)} must be a table ([{key}]), got {_type_name(value)}")
        return _Toml(value, self.path, f"{self.prefix}{key}.")


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TaskSpecError(
            f"{path}: missing; a task folder needs a {TOML_FILE} (see docs/bring-your-own-task.md)"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise TaskSpecError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise TaskSpecError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TaskSpecError(f"{path}: TOML syntax error: {exc}") from None
    return data


def _read_eval_file(path: Path, split: str) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of a JSON-lines evaluation file."""
    if not path.is_file():
        raise DataError(f"{path}: missing; a task folder needs {VALIDATION_FILE} and {TEST_FILE}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    rows = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: line {number} is not UTF-8 text (byte {exc.start})") from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: line {number} is not valid JSON: {exc.msg} (column {exc.colno})"
            ) from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number} is a JSON {_type_name(record)}, not an object")
        rows.append((number, record))
    if not rows:
        raise DataError(f"{path}: has no items; the {split} split needs at least one")
    return rows


def _folder_digest(root: Path) -> str:
    """SHA-256 over every regular file under ``root``: relative path and contents."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix().encode("utf-8")
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot be read: {exc.strerror or exc}") from None
        digest.update(len(relative).to_bytes(8, "big") + relative)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


class FolderTask(TaskSpec):
    """A task read from a folder (see the module docstring and ``docs/bring-your-own-task.md``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        root = Path(path).expanduser().resolve()
        if not root.is_dir():
            raise TaskSpecError(f"{root}: not a task folder (no such directory)")
        self.root = root
        self.params: dict[str, Any] = {"path": str(root)}
        # The hash is taken before the files are read, so that a folder edited while it is
        # read gets a version that does not match what was read (and is read again later).
        self._digest = _folder_digest(root)
        self._read_config(root / TOML_FILE)
        self._sources = self._read_raw(root / RAW_DIR)
        self._validation = self._read_split(root / VALIDATION_FILE, "validation")
        self._test = self._read_split(root / TEST_FILE, "test")
        self._check_disjoint()
        self._check_answer_format()
        self._check_prompt_shape()

    # Unlike the base class, equality looks past ``params`` (the path) at the files: the same
    # folder edited between two reads is two different tasks, since its data differ.
    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, FolderTask)
            and other.params == self.params
            and other.version() == self.version()
        )

    def __hash__(self) -> int:
        return hash(("FolderTask", self.params["path"], self._digest))

    # -- task.toml --------------------------------------------------------------------

    def _read_config(self, path: Path) -> None:
        from ftdojo.metrics import available_metrics  # lazy: keeps this module import-light

        top = _Toml(_read_toml(path), path)
        top.reject_unknown(_TOP_KEYS)
        name = top.string("name")
        if not _NAME.fullmatch(name):
            raise TaskSpecError(
                f"{top.where('name')} must be 1-64 letters, digits, '_' or '-' (starting with a letter "
                f"or digit), got {name!r}"
            )
        self.name = name
        self.domain = top.string("domain")
        self.description = top.string("description")
        self.output_format = top.string("output_format")
        metric = top.string("metric")
        known = available_metrics()
        if metric not in known:
            raise TaskSpecError(
                f"{top.where('metric')}: unknown metric {metric!r}; available: {', '.join(known)}"
            )
        self.metric = metric
        self.categories = top.strings("categories")
        self.stop_strings = top.strings("stop_strings")
        self.max_new_tokens = top.integer("max_new_tokens", 128, minimum=1)

        answer = top.table("answer")
        answer.reject_unknown({"rule", "pattern", "case_sensitive"})
        rule = answer.string("rule")
        if rule not in ANSWER_RULES:
            raise TaskSpecError(
                f"{answer.where('rule')} must be one of {', '.join(ANSWER_RULES)}, got {rule!r}"
            )
        self.answer_rule = rule
        self.case_sensitive = answer.boolean("case_sensitive", True)
        self.pattern: re.Pattern[str] | None = None
        if rule == "regex":
            source = answer.string("pattern")
            try:
                compiled = re.compile(source)
            except re.error as exc:
                raise TaskSpecError(
                    f"{answer.where('pattern')} is not a valid regular expression: {exc}"
                ) from None
            if compiled.groups != 1:
                raise TaskSpecError(
                    f"{answer.where('pattern')} must have exactly one capturing group (the answer), "
                    f"has {compiled.groups}: {source!r}"
                )
            self.pattern = compiled
        elif "pattern" in answer.data:
            raise TaskSpecError(f'{answer.where("pattern")} is only used with rule = "regex", not {rule!r}')

        fields = top.table("fields")
        fields.reject_unknown({"prompt", "answer", "rationale", "category"})
        self.prompt_field = fields.string("prompt", "prompt")
        self.answer_field = fields.string("answer", "answer")
        self.rationale_field = fields.optional_string("rationale")
        self.category_field = fields.optional_string("category")

        template = top.table("template")
        template.reject_unknown({"prompt", "response"})
        self.prompt_template = template.string("prompt", "{prompt}")
        if "{prompt}" not in self.prompt_template:
            raise TaskSpecError(
                f"{template.where('prompt')} must contain {{prompt}}: {self.prompt_template!r}"
            )
        self.response_template = template.string("response", _DEFAULT_RESPONSE[rule])
        if "{answer}" not in self.response_template:
            raise TaskSpecError(
                f"{template.where('response')} must contain {{answer}}: {self.response_template!r}"
            )

        notes = top.table("notes")
        self._notes: dict[str, str] = {}
        for file_name in notes.data:
            self._notes[file_name] = notes.string(file_name, allow_empty=True)
        self._toml_path = path

    # -- raw sources ----------------------------------------------------------------------

    def _read_raw(self, raw_dir: Path) -> tuple[RawSource, ...]:
        if not raw_dir.is_dir():
            raise DataError(
                f"{raw_dir}: missing; put the raw sources (.jsonl, .csv, .md) in a {RAW_DIR}/ folder"
            )
        files = sorted(p for p in raw_dir.iterdir() if not p.name.startswith("."))
        for path in files:
            if not path.is_file():
                raise DataError(f"{path}: raw sources must be files directly in {RAW_DIR}/")
            if path.suffix.lower() not in RAW_SUFFIXES:
                raise DataError(f"{path}: not a raw source type; use one of {', '.join(RAW_SUFFIXES)}")
        if not files:
            raise DataError(f"{raw_dir}: has no raw sources; add .jsonl, .csv or .md files")
        for note_file in self._notes:
            if note_file not in {p.name for p in files}:
                raise TaskSpecError(
                    f"{self._toml_path}: field 'notes.{note_file}' names no file in {raw_dir}"
                )
        sources = []
        seen: dict[str, Path] = {}
        for path in files:
            source_id = path.stem
            if not _SOURCE_ID.fullmatch(source_id):
                raise DataError(
                    f"{path}: the file name (without suffix) is the source id and must be letters, digits, "
                    f"'_', '-' or '.', starting with a letter or digit"
                )
            if source_id in seen:
                raise DataError(f"{path}: same source id {source_id!r} as {seen[source_id]}; rename one")
            seen[source_id] = path
            fmt = RAW_SUFFIXES[path.suffix.lower()]
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise DataError(f"{path}: cannot be read: {exc.strerror or exc}") from None
            records = parse_records(data, fmt, where=str(path))
            if not records:
                raise DataError(f"{path}: has no records")
            for number, record in enumerate(records, start=1):
                self._check_raw_record(record, path, number)
            sources.append(
                RawSource(
                    source_id=source_id,
                    records=tuple(records),
                    note=self._notes.get(path.name, ""),
                    format=fmt,
                )
            )
        return tuple(sources)

    def _check_raw_record(self, record: Mapping[str, Any], path: Path, number: int) -> None:
        for field in (self.prompt_field, self.answer_field):
            if field not in record:
                present = ", ".join(map(str, record))
                raise DataError(
                    f"{path}: record {number} has no {field!r} field (it has: {present}); "
                    f"task.toml [fields] names the fields to read"
                )
        if not isinstance(record[self.prompt_field], str):
            kind = _type_name(record[self.prompt_field])
            raise DataError(f"{path}: record {number} field {self.prompt_field!r} must be text, got {kind}")
        answer = record[self.answer_field]
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            kind = _type_name(answer)
            field = self.answer_field
            raise DataError(f"{path}: record {number} field {field!r} must be text or a number, got {kind}")
        for optional in (self.rationale_field, self.category_field):
            value = record.get(optional) if optional else None
            if value is not None and not isinstance(value, str):
                raise DataError(
                    f"{path}: record {number} field {optional!r} must be text, got {_type_name(value)}"
                )

    # -- evaluation splits ---------------------------------------------------------------

    def _normalize_reference(self, reference: str) -> str:
        text = reference.strip()
        return text if self.case_sensitive else text.casefold()

    def _read_split(self, path: Path, split: str) -> tuple[tuple[EvalItem, int], ...]:
        items: list[tuple[EvalItem, int]] = []
        ids: dict[str, int] = {}
        prompts: dict[str, int] = {}
        for number, record in _read_eval_file(path, split):
            unknown = sorted(set(record) - _EVAL_KEYS)
            if unknown:
                raise DataError(
                    f"{path}: line {number} has unknown field(s) {', '.join(unknown)}; "
                    f"items have {', '.join(sorted(_EVAL_KEYS))}"
                )
            for field in ("prompt", "reference"):
                if field not in record:
                    raise DataError(f"{path}: line {number} has no {field!r} field")
                if not isinstance(record[field], str) or not record[field].strip():
                    raise DataError(f"{path}: line {number} field {field!r} must be non-empty text")
            for field in ("category", "item_id"):
                if field in record and not isinstance(record[field], str):
                    raise DataError(f"{path}: line {number} field {field!r} must be text")
            category = record.get("category", "")
            if self.categories and category not in self.categories:
                raise DataError(
                    f"{path}: line {number} field 'category' is {category!r}, not one of the categories "
                    f"in task.toml: {', '.join(self.categories)}"
                )
            item_id = record.get("item_id") or f"{split}-{number:05d}"
            if item_id in ids:
                raise DataError(f"{path}: line {number} repeats item_id {item_id!r} of line {ids[item_id]}")
            ids[item_id] = number
            key = normalize_text(record["prompt"])
            if key in prompts:
                raise DataError(f"{path}: line {number} repeats the prompt of line {prompts[key]}")
            prompts[key] = number
            item = EvalItem(
                item_id=item_id,
                prompt=record["prompt"],
                reference=self._normalize_reference(record["reference"]),
                category=category,
            )
            items.append((item, number))
        return tuple(items)

    def _check_disjoint(self) -> None:
        validation_path, test_path = self.root / VALIDATION_FILE, self.root / TEST_FILE
        validation = {normalize_text(item.prompt): number for item, number in self._validation}
        for item, number in self._test:
            other = validation.get(normalize_text(item.prompt))
            if other is not None:
                raise DataError(
                    f"{test_path}: line {number} has the same prompt as {validation_path} line {other}; "
                    f"validation and test must not share prompts"
                )
        raw: dict[str, tuple[str, int]] = {}
        for source in self._sources:
            for number, record in enumerate(source.records, start=1):
                prompt = str(record[self.prompt_field])
                for key in (normalize_text(prompt), normalize_text(self.format_prompt(prompt))):
                    raw.setdefault(key, (source.source_id, number))
        for path, items in ((validation_path, self._validation), (test_path, self._test)):
            for item, number in items:
                found = raw.get(normalize_text(item.prompt))
                if found is not None:
                    source_file = self._source_file(found[0])
                    raise DataError(
                        f"{path}: line {number} has a prompt that appears in raw source {source_file} "
                        f"(record {found[1]}); evaluation prompts must not occur in the raw data"
                    )

    def _source_file(self, source_id: str) -> Path:
        matches = [p for p in (self.root / RAW_DIR).iterdir() if p.stem == source_id]
        return matches[0] if matches else self.root / RAW_DIR / source_id

    def _check_prompt_shape(self) -> None:
        """Every evaluation prompt must have the shape ``template.prompt`` gives training prompts.

        The evaluation prompts are used as written while training prompts are templated;
        a model trained on ``Q: ...`` and asked a bare question is scored on a prompt
        format it never saw, a silent train/evaluation template mismatch. The text around
        ``{prompt}`` (white space aside) must open and close every evaluation prompt.
        """
        before, _, after = self.prompt_template.partition("{prompt}")
        head, tail = before.strip(), after.strip()
        if not head and not tail:
            return
        for split, items in ((VALIDATION_FILE, self._validation), (TEST_FILE, self._test)):
            for item, number in items:
                text = item.prompt.strip()
                if not (text.startswith(head) and text.endswith(tail)) or len(text) < len(head) + len(tail):
                    raise TaskSpecError(
                        f"{self.root / split}: line {number} prompt {item.prompt[:80]!r} does not have the "
                        f"shape of 'template.prompt' in {self._toml_path} ({self.prompt_template!r}): it "
                        "must start with the text before {prompt} and end with the text after it, as "
                        "the training prompts do"
                    )

    def _check_answer_format(self) -> None:
        """The first usable raw record's response must be readable by the answer rule.

        A template.response that the rule cannot read would train every example into a
        format the evaluator then scores as "no answer"; better to say so now.
        """
        for source in self._sources:
            for number, record in enumerate(source.records, start=1):
                example = self.to_example(dict(record), include_rationale=False)
                if example is None:
                    continue
                if self.extract_answer(example.response) is None:
                    raise TaskSpecError(
                        f"{self._toml_path}: field 'template.response' makes {example.response!r} for "
                        f"{self._source_file(source.source_id)} record {number}, which the answer rule "
                        f"({self.answer_rule}) cannot read; make the two agree"
                    )
                return

    # -- TaskSpec --------------------------------------------------------------------------

    def format_prompt(self, prompt: str) -> str:
        """A raw record's prompt text in the shape of the evaluation prompts (``template.prompt``)."""
        return self.prompt_template.replace("{prompt}", prompt)

    def raw_sources(self) -> Sequence[RawSource]:
        """One source per file in ``raw/``, named by the file name without its suffix, in name order."""
        return [
            RawSource(
                source_id=s.source_id, records=tuple(dict(r) for r in s.records), note=s.note, format=s.format
            )
            for s in self._sources
        ]

    def eval_splits(self) -> tuple[Sequence[EvalItem], Sequence[EvalItem]]:
        """``validation.jsonl`` and ``test.jsonl`` as given; references stripped (and case-folded
        when ``answer.case_sensitive = false``), so that they compare with extracted answers."""
        return [item for item, _ in self._validation], [item for item, _ in self._test]

    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        """The templated prompt and, as the response, the rationale (if any and asked for) and
        the templated answer. ``None`` for a blank prompt or answer; :class:`DataError` naming
        the field for a record without the prompt or answer field."""
        for field in (self.prompt_field, self.answer_field):
            if field not in record:
                raise DataError(f"{self.name} record is missing the {field!r} field (has: {sorted(record)})")
        prompt, answer = record[self.prompt_field], record[self.answer_field]
        if not isinstance(prompt, str):
            raise DataError(
                f"{self.name} record field {self.prompt_field!r} must be text, got {_type_name(prompt)}"
            )
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            kind = _type_name(answer)
            raise DataError(
                f"{self.name} record field {self.answer_field!r} must be text or a number, got {kind}"
            )
        answer_text = str(answer).strip()
        if not prompt.strip() or not answer_text:
            return None
        response = self.response_template.replace("{answer}", answer_text)
        rationale = record.get(self.rationale_field) if self.rationale_field else None
        if include_rationale and isinstance(rationale, str) and rationale.strip():
            response = f"{rationale.strip()}\n{response}"
        category = record.get(self.category_field) if self.category_field else None
        return Example(
            prompt=self.format_prompt(prompt),
            response=response,
            category=category if isinstance(category, str) else "",
        )

    def extract_answer(self, output: str) -> str | None:
        """The answer by ``answer.rule``, stripped (and case-folded unless case-sensitive).

        ``boxed``: the content of the last complete ``\\boxed{...}``. ``last_line``: the last
        non-blank line. ``regex``: the pattern's group in its last match. ``None`` when the
        rule finds nothing or only blank text.
        """
        found: str | None
        if self.answer_rule == "boxed":
            found = last_boxed(output)
        elif self.answer_rule == "last_line":
            lines = [line for line in output.splitlines() if line.strip()]
            found = lines[-1] if lines else None
        else:
            assert self.pattern is not None
            matches = list(self.pattern.finditer(output))
            found = matches[-1].group(1) if matches else None
        if found is None or not found.strip():
            return None
        return self._normalize_reference(found)

    def version(self) -> str:
        """The task name and a hash of every file in the folder (as it was when read)."""
        return f"{self.name}-{self._digest[:16]}"
