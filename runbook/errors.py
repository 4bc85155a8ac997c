"""One root exception, and located problems the CLI prints as ``PATH:LINE: field: message``.

The library never prints or exits: it collects every :class:`Problem` it can find and raises
once, so an admin fixes a file in one pass. The CLI maps the exception class to an exit code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about one place in one input file."""

    path: str
    line: int | None
    field: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        label = "" if self.severity == "error" else "warning: "
        return f"{where}: {self.field}: {label}{self.message}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def sort_key(problem: Problem) -> tuple[str, int, str, str]:
    """Order problems by file, then line, so output reads top to bottom like the file."""
    return (problem.path, problem.line or 0, problem.field, problem.message)


class RunbookError(Exception):
    """Root of every error the library raises on purpose."""


class InputError(RunbookError):
    """The input is invalid; carries every problem found, not just the first (exit code 1)."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=sort_key)
        errors = [p for p in self.problems if p.severity == "error"]
        super().__init__(f"{len(errors)} problem(s) in the input")


class RefusedError(RunbookError):
    """A safety rule refused the action (exit code 4), e.g. overwriting a foreign directory."""
