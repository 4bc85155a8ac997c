"""The ordered steps of a cross-tenant mailbox migration, per tenant (DESIGN §4).

A step is one thing one tenant's admin does: a script, a folder of scripts (MailUser chunks,
one script per batch) or a portal action. Each side numbers its own steps (``target/03-...``);
the runbook interleaves the two sides in the order the move needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Side = Literal["source", "target"]
Module = Literal["exo", "graph", "portal"]

GRAPH_APP_SCOPES = ("Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All")
GRAPH_CONSENT_SCOPES = ("Application.Read.All",)


@dataclass(frozen=True)
class Step:
    """One entry of the runbook."""

    key: str
    side: Side
    number: int
    title: str
    who: str
    verify: str
    module: Module
    template: str | None = None
    folder: bool = False
    scopes: tuple[str, ...] = ()
    """Delegated Microsoft Graph permissions the step's session needs."""

    @property
    def stem(self) -> str:
        return f"{self.number:02d}-{self.key}"

    @property
    def path(self) -> str:
        """The script (``side/NN-key.ps1``) or folder (``side/NN-key``) this step writes."""
        return f"{self.side}/{self.stem}" + ("" if self.folder else ".ps1")

    @property
    def id(self) -> str:
        return f"{self.side}-{self.key}"


EXO_ADMIN = "Exchange Administrator"

TARGET_APP = Step(
    "migration-app", "target", 1, "Register the migration app",
    "Application Administrator and Privileged Role Administrator (or Global Administrator)",
    "The app is multi-tenant, redirects to https://office.com, holds Office 365 Exchange Online / "
    "Mailbox.Migration with admin consent, and has a valid client secret stored where [app] secret points.",
    "graph", "target-migration-app.ps1.jinja", scopes=GRAPH_APP_SCOPES)
SOURCE_CONSENT = Step(
    "admin-consent", "source", 0, "Consent to the migration app",
    "Global Administrator",
    "The browser lands on https://office.com after the consent prompt; the next script confirms it.",
    "portal")
SOURCE_VERIFY_CONSENT = Step(
    "verify-consent", "source", 1, "Confirm the consent",
    "Global Reader or Application Administrator",
    "The script reports that the app holds Mailbox.Migration in the source tenant.",
    "graph", "source-verify-consent.ps1.jinja", scopes=GRAPH_CONSENT_SCOPES)
TARGET_CUSTOMIZATION = Step(
    "organization-customization", "target", 2, "Enable organization customization if dehydrated",
    EXO_ADMIN,
    "Get-OrganizationConfig shows IsDehydrated False.",
    "exo", "target-organization-customization.ps1.jinja")
TARGET_ENDPOINT = Step(
    "migration-endpoint", "target", 3, "Create the migration endpoint",
    EXO_ADMIN,
    "Get-MigrationEndpoint lists the endpoint with the source initial domain as RemoteTenant.",
    "exo", "target-migration-endpoint.ps1.jinja")
TARGET_RELATIONSHIP = Step(
    "organization-relationship", "target", 4, "Allow inbound moves (organization relationship)",
    EXO_ADMIN,
    "Get-OrganizationRelationship shows MailboxMoveEnabled True and MailboxMoveCapability Inbound "
    "for the source tenant id.",
    "exo", "target-organization-relationship.ps1.jinja")
SOURCE_SCOPE = Step(
    "scope-group", "source", 2, "Create the scope group with the mailboxes to move",
    EXO_ADMIN,
    "The result CSV shows every mailbox as member or added, and no warnings about extra members.",
    "exo", "source-scope-group.ps1.jinja")
SOURCE_RELATIONSHIP = Step(
    "organization-relationship", "source", 3, "Allow outbound moves (organization relationship)",
    EXO_ADMIN,
    "Get-OrganizationRelationship shows MailboxMoveCapability RemoteOutbound, the app id as "
    "OAuthApplicationId and the scope group in MailboxMovePublishedScopes.",
    "exo", "source-organization-relationship.ps1.jinja")
SOURCE_EXPORT = Step(
    "export-mailboxes", "source", 4, "Export the mailboxes' current properties",
    EXO_ADMIN,
    "Render the runbook again from the new export; if anything changed, review the new MailUser scripts.",
    "exo", "source-export-mailboxes.ps1.jinja")
