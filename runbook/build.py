"""The library's entry points: validate the inputs, or render the whole runbook.

Both return results and raise :class:`~runbook.errors.RunbookError` subclasses; neither prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from . import plan as P
from .config import MAX_NAME_LENGTH, LoadedConfig, load_config
from .errors import InputError, Problem
from .powershell import PsCode
from .prepare import Prepared, Progress, prepare
from .render import FileEntry, OutputTree, ScriptRenderer, csv_bytes, file_sha256, render_markdown

MAPPING_FILE = "mailboxes.csv"
EXPORT_CSV_NAME = "source-mailboxes.csv"
EXPORT_XML_NAME = "source-mailboxes.xml"


@dataclass
class Report:
    """The outcome of a successful validation: what was read and any warnings."""

    loaded: LoadedConfig
    prepared: Prepared
    warnings: list[Problem] = field(default_factory=list)


@dataclass
class Rendered(Report):
    out_dir: Path = Path()
    files: list[FileEntry] = field(default_factory=list)


def _export_location(loaded: LoadedConfig, mailboxes: Path | None) -> tuple[Path, str]:
    if mailboxes is not None:
        return mailboxes, str(mailboxes)
    relative = loaded.config.mailboxes.export
    display = os.path.normpath(os.path.join(os.path.dirname(loaded.display), relative))
    return loaded.export_path(), display


def count_records(path: Path) -> int:
    """A quick upper bound of the records in an export, for sizing a progress bar."""
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def validate(config: Path, *, mailboxes: Path | None = None, progress: Progress | None = None,
             config_display: str | None = None, workers: int | None = None) -> Report:
    """Run every offline check; raise :class:`InputError` listing all problems."""
    loaded = load_config(config, display=config_display)
    export, display = _export_location(loaded, mailboxes)
    prepared = prepare(loaded, export, display, progress=progress, workers=workers)
    scope_groups(loaded, prepared)  # checks that the numbered group names fit
    return Report(loaded, prepared, prepared.warnings)


def render(config: Path, out_dir: Path, *, mailboxes: Path | None = None, progress: Progress | None = None,
           config_display: str | None = None, workers: int | None = None) -> Rendered:
    """Validate, then write the whole runbook to ``out_dir``, replacing it atomically."""
    loaded = load_config(config, display=config_display)
    export, display = _export_location(loaded, mailboxes)
    renderer = ScriptRenderer(loaded)
    with OutputTree(out_dir) as tree:
        def write_chunk(number: int, records: list[PsCode]) -> None:
            """A MailUser script and both sides' pre-flight scripts, from the same records."""
            block = "".join([f"    {record}\n" for record in records]).encode("utf-8")
            chunk = {"Number": number}
            tree.add(P.mailuser_chunk_path(number), renderer.render_around(
                P.TARGET_MAILUSERS, block, chunk=chunk, result_file=f"mailusers-{number:04d}.csv"),
                "script", step=P.TARGET_MAILUSERS)
            tree.add(P.preflight_chunk_path(P.SOURCE_PREFLIGHT, number), renderer.render_around(
                P.SOURCE_PREFLIGHT, block, chunk=chunk, target_tenant_id=str(loaded.config.target.tenant_id),
                result_file=f"preflight-source-users-{number:04d}.csv"), "script", step=P.SOURCE_PREFLIGHT)
            tree.add(P.preflight_chunk_path(P.TARGET_PREFLIGHT, number), renderer.render_around(
                P.TARGET_PREFLIGHT, block, chunk=chunk, delivery_domain=loaded.config.target_delivery_domain,
                result_file=f"preflight-target-users-{number:04d}.csv"), "script", step=P.TARGET_PREFLIGHT)

        prepared = prepare(loaded, export, display, on_chunk=write_chunk, progress=progress, workers=workers)
        _write_steps(tree, renderer, loaded, prepared)
        readme = _runbook_markdown(tree, loaded, prepared, export)
        tree.add("RUNBOOK.md", readme, "runbook")
        files = tree.commit({"runbook_version": __version__, "source_tenant": str(loaded.config.source.tenant_id),
                             "target_tenant": str(loaded.config.target.tenant_id)})
    return Rendered(loaded, prepared, prepared.warnings, out_dir=tree.final, files=files)


