"""Rendering: step contexts -> .ps1 bytes, and the output tree that is replaced atomically.

Scripts are UTF-8 with a BOM (Windows PowerShell 5.1 reads BOM-less files as ANSI and would
mangle every non-ASCII name). Nothing here reads the clock or the environment, so the same
inputs always give the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .config import LoadedConfig, Tenant
from .errors import RefusedError
from .plan import Step
from .powershell import PsCode
from .templating import make_environment

BOM = b"\xef\xbb\xbf"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "runbook-manifest/1"
KEPT_ACROSS_RENDERS = ("journal.json", "logs")
"""Files of runs, not of the render: a new render of the same folder keeps them."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileEntry:
    """One file of the runbook as ``manifest.json`` lists it."""

    path: str
    sha256: str
    kind: str
    side: str | None = None
    step: str | None = None
    order: int | None = None

    def to_dict(self) -> dict[str, Any]:
        # Flat fields: dataclasses.asdict would deep-copy each one, a thousand files over.
        return {f: v for f in _ENTRY_FIELDS if (v := getattr(self, f)) is not None}


_ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(FileEntry))


def write_file(root: Path, rel: str, data: bytes, kind: str, *, step: Step | None = None) -> FileEntry:
    """Write one file of a runbook under ``root``; return its manifest entry."""
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return FileEntry(rel, sha256(data), kind, step.side if step else None, step.id if step else None)


