"""Name → planner and name → agent: the names ``ftdojo run`` and ``ftdojo bench`` accept.

Two vocabularies, each kept as users type it:

- **planners**, for ``ftdojo run`` / ``ftdojo resume --planner NAME`` (FT-Agent with that
  planner): ``rule`` (:class:`~ftdojo.agent.RulePlanner`, no LLM), ``tpe``
  (:class:`~ftdojo.agent.TPEPlanner`, Optuna's search) and ``llm``
  (:class:`~ftdojo.agent.LLMPlanner`, an endpoint from ``FTDOJO_LLM_*``), plus any planner a
  package adds through the ``ftdojo.planners`` entry-point group;
- **agents**, for ``ftdojo bench --agents NAME,...``, each made from a seed: ``ft-agent``,
  ``naive`` (:class:`~ftdojo.agent.NaiveAgent`), ``random``
  (:class:`~ftdojo.agent.RandomSearchAgent`), ``tpe`` and ``llm``.

The two meet in FT-Agent: agent ``ft-agent`` is FT-Agent with planner ``rule``, and agents
``tpe`` and ``llm`` are FT-Agent with the planner of the same name. ``naive`` and ``random``
are agents only (one trial on every source; random search in FT-Agent's loop).

A plugin planner is a :data:`PlannerFactory` named by an entry point; a built-in name wins
over a plugin's::

    [project.entry-points."ftdojo.planners"]
    sweep = "my_package.planning:make_sweep"   # make_sweep(options) -> Planner
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

import attrs

from ftdojo.agent.baselines import NaiveAgent, RandomSearchAgent
from ftdojo.agent.ftagent import FTAgent
from ftdojo.agent.llm import LLMPlanner
from ftdojo.agent.planner import RulePlanner
from ftdojo.agent.protocols import Planner
from ftdojo.agent.search import TPEPlanner
from ftdojo.errors import ConfigError

if TYPE_CHECKING:
    from ftdojo.session import Agent

__all__ = [
    "AGENTS",
    "PLANNERS",
    "AgentFactory",
    "PlannerFactory",
    "PlannerOptions",
    "agent_factories",
    "available_agents",
    "available_planners",
    "make_agent",
    "make_planner",
]


@attrs.frozen(kw_only=True)
class PlannerOptions:
    """What the caller knows when it asks for a planner; a factory uses what it needs."""

    #: Seeds the planner's plans (data sampling and training) or its search.
    seed: int = 0
    #: For the LLM planner: at most this many requests for rationales of answer-only records.
    synthesize_rationales: int = 0


#: Makes a planner from the caller's options.
PlannerFactory = Callable[[PlannerOptions], Planner]
#: Makes an agent for one seed.
AgentFactory = Callable[[int], "Agent"]


def _rule(options: PlannerOptions) -> Planner:
    return RulePlanner(seed=options.seed)


def _tpe(options: PlannerOptions) -> Planner:
    return TPEPlanner(seed=options.seed)


def _llm(options: PlannerOptions) -> Planner:
    return LLMPlanner(synthesize_rationales=options.synthesize_rationales)


#: The built-in planners.
PLANNERS: dict[str, PlannerFactory] = {"rule": _rule, "tpe": _tpe, "llm": _llm}


def _ft_agent(planner: str) -> AgentFactory:
    def make(seed: int) -> Agent:
        return FTAgent(planner=make_planner(planner, PlannerOptions(seed=seed)), seed=seed)

    return make


#: The built-in agents.
AGENTS: dict[str, AgentFactory] = {
    "ft-agent": _ft_agent("rule"),
    "naive": lambda seed: NaiveAgent(seed=seed),
    "random": lambda seed: RandomSearchAgent(seed=seed),
    "tpe": _ft_agent("tpe"),
    "llm": _ft_agent("llm"),
}


def _plugin_planners() -> dict[str, EntryPoint]:
    # Read on every call, not cached: it costs little next to building a planner, and
    # there is no stale list to reset when the installed packages change.
    return {ep.name: ep for ep in entry_points(group="ftdojo.planners") if ep.name not in PLANNERS}


def available_planners() -> tuple[str, ...]:
    """The built-in planners and the plugins' planners, sorted."""
    return tuple(sorted({*PLANNERS, *_plugin_planners()}))


def make_planner(name: str, options: PlannerOptions | None = None) -> Planner:
    """The planner registered under ``name``; :class:`ConfigError` naming the known ones if none is."""
    options = options if options is not None else PlannerOptions()
    factory = PLANNERS.get(name)
    if factory is None:
        plugin = _plugin_planners().get(name)
        if plugin is None:
            raise ConfigError(f"unknown planner {name!r}; choose from {list(available_planners())}")
        try:
            factory = plugin.load()
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"planner {name!r}: cannot import {plugin.value}: {exc}") from exc
    planner = factory(options)
    if not isinstance(planner, Planner):
        raise ConfigError(f"planner {name!r} made a {type(planner).__name__}, which has no propose()")
    return planner


def available_agents() -> tuple[str, ...]:
    """The built-in agents, sorted."""
    return tuple(sorted(AGENTS))


def agent_factories() -> dict[str, AgentFactory]:
    """Every built-in agent's factory, by name (a copy: the caller may add its own)."""
    return dict(AGENTS)


def make_agent(name: str, seed: int = 0) -> Agent:
    """The agent registered under ``name``, for ``seed``; :class:`ConfigError` naming the known ones."""
    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; choose from {list(available_agents())}")
    return AGENTS[name](seed)
