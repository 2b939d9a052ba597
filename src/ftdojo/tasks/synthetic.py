"""What every generated built-in task shares: seeded streams, sizes, caching, leak checks.

A built-in task generates its raw sources and evaluation splits from a seed. Subclasses
of :class:`SyntheticTask` implement :meth:`SyntheticTask.generate` and the
:class:`~ftdojo.tasks.spec.TaskSpec` methods that read records and answers; this base
class validates the constructor parameters, keeps them in ``params`` (a sandbox worker
re-creates the task from its name and these), hands out independent random streams,
builds once per instance, returns fresh copies, and refuses to produce a split that
overlaps another split or any raw source, exactly or after :func:`normalize_text`.

The noise helpers at the bottom are the ways real raw data goes wrong — wrong labels at
a known rate, exact and near duplicates — each applied at an exact, recorded count so
that a source's true quality is known to the code (and hidden from agents).
"""

from __future__ import annotations

import abc
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import attrs

from ftdojo.errors import ConfigError, DataError, TaskSpecError
from ftdojo.tasks.spec import EvalItem, RawSource, TaskSpec, normalize_text

__all__ = [
    "SourceQuality",
    "SyntheticTask",
    "balanced_categories",
    "corrupt",
    "near_duplicate",
    "with_duplicates",
]


@attrs.frozen(kw_only=True)
class SourceQuality:
    """The true quality of one raw source, known to the generator and hidden from agents.

    Tests and the calibration read it; the catalogue never does (an agent sees only the
    practitioner's note and what the records themselves show).
    """

    wrong_label_rate: float = 0.0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    off_domain: bool = False
    has_rationale: bool = False
    #: Free text on anything else that is wrong with it (inconsistent formats, ...).
    remarks: str = ""


Built = tuple[tuple[RawSource, ...], tuple[EvalItem, ...], tuple[EvalItem, ...]]


