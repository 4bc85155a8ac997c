"""runbook run over the local transport, against a stand-in pwsh that records what it received."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from runbook import build
from runbook.cli import main
from runbook.run.journal import Journal
from runbook.run.manifest import Runbook
from runbook.run.runner import RemoteError, Runner
from runbook.run.transport import LocalTransport

STANDIN = Path(__file__).parent / "standin" / "pwsh"
RUNNER = '''
[runner]
transport = "local"
[runner.source]
app_id = "11111111-2222-3333-4444-555555555555"
certificate_thumbprint = "0123456789ABCDEF0123456789ABCDEF01234567"
[runner.target]
app_id = "66666666-7777-8888-9999-000000000000"
certificate_thumbprint = "89ABCDEF0123456789ABCDEF0123456789ABCDEF"
'''


@pytest.fixture
def rendered(make_config, tmp_path: Path) -> Path:
    config = make_config({"chunk_size = 500": "chunk_size = 4"}, append=RUNNER)
    out = tmp_path / "runbook"
    build.render(config, out)
    return out


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "standin.jsonl"
    monkeypatch.setenv("STANDIN_LOG", str(log))
    return log


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["run", *args, "--pwsh", str(STANDIN)], input=input)


def test_a_side_runs_in_order_signs_in_first_and_resumes(rendered: Path, standin: Path) -> None:
    result = run(str(rendered), "--side", "target", "--yes")
    assert result.exit_code == 0, result.output
    seen = calls(standin)
    manifest = json.loads((rendered / "manifest.json").read_text())
    expected = [f["path"] for f in sorted(manifest["files"], key=lambda f: f.get("order", 0))
                if f.get("side") == "target" and f["kind"] == "script"]
    ran = [str(Path(c["script"]).relative_to(rendered)) for c in seen]
    assert sorted(ran) == sorted(expected)
    assert ran[:4] == expected[:4]
    for call in seen:
        assert call["argv"][:3] == ["-NoProfile", "-NonInteractive", "-File"]
        connect = call["bootstrap"].splitlines()[1]
        assert connect.startswith(("Connect-ExchangeOnline -AppId '66666666-7777-8888-9999-000000000000'",
                                   "Connect-MgGraph -ClientId '66666666-7777-8888-9999-000000000000'"))
        assert call["sha256"] == next(f["sha256"] for f in manifest["files"]
                                      if rendered / f["path"] == Path(call["script"]))
    assert "WARNING: WARNING: a warning from the script" not in result.output
    assert "WARNING: a warning from the script" in result.output
    again = run(str(rendered), "--side", "target", "--yes")
    assert again.exit_code == 0 and len(calls(standin)) == len(seen)
    assert f"0 run, {len(expected)} already succeeded" in again.output


def test_a_changed_script_is_refused_and_nothing_runs(rendered: Path, standin: Path) -> None:
    script = rendered / "target/03-migration-endpoint.ps1"
    script.write_bytes(script.read_bytes() + b"\nRemove-Mailbox -Identity *\n")
    result = run(str(rendered), "--side", "target", "--yes")
    assert result.exit_code == 4
    assert "target/03-migration-endpoint.ps1" in result.output and "nothing was run" in result.output
    assert calls(standin) == []


def test_a_failure_exits_3_and_the_rerun_resumes(rendered: Path, standin: Path, monkeypatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "organization-relationship")
    result = run(str(rendered), "--side", "target", "--yes")
    assert result.exit_code == 3
    assert "target/04-organization-relationship.ps1 failed on localhost: New-MailUser: The proxy address" in result.output
    assert len(calls(standin)) == 4
    journal = Journal(rendered)
    assert journal.state("target/03-migration-endpoint.ps1") == "succeeded"
    assert journal.state("target/04-organization-relationship.ps1") == "failed"
    monkeypatch.delenv("STANDIN_FAIL")
    result = run(str(rendered), "--side", "target", "--yes")
    assert result.exit_code == 0
    rerun = [Path(c["script"]).name for c in calls(standin)[4:]]
    assert rerun[0] == "04-organization-relationship.ps1" and "03-migration-endpoint.ps1" not in rerun
    status = CliRunner().invoke(main, ["status", str(rendered)])
    assert "target/04-organization-relationship.ps1" in status.output and "succeeded" in status.output


def test_an_interrupted_step_runs_again(rendered: Path, standin: Path) -> None:
    Journal(rendered).mark("target/01-migration-app.ps1", "running", host="localhost", sha256="x")
    result = run(str(rendered), "1", "--yes")
    assert result.exit_code == 0
    assert [Path(c["script"]).name for c in calls(standin)] == ["01-migration-app.ps1"]
    assert Journal(rendered).state("target/01-migration-app.ps1") == "succeeded"


def test_the_secret_travels_in_the_environment_only_and_is_masked(rendered: Path, standin: Path,
                                                                   monkeypatch) -> None:
    secret = "Qw9~S3cret.Value-for-the-app"
    monkeypatch.setenv("MIGRATION_APP_SECRET", secret)
    monkeypatch.setenv("STANDIN_ECHO_SECRET", "1")
    result = run(str(rendered), "migration-endpoint", "organization-customization", "--yes")
    assert result.exit_code == 0, result.output
    by_script = {Path(c["script"]).name: c for c in calls(standin)}
    assert by_script["03-migration-endpoint.ps1"]["secret_in_env"] == secret
    assert by_script["02-organization-customization.ps1"]["secret_in_env"] is None
    for call in by_script.values():
        assert secret not in json.dumps(call["argv"]) and secret not in call["bootstrap"]
    assert secret not in result.output and "secret is ****" in result.output
    for log in (rendered / "logs").iterdir():
        assert secret not in log.read_text()
    assert secret not in (rendered / "journal.json").read_text()


def test_what_if_passes_through_and_leaves_no_journal(rendered: Path, standin: Path) -> None:
    result = run(str(rendered), "--side", "source", "--yes", "--what-if", input="y\n")
    assert result.exit_code == 0, result.output
    assert all(c["what_if"] for c in calls(standin))
    assert not (rendered / "journal.json").exists()


def test_portal_steps_wait_for_confirmation(rendered: Path, standin: Path) -> None:
    result = run(str(rendered), "2", input="n\n")
    assert result.exit_code == 4
    assert "adminconsent?client_id=d8afba35-2ae3-4b42-89f2-8511bfb42bd2" in result.output
    result = run(str(rendered), "2", input="y\n")
    assert result.exit_code == 0
    assert Journal(rendered).state("source-admin-consent") == "succeeded"
    assert calls(standin) == []


def test_unknown_steps_and_missing_pwsh(rendered: Path, standin: Path) -> None:
    result = run(str(rendered), "no-such-step", "--yes")
    assert result.exit_code == 1 and "no step 'no-such-step'" in result.output
    result = CliRunner().invoke(main, ["run", str(rendered), "1", "--yes", "--pwsh", "/nonexistent/pwsh"])
    assert result.exit_code == 3 and "was not found" in result.output


def test_chunks_run_side_by_side_with_retries_when_throttled(rendered: Path, standin: Path, monkeypatch) -> None:
    monkeypatch.setenv("STANDIN_SLEEP", "0.3")
    monkeypatch.setenv("STANDIN_THROTTLE", "mailusers-0002")
    runbook = Runbook(rendered)
    units = runbook.select(["mailusers"], None)
    assert len(units) == 3
    transport = LocalTransport(str(STANDIN), runbook.runner)
    waits: list[float] = []
    runner = Runner(runbook, transport, lambda unit: True, lambda unit, event: None, parallel=3,
                    backoff=0.01, sleep=waits.append)
    result = runner.run(units)
    transport.close()
    assert len(result.ran) == 3 and waits == [0.01]
    seen = calls(standin)
    assert len(seen) == 4  # one throttled attempt and its retry
    first_three = sorted(seen, key=lambda c: c["started"])[:3]
    assert max(c["started"] for c in first_three) < min(c["ended"] for c in first_three)


def test_a_failed_chunk_fails_the_step(rendered: Path, standin: Path, monkeypatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "mailusers-0003")
    runbook = Runbook(rendered)
    transport = LocalTransport(str(STANDIN), runbook.runner)
    runner = Runner(runbook, transport, lambda unit: True, lambda unit, event: None, parallel=2)
    with pytest.raises(RemoteError, match="mailusers-0003"):
        runner.run(runbook.select(["mailusers"], None))
    transport.close()
    journal = Journal(rendered)
    assert journal.state("target/06-mailusers/mailusers-0001.ps1") == "succeeded"
    assert journal.state("target/06-mailusers/mailusers-0003.ps1") == "failed"


def test_a_new_render_keeps_the_journal_so_only_changed_scripts_run_again(rendered: Path, standin: Path,
                                                                          make_config) -> None:
    assert run(str(rendered), "--side", "target", "--yes").exit_code == 0
    first = len(calls(standin))
    config = make_config({"chunk_size = 500": "chunk_size = 4", 'name = "wingtiptoys"': 'name = "wingtip-moves"'},
                         append=RUNNER)
    build.render(config, rendered)
    assert (rendered / "journal.json").exists() and (rendered / "logs").is_dir()
    result = run(str(rendered), "--side", "target", "--yes")
    assert result.exit_code == 0, result.output
    again = {Path(c["script"]).name for c in calls(standin)[first:]}
    assert "03-migration-endpoint.ps1" in again and "01-migration-app.ps1" not in again


def test_the_licensing_step_runs_in_its_place_signed_in_to_graph(make_config, tmp_path: Path, standin: Path) -> None:
    config = make_config(append=RUNNER + '\n[licensing]\nside = "target"\nusage_location = "KR"\n')
    out = tmp_path / "licensed"
    build.render(config, out)
    result = run(str(out), "--side", "target", "--yes", "--what-if")
    assert result.exit_code == 0, result.output
    seen = [(str(Path(c["script"]).relative_to(out)), c) for c in calls(standin)]
    names = [name for name, _ in seen]
    assert names.index("target/07-licenses.ps1") == names.index("target/06-mailusers/mailusers-0001.ps1") + 1
    bootstrap = dict(seen)["target/07-licenses.ps1"]["bootstrap"]
    assert bootstrap.splitlines()[1].startswith("Connect-MgGraph -ClientId '66666666-7777-8888-9999-000000000000'")
