"""CSV exports as ``Export-Csv`` writes them in Windows PowerShell 5.1 and PowerShell 7.

5.1 writes a ``#TYPE`` first line unless told not to and, depending on ``-Encoding``, UTF-8 with
a BOM or UTF-16 LE with a BOM; 7 writes UTF-8 without a BOM. Regional settings make Excel save
with ``;``. Header names are matched case-insensitively. The file is streamed; line numbers are
the physical lines an editor shows (the ``#TYPE`` line counts).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path

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


def read_csv(path: Path, display: str) -> Iterator[RawRow | Problem]:
    """Yield each record of the export, or a :class:`Problem` for a record that cannot be read.

    A problem with the file as a whole (encoding, header) raises :class:`InputError` at once,
    since no row could be trusted after it.
    """
    with path.open("rb") as fh:
        head = fh.read(4)
    encoding = sniff_encoding(head)
    try:
        fh = path.open("r", encoding=encoding, newline="")
    except OSError as exc:
        raise InputError([Problem(display, None, "file", f"cannot read: {exc.strerror}")]) from None
    with fh:
        yield from _records(fh, display, encoding)


def _records(fh, display: str, encoding: str) -> Iterator[RawRow | Problem]:  # type: ignore[no-untyped-def]
    offset = 0
    try:
        first = fh.readline()
        if first.startswith("#TYPE") or first.startswith("#"):
            offset = 1
            first = fh.readline()
    except UnicodeDecodeError:
        raise InputError([_encoding_problem(display, 1, encoding)]) from None
    if not first.strip():
        raise InputError([Problem(display, offset + 1, "header", "no header row; the file is empty")])
    delim = _delimiter(first)
    header = next(csv.reader([first], delimiter=delim))
    columns = [KNOWN_COLUMNS.get(name.strip().lower(), name.strip()) for name in header]
    header_line = offset + 1
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    problems = [
        Problem(display, header_line, "header", f"required column {c} is missing") for c in missing
    ]
    seen: set[str] = set()
    for c in columns:
        if c.lower() in seen:
            problems.append(Problem(display, header_line, "header", f"column {c} appears twice"))
        seen.add(c.lower())
    if problems:
        raise InputError(problems)

    reader = csv.reader(fh, delimiter=delim, strict=True)
    consumed = header_line  # physical lines read so far
    while True:
        start = consumed + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise InputError([_encoding_problem(display, start, encoding)]) from None
        except csv.Error as exc:
            yield Problem(display, start, "csv", f"cannot parse this record: {exc}")
            consumed = header_line + reader.line_num
            continue
        consumed = header_line + reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        if len(record) != len(columns):
            yield Problem(
                display,
                start,
                "csv",
                f"has {len(record)} fields, the header has {len(columns)} "
                f"(delimiter {delim!r}; a value with the delimiter must be in double quotes)",
            )
            continue
        yield RawRow(start, dict(zip(columns, record)))


def _encoding_problem(display: str, line: int, encoding: str) -> Problem:
    return Problem(
        display,
        line,
        "file",
        f"cannot be decoded as {encoding}; export with -Encoding UTF8 (Windows PowerShell 5.1) "
        "or utf8BOM (PowerShell 7)",
    )
