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
from typing import Any

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
    shape: the keys are quoted once here, and each value goes straight to its literal without
    :func:`ps_value`'s general dispatch. The text is identical to ``ps_hashtable(dict(zip(keys,
    values)))``; it is a plain ``str`` because it travels between processes, where a ``str``
    subclass pickles slowly, and becomes :class:`PsCode` where it is spliced into a script.
    """

    __slots__ = ("keys", "_prefixes")

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise PowerShellValueError("a record layout needs at least one key")
        self.keys = tuple(keys)
        quoted = [_quote(key) for key in self.keys]
        self._prefixes = ("[ordered]@{" + quoted[0] + " = ", *(f"; {key} = " for key in quoted[1:]))

    def format(self, values: Sequence[Any]) -> str:
        """The record for ``values``, one per key, in the layout's order."""
        if len(values) != len(self._prefixes):
            raise PowerShellValueError(f"expected {len(self._prefixes)} values, got {len(values)}")
        parts: list[str] = []
        append = parts.append
        for prefix, value in zip(self._prefixes, values, strict=True):
            append(prefix)
            kind = type(value)
            if kind is str:
                # _literal, inlined: a MailUser record holds ten of these, 100,000 records over.
                if "'" in value:
                    value = value.replace("'", "''")
                if not value.isascii():
                    value = _double_other_quotes(value)
                append("'" + value + "'")
            elif value is None:
                append("$null")
            elif kind is int:
                append(str(value) if value >= 0 else f"({value})")
            elif (kind is tuple or kind is list) and all(type(item) is str for item in value):
                append("@(" + ", ".join([_literal(item) for item in value]) + ")")
            else:
                append(ps_value(value))
        append("}")
        record = "".join(parts)
        # One search of the whole record instead of one per value: a NUL in any value is in it.
        if "\x00" in record:
            raise _nul()
        return record


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
