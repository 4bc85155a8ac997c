"""One streaming pass over the export: read, check, derive MailUsers, assign batches.

Rows are never all held in memory: each MailUser is handed to ``on_chunk`` in groups of
``chunk_size`` (so the caller can render and write them) and forgotten; what stays is one small
record per mailbox for the batch CSVs, the scope group and the mapping table, plus the keys
duplicate detection compares. Every problem in every row is collected before anything is final.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .batches import BatchPlanner, PlannedBatch
from .checks import DroppedDomains, DuplicateCheck, DuplicateKeys, DuplicateScreen, duplicate_keys, row_findings
from .config import LoadedConfig
from .errors import InputError, Problem
from .exports import Block, is_plain, open_export, rows_of, to_mailbox
from .mailusers import derive_mailuser
from .parallel import Workers, default_workers


class Assignment(NamedTuple):
    """Where one mailbox goes: its target address, batch and MailUser chunk.

    One per mailbox stays in memory for the whole render; a tuple is as small as a slotted
    class and several times cheaper to create than a frozen dataclass.
    """

    line: int
    source_primary: str
    target_primary: str
    batch: str
    chunk: int
    display_name: str
    source_upn: str = ""


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


ChunkSink = Callable[[int, list[bytes]], None]
"""Receives each chunk's number and its users' record lines, ready to splice into a script."""
Progress = Callable[[int], None]

PARALLEL_FROM_BYTES = 4 << 20
"""Exports smaller than this are checked in-process: starting workers would cost more."""


class RowContext(NamedTuple):
    """What converting one row needs from the config; small, so it travels to workers cheaply."""

    display: str
    keep: dict[str, str]
    domain_map: dict[str, str]
    delivery_domain: str
    source_initial: str
    external: str
    keep_upn: bool
    """Only the source-side licensing step needs each user's UPN; otherwise it is not kept per row."""


RowResult = tuple[int, tuple[Problem, ...], "DuplicateKeys | None", "str | None", tuple[str, ...],
                  "dict[str, str] | None", "bytes | None", str, str]
"""One row after the per-row work, as a plain tuple (a NamedTuple costs a Python call to pickle
and another to unpickle, per row): line, problems, the keys compared across rows (None if the
row could not be read), target primary address, dropped proxy domains, extra columns, record,
display name, UPN (kept only when needed, else "").

The record is the MailUser's line in the scripts that embed it (quoted by RecordLayout,
indented, UTF-8), None when the row has an error: bytes because that is what is written, and
bytes cross between processes as one copy, where a str is encoded on one side and decoded on
the other."""


def convert_rows(context: RowContext, block: Block) -> list[RowResult | Problem]:
    """The per-row work, independent of every other row: parse, check, derive, quote.

    The collector is paused here as in the rest of the pass (see :func:`paused_gc`); a worker
    runs with it on, for the templates of the tail, and would otherwise collect a few dozen
    times per block for nothing.
    """
    with paused_gc():
        return _convert_rows(context, block)


def _convert_rows(context: RowContext, block: Block) -> list[RowResult | Problem]:
    out: list[RowResult | Problem] = []
    plain = is_plain(block)
    for raw in rows_of(block):
        if isinstance(raw, Problem):
            out.append(raw)
            continue
        mbx, problems = to_mailbox(raw, context.display, context.keep, plain=plain)
        if mbx is None:
            out.append((raw.line, tuple(problems), None, None, (), None, None, "", ""))
            continue
        problems = row_findings(mbx, context.display)
        derived = derive_mailuser(
            mbx,
            domain_map=context.domain_map,
            target_delivery_domain=context.delivery_domain,
            source_initial_domain=context.source_initial,
            external=context.external,
        )
        if derived.error is not None:
            problems.append(Problem(context.display, mbx.line, *derived.error))
        user = derived.mailuser
        keys = duplicate_keys(mbx.exchange_guid, mbx.archive_guid, mbx.alias, mbx.primary_smtp_address,
                              user.smtp_addresses() if user is not None else ())
        if user is None:
            out.append((mbx.line, tuple(problems), keys, None, derived.dropped_domains, mbx.extra or None, None,
                        "", ""))
            continue
        blocked = bool(problems) and any(p.severity == "error" for p in problems)
        record = None if blocked else f"    {user.ps_record()}\n".encode()
        out.append((mbx.line, tuple(problems), keys, user.primary_smtp_address, derived.dropped_domains,
                    mbx.extra or None, record, mbx.display_name,
                    mbx.user_principal_name if context.keep_upn else ""))
    return out


def prepare(
    loaded: LoadedConfig,
    export: Path,
    export_display: str,
    *,
    on_chunk: ChunkSink | None = None,
    progress: Progress | None = None,
    workers: int | Workers | None = None,
) -> Prepared:
    """Read and check every row; raise :class:`InputError` with all problems if any is an error.

    ``workers``: processes for the per-row work, or a pool to use (``None``: see
    :func:`pool_for`).
    """
    if not isinstance(workers, Workers):
        with pool_for(export, workers) as pool:
            return prepare(loaded, export, export_display, on_chunk=on_chunk, progress=progress, workers=pool)
    screen = DuplicateScreen()
    first = _read(loaded, export, export_display, on_chunk, progress, workers, screen)
    if not screen.repeats():
        return first.finish()
    del first, screen  # the second reading needs the memory
    # Some value occurs twice. Read the export again, comparing each row with those before it,
    # to name both rows of every duplicate, together with every other problem.
    _read(loaded, export, export_display, None, None, workers, DuplicateCheck(export_display)).finish()
    # The screen and the check compare the same keys of the same rows: the file was changed
    # between the two readings, and the scripts written so far come from the first.
    raise InputError([Problem(export_display, None, "file",
                              "changed while it was being read (a value repeated in the first reading, "
                              "not in the second); render again")])


