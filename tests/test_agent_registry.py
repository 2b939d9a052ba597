"""One registry of planners and agents, read by ``ftdojo run --planner`` and ``ftdojo bench``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ftdojo.agent import FTAgent, NaiveAgent, RandomSearchAgent, RulePlanner, TPEPlanner
from ftdojo.agent.registry import (
    PlannerOptions,
    available_agents,
    available_planners,
    make_agent,
    make_planner,
)
from ftdojo.errors import ConfigError

PLUGIN = textwrap.dedent(
    """
    class Sweep:
        def __init__(self, seed):
            self.seed = seed

        def propose(self, context):
            return None


    def make_sweep(options):
        return Sweep(options.seed)


    def make_nothing(options):
        return object()
    """
)


def _install_plugin(root: Path, monkeypatch: pytest.MonkeyPatch, entries: str) -> None:
    (root / "sweep_plugin.py").write_text(PLUGIN)
    dist = root / "sweep_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sweep-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[ftdojo.planners]\n{entries}\n")
    monkeypatch.syspath_prepend(str(root))


def test_the_built_in_planners_and_agents_are_listed_and_made() -> None:
    assert available_planners() == ("llm", "rule", "tpe")
    assert available_agents() == ("ft-agent", "llm", "naive", "random", "tpe")
    rule = make_planner("rule", PlannerOptions(seed=7))
    assert isinstance(rule, RulePlanner)
    assert rule.seed == 7
    assert isinstance(make_planner("tpe", PlannerOptions(seed=2)), TPEPlanner)
    # Agent "ft-agent" is FT-Agent with planner "rule".
    agent = make_agent("ft-agent", 5)
    assert isinstance(agent, FTAgent)
    assert isinstance(agent.planner, RulePlanner)
    assert agent.planner.seed == 5
    assert isinstance(make_agent("naive", 1), NaiveAgent)
    assert isinstance(make_agent("random", 1), RandomSearchAgent)


def test_unknown_names_raise_a_config_error_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown planner 'oracle'; choose from \['llm', 'rule', 'tpe'\]"):
        make_planner("oracle")
    with pytest.raises(ConfigError, match=r"unknown agent 'oracle'.*'ft-agent'.*'random'"):
        make_agent("oracle")
    # The two vocabularies stay apart: "rule" is a planner, "ft-agent" an agent.
    with pytest.raises(ConfigError, match="ft-agent"):
        make_planner("ft-agent")


def test_a_planner_from_an_entry_point_is_listed_and_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_plugin(
        tmp_path,
        monkeypatch,
        "sweep = sweep_plugin:make_sweep\n"
        "rule = sweep_plugin:make_sweep\n"
        "broken = sweep_plugin:make_nothing\n"
        "missing = sweep_plugin:no_such_factory",
    )
    assert available_planners() == ("broken", "llm", "missing", "rule", "sweep", "tpe")
    planner = make_planner("sweep", PlannerOptions(seed=3))
    assert type(planner).__name__ == "Sweep"
    assert planner.seed == 3  # type: ignore[attr-defined]
    # A built-in name wins over a plugin's.
    assert isinstance(make_planner("rule"), RulePlanner)
    with pytest.raises(ConfigError, match="'broken' made a object"):
        make_planner("broken")
    with pytest.raises(ConfigError, match="'missing': cannot import sweep_plugin:no_such_factory"):
        make_planner("missing")
