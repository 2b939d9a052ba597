"""The LLM planner against a loopback chat-completions server with scripted answers."""

from __future__ import annotations

import json
import time

import pytest

from ftdojo import BudgetUsage, LLMError, Plan
from ftdojo.agent import LLMConfig, LLMPlanner, PlanningContext, RuleAnalyzer, TrialTree
from ftdojo.errors import ConfigError
from ftdojo.feedback import EvaluationFeedback, ExecutionFeedback, Feedback
from ftdojo.results import Trial
from ftdojo.serialization import from_json
from ftdojo.testing import ChatCompletionsServer, ChatReply
from test_planner import CARD, CATALOG, TINY  # tests/ is on sys.path (rootdir-less test files)


def _context(memory: TrialTree | None = None, rejections: tuple[str, ...] = ()) -> PlanningContext:
    return PlanningContext(
        card=CARD,
        catalog=CATALOG,
        model=TINY,
        memory=memory if memory is not None else TrialTree(),
        budget_left=BudgetUsage(trials=3, seconds=600.0, train_tokens=-1),
        rejections=rejections,
    )


def _planner(server: ChatCompletionsServer, **config: object) -> LLMPlanner:
    settings = {"timeout": 5.0, "max_retries": 2, "max_repairs": 2, **config}
    return LLMPlanner(LLMConfig(base_url=server.base_url, model="scripted", api_key="k", **settings))  # type: ignore[arg-type]


def _plan_json(source: str = "worked", **train: object) -> str:
    return json.dumps(
        {
            "data": {"sources": [{"source": source}], "verified_only": True},
            "train": {"method": "full", "learning_rate": 0.001, **train},
            "hypothesis": "clean worked solutions first",
            "focus": "data",
        }
    )


def _last_user_message(request: dict) -> str:  # type: ignore[type-arg]
    return [m for m in request["messages"] if m["role"] == "user"][-1]["content"]


def test_a_valid_answer_becomes_the_plan_and_the_prompt_holds_card_catalogue_and_history() -> None:
    memory = TrialTree()
    earlier = from_json(_plan_json("answers"), Plan)
    trial = Trial(
        trial_id="t001",
        plan=earlier,
        feedback=Feedback(
            trial_id="t001",
            execution=ExecutionFeedback(ok=True),
            evaluation=EvaluationFeedback(metric="accuracy", score=0.25, n=100),
        ),
        started_at=0,
        finished_at=1,
    )
    memory.record(trial, RuleAnalyzer().analyze(trial, None))
    with ChatCompletionsServer([f"Here is my plan:\n```json\n{_plan_json()}\n```"]) as server:
        plan = _planner(server).propose(_context(memory))
    assert plan is not None
    assert [s.source for s in plan.data.sources] == ["worked"]
    assert plan.data.verified_only
    assert plan.train.learning_rate == 0.001
    assert plan.focus == "data"
    (request,) = server.requests
    assert request["model"] == "scripted"
    prompt = _last_user_message(request)
    assert CARD.description in prompt
    assert CARD.output_format in prompt
    for entry in CATALOG.entries:
        assert entry.source_id in prompt
    assert "t001" in prompt  # the earlier trial and its score
    assert "0.250" in prompt


def test_invalid_json_is_sent_back_with_the_error_then_the_repair_is_used() -> None:
    with ChatCompletionsServer(['{"data": [1, 2,}', _plan_json()]) as server:
        planner = _planner(server)
        plan = planner.propose(_context())
    assert plan is not None
    assert len(server.requests) == 2
    repair = server.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"data": [1, 2,}'}
    assert "not valid JSON" in repair[-1]["content"]
    assert planner.repairs == 1


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        (json.dumps({"data": {"sources": [{"source": "worked"}], "colour": "red"}}), "colour"),
        (
            json.dumps({"data": {"sources": [{"source": "worked"}]}, "train": {"learning_rate": -1}}),
            "learning_rate",
        ),
        (json.dumps({"data": {"sources": [{"source": "nowhere"}]}}), "nowhere"),
        (json.dumps({"data": {"sources": [{"source": "worked"}]}, "parent": "t999"}), "t999"),
        ("I think you should train longer.", "no JSON object"),
        ("", "empty"),
    ],
)
def test_each_wrong_answer_goes_back_with_a_message_that_names_the_problem(answer: str, named: str) -> None:
    with ChatCompletionsServer([answer, _plan_json()]) as server:
        plan = _planner(server).propose(_context())
    assert plan is not None
    assert named in _last_user_message(server.requests[1])


