"""Shared fixtures: the PowerShell parser, sample paths, config writers and the golden check."""

from __future__ import annotations

import difflib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import tree_sitter_pwsh
from tree_sitter import Language, Node, Parser

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
SAMPLE_CONFIG = SAMPLES / "migration.toml"
GOLDENS = Path(__file__).resolve().parent / "goldens"
UPDATE_COMMAND = "pytest tests --update-goldens"

PWSH = Language(tree_sitter_pwsh.language())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite tests/goldens from the current output instead of comparing")


@pytest.fixture(scope="session")
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


def parse_ps(source: bytes) -> Node:
    """Parse a script (BOM stripped) with tree-sitter-pwsh and return the root node."""
    if source.startswith(b"\xef\xbb\xbf"):
        source = source[3:]
    return Parser(PWSH).parse(source).root_node


def syntax_errors(source: bytes) -> list[str]:
    """Every ERROR or MISSING node, as ``line:col type text``."""
    found: list[str] = []

    def walk(node: Node) -> None:
        if node.type == "ERROR" or node.is_missing:
            text = (node.text or b"")[:60].decode("utf-8", "replace")
            found.append(f"{node.start_point[0] + 1}:{node.start_point[1] + 1} {node.type} {text!r}")
        for child in node.children:
            walk(child)

    walk(parse_ps(source))
    return found


def nodes_of(source: bytes, kind: str) -> list[Node]:
    out: list[Node] = []

    def walk(node: Node) -> None:
        if node.type == kind:
            out.append(node)
        for child in node.children:
            walk(child)

    walk(parse_ps(source))
    return out


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """Write the sample config with text replacements (and optionally another export) to tmp."""

    def make(replace: dict[str, str] | None = None, *, export: bytes | None = None,
             append: str = "", name: str = "migration.toml") -> Path:
        text = SAMPLE_CONFIG.read_text(encoding="utf-8")
        for old, new in (replace or {}).items():
            assert old in text, f"sample config has no {old!r}"
            text = text.replace(old, new)
        text += append
        (tmp_path / "csv").mkdir(exist_ok=True)
        data = export if export is not None else (SAMPLES / "csv" / "source-mailboxes.csv").read_bytes()
        (tmp_path / "csv" / "source-mailboxes.csv").write_bytes(data)
        (tmp_path / "notice.html").write_bytes((SAMPLES / "notice.html").read_bytes())
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return make


def tree_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def check_golden(update_goldens: bool) -> Callable[[str, Path], None]:
    """Compare a rendered folder with ``tests/goldens/NAME``; show a unified diff on mismatch."""

    def check(name: str, rendered: Path) -> None:
        golden = GOLDENS / name
        if update_goldens:
            if golden.exists():
                shutil.rmtree(golden)
            shutil.copytree(rendered, golden)
            return
        assert golden.is_dir(), f"no golden {golden}; create it with: {UPDATE_COMMAND}"
        want, got = tree_files(golden), tree_files(rendered)
        diffs: list[str] = []
        for path in sorted(set(want) | set(got)):
            a = want.get(path, b"").decode("utf-8", "replace").splitlines(keepends=True)
            b = got.get(path, b"").decode("utf-8", "replace").splitlines(keepends=True)
            if want.get(path) != got.get(path):
                diffs.extend(difflib.unified_diff(a, b, f"golden/{path}", f"rendered/{path}"))
                if a == b:
                    diffs.append(f"{path}: differs in bytes outside the text (BOM or line endings)\n")
        assert not diffs, (
            "rendered output differs from the golden files:\n" + "".join(diffs)[:20000]
            + f"\nIf the change is intended, review it and run: {UPDATE_COMMAND}"
        )

    return check


@pytest.fixture
def sample_render(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from runbook import build

    out = tmp_path_factory.mktemp("render") / "out"
    build.render(SAMPLE_CONFIG, out, config_display="samples/migration.toml")
    yield out


# Optional steps the sample leaves out; the generic script checks run on each variant too.
OPTIONAL_VARIANTS: dict[str, str] = {
    "sample": "",
    "licensing-target": '\n[licensing]\nside = "target"\nusage_location = "KR"\n',
    "licensing-source": '\n[licensing]\nside = "source"\nsku_part_number = "CROSS_TENANT_USER_DATA_MIGRATION"\n',
}


@pytest.fixture(scope="module", params=sorted(OPTIONAL_VARIANTS))
def every_render(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample rendered with each optional step switched on, for checks every script must pass."""
    from runbook import build

    folder = tmp_path_factory.mktemp(request.param)
    shutil.copytree(SAMPLES, folder, dirs_exist_ok=True)
    config = folder / SAMPLE_CONFIG.name
    config.write_text(SAMPLE_CONFIG.read_text(encoding="utf-8") + OPTIONAL_VARIANTS[request.param], encoding="utf-8")
    out = folder / "out"
    build.render(config, out, config_display="migration.toml")
    return out

