"""One streaming pass over the export: read, check, derive MailUsers, assign batches.

Rows are never all held in memory: each MailUser is handed to ``on_chunk`` in groups of
``chunk_size`` (so the caller can render and write them) and forgotten; what stays is one small
record per mailbox for the batch CSVs, the scope group and the mapping table, plus the keys
duplicate detection compares. Every problem in every row is collected before anything is final.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .batches import BatchPlanner, PlannedBatch
from .checks import DroppedDomains, DuplicateCheck, row_findings
from .config import LoadedConfig
from .errors import InputError, Problem
from .exports import read_export, to_mailbox
from .exports.model import RawRow
from .mailusers import MailUser, derive_mailuser


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where one mailbox goes: its target address, batch and MailUser chunk."""

    line: int
    source_primary: str
    target_primary: str
    batch: str
    chunk: int


@dataclass
class Prepared:
    """What the plan and the renderer need from the export once it has been read."""

    export_display: str
    assignments: list[Assignment] = field(default_factory=list)
    batches: list[PlannedBatch] = field(default_factory=list)
    chunk_count: int = 0
    warnings: list[Problem] = field(default_factory=list)

    @property
    def mailbox_count(self) -> int:
        return len(self.assignments)


ChunkSink = Callable[[int, list[MailUser]], None]
Progress = Callable[[int], None]


def prepare(
    loaded: LoadedConfig,
    export: Path,
    export_display: str,
    *,
    on_chunk: ChunkSink | None = None,
    progress: Progress | None = None,
) -> Prepared:
    """Read and check every row; raise :class:`InputError` with all problems if any is an error."""
    state = _Pass(loaded, export_display, on_chunk)
    gc_was_enabled = gc.isenabled()
    # Rows hold no reference cycles, and collecting while 100,000 small records stay alive
    # costs about a third of the run.
    gc.disable()
    try:
        for record in read_export(export, export_display):
            if progress is not None:
                progress(1)
            state.handle(record)
        state.flush()
    finally:
        if gc_was_enabled:
            gc.enable()
    return state.finish()


class _Pass:
    """The state of one pass over the export."""

    def __init__(self, loaded: LoadedConfig, display: str, on_chunk: ChunkSink | None) -> None:
        cfg = loaded.config
        self.loaded = loaded
        self.display = display
        self.on_chunk = on_chunk
        self.planner = BatchPlanner(loaded)
        self.duplicates = DuplicateCheck(display)
        self.dropped = DroppedDomains()
        self.domain_map = dict(cfg.domains)
        self.delivery_domain = cfg.target_delivery_domain
        self.source_initial = cfg.source.initial_domain
        self.external = cfg.mailboxes.external_email_address
        self.chunk_size = cfg.mailboxes.chunk_size
        self.result = Prepared(display)
        self.errors: list[Problem] = []
        self.chunk: list[MailUser] = []
        self.keep: dict[str, str] | None = None

    def handle(self, record: RawRow | Problem) -> None:
        if isinstance(record, Problem):
            self.errors.append(record)
            return
        if self.keep is None:
            self.keep, missing = _resolve_columns(self.loaded, record, self.planner.columns)
            self.errors.extend(missing)
        mbx, row_problems = to_mailbox(record, self.display, self.keep)
        if mbx is None:
            self.errors.extend(row_problems)
            return
        self.errors.extend(row_findings(mbx, self.display))
        derived = derive_mailuser(
            mbx,
            domain_map=self.domain_map,
            target_delivery_domain=self.delivery_domain,
            source_initial_domain=self.source_initial,
            external=self.external,
        )
        if derived.dropped_domains:
            self.dropped.add(derived.dropped_domains, mbx.line)
        if derived.error is not None:
            self.errors.append(Problem(self.display, mbx.line, *derived.error))
        dupes = self.duplicates.check(mbx, derived.mailuser)
        mailuser = derived.mailuser
        if dupes:
            self.errors.extend(dupes)
        if mailuser is None or dupes:
            return
        batch = self.planner.assign(mbx.primary_smtp_address, mailuser.primary_smtp_address, mbx.extra,
                                    mbx.line, self.display)
        if batch is None:
            return
        self.chunk.append(mailuser)
        result = self.result
        result.assignments.append(
            Assignment(mbx.line, mbx.primary_smtp_address, mailuser.primary_smtp_address, batch.name,
                       result.chunk_count + 1)
        )
        if len(self.chunk) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        if self.chunk:
            self.result.chunk_count += 1
            if self.on_chunk is not None and not any(p.severity == "error" for p in self.errors):
                self.on_chunk(self.result.chunk_count, self.chunk)
            self.chunk = []

    def finish(self) -> Prepared:
        result = self.result
        batches, batch_problems = self.planner.finish()
        problems = self.errors + batch_problems + self.dropped.problems(self.display)
        if not result.assignments and not self.errors:
            problems.append(Problem(self.display, None, "file", "the export holds no mailboxes"))
        if any(p.severity == "error" for p in problems):
            raise InputError(problems)
        result.batches = batches
        result.warnings = problems
        return result


def _resolve_columns(
    loaded: LoadedConfig, record: RawRow, wanted: tuple[str, ...]
) -> tuple[dict[str, str], list[Problem]]:
    """Match ``[[batches]]`` column names to export columns, ignoring case as PowerShell does."""
    by_folded = {name.casefold(): name for name in record.values}
    keep: dict[str, str] = {}
    problems = []
    for column in wanted:
        actual = by_folded.get(column.casefold())
        if actual is not None:
            keep[column] = actual
            continue
        for i, batch in enumerate(loaded.config.batches):
            if batch.column == column:
                problems.append(Problem(loaded.display, loaded.line_of("batches", i, "column"),
                                        f"batches[{i}].column", f"the export has no column {column}"))
    return keep, problems
