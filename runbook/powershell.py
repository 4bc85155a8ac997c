"""The one way a value becomes PowerShell source text.

Every value that came from a user (config, mailbox export) reaches a generated script only
through the functions here. Strings always become single-quoted literals: inside ``'...'``
PowerShell treats nothing as special except its five single-quote characters, and a pair of
them stands for the second one [PowerShell language spec 2.3.5.2; CharTraits.IsSingleQuote].
Doubling each one therefore round-trips any text. Data never goes into ``"..."``,
here-strings, comments or bare argument position.

The results are :class:`PsCode` instances. The template environment refuses to output anything
else, so a template that forgets a ``ps_*`` filter fails to render instead of producing an
injectable script.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

__all__ = [
    "SINGLE_QUOTES",
    "PsCode",
    "PowerShellValueError",
    "FILTERS",
    "ps_str",
    "ps_strs",
    "ps_bool",
    "ps_int",
    "ps_array",
    "ps_hashtable",
    "ps_records",
    "RecordLayout",
    "ps_datetime",
    "ps_value",
    "decode_single_quoted",
]

#: The characters PowerShell's tokenizer accepts as a single quote (CharTraits.IsSingleQuote):
#: APOSTROPHE, LEFT/RIGHT SINGLE QUOTATION MARK, SINGLE LOW-9 and SINGLE HIGH-REVERSED-9.
SINGLE_QUOTES = frozenset("'\u2018\u2019\u201a\u201b")

_OTHER_QUOTES = tuple(sorted(SINGLE_QUOTES - {"'"}))


class PowerShellValueError(ValueError):
    """A value that cannot be represented safely as a PowerShell literal."""


class PsCode(str):
    """Text that is already valid, safe PowerShell (a literal or a fragment built from them)."""

    __slots__ = ()


def ps_str(value: object) -> PsCode:
    """Quote ``value`` (converted with ``str``) as a verbatim single-quoted string literal."""
    if value is None:
        raise PowerShellValueError("None cannot be quoted as a string; use ps_value for $null")
    if isinstance(value, bool):
        raise PowerShellValueError("a bool is not a string; use ps_bool")
    return PsCode(_quote(value if type(value) is str else str(value)))


def ps_strs(values: Iterable[str]) -> list[PsCode]:
    """:func:`ps_str` of each string, for the long lists of a large runbook."""
    values = list(values)
    if set(map(type, values)) - {str}:
        raise PowerShellValueError("ps_strs quotes strings only")
    return [PsCode(_quote(value)) for value in values]


def _quote(text: str) -> str:
    if "\x00" in text:
        raise _nul()
    return _literal(text)


def _nul() -> PowerShellValueError:
    return PowerShellValueError("a NUL character cannot appear in a PowerShell script")


def _literal(text: str) -> str:
    """The single-quoted literal for ``text``; the caller has made sure it holds no NUL."""
    text = text.replace("'", "''")
    if not text.isascii():
        text = _double_other_quotes(text)
    return "'" + text + "'"


def _double_other_quotes(text: str) -> str:
    """Double the four single quotes beyond U+0027; a few substring searches and replaces are
    several times faster than str.translate."""
    for quote in _OTHER_QUOTES:
        if quote in text:
            text = text.replace(quote, quote * 2)
    return text


def ps_bool(value: object) -> PsCode:
    """``$true`` or ``$false``; only real booleans are accepted, never truthy strings."""
    if not isinstance(value, bool):
        raise PowerShellValueError(f"expected a bool, got {type(value).__name__}")
    return PsCode("$true" if value else "$false")


def ps_int(value: object) -> PsCode:
    """A decimal integer literal."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PowerShellValueError(f"expected an int, got {type(value).__name__}")
    text = str(value)
    return PsCode(f"({text})" if value < 0 else text)


def ps_datetime(value: _dt.datetime) -> PsCode:
    """A UTC ``[datetime]`` built from an ISO 8601 string, independent of the host's culture."""
    if value.tzinfo is None:
        raise PowerShellValueError("a date-time must carry a time zone")
    utc = value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return PsCode(
        f"[datetime]::Parse({ps_str(utc)}, [Globalization.CultureInfo]::InvariantCulture, "
        "[Globalization.DateTimeStyles]::AdjustToUniversal)"
    )


