"""The source mailbox row, and turning a raw row from any export form into one.

Readers (one per export form) only decode their format; they yield :class:`RawRow` values with
canonical column names. :func:`to_mailbox` does the checks every form shares, so a CSV and a
CLIXML export with the same mistake get the same message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..addresses import AddressError, validate_address
from ..errors import Problem

#: Columns a mailbox export must have (DESIGN §3).
REQUIRED_COLUMNS = (
    "PrimarySmtpAddress",
    "Alias",
    "DisplayName",
    "Name",
    "ExchangeGuid",
    "ArchiveGuid",
    "LegacyExchangeDN",
    "EmailAddresses",
)
#: Columns used when present.
OPTIONAL_COLUMNS = (
    "SamAccountName",
    "FirstName",
    "LastName",
    "RecipientTypeDetails",
    "UserPrincipalName",
    "LitigationHoldEnabled",
    "InPlaceHolds",
    "ArchiveStatus",
    "DelayHoldApplied",
    "DelayReleaseHoldApplied",
    "ComplianceTagHoldApplied",
    "MailboxLocations",
    *(f"CustomAttribute{i}" for i in range(1, 16)),
)
_HOLD_FLAGS = ("DelayHoldApplied", "DelayReleaseHoldApplied", "ComplianceTagHoldApplied")
KNOWN_COLUMNS = {name.lower(): name for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)}

#: What a multi-valued property looks like when it was exported without being joined.
UNJOINED_MARKERS = (
    "System.Collections.ArrayList",
    "System.Object[]",
    "System.String[]",
    "Microsoft.Exchange.Data.ProxyAddressCollection",
    "Microsoft.Exchange.Data.MultiValuedProperty",
    "Deserialized.Microsoft.Exchange.Data.ProxyAddressCollection",
)
_UNJOINED = frozenset(UNJOINED_MARKERS)
JOIN_FIX = (
    "the export wrote the collection's type name instead of its values; export with "
    "Select-Object ..., @{Name='EmailAddresses'; Expression={$_.EmailAddresses -join ';'}} "
    "or use Export-Clixml, or run the source export script this runbook renders"
)

_LEGACY_DN = re.compile(r"^/o=[^/]+(/ou=[^/]+)*(/cn=[^/]+)+$", re.IGNORECASE)
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
_GUID = re.compile(r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?")

RawValue = str | Sequence[str] | None


@dataclass(frozen=True, slots=True)
class RawRow:
    """One record as a reader decoded it: canonical column name -> text or list of texts."""

    line: int
    values: Mapping[str, RawValue]


@dataclass(slots=True)
class SourceMailbox:
    """A source mailbox with the properties the move needs, already syntax-checked.

    GUIDs are kept as lower-case canonical strings: they are compared and written out, never
    computed with, and a 100,000-row export should not pay for parsing and formatting them.
    """

    line: int
    primary_smtp_address: str
    alias: str
    display_name: str
    name: str
    exchange_guid: str
    archive_guid: str | None
    legacy_exchange_dn: str
    email_addresses: tuple[str, ...]
    first_name: str = ""
    last_name: str = ""
    user_principal_name: str = ""
    recipient_type_details: str = ""
    litigation_hold_enabled: bool | None = None
    in_place_holds: tuple[str, ...] = ()
    other_holds: tuple[str, ...] = ()
    """Names of the hold flag columns that read True (DelayHoldApplied, ...)."""
    aux_archive_count: int | None = None
    """Auxiliary archives counted in MailboxLocations, when the export has that column."""
    extra: Mapping[str, str] = field(default_factory=dict)


class _Row:
    """Reads the fields of one raw row, collecting problems instead of stopping at the first."""

    __slots__ = ("values", "line", "display", "problems")

    def __init__(self, row: RawRow, display: str) -> None:
        self.values = row.values
        self.line = row.line
        self.display = display
        self.problems: list[Problem] = []

    def bad(self, column: str, message: str) -> None:
        self.problems.append(Problem(self.display, self.line, column, message))

    def text(self, column: str, required: bool = False) -> str:
        value = self.values.get(column)
        if value is None:
            value = ""
        elif type(value) is not str:
            if isinstance(value, str):
                value = str(value)
            else:
                self.bad(column, "expected one value, found a list")
                return ""
        if value in _UNJOINED:
            self.bad(column, JOIN_FIX.replace("EmailAddresses", column))
            return ""
        if "\x00" in value:
            self.bad(column, "contains a NUL character")
            return ""
        if required and not value.strip():
            self.bad(column, "is empty")
        return value

    def listing(self, column: str) -> tuple[str, ...] | None:
        """The entries of a multi-valued column; ``None`` if the column is absent."""
        value = self.values.get(column)
        if value is None:
            return None
        if isinstance(value, str):
            if value.strip() in _UNJOINED:
                self.bad(column, JOIN_FIX.replace("EmailAddresses", column))
                return ()
            parts: Sequence[str] = value.split(";")
        else:
            parts = value
        out = []
        for part in parts:
            part = str(part).strip()
            if "\x00" in part:
                self.bad(column, "contains a NUL character")
            elif part:
                out.append(part)
        return tuple(out)

    def guid(self, column: str, optional: bool) -> str | None:
        raw = self.text(column).strip()
        if not raw:
            if not optional:
                self.bad(column, "is empty; the MailUser needs the source mailbox's ExchangeGuid")
            return None
        match = _GUID.fullmatch(raw)
        if match is None:
            self.bad(column, "not a GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
            return None
        value = match.group(1).lower()
        if value == ZERO_GUID:
            if not optional:
                self.bad(column, "is all zeros; the source object has no mailbox")
            return None
        return value

    def flag(self, column: str) -> bool | None:
        raw = self.text(column).strip().lower()
        if raw in ("true", "false"):
            return raw == "true"
        if raw:
            self.bad(column, "expected True or False")
        return None


def to_mailbox(
    raw: RawRow, display: str, keep: Mapping[str, str] | None = None
) -> tuple[SourceMailbox | None, list[Problem]]:
    """Check a raw row and build the mailbox; every problem of the row is returned.

    ``keep`` maps names in :attr:`SourceMailbox.extra` to further columns to carry along.
    """
    row = _Row(raw, display)
    primary = row.text("PrimarySmtpAddress", required=True).strip()
    if primary:
        try:
            primary = validate_address(primary)
        except AddressError as exc:
            row.bad("PrimarySmtpAddress", str(exc))
    alias = row.text("Alias", required=True)
    display_name = row.text("DisplayName")
    name = row.text("Name", required=True)
    exchange_guid = row.guid("ExchangeGuid", optional=False)
    archive_guid = row.guid("ArchiveGuid", optional=True)
    legacy_dn = row.text("LegacyExchangeDN").strip()
    if not legacy_dn:
        row.bad("LegacyExchangeDN", "is empty; the MailUser needs it as an X500 address so old replies still arrive")
    elif not _LEGACY_DN.match(legacy_dn):
        row.bad("LegacyExchangeDN", "does not look like a LegacyExchangeDN (/o=.../ou=.../cn=...)")
    reported = len(row.problems)
    addresses = row.listing("EmailAddresses") or ()
    if not addresses and len(row.problems) == reported:
        row.bad("EmailAddresses", "is empty; a mailbox has at least its primary SMTP proxy")
    locations = row.listing("MailboxLocations")
    extra = {}
    if keep:
        for key, column in keep.items():
            value = raw.values.get(column)
            extra[key] = value if isinstance(value, str) else ";".join(value or ())
    mailbox = SourceMailbox(
        line=raw.line,
        primary_smtp_address=primary,
        alias=alias,
        display_name=display_name or name,
        name=name,
        exchange_guid=exchange_guid or ZERO_GUID,
        archive_guid=archive_guid,
        legacy_exchange_dn=legacy_dn,
        email_addresses=addresses,
        first_name=row.text("FirstName"),
        last_name=row.text("LastName"),
        user_principal_name=row.text("UserPrincipalName").strip(),
        recipient_type_details=row.text("RecipientTypeDetails").strip(),
        litigation_hold_enabled=row.flag("LitigationHoldEnabled"),
        in_place_holds=row.listing("InPlaceHolds") or (),
        other_holds=tuple(c for c in _HOLD_FLAGS if row.flag(c)),
        aux_archive_count=None if locations is None else sum(1 for x in locations if "auxarchive" in x.lower()),
        extra=extra,
    )
    if row.problems or exchange_guid is None:
        return None, row.problems
    return mailbox, []
