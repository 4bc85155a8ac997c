"""Compare folder snapshots taken before and after the move (``runbook compare``).

Snapshots are the CSVs the snapshot scripts write: one row per mail folder with the mailbox,
the address the mailbox has on the other side (``MappedTo``), the folder path, its well-known
name if it has one, and its item count. Mailboxes are paired through ``MappedTo``; folders by
path, where a well-known folder stands for its well-known name, so ``Inbox/Projects`` before and
``받은 편지함/Projects`` after are the same folder. A folder is short when it lost more items
than the tolerance allows.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from .errors import InputError, Problem
from .exports.csvfile import sniff_encoding

REQUIRED = ("Mailbox", "MappedTo", "FolderPath", "TotalItemCount")


@dataclass(frozen=True)
class FolderRow:
    line: int
    mailbox: str
    mapped_to: str
    path: str
    well_known: str
    items: int


@dataclass(frozen=True)
class Finding:
    """One difference between the snapshots."""

    kind: Literal["mailbox missing", "mailbox only after", "mailbox unreadable", "folder missing", "items short"]
    severity: Literal["error", "warning"]
    mailbox: str
    mapped_to: str
    folder: str = ""
    before: int | None = None
    after: int | None = None

    @property
    def message(self) -> str:
        if self.kind == "mailbox missing":
            return f"{self.mailbox}: no snapshot of {self.mapped_to} after the move"
        if self.kind == "mailbox only after":
            return f"{self.mailbox}: in the snapshot after the move only"
        if self.kind == "mailbox unreadable":
            return f"{self.mailbox}: the snapshot could not read this mailbox"
        if self.kind == "folder missing":
            return f"{self.mailbox} -> {self.mapped_to}: folder {self.folder} ({self.before} items) is missing after the move"
        return (f"{self.mailbox} -> {self.mapped_to}: folder {self.folder} has {self.after} items after the move, "
                f"{self.before} before")


@dataclass
class Comparison:
    findings: list[Finding] = field(default_factory=list)
    mailboxes: int = 0
    folders: int = 0

    @property
    def short(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": not self.short,
            "mailboxes": self.mailboxes,
            "folders": self.folders,
            "findings": [{**asdict(f), "message": f.message} for f in self.findings],
        }


@dataclass(frozen=True)
class Tolerance:
    """How many items a folder may lose: a number, or a percentage of its items before."""

    items: int = 0
    percent: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        text = text.strip()
        try:
            if text.endswith("%"):
                value = float(text[:-1])
                if not 0 <= value <= 100:
                    raise ValueError
                return cls(percent=value)
            value = int(text)
            if value < 0:
                raise ValueError
            return cls(items=value)
        except ValueError:
            raise ValueError(f"tolerance {text!r} is not a number of items or a percentage like 1%") from None

    def allows(self, before: int, after: int) -> bool:
        allowed = max(self.items, math.ceil(before * self.percent / 100))
        return before - after <= allowed


def read_snapshot(path: Path) -> list[FolderRow]:
    """Read one snapshot CSV; problems raise :class:`InputError`, all at once."""
    display = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError([Problem(display, None, "file", f"cannot read: {exc.strerror}")]) from None
    try:
        text = raw.decode(sniff_encoding(raw[:4]))
    except UnicodeDecodeError:
        raise InputError([Problem(display, None, "file", "not UTF-8 or UTF-16 text")]) from None
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    offset = 1 if lines and lines[0].startswith("#") else 0
    reader = csv.DictReader(io.StringIO("".join(lines[offset:]), newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    by_folded = {name.lower(): name for name in header}
    missing = [c for c in REQUIRED if c.lower() not in by_folded]
    if missing:
        raise InputError([Problem(display, offset + 1, "header", f"required column {c} is missing") for c in missing])
    get = {c: by_folded[c.lower()] for c in (*REQUIRED, "WellKnownName") if c.lower() in by_folded}
    rows, problems = [], []
    previous = reader.line_num  # the header's
    for record in reader:
        line = offset + previous + 1
        previous = reader.line_num
        count_text = (record.get(get["TotalItemCount"]) or "").strip()
        try:
            items = int(count_text)
        except ValueError:
            problems.append(Problem(display, line, "TotalItemCount", f"{count_text!r} is not a number"))
            continue
        rows.append(FolderRow(line, (record.get(get["Mailbox"]) or "").strip(), (record.get(get["MappedTo"]) or "").strip(),
                              record.get(get["FolderPath"]) or "",
                              (record.get(get["WellKnownName"]) or "").strip() if "WellKnownName" in get else "", items))
    if problems:
        raise InputError(problems)
    return rows


def _canonical_paths(rows: list[FolderRow]) -> dict[str, FolderRow]:
    """Folder key -> row, with each well-known folder's display name replaced by <name>."""
    prefixes = {row.path: f"<{row.well_known.lower()}>" for row in rows if row.well_known}
    out: dict[str, FolderRow] = {}
    for row in rows:
        key = row.path
        segments = row.path.split("/")
        for cut in range(len(segments), 0, -1):
            head = "/".join(segments[:cut])
            if head in prefixes:
                key = "/".join([prefixes[head], *segments[cut:]])
                break
        out[key.casefold()] = row
    return out