def _read(loaded: LoadedConfig, export: Path, export_display: str, on_chunk: ChunkSink | None,
          progress: Progress | None, workers: Workers, duplicates: DuplicateCheck | DuplicateScreen) -> _Pass:
    """One pass over the export, every row handled; :meth:`_Pass.finish` gives its outcome."""
    source = open_export(export, export_display)
    state = _Pass(loaded, export_display, on_chunk, duplicates)
    context = state.context(source.columns)
    with paused_gc():
        for results in workers.ordered_map(convert_rows, context, source.blocks):
            if progress is not None:
                progress(len(results))
            for result in results:
                state.handle(result)
        state.flush()
    return state


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside: what a render builds holds no reference cycles,
    and collecting while 100,000 small records stay alive would cost about a third of the run."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            _age_young_objects()
            gc.enable()


def _age_young_objects() -> None:
    """Count what the pause created as old, as if it had survived collections all along.

    The collector counts allocations while it is paused, so the first allocation after it
    resumes starts a collection of the youngest generation, which now holds every container the
    render made: a million of them at 100,000 mailboxes, a tenth of a second spent finding no
    garbage. Freezing and unfreezing moves them to the oldest generation, where only a full
    collection looks, as it would have at its usual, rare moments. A caller that froze objects
    of its own keeps them frozen: then this is skipped, and the one collection happens.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


def pool_for(export: Path, workers: int | None) -> Workers:
    """The pool for reading ``export``: ``workers`` processes, or by default one per core but
    this process's own if the export is large, else none."""
    if workers is None:
        try:
            size = export.stat().st_size
        except OSError:
            size = 0  # reading it reports the problem
        workers = default_workers() if size >= PARALLEL_FROM_BYTES else 0
    return Workers(workers)


class _Pass:
    """The state of one pass over the export: what must see every row, in export order."""

    def __init__(self, loaded: LoadedConfig, display: str, on_chunk: ChunkSink | None,
                 duplicates: DuplicateCheck | DuplicateScreen) -> None:
        self.loaded = loaded
        self.display = display
        self.on_chunk = on_chunk
        self.planner = BatchPlanner(loaded)
        self.duplicates = duplicates
        self.dropped = DroppedDomains()
        self.chunk_size = loaded.config.mailboxes.chunk_size
        self.result = Prepared(display)
        self.problems: list[Problem] = []
        self.failed = False
        self.chunk: list[bytes] = []

    def context(self, columns: tuple[str, ...]) -> RowContext:
        cfg = self.loaded.config
        keep, missing = _resolve_columns(self.loaded, columns, self.planner.columns)
        self.planner.missing_columns = {c for c in self.planner.columns if c not in keep}
        self.add(missing)
        return RowContext(self.display, keep, dict(cfg.domains), cfg.target_delivery_domain,
                          cfg.source.initial_domain, cfg.mailboxes.external_email_address,
                          cfg.licensing is not None and cfg.licensing.side == "source")

    def add(self, problems: Sequence[Problem]) -> None:
        if problems:
            self.problems.extend(problems)
            self.failed = self.failed or any(p.severity == "error" for p in problems)

    def handle(self, result: RowResult | Problem) -> None:
        if type(result) is Problem:
            self.add([result])
            return
        line, problems, keys, target_primary, dropped, extra, record, display_name, source_upn = result
        if problems:
            self.add(problems)
        if keys is None:
            return
        dupes = self.duplicates.check(line, keys)
        if dupes:
            self.add(dupes)
        if dropped:
            self.dropped.add(dropped, line)
        if record is None or target_primary is None or dupes:
            return
        source_primary = keys[4]
        batch = self.planner.assign(source_primary, target_primary, extra or {}, line, self.display)
        if batch is None:
            self.failed = True
            return
        chunk = self.chunk
        chunk.append(record)
        self.result.assignments.append(Assignment(line, source_primary, target_primary, batch.name,
                                                  self.result.chunk_count + 1, display_name, source_upn))
        if len(chunk) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        if self.chunk:
            self.result.chunk_count += 1
            if self.on_chunk is not None and not self.failed:
                self.on_chunk(self.result.chunk_count, self.chunk)
            self.chunk = []

    def finish(self) -> Prepared:
        result = self.result
        batches, batch_problems = self.planner.finish()
        problems = self.problems + batch_problems + self.dropped.problems(self.display)
        if not result.assignments and not self.failed:
            problems.append(Problem(self.display, None, "file", "the export holds no mailboxes"))
        if any(p.severity == "error" for p in problems):
            raise InputError(problems)
        result.batches = batches
        result.warnings = problems
        return result


def _resolve_columns(
    loaded: LoadedConfig, columns: tuple[str, ...], wanted: tuple[str, ...]
) -> tuple[dict[str, str], list[Problem]]:
    """Match ``[[batches]]`` column names to export columns, ignoring case as PowerShell does."""
    by_folded = {name.casefold(): name for name in columns}
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
