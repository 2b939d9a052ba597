"""The paper's own datasets, loaded from the Hugging Face hub by their ids.

FT-Dojo's tasks are built on public datasets: DeepScaleR-Preview (math, benchmark AIME),
PANORAMA (patents: PAR4PC, PI4PC, NOC4PC), ChemCoTDataset / ChemCoTBench (chemistry),
FinanceIQ (finance) and TableInstruct / TableBench (table QA). The tasks here load those
datasets with ``datasets.load_dataset`` for users who can reach the hub; the built-in
suite (:data:`ftdojo.tasks.registry.SUITE`) is the offline, generated counterpart.

Where each id, config, split and column name comes from is recorded in
``docs/hub-tasks.md``; what could not be confirmed is said there and next to the code
that depends on it.

The split rule is the paper's: of a benchmark's ``n`` items (after dropping repeated
prompts), validation is the first ``min(100, n // 2)`` and test the last
``min(100, n // 2)``. A raw source is the raw dataset less every record whose normalised
prompt (:func:`ftdojo.tasks.spec.normalize_text`) equals a benchmark prompt; the table
tasks also drop records that ask a benchmark question about a benchmark table in another
prompt template.

``datasets`` is imported inside the loading method only, so that importing this package
(and listing the tasks) stays cheap. ``trust_remote_code`` is never passed: a dataset
that needs a loading script is refused by ``datasets`` rather than run. For offline use
and tests, ``local_files`` replaces any hub load by local files of the same schema.

The package: :mod:`~ftdojo.tasks.hub._base` holds what every hub task shares (datasets,
loading, the split rule, :class:`HubTask`); one module per domain defines the tasks
(``math``, ``patent``, ``chemistry``, ``finance``, ``tables``). Every hub task class is
named ``Hub...``, so that none is confused with the generated suite's class for the same
task (``HubTableFactCheck`` here, ``ftdojo.tasks.tables.TableFactCheck`` in the suite).
"""

from ftdojo.tasks.hub._base import (
    EVAL_SPLIT_LIMIT,
    FieldMap,
    HubDataset,
    HubRows,
    HubSource,
    HubTask,
    split_benchmark,
)
from ftdojo.tasks.hub.chemistry import (
    HubChemEditing,
    HubChemOptimization,
    HubChemReaction,
    HubChemUnderstanding,
    chem_answer,
)
from ftdojo.tasks.hub.finance import HubFinanceIQExam
from ftdojo.tasks.hub.math import HubAimeMath
from ftdojo.tasks.hub.patent import HubPatentNovelty, HubPatentParagraph, HubPatentPriorArt
from ftdojo.tasks.hub.tables import (
    HubTableDataAnalysis,
    HubTableFactCheck,
    HubTableNumericalReasoning,
    HubTableVisualization,
)

__all__ = [
    "EVAL_SPLIT_LIMIT",
    "FieldMap",
    "HubAimeMath",
    "HubChemEditing",
    "HubChemOptimization",
    "HubChemReaction",
    "HubChemUnderstanding",
    "HubDataset",
    "HubFinanceIQExam",
    "HubPatentNovelty",
    "HubPatentParagraph",
    "HubPatentPriorArt",
    "HubRows",
    "HubSource",
    "HubTableDataAnalysis",
    "HubTableFactCheck",
    "HubTableNumericalReasoning",
    "HubTableVisualization",
    "HubTask",
    "chem_answer",
    "split_benchmark",
]
