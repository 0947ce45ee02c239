"""The examples in docs/language.md's tables run, in YAML and in the DSL, and agree.

Every ``| YAML | DSL |`` row whose cells are code (each line in backticks, lines joined by
``<br>``) is placed in a small network (a stem named ``stem``, a few blocks and
parameters the examples refer to); both versions must pass ``check`` with the same
figures. Every op's example in the ops table runs as a layer the same way.
"""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from inceptdsl import pipeline
from inceptdsl.fmt import format_text
from inceptdsl.loader import load

PAGE = (ROOT / "docs" / "language.md").read_text()
CODE_CELL = re.compile(r"^(`[^`]+`(<br>)?)+$")

YAML_HEAD = """\
format: 1
name: example
input: [3, 32, 32]
params:
  num_classes: 10
  use_relu: true
  aux_logits: true
  deep: true
  aux: false
blocks:
  InceptionAux(n):
    - global_avgpool
    - flatten
    - fc: linear(n)
  Block35(scale=1.0):
    - add:
        - conv(in_channels, 1)
        - []
      scale: scale
      act: relu
body:
  - stem: conv(16, 3, pad=1)
"""

DSL_HEAD = format_text(YAML_HEAD, "head.yaml", "dsl")  # the same spec, printed as DSL


def table_rows() -> list[tuple[str, str, str]]:
    """(section, YAML code, DSL code) of the code rows of the ``| YAML | DSL |`` tables."""
    rows, section, in_table = [], "", False
    for line in PAGE.splitlines():
        if line.startswith("## "):
            section = line[3:]
        if line.startswith("| YAML | DSL |"):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if in_table and len(cells) == 2 and all(CODE_CELL.match(c) for c in cells):
            rows.append((section, *(_code(c) for c in cells)))
    return rows


def _code(cell: str) -> str:
    return "\n".join(re.findall(r"`([^`]+)`", cell))


BODY_ROWS = [r for r in table_rows() if r[1].startswith("- ")]


def test_the_tables_have_body_examples():
    assert len(BODY_ROWS) >= 8


@pytest.mark.parametrize("section,yaml_code,dsl_code", BODY_ROWS,
                         ids=[r[1].splitlines()[0] for r in BODY_ROWS])
def test_a_body_example_runs_alike_in_yaml_and_the_dsl(tmp_path, section, yaml_code,
                                                       dsl_code):
    yaml_path, dsl_path = tmp_path / "e.yaml", tmp_path / "e.incept"
    stem = "pre" if yaml_code.startswith("- stem:") else "stem"  # the example's own stem
    yaml_path.write_text(YAML_HEAD.replace("stem:", f"{stem}:") + _indent(yaml_code, "  ")
                         + "\n")
    dsl_path.write_text(DSL_HEAD.replace("stem:", f"{stem}:") + _indent(dsl_code, "    ")
                        + "\n")
    a, b = (pipeline.check(load(p)) for p in (yaml_path, dsl_path))
    assert (a.params, a.buffers, a.macs, a.output) == (b.params, b.buffers, b.macs, b.output)


def _indent(code: str, pad: str) -> str:
    return "\n".join(pad + line for line in code.splitlines())


OPS_SECTION = PAGE.split("## 6. Ops")[1].split("\n## ")[0]
OPS_TABLE = re.findall(r"^\| `(\w+)` \|[^|\n]*\|[^|\n]*\| `([^`]+)` \|", OPS_SECTION, re.M)


@pytest.mark.parametrize("op,example", OPS_TABLE, ids=[o for o, _ in OPS_TABLE])
def test_every_op_example_runs(tmp_path, op, example):
    lines = ["- flatten", f"- {example}"] if op == "linear" else [f"- {example}"]
    if op == "layer_scale":  # a learned tensor of its module: it needs a name
        lines = [f"- gamma: {example}"]
    path = tmp_path / "e.yaml"
    path.write_text(YAML_HEAD + _indent("\n".join(lines), "  ") + "\n")
    pipeline.check(load(path))
