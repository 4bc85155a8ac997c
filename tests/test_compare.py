"""runbook compare: snapshots before and after the move, paired by address, folders by path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from runbook.cli import main
from runbook.compare import FolderRow, Tolerance, compare, read_snapshot
from runbook.errors import InputError

DATA = Path(__file__).parent / "data" / "snapshots"
BEFORE, AFTER = DATA / "before.csv", DATA / "after.csv"


def test_missing_and_short_folders_and_one_sided_mailboxes() -> None:
    result = compare(read_snapshot(BEFORE), read_snapshot(AFTER))
    assert [(f.kind, f.severity, f.mailbox, f.folder) for f in result.findings] == [
        ("folder missing", "error", "minjun.kim@wingtiptoys.kr", "받은 편지함/프로젝트"),
        ("items short", "error", "sales@wingtiptoys.kr", "Inbox"),
        ("mailbox missing", "error", "gone@wingtiptoys.kr", ""),
        ("mailbox only after", "warning", "extra@tailspintoys.kr", ""),
    ]
    assert result.short and result.mailboxes == 4 and result.folders == 10


def test_renamed_well_known_folders_and_nested_unicode_paths_match() -> None:
    result = compare(read_snapshot(BEFORE), read_snapshot(AFTER))
    assert not [f for f in result.findings if f.mailbox.startswith("user01")]


def test_tolerance_in_items_and_percent() -> None:
    rows = [FolderRow(2, "a@x.kr", "a@y.kr", "Inbox", "inbox", 1000)]
    after = [FolderRow(2, "a@y.kr", "a@x.kr", "Inbox", "inbox", 990)]
    assert compare(rows, after).short
    assert not compare(rows, after, Tolerance.parse("10")).short
    assert not compare(rows, after, Tolerance.parse("1%")).short
    assert compare(rows, after, Tolerance.parse("0.5%")).short
    with pytest.raises(ValueError):
        Tolerance.parse("lots")


def test_cli_exits_1_names_both_problems_and_writes_html(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["compare", str(BEFORE), str(AFTER), "--html", str(report)])
    assert result.exit_code == 1
    assert "error: minjun.kim@wingtiptoys.kr -> minjun.kim@tailspintoys.kr: folder 받은 편지함/프로젝트 (12 items) is missing" in result.stdout
    assert "error: sales@wingtiptoys.kr -> sales@tailspintoys.kr: folder Inbox has 290 items after the move, 300 before" in result.stdout
    page = report.read_text(encoding="utf-8")
    assert "받은 편지함/프로젝트" in page and "<tr class=\"error\">" in page
    document = json.loads(CliRunner().invoke(main, ["compare", str(BEFORE), str(AFTER), "--format", "json"]).stdout)
    assert document["ok"] is False and len(document["findings"]) == 4


def test_html_report_escapes_folder_names(tmp_path: Path) -> None:
    from runbook.compare import html_report

    rows = [FolderRow(2, "a@x.kr", "a@y.kr", "<script>alert(1)</script>", "", 3)]
    after = [FolderRow(2, "a@y.kr", "a@x.kr", "Inbox", "inbox", 3)]
    page = html_report(compare(rows, after), "b.csv", "a.csv")
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_cli_exits_0_when_nothing_is_short(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", str(BEFORE), str(BEFORE)])
    assert result.exit_code == 1  # every before mailbox maps to an address not present in before itself
    same = tmp_path / "after.csv"
    text = AFTER.read_text(encoding="utf-8-sig").replace('"290"', '"300"')
    text = text.replace('"Sent Items","sentitems","20"', '"Inbox/프로젝트","","12"\r\n"minjun.kim@tailspintoys.kr","minjun.kim@wingtiptoys.kr","Sent Items","sentitems","20"')
    same.write_text(text, encoding="utf-8")
    before = tmp_path / "before.csv"
    before.write_text("\n".join(line for line in BEFORE.read_text(encoding="utf-8-sig").splitlines()
                                if not line.startswith('"gone@')), encoding="utf-8")
    result = CliRunner().invoke(main, ["compare", str(before), str(same)])
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines() == [
        "warning: extra@tailspintoys.kr: in the snapshot after the move only",
        "3 mailbox(es), 10 folder(s) compared; 0 problem(s).",
    ]


def test_bad_snapshot_files_are_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text('"Mailbox","FolderPath"\n"a","b"\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_snapshot(path)
    assert [p.message for p in info.value.problems] == ["required column MappedTo is missing",
                                                        "required column TotalItemCount is missing"]
    path.write_text('"Mailbox","MappedTo","FolderPath","TotalItemCount"\n"a","b","c","1"\n"a","b","d","x"\n',
                    encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_snapshot(path)
    assert [(p.line, p.field) for p in info.value.problems] == [(3, "TotalItemCount")]
