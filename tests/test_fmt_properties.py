"""fmt never changes meaning (issue 19): a hypothesis property over specs whose strings are
drawn from all of Unicode (control characters, line breaks of every kind, lone surrogates,
`` #``, quotes, backslashes) in every string position, with a trailing comment at every
nesting level; and the round trips DSL -> YAML -> DSL and YAML -> DSL -> YAML are fixed
points for every shipped spec and for this corpus.

For each generated spec, in YAML and in the DSL: ``fmt`` either refuses with a located
error (only where the target has no form for a string: a lone surrogate in YAML, a line
break inside an expression in the DSL) or its output

- reads back as the same spec (every value, every expression, every node),
- keeps every comment, a trailing one still trailing,
- is a fixed point of ``fmt`` in its own format, and converts back to the same text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import shipped_names
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inceptdsl.errors import SpecError
from inceptdsl.fmt import (
    _dsl_comment_col,
    format_file,
    format_text,
    node_plain,
    structure,
)
from inceptdsl.loader import build_spec, load, parse_document

ROOT = Path(__file__).resolve().parent
SETTINGS = {"deadline": None, "derandomize": True, "database": None,
            "suppress_health_check": list(HealthCheck)}
TARGET = {".yaml": "yaml", ".incept": "dsl"}

# ---------------------------------------------------------------------- strings

ODD = ["#", " #", "# ", "'", '"', "''", "\\", "\\n", ":", ": ", "- ", "\t", "\r", "\n",
       "\r\n", "\x85", "\u2028", "\u2029", "\x00", "\b", "\x1b", "\x7f", "\ufeff", "\xa0",
       "é", "😀", "\U0010fffd", "\ue000", "yes", "null", "1e9", "0x1F", "~", "{", "[", "&a",
       "*a", "!t", "%", "@", "`", "|", ">", "?", "-", "---", "..."]
ANY_CHAR = st.characters(exclude_categories=("Cs",))  # all of Unicode but surrogates
SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
TEXT = st.lists(st.sampled_from(ODD) | ANY_CHAR, max_size=6).map("".join)
DSL_ONLY_TEXT = st.lists(st.sampled_from(ODD) | ANY_CHAR | SURROGATE, min_size=1,
                         max_size=6).map("".join)
# a string inside an expression holds no backslash and not both quote characters
EXPR_TEXT = TEXT.map(lambda t: t.replace("\\", "/").replace('"', "'")).map(
    lambda t: t if "'" not in t else t.replace("'", ""))
COMMENT = st.lists(st.sampled_from(["#", " #", "'", '"', "\\", "é", "😀", "\t", ":", "x"])
                   | st.characters(categories=("L", "N", "P", "S", "Zs")), max_size=8).map(
    lambda t: "# " + "".join(t).rstrip(" \t"))


def yaml_quoted(text: str) -> str:
    """A double-quoted YAML scalar (the test's own encoder, independent of fmt's)."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable() and char not in "\x85\u2028\u2029\ufeff":
            out.append(char)
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


# ---------------------------------------------------------------------- documents


class Doc:
    """A YAML spec built line by line; every line may end in a trailing comment."""

    def __init__(self, draw):
        self.draw = draw
        self.lines: list[str] = []
        self.comments: list[str] = []

    def add(self, text: str) -> None:
        comment = self.draw(st.none() | COMMENT)
        if comment is not None and comment.strip("# "):
            comment = f"{comment} c{len(self.comments)}"
            self.comments.append(comment)
            text += "  " + comment
        self.lines.append(text)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def expr_string(draw) -> str:
    return "'" + draw(EXPR_TEXT) + "'"


