"""The rendered sample: goldens, clean parses, tenant guards, determinism, no secrets, hostile data."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook import build
from runbook.errors import InputError, RefusedError
from runbook.powershell import PsCode, decode_single_quoted
from runbook.render import BOM, sha256
from runbook.templating import TemplateDataError, make_environment, templates_dir

from .conftest import SAMPLE_CONFIG, nodes_of, syntax_errors, tree_files

SOURCE_ID = "a0c898ca-2445-4e74-ab4b-afd7916549a6"
TARGET_ID = "afab079d-1f08-4de3-881e-435e497f923f"


def scripts(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree_files(root).items() if k.endswith(".ps1")}


def test_sample_matches_goldens(sample_render: Path, check_golden) -> None:
    check_golden("sample", sample_render)


def test_every_script_parses_cleanly(every_render: Path) -> None:
    found = scripts(every_render)
    assert len(found) >= 17
    for path, data in found.items():
        assert syntax_errors(data) == [], path


def test_scripts_are_utf8_with_bom_and_follow_the_prologue(every_render: Path) -> None:
    for path, data in scripts(every_render).items():
        assert data.startswith(BOM), path
        text = data[len(BOM):].decode("utf-8")
        assert text.startswith("#Requires -Version 5.1\n"), path
        assert "[CmdletBinding(SupportsShouldProcess)]\nparam(\n" in text, path
        assert "Set-StrictMode -Version Latest\n$ErrorActionPreference = 'Stop'\n" in text, path


def test_every_script_names_and_checks_its_own_tenant(every_render: Path) -> None:
    for path, data in scripts(every_render).items():
        text = data.decode("utf-8-sig")
        own, other = (SOURCE_ID, TARGET_ID) if path.startswith("source/") else (TARGET_ID, SOURCE_ID)
        assert f"'TenantId' = '{own}'" in text, path
        guard = "Assert-RunbookGraphTenant\n" if "Get-MgContext" in text else "Assert-RunbookTenant\n"
        assert text.count(guard) == 1 and f"function {guard.strip()}" in text, path
        # The guard runs before the first cmdlet that changes anything.
        first_change = min((text.find(c) for c in ("New-", "Set-", "Add-Distribution", "Complete-M", "Remove-M",
                                                     "Remove-O", "Enable-O") if f"\n{c}" in text or f" {c}" in text),
                           default=len(text))
        assert text.index(f"\n{guard}") < max(first_change, text.index(f"\n{guard}") + 1), path


def test_the_required_cmdlets_are_all_there(sample_render: Path) -> None:
    every = "\n".join(d.decode("utf-8-sig") for d in scripts(sample_render).values())
    for cmdlet in ("New-MigrationEndpoint", "New-OrganizationRelationship", "Set-OrganizationRelationship",
                   "New-DistributionGroup", "Enable-OrganizationCustomization", "New-MailUser", "Set-MailUser",
                   "Test-MigrationServerAvailability", "New-MigrationBatch", "Complete-MigrationBatch",
                   "Get-MigrationUserStatistics", "Remove-MigrationBatch", "Remove-MigrationEndpoint",
                   "New-MgApplication", "New-MgServicePrincipalAppRoleAssignment", "Export-Clixml"):
        assert re.search(rf"\b{cmdlet}\b", every), cmdlet


def test_remote_tenant_is_the_source_and_cross_tenant_ids_are_right(sample_render: Path) -> None:
    endpoint = (sample_render / "target/03-migration-endpoint.ps1").read_text("utf-8-sig")
    assert "'RemoteTenant' = 'm365x47686041.onmicrosoft.com'" in endpoint
    assert "'RemoteServer' = 'outlook.office.com'" in endpoint
    inbound = (sample_render / "target/04-organization-relationship.ps1").read_text("utf-8-sig")
    assert f"'PartnerTenantId' = '{SOURCE_ID}'" in inbound and "-MailboxMoveCapability Inbound" in inbound
    outbound = (sample_render / "source/03-organization-relationship.ps1").read_text("utf-8-sig")
    assert f"'PartnerTenantId' = '{TARGET_ID}'" in outbound and "RemoteOutbound" in outbound


def test_batches_csvs_and_hashes(sample_render: Path) -> None:
    folder = sample_render / "target/10-new-migration-batches"
    pilot = (folder / "001-Pilot.csv").read_bytes()
    assert pilot == b"EmailAddress\r\nuser01@tailspintoys.kr\r\nminjun.kim@tailspintoys.kr\r\nsales@tailspintoys.kr\r\n"
    script = (folder / "001-Pilot.ps1").read_text("utf-8-sig")
    assert f"'CsvSha256' = '{sha256(pilot).upper()}'" in script
    assert "Join-Path $PSScriptRoot $Batch.CsvFile" in script
    rest = (folder / "002-wingtiptoys-001.csv").read_text().splitlines()
    assert rest[0] == "EmailAddress" and len(rest) == 1 + 9


def test_manifest_lists_every_file_with_its_hash(sample_render: Path) -> None:
    manifest = json.loads((sample_render / "manifest.json").read_text())
    files = tree_files(sample_render)
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(files) - {"manifest.json"}
    for path, entry in listed.items():
        assert entry["sha256"] == sha256(files[path])
    orders = [f["order"] for f in manifest["files"] if f["kind"] == "script"]
    assert sorted(orders) == list(range(1, len(orders) + 1))
    assert all(f["side"] in ("source", "target") for f in manifest["files"] if f["kind"] == "script")
    runbook_md = (sample_render / "RUNBOOK.md").read_text()
    for path, entry in listed.items():
        if entry["kind"] == "script":
            assert entry["sha256"] in runbook_md, path


def test_two_renders_are_byte_identical(tmp_path: Path) -> None:
    build.render(SAMPLE_CONFIG, tmp_path / "a")
    build.render(SAMPLE_CONFIG, tmp_path / "b")
    assert tree_files(tmp_path / "a") == tree_files(tmp_path / "b")


def test_no_secret_value_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "Sup3r~Secret.Value_123"
    monkeypatch.setenv("MIGRATION_APP_SECRET", secret)
    build.render(SAMPLE_CONFIG, tmp_path / "out")
    for path, data in tree_files(tmp_path / "out").items():
        assert secret.encode() not in data, path
    endpoint = (tmp_path / "out/target/03-migration-endpoint.ps1").read_text("utf-8-sig")
    assert "[securestring] $AppSecret" in endpoint
    assert "'Kind' = 'env'; 'Name' = 'MIGRATION_APP_SECRET'" in endpoint


def test_render_replaces_a_previous_runbook_but_not_a_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build.render(SAMPLE_CONFIG, out)
    (out / "stale.txt").write_text("old")
    build.render(SAMPLE_CONFIG, out)
    assert not (out / "stale.txt").exists()
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(RefusedError):
        build.render(SAMPLE_CONFIG, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "out"]


def test_invalid_input_writes_nothing(make_config, tmp_path: Path) -> None:
    bad = (Path(__file__).parent / "data" / "bad-rows.csv").read_bytes()
    config = make_config(export=bad)
    with pytest.raises(InputError):
        build.render(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_variables_never_differ_only_in_case(every_render: Path) -> None:
    """PowerShell variables ignore case: $Group and $group are one variable."""
    for path, data in scripts(every_render).items():
        spellings: dict[str, set[str]] = defaultdict(set)
        for node in nodes_of(data, "variable"):
            name = node.text.decode()
            spellings[name.lower()].add(name)
        clashes = {k: v for k, v in spellings.items() if len(v) > 1}
        assert not clashes, f"{path}: {clashes}"


# --- templates --------------------------------------------------------------------------

EXPRESSION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)


def test_every_template_inserts_data_only_through_ps_filters() -> None:
    offenders = []
    for template in sorted((templates_dir() / "ps1").glob("*.jinja")):
        for expr in EXPRESSION.findall(template.read_text()):
            if re.fullmatch(r"m\.\w+\(.*\)", expr):
                continue
            last_filter = expr.rsplit("|", 1)[-1].strip() if "|" in expr else ""
            if not re.match(r"ps_\w+(\(.*\))?$", last_filter):
                offenders.append(f"{template.name}: {{{{ {expr} }}}}")
    assert offenders == []


def test_an_unfiltered_value_fails_the_render() -> None:
    env = make_environment()
    with pytest.raises(TemplateDataError, match="without a ps_\\* filter"):
        env.from_string("Write-Output {{ name }}").render(name="x'; Remove-Mailbox")
    with pytest.raises(TemplateDataError):
        env.from_string("{{ value | ps_str }}").render(value=None) if False else env.from_string(
            "{{ value }}").render(value=None)
    assert env.from_string("{{ name | ps_str }}").render(name="a'b") == "'a''b'"


def test_markdown_environment_requires_its_filter() -> None:
    env = make_environment(markdown=True)
    with pytest.raises(TemplateDataError):
        env.from_string("{{ name }}").render(name="x | y")
    assert env.from_string("{{ name | md }}").render(name="a|b *c*") == "a\\|b \\*c\\*"
    assert env.from_string("{{ name | md_code }}").render(name="a`b") == "``a`b``"


# --- hostile names -----------------------------------------------------------------------

HOSTILE_NAME = "x'; Remove-Mailbox -Identity * ; '"
SMART = "Renée ’Dollar’ $(Get-Secret) `n # <#"


def _hostile_export() -> bytes:
    from .test_exports import export_csv, mailbox_row

    rows = [
        mailbox_row("user01", display=HOSTILE_NAME, name=HOSTILE_NAME),
        mailbox_row("minjun.kim", display=SMART, name=SMART, first="‘‚‛’'", last="\"“”\"\nsecond line"),
        mailbox_row("sales"),
    ]
    return export_csv(rows)


def test_hostile_names_stay_inside_string_literals(make_config, tmp_path: Path) -> None:
    config = make_config(
        {'name = "Wingtip Toys"': f'name = "{SMART}"',
         'name = "T2T-Migration-Scope"': """name = "x'; Remove-Mailbox -Identity * ; '" """,
         'display_name = "Tailspin Toys cross-tenant mailbox migration"': """display_name = "a’; Stop-Computer; ’" """},
        export=_hostile_export())
    out = tmp_path / "hostile"
    build.render(config, out)
    baseline = tmp_path / "baseline"
    build.render(make_config(export=_hostile_export().replace(HOSTILE_NAME.encode(), b"Plain")
                             .replace(SMART.encode(), b"Plain2")), baseline)
    hostile_values = {HOSTILE_NAME, SMART, "‘‚‛’'", "\"“”\"\nsecond line", "a’; Stop-Computer; ’"}
    seen: set[str] = set()
    for path, data in scripts(out).items():
        assert syntax_errors(data) == [], path
        commands = sorted(n.text for n in nodes_of(data, "command_name"))
        assert commands == sorted(n.text for n in nodes_of(scripts(baseline)[path], "command_name")), path
        for literal in nodes_of(data, "string_literal"):
            text = literal.text.decode("utf-8")
            if text.startswith("'"):
                seen.add(decode_single_quoted(text))
        for bad in (b"Stop-Computer;", b"Remove-Mailbox -Identity * ;"):
            for line in data.splitlines():
                if bad in line:
                    assert b"'" in line.split(bad)[0], (path, line)
    assert hostile_values <= seen


@pytest.mark.parametrize("tenant_name", ["Wingtip Toys", "Wingtip \ue000\ue001 Toys"])
def test_chunk_scripts_spliced_from_one_render_equal_a_full_render(make_config, tenant_name: str) -> None:
    """render_chunk renders each step once with markers; every chunk must come out exactly as a
    render of its own would, and a config value holding a marker character must not be spliced."""
    from runbook import plan as P
    from runbook.config import load_config
    from runbook.mailusers import RECORD
    from runbook.render import ScriptRenderer

    loaded = load_config(make_config({'name = "Wingtip Toys"': f'name = "{tenant_name}"',
                                      'name = "Tailspin Toys"': f'name = "{tenant_name} 2"'}))
    renderer = ScriptRenderer(loaded)
    steps = P.Plan(loaded.config)
    block = ("    " + RECORD.format([7, "a'b@x.kr", "n", "Renée ’D’", "a", "", "", "u@y.kr", "u@y.kr", "a@x.kr",
                                     "00000000-0000-0000-0000-000000000001", None, ["X500:/o=x/cn=y"]]) + "\n").encode()
    for step, stem, context in ((P.TARGET_MAILUSERS, "mailusers", {}),
                                (P.SOURCE_PREFLIGHT, "preflight-source-users",
                                 {"target_tenant_id": str(loaded.config.target.tenant_id)})):
        numbered = steps[step]
        for number in (1, 7, 10, 123, 9999, 12345):
            spliced = renderer.render_chunk(numbered, number, block, result_stem=stem, **context)
            whole = renderer.render(numbered, records=PsCode(block.decode()), chunk={"Number": number},
                                    result_file=f"{stem}-{number:04d}.csv", **context)
            assert spliced == whole, (step.id, number)
            assert tenant_name.encode() in spliced


def test_chunk_scripts_read_only_keys_their_chunk_has(every_render: Path) -> None:
    """A missing key of a hashtable reads as $null even under StrictMode, so a typo or a key that
    was never filled in (a progress text once read $Chunk.Of) would fail silently at run time."""
    checked = 0
    for path in sorted(every_render.rglob("*.ps1")):
        text = path.read_text(encoding="utf-8-sig")
        declared = re.search(r"^\$Chunk = \[ordered\]@\{(.*)\}$", text, re.MULTILINE)
        used = set(re.findall(r"\$Chunk\.(\w+)", text))
        if declared is None:
            assert not used, path
            continue
        keys = set(re.findall(r"'(\w+)' = ", declared.group(1)))
        assert used <= keys, (path, used - keys)
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("rows_per_piece", [1, 7, 4096])
def test_csv_written_in_pieces_is_the_csv_written_at_once(rows_per_piece: int) -> None:
    import csv
    import io

    from runbook.render import csv_bytes, csv_pieces

    rows = [[i, "a,b", 'x"y', "Renée\r\n’", ""] for i in range(100)]
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(["A", "B", "C", "D", "E"])
    writer.writerows(rows)
    pieces = list(csv_pieces(["A", "B", "C", "D", "E"], rows, rows_per_piece=rows_per_piece))
    assert b"".join(pieces) == csv_bytes(["A", "B", "C", "D", "E"], rows) == expected.getvalue().encode()
    assert len(pieces) == -(-len(rows) // rows_per_piece)
    assert csv_bytes(["A"], []) == b"A\r\n"



_CSV_FIELD = st.one_of(st.text(alphabet=",\"\r\n\x00\x01 aé’;", max_size=4), st.integers(-3, 10**6), st.none(),
                       st.booleans(), st.floats(allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_CSV_FIELD, max_size=4), max_size=12), st.integers(1, 5))
def test_csv_pieces_write_what_the_csv_module_writes(rows: list[list[object]], rows_per_piece: int) -> None:
    """Pieces whose fields need no quotes are joined, not written by csv; the bytes must not change."""
    import csv
    import io

    from runbook.render import csv_pieces

    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(["A", "B"])
    writer.writerows(rows)
    assert b"".join(csv_pieces(["A", "B"], rows, rows_per_piece=rows_per_piece)) == expected.getvalue().encode()
    assert b"".join(csv_pieces(["A", "B"], iter(rows), rows_per_piece=rows_per_piece)) == expected.getvalue().encode()


def test_plain_csv_pieces_take_the_fast_way() -> None:
    from runbook.render import _plain_csv

    assert _plain_csv([[12, "a@x.kr", "target/06-mailusers/mailusers-0001.ps1"], ["b", 3]]) == \
        "12,a@x.kr,target/06-mailusers/mailusers-0001.ps1\r\nb,3\r\n"
    for rows in ([["a,b"]], [['a"']], [["a\nb"]], [[""]], [[]], [[None]], [[1.5]], [["a\x00"]], [["a\x01"]]):
        assert _plain_csv(rows) is None, rows
