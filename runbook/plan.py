"""The ordered steps of a cross-tenant mailbox migration, per tenant (DESIGN §4 and §5).

A step is one thing one tenant's admin does: a script, a folder of scripts (MailUser chunks,
one script per batch) or a portal action. Which steps a runbook has depends on the config
(``[sync]`` and ``[notify]`` add theirs), so :class:`Plan` numbers each side's steps for one
config (``target/03-...``) and keeps the order in which the two sides interleave.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from .config import Config

Side = Literal["source", "target"]
Module = Literal["exo", "graph", "portal"]

GRAPH_APP_SCOPES = ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All")
GRAPH_CONSENT_SCOPES = ("Application.Read.All",)
SYNC_TARGET_SCOPES = ("Policy.ReadWrite.CrossTenantAccess",)
SYNC_SOURCE_SCOPES = ("Policy.ReadWrite.CrossTenantAccess", "Application.ReadWrite.All",
                      "Synchronization.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "User.Read.All",
                      "Group.Read.All")
SYNC_STATUS_SCOPES = ("Application.Read.All", "Synchronization.Read.All", "AuditLog.Read.All")
LICENSE_SCOPES = ("User.ReadWrite.All", "Organization.Read.All")
#: Application permissions of the app-only steps (they read or send as other mailboxes).
SNAPSHOT_ROLES = ("Mail.ReadBasic.All",)
NOTICE_ROLES = ("Mail.Send",)


@dataclass(frozen=True)
class Step:
    """One entry of the runbook; ``number`` is given by the :class:`Plan` it belongs to."""

    key: str
    side: Side
    title: str
    who: str
    verify: str
    module: Module
    template: str | None = None
    folder: bool = False
    scopes: tuple[str, ...] = ()
    """Delegated Microsoft Graph permissions an admin's session needs."""
    roles: tuple[str, ...] = ()
    """Microsoft Graph application permissions, for steps that run app-only."""
    number: int = 0

    @property
    def stem(self) -> str:
        return f"{self.number:02d}-{self.key}"

    @property
    def path(self) -> str:
        """The script (``side/NN-key.ps1``) or folder (``side/NN-key``) this step writes."""
        if not self.number:
            raise ValueError(f"{self.id} has no number outside a plan")
        return f"{self.side}/{self.stem}" + ("" if self.folder else ".ps1")

    @property
    def id(self) -> str:
        return f"{self.side}-{self.key}"

    @property
    def permissions(self) -> str:
        """What RUNBOOK.md says the step's session needs."""
        if self.roles:
            return "Microsoft Graph application permissions " + ", ".join(self.roles) + " (app-only)"
        if self.scopes:
            return "Microsoft Graph delegated permissions " + ", ".join(self.scopes)
        return ""


EXO_ADMIN = "Exchange Administrator"
GRAPH_APP_ADMIN = "Application Administrator and Privileged Role Administrator (or Global Administrator)"

TARGET_APP = Step(
    "migration-app", "target", "Register the migration app", GRAPH_APP_ADMIN,
    "The app is multi-tenant, redirects to https://office.com, holds Office 365 Exchange Online / "
    "Mailbox.Migration with admin consent, and has a valid client secret stored where [app] secret points.",
    "graph", "target-migration-app.ps1.jinja", scopes=GRAPH_APP_SCOPES)
SOURCE_CONSENT = Step(
    "admin-consent", "source", "Consent to the migration app", "Global Administrator",
    "The browser lands on https://office.com after the consent prompt; the next script confirms it.",
    "portal")
SOURCE_VERIFY_CONSENT = Step(
    "verify-consent", "source", "Confirm the consent", "Global Reader or Application Administrator",
    "The script reports that the app holds Mailbox.Migration in the source tenant.",
    "graph", "source-verify-consent.ps1.jinja", scopes=GRAPH_CONSENT_SCOPES)
TARGET_CUSTOMIZATION = Step(
    "organization-customization", "target", "Enable organization customization if dehydrated", EXO_ADMIN,
    "Get-OrganizationConfig shows IsDehydrated False.",
    "exo", "target-organization-customization.ps1.jinja")
