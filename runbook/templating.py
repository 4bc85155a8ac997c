"""The one Jinja2 environment factory, used by production and tests alike.

PowerShell is not HTML, so autoescaping is off; instead :func:`_finalize` lets only
:class:`~runbook.powershell.PsCode` (what the ``ps_*`` filters and the shared macros return)
reach the output. A ``{{ value }}`` without a filter fails the render with the template's name
instead of producing a script that could run a user's text as code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from .powershell import FILTERS, PsCode

MACROS_TEMPLATE = "ps1/_macros.ps1.jinja"


class TemplateDataError(RuntimeError):
    """A template tried to output a value that did not pass through a ``ps_*`` filter."""


def templates_dir() -> Path:
    """Templates inside the installed package, else the repository's ``templates/`` folder."""
    packaged = resources.files("runbook") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    repo = Path(__file__).resolve().parent.parent / "templates"
    if repo.is_dir():
        return repo
    raise FileNotFoundError("runbook's templates are missing from this installation")


def _finalize(value: Any) -> Any:
    if value is None:
        raise TemplateDataError("a template produced None; every value must be given")
    if not isinstance(value, PsCode):
        raise TemplateDataError(
            f"a template output {type(value).__name__} {str(value)[:40]!r} without a ps_* filter"
        )
    return value


def _finalize_markdown(value: Any) -> Any:
    if value is None:
        raise TemplateDataError("a template produced None; every value must be given")
    if not isinstance(value, (MdText, int)):
        raise TemplateDataError(
            f"RUNBOOK.md output {type(value).__name__} {str(value)[:40]!r} without the md filter"
        )
    return value


class _Macros:
    """Exposes the shared macros so that what they return counts as PowerShell code."""

    def __init__(self, env: jinja2.Environment) -> None:
        self._env = env

    @functools.cached_property
    def _module(self) -> Any:
        return self._env.get_template(MACROS_TEMPLATE).module

    def __getattr__(self, name: str) -> Callable[..., PsCode]:
        if name.startswith("_"):
            raise AttributeError(name)
        macro = getattr(self._module, name)

        def call(*args: Any, **kwargs: Any) -> PsCode:
            return PsCode(macro(*args, **kwargs))

        return call


class MdText(str):
    """Text already escaped for Markdown."""

    __slots__ = ()


def md_text(value: object) -> MdText:
    """Escape text for Markdown tables and prose (pipes, emphasis, HTML, links, line breaks)."""
    text = str(value)
    for ch in "\\`*_{}[]<>|~":
        text = text.replace(ch, "\\" + ch)
    return MdText(" ".join(text.splitlines()))


def md_code(value: object) -> MdText:
    """An inline code span that holds any text, backticks included."""
    text = " ".join(str(value).splitlines())
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return MdText(f"{fence}{pad}{text}{pad}{fence}")


def make_environment(*, markdown: bool = False) -> jinja2.Environment:
    """A fresh environment over ``templates/``; ``markdown=True`` for RUNBOOK.md."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_finalize_markdown if markdown else _finalize,
    )
    if markdown:
        env.filters["md"] = md_text
        env.filters["md_code"] = md_code
    else:
        env.filters.update(FILTERS)
        env.globals["m"] = _Macros(env)
    return env
