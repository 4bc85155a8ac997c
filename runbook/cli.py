"""The ``runbook`` command: a thin layer over the library that owns output and exit codes.

Exit codes (DESIGN §3): 0 ok, 1 invalid input, 2 usage, 3 a script failed remotely,
4 refused. Problems go to stderr as ``PATH:LINE: field: message``, all of them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__
from . import build
from .config import Config, load_config
from .errors import InputError, Problem, RefusedError, RunbookError
from .starter import write_starter

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_REMOTE, EXIT_REFUSED = 0, 1, 2, 3, 4

CONFIG_OPTION = click.option(
    "-c", "--config", "config", required=True,
    type=click.Path(path_type=Path, dir_okay=False), help="The migration.toml to read.",
)
MAILBOXES_OPTION = click.option(
    "--mailboxes", type=click.Path(path_type=Path, dir_okay=False),
    help="Mailbox export to use instead of [mailboxes] export.",
)


def _fail(code: int, lines: list[str]) -> NoReturn:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(code)


def _report_error(exc: RunbookError) -> NoReturn:
    from .run.runner import RemoteError

    if isinstance(exc, RemoteError):
        _fail(EXIT_REMOTE, [f"failed: {exc}"])
    if isinstance(exc, InputError):
        errors = [p for p in exc.problems if p.severity == "error"]
        lines = [str(p) for p in exc.problems]
        lines.append(f"{len(errors)} error(s); nothing was written.")
        _fail(EXIT_INVALID, lines)
    if isinstance(exc, RefusedError):
        _fail(EXIT_REFUSED, [f"refused: {exc}"])
    _fail(EXIT_INVALID, [f"error: {exc}"])


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def _progress(config: Path, mailboxes: Path | None, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for long reads, only when stderr is a terminal (the export is
    looked up only then: finding it means reading the config once more)."""
    path = _export_for(config, mailboxes) if _stderr_is_terminal() else None
    if path is None or not path.is_file():
        yield None
        return
    total = build.count_records(path)
    if total < 5000:
        yield None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


def _export_for(config: Path, mailboxes: Path | None) -> Path | None:
    if mailboxes is not None:
        return mailboxes
    try:
        return load_config(config, display=str(config)).export_path()
    except RunbookError:
        return None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runbook")
def main() -> None:
    """Render reviewed, tenant-guarded PowerShell runbooks for Exchange Online
    cross-tenant mailbox migrations."""


@main.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
def init(directory: Path) -> None:
    """Write a commented starter migration.toml and a sample export into DIRECTORY."""
    try:
        written = write_starter(directory)
    except RunbookError as exc:
        _report_error(exc)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"Next: edit {directory / 'migration.toml'}, then runbook validate -c {directory / 'migration.toml'}")


@main.command()
@CONFIG_OPTION
@MAILBOXES_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one document with every finding, for pipelines.")
def validate(config: Path, mailboxes: Path | None, fmt: str) -> None:
    """Run every offline check on the config and the mailbox export; write nothing."""
    try:
        with _progress(config, mailboxes, "Checking") if fmt == "text" else nullcontext() as progress:
            report = build.validate(config, mailboxes=mailboxes, progress=progress, config_display=str(config))
    except InputError as exc:
        if fmt == "json":
            _emit_json(False, exc.problems)
            sys.exit(EXIT_INVALID)
        _report_error(exc)
    except RunbookError as exc:
        _report_error(exc)
    if fmt == "json":
        _emit_json(True, report.warnings, mailboxes=report.prepared.mailbox_count,
                   batches=len(report.prepared.batches))
        return
    for problem in report.warnings:
        click.echo(str(problem), err=True)
    click.echo(f"OK: {report.prepared.mailbox_count} mailbox(es) in {len(report.prepared.batches)} batch(es); "
               f"{len(report.warnings)} warning(s).")


