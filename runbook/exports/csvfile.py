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
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

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

    Blocks let worker processes do the CSV parsing too: the reading process only finds line ends
    and counts double quotes, which is far cheaper than parsing.
    """

    first_line: int
    text: str
    columns: tuple[str, ...]
    delimiter: str
    display: str


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
"""One line with its end, as an editor counts lines (unlike str.splitlines, which also breaks at FF, NEL, ...)."""

BLOCK_BYTES = 1 << 19
"""Bytes read at a time; a block holds the complete records among them (about 1,000 rows)."""


def open_csv(path: Path, display: str, block_bytes: int = BLOCK_BYTES) -> tuple[tuple[str, ...], Iterator[CsvBlock]]:
    """Check the header now; return the columns and the rest of the file in blocks of records."""
    with path.open("rb") as raw:
        head = raw.read(4)
    encoding = sniff_encoding(head)
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise InputError([Problem(display, None, "file", f"cannot read: {exc.strerror}")]) from None
    try:
        texts = _decoded(raw, encoding, block_bytes)
        line_no, columns, delimiter, rest = _header(texts, display, encoding)
    except BaseException:
        raw.close()
        raise
    return columns, _blocks(raw, texts, rest, display, encoding, line_no, columns, delimiter)


class _Undecodable(Exception):
    """An undecodable byte; ``before`` is the text of the same read before it. Whoever counts
    lines turns it into a problem with the line the byte is on."""

    def __init__(self, before: str) -> None:
        super().__init__(before)
        self.before = before


def _decoded(raw: BinaryIO, encoding: str, block_bytes: int) -> Iterator[str]:
    """The file's text in pieces of about ``block_bytes``; raises :class:`_Undecodable`."""
    decoder = codecs.getincrementaldecoder(encoding)()
    while True:
        data = raw.read(block_bytes)
        try:
            text = decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise _Undecodable(exc.object[: exc.start].decode(encoding, errors="replace")) from None
        if text:
            yield text
        if not data:
            return


def line_breaks(text: str) -> int:
    """Line ends as an editor counts them: CR LF, LF or a lone CR."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _record_end(text: str, quotes: int) -> tuple[int, int]:
    """Where the last complete record of ``text`` ends, and the double quotes before that point.

    ``quotes`` counts the quotes in ``text`` and whatever came before it since the last cut. A
    line end after an even number of quotes is outside any quoted value. ``(-1, quotes)`` when
    no record ends in ``text``. A CR at the very end is not taken: its LF may be in the next piece.
    """
    pos = len(text)
    while True:
        end = max(text.rfind("\n", 0, pos), text.rfind("\r", 0, pos))
        if end < 0:
            return -1, quotes
        quotes -= text.count('"', end + 1, pos)
        pos = end
        if quotes % 2 == 0 and not (text[end] == "\r" and end + 1 == len(text)):
            return end + 1, quotes


def _blocks(raw: BinaryIO, texts: Iterator[str], rest: str, display: str, encoding: str, line_no: int,
            columns: tuple[str, ...], delimiter: str) -> Iterator[CsvBlock]:
    """Cut the text after the header into blocks of complete records, with their first lines.

    Only C-speed string searches run here (the reading process is the one that cannot be
    spread over cores); parsing happens in :func:`parse_block`, possibly in a worker.
    """
    with raw:
        pending: list[str] = []
        first = line_no + 1
        quotes = 0
        try:
            for text in itertools.chain([rest], texts):
                total = quotes + text.count('"')
                end, before = _record_end(text, total)
                if end < 0:
                    pending.append(text)
                    quotes = total
                    continue
                pending.append(text[:end])
                block = "".join(pending)
                yield CsvBlock(first, block, columns, delimiter, display)
                first += line_breaks(block)
                pending = [text[end:]]
                quotes = total - before
        except _Undecodable as exc:
            line = first + line_breaks("".join(pending) + exc.before)
            raise InputError([_encoding_problem(display, line, encoding)]) from None
        block = "".join(pending)
        if block:
            yield CsvBlock(first, block, columns, delimiter, display)


def _header(texts: Iterator[str], display: str, encoding: str) -> tuple[int, tuple[str, ...], str, str]:
    """Skip a ``#TYPE`` line, read the header; return its line number, columns, delimiter and the
    text after it."""
    text = ""
    try:
        for piece in texts:
            text += piece
            # Two whole lines: a #TYPE line and the header, or the header and a row. A CR at the
            # end may be half of a CR LF.
            if line_breaks(text) >= 2 and not text.endswith("\r"):
                break
    except _Undecodable as exc:
        raise InputError([_encoding_problem(display, 1 + line_breaks(text + exc.before), encoding)]) from None
    lines = _LINE.findall(text)
    offset = 1 if lines and lines[0].startswith("#") else 0
    first = lines[offset] if len(lines) > offset else ""
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
    return header_line, columns, delim, "".join(lines[offset + 1:])


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
        out.append(RawRow(start, dict(zip(columns, record, strict=True))))


def _encoding_problem(display: str, line: int, encoding: str) -> Problem:
    return Problem(
        display,
        line,
        "file",
        f"cannot be decoded as {encoding}; export with -Encoding UTF8 (Windows PowerShell 5.1) "
        "or utf8BOM (PowerShell 7)",
    )
