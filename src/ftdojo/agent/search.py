"""Search over data mix and training configuration: seeded random search and Optuna's TPE.

Both planners share one :class:`SearchSpace`, built from the catalogue and the model:
which sources to train on, how to clean them (verified answers only, de-duplication,
rationales kept), how many records, and the training knobs that matter most on a small
budget (learning rate, epochs, batch size, LoRA rank). A point of the space is a plain
``dict`` of parameters; :meth:`SearchSpace.plan` turns it into a :class:`Plan` and
:meth:`SearchSpace.params` reads a plan back, so that a resumed run can hand the trials
it already has to the search.

The search learns only from the planner's own context: its memory of trials (rebuilt
from the run's journal on resume), so the study is persisted with the run. The TPE
planner can also keep its Optuna study in a file (``study_path``) for inspection with
Optuna's own tools.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ftdojo.agent.heuristics import assess_sources, default_train_config, fit_budget
from ftdojo.agent.protocols import PlanningContext
from ftdojo.errors import ConfigError
from ftdojo.plans import DataRecipe, Plan, SourceSelection, TrainConfig

if TYPE_CHECKING:
    import optuna

__all__ = ["RandomPlanner", "SearchSpace", "TPEPlanner"]

_MAX_RECORDS = (250, 500, 1000, 2000, 4000)
#: Epochs, log-uniform; 0.25 is the least the budget fitting ever leaves a plan.
_EPOCHS = (0.25, 4.0)
_BATCH_SIZES = (2, 4, 8, 16)
_LORA_RANKS = (8, 16, 32)
#: Learning-rate ranges: full fine-tuning of a small model, and LoRA.
_FULL_LR = (1e-4, 3e-3)
_LORA_LR = (5e-5, 1e-3)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"search parameter must be true or false, got {value!r}")
    return value


@attrs.frozen(kw_only=True)
class SearchSpace:
    """The knobs a search may turn for one task and model, and the plans they make."""

    sources: tuple[str, ...]
    #: The model's default training configuration; the search changes a few of its knobs.
    base_train: TrainConfig
    #: The data sampling and training seed of every plan.
    seed: int = 0

    @classmethod
    def for_context(cls, context: PlanningContext, *, seed: int = 0) -> SearchSpace:
        assessments = assess_sources(context.catalog)
        if not assessments:
            raise ConfigError(f"task {context.card.name!r} has no raw sources to search over")
        longest = max(a.length_p99 for a in assessments)
        return cls(
            sources=tuple(a.source_id for a in assessments),
            base_train=default_train_config(context.model, longest),
            seed=seed,
        )

    @property
    def full_finetune(self) -> bool:
        return self.base_train.method == "full"

    @property
    def learning_rates(self) -> tuple[float, float]:
        return _FULL_LR if self.full_finetune else _LORA_LR

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """The space as Optuna distributions (imports Optuna)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        space: dict[str, optuna.distributions.BaseDistribution] = {
            f"use:{s}": CategoricalDistribution((True, False)) for s in self.sources
        }
        space.update(
            verified_only=CategoricalDistribution((True, False)),
            dedupe=CategoricalDistribution((True, False)),
            include_rationale=CategoricalDistribution((True, False)),
            max_records=CategoricalDistribution(_MAX_RECORDS),
            learning_rate=FloatDistribution(*self.learning_rates, log=True),
            epochs=FloatDistribution(*_EPOCHS, log=True),
            batch_size=CategoricalDistribution(_BATCH_SIZES),
        )
        if not self.full_finetune:
            space["lora_rank"] = CategoricalDistribution(_LORA_RANKS)
        return space

    def sample(self, rng: random.Random) -> dict[str, Any]:
        """A uniformly random point (learning rate and epochs log-uniform)."""
        low, high = self.learning_rates
        params: dict[str, Any] = {f"use:{s}": rng.random() < 0.5 for s in self.sources}
        params.update(
            verified_only=rng.random() < 0.5,
            dedupe=rng.random() < 0.5,
            include_rationale=rng.random() < 0.5,
            max_records=rng.choice(_MAX_RECORDS),
            learning_rate=_log_uniform(rng, low, high),
            epochs=_log_uniform(rng, *_EPOCHS),
            batch_size=rng.choice(_BATCH_SIZES),
        )
        if not self.full_finetune:
            params["lora_rank"] = rng.choice(_LORA_RANKS)
        return params

    def plan(self, params: Mapping[str, Any], *, hypothesis: str) -> Plan:
        """The plan at ``params``; with no source switched on, every source is used.

        Raises :class:`ConfigError` naming the parameter that is missing or out of the space.
        """
        for name in self.names():
            if name not in params:
                raise ConfigError(f"search parameter {name!r} is missing")
        chosen = tuple(s for s in self.sources if _flag(params[f"use:{s}"])) or self.sources
        changes: dict[str, Any] = {
            "seed": self.seed,
            "learning_rate": float(params["learning_rate"]),
            "epochs": float(params["epochs"]),
            "batch_size": int(params["batch_size"]),
        }
        if not self.full_finetune:
            changes["lora_rank"] = int(params["lora_rank"])
            changes["lora_alpha"] = 2 * int(params["lora_rank"])
        for name, (low, high) in (("learning_rate", self.learning_rates), ("epochs", _EPOCHS)):
            if not low <= changes[name] <= high:
                raise ConfigError(f"search parameter {name!r} = {changes[name]} is outside [{low}, {high}]")
        return Plan(
            data=DataRecipe(
                sources=tuple(SourceSelection(source=s) for s in chosen),
                verified_only=_flag(params["verified_only"]),
                dedupe=_flag(params["dedupe"]),
                include_rationale=_flag(params["include_rationale"]),
                max_records=int(params["max_records"]),
                seed=self.seed,
            ),
            train=attrs.evolve(self.base_train, **changes),
            hypothesis=hypothesis,
            focus="both",
        )

    def params(self, plan: Plan) -> dict[str, Any] | None:
        """The point ``plan`` sits at, or ``None`` if it lies outside this space.

        A plan lies inside only if :meth:`plan` makes exactly it (hypothesis, focus,
        parent and seeds aside) from the point read back: plans from elsewhere (a rule planner's,
        one with a transform or per-source caps) are left out of what a search learns from.
        """
        used = {s.source for s in plan.data.sources}
        if not used <= set(self.sources):
            return None
        # "Every source" has two spellings; the search's own is every one switched on.
        every = used == set(self.sources)
        params: dict[str, Any] = {f"use:{s}": every or s in used for s in self.sources}
        params.update(
            verified_only=plan.data.verified_only,
            dedupe=plan.data.dedupe,
            include_rationale=plan.data.include_rationale,
            max_records=plan.data.max_records,
            learning_rate=plan.train.learning_rate,
            epochs=plan.train.epochs,
            batch_size=plan.train.batch_size,
        )
        if not self.full_finetune:
            params["lora_rank"] = plan.train.lora_rank
        if (
            plan.data.max_records not in _MAX_RECORDS
            or plan.train.batch_size not in _BATCH_SIZES
            or (not self.full_finetune and plan.train.lora_rank not in _LORA_RANKS)
        ):
            return None
        try:
            remade = self.plan(params, hypothesis=plan.hypothesis)
        except (ConfigError, ValueError):
            return None
        # Seeds are not searched: a trial run under another seed is still evidence.
        remade = attrs.evolve(
            remade,
            focus=plan.focus,
            parent=plan.parent,
            data=attrs.evolve(remade.data, seed=plan.data.seed),
            train=attrs.evolve(remade.train, seed=plan.train.seed),
        )
        if remade != plan:
            return None
        return params

    def names(self) -> tuple[str, ...]:
        names = [f"use:{s}" for s in self.sources]
        names += ["verified_only", "dedupe", "include_rationale", "max_records", "learning_rate", "epochs"]
        names += ["batch_size"] + ([] if self.full_finetune else ["lora_rank"])
        return tuple(names)


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _describe(params: Mapping[str, Any]) -> str:
    shown = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in params.items()}
    return json.dumps(shown, sort_keys=True)


