"""The run journal: per unit pending / running / succeeded / failed, written atomically.

A run killed at any moment leaves either the previous journal or the new one on disk, never a
torn file; a unit still marked running was interrupted and runs again (the scripts are
idempotent), as does a failed one. Succeeded units are skipped.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

JOURNAL = "journal.json"
State = Literal["pending", "running", "succeeded", "failed"]


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Journal:
    def __init__(self, folder: Path) -> None:
        self.path = folder / JOURNAL
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self.entries = json.loads(self.path.read_text(encoding="utf-8")).get("units", {})

    def state(self, key: str) -> State:
        return self.entries.get(key, {}).get("state", "pending")

    def done(self, key: str, sha256: str | None) -> bool:
        """Succeeded with the same file: a changed file is never 'done'."""
        entry = self.entries.get(key, {})
        return entry.get("state") == "succeeded" and entry.get("sha256") == sha256

    def mark(self, key: str, state: State, *, host: str, sha256: str | None, error: str = "") -> None:
        entry = self.entries.setdefault(key, {"attempts": 0})
        entry.update(state=state, host=host, sha256=sha256, updated=now())
        if state == "running":
            entry["attempts"] = entry.get("attempts", 0) + 1
            entry["started"] = entry["updated"]
        if error:
            entry["error"] = error
        elif state == "succeeded":
            entry.pop("error", None)
        self._write()

    def _write(self) -> None:
        data = json.dumps({"format": "runbook-journal/1", "units": self.entries}, indent=2, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=".journal.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