def node(draw, doc: Doc, pad: str, depth: int, counter: list[int]) -> None:
    """One body item at ``pad`` (the ``- `` included); every line may hold a comment,
    those the DSL has no line for too (a repeat's ``body:``, a named form's key, a ``seq:``
    without modifiers, the items of a ``split:`` list, a chained branch's later parts)."""
    counter[0] += 1
    name = f"n{counter[0]}"
    kinds = ["layer", "named", "call"] + (["concat", "repeat", "seq", "add", "named_form",
                                           "bare_seq", "list", "ref"] if depth else [])
    kind = draw(st.sampled_from(kinds))
    inner = " " * len(pad)
    if kind == "layer":
        doc.add(f"{pad}relu")
    elif kind == "named":
        doc.add(f"{pad}{name}: conv(4, 1)")
        if draw(st.booleans()):
            doc.add(f"{inner}when: {yaml_quoted('flag or ' + expr_string(draw) + ' == x')}")
    elif kind == "call":
        doc.add(f"{pad}{name}: {yaml_quoted('U(4, tag=' + expr_string(draw) + ')')}")
    elif kind in ("concat", "seq", "bare_seq"):
        doc.add(f"{pad}{ {'seq': name, 'concat': 'concat', 'bare_seq': 'seq'}[kind]}:")
        for _ in range(draw(st.integers(1, 2))):
            node(draw, doc, inner + "  - ", depth - 1, counter)
        if kind == "concat" and draw(st.booleans()):
            doc.add(f"{inner}split:")
            for _ in range(2):
                doc.add(f"{inner}  - 2")
    elif kind == "list":  # a nested list: a chain ``a -> b`` in the DSL, or a ``seq:``
        node(draw, doc, pad + "- ", depth - 1, counter)
        for _ in range(draw(st.integers(1, 2))):
            node(draw, doc, inner + "- ", depth - 1, counter)
    elif kind == "ref":
        doc.add(f"{pad}{name}:")
        doc.add(f"{inner}  ref: x")
    elif kind == "named_form":  # ``name: repeat n:`` / ``name: concat:`` in the DSL
        doc.add(f"{pad}{name}:")
        if draw(st.booleans()):
            doc.add(f"{inner}  repeat: 2")
            doc.add(f"{inner}  body:")
        else:
            doc.add(f"{inner}  concat:")
        node(draw, doc, inner + "    - ", depth - 1, counter)
        if draw(st.booleans()):
            doc.add(f"{inner}when: flag")
    elif kind == "add":
        doc.add(f"{pad}add:")
        for _ in range(2):
            doc.add(f"{inner}  - conv(4, 1)")
        doc.add(f"{inner}scale: 0.5")
    else:
        doc.add(f"{pad}repeat: {draw(st.integers(0, 2))}")
        if draw(st.booleans()):
            doc.add(f"{inner}when: flag")
        if draw(st.booleans()):
            doc.add(f"{inner}body: {yaml_quoted('U(4, tag=' + expr_string(draw) + ')')}")
        else:
            doc.add(f"{inner}body:")  # a line the DSL has none for: the comment moves up
            node(draw, doc, inner + "  - ", depth - 1, counter)


@st.composite
def yaml_spec(draw) -> tuple[str, list[str]]:
    doc = Doc(draw)
    if draw(st.booleans()):
        doc.lines.append(draw(COMMENT) + " top")
        doc.comments.append(doc.lines[-1])
    doc.add("name: t")
    for key in ("description", "paper", "reference"):
        if draw(st.booleans()):
            doc.add(f"{key}: {yaml_quoted(draw(TEXT))}")
    doc.add("input: [4, 8, 8]")
    doc.add("params:")
    doc.add("  flag: true")
    doc.add(f"  x: {yaml_quoted(draw(TEXT))}")
    if draw(st.booleans()):  # a list value, one line in the DSL
        doc.add("  sizes:")
        doc.add("    - 1")
        doc.add(f"    - {yaml_quoted(draw(TEXT))}")
    doc.add("blocks:")
    doc.add(f"  {yaml_quoted('U(c, tag=' + expr_string(draw) + ')')}:")
    doc.add("    - conv(c, 1)")
    doc.add("    - relu")
    if draw(st.booleans()):
        doc.add("  W(c): conv(c, 3)")  # a one-line block: two lines in the DSL
    if draw(st.booleans()):
        doc.add("  V(c):")  # a one-item list: a 'seq:' line in the DSL
        doc.add("    - relu")
    doc.add("body:")
    counter = [0]
    for _ in range(draw(st.integers(1, 3))):
        node(draw, doc, "  - ", 2, counter)
    return doc.text(), doc.comments


