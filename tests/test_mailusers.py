"""Source mailbox -> target MailUser, as DESIGN §4 step 6 describes it."""

from __future__ import annotations

from runbook.exports.model import SourceMailbox
from runbook.mailusers import derive_mailuser

MAP = {"wingtiptoys.kr": "tailspintoys.kr", "wingtip.co.kr": "tailspintoys.kr"}
SRC_INITIAL = "m365x47686041.onmicrosoft.com"
TDD = "m365x79002307.onmicrosoft.com"


def mailbox(**changes: object) -> SourceMailbox:
    values: dict[str, object] = dict(
        line=2, primary_smtp_address="Anna.Mueller@wingtiptoys.kr", alias="anna", display_name="Anna Müller",
        name="Anna Müller", exchange_guid="00000000-0000-0000-0000-000000000007", archive_guid=None,
        legacy_exchange_dn="/o=ExchangeLabs/ou=AG/cn=Recipients/cn=anna",
        email_addresses=("SMTP:Anna.Mueller@wingtiptoys.kr", f"smtp:anna@{SRC_INITIAL}", "smtp:anna@wingtip.co.kr",
                         "X500:/o=Old/cn=anna", "smtp:anna@fabrikam.com", "SIP:anna@wingtiptoys.kr"),
    )
    values.update(changes)
    return SourceMailbox(**values)  # type: ignore[arg-type]


def derive(mbx: SourceMailbox, external: str = "primary"):
    return derive_mailuser(mbx, domain_map=MAP, target_delivery_domain=TDD, source_initial_domain=SRC_INITIAL,
                           external=external)


def test_mailuser_carries_guid_x500s_mapped_proxies_and_the_delivery_proxy() -> None:
    result = derive(mailbox())
    user = result.mailuser
    assert user is not None and result.error is None
    assert user.primary_smtp_address == "Anna.Mueller@tailspintoys.kr"
    assert user.user_principal_name == user.primary_smtp_address
    assert user.external_email_address == "Anna.Mueller@wingtiptoys.kr"
    assert user.exchange_guid == "00000000-0000-0000-0000-000000000007" and user.archive_guid is None
    assert user.email_addresses == (
        "X500:/o=ExchangeLabs/ou=AG/cn=Recipients/cn=anna",
        "X500:/o=Old/cn=anna",
        "smtp:anna@tailspintoys.kr",
        f"smtp:Anna.Mueller@{TDD}",
    )
    # Not copied: the source initial domain (silently) and a domain the target does not own (reported).
    assert result.dropped_domains == ("fabrikam.com",)


def test_the_primary_proxy_is_not_repeated_as_a_secondary() -> None:
    user = derive(mailbox()).mailuser
    assert user is not None
    assert all(p.casefold() != "smtp:anna.mueller@tailspintoys.kr" for p in user.email_addresses)


def test_archive_guid_only_when_present() -> None:
    user = derive(mailbox(archive_guid="00000000-0000-0000-0000-000000000009")).mailuser
    assert user is not None and user.archive_guid == "00000000-0000-0000-0000-000000000009"
    assert "; 'ArchiveGuid' = '00000000-0000-0000-0000-000000000009'; " in user.ps_record()
    assert "; 'ArchiveGuid' = $null; " in derive(mailbox()).mailuser.ps_record()  # type: ignore[union-attr]


def test_unmapped_primary_domain_is_an_error() -> None:
    result = derive(mailbox(primary_smtp_address="x@contoso.com"))
    assert result.mailuser is None
    assert result.error == ("PrimarySmtpAddress", "domain contoso.com is not in [domains]; map it to a target domain")


def test_external_address_from_the_source_initial_domain() -> None:
    user = derive(mailbox(), external="source_initial_domain").mailuser
    assert user is not None and user.external_email_address == f"anna@{SRC_INITIAL}"
    result = derive(mailbox(email_addresses=("SMTP:Anna.Mueller@wingtiptoys.kr",)), external="source_initial_domain")
    assert result.mailuser is None and result.error is not None and result.error[0] == "EmailAddresses"
