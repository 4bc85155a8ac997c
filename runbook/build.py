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
from .notices import Notice, load_notice
from .plan import Plan
from .jobs import BatchJob, StepJob, cutover_of, render_batch, render_step, renderer_for
from .parallel import Task, Workers, gather
from .prepare import Assignment, Prepared, Progress, paused_gc, pool_for, prepare
from .render import FileEntry, OutputTree, ScriptRenderer, csv_pieces, file_sha256, render_markdown

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
    notice, notice_problems = load_notice(loaded)
    prepared = _prepare(loaded, export, display, notice_problems, progress=progress, workers=workers)
    _check_prepared(loaded, prepared, notice)
    return Report(loaded, prepared, prepared.warnings)


def _prepare(loaded: LoadedConfig, export: Path, display: str, earlier: list[Problem], **kwargs: object) -> Prepared:
    """Run :func:`prepare`, reporting problems found before it together with its own."""
    try:
        prepared = prepare(loaded, export, display, **kwargs)  # type: ignore[arg-type]
    except InputError as exc:
        raise InputError([*earlier, *exc.problems]) from None
    if any(p.severity == "error" for p in earlier):
        raise InputError([*earlier, *prepared.warnings])
    prepared.warnings = [*earlier, *prepared.warnings]
    return prepared


def _check_prepared(loaded: LoadedConfig, prepared: Prepared, notice: Notice | None) -> list[dict[str, object]]:
    """Checks that need the whole export read: scope group names, cut-over times of notices.

    Returns the scope groups, which the render needs too.
    """
    problems: list[Problem] = []
    groups: list[dict[str, object]] = []
    try:
        groups = scope_groups(loaded, prepared)
    except InputError as exc:
        problems.extend(exc.problems)
    if notice is not None and notice.uses("cutover"):
        for batch in prepared.batches:
            if cutover_of(loaded, batch) is None:
                problems.append(Problem(loaded.display, loaded.line_of("notify"), "notify.cutover",
                                        f"batch {batch.name} has no complete_after and [notify] has no cutover, "
                                        "but the notice uses {cutover}"))
    if problems:
        raise InputError(problems)
    return groups


def render(config: Path, out_dir: Path, *, mailboxes: Path | None = None, progress: Progress | None = None,
           config_display: str | None = None, workers: int | None = None) -> Rendered:
    """Validate, then write the whole runbook to ``out_dir``, replacing it atomically."""
    loaded = load_config(config, display=config_display)
    export, display = _export_location(loaded, mailboxes)
    notice, notice_problems = load_notice(loaded)
    renderer = ScriptRenderer(loaded)
    plan = Plan(loaded.config)
    stamp = _stamp(export)
    with paused_gc(), OutputTree(out_dir, plan.order()) as tree, renderer_for(tree.root, renderer), \
            pool_for(export, workers) as pool:
        def write_chunk(number: int, records: list[bytes]) -> None:
            """A MailUser script and both sides' pre-flight scripts, from the same records."""
            block = b"".join(records)
            for step, stem, result_stem, context in (
                (P.TARGET_MAILUSERS, "mailusers", "mailusers", {}),
                (P.SOURCE_PREFLIGHT, "users", "preflight-source-users",
                 {"target_tenant_id": str(loaded.config.target.tenant_id)}),
                (P.TARGET_PREFLIGHT, "users", "preflight-target-users",
                 {"delivery_domain": loaded.config.target_delivery_domain}),
            ):
                numbered = plan[step]
                tree.add(plan.chunk_path(step, stem, number),
                         renderer.render_chunk(numbered, number, block, result_stem=result_stem, **context),
                         "script", step=numbered)

        prepared = _prepare(loaded, export, display, notice_problems, on_chunk=write_chunk, progress=progress,
                            workers=pool)
        groups = _check_prepared(loaded, prepared, notice)
        # RUNBOOK.md names the export by its hash: reading the file again is a job for a worker
        # while this process renders, not a wait at the end.
        export_sha256 = pool.submit(file_sha256, export)
        _write_steps(tree, renderer, loaded, prepared, plan, notice, groups, pool)
        readme = _runbook_markdown(tree, loaded, prepared, plan, export.name, export_sha256.result())
        if _stamp(export) != stamp:
            # The scripts, the hash in RUNBOOK.md and a second reading (see prepare) must all
            # come from the same file.
            raise InputError([Problem(display, None, "file",
                                      "changed while the runbook was being rendered; render again")])
        tree.add("RUNBOOK.md", readme, "runbook")
        files = tree.commit({
            "runbook_version": __version__,
            "source_tenant": str(loaded.config.source.tenant_id),
            "target_tenant": str(loaded.config.target.tenant_id),
            "steps": _manifest_steps(loaded, plan),
            "runner": loaded.config.runner.model_dump(mode="json"),
            "app_secret": loaded.config.app.secret,
        })
    return Rendered(loaded, prepared, prepared.warnings, out_dir=tree.final, files=files)


