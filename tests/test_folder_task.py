"""Bring-your-own task folders: loading, answers, re-creation, and every way a folder can be broken."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftdojo.datarepo import RawDataRepository, TokenCounter
from ftdojo.errors import DataError, FTDojoError, TaskSpecError
from ftdojo.metrics import available_metrics, load_metric
from ftdojo.rawformat import dump_records, parse_records
from ftdojo.tasks.folder import FolderTask
from ftdojo.tasks.registry import task_from_reference, task_reference
from ftdojo.tasks.spec import TaskSpec, normalize_text

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "byo_task"


# -- a small valid folder, written from Python values ------------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


def dump_toml(config: dict[str, Any]) -> str:
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for table, body in config.items():
        if isinstance(body, dict):
            lines.append(f"\n[{table}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def base_config() -> dict[str, Any]:
    return {
        "name": "units",
        "domain": "physics",
        "description": "Convert a length to metres.",
        "output_format": "\\boxed{<metres>}",
        "metric": "accuracy",
        "categories": ["short", "long"],
        "stop_strings": ["}."],
        "max_new_tokens": 32,
        "answer": {"rule": "boxed"},
        "fields": {"prompt": "question", "answer": "metres", "rationale": "work", "category": "kind"},
        "template": {"prompt": "Convert to metres: {prompt}"},
        "notes": {
            "clean.jsonl": "Checked by hand.",
            "sheet.csv": "Typed up from a worksheet.",
            "table.md": "Copied from a wiki table.",
        },
    }


CLEAN = [
    {"question": "3 km", "metres": "3000", "work": "3 × 1000 = 3000", "kind": "long"},
    {"question": "2 km", "metres": "2000", "work": "2 × 1000 = 2000", "kind": "long"},
    {"question": "50 cm", "metres": "0.5", "work": "50 / 100 = 0.5", "kind": "short"},
]
SHEET = [
    {"question": "7 mm", "metres": "0.007", "kind": "short"},
    {"question": "9 km", "metres": "9000", "kind": "long"},
]
TABLE = [{"question": "1 mile (Zürich survey)", "metres": "1609", "kind": "long"}]
VALIDATION = [
    {"prompt": "Convert to metres: 4 km", "reference": "4000", "category": "long"},
    {"prompt": "Convert to metres: 20 cm", "reference": "0.2", "category": "short", "item_id": "v-cm"},
]
TEST = [
    {"prompt": "Convert to metres: 8 km", "reference": "8000", "category": "long"},
    {"prompt": "Convert to metres: 30 mm", "reference": "0.03", "category": "short"},
]

FILES = ("task.toml", "validation.jsonl", "test.jsonl", "raw/clean.jsonl", "raw/sheet.csv", "raw/table.md")


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def write_folder(root: Path, config: dict[str, Any] | None = None) -> Path:
    (root / "raw").mkdir(parents=True, exist_ok=True)
    (root / "task.toml").write_text(dump_toml(base_config() if config is None else config), encoding="utf-8")
    (root / "raw" / "clean.jsonl").write_bytes(jsonl(CLEAN))
    (root / "raw" / "sheet.csv").write_bytes(dump_records(SHEET, "csv"))
    (root / "raw" / "table.md").write_bytes(dump_records(TABLE, "markdown"))
    (root / "validation.jsonl").write_bytes(jsonl(VALIDATION))
    (root / "test.jsonl").write_bytes(jsonl(TEST))
    return root


# -- the valid folder and the worked example ---------------------------------------------------


def test_a_valid_folder_loads_with_its_sources_splits_and_notes(tmp_path: Path) -> None:
    task = TaskSpec.from_dir(write_folder(tmp_path / "units"))
    assert isinstance(task, FolderTask)
    assert (task.name, task.domain, task.metric) == ("units", "physics", "accuracy")
    assert task.categories == ("short", "long")
    assert task.stop_strings == ("}.",)
    assert task.max_new_tokens == 32
    sources = {s.source_id: s for s in task.raw_sources()}
    assert [s.source_id for s in task.raw_sources()] == ["clean", "sheet", "table"]
    assert (sources["clean"].format, sources["sheet"].format, sources["table"].format) == (
        "jsonl",
        "csv",
        "markdown",
    )
    assert sources["clean"].note == "Checked by hand."
    assert sources["table"].note == "Copied from a wiki table."
    assert list(sources["clean"].records) == CLEAN
    assert list(sources["table"].records) == TABLE
    validation, test = task.eval_splits()
    assert [i.item_id for i in validation] == ["validation-00001", "v-cm"]
    assert [i.reference for i in test] == ["8000", "0.03"]
    assert task.params == {"path": str((tmp_path / "units").resolve())}


def test_examples_follow_the_templates_and_the_answer_rule_reads_them(tmp_path: Path) -> None:
    task = FolderTask(write_folder(tmp_path / "units"))
    with_work = task.to_example(dict(CLEAN[0]), include_rationale=True)
    assert with_work is not None
    assert with_work.prompt == "Convert to metres: 3 km"
    assert with_work.response == "3 × 1000 = 3000\nThe answer is \\boxed{3000}."
    assert with_work.category == "long"
    plain = task.to_example(dict(CLEAN[0]), include_rationale=False)
    assert plain is not None
    assert plain.response == "The answer is \\boxed{3000}."
    assert task.extract_answer(with_work.response) == "3000"
    # CSV cells read back as strings; a record without a rationale still makes an example.
    sheet = task.to_example(
        parse_records(dump_records(SHEET, "csv"), "csv", where="sheet")[0], include_rationale=True
    )
    assert sheet is not None
    assert sheet.response == "The answer is \\boxed{0.007}."
    assert task.to_example({"question": "  ", "metres": "1"}, include_rationale=False) is None
    with pytest.raises(DataError, match="'metres'"):
        task.to_example({"question": "1 m"}, include_rationale=False)


@pytest.mark.parametrize(
    ("answer", "outputs"),
    [
        (
            {"rule": "boxed"},
            {"\\boxed{ 12 }": "12", "a \\boxed{1} then \\boxed{2}": "2", "12": None, "\\boxed{}": None},
        ),
        ({"rule": "last_line"}, {"work\n  42  \n\n": "42", "": None, "\n \n": None}),
        (
            {"rule": "regex", "pattern": r"Answer:\s*(\w+)", "case_sensitive": False},
            {"Answer: Foo\nAnswer: BAR": "bar", "answer: x": None, "Answer:": None},
        ),
    ],
)
def test_answer_rules(tmp_path: Path, answer: dict[str, Any], outputs: dict[str, str | None]) -> None:
    config = base_config()
    config["answer"] = answer
    if answer["rule"] == "regex":
        config["template"]["response"] = "Answer: {answer}"
    task = FolderTask(write_folder(tmp_path / "t", config))
    for output, expected in outputs.items():
        assert task.extract_answer(output) == expected, output


def test_case_insensitive_tasks_fold_references_too(tmp_path: Path) -> None:
    config = base_config()
    config["answer"] = {"rule": "last_line", "case_sensitive": False}
    root = write_folder(tmp_path / "t", config)
    (root / "validation.jsonl").write_bytes(jsonl([{**VALIDATION[0], "reference": " Four KM "}]))
    task = FolderTask(root)
    assert task.eval_splits()[0][0].reference == "four km"
    assert task.extract_answer("so:\nFOUR km") == "four km"


def test_worker_recreation_gives_an_equal_task(tmp_path: Path) -> None:
    task = FolderTask(write_folder(tmp_path / "units"))
    reference = json.loads(json.dumps(task_reference(task)))
    assert reference["params"] == {"path": str((tmp_path / "units").resolve())}
    clone = task_from_reference(reference)
    assert clone == task
    assert clone.version() == task.version()
    assert clone.raw_sources() == task.raw_sources()
    assert clone.eval_splits() == task.eval_splits()


def test_version_changes_with_any_file_in_the_folder(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "units")
    first = FolderTask(root).version()
    assert FolderTask(root).version() == first
    assert first.startswith("units-")
    for relative in FILES:
        path = root / relative
        original = path.read_bytes()
        path.write_bytes(original + b"\n")  # a blank line: the same task, other bytes
        assert FolderTask(root).version() != first, relative
        path.write_bytes(original)
    (root / "README.txt").write_text("notes")
    assert FolderTask(root).version() != first
    assert FolderTask(root) != FolderTask(write_folder(tmp_path / "other"))


def test_the_worked_example_loads(tmp_path: Path) -> None:
    task = TaskSpec.from_dir(EXAMPLE)
    assert isinstance(task, FolderTask)
    assert task.name == "capital_cities"
    assert [s.source_id for s in task.raw_sources()] == ["atlas", "forum", "quiz_sheet"]
    assert [s.format for s in task.raw_sources()] == ["jsonl", "csv", "markdown"]
    assert all(s.note for s in task.raw_sources())
    validation, test = task.eval_splits()
    assert len(validation) == len(test) == 8
    for split in (validation, test):
        assert {i.category for i in split} == set(task.categories)
    assert isinstance(task, FolderTask)
    raw_prompts = {
        normalize_text(task.format_prompt(r["country"])) for s in task.raw_sources() for r in s.records
    }
    assert not raw_prompts & {normalize_text(i.prompt) for i in [*validation, *test]}
    example = task.to_example(dict(task.raw_sources()[0].records[0]), include_rationale=True)
    assert example is not None
    assert example.response.endswith("\nAnswer: Paris")
    assert task.extract_answer("Thinking...\nAnswer: Paris.") == "paris"
    assert task.extract_answer("Answer: São Tomé") == "são tomé"
    # The metric scores right and wrong answers to the example's own items.
    predictions = [task.extract_answer(f"Answer: {i.reference.title()}") for i in validation]
    metric = load_metric(task.metric)
    assert (
        metric.compute(predictions=predictions, references=[i.reference for i in validation])["accuracy"]
        == 1.0
    )
    assert task_from_reference(task_reference(task)) == task
    catalog = RawDataRepository(tmp_path / "repo").add_task(task, tokenizer=TokenCounter.whitespace())
    assert catalog.source_ids == ("atlas", "forum", "quiz_sheet")


def test_the_doc_shows_the_example_folder_verbatim() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "bring-your-own-task.md").read_text(
        encoding="utf-8"
    )
    assert (EXAMPLE / "task.toml").read_text(encoding="utf-8").strip() in doc
    for name in ("validation.jsonl", "test.jsonl", "raw/atlas.jsonl", "raw/forum.csv", "raw/quiz_sheet.md"):
        first_line = (EXAMPLE / name).read_text(encoding="utf-8").splitlines()[0]
        assert first_line in doc, name


# -- defects: one test per kind, with the file and field or line the message must name -----------


def broken(tmp_path: Path, change: Callable[[Path, dict[str, Any]], None]) -> FTDojoError:
    config = base_config()
    root = tmp_path / "broken"
    if root.exists():
        shutil.rmtree(root)
    write_folder(root, config)
    change(root, config)
    with pytest.raises(FTDojoError) as info:
        FolderTask(root)
    return info.value


def rewrite_toml(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path, dict[str, Any]], None]:
    def change(root: Path, config: dict[str, Any]) -> None:
        edit(config)
        (root / "task.toml").write_text(dump_toml(config), encoding="utf-8")

    return change


TOML_DEFECTS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("missing name", lambda c: c.pop("name"), "'name'"),
    ("name not a string", lambda c: c.update(name=3), "'name'"),
    ("name with a slash", lambda c: c.update(name="a/b"), "'name'"),
    ("unknown metric", lambda c: c.update(metric="bleu"), "'metric'"),
    ("categories not a list", lambda c: c.update(categories="short"), "'categories'"),
    ("repeated category", lambda c: c.update(categories=["a", "a"]), "'categories'"),
    ("max_new_tokens zero", lambda c: c.update(max_new_tokens=0), "'max_new_tokens'"),
    ("max_new_tokens a bool", lambda c: c.update(max_new_tokens=True), "'max_new_tokens'"),
    ("unknown top-level field", lambda c: c.update(metrics="accuracy"), "'metrics'"),
    ("unknown rule", lambda c: c["answer"].update(rule="json"), "'answer.rule'"),
    ("bad regex", lambda c: c.update(answer={"rule": "regex", "pattern": "Answer: (["}), "'answer.pattern'"),
    (
        "regex without group",
        lambda c: c.update(answer={"rule": "regex", "pattern": "Answer"}),
        "'answer.pattern'",
    ),
    (
        "regex with two groups",
        lambda c: c.update(answer={"rule": "regex", "pattern": "(a)(b)"}),
        "'answer.pattern'",
    ),
    ("regex without pattern", lambda c: c.update(answer={"rule": "regex"}), "'answer.pattern'"),
    ("pattern without regex", lambda c: c["answer"].update(pattern="(x)"), "'answer.pattern'"),
    ("case_sensitive a string", lambda c: c["answer"].update(case_sensitive="no"), "'answer.case_sensitive'"),
    ("fields not a table", lambda c: c.update(fields="question"), "'fields'"),
    ("prompt template without slot", lambda c: c["template"].update(prompt="Convert"), "'template.prompt'"),
    (
        "response template without slot",
        lambda c: c["template"].update(response="Done."),
        "'template.response'",
    ),
    ("note for a missing file", lambda c: c["notes"].update({"gone.jsonl": "x"}), "'notes.gone.jsonl'"),
    ("note not a string", lambda c: c["notes"].update({"clean.jsonl": 1}), "'notes.clean.jsonl'"),
    (
        "response the rule cannot read",
        lambda c: c["template"].update(response="It is {answer}."),
        "'template.response'",
    ),
    (
        "evaluation prompts not in the training prompt's shape",
        lambda c: c["template"].update(prompt="Question: {prompt}\nAnswer in metres:"),
        "'template.prompt'",
    ),
]


def test_a_prompt_shape_mismatch_names_the_evaluation_file_and_line(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> None:
        config["template"]["prompt"] = "Convert to metres: {prompt}\nAnswer:"

    error = broken(tmp_path, rewrite_toml(edit))
    assert isinstance(error, TaskSpecError)
    assert "validation.jsonl: line 1" in str(error)
    assert "Convert to metres: 4 km" in str(error)
    # Eval prompts written in the template's shape (white space at the ends aside) load.
    config = base_config()
    config["template"]["prompt"] = "Convert to metres: {prompt} "
    FolderTask(write_folder(tmp_path / "shaped", config))


@pytest.mark.parametrize(("label", "edit", "field"), TOML_DEFECTS, ids=[d[0] for d in TOML_DEFECTS])
def test_task_toml_defects_name_the_file_and_field(
    tmp_path: Path, label: str, edit: Callable[[dict[str, Any]], None], field: str
) -> None:
    error = broken(tmp_path, rewrite_toml(edit))
    assert isinstance(error, TaskSpecError), label
    assert "task.toml" in str(error)
    assert field in str(error)


def test_task_toml_syntax_error_and_absence(tmp_path: Path) -> None:
    error = broken(tmp_path, lambda root, c: (root / "task.toml").write_text('name = "x\nmetric = 1\n'))
    assert isinstance(error, TaskSpecError)
    assert "task.toml" in str(error)
    assert "syntax" in str(error)
    error = broken(tmp_path, lambda root, c: (root / "task.toml").unlink())
    assert isinstance(error, TaskSpecError)
    assert "task.toml" in str(error)
    with pytest.raises(TaskSpecError, match="no such directory"):
        FolderTask(tmp_path / "nowhere")


def drop_field(name: str, field: str) -> Callable[[Path, dict[str, Any]], None]:
    def change(root: Path, config: dict[str, Any]) -> None:
        rows = [json.loads(line) for line in (root / name).read_text(encoding="utf-8").splitlines()]
        rows[-1].pop(field)
        (root / name).write_bytes(jsonl(rows))

    return change


def set_field(name: str, field: str, value: Any, line: int = 0) -> Callable[[Path, dict[str, Any]], None]:
    def change(root: Path, config: dict[str, Any]) -> None:
        rows = [json.loads(text) for text in (root / name).read_text(encoding="utf-8").splitlines()]
        rows[line][field] = value
        (root / name).write_bytes(jsonl(rows))

    return change


def empty_raw_folder(root: Path) -> None:
    for path in (root / "raw").iterdir():
        path.unlink()
    config = base_config()
    config.pop("notes")  # notes would name the files first
    (root / "task.toml").write_text(dump_toml(config), encoding="utf-8")


def write(name: str, data: bytes) -> Callable[[Path, dict[str, Any]], None]:
    return lambda root, config: (root / name).write_bytes(data)


DATA_DEFECTS: list[tuple[str, Callable[[Path, dict[str, Any]], None], str, str]] = [
    ("no raw folder", lambda root, c: shutil.rmtree(root / "raw"), "raw", ""),
    ("empty raw folder", lambda root, c: empty_raw_folder(root), "raw", "no raw sources"),
    ("unsupported raw file", write("raw/extra.json", b"{}"), "extra.json", ""),
    ("raw subfolder", lambda root, c: (root / "raw" / "more").mkdir(), "more", ""),
    ("empty raw file", write("raw/clean.jsonl", b""), "clean.jsonl", "no records"),
    ("raw jsonl not json", write("raw/clean.jsonl", b'{"question": "1 m"\n'), "clean.jsonl", "line 1"),
    ("raw csv ragged", write("raw/sheet.csv", b"question,metres\n1 m\n"), "sheet.csv", "row"),
    (
        "raw table without separator",
        write("raw/table.md", b"| question | metres |\n| 1 m | 1 |\n"),
        "table.md",
        "",
    ),
    (
        "raw record without prompt field",
        drop_field("raw/clean.jsonl", "question"),
        "clean.jsonl",
        "'question'",
    ),
    ("raw answer a list", set_field("raw/clean.jsonl", "metres", [1]), "clean.jsonl", "'metres'"),
    ("raw rationale a number", set_field("raw/clean.jsonl", "work", 3), "clean.jsonl", "'work'"),
    ("same source id twice", write("raw/clean.csv", b"question,metres\n1 m,1\n"), "clean.csv", "source id"),
    ("validation missing", lambda root, c: (root / "validation.jsonl").unlink(), "validation.jsonl", ""),
    ("test missing", lambda root, c: (root / "test.jsonl").unlink(), "test.jsonl", ""),
    ("validation empty", write("validation.jsonl", b"\n\n"), "validation.jsonl", "no items"),
    ("test not json", write("test.jsonl", b"prompt: x\n"), "test.jsonl", "line 1"),
    ("test line an array", write("test.jsonl", b'["Convert to metres: 1 m", "1"]\n'), "test.jsonl", "line 1"),
    (
        "validation without reference",
        drop_field("validation.jsonl", "reference"),
        "validation.jsonl",
        "line 2",
    ),
    (
        "reference a number",
        set_field("validation.jsonl", "reference", 4000),
        "validation.jsonl",
        "'reference'",
    ),
    ("blank prompt", set_field("test.jsonl", "prompt", " "), "test.jsonl", "'prompt'"),
    ("unknown item field", set_field("test.jsonl", "answer", "8000"), "test.jsonl", "answer"),
    ("category not declared", set_field("test.jsonl", "category", "huge"), "test.jsonl", "'category'"),
    ("item_id a number", set_field("test.jsonl", "item_id", 7), "test.jsonl", "'item_id'"),
    ("repeated item_id", set_field("validation.jsonl", "item_id", "v-cm"), "validation.jsonl", "v-cm"),
    (
        "repeated prompt in a split",
        set_field("test.jsonl", "prompt", "convert to metres:  8 KM", line=1),
        "test.jsonl",
        "line 2",
    ),
    (
        "validation and test share a prompt",
        set_field("test.jsonl", "prompt", "Convert to metres: 4 km."),
        "validation.jsonl",
        "test.jsonl",
    ),
    (
        "eval prompt in a raw source",
        set_field("validation.jsonl", "prompt", "Convert to metres: 3 KM"),
        "clean.jsonl",
        "validation.jsonl",
    ),
    (
        "latin-1 eval file",
        write("test.jsonl", '{"prompt": "é", "reference": "1"}\n'.encode("latin-1")),
        "test.jsonl",
        "",
    ),
]


@pytest.mark.parametrize(
    ("label", "change", "file", "detail"), DATA_DEFECTS, ids=[d[0] for d in DATA_DEFECTS]
)
def test_data_defects_name_the_file_and_line_or_field(
    tmp_path: Path, label: str, change: Callable[[Path, dict[str, Any]], None], file: str, detail: str
) -> None:
    error = broken(tmp_path, change)
    assert isinstance(error, DataError), f"{label}: {type(error).__name__}: {error}"
    assert file in str(error), str(error)
    assert detail in str(error), str(error)


# -- random breakage: whatever goes wrong, the error is ftdojo's and names a file --------------


def break_by_deleting(root: Path, relative: str) -> str:
    (root / relative).unlink()
    return relative


def break_by_truncating(root: Path, relative: str, cut: float) -> str:
    data = (root / relative).read_bytes()
    first_line = data.split(b"\n", 1)[0]
    # Inside the first line's JSON (never at a line boundary), so the file is always broken.
    position = 1 + int(cut * (len(first_line) - 2))
    (root / relative).write_bytes(data[:position])
    return relative


def break_by_encoding(root: Path, relative: str, encoding: str) -> str:
    text = (root / relative).read_text(encoding="utf-8")
    # Non-ASCII on the first line, so that latin-1 bytes are never valid UTF-8.
    (root / relative).write_bytes(
        ("é " + text if relative.endswith(".toml") else text).encode(encoding, "replace")
    )
    if encoding == "latin-1" and not relative.endswith(".toml"):
        data = (root / relative).read_bytes()
        (root / relative).write_bytes(data.replace(b"k", b"\xe9", 1) if b"k" in data else b"\xe9" + data)
    return relative


def break_by_emptying(root: Path, relative: str) -> str:
    (root / relative).write_bytes(b"")
    return relative


def break_toml_field(root: Path, key: str, value: Any) -> str:
    config = base_config()
    if "." in key:
        table, field = key.split(".", 1)
        config[table][field] = value
    else:
        config[key] = value
    (root / "task.toml").write_text(dump_toml(config), encoding="utf-8")
    return "task.toml"


# A value of the wrong type (or out of range) for each task.toml field.
BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": st.one_of(
        st.integers(), st.booleans(), st.just(""), st.text(min_size=1).filter(lambda s: "/" in s)
    ),
    "domain": st.one_of(st.integers(), st.lists(st.text(), max_size=2), st.just("   ")),
    "description": st.one_of(st.floats(allow_nan=False), st.booleans()),
    "output_format": st.one_of(st.integers(), st.just("")),
    "metric": st.one_of(st.integers(), st.text().filter(lambda s: s not in available_metrics())),
    "categories": st.one_of(st.text(), st.lists(st.integers(), min_size=1, max_size=3)),
    "stop_strings": st.one_of(st.integers(), st.lists(st.just(""), min_size=1, max_size=2)),
    "max_new_tokens": st.one_of(
        st.integers(max_value=0), st.text(), st.booleans(), st.floats(allow_nan=False)
    ),
    "answer.rule": st.one_of(
        st.integers(), st.text().filter(lambda s: s not in {"regex", "boxed", "last_line"})
    ),
    "answer.case_sensitive": st.one_of(st.integers(), st.text()),
    "fields.prompt": st.one_of(st.integers(), st.just(""), st.just("no_such_column")),
    "fields.answer": st.one_of(st.booleans(), st.just("missing_column")),
    "template.prompt": st.text(max_size=20).filter(lambda s: "{prompt}" not in s),
    "template.response": st.text(max_size=20).filter(lambda s: "{answer}" not in s),
}

breakages = st.one_of(
    st.tuples(st.just("delete"), st.sampled_from(FILES)),
    st.tuples(
        st.just("truncate"), st.sampled_from([f for f in FILES if f.endswith(".jsonl")]), st.floats(0, 1)
    ),
    st.tuples(st.just("encoding"), st.sampled_from(FILES), st.sampled_from(["utf-16", "latin-1"])),
    st.tuples(st.just("empty"), st.sampled_from(FILES)),
    st.sampled_from(sorted(BAD_VALUES)).flatmap(
        lambda key: st.tuples(st.just("toml"), st.just(key), BAD_VALUES[key])
    ),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(breakage=breakages)
def test_randomly_broken_folders_raise_ftdojo_errors_naming_a_file(
    tmp_path: Path, breakage: tuple[Any, ...]
) -> None:
    root = tmp_path / "random"
    if root.exists():
        shutil.rmtree(root)
    write_folder(root)
    kind = breakage[0]
    if kind == "delete":
        culprit = break_by_deleting(root, breakage[1])
    elif kind == "truncate":
        culprit = break_by_truncating(root, breakage[1], breakage[2])
    elif kind == "encoding":
        culprit = break_by_encoding(root, breakage[1], breakage[2])
    elif kind == "empty":
        culprit = break_by_emptying(root, breakage[1])
    else:
        culprit = break_toml_field(root, breakage[1], breakage[2])
    with pytest.raises(FTDojoError) as info:
        FolderTask(root)
    message = str(info.value)
    if kind == "toml" and breakage[1].startswith("fields."):
        # A field name no raw column has is a defect found in the raw files, named there.
        assert "task.toml" in message or f"{root / 'raw'}" in message, message
    elif culprit.startswith("raw/") and kind == "delete":
        # task.toml's notes name every raw file, so a deleted one is a note for no file.
        assert isinstance(info.value, TaskSpecError), message
        assert f"notes.{Path(culprit).name}" in message, message
    else:
        assert Path(culprit).name in message, message
        assert isinstance(info.value, TaskSpecError if culprit == "task.toml" else DataError), message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(relative=st.sampled_from(FILES), garbage=st.binary(max_size=200))
def test_arbitrary_bytes_in_any_file_load_or_fail_cleanly(
    tmp_path: Path, relative: str, garbage: bytes
) -> None:
    root = tmp_path / "garbage"
    if root.exists():
        shutil.rmtree(root)
    write_folder(root)
    (root / relative).write_bytes(garbage)
    try:
        FolderTask(root)
    except FTDojoError as exc:
        message = str(exc)
    else:
        return  # the bytes happened to make a valid file
    # A raw file's bad columns may be reported against task.toml's [fields], and vice versa.
    assert any(name in message for name in (Path(relative).name, "task.toml", "raw")), message
