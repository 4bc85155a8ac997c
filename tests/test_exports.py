"""Reading mailbox exports: the CSV forms PowerShell writes, and clear errors for bad rows."""

from __future__ import annotations

import codecs
import csv
import io
import uuid
from pathlib import Path

import pytest

from runbook.errors import InputError, Problem
from runbook.exports import read_export, to_mailbox
from runbook.exports.csvfile import open_csv, parse_block
from runbook.exports.model import RawRow, SourceMailbox

DATA = Path(__file__).parent / "data"
COLUMNS = ["PrimarySmtpAddress", "Alias", "SamAccountName", "FirstName", "LastName", "DisplayName", "Name",
           "ExchangeGuid", "ArchiveGuid", "LegacyExchangeDN", "EmailAddresses"]
NS = uuid.UUID("12345678-1234-5678-1234-567812345678")


def mailbox_row(alias: str, *, domain: str = "wingtiptoys.kr", display: str | None = None, name: str | None = None,
                first: str = "", last: str = "", archive: bool = False, proxies: tuple[str, ...] = (),
                **override: str) -> dict[str, str]:
    primary = f"{alias}@{domain}"
    row = {
        "PrimarySmtpAddress": primary,
        "Alias": alias,
        "SamAccountName": alias[:20],
        "FirstName": first,
        "LastName": last,
        "DisplayName": display if display is not None else alias,
        "Name": name if name is not None else alias,
        "ExchangeGuid": str(uuid.uuid5(NS, "x" + alias)),
        "ArchiveGuid": str(uuid.uuid5(NS, "a" + alias)) if archive else "00000000-0000-0000-0000-000000000000",
        "LegacyExchangeDN": f"/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={alias}",
        "EmailAddresses": ";".join((f"SMTP:{primary}", f"smtp:{alias}@M365x47686041.onmicrosoft.com", *proxies)),
    }
    row.update(override)
    return row


def export_csv(rows: list[dict[str, str]], *, delimiter: str = ",", type_line: bool = False,
               encoding: str = "utf-8-sig", columns: list[str] | None = None) -> bytes:
    """An export as Export-Csv writes it: every field quoted, CRLF."""
    out = io.StringIO()
    if type_line:
        out.write("#TYPE Selected.Microsoft.Exchange.Data.Directory.Management.Mailbox\r\n")
    columns = columns or list(rows[0]) if rows else COLUMNS
    writer = csv.writer(out, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    return out.getvalue().encode(encoding)


def read_all(path: Path) -> tuple[list[SourceMailbox], list[Problem]]:
    boxes, problems = [], []
    for record in read_export(path, path.name):
        if isinstance(record, Problem):
            problems.append(record)
            continue
        mbx, found = to_mailbox(record, path.name)
        problems.extend(found)
        if mbx:
            boxes.append(mbx)
    return boxes, problems


ROWS = [mailbox_row("user01", display="김민준", archive=True), mailbox_row("sales", display="Sales; Team, \"HQ\"")]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "utf-16"])
@pytest.mark.parametrize("delimiter", [",", ";"])
@pytest.mark.parametrize("type_line", [True, False])
def test_export_csv_forms(tmp_path: Path, encoding: str, delimiter: str, type_line: bool) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(export_csv(ROWS, delimiter=delimiter, type_line=type_line, encoding=encoding))
    if encoding == "utf-16":
        assert path.read_bytes().startswith(codecs.BOM_UTF16_LE)
    boxes, problems = read_all(path)
    assert problems == []
    assert [b.display_name for b in boxes] == ["김민준", "Sales; Team, \"HQ\""]
    assert [b.line for b in boxes] == ([3, 4] if type_line else [2, 3])
    assert boxes[0].archive_guid is not None and boxes[1].archive_guid is None
    assert boxes[0].email_addresses[0] == "SMTP:user01@wingtiptoys.kr"


def test_header_names_are_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    data = export_csv(ROWS).replace(b'"PrimarySmtpAddress"', b'"PrimarySMTPAddress"').replace(
        b'"LegacyExchangeDN"', b'"LegacyExchangeDn"')
    path.write_bytes(data)
    boxes, problems = read_all(path)
    assert problems == [] and len(boxes) == 2