# ---------------------------------------------------------------------- meaning


def meaning(text: str, path: str):
    """What a spec text means: every header value, parameter, block and node."""
    doc = parse_document(text, path)
    try:
        spec = build_spec(doc, path)
    except SpecError:  # e.g. a lone surrogate, which check refuses: the document's meaning
        return structure(doc)
    blocks = {name: ([(p.name, p.default and node_plain_expr(p.default)) for p in b.params],
                     node_plain(b.body)) for name, b in spec.blocks.items()}
    return (spec.name, spec.description, spec.paper, spec.reference, spec.input,
            spec.param_values(), blocks, node_plain(spec.body))


def node_plain_expr(expr):
    from inceptdsl.expr import source_of

    return source_of(expr)


def check_fmt(text: str, path: str, comments: list[str]) -> None:
    """fmt to both formats: refuse cleanly, or keep meaning and comments, fixed points."""
    source_format = TARGET[Path(path).suffix]
    expected = meaning(text, path)
    outputs = {}
    for to in ("yaml", "dsl"):
        try:
            out = format_text(text, path, to)
        except SpecError as exc:
            assert "cannot convert" in exc.message and exc.span.path == path, exc
            assert to != source_format, f"fmt refused its own format: {exc}"
            continue
        assert "internal error" not in out
        out_path = f"out.{'incept' if to == 'dsl' else 'yaml'}"
        assert meaning(out, out_path) == expected, (to, out)
        for comment in comments:
            assert comment in out, (to, comment, out)
            if text.split(comment)[0].rsplit("\n", 1)[-1].strip():  # a trailing one ...
                line = out.split(comment)[0].rsplit("\n", 1)[-1]
                assert line.strip(), (to, comment, out)  # ... stays trailing
        assert format_text(out, out_path, to) == out, f"fmt --to {to} is not a fixed point"
        outputs[to] = out
    for to, out in outputs.items():  # through the other format and back: the same text
        other = "dsl" if to == "yaml" else "yaml"
        if other in outputs:
            there = format_text(out, f"x.{'incept' if to == 'dsl' else 'yaml'}", other)
            back = format_text(there, f"y.{'incept' if other == 'dsl' else 'yaml'}", to)
            assert back == out, f"{to} -> {other} -> {to} is not a fixed point"


@settings(max_examples=120, **SETTINGS)
@given(yaml_spec())
def test_fmt_keeps_meaning_and_comments_of_any_yaml_spec(case):
    text, comments = case
    check_fmt(text, "spec.yaml", comments)


def comment_lines(text: str, marks: list[bool]) -> tuple[str, list[str]]:
    """``text`` (DSL) with a trailing comment added to the statement lines ``marks`` picks:
    any line, those YAML has no line for too (a ``seq:``, a block's header over a one-line
    body)."""
    lines, added = text.split("\n"), []
    for i, line in enumerate(lines):
        if i < len(marks) and marks[i] and line.strip() and _dsl_comment_col(line) is None:
            added.append(f"# d{i}.")
            lines[i] = f"{line}  {added[-1]}"
    return "\n".join(lines), added


@settings(max_examples=60, **SETTINGS)
@given(yaml_spec(), DSL_ONLY_TEXT, st.lists(st.booleans(), min_size=60, max_size=60))
def test_fmt_keeps_meaning_of_dsl_specs_with_any_string(case, description, marks):
    """The DSL source, with a description holding anything, lone surrogates included, and
    trailing comments on any lines."""
    text, comments = case
    try:
        dsl = format_text(text, "spec.yaml", "dsl")
    except SpecError:
        return  # a line break inside an expression: no DSL form (tested above)
    dsl = re.sub(r"^description: .*$", "", dsl, flags=re.M)
    dsl = dsl.replace("name: t\n", f"name: t\ndescription: {json.dumps(description)}\n", 1)
    dsl, added = comment_lines(dsl, marks)
    check_fmt(dsl, "spec.incept", [c for c in comments if c in dsl] + added)


