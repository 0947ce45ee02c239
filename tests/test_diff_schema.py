"""``inceptdsl diff`` (per-block cost deltas) and ``inceptdsl schema`` (JSON Schema)."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from conftest import ROOT, SPECS, run_cli, summary
from helpers import run_without_frameworks

from inceptdsl.diff import diff_reports, diff_table
from inceptdsl.loader import load

VARIANT = """\
format: 1
name: v3_variant
extends: inception_v3
params:
  num_classes: 10
  aux_logits: false
blocks:
  InceptionA(pool_features):
    concat:
      - branch1x1: BasicConv2d(64, 1)
      - - avgpool(3, stride=1, pad=1)
        - branch_pool: BasicConv2d(pool_features, 1)
"""


# ---------------------------------------------------------------------------- diff


@pytest.fixture(scope="module")
def variant_diff(tmp_path_factory):
    path = tmp_path_factory.mktemp("diff") / "v3_variant.yaml"
    path.write_text(VARIANT)
    return str(path), diff_reports(load("inception_v3"), load(path))


def test_diff_rows_match_by_path_and_deltas_add_up(variant_diff):
    _, result = variant_diff
    rows = {r["path"]: r for r in result["blocks"]}
    assert rows["Conv2d_1a_3x3"]["status"] == "same"
    assert rows["Mixed_5b"]["status"] == "changed"
    assert rows["Mixed_5b"]["params"]["delta"] < 0
    assert rows["AuxLogits"]["status"] == "removed" and rows["AuxLogits"]["params"]["b"] is None
    for key in ("params", "macs"):
        assert sum(r[key]["delta"] for r in rows.values()) == result["totals"][key]["delta"]


def test_diff_totals_are_the_summaries(variant_diff):
    path, result = variant_diff
    for side, ref in (("a", "inception_v3"), ("b", path)):
        report = summary(ref)
        for key in ("params", "buffers", "macs", "flops"):
            assert result["totals"][key][side] == report[key]
        assert result[side]["output"] == report["output"]


def test_diff_added_rows_keep_their_place():
    result = diff_reports(load("googlenet_torchvision", {"aux_logits": False}),
                          load("googlenet_torchvision"))
    paths = [(r["path"], r["status"]) for r in result["blocks"]]
    assert ("aux1", "added") in paths and ("aux2", "added") in paths
    assert paths.index(("aux1", "added")) == paths.index(("inception4a", "same")) + 1


def test_diff_cli_table_and_json(variant_diff):
    path, result = variant_diff
    table = run_cli("diff", "inception_v3", path)
    assert table.code == 0, table.err
    assert "~  Mixed_5b" in table.out and "-  AuxLogits" in table.out
    assert table.out.rstrip("\n") == diff_table(result)
    as_json = run_cli("diff", "inception_v3", path, "--json")
    assert json.loads(as_json.out) == json.loads(json.dumps(result))


def test_diff_cli_set_applies_to_both_sides():
    res = run_cli("diff", "googlenet", "googlenet", "--set", "num_classes=10", "--json")
    data = json.loads(res.out)
    assert data["a"]["output"] == data["b"]["output"] == [10]
    assert all(r["status"] == "same" for r in data["blocks"])


def test_diff_cli_errors_have_the_usual_exit_codes(write_spec):
    assert run_cli("diff", "inception_v3", "no_such_spec").code == 2
    bad = write_spec("format: 1\nname: bad\ninput: [3, 8, 8]\nbody:\n  - nosuchop(3)\n")
    res = run_cli("diff", "inception_v3", bad)
    assert res.code == 1 and f"{bad}:5:" in res.err


def test_diff_imports_no_framework():
    run_without_frameworks("diff", "inception_v3", "inception_v4")


# ---------------------------------------------------------------------------- schema


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(run_cli("schema").out)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def yaml_specs() -> list:
    files = sorted(SPECS.glob("*.yaml")) + sorted((ROOT / "tests" / "specs").glob("*.yaml"))
    return files + sorted((ROOT / "examples").glob("**/*.yaml"))


@pytest.mark.parametrize("path", yaml_specs(), ids=lambda p: p.name)
def test_every_shipped_yaml_spec_validates(validator, path):
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert not errors


@pytest.mark.parametrize("name", ["inception_v3", "googlenet"])
def test_dsl_specs_converted_to_yaml_validate(validator, name):
    res = run_cli("fmt", str(SPECS / f"{name}.incept"), "--to", "yaml")
    assert res.code == 0 and validator.is_valid(yaml.safe_load(res.out))


def test_a_variant_needs_only_extends(validator):
    assert validator.is_valid({"extends": "inception_v3", "params": {"num_classes": 10}})
    assert validator.is_valid(yaml.safe_load(VARIANT))


def test_edits_validate_and_bad_edits_do_not(validator):
    base = {"extends": "inception_v3"}
    assert validator.is_valid({**base, "edits": [{"remove": "Mixed_6e"},
                                                  {"set": "Mixed_5b", "with": {"c": 1}}]})
    for bad in ({"remove": "x", "with": "relu"}, {"replace": "x"}, {"delete": "x"},
                {"remove": "x", "set": "y", "with": {}}):
        assert not validator.is_valid({**base, "edits": [bad]}), bad


GOOD = {"name": "x", "input": [3, 32, 32], "body": ["relu"]}


@pytest.mark.parametrize("change", [
    {"colour": "red"},                                      # unknown top-level key
    {"input": "3x32x32"},                                   # wrong input type
    {"input": [3, 32]},                                     # not [C, H, W]
    {"input": [3, 0, 32]},                                  # a zero size
    {"format": 2},                                          # unknown format
    {"name": "my net"},                                     # not an identifier
    {"body": "relu"},                                       # body is a list
    {"body": [5]},                                          # a number is no layer
    {"body": [{"a": "relu", "b": "relu"}]},                 # two names in one node
    {"body": [{"concat": ["relu"], "add": ["relu"]}]},      # two forms in one node
    {"body": [{"concat": ["relu"], "scale": 0.2}]},         # scale only on add
    {"body": [{"repeat": 3}]},                              # repeat without body
    {"body": [{"when": "aux"}]},                            # modifiers but no layer
    {"body": [{"a": "relu", "side": "yes"}]},               # side is a boolean
    {"blocks": {"Bad Name": "relu"}},                       # block signature
], ids=str)
def test_invalid_documents_fail(validator, change):
    assert validator.is_valid(GOOD)
    assert not validator.is_valid({**GOOD, **change})


def test_missing_name_fails_without_extends(validator):
    assert not validator.is_valid({"input": [3, 32, 32], "body": ["relu"]})


def test_every_form_and_modifier_is_accepted(validator):
    body = [
        {"stem": "conv(8, 3)", "when": "big", "from": "x", "inline": False},
        {"aux": "linear(10)", "side": True, "loss_weight": 0.3},
        {"name": "tower", "seq": ["relu", "identity"]},
        {"res": {"add": [[], "relu"], "scale": "0.1 * s", "act": None}},
        {"repeat": "n + 1", "body": "Unit(8)"},
        {"ref": "stem"},
    ]
    assert validator.is_valid({**GOOD, "body": body}), list(
        e.message for e in validator.iter_errors({**GOOD, "body": body}))
