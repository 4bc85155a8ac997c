"""CSV exports as ``Export-Csv`` writes them in Windows PowerShell 5.1 and PowerShell 7.

5.1 writes a ``#TYPE`` first line unless told not to and, depending on ``-Encoding``, UTF-8 with
a BOM or UTF-16 LE with a BOM; 7 writes UTF-8 without a BOM. Regional settings make Excel save
with ``;``. Header names are matched case-insensitively. The file is streamed; line numbers are
the physical lines an editor shows (the ``#TYPE`` line counts).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from ..errors import InputError, Problem
from .model import KNOWN_COLUMNS, REQUIRED_COLUMNS, RawRow

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def sniff_encoding(head: bytes) -> str:
    """The encoding a PowerShell-written file uses, from its BOM (none: UTF-8)."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    return "utf-8"


def _delimiter(header: str) -> str:
    """``,`` or ``;``: whichever splits the header into more known column names."""
    best, best_hits = ",", -1
    for delim in (",", ";"):
        names = next(csv.reader([header], delimiter=delim), [])
        hits = sum(1 for n in names if n.strip().lower() in KNOWN_COLUMNS)
        if hits > best_hits:
            best, best_hits = delim, hits
    return best


class CsvBlock(NamedTuple):
    """Complete records as text, cut from the file where no quoted value is open.

    Blocks let worker processes do the CSV parsing too: the reading process only splits lines
    and counts double quotes, which is far cheaper than parsing.
    """

    first_line: int
    text: str
    columns: tuple[str, ...]
    delimiter: str
    display: str


def open_csv(path: Path, display: str, records_per_block: int = 1000) -> tuple[tuple[str, ...], Iterator[CsvBlock]]:
    """Check the header now; return the columns and the rest of the file in blocks of records."""
    with path.open("rb") as raw:
        head = raw.read(4)
    encoding = sniff_encoding(head)
    try:
        fh = path.open("r", encoding=encoding, newline="")
    except OSError as exc:
        raise InputError([Problem(display, None, "file", f"cannot read: {exc.strerror}")]) from None
    try:
        line_no, columns, delimiter = _header(fh, display, encoding)
    except BaseException:
        fh.close()
        raise
    return columns, _blocks(fh, display, encoding, line_no, columns, delimiter, records_per_block)


def _blocks(fh, display: str, encoding: str, line_no: int, columns: tuple[str, ...], delimiter: str,  # type: ignore[no-untyped-def]
            records_per_block: int) -> Iterator[CsvBlock]:
    with fh:
        lines: list[str] = []
        first = line_no + 1
        records = 0
        quotes = 0
        try:
            for line in fh:
                lines.append(line)
                quotes += line.count('"')
                if quotes % 2:
                    continue  # a quoted value goes on over the line break
                quotes = 0
                records += 1
                if records >= records_per_block:
                    yield CsvBlock(first, "".join(lines), columns, delimiter, display)
                    first += len(lines)
                    lines, records = [], 0
        except UnicodeDecodeError:
            raise InputError([_encoding_problem(display, first + len(lines), encoding)]) from None
        if lines:
            yield CsvBlock(first, "".join(lines), columns, delimiter, display)


def _header(fh, display: str, encoding: str) -> tuple[int, tuple[str, ...], str]:  # type: ignore[no-untyped-def]
    """Skip a ``#TYPE`` line, read the header; return its line number, columns and delimiter."""
    offset = 0
    try:
        first = fh.readline()
        if first.startswith("#"):
            offset = 1
            first = fh.readline()
    except UnicodeDecodeError:
        raise InputError([_encoding_problem(display, 1, encoding)]) from None
    if not first.strip():
        raise InputError([Problem(display, offset + 1, "header", "no header row; the file is empty")])
    delim = _delimiter(first)
    header = next(csv.reader([first], delimiter=delim))
    columns = tuple(KNOWN_COLUMNS.get(name.strip().lower(), name.strip()) for name in header)
    header_line = offset + 1
    problems = [
        Problem(display, header_line, "header", f"required column {c} is missing")
        for c in REQUIRED_COLUMNS if c not in columns
    ]
    seen: set[str] = set()
    for c in columns:
        if c.lower() in seen:
            problems.append(Problem(display, header_line, "header", f"column {c} appears twice"))
        seen.add(c.lower())
    if problems:
        raise InputError(problems)
    return header_line, columns, delim


def parse_block(block: CsvBlock) -> list[RawRow | Problem]:
    """The records of one block, with the physical line each starts on."""
    out: list[RawRow | Problem] = []
    columns = block.columns
    width = len(columns)
    display = block.display
    reader = csv.reader(io.StringIO(block.text, newline=""), delimiter=block.delimiter, strict=True)
    consumed = block.first_line - 1
    while True:
        start = consumed + 1
        try:
            record = next(reader)
        except StopIteration:
            return out
        except csv.Error as exc:
            out.append(Problem(display, start, "csv", f"cannot parse this record: {exc}"))
            consumed = block.first_line - 1 + reader.line_num
            continue
        consumed = block.first_line - 1 + reader.line_num
        if len(record) != width:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            out.append(Problem(
                display, start, "csv",
                f"has {len(record)} fields, the header has {width} "
                f"(delimiter {block.delimiter!r}; a value with the delimiter must be in double quotes)",
            ))
            continue
        out.append(RawRow(start, dict(zip(columns, record))))


def _encoding_problem(display: str, line: int, encoding: str) -> Problem:
    return Problem(
        display,
        line,
        "file",
        f"cannot be decoded as {encoding}; export with -Encoding UTF8 (Windows PowerShell 5.1) "
        "or utf8BOM (PowerShell 7)",
    )