def test_a_quoted_hash_in_yaml_is_not_a_comment():
    """``'B("it''s # y")'`` used to grow a phantom comment ``# y")'`` on every pass."""
    text = ("name: t\ninput: [3, 8, 8]\nblocks:\n  B(s):\n    - relu\nbody:\n"
            "  - h: 'B(\"it''s # y\")'\n  - g: \"B('a \\\" # b')\"  # real\n")
    check_fmt(text, "s.yaml", ["# real"])
    for to in ("yaml", "dsl"):
        out = format_text(text, "s.yaml", to)
        assert out.count("#") == 3 and "# real" in out, out


@pytest.mark.parametrize("char", ["\r", "\b", "\x85", "\u2028", "\u2029", "\x00", "\ufeff"])
def test_control_characters_that_check_accepts_survive_fmt(char, tmp_path):
    call = yaml_quoted(f"B('x{char}')")
    text = (f"name: t\ndescription: {yaml_quoted('a' + char + 'b')}\ninput: [3, 8, 8]\n"
            f"params:\n  p: {yaml_quoted(char)}\nblocks:\n  B(s):\n    - relu\nbody:\n"
            f"  - {call}\n")
    path = tmp_path / "X.yaml"
    path.write_text(text, encoding="utf-8")
    load(str(path))  # check accepts it
    check_fmt(text, str(path), [])


def test_a_lone_surrogate_is_refused_for_yaml_with_a_location(tmp_path):
    path = tmp_path / "s.incept"
    path.write_text('name: t\ndescription: "\\ud800"\ninput: [3, 8, 8]\n\nbody:\n    relu\n')
    assert format_file(str(path), "dsl") == path.read_text()
    with pytest.raises(SpecError) as caught:
        format_file(str(path), "yaml")
    assert caught.value.span.path == str(path) and caught.value.span.line == 2
    assert "lone surrogate" in caught.value.message


# ---------------------------------------------------------------------- shipped specs


@pytest.mark.parametrize("name", shipped_names())
def test_round_trips_through_the_other_format_are_fixed_points(name, tmp_path):
    """DSL -> YAML -> DSL and YAML -> DSL -> YAML give back the same text."""
    for start, other in (("dsl", "yaml"), ("yaml", "dsl")):
        first = format_file(name, start)
        there = format_text(first, f"a.{'incept' if start == 'dsl' else 'yaml'}", other)
        back = format_text(there, f"b.{'incept' if other == 'dsl' else 'yaml'}", start)
        assert back == first, f"{start} -> {other} -> {start} changed {name}"


@pytest.mark.parametrize("path", sorted((ROOT / "fmt_identity").glob("*.incept")),
                         ids=lambda p: p.name)
def test_round_trips_of_the_identity_corpus_are_fixed_points(path):
    text = path.read_text()
    yaml_text = format_text(text, str(path), "yaml")
    assert format_text(yaml_text, "a.yaml", "dsl") == format_text(text, str(path), "dsl")
    again = format_text(format_text(yaml_text, "a.yaml", "dsl"), "b.incept", "yaml")
    assert again == yaml_text


# ------------------------------------------------- comments on lines the other format lacks


def _fmt_both(text: str, path: str, comments: list[str]) -> tuple[str, str]:
    """Both conversions, after the property's checks (meaning, comments, fixed points)."""
    check_fmt(text, path, comments)
    return format_text(text, path, "yaml"), format_text(text, path, "dsl")


HEAD = "name: t\ninput: [4, 8, 8]\n"


def test_a_comment_on_a_repeats_body_line_stays_with_the_repeat():
    """``body:  # the unit`` under a repeat has no DSL line: it joins the repeat's line in
    both formats (it used to fall into the body as a full-line comment)."""
    text = (HEAD + "body:\n  - repeat: 2  # twice\n    body:  # the unit\n      - relu  # r\n"
            "      - relu\n")
    yaml_out, dsl_out = _fmt_both(text, "s.yaml", ["# twice", "# the unit", "# r"])
    assert "  - repeat: 2  # twice  # the unit\n    body:\n      - relu  # r\n" in yaml_out
    assert "    repeat 2:  # twice  # the unit\n        relu  # r\n" in dsl_out


