"""runbook run end to end through real pypsrp over HTTP, against the loopback WSMan server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from runbook import build
from runbook.cli import main
from runbook.run.journal import Journal

from .psrp_server import LoopbackWSMan, Received, Reply
from .test_run_local import RUNNER

USER, PASSWORD = "admin", "P@ss w0rd'"
SECRET = "Zx8~app.secret-value"


def behave(received: Received) -> Reply:
    script = received.statements[-1][0]
    if "# FAIL-TERMINATING" in script:
        return Reply(output=["partial"], fail="Set-OrganizationRelationship: The operation couldn't be performed")
    if "# FAIL-ERROR" in script:
        return Reply(output=["partial"], errors=["New-MailUser: The proxy address is already being used"])
    return Reply(output=[f"ran {len(script)} characters"], warnings=["a warning"],
                 progress=[("user01@tailspintoys.kr", 50), ("minjun.kim@tailspintoys.kr", 100)])


@pytest.fixture
def rendered(make_config, tmp_path: Path) -> Path:
    config = make_config({"chunk_size = 500": "chunk_size = 5"}, append=RUNNER.replace('transport = "local"',
                         'transport = "psrp"\nhost = "127.0.0.1"\nhttps = false\nauth = "basic"'))
    out = tmp_path / "runbook"
    build.render(config, out)
    return out


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    with LoopbackWSMan(behave, USER, PASSWORD) as running:
        yield running


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_PSRP_USERNAME", USER)
    monkeypatch.setenv("RUNBOOK_PSRP_PASSWORD", PASSWORD)
    monkeypatch.setenv("MIGRATION_APP_SECRET", SECRET)


def run(rendered: Path, server: LoopbackWSMan, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["run", str(rendered), *args, "--port", str(server.port),
                                     "--allow-unencrypted-http", "--yes"])


def test_scripts_arrive_unchanged_after_the_sign_in_with_typed_parameters(rendered: Path, server) -> None:
    result = run(rendered, server, "migration-endpoint", "organization-relationship", "--side", "target",
                 "--what-if")
    assert result.exit_code == 0, result.output
    assert len(server.received) == 2
    endpoint, relationship = server.received
    sign_in, (text, parameters) = endpoint.statements
    assert sign_in[0] == ("Connect-ExchangeOnline -AppId '66666666-7777-8888-9999-000000000000' -CertificateThumbprint "
                          "'89ABCDEF0123456789ABCDEF0123456789ABCDEF' -Organization 'm365x79002307.onmicrosoft.com' "
                          "-ShowBanner:$false")
    file_bytes = (rendered / "target/03-migration-endpoint.ps1").read_bytes()
    assert text.encode("utf-8") == file_bytes[3:] and file_bytes[:3] == b"\xef\xbb\xbf"
    assert parameters == {"WhatIf": True, "AppSecret": SECRET}
    assert relationship.statements[1][1] == {"WhatIf": True}
    assert "WARNING: a warning" in result.output


@pytest.mark.parametrize(("marker", "expected"), [
    # A non-terminating error on the error stream fails the step as surely as a terminating one.
    (b"# FAIL-ERROR", "failed: target/04-organization-relationship.ps1 failed on 127.0.0.1: New-MailUser: The proxy"),
    (b"# FAIL-TERMINATING", "The operation couldn't be performed"),
])
def test_an_error_fails_the_step(rendered: Path, server, marker: bytes, expected: str) -> None:
    script = rendered / "target/04-organization-relationship.ps1"
    script.write_bytes(script.read_bytes() + marker + b"\n")
    _rehash(rendered, "target/04-organization-relationship.ps1")
    result = run(rendered, server, "organization-relationship", "--side", "target")
    assert result.exit_code == 3
    assert expected in result.output
    assert "Traceback" not in result.output


def test_wrong_password_and_unreachable_host_are_one_line(rendered: Path, server, monkeypatch) -> None:
    monkeypatch.setenv("RUNBOOK_PSRP_PASSWORD", "wrong")
    result = run(rendered, server, "1")
    assert result.exit_code == 3
    assert len(result.output.strip().splitlines()) == 1 and "cannot open PowerShell Remoting to 127.0.0.1" in result.output
    result = CliRunner().invoke(main, ["run", str(rendered), "1", "--port", "9", "--allow-unencrypted-http", "--yes"])
    assert result.exit_code == 3 and len(result.output.strip().splitlines()) == 1


def test_a_changed_file_is_refused_before_anything_is_sent(rendered: Path, server) -> None:
    script = rendered / "target/01-migration-app.ps1"
    script.write_bytes(script.read_bytes().replace(b"Write-Information", b"Write-Host"))
    result = run(rendered, server, "--side", "target")
    assert result.exit_code == 4
    assert server.requests == 0


def test_a_run_stopped_midway_resumes_without_repeating(rendered: Path, server) -> None:
    chunk = rendered / "target/06-mailusers/mailusers-0002.ps1"
    original = chunk.read_bytes()
    chunk.write_bytes(original + b"# FAIL-TERMINATING\n")
    _rehash(rendered, "target/06-mailusers/mailusers-0002.ps1")
    result = run(rendered, server, "mailusers", "--parallel", "1")
    assert result.exit_code == 3
    journal = Journal(rendered)
    states = {k: v["state"] for k, v in journal.entries.items()}
    assert states["target/06-mailusers/mailusers-0001.ps1"] == "succeeded"
    assert states["target/06-mailusers/mailusers-0002.ps1"] == "failed"
    first = len(server.received)
    chunk.write_bytes(original)
    _rehash(rendered, "target/06-mailusers/mailusers-0002.ps1")
    result = run(rendered, server, "mailusers")
    assert result.exit_code == 0, result.output
    rerun = [s.statements[1][0] for s in server.received[first:]]
    # Chunks are independent: 1 and 3 finished in the first run, only 2 (export lines 7-11) runs again.
    assert len(rerun) == 1 and "'Line' = 7;" in rerun[0]
    assert Journal(rendered).state("target/06-mailusers/mailusers-0002.ps1") == "succeeded"


def test_no_secret_in_logs_or_journal(rendered: Path, server) -> None:
    result = run(rendered, server, "migration-endpoint")
    assert result.exit_code == 0, result.output
    assert server.received[-1].statements[1][1] == {"AppSecret": SECRET}
    for path in [*(rendered / "logs").iterdir(), rendered / "journal.json"]:
        text = path.read_text()
        assert SECRET not in text and PASSWORD not in text


def test_pipelines_grow_with_chunks_not_users(rendered: Path, server) -> None:
    result = run(rendered, server, "mailusers", "--parallel", "2")
    assert result.exit_code == 0, result.output
    scripts = [s.statements[1][0] for s in server.received]
    assert len(scripts) == 3  # 12 users in chunks of 5
    assert sum(len(re.findall(r"\[ordered\]@\{'Line' = ", s)) for s in scripts) == 12


def _rehash(folder: Path, path: str) -> None:
    """Stand in for a re-render: record the edited file's hash in the manifest."""
    import hashlib

    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == path:
            entry["sha256"] = hashlib.sha256((folder / path).read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_batch_scripts_get_their_csv_bytes(rendered: Path, server) -> None:
    result = run(rendered, server, "new-migration-batches")
    assert result.exit_code == 0, result.output
    sent = {s.statements[1][1]["CsvData"] for s in server.received}
    files = {p.read_bytes() for p in (rendered / "target/10-new-migration-batches").glob("*.csv")}
    assert {bytes(b) for b in sent} == files


def test_streams_arrive_by_kind(rendered: Path, server) -> None:
    from runbook.run.manifest import Runbook
    from runbook.run.runner import Runner
    from runbook.run.transport import PsrpSettings, PsrpTransport

    runbook = Runbook(rendered)
    transport = PsrpTransport(PsrpSettings("127.0.0.1", server.port, False, True, "basic", USER, PASSWORD, True, 1),
                              runbook.runner)
    events: list[tuple[str, str]] = []
    Runner(runbook, transport, lambda unit: True, lambda unit, event: events.append((event.kind, event.text))).run(
        runbook.select(["1"], None))
    transport.close()
    kinds = [kind for kind, _ in events]
    assert kinds.count("output") == 1 and ("warning", "a warning") in events
    assert ("progress", "MailUsers: minjun.kim@tailspintoys.kr (100%)") in events