def ps_array(values: Iterable[Any]) -> PsCode:
    """An array subexpression ``@(...)``; always an array, even with one or no element."""
    if isinstance(values, (str, bytes, Mapping)):
        raise PowerShellValueError("ps_array needs a sequence of values, not a single value")
    return PsCode("@(" + ", ".join([_quote(v) if type(v) is str else ps_value(v) for v in values]) + ")")


def ps_lines(values: Iterable[str], *, indent: int = 4) -> PsCode:
    """One quoted string per line, for the body of a long ``@(...)`` a reviewer reads down."""
    if isinstance(values, (str, bytes, Mapping)):
        raise PowerShellValueError("ps_lines needs a sequence of strings, not a single value")
    pad = " " * indent
    return PsCode("".join([f"{pad}{_quote(v if type(v) is str else str(v))}\n" for v in values]))


def ps_records(keys: Sequence[str], rows: Iterable[Sequence[PsCode]], *, indent: int = 4) -> PsCode:
    """One ``[ordered]`` hashtable per line from values already quoted by this module.

    For the long lists of a large runbook (a batch's snapshot or notice recipients): each
    address is quoted once, with :func:`ps_str`, and reused in every script that lists it.
    """
    rows = [tuple(row) for row in rows]
    # Checked for all rows at once, at C speed: these lists run to thousands of rows per script.
    if set(map(len, rows)) - {len(keys)} or set(map(type, itertools.chain.from_iterable(rows))) - {PsCode}:
        raise PowerShellValueError("ps_records takes rows of PsCode values, one per key")
    line = " " * indent + "[ordered]@{" + "; ".join(_quote(key).replace("%", "%%") + " = %s" for key in keys) + "}\n"
    return PsCode("".join([line % row for row in rows]))


def ps_hashtable(values: Mapping[str, Any], *, ordered: bool = True) -> PsCode:
    """A hashtable literal with quoted keys; ``[ordered]`` keeps the reviewer's order."""
    keys = _KEYS
    parts = []
    for key, val in values.items():
        quoted = keys.get(key)
        if quoted is None:
            quoted = _quote(key)
            if len(keys) < 4096:
                keys[key] = quoted
        parts.append(f"{quoted} = {_quote(val) if type(val) is str else ps_value(val)}")
    prefix = "[ordered]" if ordered else ""
    return PsCode(prefix + "@{" + "; ".join(parts) + "}")


#: Hashtable keys repeat in every record of a large script; each is quoted once.
_KEYS: dict[str, str] = {}


class RecordLayout:
    """``[ordered]`` hashtables that all have the same keys, as :func:`ps_hashtable` writes them.

    A MailUser script embeds one record per user, 100,000 of them in a large move, all of one
    shape. The text is identical to ``ps_hashtable(dict(zip(keys, values)))``; it is a plain
    ``str`` because it travels between processes, where a ``str`` subclass pickles slowly, and
    becomes :class:`PsCode` where it is spliced into a script.

    How it is fast: doubling the quote characters is a substitution character by character, so
    it can run once over the whole record instead of once per value. Each string value goes
    into the record between two NULs, which no value may hold (a count of them proves it), the
    record's quotes are doubled, and the NULs become the quotes that open and close each
    literal. What goes where depends only on the values' types, so the pieces between the
    values are built once per combination of types (a MailUser has two: with and without an
    archive). Any other value (a bool, a negative number, :class:`PsCode`, a date) makes the
    record go through :func:`ps_hashtable` itself.
    """

    __slots__ = ("keys", "_layouts")

    _MAX_LAYOUTS = 64

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise PowerShellValueError("a record layout needs at least one key")
        for key in keys:
            _quote(key)
        if len({key.casefold() for key in keys}) != len(keys):
            raise PowerShellValueError("a hashtable literal cannot repeat a key (PowerShell ignores case in keys)")
        self.keys = tuple(keys)
        self._layouts: dict[tuple[type, ...], _Pieces | None] = {}

    def format(self, values: Sequence[Any]) -> str:
        """The record for ``values``, one per key, in the layout's order."""
        kinds = tuple(map(type, values))
        try:
            layout = self._layouts[kinds]
        except KeyError:
            layout = self._pieces(kinds)
        if layout is None:
            return str(ps_hashtable(dict(zip(self.keys, values, strict=True))))
        parts = layout.parts.copy()
        parts[1::2] = values
        nuls = layout.nuls
        for i in layout.ints:
            if values[i] < 0:
                return str(ps_hashtable(dict(zip(self.keys, values, strict=True))))
            parts[2 * i + 1] = str(values[i])
        for i in layout.nulls:
            parts[2 * i + 1] = "$null"
        for i in layout.lists:
            items = values[i]
            if not items:
                parts[2 * i + 1] = "@()"
            elif set(map(type, items)) == _JUST_STR:
                parts[2 * i + 1] = "@(\x00" + "\x00, \x00".join(items) + "\x00)"
                nuls += 2 * len(items)
            else:
                return str(ps_hashtable(dict(zip(self.keys, values, strict=True))))
        record = "".join(parts)
        if record.count("\x00") != nuls:
            raise _nul()
        if "'" in record:
            record = record.replace("'", "''")
        if not record.isascii():
            record = _double_other_quotes(record)
        return record.replace("\x00", "'")

    def _pieces(self, kinds: tuple[type, ...]) -> _Pieces | None:
        """The text between the values for one combination of types; None: use ps_hashtable."""
        if len(kinds) != len(self.keys):
            raise PowerShellValueError(f"expected {len(self.keys)} values, got {len(kinds)}")
        parts: list[str] = []
        nuls = 0
        slots: dict[type, list[int]] = {int: [], type(None): [], list: []}
        text = "[ordered]@{"
        layout: _Pieces | None = None
        for i, (key, kind) in enumerate(zip(self.keys, kinds)):
            text += ("; " if i else "") + "\x00" + key + "\x00 = "
            nuls += 2
            if kind is str:
                parts += [text + "\x00", ""]
                text = "\x00"
                nuls += 2
                continue
            slot = slots.get(list if kind is tuple else kind)
            if slot is None:
                break
            slot.append(i)
            parts += [text, ""]
            text = ""
        else:
            parts.append(text + "}")
            layout = _Pieces(parts, nuls, tuple(slots[int]), tuple(slots[type(None)]), tuple(slots[list]))
        if len(self._layouts) < self._MAX_LAYOUTS:
            self._layouts[kinds] = layout
        return layout


