"""Large runbooks: chunked scripts, waves by column, automatic batches, the parallel path."""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook import build
from runbook.errors import InputError

from .conftest import REPO, SAMPLE_CONFIG, syntax_errors, tree_files

sys.path.insert(0, str(REPO / "benchmarks"))
from bench_render import generate  # noqa: E402


def without_batches(tmp_path: Path, export: Path | None = None, **settings: object) -> Path:
    text = SAMPLE_CONFIG.read_text(encoding="utf-8")
    text = text[: text.index("[[batches]]")]
    for key, value in settings.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    if export is not None:
        text = text.replace('export = "csv/source-mailboxes.csv"', f'export = "{export.as_posix()}"')
    else:
        (tmp_path / "csv").mkdir(exist_ok=True)
        (tmp_path / "csv" / "source-mailboxes.csv").write_bytes((SAMPLE_CONFIG.parent / "csv" / "source-mailboxes.csv").read_bytes())
    (tmp_path / "notice.html").write_bytes((SAMPLE_CONFIG.parent / "notice.html").read_bytes())
    config = tmp_path / "migration.toml"
    config.write_text(text, encoding="utf-8")
    return config


def users_in(script: bytes) -> list[str]:
    return re.findall(r"'PrimarySmtpAddress' = '([^']*)'", script.decode("utf-8-sig"))


