from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Regex, Tokenizer, models, pre_tokenizers

from ftdojo.cards import CatalogEntry, DataCatalog, TokenStats
from ftdojo.datarepo import RawDataRepository, TokenCounter
from ftdojo.errors import DataError, IntegrityError, UnknownSourceError
from ftdojo.tasks.spec import EvalItem, Example, RawSource, TaskSpec

LONG = "x" * 400
PROBLEMS = (
    {"problem": "1+1", "answer": "2", "solution": "one plus one"},
    {"problem": "2 * 3", "answer": "6", "solution": ""},
    {"problem": LONG, "answer": "7", "solution": "s", "n": 5},
    {"problem": "10-4", "answer": "6"},
)
CHAT = ({"text": "héllo wörld\u2028ok"}, {"text": "a"})


class TinySpec(TaskSpec):
    name = "tiny"
    domain = "test"
    description = "a tiny task"
    output_format = "<number>"
    metric = "exact"

    def __init__(self) -> None:
        self.calls = 0

    def raw_sources(self) -> Sequence[RawSource]:
        self.calls += 1
        return (
            RawSource(source_id="problems", records=PROBLEMS, note="Solutions are often missing."),
            RawSource(source_id="chat", records=CHAT, note=""),
        )

    def eval_splits(self) -> tuple[Sequence[EvalItem], Sequence[EvalItem]]:
        return (), ()

    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        return None

    def extract_answer(self, output: str) -> str | None:
        return None