TARGET_ENDPOINT = Step(
    "migration-endpoint", "target", "Create the migration endpoint", EXO_ADMIN,
    "Get-MigrationEndpoint lists the endpoint with the source initial domain as RemoteTenant.",
    "exo", "target-migration-endpoint.ps1.jinja")
TARGET_RELATIONSHIP = Step(
    "organization-relationship", "target", "Allow inbound moves (organization relationship)", EXO_ADMIN,
    "Get-OrganizationRelationship shows MailboxMoveEnabled True and MailboxMoveCapability Inbound "
    "for the source tenant id.",
    "exo", "target-organization-relationship.ps1.jinja")
SOURCE_SCOPE = Step(
    "scope-group", "source", "Create the scope group with the mailboxes to move", EXO_ADMIN,
    "The result CSV shows every mailbox as member or added, and no warnings about extra members.",
    "exo", "source-scope-group.ps1.jinja")
SOURCE_RELATIONSHIP = Step(
    "organization-relationship", "source", "Allow outbound moves (organization relationship)", EXO_ADMIN,
    "Get-OrganizationRelationship shows MailboxMoveCapability RemoteOutbound, the app id as "
    "OAuthApplicationId and the scope group in MailboxMovePublishedScopes.",
    "exo", "source-organization-relationship.ps1.jinja")
TARGET_SYNC = Step(
    "cross-tenant-sync", "target", "Allow cross-tenant synchronization from the source",
    "Security Administrator",
    "The partner configuration for the source tenant allows inbound user synchronization and "
    "automatic redemption.",
    "graph", "target-cross-tenant-sync.ps1.jinja", scopes=SYNC_TARGET_SCOPES)
SOURCE_SYNC = Step(
    "cross-tenant-sync", "source", "Configure cross-tenant synchronization to the target",
    "Security Administrator, Hybrid Identity Administrator and Cloud Application Administrator",
    "Credentials validate, the users and groups in scope are assigned, the job is started.",
    "graph", "source-cross-tenant-sync.ps1.jinja", scopes=SYNC_SOURCE_SCOPES)
SOURCE_SYNC_STATUS = Step(
    "cross-tenant-sync-status", "source", "Check cross-tenant synchronization",
    "Security Reader or Reports Reader (with Application Administrator to read the job)",
    "The job is Active with no quarantine, and the result CSV shows the users provisioned in the target.",
    "graph", "source-cross-tenant-sync-status.ps1.jinja", scopes=SYNC_STATUS_SCOPES)
SOURCE_EXPORT = Step(
    "export-mailboxes", "source", "Export the mailboxes' current properties", EXO_ADMIN,
    "Render the runbook again from the new export; if anything changed, review the new MailUser scripts.",
    "exo", "source-export-mailboxes.ps1.jinja")
SOURCE_PREFLIGHT = Step(
    "preflight", "source", "Pre-flight checks of the source mailboxes (read-only)",
    "Exchange Administrator (or View-Only Organization Management)",
    "Every findings CSV is free of fail rows: no holds, every mailbox in the scope group, GUIDs as "
    "exported. Note which mailboxes hold the migration licence on the source side.",
    "exo", "source-preflight-users.ps1.jinja", folder=True)
TARGET_MAILUSERS = Step(
    "mailusers", "target", "Create the target MailUsers", "Exchange Administrator (or Mail Recipients)",
    "Each result CSV lists every user as created, stamped or exists; no failed rows. Then license "
    "the Cross Tenant User Data Migration add-on (source or target) before the batches start.",
    "exo", "target-mailusers.ps1.jinja", folder=True)


def _licenses_step(side: Side, verify_licence: str) -> Step:
    """The add-on step is the same on either side; only where its licence shows afterwards differs."""
    return Step(
        "licenses", side, "Assign the Cross Tenant User Data Migration add-on",
        "License Administrator (or User Administrator)",
        "The result CSV lists every user as assigned or already licensed; " + verify_licence,
        "graph", "licenses.ps1.jinja", scopes=LICENSE_SCOPES)