def compare(before: list[FolderRow], after: list[FolderRow], tolerance: Tolerance = Tolerance()) -> Comparison:
    """Everything missing or short after the move, mailbox by mailbox and folder by folder."""
    result = Comparison()
    before_by: dict[str, list[FolderRow]] = defaultdict(list)
    after_by: dict[str, list[FolderRow]] = defaultdict(list)
    for row in before:
        before_by[row.mailbox.casefold()].append(row)
    for row in after:
        after_by[row.mailbox.casefold()].append(row)
    paired: set[str] = set()
    for rows in before_by.values():
        mailbox, mapped_to = rows[0].mailbox, rows[0].mapped_to
        result.mailboxes += 1
        if any(r.items < 0 for r in rows):
            result.findings.append(Finding("mailbox unreadable", "error", mailbox, mapped_to))
            continue
        target = after_by.get(mapped_to.casefold())
        paired.add(mapped_to.casefold())
        if target is None:
            result.findings.append(Finding("mailbox missing", "error", mailbox, mapped_to))
            continue
        if any(r.items < 0 for r in target):
            result.findings.append(Finding("mailbox unreadable", "error", target[0].mailbox, mailbox))
            continue
        after_folders = _canonical_paths(target)
        for key, row in sorted(_canonical_paths(rows).items()):
            result.folders += 1
            match = after_folders.get(key)
            if match is None:
                result.findings.append(Finding("folder missing", "error", mailbox, mapped_to, row.path, row.items))
            elif not tolerance.allows(row.items, match.items):
                result.findings.append(Finding("items short", "error", mailbox, mapped_to, row.path, row.items,
                                               match.items))
    for key, rows in after_by.items():
        if key not in paired:
            result.findings.append(Finding("mailbox only after", "warning", rows[0].mailbox, rows[0].mapped_to))
    return result


def text_report(comparison: Comparison) -> list[str]:
    lines = [f"{f.severity}: {f.message}" for f in comparison.findings]
    errors = sum(1 for f in comparison.findings if f.severity == "error")
    lines.append(f"{comparison.mailboxes} mailbox(es), {comparison.folders} folder(s) compared; {errors} problem(s).")
    return lines


def html_report(comparison: Comparison, before: str, after: str) -> str:
    """A self-contained page for the change record; every value is HTML-escaped."""
    rows = "\n".join(
        f"<tr class=\"{f.severity}\"><td>{html.escape(f.kind)}</td><td>{html.escape(f.mailbox)}</td>"
        f"<td>{html.escape(f.mapped_to)}</td><td>{html.escape(f.folder)}</td>"
        f"<td class=\"n\">{'' if f.before is None else f.before}</td><td class=\"n\">{'' if f.after is None else f.after}</td></tr>"
        for f in comparison.findings
    )
    verdict = "Something is missing or short after the move." if comparison.short else "Nothing is missing or short."
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Mailbox comparison</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }}
td.n {{ text-align: right; }}
tr.error {{ background: #fde2e2; }}
tr.warning {{ background: #fff4d6; }}
</style>
</head>
<body>
<h1>Mailbox comparison</h1>
<p>Before: <code>{html.escape(before)}</code><br>After: <code>{html.escape(after)}</code></p>
<p><strong>{verdict}</strong> {comparison.mailboxes} mailbox(es) and {comparison.folders} folder(s) compared.</p>
<table>
<thead><tr><th>Finding</th><th>Mailbox</th><th>Other side</th><th>Folder</th><th>Items before</th><th>Items after</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""
