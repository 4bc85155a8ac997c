"""How a reviewed script reaches PowerShell, and what comes back.

A transport runs the reviewed file's text unchanged. What the script needs at run time and must
not contain (the app secret) travels beside it: for the local transport in the child's
environment only, never in its arguments. The tenant sign-in is a separate statement run before
the script, whose own guard then checks the tenant.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from ..errors import RunbookError
from ..powershell import ps_bool, ps_str
from .manifest import Unit

EventKind = Literal["output", "error", "warning", "verbose", "information", "progress"]
SECRET_ENV = "RUNBOOK_APP_SECRET"
"""The child environment variable the endpoint script takes the app secret from (local transport)."""
SECRET_PARAMETER = "AppSecret"
"""The endpoint script's SecureString parameter for the app secret (PowerShell Remoting)."""


@dataclass(frozen=True)
class Event:
    kind: EventKind
    text: str


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str = ""


class TransportError(RunbookError):
    """The transport could not run anything (cannot start, cannot connect): exit code 3."""


EventSink = Callable[[Event], None]


class Transport(Protocol):
    host: str

    def run(self, unit: Unit, script: Path, *, what_if: bool, secrets: Mapping[str, str],
            on_event: EventSink, parameters: Mapping[str, Any] | None = None) -> Outcome: ...

    def close(self) -> None: ...


def sign_in_statement(unit: Unit, runner: Mapping[str, Any]) -> str:
    """The statement that opens the tenant session before the script (app-only, certificate)."""
    sign_in = runner.get(unit.side)
    if not sign_in:
        raise TransportError(f"[runner.{unit.side}] app_id and certificate_thumbprint are needed to sign in to "
                             f"the {unit.side} tenant on the jump host")
    if unit.module == "exo":
        return (f"Connect-ExchangeOnline -AppId {ps_str(sign_in['app_id'])} -CertificateThumbprint "
                f"{ps_str(sign_in['certificate_thumbprint'])} -Organization {ps_str(unit.initial_domain)} "
                "-ShowBanner:$false")
    return (f"Connect-MgGraph -ClientId {ps_str(sign_in['app_id'])} -CertificateThumbprint "
            f"{ps_str(sign_in['certificate_thumbprint'])} -TenantId {ps_str(unit.tenant_id)} -NoWelcome")


class LocalTransport:
    """A local ``pwsh`` (PowerShell 7 runs ExchangeOnlineManagement on Linux, macOS and Windows)."""

    def __init__(self, pwsh: str, runner: Mapping[str, Any]) -> None:
        found = shutil.which(pwsh)
        if found is None:
            raise TransportError(f"{pwsh} was not found; install PowerShell 7 or use the psrp transport")
        self.pwsh = found
        self.runner = runner
        self.host = "localhost"
        self._scratch = Path(tempfile.mkdtemp(prefix="runbook-run-"))
        os.chmod(self._scratch, 0o700)
        self._lock = threading.Lock()
        self._count = 0

    def run(self, unit: Unit, script: Path, *, what_if: bool, secrets: Mapping[str, str],
            on_event: EventSink, parameters: Mapping[str, Any] | None = None) -> Outcome:
        # The script runs from its own file here, so it finds what lies beside it (batch CSVs)
        # itself; ``parameters`` are for transports that send only the script's text.
        bootstrap = "\n".join([
            "$ErrorActionPreference = 'Stop'",
            sign_in_statement(unit, self.runner),
            f"& {ps_str(str(script.resolve()))} -WhatIf:{ps_bool(what_if)}",
            "",
        ])
        with self._lock:
            self._count += 1
            path = self._scratch / f"run-{self._count}.ps1"
        path.write_text(bootstrap, encoding="utf-8-sig")
        env = dict(os.environ)
        if secrets.get("app_secret"):
            env[SECRET_ENV] = secrets["app_secret"]
        try:
            process = subprocess.Popen(
                [self.pwsh, "-NoProfile", "-NonInteractive", "-File", str(path)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                text=True, encoding="utf-8", errors="replace",
            )
        except OSError as exc:
            raise TransportError(f"cannot start {self.pwsh}: {exc.strerror}") from None
        errors: list[str] = []

        def pump(stream: Any, kind: EventKind) -> None:
            for line in stream:
                line = line.rstrip("\r\n")
                event_kind = kind
                if kind == "output":
                    event_kind, line = _classify(line)
                if event_kind == "error":
                    errors.append(line)
                on_event(Event(event_kind, line))

        readers = [threading.Thread(target=pump, args=(process.stdout, "output")),
                   threading.Thread(target=pump, args=(process.stderr, "error"))]
        for reader in readers:
            reader.start()
        code = process.wait()
        for reader in readers:
            reader.join()
        path.unlink(missing_ok=True)
        if code != 0 or errors:
            message = errors[-1] if errors else f"{Path(self.pwsh).name} ended with exit code {code}"
            return Outcome(False, message)
        return Outcome(True)

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)


_PREFIXES = (("WARNING: ", "warning"), ("VERBOSE: ", "verbose"))


def _classify(line: str) -> tuple[EventKind, str]:
    """pwsh -File writes warnings and verbose messages to standard output with a prefix."""
    for prefix, kind in _PREFIXES:
        if line.startswith(prefix):
            return kind, line[len(prefix):]  # type: ignore[return-value]
    return "output", line


THROTTLED = re.compile(r"throttl|TooManyRequests|server ?busy|\b429\b|try again later", re.IGNORECASE)


