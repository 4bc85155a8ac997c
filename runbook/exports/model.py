"""The source mailbox row, and turning a raw row from any export form into one.

Readers (one per export form) only decode their format; they yield :class:`RawRow` values with
canonical column names. :func:`to_mailbox` does the checks every form shares, so a CSV and a
CLIXML export with the same mistake get the same message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

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
_HOLD_FLAG_SET = frozenset(_HOLD_FLAGS)
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
# Every marker contains one of these: two searches of a block instead of one per marker.
_MARKER_PARTS = ("System.", "Microsoft.Exchange.Data.")
assert all(any(part in marker for part in _MARKER_PARTS) for marker in UNJOINED_MARKERS)
JOIN_FIX = (
    "the export wrote the collection's type name instead of its values; export with "
    "Select-Object ..., @{Name='EmailAddresses'; Expression={$_.EmailAddresses -join ';'}} "
    "or use Export-Clixml, or run the source export script this runbook renders"
)

_LEGACY_DN = re.compile(r"^/o=[^/]+(/ou=[^/]+)*(/cn=[^/]+)+$", re.IGNORECASE)
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
_GUID = re.compile(r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?")

RawValue = str | Sequence[str] | None


class RawRow(NamedTuple):
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


#: Columns that may hold several values (a list from CLIXML or JSON, ``;``-joined in CSV).
LIST_COLUMNS = frozenset({"EmailAddresses", "InPlaceHolds", "MailboxLocations"})


def to_mailbox(
    raw: RawRow, display: str, keep: Mapping[str, str] | None = None, *, plain: bool = False
) -> tuple[SourceMailbox | None, list[Problem]]:
    """Check a raw row and build the mailbox; every problem of the row is returned.

    ``keep`` maps names in :attr:`SourceMailbox.extra` to further columns to carry along.
    ``plain``: the reader vouches that no cell is a list, holds NUL or is an unjoined type name
    (see :func:`plain_text`), so the per-cell scan is skipped.
    This runs once per row of exports with 100,000 rows, so it is written for speed: cells that
    no column may hold are set aside first (unless ``plain``), then each field is read plainly.
    """
    values = raw.values
    line = raw.line
    problems: list[Problem] = []
    spoiled = set() if plain else _spoiled(values, problems, display, line)
    if spoiled:
        values = {column: value for column, value in values.items() if column not in spoiled}
    # Every remaining cell of a column read as text is text or missing (None, from a CLIXML Nil).
    get = values.get

    def required(column: str) -> str:
        value = get(column) or ""
        if not value.strip() and column not in spoiled:
            problems.append(Problem(display, line, column, "is empty"))
        return value

    primary = required("PrimarySmtpAddress").strip()
    if primary:
        try:
            primary = validate_address(primary)
        except AddressError as exc:
            problems.append(Problem(display, line, "PrimarySmtpAddress", str(exc)))
    alias = required("Alias")
    name = required("Name")
    exchange_guid = _guid(get("ExchangeGuid") or "", "ExchangeGuid", False, problems, display, line, spoiled)
    archive_guid = _guid(get("ArchiveGuid") or "", "ArchiveGuid", True, problems, display, line, spoiled)
    legacy_dn = (get("LegacyExchangeDN") or "").strip()
    if not legacy_dn:
        if "LegacyExchangeDN" not in spoiled:
            problems.append(Problem(display, line, "LegacyExchangeDN",
                                    "is empty; the MailUser needs it as an X500 address so old replies still arrive"))
    elif not _LEGACY_DN.match(legacy_dn):
        problems.append(Problem(display, line, "LegacyExchangeDN",
                                "does not look like a LegacyExchangeDN (/o=.../ou=.../cn=...)"))
    addresses = _listing(get("EmailAddresses"))
    if not addresses and "EmailAddresses" not in spoiled:
        problems.append(Problem(display, line, "EmailAddresses", "is empty; a mailbox has at least its primary SMTP proxy"))
    folded_primary = primary.casefold()
    for entry in addresses:
        prefix, sep, address = entry.partition(":")
        if (not sep or prefix.lower() == "smtp") and (address if sep else entry).casefold() != folded_primary:
            try:
                validate_address(address if sep else entry)
            except AddressError as exc:
                problems.append(Problem(display, line, "EmailAddresses", f"{entry!r}: {exc}"))
    locations = get("MailboxLocations")
    hold = _flag(get("LitigationHoldEnabled") or "", "LitigationHoldEnabled", problems, display, line)
    other_holds = tuple(c for c in _HOLD_FLAGS if _flag(get(c) or "", c, problems, display, line)) \
        if not _HOLD_FLAG_SET.isdisjoint(values) else ()
    extra = {}
    if keep:
        for key, column in keep.items():
            value = get(column)
            extra[key] = value if isinstance(value, str) else ";".join(value or ())
    if problems or exchange_guid is None:
        return None, problems
    return (
        SourceMailbox(
            line,
            primary,
            alias,
            get("DisplayName") or name,
            name,
            exchange_guid,
            archive_guid,
            legacy_dn,
            addresses,
            get("FirstName") or "",
            get("LastName") or "",
            (get("UserPrincipalName") or "").strip(),
            (get("RecipientTypeDetails") or "").strip(),
            hold,
            _listing(get("InPlaceHolds")),
            other_holds,
            None if locations is None else sum(1 for x in _listing(locations) if "auxarchive" in x.lower()),
            extra,
        ),
        [],
    )


def plain_text(text: str) -> bool:
    """True when no cell of a CSV text can hold NUL or be an unjoined collection's type name.

    Checked once per block of CSV with fast substring searches, instead of once per cell.
    """
    return "\x00" not in text and not any(part in text for part in _MARKER_PARTS)


def _spoiled(values: Mapping[str, RawValue], problems: list[Problem], display: str, line: int) -> set[str]:
    """Columns whose cell no column may hold (NUL, an unjoined type name, a list where one value
    belongs), each reported; the row is read as if they were missing, without a second problem."""
    spoiled: set[str] = set()
    for column, value in values.items():
        if type(value) is str:
            if "\x00" in value:
                problems.append(Problem(display, line, column, "contains a NUL character"))
                spoiled.add(column)
            elif value in _UNJOINED:
                problems.append(Problem(display, line, column, JOIN_FIX.replace("EmailAddresses", column)))
                spoiled.add(column)
        elif value is not None and column not in LIST_COLUMNS:
            problems.append(Problem(display, line, column, "expected one value, found a list"))
            spoiled.add(column)
    return spoiled


def _listing(value: RawValue) -> tuple[str, ...]:
    if not value:
        return ()
    parts = value.split(";") if isinstance(value, str) else [str(part) for part in value]
    return tuple(filter(None, map(str.strip, parts)))


def _guid(raw: str, column: str, optional: bool, problems: list[Problem], display: str, line: int,
          spoiled: set[str]) -> str | None:
    raw = raw.strip()
    if not raw:
        if not optional and column not in spoiled:
            problems.append(Problem(display, line, column, "is empty; the MailUser needs the source mailbox's ExchangeGuid"))
        return None
    match = _GUID.fullmatch(raw)
    if match is None:
        problems.append(Problem(display, line, column, "not a GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"))
        return None
    value = match.group(1).lower()
    if value == ZERO_GUID:
        if not optional:
            problems.append(Problem(display, line, column, "is all zeros; the source object has no mailbox"))
        return None
    return value


def _flag(raw: str, column: str, problems: list[Problem], display: str, line: int) -> bool | None:
    text = raw.strip().lower()
    if text in ("true", "false"):
        return text == "true"
    if text:
        problems.append(Problem(display, line, column, "expected True or False"))
    return None
