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


# -- near-duplicates: a copy that was edited still counts ------------------------------------

TOWNS = ["Lyon", "Porto", "Gdansk", "Bergen", "Tartu", "Split", "Ghent", "Cork"]
PROBLEMS = [
    (
        f"p{i}",
        f"A baker in {town} sells {1000 + 37 * i:,} loaves at ${2 + i / 4:.2f} each on market day. "
        f"How much money, in dollars, does the baker in {town} take in? "
        f"Answer: {(1000 + 37 * i) * (2 + i / 4):,.2f}",
    )
    for i, town in enumerate(TOWNS)
]
UNRELATED = [
    "A baker in Oslo sells 12 loaves at $3.00 each on market day. How much money does he take in?",
    "How much money, in dollars, does a farmer take in when she sells 40 eggs at $0.25 each?",
]


def _edits(text: str) -> dict[str, str]:
    question, answer = text.split(" Answer: ")
    first, second = question.split(". ", 1)
    return {
        "verbatim": text,
        "inserted words": question.replace("sells", "please note, sells").replace("How", "So how")
        + " Answer: "
        + answer,
        "deleted words": question.replace(" on market day", "").replace(", in dollars,", "")
        + " Answer: "
        + answer,
        "reordered clauses": f"{second} {first}. Answer: {answer}",
        "numbers reformatted": question.replace(",", "").replace(".50", ".5").replace(".00", "")
        + " "
        + answer.replace(",", ""),
        "answer appended": question
        + " Let us think. The total is the count times the price. Answer: "
        + answer,
    }


@pytest.mark.parametrize("edit", list(_edits(PROBLEMS[0][1])))
def test_an_edited_copy_of_a_test_item_is_found(edit: str) -> None:
    leaked = [_edits(text)[edit] for _id, text in PROBLEMS[2:4]]
    audit = audit_contamination("t1", [*UNRELATED, *leaked], PROBLEMS)
    assert set(audit.examples) == {"p2", "p3"}, edit
    assert audit.overlapping_items == 2
    assert audit.flagged
    if edit not in ("verbatim", "answer appended"):  # these keep the item's 13-grams intact
        assert audit.near_duplicates >= 1


def test_the_task_s_phrasing_alone_is_not_a_near_duplicate() -> None:
    # Same template, other towns and numbers: the items' own shingles are not there.
    others = [
        text.replace(town, "Riga").replace(str(1000 + 37 * i), str(5000 + i))
        for i, (town, (_id, text)) in enumerate(
            zip(
                ["Lyon", "Porto", "Gdansk", "Bergen", "Tartu", "Split", "Ghent", "Cork"],
                PROBLEMS,
                strict=True,
            )
        )
    ]
    audit = audit_contamination("t1", [*UNRELATED, *(t.split(" Answer: ")[0] for t in others)], PROBLEMS)
    assert audit.overlapping_items == 0
    assert not audit.flagged


def test_words_inserted_through_a_copy_hide_it_from_the_verbatim_test_but_not_the_near_one() -> None:
    # The attack the issue reports: "please" inserted into copied items, here every tenth
    # word, so that no 13-word window of an item survives.
    def please(text: str) -> str:
        words = text.split(" ")
        return " ".join(f"please {w}" if i % 10 == 9 else w for i, w in enumerate(words))

    copies = [please(text) for _, text in PROBLEMS]
    verbatim_only = audit_contamination("t1", copies, PROBLEMS, near_share=1.01)  # near test off
    audit = audit_contamination("t1", copies, PROBLEMS)
    assert verbatim_only.overlapping_items == 0
    assert audit.overlapping_items == audit.near_duplicates == len(PROBLEMS)
    assert (audit.near_n, audit.near_share) == (3, 0.8)


@settings(max_examples=40, deadline=None)
@given(st.permutations(list(range(len(PROBLEMS)))), st.integers(0, len(PROBLEMS)))
def test_the_audit_ignores_the_order_of_the_training_data(order: list[int], leaked: int) -> None:
    texts = [*UNRELATED, *(_edits(PROBLEMS[i][1])["inserted words"] for i in order[:leaked])]
    forward = audit_contamination("t1", texts, PROBLEMS)
    backward = audit_contamination("t1", list(reversed(texts)), PROBLEMS)
    assert forward.overlapping_items == backward.overlapping_items == leaked
    assert 0.0 <= forward.rate <= 1.0


def test_the_flag_counts_only_items_the_raw_data_does_not_explain() -> None:
    from ftdojo.contamination import overlapping_test_items

    raw = [text for _id, text in ITEMS[:4]]  # the task's own data holds four test items
    explained, raw_rate = overlapping_test_items(raw, ITEMS)
    assert explained == {"test-000", "test-001", "test-002", "test-003"}
    assert raw_rate == pytest.approx(0.4)
    honest = audit_contamination("t1", raw[:3], ITEMS, raw_rate=raw_rate, raw_overlap=explained)
    assert (honest.overlapping_items, honest.unexplained_items, honest.flagged) == (3, 0, False)
    # One item from elsewhere is 10% of the split: flagged, though 0.4 < raw rate + threshold.
    leaked = audit_contamination(
        "t1", [*raw[:3], ITEMS[8][1]], ITEMS, raw_rate=raw_rate, raw_overlap=explained
    )
    assert leaked.rate == pytest.approx(0.4)
    assert leaked.unexplained_items == 1
    assert leaked.flagged
