"""migration.toml: every problem at once, with its key path and line; secrets only by reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.config import load_config
from runbook.errors import InputError
from runbook.tomlsource import index_key_lines

from .conftest import SAMPLE_CONFIG


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        load_config(path, display="migration.toml")
    return [str(p) for p in info.value.problems]


def test_the_sample_is_valid() -> None:
    loaded = load_config(SAMPLE_CONFIG)
    cfg = loaded.config
    assert cfg.source.initial_domain == "m365x47686041.onmicrosoft.com"
    assert cfg.target_delivery_domain == "m365x79002307.onmicrosoft.com"
    assert cfg.app.secret_kind == "env" and cfg.app.secret_name == "MIGRATION_APP_SECRET"
    assert cfg.consent_url() == (
        "https://login.microsoftonline.com/m365x47686041.onmicrosoft.com/adminconsent"
        "?client_id=d8afba35-2ae3-4b42-89f2-8511bfb42bd2&redirect_uri=https://office.com"
    )


def test_a_literal_secret_is_refused_without_echoing_it(make_config) -> None:
    config = make_config({'secret = "env:MIGRATION_APP_SECRET"': 'secret = "Qx8~hunter2.Secret"'})
    found = problems_of(config)
    assert found == [
        'migration.toml:21: app.secret: a literal secret is not allowed; reference the secret instead of '
        'writing it here: secret = "env:MIGRATION_APP_SECRET" (an environment variable on the machine that '
        'runs the script), "prompt" (asked for at run time) or "vault:NAME" (PowerShell SecretManagement)'
    ]
    assert "hunter2" not in "\n".join(found)


def test_every_problem_is_reported_at_once_with_lines(make_config) -> None:
    config = make_config({
        'tenant_id = "a0c898ca-2445-4e74-ab4b-afd7916549a6"': 'tenant_id = "not-a-guid"',
        'initial_domain = "M365x79002307.onmicrosoft.com"': 'initial_domain = "tailspintoys.kr"',
        'name = "wingtiptoys"': 'name = "' + "e" * 65 + '"',
        'alias = "t2t-migration-scope"': 'alias = "bad alias"',
        'batch_size = 2000': 'batch_size = 2001',
        'auto_start = true': 'auto_start = true\nautostart = false',
    })
    assert problems_of(config) == [
        "migration.toml:9: source.tenant_id: not a GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
        "migration.toml:16: target.initial_domain: must be the tenant's initial domain, ending in "
        ".onmicrosoft.com for cloud global",
        "migration.toml:25: endpoint.name: string should have at most 64 characters",
        "migration.toml:28: organization_relationships.target_name: string should have at most 64 characters",
        "migration.toml:33: scope_group.alias: an Exchange alias takes letters, digits and "
        "!#$%&'*+-/=?^_`{|}~ with single dots between them",
        "migration.toml:42: mailboxes.batch_size: input should be less than or equal to 2000",
        "migration.toml:65: batches[0].autostart: unknown key (did you mean 'auto_start'?)",
    ]


def test_tenants_must_differ_and_map_into_the_target(make_config) -> None:
    config = make_config({
        'tenant_id = "afab079d-1f08-4de3-881e-435e497f923f"': 'tenant_id = "a0c898ca-2445-4e74-ab4b-afd7916549a6"',
        '"wingtip.co.kr" = "tailspintoys.kr"': '"wingtip.co.kr" = "wingtiptoys.kr"\n"legacy.kr" = "fabrikam.kr"',
        'target_delivery_domain = "M365x79002307.onmicrosoft.com"': 'target_delivery_domain = "contoso.onmicrosoft.com"',
    })
    assert problems_of(config) == [
        "migration.toml:15: target.tenant_id: source and target tenant ids are the same; a move needs two tenants",
        "migration.toml:37: domains.wingtip.co.kr: maps to wingtiptoys.kr, a source domain; every target must "
        "be a domain of the target tenant",
        "migration.toml:38: domains.legacy.kr: maps to fabrikam.kr, which is not in target.accepted_domains "
        "or the target initial domain",
        "migration.toml:42: mailboxes.target_delivery_domain: must be a domain of the target tenant "
        "(usually m365x79002307.onmicrosoft.com)",
    ]


def test_missing_sections_and_bad_types(tmp_path: Path) -> None:
    path = tmp_path / "migration.toml"
    path.write_text('cloud = "azure"\n[source]\nname = "A"\n', encoding="utf-8")
    found = problems_of(path)
    assert "migration.toml:1: cloud: input should be 'global', 'gcc-high' or 'dod'" in found
    assert "migration.toml:2: source.tenant_id: required key is missing" in found
    assert "migration.toml: app: required key is missing" in found


def test_a_user_in_two_batches_is_an_error(make_config) -> None:
    config = make_config(append='\n[[batches]]\nname = "Wave2"\nusers = ["USER01@wingtiptoys.kr"]\n')
    assert problems_of(config) == [
        "migration.toml:71: batches[1].users[0]: USER01@wingtiptoys.kr is already in batches[0] (users[0]); "
        "a mailbox moves in one batch",
    ]


def test_toml_syntax_errors_carry_the_line(tmp_path: Path) -> None:
    path = tmp_path / "migration.toml"
    path.write_text('[source]\nname = "A"\nname = "B"\n', encoding="utf-8")
    found = problems_of(path)
    assert len(found) == 1 and found[0].startswith("migration.toml:3: toml: syntax error")


def test_gov_clouds_use_their_hosts(make_config) -> None:
    config = make_config({
        'cloud = "global"': 'cloud = "gcc-high"',
        "M365x47686041.onmicrosoft.com": "M365x47686041.onmicrosoft.us",
        'initial_domain = "M365x79002307.onmicrosoft.com"': 'initial_domain = "M365x79002307.onmicrosoft.us"',
        'target_delivery_domain = "M365x79002307.onmicrosoft.com"': 'target_delivery_domain = "M365x79002307.onmicrosoft.us"',
    })
    cfg = load_config(config).config
    assert cfg.hosts.exo_remote_server == "outlook.office365.us"
    assert cfg.consent_url().startswith("https://login.microsoftonline.us/m365x47686041.onmicrosoft.us/")


def test_key_line_index_handles_quotes_arrays_and_multiline_values() -> None:
    text = (
        '# c\nname = "x"\n[a]\n"b.c" = 1\nlist = [\n  "x",\n  "y",\n]\nafter = 2\n'
        'doc = """\nkey = not a key\n"""\n[[t]]\nk = 1\n[[t]]\nk = 2\n[a.sub]\nz = { q = 1 }\n'
    )
    lines = index_key_lines(text)
    assert lines[("name",)] == 2
    assert lines[("a", "b.c")] == 4
    assert lines[("a", "list")] == 5
    assert lines[("a", "after")] == 9
    assert ("a", "key") not in lines
    assert lines[("t", 0, "k")] == 14 and lines[("t", 1, "k")] == 16
    assert lines[("a", "sub", "z")] == 18
