"""The LLM planner against a loopback chat-completions server with scripted answers."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from ftdojo import BudgetLeft, LLMError, Plan
from ftdojo.agent import LLMConfig, LLMPlanner, PlanningContext, RuleAnalyzer, TrialTree, Verdict
from ftdojo.errors import ConfigError
from ftdojo.feedback import EvaluationFeedback, ExecutionFeedback, Feedback
from ftdojo.results import Trial
from ftdojo.serialization import from_json
from ftdojo.testing import ChatCompletionsServer, ChatReply
from test_planner import CARD, CATALOG, TINY  # tests/ is on sys.path (rootdir-less test files)


def _context(memory: TrialTree | None = None, rejections: tuple[Verdict, ...] = ()) -> PlanningContext:
    return PlanningContext(
        card=CARD,
        catalog=CATALOG,
        model=TINY,
        memory=memory if memory is not None else TrialTree(),
        budget_left=BudgetLeft(trials=3, seconds=600.0, train_tokens=None),
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
    # Its diagnosis with the evidence and the change each finding suggests.
    assert "format_noncompliance: 0% of outputs in the required format" in prompt
    assert "(suggests: keep data.include_rationale" in prompt


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


ANSWER_ONLY = [
    {"question": "What is 2 + 2?", "answer": "4"},
    {"question": "What is 3 + 5?", "answer": "8"},
    {"question": "What is 9 - 3?", "answer": "6"},
]


def _synthesis_context(memory: TrialTree | None = None, *, readable: bool = True) -> PlanningContext:
    import attrs

    worked = attrs.evolve(
        CATALOG["worked"],
        samples=({"question": "What is 1 + 1?", "answer": "2", "solution": "1 + 1 = 2. The answer is 2."},),
    )
    catalog = attrs.evolve(
        CATALOG, entries=tuple(worked if e.source_id == "worked" else e for e in CATALOG.entries)
    )
    records = {"answers": ANSWER_ONLY}
    return attrs.evolve(
        _context(memory),
        catalog=catalog,
        read_source=(lambda source: iter(records.get(source, []))) if readable else None,
    )


def test_rationales_for_answer_only_records_are_synthesized_within_the_call_limit() -> None:
    from ftdojo.agent.llm import record_key

    replies = [
        _plan_json("answers"),
        json.dumps({"solution": "2 + 2 = 4. The answer is 4."}),
        json.dumps({"solution": "I do not know."}),  # lacks the answer: discarded
    ]
    with ChatCompletionsServer(replies) as server:
        planner = LLMPlanner(
            LLMConfig(base_url=server.base_url, model="scripted", timeout=5.0), synthesize_rationales=2
        )
        plan = planner.propose(_synthesis_context())
        assert plan is not None
        assert len(server.requests) == 3  # one plan, then the call limit of two rationales
        rationale_prompt = _last_user_message(server.requests[1])
        assert "1 + 1 = 2. The answer is 2." in rationale_prompt  # the sibling's example
        assert "What is 2 + 2?" in rationale_prompt
        assert planner.synthesizer is not None
        assert (planner.synthesizer.calls, planner.synthesizer.discarded) == (2, 1)
        assert "1 rationales written by the LLM" in plan.hypothesis

        # The rationales travel inside the plan, as data for the sandboxed build's transform.
        assert plan.data.transform_code is not None
        namespace: dict[str, object] = {}
        exec(compile(plan.data.transform_code, "<transform>", "exec"), namespace)
        transform = namespace["transform"]
        first, second, third = (transform(dict(r)) for r in ANSWER_ONLY)  # type: ignore[operator]
        assert first["solution"] == "2 + 2 = 4. The answer is 4."
        assert "solution" not in second
        assert "solution" not in third
        assert record_key(first, "solution") == record_key(ANSWER_ONLY[0], "solution")
        worked = {"question": "q", "answer": "1", "solution": "kept"}
        assert transform(dict(worked)) == worked  # type: ignore[operator]

        # A later plan reuses what was written; the limit allows no new requests.
        server.add(_plan_json("answers", learning_rate=0.002))
        again = planner.propose(_synthesis_context())
        assert again is not None
        assert len(server.requests) == 4
        assert again.data.transform_code == plan.data.transform_code


def test_no_synthesis_without_raw_access_or_when_the_plan_drops_rationales() -> None:
    no_rationale = json.dumps(
        {
            "data": {"sources": [{"source": "answers"}], "include_rationale": False},
            "train": {"method": "full"},
        }
    )
    with ChatCompletionsServer([_plan_json("answers"), no_rationale]) as server:
        planner = LLMPlanner(
            LLMConfig(base_url=server.base_url, model="scripted", timeout=5.0), synthesize_rationales=5
        )
        blind = planner.propose(_synthesis_context(readable=False))
        assert blind is not None
        assert blind.data.transform_code is None
        plain = planner.propose(_synthesis_context())
        assert plain is not None
        assert plain.data.transform_code is None
        assert len(server.requests) == 2


@pytest.mark.anyio
async def test_synthesized_rationales_and_verification_counts_in_the_sandboxed_build(
    ftdojo_home: Path, tmp_path: Path
) -> None:
    """The transform that carries the rationales compiles and runs in a real build."""
    from ftdojo import Budget, Dojo, Session

    seen: dict[str, object] = {}

    class _SmokeOnly:
        async def run(self, session: Session) -> None:
            first = list(itertools.islice(session.read_source("answers_only"), 2))
            plan_json = json.dumps(
                {
                    "data": {
                        "sources": [{"source": "answers_only"}, {"source": "forum_scrape"}],
                        "verified_only": True,
                        "max_records": 50,
                    },
                    "train": {"method": "full", "max_steps": 2, "batch_size": 4, "max_length": 256},
                }
            )
            answers = [
                json.dumps({"solution": f"Work it out. The answer is \\boxed{{{r['answer']}}}."})
                for r in first
            ]
            with ChatCompletionsServer([plan_json, *answers]) as server:
                planner = LLMPlanner(
                    LLMConfig(base_url=server.base_url, model="scripted", timeout=5.0),
                    synthesize_rationales=2,
                )
                context = PlanningContext(
                    card=session.card,
                    catalog=session.catalog,
                    model=session.model,
                    memory=TrialTree(),
                    budget_left=session.budget_left,
                    read_source=session.read_source,
                )
                plan = planner.propose(context)
            assert plan is not None
            seen["plan"] = plan
            seen["feedback"] = await session.smoke(plan)

    dojo = Dojo(home=ftdojo_home, runs_dir=tmp_path, model="tiny")
    await dojo.run("math", _SmokeOnly(), budget=Budget(max_trials=1, max_seconds=300))
    plan, feedback = seen["plan"], seen["feedback"]
    assert isinstance(plan, Plan)
    assert "2 rationales written by the LLM" in plan.hypothesis
    assert isinstance(feedback, Feedback)
    assert feedback.ok, feedback.execution.root_cause
    assert feedback.data is not None
    transform = next(s for s in feedback.data.steps if s.step == "transform")
    assert transform.records_in == transform.records_out > 0
    # Verification is counted per source, so a noisy source can be named.
    assert set(feedback.data.verified_per_source) == {"answers_only", "forum_scrape"}
    assert feedback.data.failed_verification_per_source.get("forum_scrape", 0) > 0
    assert sum(feedback.data.failed_verification_per_source.values()) == feedback.data.failed_verification