def _emit_json(ok: bool, problems: list[Problem], **extra: Any) -> None:
    document = {
        "ok": ok,
        **extra,
        "errors": [p.to_dict() for p in problems if p.severity == "error"],
        "warnings": [p.to_dict() for p in problems if p.severity == "warning"],
    }
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@main.command()
@CONFIG_OPTION
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder to write the runbook into (replaced as a whole).")
@MAILBOXES_OPTION
def render(config: Path, output: Path, mailboxes: Path | None) -> None:
    """Validate, then write every script, the batch CSVs, RUNBOOK.md and manifest.json."""
    try:
        with _progress(config, mailboxes, "Rendering") as progress:
            result = build.render(config, output, mailboxes=mailboxes, progress=progress,
                                  config_display=str(config))
    except RunbookError as exc:
        _report_error(exc)
    for problem in result.warnings:
        click.echo(str(problem), err=True)
    scripts = sum(1 for f in result.files if f.kind == "script")
    click.echo(f"Wrote {output}: {scripts} scripts for {result.prepared.mailbox_count} mailbox(es) in "
               f"{len(result.prepared.batches)} batch(es). Start with {output / 'RUNBOOK.md'}.")


@main.command("consent-url")
@CONFIG_OPTION
def consent_url(config: Path) -> None:
    """Print the admin-consent URL the source tenant's admin opens."""
    try:
        loaded = load_config(config, display=str(config))
    except RunbookError as exc:
        _report_error(exc)
    click.echo(loaded.config.consent_url())