def test_chunks_split_mailusers_and_both_preflights(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build.render(without_batches(tmp_path, chunk_size=5), out)
    files = tree_files(out)
    for folder, stem in (("target/06-mailusers", "mailusers"), ("source/07-preflight", "users"),
                         ("target/07-preflight", "users")):
        chunks = [files[f"{folder}/{stem}-{n:04d}.ps1"] for n in (1, 2, 3)]
        assert [len(users_in(c)) for c in chunks] == [5, 5, 2], folder
        assert f"{folder}/{stem}-0004.ps1" not in files
    mapping = list(csv.DictReader(io.StringIO(files["mailboxes.csv"].decode())))
    assert [row["MailUserScript"][-8:] for row in mapping] == ["0001.ps1"] * 5 + ["0002.ps1"] * 5 + ["0003.ps1"] * 2
    assert [u for n in (1, 2, 3) for u in users_in(files[f"target/06-mailusers/mailusers-{n:04d}.ps1"])] == [
        row["TargetPrimarySmtpAddress"] for row in mapping]


def test_automatic_batches_respect_batch_size(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = build.render(without_batches(tmp_path, batch_size=5), out)
    assert [len(b.targets) for b in result.prepared.batches] == [5, 5, 2]
    assert [b.name for b in result.prepared.batches] == ["wingtiptoys-001", "wingtiptoys-002", "wingtiptoys-003"]
    csvs = sorted((out / "target/10-new-migration-batches").glob("*.csv"))
    assert [len(p.read_text().splitlines()) - 1 for p in csvs] == [5, 5, 2]


def test_a_wave_selected_by_an_export_column(tmp_path: Path) -> None:
    config = without_batches(tmp_path)
    config.write_text(config.read_text() + '\n[[batches]]\nname = "Shared"\ncolumn = "recipienttypedetails"\n'
                      'values = ["SharedMailbox"]\nauto_start = true\n', encoding="utf-8")
    result = build.render(config, tmp_path / "out")
    shared = result.prepared.batches[0]
    assert shared.name == "Shared" and shared.auto_start
    assert shared.targets == ["sales@tailspintoys.kr", "support@tailspintoys.kr", "finance@tailspintoys.kr"]
    assert sum(len(b.targets) for b in result.prepared.batches) == 12


def test_a_wave_on_a_missing_column_is_a_config_error(tmp_path: Path) -> None:
    config = without_batches(tmp_path)
    config.write_text(config.read_text() + '\n[[batches]]\nname = "Wave"\ncolumn = "Department"\nvalues = ["x"]\n',
                      encoding="utf-8")
    with pytest.raises(InputError) as info:
        build.validate(config)
    assert [p.message for p in info.value.problems] == ["the export has no column Department"]
    assert info.value.problems[0].line == 64  # the column = line of the appended [[batches]]


def test_parallel_and_sequential_renders_are_identical(tmp_path: Path) -> None:
    export = tmp_path / "big.csv"
    generate(export, 2600)
    config = without_batches(tmp_path, export=export, chunk_size=700, batch_size=1000)
    build.render(config, tmp_path / "one", workers=0)
    build.render(config, tmp_path / "two", workers=2)
    one, two = tree_files(tmp_path / "one"), tree_files(tmp_path / "two")
    assert one == two
    assert len([p for p in one if p.startswith("target/06-mailusers/")]) == 4
    assert syntax_errors(one["target/06-mailusers/mailusers-0004.ps1"]) == []


def test_parallel_path_reports_the_same_problems(tmp_path: Path) -> None:
    export = tmp_path / "big.csv"
    generate(export, 2100)
    data = export.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    data[1500] = data[1500].replace("@wingtiptoys.kr", "@contoso.com", 1)
    data[2001] = data[2001].replace('"user', '"use r', 1)
    export.write_text("".join(data), encoding="utf-8-sig")
    config = without_batches(tmp_path, export=export)
    found = {}
    for workers in (0, 2):
        with pytest.raises(InputError) as info:
            build.validate(config, workers=workers)
        found[workers] = [(p.line, p.field) for p in info.value.problems if p.severity == "error"]
    assert found[0] == found[2]
    assert {line for line, _ in found[0]} == {1501, 2002}


def test_a_large_move_gets_several_scope_groups_all_published(tmp_path: Path) -> None:
    config = without_batches(tmp_path)
    config.write_text(config.read_text().replace('alias = "t2t-migration-scope"',
                                                 'alias = "t2t-migration-scope"\nmax_members = 5'), encoding="utf-8")
    out = tmp_path / "out"
    build.render(config, out)
    scope = (out / "source/02-scope-group.ps1").read_text("utf-8-sig")
    assert re.findall(r"'Name' = '([^']*)'", scope) == ["T2T-Migration-Scope", "T2T-Migration-Scope-2",
                                                         "T2T-Migration-Scope-3"]
    assert "'Alias' = 't2t-migration-scope-3'" in scope
    assert syntax_errors(scope.encode()) == []
    relationship = (out / "source/03-organization-relationship.ps1").read_text("utf-8-sig")
    assert "'Scopes' = @('T2T-Migration-Scope', 'T2T-Migration-Scope-2', 'T2T-Migration-Scope-3')" in relationship
    teardown = (out / "source/12-teardown.ps1").read_text("utf-8-sig")
    assert "@('T2T-Migration-Scope', 'T2T-Migration-Scope-2', 'T2T-Migration-Scope-3')" in teardown


def test_numbered_scope_group_names_must_fit(tmp_path: Path) -> None:
    config = without_batches(tmp_path)
    long_name = "S" * 63
    config.write_text(config.read_text().replace('name = "T2T-Migration-Scope"', f'name = "{long_name}"')
                      .replace('alias = "t2t-migration-scope"', 'alias = "t2t"\nmax_members = 5'), encoding="utf-8")
    for run in (lambda: build.validate(config), lambda: build.render(config, tmp_path / "out")):
        with pytest.raises(InputError) as info:
            run()
        assert [p.field for p in info.value.problems] == ["scope_group.name"]
    assert not (tmp_path / "out").exists()


@contextlib.contextmanager
def _collections_counted() -> Iterator[list[int]]:
    """The collector on, and the generation of each collection it starts while inside."""
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    was_enabled = gc.isenabled()
    gc.enable()
    gc.callbacks.append(count)
    try:
        yield collections
    finally:
        gc.callbacks.remove(count)
        if not was_enabled:
            gc.disable()


def test_the_per_row_work_runs_without_collections_and_restores_the_collector(tmp_path: Path) -> None:
    """A worker runs with the collector on (the tail renders templates); the rows of a block
    create no reference cycles, so collecting while converting them would be time lost."""
    from runbook.checks import DuplicateScreen
    from runbook.config import load_config
    from runbook.exports import open_export
    from runbook.prepare import _Pass, convert_rows

    export = tmp_path / "big.csv"
    generate(export, 3000)
    config = without_batches(tmp_path, export=export)
    loaded = load_config(config)
    source = open_export(export, "big.csv")
    context = _Pass(loaded, "big.csv", None, DuplicateScreen()).context(source.columns)
    block = next(source.blocks)
    with _collections_counted() as collections:
        results = convert_rows(context, block)
        assert gc.isenabled()
    assert len(results) > 500
    # At most the one collection the allocations made while paused are owed when the collector
    # resumes; converting the block with the collector on costs about a dozen.
    assert len(collections) <= 1


@pytest.mark.parametrize("command,label", [("validate", "Checking"), ("render", "Rendering")])
def test_a_long_run_shows_progress_on_a_terminal_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      command: str, label: str) -> None:
    from click.testing import CliRunner

    from runbook import cli

    export = tmp_path / "big.csv"
    generate(export, 6000)
    config = without_batches(tmp_path, export=export)
    extra = ["-o", str(tmp_path / "out")] if command == "render" else []
    quiet = CliRunner().invoke(cli.main, [command, "-c", str(config), *extra])
    assert quiet.exit_code == 0, quiet.output
    assert label not in quiet.stderr
    monkeypatch.setattr(cli, "_stderr_is_terminal", lambda: True)
    shown = CliRunner().invoke(cli.main, [command, "-c", str(config), *extra])
    assert shown.exit_code == 0, shown.output
    assert label in shown.stderr


def test_what_a_pause_of_the_collector_made_is_aged_not_frozen() -> None:
    """After a render the collector owes no collection of the million containers it made (one
    would start at the next allocation); they stay collectable, in the oldest generation."""
    import weakref

    from runbook.prepare import paused_gc

    class Node:
        me: object

    with _collections_counted() as collections:
        with paused_gc():
            made = [[i] for i in range(50_000)]
            node = Node()
            node.me = node
            ref = weakref.ref(node)
            del node
        after = [[i] for i in range(100)]
        assert collections == []
        assert gc.isenabled() and gc.get_freeze_count() == 0
        gc.collect()
        assert ref() is None
        assert len(made) == 50_000 and len(after) == 100


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import runbook.prepare

    reads: list[str] = []
    real = runbook.prepare.open_export

    def counting(path: Path, display: str):  # type: ignore[no-untyped-def]
        reads.append(display)
        return real(path, display)

    monkeypatch.setattr(runbook.prepare, "open_export", counting)
    return reads


def test_an_export_without_duplicates_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export = tmp_path / "big.csv"
    generate(export, 1200)
    reads = _count_reads(monkeypatch)
    build.render(without_batches(tmp_path, export=export), tmp_path / "out", workers=1)
    assert len(reads) == 1


@pytest.mark.parametrize("workers", [0, 1])
def test_duplicates_are_named_by_a_second_reading_and_nothing_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    export = tmp_path / "big.csv"
    generate(export, 1200)
    data = export.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    guid = data[5].split('","')[7]
    data[1001] = data[1001].replace(data[1001].split('","')[7], guid, 1)  # line 1002 repeats line 6's ExchangeGuid
    data[700] = data[700].replace("@wingtiptoys.kr", "@contoso.com", 1)  # and line 701 has another problem
    export.write_text("".join(data), encoding="utf-8-sig")
    reads = _count_reads(monkeypatch)
    with pytest.raises(InputError) as info:
        build.render(without_batches(tmp_path, export=export), tmp_path / "out", workers=workers)
    assert len(reads) == 2
    errors = [(p.line, p.field, p.message) for p in info.value.problems if p.severity == "error"]
    assert (1002, "ExchangeGuid", f"{guid} is the same as on line 6; each mailbox needs its own") in errors
    assert {line for line, _, _ in errors} == {701, 1002}
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.glob(".out*")) == []  # nor the staging folder beside it


