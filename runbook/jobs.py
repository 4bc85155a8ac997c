"""Scripts rendered as jobs a worker process can take: one batch's scripts, or one whole step.

Each job carries what it needs (small, picklable: lists of strings, not the render's objects),
writes its files into the staging folder and returns their manifest entries, so the main
process and the workers can share the tail of a large render (see :mod:`runbook.parallel`).
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import plan as P
from .batches import PlannedBatch
from .config import LoadedConfig
from .notices import Notice
from .plan import Plan
from .powershell import ps_records, ps_strs
from .render import FileEntry, ScriptRenderer, csv_bytes, write_file


def cutover_of(loaded: LoadedConfig, batch: PlannedBatch) -> datetime.datetime | None:
    """When a batch's users switch: its complete_after, else [notify] cutover."""
    if batch.options and batch.options.complete_after:
        return batch.options.complete_after
    return loaded.config.notify.cutover if loaded.config.notify else None


@dataclass(frozen=True)
class StepJob:
    """One whole-step script, for a step that lists every mailbox."""

    loaded: LoadedConfig
    root: Path
    step: P.Step  # numbered
    context: dict[str, object]


def render_step(job: StepJob) -> list[FileEntry]:
    script = _renderer_of(job.root, job.loaded).render(job.step, **job.context)
    return [write_file(job.root, job.step.path, script, "script", step=job.step)]


@dataclass(frozen=True)
class BatchJob:
    """What one batch's scripts need; it travels to a worker process, so it stays small."""

    loaded: LoadedConfig
    plan: Plan
    notice: Notice | None
    root: Path
    batch: PlannedBatch
    sources: list[str]  # source primary addresses, in export order; the targets are batch.targets
    names: list[str]  # display names, in the same order


_RENDERERS: dict[Path, ScriptRenderer] = {}
"""The renderer of each runbook being written, by staging folder: a forked worker inherits the
one the render made; a spawned worker makes its own once."""


@contextlib.contextmanager
def renderer_for(root: Path, renderer: ScriptRenderer) -> Iterator[None]:
    _RENDERERS[root] = renderer
    try:
        yield
    finally:
        _RENDERERS.pop(root, None)


def _renderer_of(root: Path, loaded: LoadedConfig) -> ScriptRenderer:
    return _RENDERERS.get(root) or _RENDERERS.setdefault(root, ScriptRenderer(loaded))


def render_batch(job: BatchJob) -> list[FileEntry]:
    """Snapshots before and after, notices, the batch CSV, New-MigrationBatch and completion."""
    renderer = _renderer_of(job.root, job.loaded)
    cfg = job.loaded.config
    plan = job.plan
    batch = job.batch
    files: list[FileEntry] = []

    def add(step: P.Step, name: str, **context: object) -> FileEntry:
        numbered = plan[step]
        entry = write_file(job.root, plan.file_path(step, name), renderer.render(numbered, **context), "script",
                           step=numbered)
        files.append(entry)
        return entry

    # Each address is quoted once and reused by every list of the batch that names it.
    rows = list(zip(ps_strs(job.sources), ps_strs(batch.targets), ps_strs(job.names), strict=True))
    add(P.SOURCE_SNAPSHOT, f"{batch.slug}.ps1",
        mailboxes=ps_records(("Mailbox", "MappedTo"), ((src, dst) for src, dst, _ in rows)),
        snapshot={"Side": "before", "Batch": batch.name, "NewestSubjects": cfg.snapshots.newest_subjects},
        result_file=f"snapshot-before-{batch.slug}.csv")
    add(P.TARGET_SNAPSHOT, f"{batch.slug}.ps1",
        mailboxes=ps_records(("Mailbox", "MappedTo"), ((dst, src) for src, dst, _ in rows)),
        snapshot={"Side": "after", "Batch": batch.name, "NewestSubjects": cfg.snapshots.newest_subjects},
        result_file=f"snapshot-after-{batch.slug}.csv")
    notice = job.notice
    if cfg.notify is not None and notice is not None:
        cutover = cutover_of(job.loaded, batch)
        add(P.SOURCE_NOTICES, f"{batch.slug}.ps1",
            notice={"Sender": cfg.notify.sender, "Subject": notice.subject, "Body": notice.body,
                    "ContentType": "HTML" if notice.html else "Text", "Batch": batch.name,
                    "Cutover": cutover.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                    if cutover else ""},
            recipients=ps_records(("DisplayName", "Address", "NewAddress"),
                                  ((name, src, dst) for src, dst, name in rows)),
            result_file=f"notices-{batch.slug}.csv")

    csv_entry = write_file(job.root, plan.file_path(P.TARGET_BATCHES, f"{batch.slug}.csv"),
                           csv_bytes(["EmailAddress"], ([t] for t in batch.targets)), "batch-csv",
                           step=plan[P.TARGET_BATCHES])
    files.append(csv_entry)
    options = batch.options
    add(P.TARGET_BATCHES, f"{batch.slug}.ps1", batch={
        "Name": batch.name,
        "SourceEndpoint": cfg.endpoint.name,
        "TargetDeliveryDomain": cfg.target_delivery_domain,
        "CsvFile": f"{batch.slug}.csv",
        "CsvSha256": csv_entry.sha256.upper(),
        "Count": len(batch.targets),
        "AutoStart": batch.auto_start,
        "AutoComplete": batch.auto_complete,
        "StartAfter": options.start_after if options else None,
        "CompleteAfter": options.complete_after if options else None,
        "NotificationEmails": list(options.notification_emails) if options else [],
    })
    add(P.TARGET_COMPLETE, f"{batch.slug}.ps1", batch={"Name": batch.name, "Count": len(batch.targets)})
    return files