@main.command()
@click.argument("before", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("after", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--tolerance", default="0", show_default=True,
              help="Items a folder may lose: a number, or a percentage like 1%.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write a readable HTML report here.")
def compare(before: Path, after: Path, tolerance: str, fmt: str, html_path: Path | None) -> None:
    """Compare folder snapshots from before and after the move; exit 1 if anything is short."""
    from . import compare as cmp

    try:
        allowed = cmp.Tolerance.parse(tolerance)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tolerance") from None
    try:
        result = cmp.compare(cmp.read_snapshot(before), cmp.read_snapshot(after), allowed)
    except RunbookError as exc:
        _report_error(exc)
    if html_path is not None:
        html_path.write_text(cmp.html_report(result, str(before), str(after)), encoding="utf-8")
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        for line in cmp.text_report(result):
            click.echo(line)
    sys.exit(EXIT_INVALID if result.short else EXIT_OK)


@main.command("run")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.argument("steps", nargs=-1)
@click.option("--side", type=click.Choice(["source", "target"]), help="Run this tenant's pending steps in order.")
@click.option("--yes", is_flag=True, help="Do not ask before each script.")
@click.option("--what-if", "what_if", is_flag=True, help="Run the scripts with -WhatIf: nothing changes.")
@click.option("--transport", type=click.Choice(["psrp", "local"]), default=None,
              help="PowerShell Remoting to a jump host, or a local pwsh (default: [runner] transport).")
@click.option("--host", default=None, help="Jump host (default [runner] host).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default 5986, or 5985 with --http.")
@click.option("--http", "plain_http", is_flag=True, default=None,
              help="Plain HTTP (with message encryption unless basic auth).")
@click.option("--auth", type=click.Choice(["negotiate", "kerberos", "ntlm", "credssp", "certificate", "basic"]),
              default=None, help="Default [runner] auth (negotiate).")
@click.option("--ca-bundle", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="CA bundle to validate the jump host's certificate.")
@click.option("--allow-unencrypted-http", "allow_unencrypted", is_flag=True, default=None,
              help="Allow plain HTTP without message encryption. Everything, secrets included, crosses the "
                   "network readable.")
@click.option("--pwsh", default=None, help="The pwsh executable of the local transport.")
@click.option("--parallel", type=click.IntRange(1, 16), default=None,
              help="Runspaces for MailUser chunk scripts (default [runner] parallel, 3).")
def run_command(directory: Path, steps: tuple[str, ...], side: str | None, yes: bool, what_if: bool,
                transport: str | None, host: str | None, port: int | None, plain_http: bool | None,
                auth: str | None, ca_bundle: Path | None, allow_unencrypted: bool | None, pwsh: str | None,
                parallel: int | None) -> None:
    """Run steps of a rendered runbook (names or order numbers, or --side), checking every hash first."""
    from .run.manifest import Runbook
    from .run.runner import Declined, RemoteError, Runner, secrets_for
    from .run.transport import LocalTransport, PsrpSettings, PsrpTransport, TransportError

    try:
        runbook = Runbook(directory)
        units = runbook.select(steps, side)
        runbook.verify(units)
    except RunbookError as exc:
        _report_error(exc)
    settings = runbook.runner
    workers = parallel or int(settings.get("parallel", 3))
    try:
        if (transport or settings.get("transport", "psrp")) == "local":
            connection = LocalTransport(pwsh or settings.get("pwsh", "pwsh"), settings)
        else:
            https = not plain_http if plain_http is not None else bool(settings.get("https", True))
            validation: bool | str = str(ca_bundle or settings.get("ca_bundle") or "") or bool(
                settings.get("cert_validation", True))
            username = os.environ.get(str(settings.get("username_env", "RUNBOOK_PSRP_USERNAME")))
            password = os.environ.get(str(settings.get("password_env", "RUNBOOK_PSRP_PASSWORD")))
            chosen_auth = auth or settings.get("auth", "negotiate")
            if username and password is None and chosen_auth != "certificate":
                password = click.prompt(f"Password of {username} on the jump host", hide_input=True, err=True)
            connection = PsrpTransport(PsrpSettings(
                host=host or settings.get("host") or "", port=port or settings.get("port"), https=https,
                cert_validation=validation, auth=chosen_auth, username=username, password=password,
                allow_unencrypted_http=bool(allow_unencrypted or settings.get("allow_unencrypted_http", False)),
                parallel=workers), settings)
    except TransportError as exc:
        _fail(EXIT_REMOTE, [f"error: {exc}"])

    def confirm(unit) -> bool:  # type: ignore[no-untyped-def]
        if unit.path is None:
            click.echo(f"Step {unit.order} ({unit.side}): {unit.title}\n  {unit.instructions}")
            return click.confirm("  Done?", default=False, err=True)
        click.echo(f"Step {unit.order} ({unit.side}, tenant {unit.tenant_id}) on {connection.host}: {unit.path}\n"
                   f"  sha256 {unit.sha256}{'  (-WhatIf)' if what_if else ''}")
        return yes or click.confirm("  Run it?", default=False, err=True)

    def show(unit, event) -> None:  # type: ignore[no-untyped-def]
        if event.kind == "progress":
            if _stderr_is_terminal():  # a live progress line, overwritten in place
                click.echo(f"\r  {event.text[:100]:<100}", nl=False, err=True)
            return
        line = event.text if event.kind == "output" else f"{event.kind.upper()}: {event.text}"
        click.echo(f"  {line}", err=event.kind in ("error", "warning"))

    secrets = secrets_for(runbook, units, os.environ, lambda text: click.prompt(text, hide_input=True, err=True))
    runner = Runner(runbook, connection, confirm, show, what_if=what_if, secrets=secrets, parallel=workers)
    try:
        result = runner.run(units)
    except RemoteError as exc:
        _fail(EXIT_REMOTE, [f"failed: {exc}"])
    except Declined as exc:
        _fail(EXIT_REFUSED, [f"refused: {exc}"])
    except TransportError as exc:
        _fail(EXIT_REMOTE, [f"error: {exc}"])
    except RunbookError as exc:
        _report_error(exc)
    finally:
        connection.close()
    click.echo(f"Done: {len(result.ran)} run, {len(result.skipped)} already succeeded.")


@main.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
def status(directory: Path) -> None:
    """Show each step's state from the run journal."""
    from .run.manifest import Runbook
    from .run.runner import status_rows

    try:
        rows = status_rows(Runbook(directory))
    except RunbookError as exc:
        _report_error(exc)
    width = max(len(r[1]) for r in rows)
    for order, key, state, when, detail in rows:
        click.echo(f"{order:>3}  {key:<{width}}  {state:<9}  {when:<20}  {detail}".rstrip())


@main.command()
def schema() -> None:
    """Print the JSON Schema of migration.toml."""
    click.echo(json.dumps(Config.model_json_schema(), indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
