"""Read a TOML file with stdlib ``tomllib`` and remember which line each key is on.

``tomllib`` gives values but no positions, and an admin needs ``migration.toml:14`` to find a
bad key. :func:`index_key_lines` scans the text once, line by line, and asks ``tomllib`` itself
to parse each header or key (so quoting and dotted keys follow the TOML rules exactly); values
that span lines (arrays, inline tables, multi-line strings) are skipped over, not parsed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import InputError, Problem

KeyPath = tuple[str | int, ...]

_TOML_ERROR_POS = re.compile(r"\(at line (\d+), column \d+\)")


class TomlSource:
    """A parsed TOML document plus the line of every key and table it holds."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.data: dict[str, Any] = tomllib.loads(text)
        self.lines = index_key_lines(text)

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of ``loc`` or of its nearest enclosing key or table that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return None


def load_toml(path: Path, *, display: str | None = None) -> TomlSource:
    """Read ``path``; a missing file or a syntax error becomes an :class:`InputError`."""
    shown = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError([Problem(shown, None, "file", f"cannot read: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError([Problem(shown, line, "file", "not UTF-8 text")]) from None
    try:
        return TomlSource(path, text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        match = _TOML_ERROR_POS.search(msg)
        line = int(match.group(1)) if match else None
        message = _TOML_ERROR_POS.sub("", msg).strip()
        raise InputError([Problem(shown, line, "toml", f"syntax error: {message}")]) from None


def index_key_lines(text: str) -> dict[KeyPath, int]:
    """Map each key path (tables, array-of-table entries by index, keys) to its 1-based line."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    aot_counts: dict[KeyPath, int] = {}
    state = _ValueState()
    for lineno, raw in enumerate(text.splitlines(), 1):
        if state.open:
            state.scan(raw)
            continue
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            header = _strip_comment(stripped)
            is_aot = header.startswith("[[")
            path = _parse_path(header, wrap=False)
            if path is None:
                continue
            if is_aot:
                index = aot_counts.get(path, 0)
                aot_counts[path] = index + 1
                lines.setdefault(path, lineno)
                table = (*path, index)
            else:
                table = path
            lines[table] = lineno
            continue
        key_text, value_text = _split_key(raw)
        if value_text is None:
            continue
        keys = _parse_path(key_text, wrap=True)
        if keys is not None:
            lines[(*table, *keys)] = lineno
        state.scan(value_text)
    return lines


def _parse_path(fragment: str, *, wrap: bool) -> KeyPath | None:
    """Let tomllib parse a header (``[a."b"]``) or a key (``a."b"``) and return its path."""
    try:
        doc = tomllib.loads(f"{fragment} = 0" if wrap else fragment)
    except tomllib.TOMLDecodeError:
        return None
    path: list[str | int] = []
    node: Any = doc
    while isinstance(node, (dict, list)) and node:
        if isinstance(node, list):
            node = node[-1]
            continue
        key = next(iter(node))
        path.append(key)
        node = node[key]
    return tuple(path)


def _strip_comment(header: str) -> str:
    end = header.rfind("]")
    return header[: end + 1] if end >= 0 else header


def _split_key(raw: str) -> tuple[str, str | None]:
    """Split ``key = value`` at the first ``=`` that is not inside a quoted key."""
    quote = ""
    for i, ch in enumerate(raw):
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"':
                continue
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return raw[:i].strip(), raw[i + 1 :]
    return raw, None


class _ValueState:
    """Tracks whether a value continues on the next line (open brackets or a multi-line string)."""

    def __init__(self) -> None:
        self.depth = 0
        self.multiline: str = ""

    @property
    def open(self) -> bool:
        return self.depth > 0 or bool(self.multiline)

    def scan(self, text: str) -> None:
        i, n = 0, len(text)
        while i < n:
            if self.multiline:
                end = self._find_close(text, i, self.multiline)
                if end < 0:
                    return
                i = end + 3
                while i < n and text[i] == self.multiline[0]:
                    i += 1  # up to two quotes may close a multi-line string early
                self.multiline = ""
                continue
            ch = text[i]
            if ch == "#":
                return
            if text.startswith('"""', i) or text.startswith("'''", i):
                self.multiline = text[i : i + 3]
                i += 3
                continue
            if ch in "\"'":
                i = self._skip_string(text, i)
                continue
            if ch in "[{":
                self.depth += 1
            elif ch in "]}":
                self.depth = max(0, self.depth - 1)
            i += 1

    @staticmethod
    def _find_close(text: str, start: int, delim: str) -> int:
        i = start
        while True:
            pos = text.find(delim, i)
            if pos < 0:
                return -1
            if delim == '"""' and _escaped(text, pos):
                i = pos + 1
                continue
            return pos

    @staticmethod
    def _skip_string(text: str, start: int) -> int:
        quote = text[start]
        i = start + 1
        while i < len(text):
            if text[i] == "\\" and quote == '"':
                i += 2
                continue
            if text[i] == quote:
                return i + 1
            i += 1
        return i


def _escaped(text: str, pos: int) -> bool:
    backslashes = 0
    while pos - backslashes - 1 >= 0 and text[pos - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1
