"""Offline pre-flight findings that need more than one row: duplicates and dropped domains.

Per-row syntax is checked where rows are read (:mod:`runbook.exports.model`) and per-row
mapping where MailUsers are derived (:mod:`runbook.mailusers`); what stays here must remember
earlier rows, so it keeps only the keys it compares, never the mailboxes.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import Problem
from .exports.model import SourceMailbox
from .mailusers import MailUser


class DuplicateCheck:
    """Finds values that must be unique across the export, naming both rows."""

    KINDS = ("ExchangeGuid", "ArchiveGuid", "Alias", "PrimarySmtpAddress", "target address")

    def __init__(self, display: str) -> None:
        self.display = display
        self._seen: dict[str, dict[str, int]] = {kind: {} for kind in self.KINDS}

    def _check(self, kind: str, value: str, line: int, shown: str | None = None) -> Problem | None:
        table = self._seen[kind]
        key = value.casefold()
        first = table.get(key)
        if first is None:
            table[key] = line
            return None
        return Problem(self.display, line, kind if kind != "target address" else "EmailAddresses",
                       f"{shown or value} is the same as on line {first}; each mailbox needs its own")

    def check(self, mbx: SourceMailbox, mailuser: MailUser | None) -> list[Problem]:
        found = [
            self._check("ExchangeGuid", str(mbx.exchange_guid), mbx.line),
            self._check("ArchiveGuid", str(mbx.archive_guid), mbx.line) if mbx.archive_guid else None,
            self._check("Alias", mbx.alias, mbx.line),
            self._check("PrimarySmtpAddress", mbx.primary_smtp_address, mbx.line),
        ]
        if mailuser is not None:
            for proxy in (f"smtp:{mailuser.primary_smtp_address}", *mailuser.email_addresses):
                prefix, _, address = proxy.partition(":")
                if prefix.lower() == "smtp":
                    found.append(self._check("target address", address, mbx.line,
                                             f"target address {address}"))
        return [p for p in found if p is not None]


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
