"""A rendered runbook as the runner sees it: steps in order, each with its files and hashes.

The runner never renders; it only runs files whose sha256 still matches ``manifest.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, Problem, RefusedError
from ..render import MANIFEST, MANIFEST_FORMAT, file_sha256


@dataclass(frozen=True)
class Unit:
    """One thing to run: a script of a step, or a portal step to confirm by hand."""

    order: int
    step_id: str
    side: str
    title: str
    module: str
    tenant_id: str
    initial_domain: str
    path: str | None = None
    sha256: str | None = None
    instructions: str | None = None

    @property
    def key(self) -> str:
        """The journal key: the script's path, or the step for a portal step."""
        return self.path or self.step_id

    @property
    def is_chunk(self) -> bool:
        """MailUser chunk scripts can run side by side."""
        return self.step_id == "target-mailusers"


class Runbook:
    """``manifest.json`` of a rendered runbook folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        path = folder / MANIFEST
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError([Problem(str(path), None, "file", f"cannot read: {exc.strerror}")]) from None
        except ValueError as exc:
            raise InputError([Problem(str(path), None, "file", f"not JSON: {exc}")]) from None
        if data.get("format") != MANIFEST_FORMAT or "steps" not in data:
            raise InputError([Problem(str(path), None, "format", "not a runbook manifest this version can run; "
                                                                   "render the runbook again")])
        self.data = data
        self.runner: dict[str, Any] = data.get("runner", {})
        files_by_step: dict[str, list[dict[str, Any]]] = {}
        for entry in data["files"]:
            if entry.get("kind") == "script":
                files_by_step.setdefault(entry["step"], []).append(entry)
        self.units: list[Unit] = []
        for step in data["steps"]:
            common = dict(order=step["order"], step_id=step["id"], side=step["side"], title=step["title"],
                          module=step["module"], tenant_id=step["tenant_id"], initial_domain=step["initial_domain"])
            if step["module"] == "portal":
                self.units.append(Unit(**common, instructions=step.get("instructions")))
                continue
            for entry in sorted(files_by_step.get(step["id"], []), key=lambda e: e["order"]):
                self.units.append(Unit(**common, path=entry["path"], sha256=entry["sha256"]))

    def select(self, names: Sequence[str], side: str | None) -> list[Unit]:
        """Units by step order number, step id, step key or script path; or a side's units."""
        units = [u for u in self.units if side is None or u.side == side]
        if not names:
            return units
        chosen: list[Unit] = []
        for name in names:
            found = [u for u in units if name in (str(u.order), u.step_id, u.step_id.split("-", 1)[1], u.path)]
            if not found:
                known = ", ".join(dict.fromkeys(f"{u.order} {u.step_id}" for u in self.units))
                raise InputError([Problem(str(self.folder / MANIFEST), None, "step",
                                          f"no step {name!r} in this runbook (steps: {known[:400]})")])
            chosen.extend(u for u in found if u not in chosen)
        return sorted(chosen, key=lambda u: (u.order, u.path or ""))

    def verify(self, units: Iterable[Unit]) -> None:
        """Refuse (exit 4) if any script changed since it was rendered; nothing runs then."""
        changed = []
        for unit in units:
            if unit.path is None:
                continue
            try:
                digest = file_sha256(self.folder / unit.path)
            except OSError:
                changed.append(f"{unit.path} (missing)")
                continue
            if digest != unit.sha256:
                changed.append(unit.path)
        if changed:
            raise RefusedError("changed since the runbook was rendered, so nothing was run: " + ", ".join(changed)
                               + ". Render the runbook again and review it instead of editing scripts.")