_JUST_STR = frozenset({str})


class _Pieces(NamedTuple):
    """A record's text around its values (at odd places in ``parts``) for one combination of
    types; the places of the values that are not strings; the NULs it holds with no list."""

    parts: list[str]
    nuls: int
    ints: tuple[int, ...]
    nulls: tuple[int, ...]
    lists: tuple[int, ...]


def ps_value(value: Any) -> PsCode:
    """Any supported Python value as a PowerShell expression."""
    kind = type(value)
    if kind is str:
        return ps_str(value)
    if kind is PsCode:
        return value
    if value is None:
        return PsCode("$null")
    if isinstance(value, bool):
        return ps_bool(value)
    if isinstance(value, int):
        return ps_int(value)
    if isinstance(value, (str, uuid.UUID)):
        return ps_str(value)
    if isinstance(value, _dt.datetime):
        return ps_datetime(value)
    if isinstance(value, Mapping):
        return ps_hashtable(value)
    if isinstance(value, (list, tuple)):
        return ps_array(value)
    raise PowerShellValueError(f"no PowerShell literal for a {type(value).__name__}")


def decode_single_quoted(literal: str) -> str:
    """Read a verbatim string literal back the way PowerShell's tokenizer does.

    Used by tests and by the self-check in :mod:`runbook.render`; it follows
    ``Tokenizer.ScanStringLiteral``: after the opening quote, a single-quote character followed
    by another ends up as the second one; a lone one ends the literal, which must be the end.
    """
    if len(literal) < 2 or literal[0] not in SINGLE_QUOTES:
        raise PowerShellValueError("not a single-quoted literal")
    out: list[str] = []
    i, n = 1, len(literal)
    while i < n:
        ch = literal[i]
        if ch in SINGLE_QUOTES:
            if i + 1 < n and literal[i + 1] in SINGLE_QUOTES:
                out.append(literal[i + 1])
                i += 2
                continue
            if i != n - 1:
                raise PowerShellValueError("the literal ends before the text does")
            return "".join(out)
        out.append(ch)
        i += 1
    raise PowerShellValueError("unterminated literal")


#: The filters every template environment registers; the only way data enters a template.
FILTERS = {
    "ps_str": ps_str,
    "ps_bool": ps_bool,
    "ps_int": ps_int,
    "ps_array": ps_array,
    "ps_lines": ps_lines,
    "ps_hashtable": ps_hashtable,
    "ps_records": ps_records,
    "ps_datetime": ps_datetime,
    "ps_value": ps_value,
}
