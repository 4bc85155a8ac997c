"""Offline pre-flight findings that need more than one row: duplicates and dropped domains.

Per-row syntax is checked where rows are read (:mod:`runbook.exports.model`) and per-row
mapping where MailUsers are derived (:mod:`runbook.mailusers`); what stays here must remember
earlier rows, so it keeps only the keys it compares, never the mailboxes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import Problem
from .exports.model import SourceMailbox


DuplicateKeys = tuple[str, "str | None", str, str, str, str, tuple[str, ...], tuple[str, ...]]
"""ExchangeGuid, ArchiveGuid, alias and its folded form, primary address and its folded form,
target addresses and their folded forms: see :func:`duplicate_keys`."""


def duplicate_keys(exchange_guid: str, archive_guid: str | None, alias: str, primary: str,
                   target_addresses: Sequence[str]) -> DuplicateKeys:
    """What :meth:`DuplicateCheck.check` compares for one row, folded where the row is read.

    Folding happens in the worker that reads the row, so the single pass that must see every
    row only looks values up. A value that folds to itself is kept as the same object, which
    costs nothing more to send between processes.
    """
    targets = tuple(target_addresses)
    return (exchange_guid, archive_guid, alias, _folded(alias), primary, _folded(primary), targets,
            tuple([_folded(address) for address in targets]))


def _folded(text: str) -> str:
    folded = text.casefold()
    return text if folded == text else folded


class DuplicateCheck:
    """Finds values that must be unique across the export, naming both rows.

    It sees every row of the largest exports, so it keeps one plain dict per key (folded value
    -> first line) and touches each only once per value.
    """

    def __init__(self, display: str) -> None:
        self.display = display
        self._exchange: dict[str, int] = {}
        self._archive: dict[str, int] = {}
        self._alias: dict[str, int] = {}
        self._primary: dict[str, int] = {}
        self._targets: dict[str, int] = {}

    def check(self, line: int, keys: DuplicateKeys) -> list[Problem]:
        """Duplicates of this row's keys (from :func:`duplicate_keys`) among the rows before it."""
        exchange_guid, archive_guid, alias, folded_alias, primary, folded_primary, targets, folded_targets = keys
        found: list[Problem] = []
        if (first := self._exchange.setdefault(exchange_guid, line)) != line:
            found.append(self._problem(line, "ExchangeGuid", exchange_guid, first))
        if (first := self._alias.setdefault(folded_alias, line)) != line:
            found.append(self._problem(line, "Alias", alias, first))
        if (first := self._primary.setdefault(folded_primary, line)) != line:
            found.append(self._problem(line, "PrimarySmtpAddress", primary, first))
        if archive_guid and (first := self._archive.setdefault(archive_guid, line)) != line:
            found.append(self._problem(line, "ArchiveGuid", archive_guid, first))
        seen = self._targets
        for address, folded in zip(targets, folded_targets, strict=True):
            if (first := seen.setdefault(folded, line)) != line:
                found.append(self._problem(line, "EmailAddresses", f"target address {address}", first))
        return found

    def _problem(self, line: int, field: str, shown: str, first: int) -> Problem:
        return Problem(self.display, line, field, f"{shown} is the same as on line {first}; each mailbox needs its own")


class DuplicateScreen:
    """Keeps the keys :class:`DuplicateCheck` compares and says, once all rows are in, whether
    any of them repeats.

    The whole export's keys are counted at the end, a set per key built at C speed, which costs
    a fraction of comparing each row's keys as it arrives: at 200,000 rows the dicts that
    :class:`DuplicateCheck` keeps outgrow the processor's caches, and their lookups cost three
    times the rest of that row's handling. It cannot say which rows repeat; when something
    does, the caller reads the export again with :class:`DuplicateCheck` to name them. Its
    ``check`` never finds anything, so the two are used the same way.
    """

    def __init__(self) -> None:
        self._lists: tuple[list[str], ...] = ([], [], [], [], [])

    def check(self, line: int, keys: DuplicateKeys) -> list[Problem]:
        exchange, archive, alias, primary, targets = self._lists
        exchange.append(keys[0])
        if keys[1]:
            archive.append(keys[1])
        alias.append(keys[3])
        primary.append(keys[5])
        targets.extend(set(keys[7]))  # one row may name an address twice: the check allows it
        return []

    def repeats(self) -> bool:
        """True exactly when :class:`DuplicateCheck`, given the same rows, would report something."""
        return any(len(set(values)) != len(values) for values in self._lists)


class DroppedDomains:
    """Collects source proxy domains the target does not own, for one warning per domain."""

    def __init__(self) -> None:
        self._domains: dict[str, tuple[int, int]] = {}  # domain -> (count, first line)

    def add(self, domains: Iterable[str], line: int) -> None:
        for domain in domains:
            count, first = self._domains.get(domain, (0, line))
            self._domains[domain] = (count + 1, first)

    def problems(self, display: str) -> list[Problem]:
        return [
            Problem(display, first, "EmailAddresses",
                    f"addresses in {domain} ({count} mailbox(es)) are not copied: the target does not "
                    f"own {domain}; map it in [domains] to keep them", "warning")
            for domain, (count, first) in sorted(self._domains.items())
        ]


#: What cross-tenant mailbox migration moves (RecipientTypeDetails).
SUPPORTED_TYPES = frozenset({"UserMailbox", "SharedMailbox", "RoomMailbox", "EquipmentMailbox"})
MAX_AUX_ARCHIVES = 12
# Hold ids that block a move, as Microsoft's validation script reads InPlaceHolds: retention
# policies (mbx), legacy cloud holds (cld), eDiscovery cases (UniH), Skype content (skp), and
# 32-character legacy In-Place Holds. A leading '-' marks an exclusion, which does not hold.
_HOLD_PREFIXES = ("mbx", "cld", "unih", "skp")


def row_findings(mbx: SourceMailbox, display: str) -> list[Problem]:
    """Per-mailbox blockers visible in the export's optional columns."""
    found: list[Problem] = []
    line = mbx.line
    if mbx.recipient_type_details and mbx.recipient_type_details not in SUPPORTED_TYPES:
        found.append(Problem(display, line, "RecipientTypeDetails",
                             f"{mbx.recipient_type_details} cannot be moved by cross-tenant mailbox migration "
                             "(user, shared, room and equipment mailboxes can); remove the row"))
    if mbx.litigation_hold_enabled:
        found.append(Problem(display, line, "LitigationHoldEnabled",
                             "the mailbox is on Litigation Hold; mailboxes on hold cannot be moved: release the "
                             "hold or leave the mailbox out"))
    for hold in mbx.in_place_holds:
        if hold.lower().startswith(_HOLD_PREFIXES) or len(hold) == 32:
            found.append(Problem(display, line, "InPlaceHolds",
                                 f"hold {hold} applies to the mailbox; mailboxes on hold cannot be moved: exclude "
                                 "it from the policy or case, or leave the mailbox out"))
    for flag in mbx.other_holds:
        found.append(Problem(display, line, flag,
                             f"{flag} is True; mailboxes on hold cannot be moved until it is cleared"))
    if mbx.aux_archive_count is not None and mbx.aux_archive_count > MAX_AUX_ARCHIVES:
        found.append(Problem(display, line, "MailboxLocations",
                             f"the mailbox has {mbx.aux_archive_count} auxiliary archives; at most "
                             f"{MAX_AUX_ARCHIVES} can be moved"))
    return found
