"""The wheel ships the templates and the samples, and finds them when installed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import REPO


def test_wheel_contains_templates_and_finds_them(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
    )
    wheel = next(tmp_path.glob("runbook-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.relative_to(REPO / "templates").as_posix() for p in (REPO / "templates").rglob("*.jinja")}
    assert templates and {f"runbook/templates/{t}" for t in templates} <= names
    assert {"runbook/samples/migration.toml", "runbook/samples/csv/source-mailboxes.csv"} <= names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    found = subprocess.run(
        [sys.executable, "-c", "from runbook.templating import templates_dir; print(templates_dir())"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": ""},
    ).stdout.strip()
    assert Path(found) == site / "runbook" / "templates"
