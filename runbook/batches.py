"""Waves and migration batches: every mailbox lands in exactly one batch of at most 2,000.

Batches named in ``[[batches]]`` take their users by address or by the value of an export
column; the rest fill automatic batches in export order. Assignment happens as rows stream by,
so only the addresses are kept, never the mailboxes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .config import MAX_BATCH_SIZE, Batch, LoadedConfig
from .errors import Problem


@dataclass
class PlannedBatch:
    """One New-MigrationBatch: its name, options and the target addresses in it."""

    number: int
    name: str
    options: Batch | None
    config_index: int | None = None
    targets: list[str] = field(default_factory=list)

    @property
    def slug(self) -> str:
        """A file-name-safe stem, unique through the batch number."""
        clean = re.sub(r"[^A-Za-z0-9._-]+", "-", self.name).strip("-.")[:40] or "batch"
        return f"{self.number:03d}-{clean}"

    @property
    def auto_start(self) -> bool:
        return self.options.auto_start if self.options else False

    @property
    def auto_complete(self) -> bool:
        return self.options.auto_complete if self.options else False


class BatchPlanner:
    """Assigns mailboxes to batches while the export streams past."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self._loaded = loaded
        cfg = loaded.config
        self.batch_size = min(cfg.mailboxes.batch_size, MAX_BATCH_SIZE)
        self.prefix = cfg.batch_prefix
        self.explicit: list[PlannedBatch] = []
        self._by_user: dict[str, tuple[int, int]] = {}  # folded address -> (batch, users index)
        self._seen_users: set[str] = set()
        self._column_batches: list[tuple[int, str, frozenset[str]]] = []
        self._column_hits: dict[int, int] = {}
        for i, entry in enumerate(cfg.batches):
            batch = PlannedBatch(number=0, name=entry.name, options=entry, config_index=i)
            self.explicit.append(batch)
            for j, user in enumerate(entry.users):
                self._by_user.setdefault(user.casefold(), (i, j))
            if entry.column:
                values = frozenset(v.strip().casefold() for v in entry.values)
                self._column_batches.append((i, entry.column, values))
        self.auto: list[PlannedBatch] = []
        self.problems: list[Problem] = []
        self.missing_columns: set[str] = set()
        """Columns the export lacks (already reported); their batches get no second warning."""

    @property
    def columns(self) -> tuple[str, ...]:
        """Export columns the planner needs to see on each mailbox."""
        return tuple(dict.fromkeys(column for _, column, _ in self._column_batches))

    def assign(self, source_primary: str, target_primary: str, extra: dict[str, str], line: int,
               display: str) -> PlannedBatch | None:
        """Put one mailbox in its batch; ``None`` (and a problem) if it fits no single batch."""
        chosen: list[int] = []
        if self._by_user:
            key = source_primary.casefold()
            listed = self._by_user.get(key)
            if listed is not None:
                chosen.append(listed[0])
                self._seen_users.add(key)
        for index, column, values in self._column_batches:
            value = (extra.get(column) or "").strip().casefold()
            if value and value in values:
                chosen.append(index)
                self._column_hits[index] = self._column_hits.get(index, 0) + 1
        if len(chosen) > 1:
            names = ", ".join(self.explicit[i].name for i in chosen)
            self.problems.append(Problem(display, line, "batches", f"{source_primary} is selected by several batches ({names}); a mailbox moves in one batch"))
            return None
        if chosen:
            batch = self.explicit[chosen[0]]
        else:
            if not self.auto or len(self.auto[-1].targets) >= self.batch_size:
                n = len(self.auto) + 1
                self.auto.append(PlannedBatch(number=0, name=f"{self.prefix}-{n:03d}", options=None))
            batch = self.auto[-1]
        batch.targets.append(target_primary)
        return batch

    def finish(self) -> tuple[list[PlannedBatch], list[Problem]]:
        """Number the batches, and report listed users missing from the export and oversize batches."""
        loaded = self._loaded
        problems = list(self.problems)
        for user, (i, j) in self._by_user.items():
            if user not in self._seen_users:
                entry_user = loaded.config.batches[i].users[j]
                problems.append(Problem(loaded.display, loaded.line_of("batches", i, "users", j),
                                        f"batches[{i}].users[{j}]",
                                        f"{entry_user} is not a mailbox in the export"))
        for i, column, _ in self._column_batches:
            if not self._column_hits.get(i) and column not in self.missing_columns:
                problems.append(Problem(loaded.display, loaded.line_of("batches", i, "column"),
                                        f"batches[{i}].values", f"no mailbox in the export has one of these values in column {column}",
                                        "warning"))
        batches = [b for b in self.explicit if b.targets] + self.auto
        names: dict[str, PlannedBatch] = {}
        for number, batch in enumerate(batches, 1):
            batch.number = number
            if len(batch.targets) > MAX_BATCH_SIZE:
                i = batch.config_index
                problems.append(Problem(loaded.display, loaded.line_of("batches", i or 0), f"batches[{i}]",
                                        f"batch {batch.name} has {len(batch.targets)} mailboxes; a migration batch takes at most {MAX_BATCH_SIZE}"))
            folded = batch.name.casefold()
            if folded in names:
                problems.append(Problem(loaded.display, loaded.line_of("mailboxes", "batch_prefix"), "mailboxes.batch_prefix",
                                        f"automatic batch name {batch.name} collides with a batch in [[batches]]; set another batch_prefix"))
            names[folded] = batch
        return batches, problems