def is_throttled(message: str) -> bool:
    """Exchange Online's ways of saying 'slow down'."""
    return bool(THROTTLED.search(message))


@dataclass(frozen=True)
class PsrpSettings:
    """Where and how to reach the jump host; the password never comes from the command line."""

    host: str
    port: int | None
    https: bool
    cert_validation: bool | str
    auth: str
    username: str | None
    password: str | None
    allow_unencrypted_http: bool
    parallel: int


class PsrpTransport:
    """PowerShell Remoting to a Windows jump host with pypsrp's RunspacePool and PowerShell.

    Each script runs as one pipeline of two statements: the tenant sign-in, then the reviewed
    file's text unchanged, with -WhatIf and the app secret (as a SecureString, after a session
    key exchange) passed as parameters. Pipelines that run side by side get their own pool, so
    no pypsrp state is shared between threads.
    """

    def __init__(self, settings: PsrpSettings, runner: Mapping[str, Any]) -> None:
        if not settings.host:
            raise TransportError("no jump host: set [runner] host or use --host")
        if not settings.https and settings.auth == "basic" and not settings.allow_unencrypted_http:
            raise TransportError("basic authentication over plain HTTP sends everything unencrypted; use HTTPS, "
                                 "or name the risk with --allow-unencrypted-http")
        self.settings = settings
        self.runner = runner
        self.host = settings.host
        self._local = threading.local()
        self._pools: list[Any] = []
        self._lock = threading.Lock()
        self._pool()  # connect now: a wrong password or host fails before anything runs

    def _pool(self) -> Any:
        pool = getattr(self._local, "pool", None)
        if pool is not None:
            return pool
        from pypsrp.powershell import RunspacePool
        from pypsrp.wsman import WSMan

        s = self.settings
        encryption = "auto"
        if not s.https and (s.auth in ("basic", "certificate") or s.allow_unencrypted_http):
            encryption = "never"
        try:
            wsman = WSMan(s.host, port=s.port, username=s.username, password=s.password, ssl=s.https, auth=s.auth,
                          cert_validation=s.cert_validation, encryption=encryption, connection_timeout=15)
            pool = RunspacePool(wsman)
            pool.open()
        except Exception as exc:  # pypsrp and requests raise many types; all mean: could not connect
            raise TransportError(f"cannot open PowerShell Remoting to {s.host}: {_first_line(exc)}") from None
        self._local.pool = pool
        with self._lock:
            self._pools.append(pool)
        return pool

    def run(self, unit: Unit, script: Path, *, what_if: bool, secrets: Mapping[str, str],
            on_event: EventSink, parameters: Mapping[str, Any] | None = None) -> Outcome:
        from pypsrp.complex_objects import ObjectMeta, PSInvocationState
        from pypsrp.powershell import PowerShell

        pool = self._pool()
        text = script.read_bytes().decode("utf-8-sig")
        ps = PowerShell(pool)
        ps.add_script(sign_in_statement(unit, self.runner)).add_statement()
        ps.add_script(text)
        if what_if:
            ps.add_parameter("WhatIf", True)
        for name, value in (parameters or {}).items():
            ps.add_parameter(name, value)
        if secrets.get("app_secret"):
            pool.exchange_keys()
            ps.add_parameter(SECRET_PARAMETER, pool.serialize(secrets["app_secret"], ObjectMeta("SS")))
        try:
            ps.begin_invoke()
            seen = {"output": 0, "error": 0, "warning": 0, "verbose": 0, "information": 0}
            while True:
                running = ps.state == PSInvocationState.RUNNING
                if running:
                    ps.poll_invoke(timeout=10)
                self._emit(ps, seen, on_event)
                if not running:
                    break
        except Exception as exc:
            return Outcome(False, f"the connection failed while {script.name} ran: {_first_line(exc)}")
        errors = [_record_text(e) for e in ps.streams.error]
        if ps.had_errors or errors:
            return Outcome(False, errors[-1] if errors else "the pipeline failed")
        return Outcome(True)

    @staticmethod
    def _emit(ps: Any, seen: dict[str, int], on_event: EventSink) -> None:
        """Report what arrived since the last poll, stream by stream."""
        sources: list[tuple[EventKind, list[Any]]] = [
            ("output", ps.output), ("error", ps.streams.error), ("warning", ps.streams.warning),
            ("verbose", ps.streams.verbose), ("information", ps.streams.information),
            ("progress", ps.streams.progress),
        ]
        for kind, items in sources:
            for item in items[seen.get(kind, 0):]:
                on_event(Event(kind, _progress_text(item) if kind == "progress" else _record_text(item)))
            seen[kind] = len(items)

    def close(self) -> None:
        for pool in self._pools:
            try:
                pool.close()
            except Exception:  # closing a broken pool must not hide the run's own outcome
                pass


def _progress_text(record: Any) -> str:
    activity = getattr(record, "activity", "") or ""
    status = getattr(record, "description", None) or getattr(record, "status_description", "") or ""
    percent = getattr(record, "percent_complete", -1)
    return f"{activity}: {status}" + (f" ({percent}%)" if isinstance(percent, int) and percent >= 0 else "")


def _record_text(item: Any) -> str:
    """The text an admin would see for an output object or a stream record."""
    exception = getattr(item, "exception", None)
    if exception is not None:
        text = getattr(exception, "adapted_properties", {}).get("Message") or getattr(exception, "message", None)
        if text:
            return str(text)
    message = getattr(item, "message", None)
    if isinstance(message, str) and message:
        return message
    return str(item)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
