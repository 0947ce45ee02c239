"""The interactive architecture page: ``inceptdsl render SPEC -o FILE.html``.

One self-contained HTML file (styles, script and data inline; it requests nothing): the
spec's scope tree opens collapsed at ``depth`` (1: one node per top-level block); clicking
a block opens it in place, down to single layers; hover or focus shows a node's path,
kind, output shape, params, buffers, MACs, FLOPs and spec line; a search box finds paths
and kinds; nodes can be coloured by kind, params or MACs; a side table lists summary's
blocks. The layout runs in the page (``page.js``, no library): a container's items sit
in rows, each one row below the lowest item feeding it.

DOM contract (tests and users rely on it; docs/cli.md states it): every drawn node is an
element with ``data-path``, ``data-kind``, ``data-params``, ``data-macs`` (and
``data-buffers``, ``data-depth``); a node that can open has ``data-expandable="true"``
and ``aria-expanded``; the search field is ``input[type=search]``.

>>> from inceptdsl.loader import load
>>> text = page_html(load("googlenet"))
>>> text.startswith("<!DOCTYPE html>") and "<script src" not in text
True
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from string import Template

from ..spec import Spec
from .data import FIELDS, page_data

__all__ = ["FIELDS", "page_data", "page_html", "render_any", "write_page"]


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def page_html(spec: Spec, depth: int = 1) -> str:
    """The page's HTML text (deterministic: same spec, same bytes)."""
    data = page_data(spec)
    data["open_depth"] = max(depth, 1)
    blob = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return Template(_asset("page.html")).substitute(
        title=_escape(f"{data['name']}: inceptdsl architecture"),
        style=_asset("page.css"),
        data=blob.replace("</", "<\\/"),
        script=_asset("page.js"))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_page(spec: Spec, path: str | Path, depth: int | None = None) -> Path:
    """Write the page of ``spec`` to ``path`` through the shared output writer (atomic for
    a file, in place for a device or FIFO, never over the spec itself)."""
    from ..fileio import write_output

    write_output(path, page_html(spec, depth or 1), protect=[spec.path] if spec.path else [])
    return Path(path)


def render_any(spec: Spec, path: str | Path, depth: int | None = None) -> Path:
    """``render``: an ``.html`` path gets the page, any other suffix a graphviz diagram."""
    if Path(path).suffix.lower() == ".html":
        return write_page(spec, path, depth)
    from ..diagram import render_file

    return render_file(spec, path, depth=depth)