@pytest.fixture
def char_counter(tmp_path: Path) -> TokenCounter:
    """One token per non-whitespace character: counts are easy to work out by hand."""
    tok = Tokenizer(models.WordLevel(vocab={"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), behavior="isolated")]
    )
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    return TokenCounter.from_tokenizer_file(path, "test/char-level")


@pytest.fixture
def repo(tmp_path: Path) -> RawDataRepository:
    return RawDataRepository(tmp_path / "repo")


def _objects(repo: RawDataRepository, sha: str) -> list[str]:
    return sorted(p.name for p in (repo.root / "objects" / sha[:2]).iterdir())


def test_token_counter(char_counter: TokenCounter) -> None:
    assert char_counter.count("ab c") == 3
    assert char_counter.count_batch(["ab c", "", " x y "]) == [3, 0, 2]
    assert char_counter.name_slug == "test-char-level"
    ws = TokenCounter.whitespace()
    assert (ws.name, ws.name_slug, ws.count("a  b\nc")) == ("whitespace", "whitespace", 3)
    assert TokenCounter("Qwen/Qwen2.5-0.5B", lambda t: [0] * len(t)).name_slug == "Qwen-Qwen2.5-0.5B"


def test_put_bytes_is_content_addressed_idempotent_and_read_only(repo: RawDataRepository) -> None:
    data = b'{"a": 1}\n'
    sha = repo.put_bytes(data)
    assert sha == hashlib.sha256(data).hexdigest()
    path = repo.object_path(sha)
    assert path == repo.root / "objects" / sha[:2] / sha
    assert path.read_bytes() == data
    assert repo.put_bytes(data) == sha
    assert _objects(repo, sha) == [sha]
    # Tests may run as root, where a write would succeed anyway: check the mode bits.
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o555
    assert repo.put_bytes(b"other") != sha
    repo.verify(sha)


def test_second_object_in_a_read_only_shard(repo: RawDataRepository) -> None:
    first = repo.put_bytes(b"0")
    other = next(
        str(i).encode()
        for i in range(1, 100_000)
        if hashlib.sha256(str(i).encode()).hexdigest()[:2] == first[:2]
    )
    second = repo.put_bytes(other)
    assert _objects(repo, first) == sorted([first, second])
    assert stat.S_IMODE(repo.object_path(first).parent.stat().st_mode) == 0o555


def test_object_path_rejects_unknown_and_malformed(repo: RawDataRepository) -> None:
    with pytest.raises(UnknownSourceError):
        repo.object_path("0" * 64)
    with pytest.raises(UnknownSourceError):
        repo.object_path("../../etc/passwd")


def test_verify_catches_a_corrupted_object(repo: RawDataRepository) -> None:
    sha = repo.put_bytes(b"precious data\n")
    path = repo.object_path(sha)
    path.chmod(0o644)
    path.write_bytes(b"tampered data\n")
    with pytest.raises(IntegrityError, match=re.escape(str(path))):
        repo.verify(sha)


def test_catalogue_describes_the_data(repo: RawDataRepository, char_counter: TokenCounter) -> None:
    catalog = repo.add_task(TinySpec(), tokenizer=char_counter)
    assert (catalog.task, catalog.tokenizer) == ("tiny", "test/char-level")
    assert catalog.source_ids == ("problems", "chat")

    problems = catalog["problems"]
    assert problems.format == "jsonl"
    assert problems.fields == ("answer", "n", "problem", "solution")
    assert problems.records == 4
    path = repo.source_path(catalog, "problems")
    assert problems.size_bytes == path.stat().st_size
    assert hashlib.sha256(path.read_bytes()).hexdigest() == problems.sha256
    first_line = path.read_bytes().split(b"\n")[0]
    assert first_line == b'{"answer": "2", "problem": "1+1", "solution": "one plus one"}'

    # Non-whitespace characters per value; nearest-rank percentiles.
    # problem: 3 ("1+1"), 3 ("2*3"), 400, 4 -> sorted [3, 3, 4, 400]
    # solution (only where present): 10 ("oneplusone"), 0, 1 -> sorted [0, 1, 10]
    assert problems.token_stats == {
        "answer": TokenStats(p50=1.0, p99=1.0, max=1, mean=1.0),
        "problem": TokenStats(p50=3.0, p99=400.0, max=400, mean=102.5),
        "solution": TokenStats(p50=1.0, p99=10.0, max=10, mean=11 / 3),
    }
    assert problems.samples == (PROBLEMS[0], PROBLEMS[1], {**PROBLEMS[2], "problem": "x" * 300 + "…"})
    assert problems.note == (
        "Solutions are often missing.\n4 records; fields: answer, n, problem, solution; "
        "non-empty: 100.0% 'answer', 25.0% 'n', 100.0% 'problem', 50.0% 'solution'."
    )

    chat = catalog["chat"]
    assert chat.token_stats["text"] == TokenStats(p50=1.0, p99=12.0, max=12, mean=6.5)
    assert chat.note == "2 records; fields: text; non-empty: 100.0% 'text'."
    # U+2028 stays inside its record: lines are split on "\n" only.
    assert list(repo.read_records(catalog, "chat")) == list(CHAT)
    assert list(repo.read_records(catalog, "problems")) == list(PROBLEMS)
    with repo.open_source(catalog, "chat") as f:
        assert f.read().decode("utf-8").count("\n") == 2


def test_catalogue_is_cached(repo: RawDataRepository, char_counter: TokenCounter) -> None:
    spec = TinySpec()
    first = repo.add_task(spec, tokenizer=char_counter)
    cached = repo.root / "catalogs" / "tiny-seed0--test-char-level.json"
    assert cached.is_file()
    assert repo.add_task(spec, tokenizer=char_counter) == first
    assert spec.calls == 1
    assert repo.catalog("tiny-seed0", "test-char-level") == first
    # Another tokenizer is another catalogue.
    other = repo.add_task(spec, tokenizer=TokenCounter.whitespace())
    assert spec.calls == 2
    assert other.tokenizer == "whitespace"
    assert other["problems"].sha256 == first["problems"].sha256


def test_corrupt_cached_catalogue_is_rebuilt(repo: RawDataRepository, char_counter: TokenCounter) -> None:
    spec = TinySpec()
    first = repo.add_task(spec, tokenizer=char_counter)
    cached = repo.root / "catalogs" / "tiny-seed0--test-char-level.json"
    cached.write_text('{"task": "tiny", "entr')
    with pytest.raises(DataError, match="corrupt"):
        repo.catalog("tiny-seed0", "test-char-level")
    assert repo.add_task(spec, tokenizer=char_counter) == first
    assert spec.calls == 2
    assert repo.catalog("tiny-seed0", "test-char-level") == first


def test_missing_object_is_restored(repo: RawDataRepository, char_counter: TokenCounter) -> None:
    spec = TinySpec()
    catalog = repo.add_task(spec, tokenizer=char_counter)
    path = repo.source_path(catalog, "chat")
    path.parent.chmod(0o755)
    path.unlink()
    assert repo.add_task(spec, tokenizer=char_counter) == catalog
    assert spec.calls == 2
    repo.verify(catalog["chat"].sha256)


def test_unknown_catalogue_and_source(repo: RawDataRepository, char_counter: TokenCounter) -> None:
    with pytest.raises(UnknownSourceError):
        repo.catalog("tiny-seed0", "test-char-level")
    catalog = repo.add_task(TinySpec(), tokenizer=char_counter)
    with pytest.raises(UnknownSourceError, match=r"'nope'.*problems, chat") as info:
        repo.open_source(catalog, "nope")
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownSourceError, match="problems, chat"):
        list(repo.read_records(catalog, "nope"))


def _catalog_for(repo: RawDataRepository, data: bytes) -> DataCatalog:
    entry = CatalogEntry(
        source_id="bad", sha256=repo.put_bytes(data), format="jsonl", fields=(), records=0,
        size_bytes=len(data), token_stats={}, samples=(), note="",
    )  # fmt: skip
    return DataCatalog(task="tiny", tokenizer="whitespace", entries=(entry,))


@pytest.mark.parametrize(
    ("data", "problem"),
    [(b'{"a": 1}\n{"a": 2}\n{"a": \n', "not valid JSON"), (b'{"a": 1}\n{"a": 2}\n[3]\n', "not an object")],
)
def test_bad_jsonl_line_names_the_line(repo: RawDataRepository, data: bytes, problem: str) -> None:
    catalog = _catalog_for(repo, data)
    records = repo.read_records(catalog, "bad")
    assert next(records) == {"a": 1}
    assert next(records) == {"a": 2}
    with pytest.raises(DataError, match=f"bad .*line 3.*{problem}"):
        next(records)


def test_unserialisable_record_is_a_data_error(repo: RawDataRepository) -> None:
    class BadSpec(TinySpec):
        def raw_sources(self) -> Sequence[RawSource]:
            return (RawSource(source_id="s", records=({"x": {1, 2}},), note=""),)

    with pytest.raises(DataError, match="'s': record 0"):
        repo.add_task(BadSpec(), tokenizer=TokenCounter.whitespace())


def test_concurrent_put_of_the_same_bytes(repo: RawDataRepository) -> None:
    data = os.urandom(1 << 20)
    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def put() -> None:
        try:
            barrier.wait()
            results.append(repo.put_bytes(data))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    sha = hashlib.sha256(data).hexdigest()
    assert results == [sha, sha]
    assert _objects(repo, sha) == [sha]  # no temp file left behind
    repo.verify(sha)


def test_importing_the_module_stays_light() -> None:
    code = (
        "import sys, ftdojo.datarepo; "
        "heavy = {'torch', 'transformers', 'tokenizers'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_catalogue_json_is_plain(repo: RawDataRepository, char_counter: TokenCounter) -> None:
    repo.add_task(TinySpec(), tokenizer=char_counter)
    data = json.loads((repo.root / "catalogs" / "tiny-seed0--test-char-level.json").read_text())
    assert data["task"] == "tiny"
    assert [e["source_id"] for e in data["entries"]] == ["problems", "chat"]


class RenderingSpec(TinySpec):
    """Wraps each problem in an instruction, as real tasks do."""

    def to_example(self, record: dict[str, Any], *, include_rationale: bool) -> Example | None:
        if "problem" not in record:
            raise DataError("no problem field")
        response = (record.get("solution") or "") + f" answer={record['answer']}"
        return Example(prompt=f"Solve this problem: {record['problem']}", response=response)


def test_catalogue_measures_records_as_training_examples(
    repo: RawDataRepository, char_counter: TokenCounter
) -> None:
    catalog = repo.add_task(RenderingSpec(), tokenizer=char_counter)
    problems = catalog["problems"]
    # "Solvethisproblem:" is 17 non-space characters; "answer=N" 8; the solution as it is.
    lengths = sorted([17 + 3 + 10 + 8, 17 + 3 + 0 + 8, 17 + 400 + 1 + 8, 17 + 4 + 0 + 8])
    assert problems.example_tokens == TokenStats(
        p50=float(lengths[1]), p99=float(lengths[-1]), max=lengths[-1], mean=sum(lengths) / 4
    )
    # The raw fields understate it: the instruction and the answer format are not in them.
    assert problems.example_tokens.p99 > problems.token_stats["problem"].p99
    # A source the task cannot turn into examples (no "problem" field) measures nothing.
    assert catalog["chat"].example_tokens == TokenStats(p50=0.0, p99=0.0, max=0, mean=0.0)


def test_a_cached_catalogue_without_example_lengths_is_rebuilt(
    repo: RawDataRepository, char_counter: TokenCounter
) -> None:
    spec = RenderingSpec()
    first = repo.add_task(spec, tokenizer=char_counter)
    cached = repo.root / "catalogs" / "tiny-seed0--test-char-level.json"
    old = json.loads(cached.read_text())
    for entry in old["entries"]:
        del entry["example_tokens"]
    cached.write_text(json.dumps(old))
    assert repo.add_task(spec, tokenizer=char_counter) == first
    assert spec.calls == 2
