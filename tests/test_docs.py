"""The code in the docs runs: every page of docs/ and README.md, block by block.

Rules (see docs/index.md, "The examples in these pages are tested"):

- each page runs in a fresh temporary folder that links ``examples``, ``specs`` and
  ``tests`` of the repository, so commands are written as from the repository root;
- a fenced block preceded by ``<!-- file: NAME -->`` is written to NAME in that folder;
- a ```console block: each ``$ inceptdsl ...`` line is run in process (conftest.run_cli);
  it must exit 0, or N when the line ends with ``# exit N``; ``> FILE`` writes stdout to
  FILE; the lines shown under a command must each appear in its output (``...`` elides);
  ``$`` lines of other programs are shown, not run;
- a ```python block is executed; the blocks of one page share one namespace;
- ``<!-- skip -->`` before a block leaves it out.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
MARK = re.compile(r"<!--\s*(file:\s*(?P<file>\S+)|(?P<skip>skip))\s*-->\s*$")


@dataclass
class Block:
    lang: str
    text: str
    line: int
    file: str | None = None
    skip: bool = False


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page with the marker comment on the line before each.

    >>> [(b.lang, b.file) for b in blocks(ROOT / "docs" / "tutorial.md")][:2]
    [('', None), ('yaml', 'my_variant.yaml')]
    """
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        found.append(Block(match.group(1), match.group(2), text[:match.start()].count("\n") + 1,
                           file=mark and mark.group("file"), skip=bool(mark and mark["skip"])))
    return found


def run_console(block: Block, where: str) -> None:
    """Run the ``$ inceptdsl`` lines of a console block; check exit codes and shown output."""
    for command, shown in commands(block.text):
        argv, expect, redirect = parse_command(command)
        if argv[0] != "inceptdsl":
            continue
        res = run_cli(*argv[1:])
        assert res.code == expect, f"{where}: '{command}' exited {res.code}\n{res.err}"
        if redirect:
            Path(redirect).write_text(res.out)
        output = [line.rstrip() for line in (res.out + res.err).splitlines()]
        for line in shown:
            assert line.rstrip() in output, f"{where}: '{command}' did not print {line!r}"


def commands(text: str) -> list[tuple[str, list[str]]]:
    """``[(command, lines shown under it)]``; ``...`` and blank lines are not checked."""
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out and line.strip() and line.strip() != "...":
            out[-1][1].append(line)
    return out


def parse_command(command: str) -> tuple[list[str], int, str | None]:
    """``inceptdsl schema > s.json  # exit 0`` -> (argv, expected exit code, redirect)."""
    command, _, comment = command.partition("  # ")
    expect = int(m.group(1)) if (m := re.match(r"exit (\d+)", comment.strip())) else 0
    argv = shlex.split(command)
    redirect = None
    if ">" in argv:
        at = argv.index(">")
        argv, redirect = argv[:at], argv[at + 1]
    return argv, expect, redirect


def run_page(page: Path, workdir: Path) -> None:
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for block in blocks(page):
        where = f"{page.name}:{block.line}"
        if block.skip:
            continue
        if block.file:
            (workdir / block.file).write_text(block.text)
        elif block.lang == "console":
            run_console(block, where)
        elif block.lang == "python":
            exec(compile(block.text, where, "exec"), namespace)  # noqa: S102


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_code_in_page_runs(page, tmp_path, monkeypatch):
    for folder in ("examples", "specs", "tests"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    run_page(page, tmp_path)


def test_index_links_every_page():
    index = (DOCS / "index.md").read_text()
    wanted = {p.name for p in DOCS.glob("*.md")}
    wanted |= {"language.md", "tutorial.md", "cli.md", "backends.md", "gallery.md",
               "specs.md", "inception_resnet_v1.md", "flax.md", "design.md", "benchmarks.md"}
    missing = [name for name in sorted(wanted - {"index.md"}) if f"]({name}" not in index]
    assert not missing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def test_specs_page_is_up_to_date():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import specs_page
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert (DOCS / "specs.md").read_text() == specs_page.render(), (
        "docs/specs.md is stale: python scripts/specs_page.py > docs/specs.md")


def yaml_dsl_pairs(page: Path) -> list[tuple[Block, Block]]:
    """Each ```yaml block directly followed by a plain ``` block: a YAML example and its
    DSL twin."""
    found = blocks(page)
    return [(a, b) for a, b in zip(found, found[1:], strict=False)
            if a.lang == "yaml" and b.lang == ""]


def test_language_reference_yaml_and_dsl_twins_are_the_same_document():
    from inceptdsl.dsl import parse_dsl
    from inceptdsl.yamlsrc import load_yaml

    pairs = yaml_dsl_pairs(DOCS / "language.md")
    assert len(pairs) >= 4
    for yaml_block, dsl_block in pairs:
        where = f"language.md:{yaml_block.line}"
        assert load_yaml(yaml_block.text, "a.yaml") == parse_dsl(dsl_block.text, "a.incept"), (
            where)


def test_the_runner_checks_exit_codes_and_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok = Block("console", "$ inceptdsl summary nope  # exit 2\n"
               "inceptdsl: error: 'nope' is neither a file nor a shipped spec; see "
               "'inceptdsl list'\n$ inceptdsl schema > s.json\n", 1)
    run_console(ok, "ok")
    assert os.path.getsize(tmp_path / "s.json") > 1000
    with pytest.raises(AssertionError, match="exited 2"):
        run_console(Block("console", "$ inceptdsl summary nope\n", 1), "bad")
    with pytest.raises(AssertionError, match="did not print"):
        run_console(Block("console", "$ inceptdsl list\nno such line\n", 1), "bad")
