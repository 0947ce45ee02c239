"""The interactive page (render -o FILE.html), without a browser: its costs equal
``summary --json`` to the unit, it is self-contained and deterministic, small enough, and
rendering it imports no framework. The browser tests are in test_page_browser.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import ROOT, run_cli, shipped_names

from inceptdsl.diagram import gallery_specs
from inceptdsl.loader import load
from inceptdsl.page import FIELDS, page_data, page_html

GALLERY = ROOT / "docs" / "gallery"
P, KIND, PARAMS, BUFFERS, MACS, FLOPS, PARENT = (FIELDS.index(k) for k in (
    "path", "kind", "params", "buffers", "macs", "flops", "parent"))


def page_nodes(name: str) -> dict[tuple[str, str], list]:
    """(path, kind) -> row: a layer may repeat its block's path (bn_inception)."""
    return {(row[P], row[KIND]): row for row in page_data(load(name))["nodes"]}


@pytest.mark.parametrize("name", shipped_names())
def test_page_costs_equal_summary_json_at_every_depth(name):
    nodes = page_nodes(name)
    for depth in (1, 2, 3):
        report = json.loads(run_cli("summary", name, "--json", "--depth", str(depth)).out)
        for block in report["blocks"]:
            row = nodes[block["path"], block["kind"]]
            assert (row[PARAMS], row[BUFFERS], row[MACS], row[FLOPS]) == (
                block["params"], block["buffers"], block["macs"], block["flops"]), block["path"]
    top = [row for row in nodes.values() if row[PARENT] < 0]
    for key, index in (("params", PARAMS), ("buffers", BUFFERS), ("macs", MACS),
                       ("flops", FLOPS)):
        assert sum(row[index] for row in top) == report[key], key


@pytest.mark.parametrize("name", shipped_names())
def test_children_add_up_to_their_parent(name):
    rows = page_data(load(name))["nodes"]
    sums: dict[int, list[int]] = {}
    for row in rows:
        if row[PARENT] >= 0:
            total = sums.setdefault(row[PARENT], [0, 0, 0])
            for i, index in enumerate((PARAMS, BUFFERS, MACS)):
                total[i] += row[index]
    for parent, total in sums.items():
        assert total == [rows[parent][i] for i in (PARAMS, BUFFERS, MACS)], rows[parent][P]


def test_irv2_opens_with_few_top_level_nodes_and_a_foldable_repeat():
    data = page_data(load("inception_resnet_v2"))
    rows = data["nodes"]
    top = [row for row in rows if row[PARENT] < 0]
    assert len(top) <= 30
    repeat = next(i for i, row in enumerate(rows) if row[P] == "repeat")
    blocks = [row for row in rows if row[PARENT] == repeat]
    assert [row[FIELDS.index("kind")] for row in blocks] == ["Block35"] * 10
    assert rows[repeat][FIELDS.index("desc")] == "Block35 × 10"


def test_page_is_self_contained_and_small():
    text = page_html(load("inception_resnet_v2"))
    assert len(text.encode("utf-8")) < 2_000_000
    for pattern in (r"\bsrc\s*=", r"\bhref\s*=", r"url\(\s*['\"]?(?!#)", r"@import",
                    r"https?://", r"<link\b", r"\bfetch\(", r"XMLHttpRequest"):
        assert not re.search(pattern, text), pattern
    assert text.count("<script") == 2 and '<input type="search"' in text


def test_page_is_deterministic():
    assert page_html(load("googlenet")) == page_html(load("googlenet"))


def test_page_data_cannot_close_its_script_tag(write_spec):
    spec = write_spec("format: 1\nname: tricky\ndescription: 'a </script><b>x'\n"
                      "input: [3, 8, 8]\nbody:\n  - conv(4, 3)\n")
    text = page_html(load(spec))
    assert text.count("</script>") == 2


def test_render_html_imports_neither_torch_nor_jax(tmp_path):
    out = tmp_path / "irv2.html"
    code = ("import sys; from inceptdsl.cli import main;"
            f"rc = main(['render', 'inception_resnet_v2', '-o', {str(out)!r}]);"
            "bad = [m for m in ('torch', 'jax', 'flax') if m in sys.modules];"
            "print(rc, bad)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert proc.stdout.strip() == "0 []", proc.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_render_html_errors_leave_no_file(tmp_path, write_spec):
    bad = write_spec("format: 1\nname: bad\ninput: [3, 8, 8]\nbody:\n  - nosuchop(3)\n")
    result = run_cli("render", bad, "-o", str(tmp_path / "b.html"))
    assert result.code == 1 and "nosuchop" in result.err
    assert run_cli("render", "googlenet", "-o", str(tmp_path / "no" / "g.html")).code == 2
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob(".*.tmp"))


def test_render_html_with_depth_opens_the_first_levels(tmp_path):
    out = tmp_path / "v3.html"
    assert run_cli("render", "inception_v3", "-o", str(out), "--depth", "2").code == 0
    data = re.search(r'<script type="application/json" id="page-data">(.*?)</script>',
                     out.read_text(encoding="utf-8"), re.S).group(1)
    assert json.loads(data)["open_depth"] == 2


def test_python_api_renders_html(tmp_path):
    import inceptdsl

    out = inceptdsl.render("googlenet", tmp_path / "g.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_committed_gallery_pages_are_up_to_date():
    """Regenerate with: python -m inceptdsl.diagram --gallery docs/gallery"""
    hint = "the gallery is stale: run python -m inceptdsl.diagram --gallery docs/gallery"
    names = gallery_specs()
    assert sorted(p.stem for p in GALLERY.glob("*.html")) == names, hint
    for name in names:
        committed = (GALLERY / f"{name}.html").read_text(encoding="utf-8")
        assert committed == page_html(load(name)), f"{name}: {hint}"
    total = sum((GALLERY / f"{name}.html").stat().st_size for name in names)
    assert total < 400_000 * len(names)