def test_comments_on_the_key_of_a_named_form_stay_with_the_form():
    """``- r:`` over ``repeat: 2``/``concat:``/``ref:`` is one DSL line, ``r: repeat 2:``;
    in YAML the comments stand on the form's line, the outer modifiers' too."""
    text = (HEAD + "body:\n  - r:  # named\n      repeat: 2  # twice\n      body:  # unit\n"
            "        - relu\n  - c:  # cat\n      concat:  # form\n        - relu\n"
            "        - relu\n    when: flag  # gate\n  - x:  # alias\n      ref: r  # target\n")
    yaml_out, dsl_out = _fmt_both(text, "s.yaml", ["# named", "# unit", "# gate", "# target"])
    assert "  - r:\n      repeat: 2  # named  # twice  # unit\n      body:\n" in yaml_out
    assert "  - c:\n      concat:  # cat  # form  # gate\n" in yaml_out
    assert "  - x:\n      ref: r  # alias  # target\n" in yaml_out
    assert "    r: repeat 2:  # named  # twice  # unit\n" in dsl_out
    assert "    c {when: flag}: concat:  # cat  # form  # gate\n" in dsl_out
    assert "    x: ref r  # alias  # target\n" in dsl_out


def test_a_seq_without_modifiers_is_its_list_and_its_comment_goes_to_the_first_item():
    """``- seq:`` without modifiers is what the DSL reads ``seq:`` as, a list (``- - a``):
    both printers write the list, so both round trips are fixed points; the ``seq:``
    line's comment, which YAML's ``- - a`` has no line for, joins the first item's."""
    text = (HEAD + "body:\n  - concat:\n      - seq:  # branch\n          - relu  # first\n"
            "          - conv(4, 1)\n      - relu\n")
    yaml_out, dsl_out = _fmt_both(text, "s.yaml", ["# branch", "# first"])
    assert "      - - relu  # branch  # first\n        - conv(4, 1)\n" in yaml_out
    assert "        relu -> conv(4, 1)  # branch  # first\n" in dsl_out
    dsl = (HEAD + "\nbody:\n    concat:\n        seq:  # branch\n            conv(4, 1)  # a\n"
           "            relu  # b\n        relu\n")
    yaml_out, dsl_out = _fmt_both(dsl, "s.incept", ["# branch", "# a", "# b"])
    assert "      - - conv(4, 1)  # branch  # a\n        - relu  # b\n" in yaml_out
    assert "        seq:\n            conv(4, 1)  # branch  # a\n            relu  # b\n" \
        in dsl_out


def test_a_branch_whose_later_parts_have_comments_is_not_chained():
    """``a -> b`` is one line: a comment on ``b``'s own YAML line keeps ``seq:`` lines."""
    text = (HEAD + "body:\n  - concat:\n      - - conv(4, 1)  # reduce\n        - relu  # then\n"
            "      - - conv(4, 1)  # both\n        - relu\n")
    _, dsl_out = _fmt_both(text, "s.yaml", ["# reduce", "# then", "# both"])
    assert ("        seq:\n            conv(4, 1)  # reduce\n            relu  # then\n"
            "        conv(4, 1) -> relu  # both\n") in dsl_out