def test_a_missing_column_is_reported_at_the_header(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(export_csv(ROWS, columns=[c for c in COLUMNS if c != "ExchangeGuid"], type_line=True))
    with pytest.raises(InputError) as info:
        read_all(path)
    assert [str(p) for p in info.value.problems] == ["export.csv:2: header: required column ExchangeGuid is missing"]


def test_bad_rows_fixture_names_every_bad_line(tmp_path: Path) -> None:
    boxes, problems = read_all(DATA / "bad-rows.csv")
    assert sorted({p.line for p in problems}) == [4, 6, 7, 9]
    messages = "\n".join(str(p) for p in problems)
    assert "bad-rows.csv:4: ExchangeGuid: not a GUID" in messages
    assert "bad-rows.csv:6: PrimarySmtpAddress: not a valid e-mail address" in messages
    assert "bad-rows.csv:7: EmailAddresses: the export wrote the collection's type name" in messages
    assert "Expression={$_.EmailAddresses -join ';'}" in messages
    assert "bad-rows.csv:9: LegacyExchangeDN: is empty; the MailUser needs it as an X500 address" in messages
    assert len(problems) == 5  # line 6 also has the bad local part in its onmicrosoft proxy
    assert len(boxes) == 4  # lines 3, 5, 8 and 10 read fine; line 10's domain fails when mapped


def test_a_row_with_the_wrong_field_count_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    data = export_csv(ROWS) + b'"only","three","fields"\r\n'
    path.write_bytes(data)
    boxes, problems = read_all(path)
    assert len(boxes) == 2
    assert [str(p) for p in problems] == [
        "export.csv:4: csv: has 3 fields, the header has 11 (delimiter ','; a value with the delimiter must be in double quotes)"
    ]


def test_multiline_values_keep_physical_line_numbers(tmp_path: Path) -> None:
    rows = [mailbox_row("a", display="two\nlines"), mailbox_row("b", ExchangeGuid="nope")]
    path = tmp_path / "export.csv"
    path.write_bytes(export_csv(rows, type_line=True))
    boxes, problems = read_all(path)
    assert boxes[0].display_name == "two\nlines" and boxes[0].line == 3
    assert [p.line for p in problems] == [5]


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1 << 19])
def test_undecodable_bytes_name_the_line(tmp_path: Path, block_bytes: int) -> None:
    path = tmp_path / "export.csv"
    data = export_csv(ROWS, encoding="utf-8") + b'"caf\xe9@x.kr"\r\n'
    path.write_bytes(data)
    with pytest.raises(InputError) as info:
        list(open_csv(path, "export.csv", block_bytes)[1])
    [problem] = info.value.problems
    assert problem.line == data.count(b"\n")
    assert "cannot be decoded as utf-8" in str(problem)


def _blocks_text(path: Path, block_bytes: int) -> list[tuple[int, list[str]]]:
    """Every record as (physical line, fields), reading ``block_bytes`` at a time."""
    out = []
    for block in open_csv(path, path.name, block_bytes)[1]:
        for row in parse_block(block):
            assert isinstance(row, RawRow), row
            out.append((row.line, list(row.values.values())))
    return out


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_blocks_cut_anywhere_give_the_same_records_and_lines(tmp_path: Path, encoding: str, newline: str) -> None:
    """Blocks end only between records, whatever the read size: multi-line values, quotes
    doubled inside values, a CR LF split across two reads, non-ASCII text in UTF-16."""
    rows = [
        mailbox_row("a", display=f"two{newline}lines"),
        mailbox_row("b", display='say ""hi""'),
        mailbox_row("c", display=f'"{newline}{newline}"'),
        mailbox_row("d", display="Renée ’Dollar’ 김민준 👋"),
        mailbox_row("e"),
    ]
    text = export_csv(rows, type_line=True, encoding=encoding).decode(encoding).replace("\r\n", newline)
    # The writer ended every record with CR LF; embedded line ends follow the chosen style.
    path = tmp_path / "export.csv"
    path.write_bytes(text.encode(encoding))
    whole = _blocks_text(path, 1 << 20)
    assert [line for line, _ in whole] == [3, 5, 6, 9, 10]
    assert whole[3][1][5] == "Renée ’Dollar’ 김민준 👋"
    for size in (1, 2, 3, 5, 16, 100):
        assert _blocks_text(path, size) == whole, size


def test_to_mailbox_accepts_lists_from_structured_forms() -> None:
    row = mailbox_row("u")
    values: dict[str, object] = dict(row)
    values["EmailAddresses"] = ["SMTP:u@wingtiptoys.kr", "X500:/o=x/cn=y"]
    mbx, problems = to_mailbox(RawRow(7, values), "e.xml")  # type: ignore[arg-type]
    assert problems == [] and mbx is not None
    assert mbx.email_addresses == ("SMTP:u@wingtiptoys.kr", "X500:/o=x/cn=y")


@pytest.mark.parametrize("block_bytes", [1, 5, 1 << 19])
def test_undecodable_bytes_in_the_header_name_its_line(tmp_path: Path, block_bytes: int) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(b"#TYPE Selected.Mailbox\r\n\"PrimarySmtpAddress\",\"Alias\xe9\"\r\n")
    with pytest.raises(InputError) as info:
        open_csv(path, "export.csv", block_bytes)
    [problem] = info.value.problems
    assert (problem.line, problem.field) == (2, "file")