def test_an_export_changed_between_the_two_readings_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The screen saw a repeat the check does not: the rows it read are not the rows now in the
    file, and the chunks already written came from the first reading."""
    import runbook.prepare

    export = tmp_path / "big.csv"
    generate(export, 1200)
    config = without_batches(tmp_path, export=export)
    data = export.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    guid = data[5].split('","')[7]
    changed = "".join(data[:1001] + [data[1001].replace(data[1001].split('","')[7], guid, 1)] + data[1002:])
    real = runbook.prepare._read

    def reading_then_fixing(*args: object) -> object:
        try:
            return real(*args)  # type: ignore[arg-type]
        finally:
            export.write_text("".join(data), encoding="utf-8-sig")  # the admin fixes the file meanwhile

    export.write_text(changed, encoding="utf-8-sig")
    monkeypatch.setattr(runbook.prepare, "_read", reading_then_fixing)
    with pytest.raises(InputError) as info:
        build.render(config, tmp_path / "out", workers=1)
    assert [(p.line, p.field) for p in info.value.problems] == [(None, "file")]
    assert "changed while it was being read" in info.value.problems[0].message
    assert not (tmp_path / "out").exists()


def test_a_pool_of_spawned_workers_renders_the_same_runbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no fork: its workers start afresh, import runbook and make their own renderer."""
    import multiprocessing

    export = tmp_path / "big.csv"
    generate(export, 2600)
    config = without_batches(tmp_path, export=export, chunk_size=700, batch_size=1000)
    build.render(config, tmp_path / "one", workers=0)
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    started: list[str | None] = []
    real_context = multiprocessing.get_context

    def context(method: str | None = None):  # type: ignore[no-untyped-def]
        started.append(method)
        return real_context(method)

    monkeypatch.setattr(multiprocessing, "get_context", context)
    build.render(config, tmp_path / "two", workers=1)
    assert started == ["spawn"]
    assert tree_files(tmp_path / "one") == tree_files(tmp_path / "two")


def test_an_export_saved_during_the_render_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RUNBOOK.md names the export by its hash: it must be the file the scripts came from."""
    from runbook.render import file_sha256

    export = tmp_path / "big.csv"
    generate(export, 300)
    config = without_batches(tmp_path, export=export)

    def saved_meanwhile(path: Path) -> str:
        with path.open("a", encoding="utf-8") as fh:
            fh.write("\r\n")
        return file_sha256(path)

    monkeypatch.setattr(build, "file_sha256", saved_meanwhile)
    with pytest.raises(InputError) as info:
        build.render(config, tmp_path / "out", workers=0)
    assert [str(p) for p in info.value.problems] == [
        f"{export}: file: changed while the runbook was being rendered; render again"]
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.glob(".out*")) == []
