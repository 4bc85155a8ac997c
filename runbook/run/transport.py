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
"""The child environment variable the endpoint script takes the app secret from."""


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
            on_event: EventSink) -> Outcome: ...

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
            on_event: EventSink) -> Outcome:
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
        env.update(secrets)
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
