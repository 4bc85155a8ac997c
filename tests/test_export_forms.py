"""Every export form PowerShell writes reads to the same mailboxes, and hostile names survive."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from runbook import build
from runbook.errors import InputError, Problem
from runbook.exports import read_export, sniff_form, to_mailbox
from runbook.powershell import decode_single_quoted

from .conftest import SAMPLE_CONFIG, nodes_of, syntax_errors, tree_files

FORMS = Path(__file__).parent / "data" / "exports"
FILES = ["ps51-type-utf8bom.csv", "ps51-unicode.csv", "ps7.csv", "excel-semicolon.csv", "ps51.xml", "ps7.xml",
         "ps51.json"]
HOSTILE = ["x'; Remove-Mailbox -Identity * ; '", "Renée ’Dollar’ $(Get-Secret) `n # <# ‘‚‛", "’Dollar’",
           "고객지원 \"Support\" “24/7” 🙂\r\nsecond line"]


def mailboxes(path: Path) -> list[dict[str, object]]:
    out = []
    for record in read_export(path, path.name):
        assert not isinstance(record, Problem), record
        mbx, problems = to_mailbox(record, path.name)
        assert problems == [] and mbx is not None
        fields = dataclasses.asdict(mbx)
        fields.pop("line")
        out.append(fields)
    return out


def config_for(tmp_path: Path, export: Path) -> Path:
    text = SAMPLE_CONFIG.read_text(encoding="utf-8")
    text = text[: text.index("[[batches]]")].replace('export = "csv/source-mailboxes.csv"', f'export = "{export.name}"')
    (tmp_path / export.name).write_bytes(export.read_bytes())
    (tmp_path / "notice.html").write_bytes((SAMPLE_CONFIG.parent / "notice.html").read_bytes())
    config = tmp_path / "migration.toml"
    config.write_text(text, encoding="utf-8")
    return config


def test_forms_are_sniffed() -> None:
    assert [sniff_form(FORMS / f) for f in FILES] == ["csv"] * 4 + ["clixml"] * 2 + ["json"]


def test_every_form_reads_to_the_same_mailboxes() -> None:
    reference = mailboxes(FORMS / "ps51-type-utf8bom.csv")
    assert reference[1]["email_addresses"] == (
        "SMTP:renee@wingtiptoys.kr", "smtp:renee@M365x47686041.onmicrosoft.com",
        "X500:/o=Wingtip Legacy/ou=First Administrative Group/cn=Recipients/cn=renee")
    assert reference[0]["first_name"] == "" and reference[1]["archive_guid"] == "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    for name in FILES[1:]:
        assert mailboxes(FORMS / name) == reference, name
    assert mailboxes(FORMS / "ps7-single.json") == [reference[1]]


def test_line_numbers_are_where_each_record_starts() -> None:
    lines = {name: [r.line for r in read_export(FORMS / name, name)] for name in FILES}
    assert lines["ps51-type-utf8bom.csv"] == [3, 4, 5]
    assert lines["ps7.csv"] == [2, 3, 4]
    assert lines["ps51.xml"][0] == 2 and lines["ps51.json"][0] == 2
    xml_text = (FORMS / "ps51.xml").read_bytes().decode("utf-16").splitlines()
    assert all(xml_text[n - 1].lstrip().startswith("<Obj RefId=") for n in lines["ps51.xml"])
    json_text = (FORMS / "ps51.json").read_bytes().decode("utf-16").splitlines()
    assert all(json_text[n - 1].strip() == "{" for n in lines["ps51.json"])


@pytest.mark.parametrize("name", FILES)
def test_hostile_names_render_byte_exact_in_every_form(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    build.render(config_for(tmp_path, FORMS / name), out)
    literals: set[str] = set()
    get_secret = 0
    for path, data in tree_files(out).items():
        if not path.endswith(".ps1"):
            continue
        assert syntax_errors(data) == [], path
        for node in nodes_of(data, "string_literal"):
            text = node.text.decode("utf-8")
            if text.startswith("'"):
                literals.add(decode_single_quoted(text))
        commands = [n.text.decode() for n in nodes_of(data, "command_name")]
        assert "Remove-Mailbox" not in commands, path
        get_secret += commands.count("Get-Secret")
    assert get_secret == 1  # the endpoint script's own vault lookup, not the display name's
    assert set(HOSTILE) <= literals


def test_unjoined_addresses_are_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        build.validate(config_for(tmp_path, FORMS / "unjoined.csv"))
    messages = [str(p).rsplit("/", 1)[-1] for p in info.value.problems]
    assert len(messages) == 1
    assert messages[0].startswith("unjoined.csv:4: EmailAddresses: the export wrote the collection's type name")
    assert "-join ';'" in messages[0]


def test_duplicates_are_found_in_structured_forms_and_name_both_lines(tmp_path: Path) -> None:
    text = (FORMS / "ps7.xml").read_text(encoding="utf-8")
    text = text.replace("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "6f1c8d3a-2b4e-4f5a-9c7d-1e2f3a4b5c6d")
    dup = tmp_path / "dup.xml"
    dup.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        build.validate(config_for(tmp_path, dup))
    assert [str(p).rsplit("/", 1)[-1] for p in info.value.problems] == [
        "dup.xml:31: ExchangeGuid: 6f1c8d3a-2b4e-4f5a-9c7d-1e2f3a4b5c6d is the same as on line 2; "
        "each mailbox needs its own"]


def test_clixml_reference_to_an_earlier_record_is_a_problem(tmp_path: Path) -> None:
    text = (FORMS / "ps7.xml").read_text(encoding="utf-8")
    start = text.index('<Obj N="EmailAddresses" RefId="3">')
    end = text.index("</Obj>", start) + len("</Obj>")
    broken = tmp_path / "ref.xml"
    broken.write_text(text[:start] + '<Ref N="EmailAddresses" RefId="1" />' + text[end:], encoding="utf-8")
    found = list(read_export(broken, "ref.xml"))
    problems = [r for r in found if isinstance(r, Problem)]
    assert [p.line for p in problems] == [31]
    assert "refers to an object of an earlier record" in problems[0].message


def test_broken_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"PrimarySmtpAddress": "a@b.kr"},\n  {"Alias": oops}\n]\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        list(read_export(path, "bad.json"))
    assert str(info.value.problems[0]).startswith("bad.json:2: header: required property")


def test_cells_the_per_row_scan_must_catch_are_caught_in_csv(tmp_path: Path) -> None:
    """CSV blocks skip the per-cell scan when the block's text rules it out; a NUL or a type
    name anywhere in a block must bring the scan back, and a type name inside a longer value
    is no problem."""
    from .test_exports import export_csv, mailbox_row

    rows = [mailbox_row("ok1", display="System.Object[] fan club"),
            mailbox_row("nul", display="bad\x00name"),
            mailbox_row("list", SamAccountName="System.String[]"),
            mailbox_row("ok2")]
    export = tmp_path / "export.csv"
    export.write_bytes(export_csv(rows))
    with pytest.raises(InputError) as info:
        build.validate(config_for(tmp_path, export))
    messages = [str(p).rsplit("/", 1)[-1] for p in info.value.problems]
    assert messages[0] == "export.csv:3: DisplayName: contains a NUL character"
    assert messages[1].startswith("export.csv:4: SamAccountName: the export wrote the collection's type name")
    assert len(messages) == 2
