"""Running selected units of a runbook in order, with the journal, logs and confirmations.

The library does not print: the caller passes callbacks to confirm a unit and to show events.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..errors import RunbookError
from .journal import Journal, now
from .manifest import Runbook, Unit
from .transport import Event, Outcome, Transport, is_throttled


SECRET_STEP = "target-migration-endpoint"
"""The only step that is handed the app secret."""
BATCH_STEP = "target-new-migration-batches"
"""Its scripts are handed their batch CSV's bytes (checked by hash in the script)."""


class RemoteError(RunbookError):
    """A script failed where it ran (exit code 3)."""


class Declined(RunbookError):
    """The operator did not confirm a unit (exit code 4: refused)."""


Confirm = Callable[[Unit], bool]
Show = Callable[[Unit, Event], None]


@dataclass
class RunResult:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass
class Runner:
    runbook: Runbook
    transport: Transport
    confirm: Confirm
    show: Show
    what_if: bool = False
    secrets: Mapping[str, str] = field(default_factory=dict)
    parallel: int = 3
    retries: int = 4
    backoff: float = 2.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.journal = Journal(self.runbook.folder)
        self.logs = self.runbook.folder / "logs"
        self._journal_lock = threading.Lock()
        self._mask = [re.escape(v) for v in self.secrets.values() if v]

    def run(self, units: Sequence[Unit]) -> RunResult:
        """Run ``units`` in order; chunks of one step side by side. Stops at the first failure."""
        self.runbook.verify(units)
        result = RunResult()
        index = 0
        while index < len(units):
            unit = units[index]
            if unit.is_chunk:
                group = [u for u in units[index:] if u.step_id == unit.step_id]
                self._run_chunks(group, result)
                index += len(group)
                continue
            self._run_one(unit, result)
            index += 1
        return result

    def _pending(self, unit: Unit, result: RunResult) -> bool:
        if not self.what_if and self.journal.done(unit.key, unit.sha256):
            result.skipped.append(unit.key)
            return False
        return True

    def _run_one(self, unit: Unit, result: RunResult) -> None:
        if not self._pending(unit, result):
            return
        if not self.confirm(unit):
            raise Declined(f"{unit.key} was not confirmed; nothing more was run")
        if unit.path is None:  # a portal step: confirmed by the operator is done
            self._mark(unit, "succeeded")
            result.ran.append(unit.key)
            return
        self._execute(unit)
        result.ran.append(unit.key)

    def _run_chunks(self, group: list[Unit], result: RunResult) -> None:
        todo = [u for u in group if self._pending(u, result)]
        if not todo:
            return
        if not self.confirm(todo[0]):
            raise Declined(f"{todo[0].step_id} was not confirmed; nothing more was run")
        failures: list[str] = []
        with ThreadPoolExecutor(max_workers=max(1, self.parallel)) as pool:
            futures = [pool.submit(self._execute, unit) for unit in todo]
            for unit, future in zip(todo, futures):
                try:
                    future.result()
                    result.ran.append(unit.key)
                except RemoteError as exc:
                    failures.append(str(exc))
        if failures:
            raise RemoteError(failures[0] if len(failures) == 1 else
                              f"{len(failures)} of {len(todo)} scripts failed; first: {failures[0]}")

    def _execute(self, unit: Unit) -> None:
        """Run one script, retrying with exponential backoff while Exchange Online throttles."""
        assert unit.path is not None
        self._mark(unit, "running")
        log = self._open_log(unit)
        try:
            for attempt in range(self.retries + 1):
                outcome = self._attempt(unit, log)
                if outcome.ok:
                    self._mark(unit, "succeeded")
                    return
                if not is_throttled(outcome.error) or attempt == self.retries:
                    break
                delay = self.backoff * (2 ** attempt)
                self._log(log, f"throttled; trying again in {delay:g} s")
                self.sleep(delay)
            message = self.mask(outcome.error)
            self._mark(unit, "failed", message)
            raise RemoteError(f"{unit.path} failed on {self.transport.host}: {message}")
        finally:
            log.close()

    def _attempt(self, unit: Unit, log) -> Outcome:  # type: ignore[no-untyped-def]
        def on_event(event: Event) -> None:
            masked = Event(event.kind, self.mask(event.text))
            if masked.kind != "progress":  # a line per user would drown the log
                self._log(log, f"{masked.kind}: {masked.text}")
            self.show(unit, masked)

        secrets = self.secrets if unit.step_id == SECRET_STEP else {}
        script = self.runbook.folder / unit.path  # type: ignore[operator]
        parameters = {}
        if unit.step_id == BATCH_STEP:
            parameters["CsvData"] = script.with_suffix(".csv").read_bytes()
        return self.transport.run(unit, script, what_if=self.what_if, secrets=secrets, on_event=on_event,
                                  parameters=parameters)

    def mask(self, text: str) -> str:
        for pattern in self._mask:
            text = re.sub(pattern, "****", text)
        return text

    def _mark(self, unit: Unit, state: str, error: str = "") -> None:
        if self.what_if:
            return
        with self._journal_lock:
            self.journal.mark(unit.key, state, host=self.transport.host, sha256=unit.sha256, error=error)  # type: ignore[arg-type]

    def _open_log(self, unit: Unit):  # type: ignore[no-untyped-def]
        self.logs.mkdir(exist_ok=True)
        stamp = now().replace(":", "").replace("-", "")
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", unit.key)
        log = (self.logs / f"{stamp}-{name}.log").open("a", encoding="utf-8")
        self._log(log, f"{unit.key} sha256 {unit.sha256} on {self.transport.host}"
                       f"{' with -WhatIf' if self.what_if else ''}")
        return log

    @staticmethod
    def _log(log, line: str) -> None:  # type: ignore[no-untyped-def]
        log.write(f"{now()} {line}\n")
        log.flush()


def status_rows(runbook: Runbook) -> list[tuple[str, str, str, str, str]]:
    """(order, unit, state, when, detail) for ``runbook status``."""
    journal = Journal(runbook.folder)
    rows = []
    for unit in runbook.units:
        entry = journal.entries.get(unit.key, {})
        state = entry.get("state", "pending")
        if state == "succeeded" and entry.get("sha256") != unit.sha256:
            state = "changed"
        rows.append((str(unit.order), unit.key, state, entry.get("updated", ""),
                     entry.get("error", "") or (f"on {entry['host']}" if entry.get("host") else "")))
    return rows


def secrets_for(runbook: Runbook, units: Sequence[Unit], environ: Mapping[str, str],
                ask: Callable[[str], str]) -> dict[str, str]:
    """The app secret, if the endpoint step is to run, from its reference; never from the command line."""
    if not any(u.step_id == SECRET_STEP for u in units):
        return {}
    reference = str(runbook.data.get("app_secret", ""))
    kind, _, name = reference.partition(":")
    if kind == "env" and environ.get(name):
        return {"app_secret": environ[name]}
    if kind == "prompt":
        return {"app_secret": ask("Client secret of the migration app")}
    return {}