def test_a_plan_already_tried_is_refused_like_an_invalid_one() -> None:
    memory = TrialTree()
    memory.mark_tried(from_json(_plan_json(), Plan))
    with ChatCompletionsServer([_plan_json(), _plan_json(batch_size=4)]) as server:
        plan = _planner(server).propose(_context(memory))
    assert plan is not None
    assert plan.train.batch_size == 4
    assert "already tried" in _last_user_message(server.requests[1])


def test_answers_that_stay_invalid_end_in_a_clear_error_after_the_repair_limit() -> None:
    with (
        ChatCompletionsServer(["nope"] * 5) as server,
        pytest.raises(LLMError, match=r"no valid plan in 3 answers.*no JSON object"),
    ):
        _planner(server, max_repairs=2).propose(_context())
    assert len(server.requests) == 3


def test_a_stop_answer_ends_the_search() -> None:
    with ChatCompletionsServer([json.dumps({"stop": True, "reason": "nothing left"})]) as server:
        assert _planner(server).propose(_context()) is None


def test_rate_limits_and_server_errors_are_retried_with_backoff() -> None:
    replies = [ChatReply(status=429, retry_after=0.01), ChatReply(status=500, retry_after=0.01), _plan_json()]
    with ChatCompletionsServer(replies) as server:
        plan = _planner(server, max_retries=2).propose(_context())
    assert plan is not None
    assert len(server.requests) == 3


@pytest.mark.parametrize(("status", "words"), [(429, "rate limited"), (500, "HTTP 500"), (400, "HTTP 400")])
def test_errors_left_after_the_retries_are_llm_errors(status: int, words: str) -> None:
    with (
        ChatCompletionsServer([ChatReply(status=status, retry_after=0.01)] * 4) as server,
        pytest.raises(LLMError, match=words),
    ):
        _planner(server, max_retries=1).propose(_context())
    # 400 is the client's fault and is not retried; 429 and 500 are, once.
    assert len(server.requests) == (1 if status == 400 else 2)


def test_a_slow_server_times_out_instead_of_hanging() -> None:
    with ChatCompletionsServer([ChatReply(content=_plan_json(), delay=3.0)] * 2) as server:
        started = time.monotonic()
        with pytest.raises(LLMError, match=r"no answer within 0\.3 s"):
            _planner(server, timeout=0.3, max_retries=1).propose(_context())
        assert time.monotonic() - started < 3.0


def test_an_unreachable_endpoint_is_a_clear_error() -> None:
    with ChatCompletionsServer() as server:
        url = server.base_url
    planner = LLMPlanner(LLMConfig(base_url=url, model="m", timeout=1.0, max_retries=0))
    with pytest.raises(LLMError, match="cannot connect"):
        planner.propose(_context())


def test_configuration_comes_from_the_environment_and_names_what_is_missing() -> None:
    env = {
        "FTDOJO_LLM_BASE_URL": "http://localhost:8000/v1",
        "FTDOJO_LLM_MODEL": "qwen",
        "FTDOJO_LLM_API_KEY": "s",
    }
    config = LLMConfig.from_env(env, timeout=9.0)
    assert (config.base_url, config.model, config.api_key, config.timeout) == (
        "http://localhost:8000/v1",
        "qwen",
        "s",
        9.0,
    )
    assert "api_key" not in repr(config)  # the key never shows in logs or reprs
    with pytest.raises(ConfigError, match="FTDOJO_LLM_MODEL"):
        LLMConfig.from_env({"FTDOJO_LLM_BASE_URL": "http://x/v1"})
    with pytest.raises(ConfigError, match="http"):
        LLMConfig(base_url="localhost:8000", model="m")


def test_the_server_answers_500_once_its_script_is_used_up() -> None:
    with ChatCompletionsServer([_plan_json()]) as server:
        planner = _planner(server, max_retries=0)
        assert planner.propose(_context()) is not None
        with pytest.raises(LLMError, match="no scripted reply left"):
            planner.propose(_context())
