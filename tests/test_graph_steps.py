"""Cross-tenant synchronization, notices, snapshots and their permissions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runbook import build
from runbook.config import load_config
from runbook.errors import InputError
from runbook.plan import NOTICE_ROLES, SNAPSHOT_ROLES, Plan
from runbook.powershell import decode_single_quoted

from .conftest import SAMPLE_CONFIG, nodes_of, syntax_errors, tree_files


def literals(data: bytes) -> set[str]:
    return {decode_single_quoted(n.text.decode()) for n in nodes_of(data, "string_literal")
            if n.text.decode().startswith("'")}


def test_sync_steps_go_to_the_right_tenants(sample_render: Path) -> None:
    files = tree_files(sample_render)
    target = files["target/05-cross-tenant-sync.ps1"].decode("utf-8-sig")
    source = files["source/04-cross-tenant-sync.ps1"].decode("utf-8-sig")
    assert "'TenantId' = 'afab079d-1f08-4de3-881e-435e497f923f'" in target
    assert "'TenantId' = 'a0c898ca-2445-4e74-ab4b-afd7916549a6'" in source
    assert "identitySynchronization" in target and "inboundAllowed = $true" in target
    for needle in ("outboundAllowed = $true", "applicationTemplates/{0}/instantiate", "templateId = 'Azure2Azure'",
                   "/validateCredentials", "synchronization/secrets", "appRoleAssignedTo", "provisionOnDemand",
                   "/start'"):
        assert needle in source, needle
    assert "'Groups' = @('All Wingtip Toys Staff')" in source and "'TestUser' = 'user01@wingtiptoys.kr'" in source
    status = files["source/05-cross-tenant-sync-status.ps1"].decode("utf-8-sig")
    assert "auditLogs/provisioning" in status


def test_graph_steps_declare_and_check_their_permissions(sample_render: Path) -> None:
    files = tree_files(sample_render)
    runbook_md = files["RUNBOOK.md"].decode()
    assert "Permissions: Microsoft Graph delegated permissions Policy.ReadWrite.CrossTenantAccess, " \
           "Application.ReadWrite.All, Synchronization.ReadWrite.All" in runbook_md
    assert "Permissions: Microsoft Graph application permissions Mail.Send (app-only)" in runbook_md
    assert "Permissions: Microsoft Graph application permissions Mail.ReadBasic.All (app-only)" in runbook_md
    notices = files["source/11-notices/001-Pilot.ps1"].decode("utf-8-sig")
    assert "'GraphAppRoles' = @('Mail.Send')" in notices
    apps = files["source/08-graph-apps.ps1"].decode("utf-8-sig")
    requested = re.findall(r"'Purpose' = '(\w+)'; 'Roles' = @\(([^)]*)\)", apps)
    assert requested == [("snapshots", "'Mail.ReadBasic.All'"), ("notices", "'Mail.Send'")]
    assert tuple(SNAPSHOT_ROLES) == ("Mail.ReadBasic.All",) and tuple(NOTICE_ROLES) == ("Mail.Send",)
    target_apps = files["target/09-graph-apps.ps1"].decode("utf-8-sig")
    assert "'Roles' = @('Mail.ReadBasic.All')" in target_apps and "Mail.Send'" not in target_apps


def test_snapshots_pair_addresses_across_the_move(sample_render: Path) -> None:
    files = tree_files(sample_render)
    before = files["source/10-snapshot-before/001-Pilot.ps1"].decode("utf-8-sig")
    after = files["target/13-snapshot-after/001-Pilot.ps1"].decode("utf-8-sig")
    assert "[ordered]@{'Mailbox' = 'user01@wingtiptoys.kr'; 'MappedTo' = 'user01@tailspintoys.kr'}" in before
    assert "[ordered]@{'Mailbox' = 'user01@tailspintoys.kr'; 'MappedTo' = 'user01@wingtiptoys.kr'}" in after
    assert "[int] $NewestSubjects = 0" in before


def test_without_sync_and_notify_their_steps_are_left_out(tmp_path: Path, make_config) -> None:
    text = SAMPLE_CONFIG.read_text(encoding="utf-8")
    start, end = text.index("[sync]"), text.index("[snapshots]")
    config = make_config({text[start:end]: ""})
    plan = Plan(load_config(config).config)
    keys = [step.id for step in plan]
    assert "source-cross-tenant-sync" not in keys and "source-notices" not in keys
    assert "source-snapshot-before" in keys
    out = tmp_path / "out"
    build.render(config, out)
    assert "target/05-mailusers/mailusers-0001.ps1" in tree_files(out)


def test_hostile_display_names_stay_text_in_notices(tmp_path: Path, make_config) -> None:
    from .test_exports import export_csv, mailbox_row

    hostile = "<img src=x onerror=alert(1)> {cutover} '; Send-MgUserMail -UserId x ; '"
    rows = [mailbox_row("user01", display=hostile), mailbox_row("minjun.kim"), mailbox_row("sales")]
    config = make_config(export=export_csv(rows))
    out = tmp_path / "out"
    build.render(config, out)
    script = (out / "source/11-notices/001-Pilot.ps1").read_bytes()
    assert syntax_errors(script) == []
    assert hostile in literals(script)
    commands = [n.text.decode() for n in nodes_of(script, "command_name")]
    assert commands.count("Send-MgUserMail") == 1
    text = script.decode("utf-8-sig")
    assert "[System.Net.WebUtility]::HtmlEncode($text)" in text
    assert "[regex]::Replace($Template, '\\{(display_name|old_address|new_address|batch|cutover)\\}', $evaluator)" in text


def test_notice_template_errors_name_file_and_line(make_config) -> None:
    config = make_config({'subject = "Your mailbox moves to Tailspin Toys on {cutover}"':
                          'subject = "Moving {when}"'})
    (config.parent / "notice.html").write_text("<p>Hi {display_name}</p>\n<p>{new_adress}</p>\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        build.validate(config)
    found = [str(p).replace(str(config.parent) + "/", "") for p in info.value.problems]
    assert found == [
        "migration.toml:54: notify.subject: {when} is not a placeholder; use {display_name}, {old_address}, "
        "{new_address}, {batch}, {cutover}",
        "notice.html:2: placeholder: {new_adress} is not a placeholder; use {display_name}, {old_address}, "
        "{new_address}, {batch}, {cutover}",
    ]


def test_missing_body_and_cutover_are_config_errors(make_config) -> None:
    config = make_config({'body = "notice.html"': 'body = "missing.html"'})
    with pytest.raises(InputError) as info:
        build.validate(config)
    assert [(p.field, p.line) for p in info.value.problems] == [("notify.body", 55)]
    config = make_config({'cutover = "2026-12-20T22:00:00Z"      # for batches without complete_after': ""})
    with pytest.raises(InputError) as info:
        build.validate(config)
    assert [p.message for p in info.value.problems] == [
        "batch wingtiptoys-001 has no complete_after and [notify] has no cutover, but the notice uses {cutover}"]


def test_sync_needs_someone_in_scope(make_config) -> None:
    config = make_config({'groups = ["All Wingtip Toys Staff"]   # display names or object ids, resolved at run time\n'
                          'users = ["user01@wingtiptoys.kr"]     # UPNs or object ids\n': ""})
    with pytest.raises(InputError) as info:
        load_config(config, display="migration.toml")
    assert [str(p) for p in info.value.problems] == [
        "migration.toml:45: sync: give users = [...] and/or groups = [...]: at least one must be in scope"]


def test_reruns_skip_users_already_notified_and_folder_names_keep_their_slashes(sample_render: Path) -> None:
    files = tree_files(sample_render)
    notices = files["source/11-notices/001-Pilot.ps1"]
    assert syntax_errors(notices) == []
    text = notices.decode("utf-8-sig")
    assert "Import-Csv -LiteralPath $ResultPath" in text and "-Action 'sent before'" in text
    snapshot = files["source/10-snapshot-before/001-Pilot.ps1"].decode("utf-8-sig")
    assert ".Replace('%', '%25').Replace('/', '%2F')" in snapshot


def test_licensing_on_the_target_lists_the_target_upns(tmp_path: Path, make_config) -> None:
    config = make_config(append='\n[licensing]\nside = "target"\nusage_location = "KR"\n')
    out = tmp_path / "out"
    build.render(config, out)
    files = tree_files(out)
    script = files["target/07-licenses.ps1"]
    assert syntax_errors(script) == []
    text = script.decode("utf-8-sig")
    assert "    'user01@tailspintoys.kr'\n" in text and "'UsageLocation' = 'KR'" in text
    assert "'GraphScopes' = @('User.ReadWrite.All', 'Organization.Read.All')" in text
    assert "target/08-preflight/organization.ps1" in files  # the steps after it move down one
    assert "Permissions: Microsoft Graph delegated permissions User.ReadWrite.All, Organization.Read.All" in \
        files["RUNBOOK.md"].decode()


def test_licensing_on_the_source_uses_the_exported_upns(tmp_path: Path, make_config) -> None:
    config = make_config(append='\n[licensing]\nside = "source"\nsku_part_number = "Cross_tenant_user_data_migration"\n')
    out = tmp_path / "out"
    build.render(config, out)
    text = (out / "source/08-licenses.ps1").read_text("utf-8-sig")
    assert "    'user01@wingtiptoys.kr'\n" in text
    runbook_md = (out / "RUNBOOK.md").read_text()
    assert "admin roles: License Administrator (or User Administrator)" in runbook_md
    assert "a re-run of the source pre-flight then shows the licence" in runbook_md
    assert "'SkuPartNumber' = 'Cross_tenant_user_data_migration'; 'UsageLocation' = $null" in text


def test_licensing_usage_location_is_a_country_code(make_config) -> None:
    config = make_config(append='\n[licensing]\nusage_location = "Korea"\n')
    with pytest.raises(InputError) as info:
        load_config(config, display="migration.toml")
    assert [p.field for p in info.value.problems] == ["licensing.usage_location"]


def test_source_licensing_names_users_by_upn_not_by_primary_address(tmp_path: Path, make_config) -> None:
    export = (SAMPLE_CONFIG.parent / "csv" / "source-mailboxes.csv").read_bytes()
    upn = b'"UserMailbox","user01@wingtiptoys.kr","False"'
    assert export.count(upn) == 1
    config = make_config(append='\n[licensing]\nside = "source"\n',
                         export=export.replace(upn, b'"UserMailbox","u01@corp.wingtiptoys.kr","False"'))
    out = tmp_path / "out"
    build.render(config, out)
    text = (out / "source/08-licenses.ps1").read_text("utf-8-sig")
    assert "    'u01@corp.wingtiptoys.kr'\n" in text
    assert "    'user01@wingtiptoys.kr'\n" not in text
