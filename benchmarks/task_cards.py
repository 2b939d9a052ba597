"""Print the built-in suite's task cards and raw sources as Markdown (for docs/tasks.md).

    python benchmarks/task_cards.py > /tmp/cards.md

Generates every task at its default size (the same data a Dojo stores), so the counts
printed are the real ones.
"""

from __future__ import annotations

import time

from ftdojo.tasks.registry import SUITE, get_task


def _cell(text: str) -> str:
    """``text`` as one Markdown table cell (pipes escaped, newlines shown as ``\\n``)."""
    return text.replace("|", "\\|").replace("\n", "\\n")


def main() -> None:
    print("| task | domain | metric | categories | output format |")
    print("|---|---|---|---|---|")
    specs = {}
    for name in SUITE:
        started = time.perf_counter()
        spec = get_task(name)
        spec.eval_splits()
        specs[name] = (spec, time.perf_counter() - started)
        categories = ", ".join(spec.categories)
        output_format = _cell(spec.output_format)
        print(f"| `{name}` | {spec.domain} | {spec.metric} | {categories} | `{output_format}` |")
    print()
    for name, (spec, seconds) in specs.items():
        print(f"### `{name}`\n")
        print(spec.description.strip() + "\n")
        validation, test = spec.eval_splits()
        print(f"Validation {len(validation)} items, test {len(test)} items; generated in {seconds:.1f} s.\n")
        print("| source | format | records | what a practitioner sees |")
        print("|---|---|---|---|")
        for source in spec.raw_sources():
            note = _cell(source.note)
            print(f"| `{source.source_id}` | {source.format} | {len(source.records)} | {note} |")
        print()


if __name__ == "__main__":
    main()
