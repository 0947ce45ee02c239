"""Knobs, reserved names, the Python API's errors, schema-vs-check agreement and diff row
order (issue 19): every bad value fails cleanly, before use, with a clear message."""

from __future__ import annotations

import math

import jsonschema
import pytest
import yaml
from conftest import run_cli

import inceptdsl
from inceptdsl.errors import OutputError, SpecError, SpecErrors, UsageError

# ---------------------------------------------------------------------- knobs


@pytest.mark.parametrize(("value", "message"), [
    (".nan", "width=nan: not a finite number"),
    (".inf", "width=inf: not a finite number"),
    ("-.inf", "width=-inf: not a finite number"),
    ("1.0e+9", "width must be more than 0 and at most 1e+06"),
    ("1e9", "width must be more than 0 and at most 1e+06"),
    ("1.0e+300", "number too large"),
    ("-1", "width must be more than 0"),
    ("0", "width must be more than 0"),
    ("true", "expected a value like 1.0"),
])
@pytest.mark.parametrize("command", ["check", "summary"])
def test_a_bad_width_is_refused_before_use(command, value, message):
    result = run_cli(command, "googlenet", "--set", f"width={value}")
    assert result.code == 2, result.err
    assert result.err.startswith("inceptdsl: error: --set width=") and message in result.err
    assert "internal error" not in result.err


def test_width_written_1e9_is_a_number_and_small_exponents_work():
    assert run_cli("check", "googlenet", "--set", "width=5e-1").code == 0
    big = run_cli("check", "googlenet", "--set", "width=1e9")
    assert "expected a value like" not in big.err and "at most 1e+06" in big.err


def test_a_scaled_channel_count_meets_the_per_layer_limit():
    result = run_cli("check", "googlenet", "--set", "width=1e6")
    assert result.code == 1
    assert "out of range (1..1000000)" in result.err and "scaled by width=1e+06" in result.err


def test_a_numeric_parameter_override_must_be_finite():
    for value in (".nan", ".inf", "1e300"):
        result = run_cli("check", "inception_v3", "--set", f"num_classes={value}")
        assert result.code == 2 and "internal error" not in result.err, result.err


@pytest.mark.parametrize("width", ["-1", ".nan", "1e300", "0"])
def test_a_bad_width_written_in_the_spec_is_a_located_error(write_spec, width):
    path = write_spec(f"name: t\ninput: [3, 8, 8]\nparams:\n  width: {width}\nbody:\n"
                      "  - conv(8, 1)\n")
    result = run_cli("check", path)
    assert result.code == 1 and result.err.startswith(f"{path}:4:10: error: "), result.err


def test_yaml_specs_read_exponent_numbers_as_numbers(write_spec):
    path = write_spec("name: t\ninput: [3, 8, 8]\nparams:\n  p: 1e-1\nbody:\n"
                      "  - dropout(p)\n")
    assert inceptdsl.load(path).params["p"].value == 0.1


@pytest.mark.parametrize("top", ["format: '1'\n", "format: true\n", "input: [3, true, 16]\n",
                                 "input: [3, '16', 16]\n"])
def test_top_level_numbers_are_not_read_from_text_or_booleans(write_spec, top):
    text = "name: t\ninput: [3, 16, 16]\nbody:\n  - relu\n"
    key = top.split(":")[0]
    text = "\n".join(line for line in text.splitlines() if not line.startswith(key)) + "\n"
    result = run_cli("check", write_spec(top + text))
    assert result.code == 1 and f"'{key}'" in result.err, result.err


# ---------------------------------------------------------------------- reserved names


@pytest.mark.parametrize("name", ["_modules", "_parameters", "_buffers", "_version",
                                  "_object__state", "_pytree__state", "a__b", "training",
                                  "compile", "_forward_hooks"])
def test_a_layer_name_that_is_a_module_attribute_is_refused(write_spec, name):
    path = write_spec(f"name: t\ninput: [3, 8, 8]\nbody:\n  - {name}: conv(4, 1)\n")
    result = run_cli("check", path)
    assert result.code == 1
    assert result.err.startswith(f"{path}:4:5: error: '{name}' cannot name a layer")


def test_names_with_one_leading_underscore_stay_usable(write_spec):
    """bn_inception's pretrainedmodels keys (``_1x1``, ``_bn``) are names like any other."""
    path = write_spec("name: t\ninput: [3, 8, 8]\nbody:\n  - _bn: batchnorm\n"
                      "  - _1x1: conv(4, 1)\n")
    assert run_cli("check", path).code == 0


def test_a_dsl_layer_name_that_is_a_module_attribute_is_refused(write_spec):
    path = write_spec("name: t\ninput: [3, 8, 8]\nbody:\n    _modules: conv(4, 1)\n",
                      "t.incept")
    result = run_cli("check", path)
    assert result.code == 1 and "'_modules' cannot name a layer" in result.err


# ---------------------------------------------------------------------- python API


def test_the_exception_hierarchy_is_rooted_at_spec_error():
    assert issubclass(SpecErrors, SpecError) and issubclass(UsageError, SpecError)
    assert issubclass(OutputError, UsageError)
    for name in ("SpecError", "SpecErrors", "UsageError", "OutputError"):
        assert name in inceptdsl.__all__ and getattr(inceptdsl, name).__module__ == \
            "inceptdsl.errors"