def scope_groups(loaded: LoadedConfig, prepared: Prepared) -> list[dict[str, object]]:
    """The scope groups and their members: at most ``max_members`` each, in export order."""
    size = loaded.config.scope_group.max_members
    sources = [a.source_primary for a in prepared.assignments]
    count = max(1, -(-len(sources) // size))
    names = loaded.config.scope_group.names(count)
    too_long = [name for pair in names for name in pair if len(name) > MAX_NAME_LENGTH]
    if too_long:
        raise InputError([Problem(
            loaded.display, loaded.line_of("scope_group", "name"), "scope_group.name",
            f"{count} scope groups are needed (max_members = {size}); the numbered name {too_long[-1]!r} "
            f"would be longer than {MAX_NAME_LENGTH} characters: shorten name and alias",
        )])
    return [
        {"Name": name, "Alias": alias, "Members": sources[i * size:(i + 1) * size]}
        for i, (name, alias) in enumerate(names)
    ]


def _write_steps(tree: OutputTree, renderer: ScriptRenderer, loaded: LoadedConfig, prepared: Prepared) -> None:
    """Render every step except the MailUser chunks, which were written while streaming."""
    cfg = loaded.config
    app = {
        "AppId": str(cfg.app.app_id),
        "DisplayName": cfg.app.display_name,
        "RedirectUri": "https://office.com",
        "SecretKind": cfg.app.secret_kind,
        "SecretName": cfg.app.secret_name,
        "SecretReference": cfg.app.secret,
    }
    consent_url = cfg.consent_url()
    groups = scope_groups(loaded, prepared)
    group_names = [g["Name"] for g in groups]
    to_source = {"Name": cfg.organization_relationships.target_name, "PartnerTenantId": str(cfg.source.tenant_id)}
    to_target = {
        "Name": cfg.organization_relationships.source_name,
        "PartnerTenantId": str(cfg.target.tenant_id),
        "OAuthApplicationId": str(cfg.app.app_id),
        "Scopes": group_names,
    }
    batch_names = [b.name for b in prepared.batches]
    endpoint = {"Name": cfg.endpoint.name, "RemoteServer": cfg.hosts.exo_remote_server,
                "RemoteTenant": cfg.source.initial_domain, "ApplicationId": str(cfg.app.app_id)}

    def single(step: P.Step, **context: object) -> None:
        tree.add(step.path, renderer.render(step, **context), "script", step=step)

    single(P.TARGET_APP, app=app, consent_url=consent_url)
    single(P.SOURCE_VERIFY_CONSENT, app=app, consent_url=consent_url)
    single(P.TARGET_CUSTOMIZATION)
    single(P.TARGET_ENDPOINT, endpoint=endpoint, secret={"Kind": cfg.app.secret_kind, "Name": cfg.app.secret_name})
    single(P.TARGET_RELATIONSHIP, relationship=to_source)
    single(P.SOURCE_SCOPE, groups=groups, result_file="scope-group.csv")
    single(P.SOURCE_RELATIONSHIP, relationship=to_target)
    single(P.SOURCE_EXPORT, scope_groups=group_names, csv_name=EXPORT_CSV_NAME, xml_name=EXPORT_XML_NAME)
    for step, context in (
        (P.SOURCE_PREFLIGHT, {"relationship": to_target}),
        (P.TARGET_PREFLIGHT, {"relationship": to_source, "endpoint": endpoint,
                              "domains": sorted({*cfg.domains.values(), cfg.target_delivery_domain})}),
    ):
        tree.add(f"{step.path}/organization.ps1", renderer.render(
            step, template_name=P.PREFLIGHT_ORGANIZATION_TEMPLATES[step.side],
            result_file=f"preflight-{step.side}-organization.csv", **context), "script", step=step)
    single(P.TARGET_TEST, endpoint_name=cfg.endpoint.name,
           mailboxes=[a.target_primary for a in prepared.assignments], result_file="test-migration-server.csv")

    for batch in prepared.batches:
        csv_path = f"{P.TARGET_BATCHES.path}/{batch.slug}.csv"
        csv_entry = tree.add(csv_path, csv_bytes(["EmailAddress"], ([t] for t in batch.targets)), "batch-csv",
                             step=P.TARGET_BATCHES)
        options = batch.options
        tree.add(f"{P.TARGET_BATCHES.path}/{batch.slug}.ps1", renderer.render(
            P.TARGET_BATCHES,
            batch={
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
            }), "script", step=P.TARGET_BATCHES)
        tree.add(f"{P.TARGET_COMPLETE.path}/{batch.slug}.ps1", renderer.render(
            P.TARGET_COMPLETE, batch={"Name": batch.name, "Count": len(batch.targets)}),
            "script", step=P.TARGET_COMPLETE)

    single(P.TARGET_STATUS, batch_names=batch_names, result_file="batch-status.csv")
    single(P.TARGET_REMOVE, batch_names=batch_names)
    single(P.TARGET_TEARDOWN, endpoint_name=cfg.endpoint.name, relationship=to_source)
    single(P.SOURCE_TEARDOWN, relationship=to_target, scope_groups=group_names)

    tree.add(MAPPING_FILE, csv_bytes(
        ["Line", "SourcePrimarySmtpAddress", "TargetPrimarySmtpAddress", "Batch", "MailUserScript"],
        ([a.line, a.source_primary, a.target_primary, a.batch, P.mailuser_chunk_path(a.chunk)]
         for a in prepared.assignments)), "mapping")


def _runbook_markdown(tree: OutputTree, loaded: LoadedConfig, prepared: Prepared, export: Path) -> bytes:
    """RUNBOOK.md: the checklist a person follows, with every script's sha256."""
    cfg = loaded.config
    entries = tree.ordered()
    steps = []
    for number, step in enumerate(P.STEPS, 1):
        files = [e for e in entries if e.step == step.id and e.kind == "script"]
        csvs = [e for e in entries if e.step == step.id and e.kind == "batch-csv"]
        tenant = cfg.source if step.side == "source" else cfg.target
        steps.append({"number": number, "step": step, "files": files, "csvs": csvs, "tenant": tenant})
    by_batch = [
        {"batch": b, "script": f"{P.TARGET_BATCHES.path}/{b.slug}.ps1", "csv": f"{P.TARGET_BATCHES.path}/{b.slug}.csv"}
        for b in prepared.batches
    ]
    return render_markdown(
        "RUNBOOK.md.jinja",
        cfg=cfg,
        steps=steps,
        batches=by_batch,
        prepared=prepared,
        export_name=export.name,
        export_sha256=file_sha256(export),
        mapping_file=MAPPING_FILE,
        consent_url=cfg.consent_url(),
        version=__version__,
    )
