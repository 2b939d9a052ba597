"""The file formats a raw source may be stored in: JSON lines, CSV and Markdown tables.

Real raw data arrives in more than one shape, and an agent that curates data has to read
all of them. Each format writes a sequence of flat-or-nested records to bytes and reads
them back as dictionaries:

- ``jsonl``: one JSON object per line; values keep their JSON types.
- ``csv``: a header row, then one row per record (RFC 4180 quoting, so a cell may hold a
  comma, a quote or a newline). Every value reads back as a string and an empty cell as
  ``""``: numbers and booleans lose their type, as they do in any CSV export.
- ``markdown``: a GitHub-flavoured pipe table. ``|`` in a cell is written ``\\|``, a
  backslash ``\\\\`` and a newline ``<br>``, so that any text survives the round trip;
  values read back as strings.

Nested values (lists, dicts) in CSV and Markdown cells are written as JSON text, the
way spreadsheet exports of nested data usually look.

Readers raise :class:`ftdojo.errors.DataError` naming the file (``where``) and the line
or row of the first bad record; they never let a decoder's exception escape.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from typing import IO, Any

from ftdojo.errors import DataError

__all__ = ["FORMATS", "dump_records", "iter_records", "parse_records"]

#: Every format a raw source may declare.
FORMATS = ("jsonl", "csv", "markdown")

# A single cell larger than this is not a record field but a broken file (csv's own
# default limit is 128 KiB; raise it, but not without bound).
_MAX_FIELD = 16 * 1024 * 1024


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise DataError(f"unknown raw-data format {fmt!r}; known formats: {', '.join(FORMATS)}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value, allow_nan=False)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)


def _fields_of(records: Sequence[dict[str, Any]]) -> list[str]:
    # Column order: first appearance, so a file reads in the order its generator wrote it.
    fields: dict[str, None] = {}
    for record in records:
        for key in record:
            fields.setdefault(str(key), None)
    return list(fields)


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "\n").replace("\n", "<br>")


def _md_unescape(cell: str) -> str:
    out: list[str] = []
    k = 0
    while k < len(cell):
        ch = cell[k]
        if ch == "\\" and k + 1 < len(cell) and cell[k + 1] in "\\|":
            out.append(cell[k + 1])
            k += 2
        elif cell.startswith("<br>", k):
            out.append("\n")
            k += 4
        else:
            out.append(ch)
            k += 1
    return "".join(out)


def _md_split_row(line: str, where: str, number: int) -> list[str]:
    text = line.strip()
    if not (text.startswith("|") and text.endswith("|")) or len(text) < 2:
        raise DataError(f"{where}: line {number} is not a Markdown table row (must start and end with '|')")
    cells: list[str] = []
    current: list[str] = []
    k = 1
    while k < len(text) - 1:
        ch = text[k]
        if ch == "\\" and k + 1 < len(text) - 1:
            current.append(text[k : k + 2])  # keep escapes for _md_unescape
            k += 2
            continue
        if ch == "|":
            cells.append("".join(current))
            current = []
        else:
            current.append(ch)
        k += 1
    cells.append("".join(current))
    return [_md_unescape(c.strip()) for c in cells]


def dump_records(records: Sequence[dict[str, Any]], fmt: str, *, where: str = "records") -> bytes:
    """``records`` written in format ``fmt`` (UTF-8), deterministically."""
    _check_format(fmt)
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(f"{where}: record {index} is a {type(record).__name__}, not a dict")
    fields = _fields_of(records)
    lines: list[str] = []
    rows: list[list[str]] = []
    for index, record in enumerate(records):
        try:
            if fmt == "jsonl":
                # allow_nan=False: NaN/Infinity are not JSON, and other tools would reject the file.
                lines.append(json.dumps(record, sort_keys=True, ensure_ascii=False, allow_nan=False))
            else:
                rows.append([_cell(record.get(f)) for f in fields])
        except (TypeError, ValueError) as exc:
            raise DataError(f"{where}: record {index} is not serialisable: {exc}") from exc
    if fmt == "jsonl":
        return "".join(line + "\n" for line in lines).encode("utf-8")
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(fields)
        writer.writerows(rows)
        return buffer.getvalue().encode("utf-8")
    if not fields:
        raise DataError(f"{where}: a Markdown table needs at least one field")
    table = [
        "| " + " | ".join(_md_escape(f) for f in fields) + " |",
        "|" + "|".join("---" for _ in fields) + "|",
        *("| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows),
    ]
    return ("\n".join(table) + "\n").encode("utf-8")


def _decoded_lines(f: IO[bytes], where: str) -> Iterator[tuple[int, str]]:
    # Iterating a binary file splits on b"\n" only; str.splitlines would also split on
    # U+2028 and friends, which ensure_ascii=False leaves unescaped inside strings.
    for number, raw in enumerate(f, start=1):
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{where}: line {number} is not UTF-8 text: {exc}") from exc


def iter_records(f: IO[bytes], fmt: str, *, where: str) -> Iterator[dict[str, Any]]:
    """The records of an open binary file in format ``fmt``; ``where`` names it in errors."""
    _check_format(fmt)
    if fmt == "jsonl":
        for number, line in _decoded_lines(f, where):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: line {number} is not valid JSON: {exc}") from exc
            if not isinstance(record, dict):
                raise DataError(f"{where}: line {number} is a JSON {type(record).__name__}, not an object")
            yield record
    elif fmt == "csv":
        yield from _iter_csv(f, where)
    else:
        yield from _iter_markdown(f, where)


def _iter_csv(f: IO[bytes], where: str) -> Iterator[dict[str, Any]]:
    text_lines = (line for _, line in _decoded_lines(f, where))
    previous_limit = csv.field_size_limit(_MAX_FIELD)
    try:
        reader = csv.reader(text_lines, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                return
            if len(set(header)) != len(header) or any(not h for h in header):
                raise DataError(f"{where}: the CSV header has empty or repeated column names: {header}")
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"{where}: CSV row {reader.line_num} has {len(row)} cells, the header {len(header)}"
                    )
                yield dict(zip(header, row, strict=True))
        except csv.Error as exc:
            raise DataError(f"{where}: CSV line {reader.line_num}: {exc}") from exc
    finally:
        csv.field_size_limit(previous_limit)


def _iter_markdown(f: IO[bytes], where: str) -> Iterator[dict[str, Any]]:
    header: list[str] | None = None
    separator_seen = False
    for number, line in _decoded_lines(f, where):
        if not line.strip():
            continue
        cells = _md_split_row(line, where, number)
        if header is None:
            header = cells
            if len(set(header)) != len(header) or any(not h for h in header):
                raise DataError(f"{where}: the table header has empty or repeated column names: {header}")
            continue
        if not separator_seen:
            if len(cells) != len(header) or not all(set(c) <= set("-: ") and "-" in c for c in cells):
                raise DataError(f"{where}: line {number} must be the table's '|---|' separator row")
            separator_seen = True
            continue
        if len(cells) != len(header):
            raise DataError(
                f"{where}: table row on line {number} has {len(cells)} cells, the header {len(header)}"
            )
        yield dict(zip(header, cells, strict=True))
    if header is not None and not separator_seen:
        raise DataError(f"{where}: a Markdown table needs a '|---|' separator row after its header")


def parse_records(data: bytes, fmt: str, *, where: str) -> list[dict[str, Any]]:
    """All records of ``data`` (bytes in format ``fmt``)."""
    return list(iter_records(io.BytesIO(data), fmt, where=where))
