"""The source mailbox row, and turning a raw row from any export form into one.

Readers (one per export form) only decode their format; they yield :class:`RawRow` values with
canonical column names. :func:`to_mailbox` does the checks every form shares, so a CSV and a
CLIXML export with the same mistake get the same message.
"""

from __future__ import annotations

import re
import uuid
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
    *(f"CustomAttribute{i}" for i in range(1, 16)),
)
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
JOIN_FIX = (
    "the export wrote the collection's type name instead of its values; export with "
    "Select-Object ..., @{Name='EmailAddresses'; Expression={$_.EmailAddresses -join ';'}} "
    "or use Export-Clixml, or run the source export script this runbook renders"
)

_LEGACY_DN = re.compile(r"^/o=[^/]+(/ou=[^/]+)*(/cn=[^/]+)+$", re.IGNORECASE)
_ZERO_GUID = uuid.UUID(int=0)

RawValue = str | Sequence[str] | None


@dataclass(frozen=True, slots=True)
class RawRow:
    """One record as a reader decoded it: canonical column name -> text or list of texts."""

    line: int
    values: Mapping[str, RawValue]


@dataclass(frozen=True, slots=True)
class SourceMailbox:
    """A source mailbox with the properties the move needs, already syntax-checked."""

    line: int
    primary_smtp_address: str
    alias: str
    display_name: str
    name: str
    exchange_guid: uuid.UUID
    archive_guid: uuid.UUID | None
    legacy_exchange_dn: str
    email_addresses: tuple[str, ...]
    first_name: str = ""
    last_name: str = ""
    user_principal_name: str = ""
    recipient_type_details: str = ""
    litigation_hold_enabled: bool | None = None
    in_place_holds: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)


def to_mailbox(
    row: RawRow, display: str, keep: Mapping[str, str] | None = None
) -> tuple[SourceMailbox | None, list[Problem]]:
    """Check a raw row and build the mailbox; every problem of the row is returned.

    ``keep`` maps names in :attr:`SourceMailbox.extra` to further columns to carry along.
    """
    problems: list[Problem] = []
    values = row.values

    def bad(column: str, message: str) -> None:
        problems.append(Problem(display, row.line, column, message))

    def text(column: str, *, required: bool = False) -> str:
        value = values.get(column)
        if value is None:
            value = ""
        if not isinstance(value, str):
            bad(column, "expected one value, found a list")
            return ""
        if value in UNJOINED_MARKERS:
            bad(column, JOIN_FIX.replace("EmailAddresses", column))
            return ""
        if "\x00" in value:
            bad(column, "contains a NUL character")
            return ""
        if required and not value.strip():
            bad(column, "is empty")
        return value

    def listing(column: str) -> tuple[str, ...]:
        value = values.get(column)
        if value is None:
            return ()
        if isinstance(value, str):
            if value.strip() in UNJOINED_MARKERS:
                bad(column, JOIN_FIX.replace("EmailAddresses", column))
                return ()
            parts = value.split(";")
        else:
            parts = list(value)
        out = []
        for part in parts:
            part = part.strip()
            if "\x00" in part:
                bad(column, "contains a NUL character")
                continue
            if part:
                out.append(part)
        return tuple(out)

    def guid(column: str, *, optional: bool) -> uuid.UUID | None:
        raw = text(column).strip()
        if not raw:
            if not optional:
                bad(column, "is empty; the MailUser needs the source mailbox's ExchangeGuid")
            return None
        try:
            value = uuid.UUID(raw.strip("{}"))
        except ValueError:
            bad(column, "not a GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
            return None
        if value == _ZERO_GUID:
            if not optional:
                bad(column, "is all zeros; the source object has no mailbox")
            return None
        return value

    primary = text("PrimarySmtpAddress", required=True).strip()
    if primary:
        try:
            primary = validate_address(primary)
        except AddressError as exc:
            bad("PrimarySmtpAddress", str(exc))
    alias = text("Alias", required=True)
    display_name = text("DisplayName")
    name = text("Name", required=True)
    exchange_guid = guid("ExchangeGuid", optional=False)
    archive_guid = guid("ArchiveGuid", optional=True)
    legacy_dn = text("LegacyExchangeDN").strip()
    if not legacy_dn:
        bad("LegacyExchangeDN", "is empty; the MailUser needs it as an X500 address so old replies still arrive")
    elif not _LEGACY_DN.match(legacy_dn):
        bad("LegacyExchangeDN", "does not look like a LegacyExchangeDN (/o=.../ou=.../cn=...)")
    addresses = listing("EmailAddresses")
    if "EmailAddresses" in values and not addresses and not any(p.field == "EmailAddresses" for p in problems):
        bad("EmailAddresses", "is empty; a mailbox has at least its primary SMTP proxy")
    first = text("FirstName")
    last = text("LastName")
    upn = text("UserPrincipalName").strip()
    rtd = text("RecipientTypeDetails").strip()
    hold_raw = text("LitigationHoldEnabled").strip().lower()
    hold: bool | None = None
    if hold_raw in ("true", "false"):
        hold = hold_raw == "true"
    elif hold_raw:
        bad("LitigationHoldEnabled", "expected True or False")
    holds = listing("InPlaceHolds")
    extra = {}
    for name, column in (keep or {}).items():
        value = values.get(column)
        extra[name] = value if isinstance(value, str) else ";".join(value or ())

    if problems or exchange_guid is None:
        return None, problems
    return (
        SourceMailbox(
            line=row.line,
            primary_smtp_address=primary,
            alias=alias,
            display_name=display_name or name,
            name=name,
            exchange_guid=exchange_guid,
            archive_guid=archive_guid,
            legacy_exchange_dn=legacy_dn,
            email_addresses=addresses,
            first_name=first,
            last_name=last,
            user_principal_name=upn,
            recipient_type_details=rtd,
            litigation_hold_enabled=hold,
            in_place_holds=holds,
            extra=extra,
        ),
        [],
    )