def test_comments_inside_a_value_the_dsl_writes_on_one_line_go_to_its_key():
    """A ``split:`` list, a header or parameter list or mapping: one DSL line."""
    text = ("name: t\naliases:  # other names\n  - u  # first\n  - \"u, v\"\ninput: [4, 8, 8]\n"
            "params:\n  sizes:  # two\n    - 1  # one\n    - 2\n  table:\n    a: 1  # a\nbody:\n"
            "  - concat:  # cat\n      - relu\n      - relu\n    split:  # halves\n"
            "      - 2  # a2\n      - 2\n")
    yaml_out, dsl_out = _fmt_both(text, "s.yaml", ["# first", "# one", "# a", "# a2"])
    assert "aliases:  # other names  # first\n  - u\n  - u, v\n" in yaml_out
    assert "  sizes: [1, 2]  # two  # one\n  table: {a: 1}  # a\n" in yaml_out
    assert "  - concat:  # cat  # halves  # a2\n" in yaml_out
    assert 'aliases: [u, "u, v"]  # other names  # first\n' in dsl_out
    assert "    sizes: [1, 2]  # two  # one\n    table: {a: 1}  # a\n" in dsl_out
    assert "    concat {split: [2, 2]}:  # cat  # halves  # a2\n" in dsl_out


def test_a_block_written_on_one_yaml_line_keeps_its_comments_on_the_layer():
    """``W(c): conv(c, 3)`` is two DSL lines; the comments of both stand on the layer's, and
    a one-item block's ``seq:`` line (none in YAML) gives its comment to the item."""
    dsl = (HEAD + "\nblock W(c):  # wide\n    conv(c, 3)  # three\n\nblock V(c):\n"
           "    seq:  # list\n        relu  # only\n\nbody:\n    W(4)\n")
    yaml_out, dsl_out = _fmt_both(dsl, "s.incept", ["# wide", "# three", "# list", "# only"])
    assert "  W(c): conv(c, 3)  # wide  # three\n" in yaml_out
    assert "  V(c):\n    - relu  # list  # only\n" in yaml_out
    assert "block W(c):\n    conv(c, 3)  # wide  # three\n" in dsl_out
    assert "block V(c):\n    seq:\n        relu  # list  # only\n" in dsl_out


def test_comments_on_an_edits_with_lines_go_to_the_edit():
    text = ("name: v\nextends: inception_v3\nedits:\n  - set: Mixed_5b  # smaller\n"
            "    with:  # values\n      pool_features: 64  # half\n  - replace: fc  # head\n"
            "    with:  # new\n      - linear(10)  # ten\n  - insert_after: Mixed_5b\n"
            "    with: relu  # act\n")
    yaml_out, dsl_out = _fmt_both(text, "v.yaml", ["# values", "# half", "# new", "# act"])
    assert "  - set: Mixed_5b  # smaller  # values  # half\n    with: {pool_features: 64}\n" \
        in yaml_out
    assert "  - replace: fc  # head  # new\n    with:\n      - linear(10)  # ten\n" in yaml_out
    assert "  - insert_after: Mixed_5b  # act\n    with: relu\n" in yaml_out
    assert "    set Mixed_5b {pool_features: 64}  # smaller  # values  # half\n" in dsl_out
    assert "    replace fc:  # head  # new\n        seq:\n            linear(10)  # ten\n" \
        in dsl_out
    assert "    insert after Mixed_5b: relu  # act\n" in dsl_out


def test_a_flow_list_quotes_strings_holding_flow_indicators():
    """``[1, -{]`` does not read back: a plain string in ``[...]`` cannot hold ``[]{},``."""
    text = HEAD + 'params:\n  sizes:\n    - 1\n    - "-{"\n    - "a]"\nbody:\n  - relu\n'
    yaml_out, _ = _fmt_both(text, "s.yaml", [])
    assert "  sizes: [1, '-{', 'a]']\n" in yaml_out


def test_a_comment_after_a_layer_written_over_several_yaml_lines_stays_trailing():
    """YAML folds ``conv(4,`` / ``1)  # c`` into one value: one line in both outputs."""
    text = HEAD + "body:\n  - conv(4,\n      1)  # c\n  - x: conv(4,\n      1)  # d\n"
    yaml_out, dsl_out = _fmt_both(text, "s.yaml", ["# c", "# d"])
    assert "  - conv(4, 1)  # c\n  - x: conv(4, 1)  # d\n" in yaml_out
    assert "    conv(4, 1)  # c\n    x: conv(4, 1)  # d\n" in dsl_out