TARGET_LICENSES = _licenses_step("target", "the pre-flight then shows the licence on the target side.")
SOURCE_LICENSES = _licenses_step(
    "source", "a re-run of the source pre-flight then shows the licence on the source side.")
TARGET_PREFLIGHT = Step(
    "preflight", "target", "Pre-flight checks of the target MailUsers (read-only)",
    "Exchange Administrator (or View-Only Organization Management)",
    "Every findings CSV is free of fail rows; every user holds the migration licence on the source "
    "or the target side.",
    "exo", "target-preflight-users.ps1.jinja", folder=True)
TARGET_TEST = Step(
    "test-migration-server", "target", "Test the endpoint against the MailUsers", EXO_ADMIN,
    "Every row of the result CSV is success.",
    "exo", "target-test-migration-server.ps1.jinja")
SOURCE_GRAPH_APPS = Step(
    "graph-apps", "source", "Register the apps for the Microsoft Graph mail steps", GRAPH_APP_ADMIN,
    "Each app exists with exactly the listed application permissions, consented; add its certificate.",
    "graph", "graph-apps.ps1.jinja", scopes=GRAPH_APP_SCOPES)
TARGET_GRAPH_APPS = Step(
    "graph-apps", "target", "Register the app for the after-move snapshots", GRAPH_APP_ADMIN,
    "The app exists with exactly Mail.ReadBasic.All, consented; add its certificate.",
    "graph", "graph-apps.ps1.jinja", scopes=GRAPH_APP_SCOPES)
SOURCE_NOTICE_POLICY = Step(
    "notice-access-policy", "source", "Limit the notice app to the sender mailbox", EXO_ADMIN,
    "Test-ApplicationAccessPolicy reports AccessCheckResult Granted for the sender only.",
    "exo", "source-notice-access-policy.ps1.jinja")
SOURCE_SNAPSHOT = Step(
    "snapshot-before", "source", "Snapshot the mailboxes' folders before the move",
    "Connect app-only with the snapshot app",
    "Each snapshot CSV lists every mailbox of the batch; keep them for the comparison after the move.",
    "graph", "snapshot.ps1.jinja", folder=True, roles=SNAPSHOT_ROLES)
TARGET_BATCHES = Step(
    "new-migration-batches", "target", "Create the migration batches", EXO_ADMIN,
    "Get-MigrationBatch lists each batch; with AutoStart it moves to Syncing.",
    "exo", "target-new-migration-batch.ps1.jinja", folder=True)
SOURCE_NOTICES = Step(
    "notices", "source", "Tell each batch's users about their move", "Connect app-only with the notice app",
    "Run each batch's script with -WhatIf to see the recipients, then without; the result CSV shows "
    "every user sent.",
    "graph", "source-notices.ps1.jinja", folder=True, roles=NOTICE_ROLES)
TARGET_STATUS = Step(
    "batch-status", "target", "Follow the batches", EXO_ADMIN,
    "Run until every batch is Synced; investigate any user with an Error in the report.",
    "exo", "target-batch-status.ps1.jinja")
TARGET_COMPLETE = Step(
    "complete-migration-batches", "target", "Complete the batches (cut-over)", EXO_ADMIN,
    "The status report shows Completed for every user; the source mailboxes are now MailUsers "
    "forwarding to the target delivery domain.",
    "exo", "target-complete-migration-batch.ps1.jinja", folder=True)
TARGET_SNAPSHOT = Step(
    "snapshot-after", "target", "Snapshot the mailboxes' folders after the move",
    "Connect app-only with the snapshot app",
    "Compare with the snapshot from before: runbook compare BEFORE.csv AFTER.csv reports nothing short.",
    "graph", "snapshot.ps1.jinja", folder=True, roles=SNAPSHOT_ROLES)
TARGET_REMOVE = Step(
    "remove-migration-batches", "target", "Remove the completed batches", EXO_ADMIN,
    "Get-MigrationBatch no longer lists this runbook's batches.",
    "exo", "target-remove-migration-batches.ps1.jinja")
