"""The documentation site: its pages exist, its links resolve, and its examples run.

Every fenced ``python`` block of the pages in ``RUNNABLE`` runs, in order, in one
namespace per page, unless the line before it is ``<!-- docs-test: skip -->`` (an
example that needs a server or the default model). The site itself is built in strict
mode by ``nox -s docs`` and in CI.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKIP = "<!-- docs-test: skip -->"
RUNNABLE = ("extending.md", "llm.md", "concepts.md")

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _blocks(page: str, language: str) -> list[tuple[str, bool]]:
    """``(code, skipped)`` for every fenced block of ``language`` in ``docs/page``."""
    text = (DOCS / page).read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        if match.group(1) != language:
            continue
        before = text[: match.start()].rstrip().splitlines()
        found.append((match.group(2), bool(before) and before[-1].strip() == SKIP))
    return found


def _run_page(page: str) -> tuple[dict[str, Any], str]:
    namespace: dict[str, Any] = {"__name__": f"docs_{page.removesuffix('.md')}"}
    out = io.StringIO()
    blocks = [code for code, skipped in _blocks(page, "python") if not skipped]
    assert blocks, f"docs/{page} has no runnable python block"
    with contextlib.redirect_stdout(out):
        for index, code in enumerate(blocks):
            exec(compile(code, f"docs/{page} (python block {index + 1})", "exec"), namespace)
    return namespace, out.getvalue()


def _nav_pages(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def test_every_nav_page_exists_and_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(config["nav"])
    assert len(nav) == len(set(nav)), "a page is in the nav twice"
    missing = [page for page in nav if not (DOCS / page).is_file()]
    assert not missing, f"mkdocs.yml names pages that do not exist: {missing}"
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages - set(nav) == set(), "pages missing from the nav of mkdocs.yml"


def test_relative_links_between_pages_resolve() -> None:
    broken = []
    for page in DOCS.rglob("*.md"):
        text = _FENCE.sub("", page.read_text(encoding="utf-8"))
        for target in _LINK.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL, or an anchor on the same page
            path = target.split("#", 1)[0]
            if path.endswith(".md") and not (page.parent / path).resolve().is_file():
                broken.append(f"{page.relative_to(DOCS)} -> {target}")
    assert not broken, f"links to pages that do not exist: {broken}"


def test_quickstart_has_the_readmes_two_commands_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = _FENCE.search(readme)
    assert first is not None
    assert first.group(1) == "bash"
    commands = [line for line in first.group(2).splitlines() if line.strip()]
    assert len(commands) == 2
    quickstart = [code for code, _ in _blocks("quickstart.md", "bash")]
    assert quickstart[0] == first.group(2), "the quickstart's first block must be the README's"


def test_llm_page_examples_run() -> None:
    namespace, out = _run_page("llm.md")
    # The scripted server answered a 429 first: the client retried and got the answer.
    assert namespace["server"].requests, "the example never reached its server"
    assert "after a retry: OK" in out
    assert "LLMError:" in out
    assert len(namespace["server"].requests) == 3  # the first try and max_retries=2


def test_concepts_page_examples_run() -> None:
    _, out = _run_page("concepts.md")
    assert "Plan round-trips through" in out
    assert "PlanError: learning_rate: must be a positive finite number" in out


def test_extending_examples_run_a_real_trial(
    ftdojo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page's run uses the Dojo's defaults: $FTDOJO_HOME and ./ftdojo-runs.
    monkeypatch.setenv("FTDOJO_HOME", str(ftdojo_home))
    monkeypatch.chdir(tmp_path)
    namespace, out = _run_page("extending.md")
    result = namespace["result"]
    # The sweep's first learning rate is above the validator's ceiling: rejected, not run.
    assert [r.plan.train.learning_rate for r in result.rejections] == [3e-3]
    assert "above the ceiling" in result.rejections[0].reasons[0]
    (trial,) = result.trials
    assert trial.feedback.ok, trial.feedback.execution.root_cause
    assert trial.plan.train.learning_rate == 1e-3
    assert [s.source for s in trial.plan.data.sources] == ["worked_solutions"]
    assert trial.feedback.training is not None
    assert trial.feedback.training.steps == 20
    # The analyzer's findings reached the journal: one per category below the floor.
    evaluation = trial.feedback.evaluation
    assert evaluation is not None
    assert evaluation.per_category
    findings = result.annotations[trial.trial_id]["diagnosis"]["findings"]
    weak = {f["subject"] for f in findings if f["kind"] == "weak_category"}
    assert {c for c, score in evaluation.per_category.items() if score < 0.5} <= weak
    assert (tmp_path / "ftdojo-runs" / result.run_id / "journal.jsonl").is_file()
    assert "rejected: 0.003" in out
    assert result.test_score is not None
