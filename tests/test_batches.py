"""Batch planning: every mailbox in exactly one batch, none over the cap."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.batches import BatchPlanner
from runbook.config import load_config

from .conftest import SAMPLE_CONFIG


def planner_for(tmp: Path, batch_size: int, waves: list[list[int]], column_wave: bool) -> BatchPlanner:
    text = SAMPLE_CONFIG.read_text()
    head = text[: text.index("[[batches]]")].replace("batch_size = 2000", f"batch_size = {batch_size}")
    for i, members in enumerate(waves):
        if not members:
            continue
        users = ", ".join(f'"u{n}@wingtiptoys.kr"' for n in members)
        head += f'\n[[batches]]\nname = "Wave{i}"\nusers = [{users}]\n'
    if column_wave:
        head += '\n[[batches]]\nname = "Sales"\ncolumn = "Department"\nvalues = ["Sales"]\n'
    path = tmp / "migration.toml"
    path.write_text(head)
    return BatchPlanner(load_config(path))


@given(
    count=st.integers(min_value=0, max_value=300),
    batch_size=st.integers(min_value=1, max_value=2000),
    waves=st.lists(st.sets(st.integers(min_value=0, max_value=299), max_size=20), max_size=3),
    column_wave=st.booleans(),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_mailbox_lands_in_exactly_one_batch(tmp_path: Path, count: int, batch_size: int,
                                                 waves: list[set[int]], column_wave: bool) -> None:
    # A user listed in two waves is a config error (tested elsewhere); keep waves disjoint here.
    seen: set[int] = set()
    disjoint = []
    for wave in waves:
        disjoint.append(sorted(wave - seen))
        seen |= wave
    planner = planner_for(tmp_path, batch_size, disjoint, column_wave)
    for n in range(count):
        department = "Sales" if n % 7 == 0 and n not in seen else "Ops"
        planner.assign(f"u{n}@wingtiptoys.kr", f"u{n}@tailspintoys.kr", {"Department": department}, n + 2, "e.csv")
    batches, problems = planner.finish()
    placed = [t for b in batches for t in b.targets]
    assert sorted(placed) == sorted(f"u{n}@tailspintoys.kr" for n in range(count))
    assert all(len(b.targets) <= batch_size for b in batches if b.options is None)
    assert all(len(b.targets) <= 2000 for b in batches)
    assert [b.number for b in batches] == list(range(1, len(batches) + 1))
    assert len({b.slug for b in batches}) == len(batches)
    missing = [p for p in problems if p.severity == "error"]
    assert all("is not a mailbox in the export" in p.message for p in missing)
    assert len(missing) == sum(1 for w in disjoint for n in w if n >= count)


def test_a_mailbox_selected_twice_is_reported(tmp_path: Path) -> None:
    planner = planner_for(tmp_path, 10, [[1]], column_wave=True)
    assert planner.assign("u1@wingtiptoys.kr", "u1@tailspintoys.kr", {"Department": "Sales"}, 3, "e.csv") is None
    _, problems = planner.finish()
    assert [p.message for p in problems if p.line == 3] == [
        "u1@wingtiptoys.kr is selected by several batches (Wave0, Sales); a mailbox moves in one batch"]