class OutputTree:
    """A runbook folder built in a staging folder beside ``final`` and swapped in when complete.

    An existing ``final`` is replaced only if it is empty or a runbook (it has our manifest), so
    a typo in ``-o`` cannot wipe an unrelated folder.
    """

    def __init__(self, final: Path, step_order: list[str]) -> None:
        self.final = final.resolve()
        self.step_order = step_order
        check_replaceable(self.final)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", suffix=".tmp", dir=self.final.parent))
        self.entries: dict[str, FileEntry] = {}

    def add(self, rel: str, data: bytes, kind: str, *, step: Step | None = None) -> FileEntry:
        if rel in self.entries:
            raise ValueError(f"{rel} is written twice")
        return self.register(write_file(self.root, rel, data, kind, step=step))

    def add_pieces(self, rel: str, pieces: Iterable[bytes], kind: str) -> FileEntry:
        """Like :meth:`add`, for a file written and hashed piece by piece (the mapping of 100,000 rows)."""
        if rel in self.entries:
            raise ValueError(f"{rel} is written twice")
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with target.open("wb") as fh:
            for piece in pieces:
                digest.update(piece)
                fh.write(piece)
        return self.register(FileEntry(rel, digest.hexdigest(), kind))

    def register(self, entry: FileEntry) -> FileEntry:
        """Record a file written into :attr:`root` elsewhere (by a worker, with :func:`write_file`)."""
        if entry.path in self.entries:
            raise ValueError(f"{entry.path} is written twice")
        self.entries[entry.path] = entry
        return entry

    def ordered(self) -> list[FileEntry]:
        """Entries by path, scripts numbered in the order the runbook runs them."""
        position = {step_id: i for i, step_id in enumerate(self.step_order)}
        scripts = sorted(
            (e for e in self.entries.values() if e.kind == "script"),
            key=lambda e: (position[e.step or ""], e.path),
        )
        numbered = {e.path: dataclasses.replace(e, order=i) for i, e in enumerate(scripts, 1)}
        return [numbered.get(p, self.entries[p]) for p in sorted(self.entries)]

    def commit(self, header: Mapping[str, Any]) -> list[FileEntry]:
        """Write the manifest and move the tree into place; return the manifest's entries."""
        entries = self.ordered()
        manifest = {"format": MANIFEST_FORMAT, **header, "files": [e.to_dict() for e in entries]}
        (self.root / MANIFEST).write_bytes(_json_bytes(manifest))
        old = None
        if self.final.exists():
            # What runs left behind outlives a re-render: the journal keys each script by its hash,
            # so unchanged scripts stay done and changed ones run again.
            for kept in KEPT_ACROSS_RENDERS:
                if (self.final / kept).exists() and not (self.root / kept).exists():
                    shutil.copytree(self.final / kept, self.root / kept) if (self.final / kept).is_dir() \
                        else shutil.copy2(self.final / kept, self.root / kept)
            old = self.final.with_name(self.root.name + ".old")
            os.replace(self.final, old)
        os.replace(self.root, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return entries

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> OutputTree:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None or self.root.exists():
            self.discard()


def check_replaceable(final: Path) -> None:
    """Refuse to replace a folder that is neither empty nor a runbook."""
    if not final.exists():
        return
    if not final.is_dir():
        raise RefusedError(f"{final} exists and is not a folder; choose another output folder")
    if not any(final.iterdir()):
        return
    try:
        manifest = json.loads((final / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise RefusedError(
            f"{final} is not empty and holds no runbook manifest; refusing to replace it. "
            "Choose an empty or new output folder."
        )


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")


def csv_bytes(header: Iterable[str], rows: Iterable[Iterable[object]]) -> bytes:
    """CSV as Exchange reads it: comma-separated, CRLF, UTF-8 without BOM."""
    return b"".join(csv_pieces(header, rows))


def csv_pieces(header: Iterable[str], rows: Iterable[Iterable[object]], *, rows_per_piece: int = 4096) -> Iterator[bytes]:
    """:func:`csv_bytes` a few thousand rows at a time, for a file too large to build in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    it = iter(rows)
    while True:
        piece = [list(row) for row in itertools.islice(it, rows_per_piece)]
        if not piece:
            break
        plain = _plain_csv(piece)
        if plain is not None:
            buffer.write(plain)
        else:
            writer.writerows(piece)
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


_CSV_SPECIAL = (",", '"', "\r", "\n")


def _plain_csv(rows: list[list[object]]) -> str | None:
    """The CSV of ``rows`` if no field needs quoting, as :mod:`csv` would write it; else None.

    The mapping table of a large move has 100,000 rows of addresses and paths, none of which
    needs quotes; joining them takes about half the time of the csv module's scan of every
    character. Only text and whole numbers qualify (csv writes None as nothing, floats by repr),
    and no row may be empty or a lone empty field (csv writes those as a blank line and ``""``).
    """
    fields = [field for row in rows for field in row]
    if not {*map(type, fields)} <= _CSV_PLAIN_TYPES:
        return None
    lines = ["\x00".join(map(str, row)) for row in rows]
    if "" in lines:
        return None
    text = "\x01".join(lines)
    if text.count("\x00") != len(fields) - len(rows) or text.count("\x01") != len(rows) - 1 \
            or any(ch in text for ch in _CSV_SPECIAL):
        return None
    return text.replace("\x00", ",").replace("\x01", "\r\n") + "\r\n"


_CSV_PLAIN_TYPES = {str, int}


class ScriptRenderer:
    """Renders step templates with the values every script shares."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self.env = make_environment()
        self._chunk_parts: dict[tuple[str, str], tuple[dict[str, Any], list[bytes] | None]] = {}

    def tenant(self, step: Step) -> Tenant:
        return self.config.tenant(step.side)

    def meta(self, step: Step) -> dict[str, object]:
        tenant = self.tenant(step)
        hosts = self.config.hosts
        return {
            "Step": step.id,
            "Side": step.side,
            "Tenant": tenant.name,
            "TenantId": str(tenant.tenant_id),
            "InitialDomain": tenant.initial_domain,
            "ExchangeEnvironment": hosts.exchange_environment,
            "GraphEnvironment": hosts.graph_environment,
            "GraphScopes": list(step.scopes),
            "GraphAppRoles": list(step.roles),
            "RunbookVersion": __version__,
        }

    def render(self, step: Step, *, template_name: str | None = None, **context: Any) -> bytes:
        name = template_name or step.template
        assert name is not None
        template = self.env.get_template(f"ps1/{name}")
        text = template.render(meta=self.meta(step), **context)
        return BOM + text.encode("utf-8")

    def render_chunk(self, step: Step, number: int, block: bytes, *, result_stem: str, **context: Any) -> bytes:
        """One chunk's script: ``block`` (its records, already quoted and UTF-8) as ``records``,
        ``chunk`` = {Number}, ``result_file`` = ``{result_stem}-{number:04d}.csv``.

        The same records go into a MailUser script and both pre-flight scripts, hundreds of
        chunks each in a large move. Each step's template is rendered once, with markers where
        the records and the chunk's number go, and each chunk splices its own in: the bytes are
        those of a render per chunk, at a fraction of the cost.
        """
        key = (step.id, result_stem)
        cached = self._chunk_parts.get(key)
        if cached is None or cached[0] != context:
            cached = (context, self._chunk_template(step, result_stem, context))
            self._chunk_parts[key] = cached
        parts = cached[1]
        if parts is None:  # a value of this runbook holds a marker: render each chunk in full
            text = self.render(step, records=_BLOCK_MARK, chunk={"Number": number},
                               result_file=f"{result_stem}-{number:04d}.csv", **context)
            head, sep, tail = text.partition(_BLOCK_MARK_BYTES)
            assert sep and _BLOCK_MARK_BYTES not in tail, "the template must show records exactly once"
            return head + block + tail
        values = {_BLOCK_MARK_BYTES: block, _NUMBER_BYTES: str(number).encode(),
                  _PADDED_BYTES: f"{number:04d}".encode()}
        return b"".join([values.get(part, part) for part in parts])

    def _chunk_template(self, step: Step, result_stem: str, context: dict[str, Any]) -> list[bytes] | None:
        """The step's chunk script cut at its markers, or ``None`` if data could be mistaken for one."""
        shown = [*self.meta(step).values(), result_stem, *context.values()]
        if any(marker in str(value) for value in shown for marker in (_NUMBER, _PADDED)):
            return None
        text = self.render(step, records=_BLOCK_MARK, chunk={"Number": _NUMBER},
                           result_file=f"{result_stem}-{_PADDED}.csv", **context)
        parts = _MARKS.split(text)
        assert parts.count(_BLOCK_MARK_BYTES) == 1, "the template must show records exactly once"
        return parts


# NUL never reaches a script (the quoting module refuses it), so it cannot collide with data.
_BLOCK_MARK = PsCode("\x00records\x00")
_BLOCK_MARK_BYTES = _BLOCK_MARK.encode("utf-8")
# Private-use characters stand for the chunk's number: a plain int literal in ``$Chunk`` (as
# ps_int writes a positive int) and four digits inside the result file's quoted name.
_NUMBER = PsCode("\ue000")
_PADDED = "\ue001"
_NUMBER_BYTES = _NUMBER.encode("utf-8")
_PADDED_BYTES = _PADDED.encode("utf-8")
_MARKS = re.compile(b"(" + b"|".join(re.escape(m) for m in (_BLOCK_MARK_BYTES, _NUMBER_BYTES, _PADDED_BYTES)) + b")")


def render_markdown(template: str, **context: Any) -> bytes:
    env = make_environment(markdown=True)
    return env.get_template(f"md/{template}").render(**context).encode("utf-8")
