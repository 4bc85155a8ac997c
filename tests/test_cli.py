"""The command line: exit codes, messages on stderr, nothing written on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from runbook import __version__
from runbook.cli import main

from .conftest import SAMPLE_CONFIG

DATA = Path(__file__).parent / "data"
PILOT_ON_GOOD_ROWS = {
    'users = ["user01@wingtiptoys.kr", "minjun.kim@wingtiptoys.kr", "sales@wingtiptoys.kr"]':
    'users = ["good1@wingtiptoys.kr"]'
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_render_the_sample(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(main, ["render", "-c", str(SAMPLE_CONFIG), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "34 scripts for 12 mailbox(es) in 2 batch(es)" in result.stdout
    assert (out / "RUNBOOK.md").is_file() and (out / "manifest.json").is_file()


def test_validate_ok_and_json(runner: CliRunner) -> None:
    result = runner.invoke(main, ["validate", "-c", str(SAMPLE_CONFIG)])
    assert result.exit_code == 0
    assert result.stdout.startswith("OK: 12 mailbox(es) in 2 batch(es)")
    result = runner.invoke(main, ["validate", "-c", str(SAMPLE_CONFIG), "--format", "json"])
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["mailboxes"] == 12 and document["errors"] == []


def test_invalid_export_exits_1_names_every_line_and_writes_nothing(runner: CliRunner, make_config,
                                                                     tmp_path: Path) -> None:
    config = make_config(PILOT_ON_GOOD_ROWS, export=(DATA / "bad-rows.csv").read_bytes())
    out = tmp_path / "out"
    result = runner.invoke(main, ["render", "-c", str(config), "-o", str(out)])
    assert result.exit_code == 1
    export = str(tmp_path / "csv" / "source-mailboxes.csv")
    lines = result.stderr.splitlines()
    assert sorted(set(line.split(": ")[0] for line in lines[:-1]), key=lambda w: int(w.rsplit(":", 1)[1])) == [
        f"{export}:4", f"{export}:6", f"{export}:7", f"{export}:9", f"{export}:10"]
    assert lines[-1] == "6 error(s); nothing was written."
    assert f"{export}:10: PrimarySmtpAddress: domain contoso.com is not in [domains]" in result.stderr
    assert not out.exists()
    assert result.stdout == ""


def test_validate_json_reports_errors(runner: CliRunner, make_config) -> None:
    config = make_config(PILOT_ON_GOOD_ROWS, export=(DATA / "bad-rows.csv").read_bytes())
    result = runner.invoke(main, ["validate", "-c", str(config), "--format", "json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert sorted({e["line"] for e in document["errors"]}) == [4, 6, 7, 9, 10]
    assert {"path", "line", "field", "message", "severity"} <= set(document["errors"][0])


def test_literal_secret_exits_1_and_is_not_echoed(runner: CliRunner, make_config) -> None:
    config = make_config({'secret = "env:MIGRATION_APP_SECRET"': 'secret = "p@ss-W0rd-literal"'})
    result = runner.invoke(main, ["validate", "-c", str(config)])
    assert result.exit_code == 1
    assert "app.secret: a literal secret is not allowed" in result.stderr
    assert "p@ss-W0rd-literal" not in result.output


def test_usage_errors_exit_2(runner: CliRunner) -> None:
    assert runner.invoke(main, ["render", "-c", str(SAMPLE_CONFIG)]).exit_code == 2
    assert runner.invoke(main, ["render", "--bogus"]).exit_code == 2
    assert runner.invoke(main, ["validate", "-c", str(SAMPLE_CONFIG), "--format", "xml"]).exit_code == 2
    assert runner.invoke(main, ["nonsense"]).exit_code == 2


def test_refusing_a_foreign_folder_exits_4(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = runner.invoke(main, ["render", "-c", str(SAMPLE_CONFIG), "-o", str(tmp_path)])
    assert result.exit_code == 4
    assert result.stderr.startswith("refused: ")
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_missing_config_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["validate", "-c", str(tmp_path / "nope.toml")])
    assert result.exit_code == 1
    assert "nope.toml: file: cannot read" in result.stderr


def test_consent_url(runner: CliRunner) -> None:
    result = runner.invoke(main, ["consent-url", "-c", str(SAMPLE_CONFIG)])
    assert result.exit_code == 0
    assert result.stdout == (
        "https://login.microsoftonline.com/m365x47686041.onmicrosoft.com/adminconsent"
        "?client_id=d8afba35-2ae3-4b42-89f2-8511bfb42bd2&redirect_uri=https://office.com\n"
    )


def test_schema_is_json_schema_of_the_config(runner: CliRunner) -> None:
    result = runner.invoke(main, ["schema"])
    schema = json.loads(result.stdout)
    assert {"source", "target", "app", "endpoint", "mailboxes"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_init_writes_a_starter_that_validates(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["init", str(tmp_path / "move")])
    assert result.exit_code == 0
    config = tmp_path / "move" / "migration.toml"
    assert runner.invoke(main, ["validate", "-c", str(config)]).exit_code == 0
    again = runner.invoke(main, ["init", str(tmp_path / "move")])
    assert again.exit_code == 4


def test_version_and_help_everywhere(runner: CliRunner) -> None:
    assert runner.invoke(main, ["--version"]).stdout.strip() == f"runbook, version {__version__}"
    for command in ([], ["init"], ["validate"], ["render"], ["consent-url"], ["schema"], ["compare"]):
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.stdout, command