def _stamp(path: Path) -> tuple[int, int] | None:
    """Size and modification time: what changes when someone saves the file."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


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


def _write_steps(tree: OutputTree, renderer: ScriptRenderer, loaded: LoadedConfig, prepared: Prepared,
                 plan: Plan, notice: Notice | None, groups: list[dict[str, object]], pool: Workers) -> None:
    """Render every step except the MailUser and pre-flight chunks, written while streaming.

    The scripts that list every mailbox (scope group, test, licences) and the per-batch scripts
    (snapshots, notices, batch CSV and scripts) are most of the work; they go to the worker
    processes first and are rendered while this process does the rest.
    """
    cfg = loaded.config
    jobs: list[Task[list[FileEntry]]] = []
    targets = [a.target_primary for a in prepared.assignments]

    def add_in_worker(step: P.Step, **context: object) -> None:
        """A step that lists every mailbox: quoting 100,000 addresses is worth a worker."""
        jobs.append(pool.submit(render_step, StepJob(loaded, tree.root, plan[step], context)))

    # The longest jobs first, so that the workers finish together.
    add_in_worker(P.SOURCE_SCOPE, groups=groups, result_file="scope-group.csv")
    add_in_worker(P.TARGET_TEST, endpoint_name=cfg.endpoint.name,
                  mailboxes=targets, result_file="test-migration-server.csv")
    if cfg.licensing is not None:
        side = cfg.licensing.side
        users = targets if side == "target" else [a.source_upn or a.source_primary for a in prepared.assignments]
        add_in_worker(P.TARGET_LICENSES if side == "target" else P.SOURCE_LICENSES,
                      licensing={"SkuPartNumber": cfg.licensing.sku_part_number,
                                 "UsageLocation": cfg.licensing.usage_location},
                      users=users, result_file="licenses.csv")
    by_batch: dict[str, list[Assignment]] = {b.name: [] for b in prepared.batches}
    for assignment in prepared.assignments:
        by_batch[assignment.batch].append(assignment)
    for batch in prepared.batches:
        batch_users = by_batch.pop(batch.name)
        # Lists of strings: they pickle at C speed, where each Assignment costs two Python calls.
        jobs.append(pool.submit(render_batch, BatchJob(
            loaded, plan, notice, tree.root, batch, [a.source_primary for a in batch_users],
            [a.display_name for a in batch_users])))
    app = {
        "AppId": str(cfg.app.app_id),
        "DisplayName": cfg.app.display_name,
        "RedirectUri": "https://office.com",
        "SecretKind": cfg.app.secret_kind,
        "SecretName": cfg.app.secret_name,
        "SecretReference": cfg.app.secret,
    }
    consent_url = cfg.consent_url()
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

    def add(step: P.Step, path: str | None = None, **context: object) -> None:
        numbered = plan[step]
        tree.add(path or numbered.path, renderer.render(numbered, **context), "script", step=numbered)

    add(P.TARGET_APP, app=app, consent_url=consent_url)
    add(P.SOURCE_VERIFY_CONSENT, app=app, consent_url=consent_url)
    add(P.TARGET_CUSTOMIZATION)
    add(P.TARGET_ENDPOINT, endpoint=endpoint, secret={"Kind": cfg.app.secret_kind, "Name": cfg.app.secret_name})
    add(P.TARGET_RELATIONSHIP, relationship=to_source)
    add(P.SOURCE_RELATIONSHIP, relationship=to_target)
    if cfg.sync is not None:
        sync = {
            "Name": cfg.sync_name,
            "SourceTenantId": str(cfg.source.tenant_id),
            "TargetTenantId": str(cfg.target.tenant_id),
            "Users": list(cfg.sync.users),
            "Groups": list(cfg.sync.groups),
            "TestUser": cfg.sync.test_user,
            "Start": cfg.sync.start,
        }
        add(P.TARGET_SYNC, sync=sync)
        add(P.SOURCE_SYNC, sync=sync)
        add(P.SOURCE_SYNC_STATUS, sync=sync, result_file="cross-tenant-sync-status.csv")
    add(P.SOURCE_EXPORT, scope_groups=group_names, csv_name=EXPORT_CSV_NAME, xml_name=EXPORT_XML_NAME)
    for step, context in (
        (P.SOURCE_PREFLIGHT, {"relationship": to_target}),
        (P.TARGET_PREFLIGHT, {"relationship": to_source, "endpoint": endpoint,
                              "domains": sorted({*cfg.domains.values(), cfg.target_delivery_domain})}),
    ):
        add(step, plan.file_path(step, "organization.ps1"), template_name=P.PREFLIGHT_ORGANIZATION_TEMPLATES[step.side],
            result_file=f"preflight-{step.side}-organization.csv", **context)

    snapshot_app = {"Purpose": "snapshots", "Roles": list(P.SNAPSHOT_ROLES)}
    source_apps = [{**snapshot_app, "DisplayName": f"runbook mailbox snapshots ({cfg.source.name})"}]
    if cfg.notify is not None:
        source_apps.append({"Purpose": "notices", "Roles": list(P.NOTICE_ROLES),
                            "DisplayName": f"runbook migration notices ({cfg.source.name})",
                            "AppId": str(cfg.notify.app_id) if cfg.notify.app_id else None})
    add(P.SOURCE_GRAPH_APPS, apps=[{"AppId": None, **a} for a in source_apps])
    add(P.TARGET_GRAPH_APPS, apps=[{"AppId": None, **snapshot_app,
                                    "DisplayName": f"runbook mailbox snapshots ({cfg.target.name})"}])
    if cfg.notify is not None:
        add(P.SOURCE_NOTICE_POLICY, policy={"Sender": cfg.notify.sender,
                                            "AppId": str(cfg.notify.app_id) if cfg.notify.app_id else None})

    add(P.TARGET_STATUS, batch_names=batch_names, result_file="batch-status.csv")
    add(P.TARGET_REMOVE, batch_names=batch_names)
    add(P.TARGET_TEARDOWN, endpoint_name=cfg.endpoint.name, relationship=to_source)
    add(P.SOURCE_TEARDOWN, relationship=to_target, scope_groups=group_names)

    chunk_paths = [plan.chunk_path(P.TARGET_MAILUSERS, "mailusers", n) for n in range(1, prepared.chunk_count + 1)]
    tree.add_pieces(MAPPING_FILE, csv_pieces(
        ["Line", "SourcePrimarySmtpAddress", "TargetPrimarySmtpAddress", "Batch", "MailUserScript"],
        ([a.line, a.source_primary, a.target_primary, a.batch, chunk_paths[a.chunk - 1]]
         for a in prepared.assignments)), "mapping")
    for entries in gather(jobs):
        for entry in entries:
            tree.register(entry)


def _manifest_steps(loaded: LoadedConfig, plan: Plan) -> list[dict[str, object]]:
    """The steps in run order, for ``runbook run``: which tenant, which module, what to confirm."""
    cfg = loaded.config
    steps: list[dict[str, object]] = []
    for order, step in enumerate(plan, 1):
        tenant = cfg.tenant(step.side)
        entry: dict[str, object] = {"order": order, "id": step.id, "side": step.side, "title": step.title,
                                    "module": step.module, "tenant_id": str(tenant.tenant_id),
                                    "initial_domain": tenant.initial_domain}
        if step.module == "portal":
            entry["instructions"] = f"Open {cfg.consent_url()} as a {step.who} of the source tenant and accept."
        steps.append(entry)
    return steps


def _runbook_markdown(tree: OutputTree, loaded: LoadedConfig, prepared: Prepared, plan: Plan, export_name: str,
                      export_sha256: str) -> bytes:
    """RUNBOOK.md: the checklist a person follows, with every script's sha256."""
    cfg = loaded.config
    by_step: dict[tuple[str | None, str], list[FileEntry]] = {}
    for entry in tree.ordered():
        by_step.setdefault((entry.step, entry.kind), []).append(entry)
    steps = []
    for number, step in enumerate(plan, 1):
        tenant = cfg.tenant(step.side)
        steps.append({"number": number, "step": step, "files": by_step.get((step.id, "script"), []),
                      "csvs": by_step.get((step.id, "batch-csv"), []), "tenant": tenant})
    by_batch = [
        {"batch": b, "script": plan.file_path(P.TARGET_BATCHES, f"{b.slug}.ps1"),
         "csv": plan.file_path(P.TARGET_BATCHES, f"{b.slug}.csv")}
        for b in prepared.batches
    ]
    return render_markdown(
        "RUNBOOK.md.jinja",
        cfg=cfg,
        steps=steps,
        batches=by_batch,
        prepared=prepared,
        export_name=export_name,
        export_sha256=export_sha256,
        mapping_file=MAPPING_FILE,
        consent_url=cfg.consent_url(),
        version=__version__,
    )
