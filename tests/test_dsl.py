"""The text DSL front end: same document as YAML, located errors with hints."""

from __future__ import annotations

import pytest
from conftest import run_cli

from inceptdsl.dsl import parse_dsl
from inceptdsl.errors import SpecError
from inceptdsl.yamlsrc import YList, YMap, YStr, load_yaml

HEAD = "name: t\ninput: [3, 32, 32]\n"


def _error(body: str, tmp_path, name: str = "bad.incept"):
    """Run ``check`` on HEAD + body; return (first stderr line, whole stderr)."""
    path = tmp_path / name
    path.write_text(HEAD + body)
    result = run_cli("check", str(path))
    assert result.code == 1, result.err
    return result.err.splitlines()[0].replace(str(path), "F"), result.err


# ---------------------------------------------------------------- same document as YAML


def test_dsl_builds_the_same_document_as_yaml():
    dsl = parse_dsl(HEAD + "params:\n    n: 4\nblock U(c):\n    conv: conv(c, 3) -> relu\n"
                    "body:\n    stem: U(n) {when: true}\n    flatten\n", "a.incept")
    yaml = load_yaml(HEAD + "params:\n  n: 4\nblocks:\n  U(c):\n    - conv: conv(c, 3)\n"
                     "    - relu\nbody:\n  - stem: U(n)\n    when: true\n  - flatten\n", "a.yaml")
    assert dsl == yaml
    assert isinstance(dsl, YMap) and isinstance(dsl["body"], YList)
    assert isinstance(dsl["body"][0]["stem"], YStr)


def test_layer_strings_are_located_at_their_dsl_text():
    doc = parse_dsl(HEAD + "body:\n    stem: conv(8, 3) -> relu\n", "a.incept")
    stem = doc["body"][0]["stem"]
    assert (stem.span.line, stem.span.col, stem.span.end_col) == (4, 11, 21)
    assert (doc["body"][1].span.line, doc["body"][1].span.col) == (4, 25)
    assert doc["body"][0].key_span("stem").col == 5


def test_chain_in_a_branch_is_a_sequence_and_in_a_body_continues_it():
    doc = parse_dsl(HEAD + "body:\n    a -> b\n    concat:\n        c -> d\n        e\n",
                    "a.incept")
    assert doc["body"] == ["a", "b", {"concat": [["c", "d"], "e"]}]


def test_single_item_block_is_that_item_and_seq_forces_a_sequence():
    doc = parse_dsl(HEAD + "block A:\n    relu\nblock B:\n    seq:\n        relu\n"
                    "body:\n    A\n", "a.incept")
    assert doc["blocks"] == {"A": "relu", "B": ["relu"]}


def test_modifier_values_read_like_yaml_scalars():
    doc = parse_dsl(HEAD + "body:\n    x: relu {side: true, loss_weight: 0.4, when: a and b}\n",
                    "a.incept")
    node = doc["body"][0]
    assert node["side"] is True and node["loss_weight"] == 0.4
    assert node["when"] == "a and b" and node.value_span("when").col == 50


def test_repeat_add_ref_and_empty_shortcut_map_to_yaml_forms():
    doc = parse_dsl(HEAD + "body:\n    repeat 2 * n:\n        relu\n    add {scale: 0.1}:\n"
                    "        ref x\n        []\n", "a.incept")
    assert doc["body"][0] == {"repeat": "2 * n", "body": "relu"}
    assert doc["body"][1] == {"add": [{"ref": "x"}, []], "scale": 0.1}


@pytest.mark.parametrize("name", ["inception_v3", "googlenet"])
def test_shipped_dsl_specs_check_ok(name):
    from conftest import SPECS

    result = run_cli("check", str(SPECS / f"{name}.incept"))
    assert result.code == 0, result.err


# ---------------------------------------------------------------- syntax errors


def test_missing_colon_after_body(tmp_path):
    first, err = _error("body\n    relu\n", tmp_path)
    assert first == "F:3:5: error: expected ':', found end of line"
    assert "add ':' at the end of the line" in err


def test_missing_colon_after_block_header(tmp_path):
    first, _ = _error("block Foo(x)\n    relu\nbody:\n    Foo(1)\n", tmp_path)
    assert first == "F:3:13: error: expected ':', found end of line"


def test_missing_colon_after_layer_name(tmp_path):
    first, err = _error("body:\n    stem conv(8, 3)\n", tmp_path)
    assert first == "F:4:9: error: expected ':' after the name 'stem', found 'conv'"
    assert "'stem: layer'" in err


def test_unexpected_indentation(tmp_path):
    first, err = _error("body:\n    conv(8, 3)\n      relu\n", tmp_path)
    assert first.startswith("F:5:7: error: unexpected indentation")
    assert "indent only the lines inside a block" in err


def test_dedent_to_no_enclosing_level(tmp_path):
    first, _ = _error("block Foo:\n    concat:\n        relu\n      relu\nbody:\n    Foo\n",
                      tmp_path)
    assert first.startswith("F:6:7: error: wrong indentation: this line starts at column 7")


def test_missing_indented_block(tmp_path):
    first, _ = _error("body:\nrelu\n", tmp_path)
    assert first == "F:4:1: error: expected an indented block, found 'relu'"


def test_unclosed_parenthesis(tmp_path):
    first, err = _error("body:\n    conv(8, 3\n    relu\n", tmp_path)
    assert first == "F:4:14: error: expected ')', found end of line"
    assert "'(' at column 9 is not closed" in err


