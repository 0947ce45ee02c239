"""Diagrams: every shipped spec renders without a system graphviz, in every format, with
collapsed and folded blocks; the DOT is deterministic and the committed gallery is current."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_cli, shipped_names
from helpers import run_without_frameworks

from inceptdsl.loader import load

render = importlib.import_module("inceptdsl.diagram")

GALLERY = ROOT / "docs" / "gallery"


@pytest.fixture
def no_system_dot(monkeypatch):
    """Hide any system ``dot`` so the pip-installed graphviz-pure engine is used."""
    real = render.shutil.which
    monkeypatch.setattr(render.shutil, "which",
                        lambda name, *a, **k: None if name == "dot" else real(name, *a, **k))
    assert Path(render.layout_engine()).name == "graphviz-pure"


@pytest.mark.parametrize("name", shipped_names())
def test_every_shipped_spec_renders_svg_without_system_graphviz(name, tmp_path, no_system_dot):
    out = tmp_path / f"{name}.svg"
    result = run_cli("render", name, "-o", str(out), "--depth", "1")
    assert result.code == 0, result.err
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and "</svg>" in text


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_depth_one_draws_fewer_nodes_than_full_depth(name):
    shallow = render.picture(load(name), depth=1)
    full = render.picture(load(name), depth=shallow.full_depth)
    assert len(shallow.units) < len(full.units)
    dot1, dot_full = render.to_dot(shallow), render.to_dot(full)
    assert dot1.count("subgraph cluster_") == 0 < dot_full.count("subgraph cluster_")


@pytest.mark.parametrize(("suffix", "magic"), [
    ("png", b"\x89PNG\r\n\x1a\n"), ("pdf", b"%PDF-"), ("dot", b"digraph"), ("svg", b"<?xml")])
def test_output_formats_are_valid_files(suffix, magic, tmp_path, no_system_dot):
    out = tmp_path / f"g.{suffix}"
    result = run_cli("render", "googlenet", "-o", str(out), "--depth", "1")
    assert result.code == 0, result.err
    data = out.read_bytes()
    assert data.startswith(magic)
    if suffix == "pdf":
        assert data.rstrip().endswith(b"%%EOF") and b"/Helvetica" in data


def test_exit_codes(tmp_path, write_spec):
    assert run_cli("render", "googlenet", "-o", str(tmp_path / "g.jpg")).code == 2
    assert run_cli("render", "googlenet", "-o", str(tmp_path / "g")).code == 2
    assert run_cli("render", "googlenet", "-o", str(tmp_path / "g.svg"), "--depth", "0").code == 2
    assert run_cli("render", "no_such_spec", "-o", str(tmp_path / "g.svg")).code == 2
    assert run_cli("render", "googlenet").code == 2  # -o is required
    missing = tmp_path / "no" / "dir" / "g.svg"
    assert run_cli("render", "googlenet", "-o", str(missing)).code == 2
    bad = write_spec("format: 1\nname: bad\ninput: [3, 8, 8]\nbody:\n  - nosuchop(3)\n")
    result = run_cli("render", bad, "-o", str(tmp_path / "b.svg"))
    assert result.code == 1 and "nosuchop" in result.err
    assert not list(tmp_path.glob("*.svg")) and not list(tmp_path.glob(".*.tmp"))


def test_unknown_depth_clamps_to_full_and_default_is_readable():
    big = render.picture(load("inception_v3"), depth=99)
    assert big.depth == big.full_depth
    default = render.picture(load("inception_v3"))
    assert default.depth >= 1 and len(default.units) <= render.READABLE_NODES + 2


def test_folds_identical_consecutive_blocks_and_marks_side_outputs():
    dot = render.to_dot(render.picture(load("inception_v3"), depth=1))
    assert "Mixed_6c … Mixed_6d" in dot and "InceptionC(160)  × 2" in dot
    assert "Mixed_5c … " not in dot  # different in_channels: not folded
    assert re.search(r'label=" 768×17×17" style="dashed"', dot)  # edge into the aux head
    assert "AuxLogits (training)" in dot and "rounded,filled,dashed" in dot
    assert "legend" not in dot.split("\n", 3)[3] or "side output (training only)" in dot


def test_repeats_fold_into_one_node():
    dot = render.to_dot(render.picture(load("inception_resnet_v2"), depth=1))
    assert "× 10" in dot and "× 20" in dot


def test_opened_block_puts_parallel_branches_side_by_side():
    pic = render.picture(load("inception_v3"), depth=2)
    dot = render.to_dot(pic)
    assert "Mixed_7b: InceptionE" in dot
    rows = re.findall(r"\{rank=same; ([^\[]+) \[style=invis\]\}", dot)
    assert any(len(r.split("->")) == 4 for r in rows)  # 4 branches of a module, in order
    for row in rows:
        keys = [k.strip() for k in row.split("->")]
        orders = [pic.units[k].order for k in keys]
        assert orders == sorted(orders)


def test_dot_is_deterministic_across_hash_seeds():
    code = ("import hashlib; from inceptdsl.loader import load; import inceptdsl.diagram as render;"
            "print(hashlib.sha256(render.to_dot(render.picture(load('inception_v3'), 2))"
            ".encode()).hexdigest())")
    digests = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, timeout=120, check=True)
        digests.add(proc.stdout.strip())
    assert len(digests) == 1


def test_render_imports_neither_torch_nor_jax(tmp_path):
    out = tmp_path / "v3.svg"
    run_without_frameworks("render", "inception_v3", "-o", str(out))
    assert b"<svg" in out.read_bytes()[:2000]


def test_committed_gallery_is_up_to_date():
    """Regenerate with: python -m inceptdsl.diagram --gallery docs/gallery"""
    hint = "the gallery is stale: run python -m inceptdsl.diagram --gallery docs/gallery"
    sources = render.gallery_sources()
    assert sorted(p.stem for p in GALLERY.glob("*.dot")) == sorted(sources), hint
    assert sorted(p.stem for p in GALLERY.glob("*.svg")) == sorted(sources), hint
    for name, source in sources.items():
        assert (GALLERY / f"{name}.dot").read_text(encoding="utf-8") == source, f"{name}: {hint}"
        assert (GALLERY / f"{name}.svg").read_bytes() == render.gallery_svg(source), (
            f"{name}.svg: {hint}")
    index = (ROOT / "docs" / "gallery.md").read_text(encoding="utf-8")
    assert index == render.gallery_markdown(list(sources)), hint


def test_python_api_render_still_callable_after_the_module_is_imported(tmp_path):
    import inceptdsl

    out = inceptdsl.render("googlenet", tmp_path / "g.dot", depth=1)
    assert out.read_text().startswith("digraph")
