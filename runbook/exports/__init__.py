"""Readers for the source mailbox export, one per form PowerShell writes (DESIGN §3).

Every reader yields the same thing: blocks of records, each record a :class:`RawRow` with
canonical column names, so checks and rendering never care which form the admin exported.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, Union

from ..errors import InputError, Problem
from .csvfile import CsvBlock, open_csv, parse_block, sniff_encoding
from .model import RawRow, SourceMailbox, plain_text, to_mailbox

__all__ = ["Block", "Export", "RawRow", "SourceMailbox", "is_plain", "open_export", "read_export", "rows_of", "to_mailbox"]

Block = Union[CsvBlock, list[Union[RawRow, Problem]]]


class Export(NamedTuple):
    """An opened export: its columns and its records in blocks."""

    columns: tuple[str, ...]
    blocks: Iterator[Block]


def open_export(path: Path, display: str) -> Export:
    """Open ``path`` in whatever form it was exported; header problems raise at once."""
    if not path.is_file():
        raise InputError([Problem(display, None, "file", "the mailbox export does not exist")])
    kind = sniff_form(path)
    if kind == "csv":
        columns, blocks = open_csv(path, display)
        return Export(columns, blocks)
    from .structured import open_structured  # psrpcore costs start-up time; only load it when needed

    columns, structured = open_structured(path, display, kind)
    return Export(columns, structured)


def sniff_form(path: Path) -> str:
    """``clixml``, ``json`` or ``csv``, from the first characters of the file."""
    with path.open("rb") as fh:
        head = fh.read(512)
    encoding = sniff_encoding(head)
    text = head.decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    if text.startswith(("<Objs", "<?xml")):
        return "clixml"
    if text.startswith(("[", "{")):
        return "json"
    return "csv"


def rows_of(block: Block) -> list[RawRow | Problem]:
    """The records of a block (CSV blocks are parsed here, possibly in a worker process)."""
    return parse_block(block) if isinstance(block, CsvBlock) else block


def is_plain(block: Block) -> bool:
    """True when every cell of ``block`` is text that :func:`to_mailbox` need not scan (see ``plain``).

    Only CSV can vouch for that cheaply: its cells are never lists, and one search of the
    block's text rules out NUL and unjoined type names. CLIXML and JSON rows are scanned.
    """
    return isinstance(block, CsvBlock) and plain_text(block.text)


def read_export(path: Path, display: str) -> Iterator[RawRow | Problem]:
    """Stream every record of ``path``."""
    for block in open_export(path, display).blocks:
        yield from rows_of(block)
