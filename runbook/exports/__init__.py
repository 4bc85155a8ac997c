"""Readers for the source mailbox export, one per form PowerShell writes (DESIGN §3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError, Problem
from .csvfile import read_csv
from .model import RawRow, SourceMailbox, to_mailbox

__all__ = ["RawRow", "SourceMailbox", "read_export", "to_mailbox"]


def read_export(path: Path, display: str) -> Iterator[RawRow | Problem]:
    """Stream the records of ``path`` in whatever form it was exported."""
    if not path.is_file():
        raise InputError([Problem(display, None, "file", "the mailbox export does not exist")])
    return read_csv(path, display)