def test_extra_closing_parenthesis(tmp_path):
    first, _ = _error("body:\n    conv(8, 3))\n", tmp_path)
    assert first == "F:4:15: error: unbalanced parentheses: found an extra ')'"


def test_unquoted_text_with_spaces(tmp_path):
    first, err = _error("description: a tiny net\nbody:\n    relu\n", tmp_path)
    assert first.startswith("F:3:16: error: expected ")
    assert first.endswith("found 'tiny'")
    assert "quote text that contains spaces" in err


def test_unterminated_string(tmp_path):
    first, _ = _error('description: "a tiny\nbody:\n    relu\n', tmp_path)
    assert first.startswith("F:3:14: error: unterminated string")


def test_modifiers_on_an_unnamed_layer(tmp_path):
    first, err = _error("body:\n    relu {when: x}\n", tmp_path)
    assert first == "F:4:19: error: expected ':', found end of line"
    assert "modifiers belong to a named node" in err


def test_dangling_arrow(tmp_path):
    first, err = _error("body:\n    relu ->\n", tmp_path)
    assert first.startswith("F:4:12: error: expected a layer")
    assert "needs a layer after each arrow" in err


def test_tab_indentation(tmp_path):
    first, _ = _error("body:\n\trelu\n", tmp_path)
    assert first == "F:4:2: error: tab in indentation"


def test_equals_instead_of_colon_in_params(tmp_path):
    first, err = _error("params:\n    n = 3\nbody:\n    relu\n", tmp_path)
    assert first.startswith("F:4:7: error: expected ")
    assert "write 'key: value'" in err


def test_duplicate_header_key(tmp_path):
    first, err = _error("name: u\nbody:\n    relu\n", tmp_path)
    assert first == "F:3:1: error: duplicate key 'name'"
    assert "F:1:1: note: 'name' was first defined here" in err.replace(
        str(tmp_path / "bad.incept"), "F")


def test_unknown_op_is_reported_at_the_dsl_column_with_did_you_mean(tmp_path):
    first, err = _error("body:\n    stem: cnv(8, 3)\n", tmp_path)
    assert first == "F:4:11: error: unknown op or block 'cnv'"
    assert "did you mean 'conv'?" in err


def test_expression_error_is_reported_at_the_dsl_column(tmp_path):
    first, _ = _error("body:\n    conv(8, 3, pad=)\n", tmp_path)
    assert first == "F:4:20: error: expected a value, found ')'"


def test_unknown_top_level_key_is_reported_with_a_suggestion(tmp_path):
    first, err = _error("inptu: [3, 8, 8]\nbody:\n    relu\n", tmp_path)
    assert first == "F:3:1: error: unknown key 'inptu'"
    assert "did you mean 'input'?" in err


def test_error_excerpt_has_a_caret_under_the_span(tmp_path):
    _, err = _error("body:\n    stem: cnv(8, 3)\n", tmp_path)
    assert "      stem: cnv(8, 3)\n            ^^^" in err


@pytest.mark.parametrize("text,where,message", [
    (":", "1:1", "expected end of line or a name, found ':'"),
    ("block", "1:6", "expected a name, found end of line"),
    ("{", "1:1", "expected end of line or a name, found '{'"),
    ("body:\n    (\n", "2:6", "expected ')', found end of line"),
    ("params:\n    a: [1,\n", "2:11", "expected ']', found end of line"),
    ("body:\n    a: b: c\n", "2:9", "expected '->', end of line or '{', found ':'"),
])
def test_malformed_text_is_a_located_spec_error(text, where, message):
    with pytest.raises(SpecError) as caught:
        parse_dsl(text, "x.incept")
    assert str(caught.value).startswith(f"x.incept:{where}: error: {message}")


@pytest.mark.parametrize("text,document,where,message", [
    ("", {}, "1:1", "missing required key 'name'"),
    ("\n\n", {}, "1:1", "missing required key 'name'"),
    ("body:\n    ->\n", {"body": ["->"]}, "1:1", "missing required key 'name'"),
    (HEAD + "body:\n    ->\n", None, "4:6", "expected a value, found '>'"),
])
def test_text_that_parses_is_rejected_by_check_at_a_location(text, document, where, message,
                                                             tmp_path):
    """Texts the grammar accepts but that are no spec: ``check`` reports them located."""
    if document is not None:
        assert parse_dsl(text, "x.incept") == document
    path = tmp_path / "x.incept"
    path.write_text(text)
    result = run_cli("check", str(path))
    assert result.code == 1
    assert result.err.startswith(f"{path}:{where}: error: {message}"), result.err


def test_language_reference_shows_every_op_with_an_example():
    from conftest import ROOT

    from inceptdsl.ops import FORM_OPS, OP_LIST

    text = (ROOT / "docs" / "language.md").read_text()
    for op in OP_LIST:
        if op.name not in FORM_OPS:
            assert f"| `{op.name}` |" in text, op.name


def test_language_reference_variant_example_checks(tmp_path):
    from conftest import ROOT

    text = (ROOT / "docs" / "language.md").read_text()
    section = text.split("## 7. Variants")[1].split("```")[1]
    path = tmp_path / "variant.incept"
    path.write_text(section.lstrip("\n"))
    result = run_cli("check", str(path))
    assert result.code == 0, result.err
