"""``runbook init``: a commented starter config and a sample export to edit.

The starter is the bundled sample (Wingtip Toys -> Tailspin Toys), so what ``init`` writes
always validates and renders as shipped; an admin replaces the values and the export.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from .errors import RefusedError

STARTER_FILES = ("migration.toml", "notice.html", "csv/source-mailboxes.csv")


def samples_dir() -> Path:
    """The bundled samples inside the installed package, else the repository's ``samples/``."""
    packaged = resources.files("runbook") / "samples"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "samples"


def write_starter(directory: Path) -> list[Path]:
    """Copy the starter files into ``directory``; refuse to overwrite any that exist."""
    existing = [directory / name for name in STARTER_FILES if (directory / name).exists()]
    if existing:
        raise RefusedError(f"{existing[0]} already exists; init writes only into a new or empty place")
    written = []
    for name in STARTER_FILES:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(samples_dir() / name, target)
        written.append(target)
    return written
