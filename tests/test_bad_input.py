"""Bad input gets a typed error that names the file or the field: Hypothesis-generated raw
files and the plans a careless LLM writes (task folders: tests/test_folder_task.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftdojo.errors import DataError, FTDojoError, PlanError
from ftdojo.plans import Plan
from ftdojo.rawformat import FORMATS, dump_records, parse_records
from ftdojo.serialization import from_json

WHERE = "raw/worked_solutions.jsonl"

records = st.lists(
    st.dictionaries(
        st.text(alphabet="abcdefgh_", min_size=1, max_size=8),
        st.text(max_size=30) | st.integers() | st.booleans() | st.none(),
        min_size=1,
        max_size=4,
    ),
    min_size=1,
    max_size=6,
)


def _damage(data: bytes, how: str, where: int) -> bytes:
    cut = where % (len(data) + 1)
    if how == "truncate":
        return data[:cut]
    if how == "latin-1":
        return data[:cut] + "é café naïve".encode("latin-1") + data[cut:]
    if how == "utf-16":
        return data.decode("utf-8", "replace").encode("utf-16")
    if how == "megabyte line":
        return data[:cut] + b"x" * (2 * 2**20) + b"\n" + data[cut:]
    if how == "empty":
        return b""
    if how == "wrong schema":
        return b'[1, 2, 3]\n42\n"text"\n' + data
    if how == "nul bytes":
        return data[:cut] + b"\x00\x00" + data[cut:]
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=records,
    fmt=st.sampled_from(FORMATS),
    how=st.sampled_from(
        ["truncate", "latin-1", "utf-16", "megabyte line", "empty", "wrong schema", "nul bytes"]
    ),
    where=st.integers(0, 10_000),
)
def test_a_damaged_raw_file_reads_or_fails_naming_the_file(
    rows: list[dict[str, Any]], fmt: str, how: str, where: int
) -> None:
    data = _damage(dump_records(rows, fmt, where=WHERE), how, where)
    error: DataError | None = None
    parsed: list[dict[str, Any]] = []
    try:
        parsed = parse_records(data, fmt, where=WHERE)
    except DataError as exc:
        error = exc
    if error is not None:
        assert WHERE in str(error)
        assert re.search(r"line|row|header|separator|table|CSV", str(error)), str(error)
    assert all(isinstance(record, dict) for record in parsed)


plan_like = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**9) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
careless = st.fixed_dictionaries(
    {},
    optional={
        "data": st.fixed_dictionaries(
            {},
            optional={
                "sources": st.lists(
                    st.fixed_dictionaries({"source": st.text(max_size=8) | plan_like}), max_size=3
                )
                | plan_like,
                "max_records": plan_like,
                "template": st.sampled_from(["auto", "chat", "plain", "jinja", ""]) | plan_like,
                "transform_code": st.text(max_size=40) | plan_like,
            },
        )
        | plan_like,
        "train": st.fixed_dictionaries(
            {},
            optional={
                "learning_rate": plan_like,
                "method": st.sampled_from(["lora", "full", "qlora", "LoRA"]) | plan_like,
                "epochs": plan_like,
                "batch_size": plan_like,
                "max_length": plan_like,
            },
        )
        | plan_like,
        "hypothesis": plan_like,
        "focus": st.sampled_from(["data", "training", "both", "everything"]) | plan_like,
        "extra": plan_like,
    },
)


@settings(max_examples=300, deadline=None)
@given(payload=careless)
def test_a_careless_plan_is_a_plan_or_a_plan_error_naming_a_field(payload: dict[str, Any]) -> None:
    text = json.dumps(payload, allow_nan=True)
    error: FTDojoError | None = None
    try:
        plan: Plan | None = from_json(text, Plan)
    except FTDojoError as exc:
        error, plan = exc, None
    if error is not None:
        assert isinstance(error, PlanError), f"not a PlanError: {type(error).__name__}: {error}"
        # The message points at what to fix: a field of the schema, or the JSON itself.
        assert re.search(r"data|train|source|focus|hypothesis|parent|extra|JSON|field|plan", str(error)), str(
            error
        )
    else:
        assert isinstance(plan, Plan)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_text_as_a_plan_is_a_plan_error(text: str) -> None:
    with pytest.raises(PlanError):
        from_json(text, Plan)
