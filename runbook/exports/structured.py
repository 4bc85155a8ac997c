"""Structured exports: CLIXML from ``Export-Clixml`` and JSON from ``ConvertTo-Json``.

Both keep multi-valued properties as lists, so nothing needs joining. CLIXML is streamed: expat
builds one top-level ``<Obj>`` at a time (with the line it starts on) and psrpcore deserializes
it; type-name references (``TNRef``) that point into earlier objects are resolved here first,
since psrpcore deserializes each element on its own. JSON is read whole (``ConvertTo-Json``
writes one document), but decoded object by object to know each one's line.
"""

from __future__ import annotations

import json
import uuid
import xml.parsers.expat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from psrpcore.types import PSObject, deserialize

from ..errors import InputError, Problem
from .csvfile import sniff_encoding
from .model import KNOWN_COLUMNS, REQUIRED_COLUMNS, RawRow, RawValue

BLOCK = 1000


def canonical(name: str) -> str:
    return KNOWN_COLUMNS.get(name.strip().lower(), name.strip())


def to_raw_value(value: Any) -> RawValue:
    """A deserialized PowerShell or JSON value as the text (or texts) a reader hands on."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [str(to_raw_value(v) or "") if not isinstance(v, (list, tuple)) else str(v) for v in value]
    if isinstance(value, PSObject):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _missing_columns(columns: tuple[str, ...], display: str, line: int) -> list[Problem]:
    return [Problem(display, line, "header", f"required property {c} is missing from the first object")
            for c in REQUIRED_COLUMNS if c not in columns]


# --- CLIXML ------------------------------------------------------------------------------


class _ObjCollector:
    """Expat handlers that build each top-level ``<Obj>`` as an Element, with its start line."""

    def __init__(self, parser: xml.parsers.expat.XMLParserType) -> None:
        self.parser = parser
        self.stack: list[ElementTree.Element] = []
        self.ready: list[tuple[int, ElementTree.Element]] = []
        self.start_line = 0
        self.type_names: dict[str, list[str]] = {}

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        element = ElementTree.Element(tag, attrib)
        depth = len(self.stack)
        if depth == 0:
            if tag != "Objs":
                raise ValueError("the file is not CLIXML (no <Objs> root)")
            self.stack.append(element)
            return
        if depth == 1:
            self.start_line = self.parser.CurrentLineNumber
        else:
            self.stack[-1].append(element)
        self.stack.append(element)

    def end(self, tag: str) -> None:
        element = self.stack.pop()
        if tag == "TN" and "RefId" in element.attrib:
            self.type_names[element.attrib["RefId"]] = [t.text or "" for t in element.findall("T")]
        if len(self.stack) == 1:
            self._resolve_type_refs(element)
            self.ready.append((self.start_line, element))

    def data(self, text: str) -> None:
        if len(self.stack) > 1:
            current = self.stack[-1]
            current.text = (current.text or "") + text

    def _resolve_type_refs(self, element: ElementTree.Element) -> None:
        """Replace each ``TNRef`` with the ``TN`` it names, so the element stands on its own."""
        for parent in element.iter():
            for index, child in enumerate(list(parent)):
                if child.tag == "TNRef":
                    names = self.type_names.get(child.attrib.get("RefId", ""))
                    if names is None:
                        continue
                    tn = ElementTree.Element("TN", {"RefId": child.attrib["RefId"]})
                    for name in names:
                        ElementTree.SubElement(tn, "T").text = name
                    parent.remove(child)
                    parent.insert(index, tn)


def _clixml_records(path: Path, display: str) -> Iterator[RawRow | Problem]:
    parser = xml.parsers.expat.ParserCreate()
    collector = _ObjCollector(parser)
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.data
    parser.buffer_text = True
    with path.open("rb") as fh:
        while True:
            data = fh.read(1 << 16)
            try:
                parser.Parse(data, not data)
            except (xml.parsers.expat.ExpatError, ValueError) as exc:
                line = getattr(exc, "lineno", None) or parser.CurrentLineNumber
                raise InputError([Problem(display, line, "clixml", f"cannot read the file: {exc}")]) from None
            ready, collector.ready = collector.ready, []
            for line, element in ready:
                yield _clixml_row(element, line, display)
            if not data:
                return


def _clixml_row(element: ElementTree.Element, line: int, display: str) -> RawRow | Problem:
    try:
        value = deserialize(element, None)  # type: ignore[arg-type]
    except KeyError:
        return Problem(display, line, "clixml",
                       "this object refers to an object of an earlier record, which runbook cannot follow; "
                       "export with the source export script of the runbook (CSV)")
    except Exception as exc:  # psrpcore raises several types for malformed elements
        return Problem(display, line, "clixml", f"cannot deserialize this object: {exc}")
    if not isinstance(value, PSObject):
        return Problem(display, line, "clixml", "expected an object with properties")
    values: dict[str, RawValue] = {}
    for prop in (*value.PSObject.adapted_properties, *value.PSObject.extended_properties):
        values[canonical(prop.name)] = to_raw_value(prop.get_value(value))
    return RawRow(line, values)


# --- JSON --------------------------------------------------------------------------------


def _json_records(path: Path, display: str) -> Iterator[RawRow | Problem]:
    raw = path.read_bytes()
    encoding = sniff_encoding(raw[:4])
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError([Problem(display, line, "file", f"cannot be decoded as {encoding}")]) from None
    text = text.lstrip("\ufeff")
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    line = 1 + text.count("\n", 0, pos)
    try:
        if text.startswith("[", pos):
            seen = pos
            pos = _skip_ws(text, pos + 1)
            while not text.startswith("]", pos):
                line += text.count("\n", seen, pos)
                seen = pos
                item, pos = decoder.raw_decode(text, pos)
                yield _json_row(item, line, display)
                pos = _skip_ws(text, pos)
                if text.startswith(",", pos):
                    pos = _skip_ws(text, pos + 1)
                elif not text.startswith("]", pos):
                    raise ValueError("expected , or ]")
        else:
            item, pos = decoder.raw_decode(text, pos)
            yield _json_row(item, line, display)
    except (ValueError, IndexError) as exc:
        where = getattr(exc, "lineno", None) or (1 + text.count("\n", 0, pos))
        message = getattr(exc, "msg", None) or str(exc)
        raise InputError([Problem(display, where, "json", f"cannot read the file: {message}")]) from None


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _json_row(item: Any, line: int, display: str) -> RawRow | Problem:
    if not isinstance(item, Mapping):
        return Problem(display, line, "json", "expected an object with properties")
    return RawRow(line, {canonical(str(k)): to_raw_value(v) for k, v in item.items()})


# --- both --------------------------------------------------------------------------------


def open_structured(path: Path, display: str, kind: str) -> tuple[tuple[str, ...], Iterator[list[RawRow | Problem]]]:
    """Read the first record now (its properties are the columns), then stream the rest in blocks."""
    records = _clixml_records(path, display) if kind == "clixml" else _json_records(path, display)
    first = next(records, None)
    if first is None:
        raise InputError([Problem(display, None, "file", "the export holds no objects")])
    columns: tuple[str, ...] = tuple(first.values) if isinstance(first, RawRow) else ()
    if isinstance(first, RawRow):
        missing = _missing_columns(columns, display, first.line)
        if missing:
            raise InputError(missing)

    def blocks() -> Iterator[list[RawRow | Problem]]:
        block: list[RawRow | Problem] = [first]
        for record in records:
            block.append(record)
            if len(block) >= BLOCK:
                yield block
                block = []
        if block:
            yield block

    return columns, blocks()