@pytest.mark.parametrize(("call", "message"), [
    (lambda: inceptdsl.analyze(None), "expected a spec: a path, a shipped name"),
    (lambda: inceptdsl.analyze({"name": "x"}), "found a dict"),
    (lambda: inceptdsl.compile(3), "found a int"),
    (lambda: inceptdsl.load("googlenet", set=[("width", 1)]), "expected a mapping"),
    (lambda: inceptdsl.load("googlenet", set={1: 2}), "parameter names are strings"),
    (lambda: inceptdsl.load("googlenet", set={"width": math.nan}), "not a finite number"),
    (lambda: inceptdsl.load("googlenet", set={"width": -1.0}), "more than 0"),
    (lambda: inceptdsl.load("googlenet", set={"nope": 1}), "has no parameter 'nope'"),
    (lambda: inceptdsl.load("nope"), "neither a file nor a shipped spec"),
    (lambda: inceptdsl.load(None), "expected a path or a shipped spec name"),
    (lambda: inceptdsl.analyze("googlenet", depth=0), "at least 1"),
    (lambda: inceptdsl.render("googlenet", "x.dot", depth=-1), "at least 1"),
    (lambda: inceptdsl.compile("googlenet", backend="tf"), "unknown backend 'tf'"),
])
def test_api_misuse_raises_a_usage_error_with_a_clear_message(call, message):
    with pytest.raises(UsageError) as caught:
        call()
    assert message in str(caught.value)
    assert not str(caught.value).startswith("<spec>")


def test_one_except_clause_catches_every_api_error(tmp_path):
    for call in (lambda: inceptdsl.load("nope"),
                 lambda: inceptdsl.render("googlenet", tmp_path / "no" / "x.dot"),
                 lambda: inceptdsl.analyze(inceptdsl.load("googlenet", set={"input": [3, 8,
                                                                                     8]}))):
        with pytest.raises(inceptdsl.SpecError):
            call()


def test_several_errors_are_one_spec_error_with_the_first_span(write_spec):
    path = write_spec("name: t\ninput: [3, 8, 8]\nfoo: 1\nbar: 2\nbody:\n  - relu\n")
    with pytest.raises(inceptdsl.SpecError) as caught:
        inceptdsl.analyze(path)
    error = caught.value
    assert isinstance(error, SpecErrors) and len(error.errors) == 2
    assert error.span == error.errors[0].span and error.span.line == 3
    assert str(error).splitlines()[1].startswith(f"{path}:4:1: error: unknown key 'bar'")


# ---------------------------------------------------------------------- schema vs check


def _schema_ok(doc: dict) -> bool:
    return jsonschema.Draft202012Validator(inceptdsl.schema.json_schema()).is_valid(doc)


@pytest.mark.parametrize("doc", [
    {"format": "1"},
    {"format": True},
    {"input": [3, True, 16]},
    {"body": [{"a": "conv(4, 1)", "when": None}]},
    {"body": [{"a": "conv(4, 1)", "side": False, "loss_weight": 0.3}]},
    {"body": [{"seq": ["relu"], "side": False, "loss_weight": 0.3}]},
    {"body": [{"repeat": True, "body": "relu"}]},
    {"body": [{"repeat": 2.5, "body": "relu"}]},
    {"body": [{"a": "conv(4, 1)", "when": 0.5}]},
])
def test_schema_and_check_refuse_the_same_documents(write_spec, doc):
    import inceptdsl.schema  # noqa: F401

    full = {"name": "t", "input": [3, 8, 8], "body": ["relu"]} | doc
    path = write_spec(yaml.safe_dump(full, sort_keys=False))
    result = run_cli("check", path)
    assert not _schema_ok(full)
    assert result.code == 1 and "internal error" not in result.err, result.err


@pytest.mark.parametrize("doc", [
    {"body": [{"a": "conv(4, 1)", "side": True, "loss_weight": 0.3}, "relu"]},
    {"body": [{"a": "conv(4, 1)", "loss_weight": 0.3}, "relu"]},
    {"body": [{"a": "conv(4, 1)", "when": True}]},
    {"body": [{"repeat": "2", "body": "relu"}]},
    {"format": 1},
])
def test_schema_and_check_accept_the_same_documents(write_spec, doc):
    import inceptdsl.schema  # noqa: F401

    full = {"name": "t", "input": [3, 8, 8], "body": ["relu"]} | doc
    assert _schema_ok(full)
    assert run_cli("check", write_spec(yaml.safe_dump(full, sort_keys=False))).code == 0


def test_side_false_with_a_loss_weight_is_an_error_not_a_side_output(write_spec):
    path = write_spec("name: t\ninput: [3, 8, 8]\nbody:\n  - a: conv(4, 1)\n    side: false\n"
                      "    loss_weight: 0.3\n  - relu\n")
    result = run_cli("check", path)
    assert result.code == 1 and result.err.startswith(f"{path}:5:11: error: 'side: false'")


# ---------------------------------------------------------------------- diff


def test_diff_prints_removed_rows_where_they_stood(write_spec):
    body = "body:\n  - a: conv(4, 1)\n  - b: conv(4, 1)\n{extra}  - c: conv(4, 1)\n"
    old = write_spec("name: old\ninput: [3, 8, 8]\n" + body.format(
        extra="  - gone: conv(4, 1)\n") + "  - last: conv(4, 1)\n", "old.yaml")
    new = write_spec("name: new\ninput: [3, 8, 8]\n" + body.format(extra="") +
                     "  - added: conv(4, 1)\n", "new.yaml")
    result = run_cli("diff", old, new, "--json")
    import json

    rows = [(r["path"], r["status"]) for r in json.loads(result.out)["blocks"]]
    assert rows == [("a", "same"), ("b", "same"), ("gone", "removed"), ("c", "same"),
                    ("last", "removed"), ("added", "added")]
    table = run_cli("diff", old, new).out
    lines = [line.split()[1] if line.startswith(("-", "+", "~")) else line.split()[0]
             for line in table.splitlines()[4:10]]
    assert lines == ["a", "b", "gone", "c", "last", "added"]