class SyntheticTask(TaskSpec):
    """Base class of the generated built-in tasks.

    Subclasses set ``name``, ``domain``, ``description``, ``output_format``, ``metric``,
    ``categories``, ``DEFAULT_SIZES`` (every size parameter and its default; the
    constructor accepts exactly these as keyword arguments) and ``GENERATOR_VERSION``
    (bump it whenever a change alters generated data), and implement :meth:`generate`.
    """

    #: Size parameters and their defaults, e.g. ``{"clean": 1200, "validation_size": 100}``.
    DEFAULT_SIZES: ClassVar[dict[str, int]] = {"validation_size": 100, "test_size": 100}
    GENERATOR_VERSION: ClassVar[int] = 1
    #: The true quality of each source, by source id; filled by :meth:`generate`.
    quality: dict[str, SourceQuality]

    def __init__(self, seed: int = 0, **sizes: int) -> None:
        unknown = sorted(set(sizes) - set(self.DEFAULT_SIZES))
        if unknown:
            raise ConfigError(
                f"{self.name} task: unknown parameter(s) {', '.join(unknown)}; "
                f"known: seed, {', '.join(self.DEFAULT_SIZES)}"
            )
        merged = {**self.DEFAULT_SIZES, **sizes}
        for key, value in merged.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{self.name} task: {key} must be a non-negative integer, got {value!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{self.name} task: seed must be an integer, got {seed!r}")
        self.seed = seed
        self.sizes = merged
        self.params: dict[str, Any] = {"seed": seed, **merged}
        self.quality = {}
        self._built: Built | None = None

    # -- for subclasses -----------------------------------------------------------------

    def rng(self, stream: str) -> random.Random:
        """An independent random stream named ``stream``, stable across processes.

        A string seed goes through SHA-512 in ``random.seed``, so streams do not depend
        on each other, on the order they are drawn in, or on ``PYTHONHASHSEED``.
        """
        return random.Random(f"ftdojo-{self.name}-v{self.GENERATOR_VERSION}:{self.seed}:{stream}")

    @abc.abstractmethod
    def generate(self) -> tuple[Sequence[RawSource], Sequence[EvalItem], Sequence[EvalItem]]:
        """``(raw sources, validation, test)``, deterministic in ``seed`` and the sizes.

        Record each source's true quality in ``self.quality[source_id]``. Disjointness
        by entity or template is this method's job (draw the evaluation entities first
        and keep them out of every source); exact and normalised prompt overlap is
        checked afterwards by :meth:`check_disjoint`.
        """

    def record_prompt(self, record: dict[str, Any]) -> str | None:
        """The user prompt a raw record would train on (``None`` if it cannot be one)."""
        try:
            example = self.to_example(record, include_rationale=False)
        except DataError:
            return None
        return None if example is None else example.prompt

    # -- TaskSpec -----------------------------------------------------------------------

    def _build(self) -> Built:
        if self._built is None:
            sources, validation, test = self.generate()
            built = (tuple(sources), tuple(validation), tuple(test))
            self.check_disjoint(*built)
            self._built = built
        return self._built

    def raw_sources(self) -> Sequence[RawSource]:
        """The raw sources, as fresh copies (callers may modify the records)."""
        return [attrs.evolve(s, records=tuple(dict(r) for r in s.records)) for s in self._build()[0]]

    def eval_splits(self) -> tuple[Sequence[EvalItem], Sequence[EvalItem]]:
        _, validation, test = self._build()
        return list(validation), list(test)

    def check_disjoint(
        self, sources: Sequence[RawSource], validation: Sequence[EvalItem], test: Sequence[EvalItem]
    ) -> None:
        """Raise :class:`TaskSpecError` if a split repeats a prompt or meets another split or a source.

        Prompts are compared after :func:`normalize_text`, so a near copy that differs only
        in case, spacing or punctuation counts as a leak too.
        """
        val = [normalize_text(item.prompt) for item in validation]
        tst = [normalize_text(item.prompt) for item in test]
        if len(set(val)) != len(val) or len(set(tst)) != len(tst):
            raise TaskSpecError(f"{self.name} task: an evaluation split repeats a prompt")
        if set(val) & set(tst):
            raise TaskSpecError(f"{self.name} task: the validation and test splits share a prompt")
        eval_prompts = set(val) | set(tst)
        for source in sources:
            for index, record in enumerate(source.records):
                prompt = self.record_prompt(record)
                if prompt is not None and normalize_text(prompt) in eval_prompts:
                    raise TaskSpecError(
                        f"{self.name} task: record {index} of source {source.source_id!r} repeats an "
                        "evaluation prompt"
                    )

    def version(self) -> str:
        """Name, generator version, seed and a digest of every size."""
        digest = hashlib.sha256(json.dumps(self.params, sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.name}-v{self.GENERATOR_VERSION}-seed{self.seed}-{digest}"


# -- noise helpers -------------------------------------------------------------------------


def balanced_categories(categories: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """``n`` category labels, equal counts (the first ones take the remainder), shuffled."""
    k = len(categories)
    labels = [c for j, c in enumerate(categories) for _ in range(n // k + (j < n % k))]
    rng.shuffle(labels)
    return labels


def corrupt(
    records: list[dict[str, Any]],
    rate: float,
    rng: random.Random,
    make_wrong: Callable[[dict[str, Any], random.Random], dict[str, Any]],
) -> list[int]:
    """Replace exactly ``round(rate * len(records))`` records by ``make_wrong(record)``, in place.

    Returns the indices that were corrupted (sorted). ``make_wrong`` must return a record
    whose label is wrong; it receives a copy.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    chosen = sorted(rng.sample(range(len(records)), round(rate * len(records))))
    for k in chosen:
        records[k] = make_wrong(dict(records[k]), rng)
    return chosen


_NEAR_EDITS: tuple[Callable[[str, random.Random], str], ...] = (
    lambda t, r: t.upper() if len(t) < 20 else t[0].swapcase() + t[1:],
    lambda t, r: "  ".join(t.split(" ", 1)) if " " in t else t + " ",
    lambda t, r: t.rstrip(".?!") if t.rstrip(".?!") != t else t + ".",
    lambda t, r: t + "\n",
    lambda t, r: " " + t,
)


def near_duplicate(text: str, rng: random.Random) -> str:
    """A copy of ``text`` with a cosmetic change (case, spacing, end punctuation).

    ``normalize_text`` of the copy equals ``normalize_text(text)`` for every edit, so
    a near duplicate is exactly what a normalised dedupe finds.
    """
    for _ in range(len(_NEAR_EDITS)):
        edited = rng.choice(_NEAR_EDITS)(text, rng)
        if edited != text:
            return edited
    return text + " "


def with_duplicates(
    records: list[dict[str, Any]],
    *,
    exact: int,
    near: int,
    field: str,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """``records`` plus ``exact`` verbatim copies and ``near`` near copies (``field`` edited), shuffled."""
    if records and (exact or near):
        extra = [dict(rng.choice(records)) for _ in range(exact)]
        for _ in range(near):
            copy = dict(rng.choice(records))
            copy[field] = near_duplicate(str(copy[field]), rng)
            extra.append(copy)
        records = records + extra
    out = list(records)
    rng.shuffle(out)
    return out