SOURCE_PREFLIGHT = Step(
    "preflight", "source", 5, "Pre-flight checks of the source mailboxes (read-only)",
    "Exchange Administrator (or View-Only Organization Management)",
    "Every findings CSV is free of fail rows: no holds, every mailbox in the scope group, GUIDs as "
    "exported. Note which mailboxes hold the migration licence on the source side.",
    "exo", "source-preflight-users.ps1.jinja", folder=True)
TARGET_MAILUSERS = Step(
    "mailusers", "target", 5, "Create the target MailUsers",
    "Exchange Administrator (or Mail Recipients)",
    "Each result CSV lists every user as created, stamped or exists; no failed rows. Then license "
    "the Cross Tenant User Data Migration add-on (source or target) before the batches start.",
    "exo", "target-mailusers.ps1.jinja", folder=True)
TARGET_PREFLIGHT = Step(
    "preflight", "target", 6, "Pre-flight checks of the target MailUsers (read-only)",
    "Exchange Administrator (or View-Only Organization Management)",
    "Every findings CSV is free of fail rows; every user holds the migration licence on the source "
    "or the target side.",
    "exo", "target-preflight-users.ps1.jinja", folder=True)
TARGET_TEST = Step(
    "test-migration-server", "target", 7, "Test the endpoint against the MailUsers",
    EXO_ADMIN,
    "Every row of the result CSV is success.",
    "exo", "target-test-migration-server.ps1.jinja")
TARGET_BATCHES = Step(
    "new-migration-batches", "target", 8, "Create the migration batches",
    EXO_ADMIN,
    "Get-MigrationBatch lists each batch; with AutoStart it moves to Syncing.",
    "exo", "target-new-migration-batch.ps1.jinja", folder=True)
TARGET_STATUS = Step(
    "batch-status", "target", 9, "Follow the batches",
    EXO_ADMIN,
    "Run until every batch is Synced; investigate any user with an Error in the report.",
    "exo", "target-batch-status.ps1.jinja")
TARGET_COMPLETE = Step(
    "complete-migration-batches", "target", 10, "Complete the batches (cut-over)",
    EXO_ADMIN,
    "The status report shows Completed for every user; the source mailboxes are now MailUsers "
    "forwarding to the target delivery domain.",
    "exo", "target-complete-migration-batch.ps1.jinja", folder=True)
TARGET_REMOVE = Step(
    "remove-migration-batches", "target", 11, "Remove the completed batches",
    EXO_ADMIN,
    "Get-MigrationBatch no longer lists this runbook's batches.",
    "exo", "target-remove-migration-batches.ps1.jinja")
TARGET_TEARDOWN = Step(
    "teardown", "target", 12, "Tear down the target side",
    EXO_ADMIN,
    "The endpoint and the relationship to the source are gone.",
    "exo", "target-teardown.ps1.jinja")
SOURCE_TEARDOWN = Step(
    "teardown", "source", 6, "Tear down the source side",
    EXO_ADMIN,
    "The relationship to the target is gone.",
    "exo", "source-teardown.ps1.jinja")

#: The order a person follows; both admins can work alone between hand-overs.
STEPS: tuple[Step, ...] = (
    TARGET_APP,
    SOURCE_CONSENT,
    SOURCE_VERIFY_CONSENT,
    TARGET_CUSTOMIZATION,
    TARGET_ENDPOINT,
    TARGET_RELATIONSHIP,
    SOURCE_SCOPE,
    SOURCE_RELATIONSHIP,
    SOURCE_EXPORT,
    SOURCE_PREFLIGHT,
    TARGET_MAILUSERS,
    TARGET_PREFLIGHT,
    TARGET_TEST,
    TARGET_BATCHES,
    TARGET_STATUS,
    TARGET_COMPLETE,
    TARGET_REMOVE,
    TARGET_TEARDOWN,
    SOURCE_TEARDOWN,
)


def mailuser_chunk_path(number: int) -> str:
    return f"{TARGET_MAILUSERS.path}/mailusers-{number:04d}.ps1"


def preflight_chunk_path(step: Step, number: int) -> str:
    return f"{step.path}/users-{number:04d}.ps1"


#: The organization-level script of each pre-flight step, beside the per-user chunks.
PREFLIGHT_ORGANIZATION_TEMPLATES = {
    "source": "source-preflight-organization.ps1.jinja",
    "target": "target-preflight-organization.ps1.jinja",
}
