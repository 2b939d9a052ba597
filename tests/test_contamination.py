"""The contamination audit: test items found in the training data, boilerplate left out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftdojo.contamination import audit_contamination, read_training_rows

BOILERPLATE = "Put the final answer in a box and explain every step you took before you answer the question."
ITEMS = [
    (
        f"test-{i:03d}",
        f"Question {i}: a farmer named {name} has {i * 7} sheep and buys {i + 3} more. {BOILERPLATE}",
    )
    for i, name in enumerate(["Ada", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ivy", "Jo"])
]


def test_a_copied_item_is_found_and_boilerplate_is_not() -> None:
    only_boilerplate = [f"Something else entirely. {BOILERPLATE}"] * 5
    clean = audit_contamination("t1", only_boilerplate, ITEMS)
    assert clean.overlapping_items == 0
    assert not clean.flagged

    leaked = audit_contamination("t1", [*only_boilerplate, ITEMS[3][1], ITEMS[7][1].upper()], ITEMS)
    assert leaked.overlapping_items == 2
    assert set(leaked.examples) == {"test-003", "test-007"}
    assert leaked.rate == pytest.approx(0.2)
    assert leaked.flagged  # 0.2 > 0 + 0.05


def test_overlap_the_raw_data_explains_is_not_flagged() -> None:
    leaked = audit_contamination("t1", [ITEMS[3][1], ITEMS[7][1]], ITEMS, raw_rate=0.2)
    assert leaked.rate == pytest.approx(0.2)
    assert not leaked.flagged
    more = audit_contamination("t1", [text for _id, text in ITEMS[:5]], ITEMS, raw_rate=0.2)
    assert more.flagged  # 0.5 > 0.2 + 0.05


def test_short_items_count_by_whole_containment() -> None:
    items = [("a", "red fox"), ("b", "blue whale")]
    audit = audit_contamination("t1", ["the quick red fox jumps"], items)
    assert audit.overlapping_items == 1
    assert audit.examples == ("a",)


@settings(max_examples=60, deadline=None)
@given(
    train=st.lists(st.text(alphabet="abcde fgh", max_size=60), max_size=8),
    picks=st.lists(st.integers(0, len(ITEMS) - 1), max_size=4),
    raw=st.none() | st.floats(0, 1),
)
def test_audit_invariants(train: list[str], picks: list[int], raw: float | None) -> None:
    texts = [*train, *(ITEMS[i][1] for i in picks)]
    audit = audit_contamination("t1", texts, ITEMS, raw_rate=raw)
    assert 0.0 <= audit.rate <= 1.0
    assert audit.overlapping_items <= audit.test_items == len(ITEMS)
    # Every planted item is found: the audit has no false negatives for verbatim copies.
    assert audit.overlapping_items >= len(set(picks))
    assert audit.flagged == (audit.rate > (raw or 0.0) + audit.threshold)
    assert audit == audit_contamination("t1", texts, ITEMS, raw_rate=raw)  # deterministic


def test_training_rows_are_read_without_following_links(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}) + "\n")
    assert list(read_training_rows(data)) == [[1, 2, 3]]
    secret = tmp_path / "secret.jsonl"
    secret.write_text(json.dumps({"input_ids": [9]}) + "\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(secret)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        list(read_training_rows(link))