class RandomPlanner:
    """Random search: each plan a seeded, uniformly random point of the :class:`SearchSpace`.

    Never proposes a plan already tried; gives up (``None``) after ``max_draws``
    draws that were all tried. Each plan's epochs are capped to its share of the budget
    left, as FT-Agent's rule planner does, so that both spend a budget alike.
    """

    def __init__(self, *, seed: int = 0, max_draws: int = 100) -> None:
        self.seed = seed
        self.max_draws = max_draws

    def propose(self, context: PlanningContext) -> Plan | None:
        space = SearchSpace.for_context(context, seed=self.seed)
        # One stream per iteration, so a resumed run draws what the uninterrupted one would.
        # Counted in reasons, not verdicts: a seed keeps the draws its journalled runs made.
        rng = random.Random(f"{self.seed}:{len(context.memory.trials)}:{len(context.rejection_reasons)}")
        for _ in range(self.max_draws):
            params = space.sample(rng)
            plan = fit_budget(
                space.plan(params, hypothesis=f"random search, seed {self.seed}: {_describe(params)}"),
                context,
                even=True,
            )
            if not context.memory.tried(plan):
                return plan
        return None


class TPEPlanner:
    """Optuna's TPE sampler over the :class:`SearchSpace`, seeded, learning from every finished trial.

    The study is rebuilt on every call from the planner's memory: each trial whose plan
    lies in the space is added with its validation score (a failed trial counts as 0),
    so a resumed run continues the same search. ``study_path`` additionally keeps the
    study in an Optuna journal file there.
    """

    def __init__(self, *, seed: int = 0, max_draws: int = 50, study_path: str | Path | None = None) -> None:
        self.seed = seed
        self.max_draws = max_draws
        self.study_path = Path(study_path) if study_path is not None else None

    def _study(self, space: SearchSpace, context: PlanningContext) -> optuna.Study:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(
            seed=self.seed + len(context.memory.trials) + len(context.rejection_reasons)
        )
        storage: optuna.storages.BaseStorage | None = None
        if self.study_path is not None:
            # A fresh file per call: the memory, not the file, is the source of truth.
            self.study_path.parent.mkdir(parents=True, exist_ok=True)
            self.study_path.unlink(missing_ok=True)
            from optuna.storages.journal import JournalFileBackend

            storage = optuna.storages.JournalStorage(JournalFileBackend(str(self.study_path)))
        study = optuna.create_study(
            study_name=f"ftdojo-{context.card.name}", direction="maximize", sampler=sampler, storage=storage
        )
        distributions = space.distributions()
        for trial in context.memory.trials:
            params = space.params(trial.plan)
            if params is None:
                continue
            study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=distributions,
                    value=trial.score if trial.score is not None else 0.0,
                )
            )
        return study

    def propose(self, context: PlanningContext) -> Plan | None:
        space = SearchSpace.for_context(context, seed=self.seed)
        study = self._study(space, context)
        distributions = space.distributions()
        for _ in range(self.max_draws):
            asked = study.ask(distributions)
            params = dict(asked.params)
            plan = fit_budget(
                space.plan(params, hypothesis=f"TPE search, seed {self.seed}: {_describe(params)}"),
                context,
                even=True,
            )
            if not context.memory.tried(plan):
                return plan
            # Already tried: tell TPE so it moves elsewhere, with that trial's own score.
            import optuna

            study.tell(asked, state=optuna.trial.TrialState.PRUNED)
        return None
