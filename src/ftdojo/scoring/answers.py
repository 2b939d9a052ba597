"""Reading a final answer out of a model's output: the last ``\\boxed{...}`` and its normal form.

The math tasks (the generated ``math`` task, the hub's AIME task) and bring-your-own task
folders with a boxed answer format share these rules, so that an answer scores the same
whichever task asks for it.

:func:`normalize_math_answer` puts a number in canonical form only when the cleaned box
holds a bare literal (:func:`ftdojo.scoring.numeric.canonical_literal`), the stricter cousin
of the table tasks' :func:`~ftdojo.scoring.numeric.canonical_number`: ``\\boxed{10%}`` is
not the answer ``10``.
"""

from __future__ import annotations

import re

from ftdojo.scoring.numeric import canonical_literal

__all__ = ["last_boxed", "normalize_math_answer"]

_BOX = re.compile(r"\\boxed\s*\{")


def last_boxed(output: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` in ``output`` (balanced braces).

    Boxes are scanned left to right; an unterminated one ends the scan (it swallows the
    rest of the text), and a box inside the last box is unwrapped.
    """
    found: str | None = None
    pos = 0
    while (match := _BOX.search(output, pos)) is not None:
        depth, k = 1, match.end()
        while k < len(output) and depth:
            depth += {"{": 1, "}": -1}.get(output[k], 0)
            k += 1
        if depth:  # never closed (e.g. generation cut off): nothing after it can be complete
            break
        found = output[match.end() : k - 1]
        pos = k
    if found is not None and _BOX.search(found):
        # "\boxed{\boxed{5}}": the innermost box is the answer that was meant. The content is
        # balanced, so a box inside it is always complete.
        inner = last_boxed(found)
        return found if inner is None else inner
    return found


def normalize_math_answer(text: str) -> str:
    """``text`` (a box's content) in the form math answers are compared in.

    Whitespace, ``$`` and thousands separators (``1,000``, LaTeX's ``1{,}000``) are removed;
    a number is put in canonical form (``"8.0"`` -> ``"8"``, ``"2.50"`` -> ``"2.5"``,
    ``"-0"`` -> ``"0"``); anything else is returned as the cleaned text, so it simply fails
    to match a numeric reference.
    """
    # "{,}" is LaTeX's way to write a thousands comma without spacing ("1{,}000").
    cleaned = re.sub(r"\s+", "", text).replace("{,}", ",").replace("$", "")
    number = canonical_literal(cleaned)
    return cleaned if number is None else number
