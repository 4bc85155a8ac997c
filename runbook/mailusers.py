"""Source mailbox -> the target MailUser that receives it (DESIGN §4 step 6).

The MailUser carries the source ExchangeGuid (and ArchiveGuid when there is an archive), the
source LegacyExchangeDN and every X500 proxy as X500 addresses, a primary SMTP address and UPN
in a target domain from the domain map, each mapped secondary SMTP address, and an ``smtp:``
proxy in the target delivery domain (MRS derives the source's new targetAddress from it). Proxies
in domains the target does not own are not copied: Exchange refuses them
(``NotAcceptedDomainException``), which is why the seed's source-onmicrosoft proxy is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from .addresses import domain_of, local_part
from .exports.model import SourceMailbox
from .powershell import RecordLayout


@dataclass(slots=True)
class MailUser:
    """Everything New-MailUser and Set-MailUser need for one user."""

    line: int
    source_primary: str
    name: str
    display_name: str
    alias: str
    first_name: str
    last_name: str
    user_principal_name: str
    primary_smtp_address: str
    external_email_address: str
    exchange_guid: str
    archive_guid: str | None
    email_addresses: tuple[str, ...]

    def smtp_addresses(self) -> list[str]:
        """The target SMTP addresses this MailUser will hold, primary first."""
        return [self.primary_smtp_address, *(p[5:] for p in self.email_addresses if p[:5].lower() == "smtp:")]

    def ps_record(self) -> str:
        """The ``[ordered]`` hashtable a MailUser script embeds for this user (keys: :data:`RECORD`)."""
        return RECORD.format((
            self.line, self.source_primary, self.name, self.display_name, self.alias, self.first_name,
            self.last_name, self.user_principal_name, self.primary_smtp_address, self.external_email_address,
            self.exchange_guid, self.archive_guid, self.email_addresses,
        ))


#: The keys of a MailUser record, in the order a reviewer reads them (and the scripts expect).
RECORD = RecordLayout((
    "Line", "SourcePrimarySmtpAddress", "Name", "DisplayName", "Alias", "FirstName", "LastName",
    "UserPrincipalName", "PrimarySmtpAddress", "ExternalEmailAddress", "ExchangeGuid", "ArchiveGuid",
    "EmailAddresses",
))


class Derivation(NamedTuple):
    """The MailUser, or why there is none, plus the source proxies that were not carried over."""

    mailuser: MailUser | None
    error: tuple[str, str] | None  # (field, message)
    dropped_domains: tuple[str, ...]


def derive_mailuser(
    mbx: SourceMailbox,
    *,
    domain_map: Mapping[str, str],
    target_delivery_domain: str,
    source_initial_domain: str,
    external: str = "primary",
) -> Derivation:
    """Build the target MailUser for ``mbx``."""
    primary_domain = domain_of(mbx.primary_smtp_address)
    target_domain = domain_map.get(primary_domain)
    if target_domain is None:
        return Derivation(
            None,
            ("PrimarySmtpAddress", f"domain {primary_domain} is not in [domains]; map it to a target domain"),
            (),
        )
    local = local_part(mbx.primary_smtp_address)
    target_primary = f"{local}@{target_domain}"

    x500: list[str] = [f"X500:{mbx.legacy_exchange_dn}"]
    smtp: list[str] = []
    dropped: set[str] = set()
    initial_address = ""
    for entry in mbx.email_addresses:
        prefix, sep, address = entry.partition(":")
        kind = prefix.upper() if sep else ""
        if kind == "X500":
            x500.append(f"X500:{address}")
        elif kind == "SMTP" or not sep:
            if not sep:
                address = entry
            at = address.rfind("@")
            domain = address[at + 1 :].lower()
            if domain == source_initial_domain:
                initial_address = address
            mapped = domain_map.get(domain)
            if mapped is None:
                if domain != source_initial_domain:
                    dropped.add(domain)
                continue
            smtp.append(f"smtp:{address[:at]}@{mapped}")

    delivery = f"smtp:{local}@{target_delivery_domain}"
    proxies: list[str] = []
    seen: set[str] = {f"smtp:{target_primary}".casefold()}
    for proxy_text in (*x500, *smtp, delivery):
        key = proxy_text.casefold()
        if key not in seen:
            seen.add(key)
            proxies.append(proxy_text)

    if external == "source_initial_domain":
        if not initial_address:
            return Derivation(
                None,
                (
                    "EmailAddresses",
                    f"has no address in {source_initial_domain}, which "
                    "mailboxes.external_email_address = \"source_initial_domain\" needs",
                ),
                tuple(sorted(dropped)),
            )
        external_address = initial_address
    else:
        external_address = mbx.primary_smtp_address

    return Derivation(
        MailUser(mbx.line, mbx.primary_smtp_address, mbx.name, mbx.display_name, mbx.alias, mbx.first_name,
                 mbx.last_name, target_primary, target_primary, external_address, mbx.exchange_guid,
                 mbx.archive_guid, tuple(proxies)),
        None,
        tuple(sorted(dropped)) if dropped else (),
    )

