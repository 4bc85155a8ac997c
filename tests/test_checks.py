"""Offline pre-flight findings from the export's optional columns."""

from __future__ import annotations

import pytest

from runbook.checks import DuplicateCheck, DuplicateScreen, duplicate_keys, row_findings
from runbook.exports.model import RawRow, to_mailbox

from .test_exports import mailbox_row


def findings(**columns: str) -> list[str]:
    row = mailbox_row("anna")
    row.update(columns)
    mbx, problems = to_mailbox(RawRow(7, row), "e.csv")
    assert problems == [] and mbx is not None
    return [f"{p.field}: {p.message}" for p in row_findings(mbx, "e.csv")]


def test_a_movable_mailbox_has_no_findings() -> None:
    assert findings(RecipientTypeDetails="SharedMailbox", LitigationHoldEnabled="False",
                    InPlaceHolds="-mbxb4e7f3a8c9d04e1f8a2b3c4d5e6f7a8b:1", MailboxLocations="1;a;Primary") == []


def test_holds_are_blockers() -> None:
    found = findings(LitigationHoldEnabled="True",
                     InPlaceHolds="mbx6a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d:2;UniH7a1b2c3d;c0f3d1e2b4a5968778695a4b3c2d1e0f",
                     DelayHoldApplied="True", ComplianceTagHoldApplied="False")
    assert [f.split(":")[0] for f in found] == ["LitigationHoldEnabled", "InPlaceHolds", "InPlaceHolds",
                                                "InPlaceHolds", "DelayHoldApplied"]


def test_unsupported_types_and_too_many_aux_archives() -> None:
    aux = ";".join(f"1;{i};AuxArchive" for i in range(13))
    found = findings(RecipientTypeDetails="GroupMailbox", MailboxLocations=aux)
    assert found == [
        "RecipientTypeDetails: GroupMailbox cannot be moved by cross-tenant mailbox migration "
        "(user, shared, room and equipment mailboxes can); remove the row",
        "MailboxLocations: the mailbox has 13 auxiliary archives; at most 12 can be moved",
    ]


def test_a_bad_flag_value_is_reported() -> None:
    row = mailbox_row("anna", LitigationHoldEnabled="maybe")
    _, problems = to_mailbox(RawRow(3, row), "e.csv")
    assert [str(p) for p in problems] == ["e.csv:3: LitigationHoldEnabled: expected True or False"]


def test_duplicates_name_the_first_line() -> None:
    check = DuplicateCheck("e.csv")
    assert check.check(2, duplicate_keys("g1", "a1", "anna", "Anna@x.kr", ["anna@y.kr"])) == []
    found = check.check(9, duplicate_keys("g1", "a1", "ANNA", "anna@x.kr", ["ANNA@y.kr"]))
    assert [str(p) for p in found] == [
        "e.csv:9: ExchangeGuid: g1 is the same as on line 2; each mailbox needs its own",
        "e.csv:9: Alias: ANNA is the same as on line 2; each mailbox needs its own",
        "e.csv:9: PrimarySmtpAddress: anna@x.kr is the same as on line 2; each mailbox needs its own",
        "e.csv:9: ArchiveGuid: a1 is the same as on line 2; each mailbox needs its own",
        "e.csv:9: EmailAddresses: target address ANNA@y.kr is the same as on line 2; each mailbox needs its own",
    ]


@pytest.mark.parametrize("second", [
    ("g1", None, "bob", "bob@x.kr", ["bob@y.kr"]),  # ExchangeGuid
    ("g2", "a1", "bob", "bob@x.kr", ["bob@y.kr"]),  # ArchiveGuid
    ("g2", None, "ANNA", "bob@x.kr", ["bob@y.kr"]),  # alias, ignoring case
    ("g2", None, "bob", "ANNA@x.kr", ["bob@y.kr"]),  # primary address, ignoring case
    ("g2", None, "bob", "bob@x.kr", ["bob@y.kr", "Anna@Y.kr"]),  # a target address, ignoring case
])
def test_the_screen_sees_every_repeat_the_check_reports(second: tuple) -> None:
    first = duplicate_keys("g1", "a1", "anna", "anna@x.kr", ["anna@y.kr"])
    check, screen = DuplicateCheck("e.csv"), DuplicateScreen()
    for line, keys in ((2, first), (9, duplicate_keys(*second))):
        screen.check(line, keys)
        found = check.check(line, keys)
    assert len(found) == 1
    assert screen.repeats()


def test_the_screen_passes_what_the_check_passes() -> None:
    """Distinct rows, rows without an archive, and a row that names its own address twice."""
    screen, check = DuplicateScreen(), DuplicateCheck("e.csv")
    rows = [(n + 2, duplicate_keys(f"g{n}", None, f"u{n}", f"u{n}@x.kr", [f"u{n}@y.kr", f"u{n}@z.kr"]))
            for n in range(50)]
    rows.append((60, duplicate_keys("g60", "a60", "v", "v@x.kr", ["v@y.kr", "V@Y.kr"])))
    for line, keys in rows:
        assert screen.check(line, keys) == check.check(line, keys) == []
    assert not screen.repeats()
