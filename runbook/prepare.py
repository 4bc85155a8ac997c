"""One streaming pass over the export: read, check, derive MailUsers, assign batches.

Rows are never all held in memory: each MailUser is handed to ``on_chunk`` in groups of
``chunk_size`` (so the caller can render and write them) and forgotten; what stays is one small
record per mailbox for the batch CSVs, the scope group and the mapping table, plus the keys
duplicate detection compares. Every problem in every row is collected before anything is final.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .batches import BatchPlanner, PlannedBatch
from .checks import DroppedDomains, DuplicateCheck
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
    cfg = loaded.config
    planner = BatchPlanner(loaded)
    duplicates = DuplicateCheck(export_display)
    dropped = DroppedDomains()
    domain_map = dict(cfg.domains)
    chunk_size = cfg.mailboxes.chunk_size
    result = Prepared(export_display)
    errors: list[Problem] = []
    chunk: list[MailUser] = []
    keep: dict[str, str] = {}
    checked_columns = False

    def flush() -> None:
        nonlocal chunk
        if chunk:
            result.chunk_count += 1
            if on_chunk is not None and not errors:
                on_chunk(result.chunk_count, chunk)
            chunk = []

    for record in read_export(export, export_display):
        if progress is not None:
            progress(1)
        if isinstance(record, Problem):
            errors.append(record)
            continue
        if not checked_columns:
            checked_columns = True
            keep, missing = _resolve_columns(loaded, record, planner.columns)
            errors.extend(missing)
        mbx, row_problems = to_mailbox(record, export_display, keep)
        if mbx is None:
            errors.extend(row_problems)
            continue
        derived = derive_mailuser(
            mbx,
            domain_map=domain_map,
            target_delivery_domain=cfg.target_delivery_domain,
            source_initial_domain=cfg.source.initial_domain,
            external=cfg.mailboxes.external_email_address,
        )
        dropped.add(derived.dropped_domains, mbx.line)
        if derived.error is not None:
            errors.append(Problem(export_display, mbx.line, *derived.error))
        dupes = duplicates.check(mbx, derived.mailuser)
        errors.extend(dupes)
        mailuser = derived.mailuser
        if mailuser is None or dupes:
            continue
        batch = planner.assign(mbx.primary_smtp_address, mailuser.primary_smtp_address, dict(mbx.extra),
                               mbx.line, export_display)
        if batch is None:
            continue
        chunk.append(mailuser)
        result.assignments.append(
            Assignment(mbx.line, mbx.primary_smtp_address, mailuser.primary_smtp_address, batch.name,
                       result.chunk_count + 1)
        )
        if len(chunk) >= chunk_size:
            flush()
    flush()

    batches, batch_problems = planner.finish()
    problems = errors + batch_problems + dropped.problems(export_display)
    if not result.assignments and not errors:
        problems.append(Problem(export_display, None, "file", "the export holds no mailboxes"))
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
