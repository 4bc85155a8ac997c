"""The notice template users receive before their mailbox moves.

Placeholders are filled at run time by the notice script, in one pass, so a display name that
itself reads ``{cutover}`` stays text; in HTML bodies the values are HTML-encoded first, so a
display name with markup is shown, not interpreted. Here the template is only checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .config import NOTICE_PLACEHOLDERS, LoadedConfig
from .errors import Problem

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Notice:
    """A checked notice: subject and body templates and how the body is to be sent."""

    subject: str
    body: str
    html: bool

    def uses(self, placeholder: str) -> bool:
        return f"{{{placeholder}}}" in self.subject or f"{{{placeholder}}}" in self.body


def load_notice(loaded: LoadedConfig) -> tuple[Notice | None, list[Problem]]:
    """Read and check ``[notify] body``; every problem is returned, none raised."""
    notify = loaded.config.notify
    if notify is None:
        return None, []
    problems: list[Problem] = []
    subject_line = loaded.line_of("notify", "subject")
    for name in _PLACEHOLDER.findall(notify.subject):
        if name not in NOTICE_PLACEHOLDERS:
            problems.append(Problem(loaded.display, subject_line, "notify.subject", _unknown(name)))
    path = loaded.base_dir / notify.body
    try:
        body = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        problems.append(Problem(loaded.display, loaded.line_of("notify", "body"), "notify.body",
                                f"cannot read {notify.body}: {exc.strerror}"))
        return None, problems
    except UnicodeDecodeError:
        problems.append(Problem(loaded.display, loaded.line_of("notify", "body"), "notify.body",
                                f"{notify.body} is not UTF-8 text"))
        return None, problems
    if "\x00" in body or "\x00" in notify.subject:
        problems.append(Problem(str(path), None, "body", "contains a NUL character"))
    for number, line in enumerate(body.splitlines(), 1):
        for name in _PLACEHOLDER.findall(line):
            if name not in NOTICE_PLACEHOLDERS:
                problems.append(Problem(str(path), number, "placeholder", _unknown(name)))
    return Notice(notify.subject, body, notify.is_html), problems


def _unknown(name: str) -> str:
    known = ", ".join(f"{{{p}}}" for p in NOTICE_PLACEHOLDERS)
    return f"{{{name}}} is not a placeholder; use {known}"