TARGET_TEARDOWN = Step(
    "teardown", "target", "Tear down the target side", EXO_ADMIN,
    "The endpoint and the relationship to the source are gone.",
    "exo", "target-teardown.ps1.jinja")
SOURCE_TEARDOWN = Step(
    "teardown", "source", "Tear down the source side", EXO_ADMIN,
    "The relationship to the target is gone.",
    "exo", "source-teardown.ps1.jinja")

Condition = Callable[[Config], bool]


def _always(_: Config) -> bool:
    return True


def _with_sync(config: Config) -> bool:
    return config.sync is not None


def _with_notify(config: Config) -> bool:
    return config.notify is not None


def _licensed_on(side: str) -> Condition:
    def condition(config: Config) -> bool:
        return config.licensing is not None and config.licensing.side == side

    return condition


#: The order a person follows, with the condition under which each step is in the runbook.
STEPS: tuple[tuple[Step, Condition], ...] = (
    (TARGET_APP, _always),
    (SOURCE_CONSENT, _always),
    (SOURCE_VERIFY_CONSENT, _always),
    (TARGET_CUSTOMIZATION, _always),
    (TARGET_ENDPOINT, _always),
    (TARGET_RELATIONSHIP, _always),
    (SOURCE_SCOPE, _always),
    (SOURCE_RELATIONSHIP, _always),
    (TARGET_SYNC, _with_sync),
    (SOURCE_SYNC, _with_sync),
    (SOURCE_SYNC_STATUS, _with_sync),
    (SOURCE_EXPORT, _always),
    (SOURCE_PREFLIGHT, _always),
    (SOURCE_LICENSES, _licensed_on("source")),
    (TARGET_MAILUSERS, _always),
    (TARGET_LICENSES, _licensed_on("target")),
    (TARGET_PREFLIGHT, _always),
    (TARGET_TEST, _always),
    (SOURCE_GRAPH_APPS, _always),
    (TARGET_GRAPH_APPS, _always),
    (SOURCE_NOTICE_POLICY, _with_notify),
    (SOURCE_SNAPSHOT, _always),
    (TARGET_BATCHES, _always),
    (SOURCE_NOTICES, _with_notify),
    (TARGET_STATUS, _always),
    (TARGET_COMPLETE, _always),
    (TARGET_SNAPSHOT, _always),
    (TARGET_REMOVE, _always),
    (TARGET_TEARDOWN, _always),
    (SOURCE_TEARDOWN, _always),
)


class Plan:
    """The steps of one runbook, in order, each numbered within its side."""

    def __init__(self, config: Config) -> None:
        counters = {"source": 0, "target": 0}
        steps = []
        for step, condition in STEPS:
            if not condition(config):
                continue
            if step.module != "portal":
                counters[step.side] += 1
            steps.append(dataclasses.replace(step, number=counters[step.side]))
        self.steps = steps
        self._by_id = {step.id: step for step in steps}

    def __getitem__(self, step: Step) -> Step:
        """The numbered step of this plan for one of the step constants above."""
        return self._by_id[step.id]

    def __contains__(self, step: Step) -> bool:
        return step.id in self._by_id

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def order(self) -> list[str]:
        return [step.id for step in self.steps]

    def file_path(self, step: Step, name: str) -> str:
        """A file inside a folder step: ``target/10-new-migration-batches/001-Pilot.csv``."""
        return f"{self[step].path}/{name}"

    def chunk_path(self, step: Step, stem: str, number: int) -> str:
        """A per-chunk script inside a folder step: ``target/05-mailusers/mailusers-0001.ps1``."""
        return self.file_path(step, f"{stem}-{number:04d}.ps1")


#: The organization-level script of each pre-flight step, beside the per-user chunks.
PREFLIGHT_ORGANIZATION_TEMPLATES = {
    "source": "source-preflight-organization.ps1.jinja",
    "target": "target-preflight-organization.ps1.jinja",
}
