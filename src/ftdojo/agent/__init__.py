"""FT-Agent and its strategies."""

from ftdojo.agent.analyzer import RuleAnalyzer
from ftdojo.agent.baselines import NaiveAgent, RandomSearchAgent, naive_plan
from ftdojo.agent.ftagent import FTAgent
from ftdojo.agent.llm import LLMConfig, LLMPlanner, RationaleSynthesizer
from ftdojo.agent.memory import TrialTree
from ftdojo.agent.planner import RulePlanner
from ftdojo.agent.protocols import (
    Diagnosis,
    FeedbackAnalyzer,
    Finding,
    FindingKind,
    Memory,
    Planner,
    PlanningContext,
    Validator,
    Verdict,
)
from ftdojo.agent.search import RandomPlanner, SearchSpace, TPEPlanner
from ftdojo.agent.validator import FailFastValidator

__all__ = [
    "Diagnosis",
    "FTAgent",
    "FailFastValidator",
    "FeedbackAnalyzer",
    "Finding",
    "FindingKind",
    "LLMConfig",
    "LLMPlanner",
    "Memory",
    "NaiveAgent",
    "Planner",
    "PlanningContext",
    "RandomPlanner",
    "RandomSearchAgent",
    "RationaleSynthesizer",
    "RuleAnalyzer",
    "RulePlanner",
    "SearchSpace",
    "TPEPlanner",
    "TrialTree",
    "Validator",
    "Verdict",
    "naive_plan",
]
