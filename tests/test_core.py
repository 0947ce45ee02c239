"""The spec language core: figures, overrides, errors at file:line:col, exit codes."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import ROOT, run_cli, shipped_names, summary
from helpers import run_without_frameworks

TINY = (Path(__file__).parent / "specs" / "tiny.yaml").read_text()


# ---------------------------------------------------------------------- paper figures


def test_googlenet_matches_the_paper_params_and_macs():
    assert summary("googlenet", "--set", "aux_logits=false")["params"] == 6_998_552
    full = summary("googlenet")
    assert full["params"] == 13_378_280
    assert full["macs"] == 1_582_671_872
    assert [s["loss_weight"] for s in full["side_outputs"]] == [0.3, 0.3]


def test_summary_json_has_the_contract_keys():
    data = summary("inception_v3")
    for key in ("name", "input", "output", "params", "buffers", "macs", "flops", "blocks"):
        assert key in data
    assert data["input"] == [3, 299, 299] and data["output"] == [1000]
    assert data["flops"] > 2 * data["macs"]
    row = next(b for b in data["blocks"] if b["path"] == "Mixed_5b")
    assert row == {**row, "kind": "InceptionA", "output": [256, 35, 35]}
    assert {"path", "kind", "output", "params", "macs"} <= set(row)


def test_block_rows_add_up_to_the_totals():
    data = summary("inception_v3")
    assert sum(b["params"] for b in data["blocks"]) == data["params"]
    assert sum(b["macs"] for b in data["blocks"]) == data["macs"]


def test_deeper_summary_lists_more_rows():
    assert len(summary("inception_v3", "--depth", "2")["blocks"]) > len(
        summary("inception_v3")["blocks"])


# ---------------------------------------------------------------------- overrides / knobs


def test_set_overrides_classes_and_input():
    data = summary("inception_v3", "--set", "num_classes=10", "--set", "input=[3,224,224]",
                   "--set", "aux_logits=false")
    assert data["output"] == [10] and data["input"] == [3, 224, 224]


def test_width_knob_scales_channels_to_multiples_of_8():
    half = summary("googlenet_torchvision", "--set", "width=0.5", "--set", "aux_logits=false")
    full = summary("googlenet_torchvision", "--set", "aux_logits=false")
    assert half["params"] < full["params"] / 2
    conv1 = next(b for b in half["blocks"] if b["path"] == "conv1")
    assert conv1["output"][0] == 32


def test_extends_inherits_and_overrides(write_spec, tmp_path):
    path = write_spec("format: 1\nname: v3_small\nextends: inception_v3\n"
                      "params:\n  num_classes: 10\n  aux_logits: false\n")
    data = summary(path)
    assert data["name"] == "v3_small" and data["output"] == [10]
    assert data["params"] == 23_834_568 - 2048 * 990 - 990


def _op_counts(ref: str) -> Counter:
    from inceptdsl.expand import expand
    from inceptdsl.loader import load

    net = expand(load(ref))
    return Counter(net.graph.node(n)["op"] for n in net.graph.nodes())


def test_extends_can_replace_a_block(write_spec):
    path = write_spec(
        "format: 1\nname: v3_relu6\nextends: inception_v3\nblocks:\n"
        "  BasicConv2d(out, kernel, stride=1, pad=0):\n"
        "    - conv: conv(out, kernel, stride=stride, pad=pad, bias=false)\n"
        "    - bn: batchnorm(eps=0.001)\n    - relu6\n")
    assert summary(path)["params"] == 27_161_264  # same weights ...
    parent, variant = _op_counts("inception_v3"), _op_counts(path)
    assert parent["relu"] == parent["batchnorm"] > 90 and parent["relu6"] == 0
    assert variant["relu6"] == parent["relu"] and variant["relu"] == 0  # ... new activation


def test_error_inside_a_block_names_the_instance():
    result = run_cli("check", "inception_v3", "--set", "input=[3,224,224]")
    assert result.code == 1
    assert "note: in 'AuxLogits.conv1' (BasicConv2d, input 128x3x3)" in result.err
    assert "note: in 'AuxLogits' (InceptionAux, input 768x12x12)" in result.err


def test_unknown_set_key_is_a_usage_error():
    result = run_cli("summary", "inception_v3", "--set", "num_clases=3")
    assert result.code == 2
    assert "did you mean 'num_classes'" in result.err


# ---------------------------------------------------------------------- error locations


def check_error(write_spec, text: str, where: str, fragment: str) -> str:
    path = write_spec(text)
    result = run_cli("check", path)
    assert result.code == 1, result.out
    first = result.err.splitlines()[0]
    assert first.startswith(f"{path}:{where}: error: "), result.err
    assert fragment in first, result.err
    assert "^" in result.err.splitlines()[2]  # a caret line under the source line
    assert "Traceback" not in result.err
    return result.err


def test_malformed_yaml_is_located(write_spec):
    check_error(write_spec, "format: 1\nname: t\ninput: [3, 32, 32\nbody: []\n", "4:5",
                "invalid YAML")


def test_unknown_key_is_located_with_a_suggestion(write_spec):
    err = check_error(write_spec, TINY.replace("params:", "parms:"), "4:1",
                      "unknown key 'parms'")
    assert "did you mean 'params'" in err


def test_wrong_type_is_located(write_spec):
    check_error(write_spec, TINY.replace("input: [3, 32, 32]", "input: three"), "3:8",
                "'input'")


def test_concat_of_mismatched_spatial_sizes_is_located(write_spec):
    text = TINY.replace("      - b: Unit(8)", "      - b: Unit(8, stride=2)")
    check_error(write_spec, text, "13:5", "concat needs equal spatial sizes, got 8x32x32, "
                "8x16x16")


def test_add_of_mismatched_channels_is_located(write_spec):
    text = ("format: 1\nname: t\ninput: [3, 32, 32]\nbody:\n  - stem: conv(16, 3, pad=1)\n"
            "  - add:\n      - conv(32, 3, pad=1)\n      - identity\n")
    check_error(write_spec, text, "6:5", "add needs equal shapes")


def test_undefined_block_is_located_with_a_suggestion(write_spec):
    err = check_error(write_spec, TINY.replace("stem: Unit(16)", "stem: Unitt(16)"), "12:11",
                      "unknown op or block 'Unitt'")
    assert "did you mean 'Unit'" in err


def test_cyclic_block_reference_is_located(write_spec):
    text = ("format: 1\nname: t\ninput: [3, 32, 32]\nblocks:\n  A:\n    - B\n  B:\n"
            "    - conv(8, 1)\n    - A\nbody:\n  - a: A\n")
    check_error(write_spec, text, "9:7", "block 'A' calls itself (A -> B -> A)")


def test_missing_block_argument_is_located(write_spec):
    err = check_error(write_spec, TINY.replace("stem: Unit(16)", "stem: Unit(stride=2)"),
                      "12:11", "block 'Unit' is missing its argument 'out'")
    assert "note: 'Unit' is defined here" in err


def test_extends_cycle_is_located(tmp_path):
    (tmp_path / "a.yaml").write_text("format: 1\nname: a\nextends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("format: 1\nname: b\nextends: a.yaml\n")
    result = run_cli("check", str(tmp_path / "a.yaml"))
    assert result.code == 1 and "'extends' cycle" in result.err


def test_reference_to_a_later_name_is_an_error(write_spec):
    text = ("format: 1\nname: t\ninput: [3, 32, 32]\nbody:\n  - conv(8, 1)\n"
            "  - ref: later\n  - later: relu\n")
    check_error(write_spec, text, "6:10", "'later' does not name an earlier node")


def test_several_errors_are_all_reported_in_order(write_spec):
    text = TINY.replace("params:", "parms:").replace("name: tiny", "name: tiny\nshape: 3")
    result = run_cli("check", write_spec(text))
    errors = [line for line in result.err.splitlines() if ": error: " in line]
    assert len(errors) == 2
    assert ":3:1: error: unknown key 'shape'" in errors[0]
    assert ":5:1: error: unknown key 'parms'" in errors[1]


def test_expression_errors_point_inside_the_expression(write_spec):
    err = check_error(write_spec, TINY.replace("stem: Unit(16)", "stem: Unit(16 * widht)"),
                      "12:21", "unknown name 'widht'")
    assert "did you mean 'width'" in err


# ---------------------------------------------------------------------- exit codes


def test_missing_file_is_a_usage_error():
    result = run_cli("check", "no/such/spec.yaml")
    assert result.code == 2 and "no such file" in result.err


def test_unknown_option_is_a_usage_error():
    assert run_cli("summary", "inception_v3", "--frobnicate").code == 2


def test_unknown_backend_is_a_usage_error():
    assert run_cli("compile", "inception_v3", "--backend", "tf").code == 2


def test_list_names_every_shipped_spec():
    result = run_cli("list", "--json")
    names = {e["name"] for e in json.loads(result.out)}
    assert set(shipped_names()) <= names


# ---------------------------------------------------------------------- no frameworks


@pytest.mark.parametrize("args", [["check", "inception_v3"], ["summary", "googlenet"],
                                  ["summary", "inception_v3", "--json"], ["list"]])
def test_analysis_commands_run_without_torch_or_jax(args):
    run_without_frameworks(*args)


def test_summary_cli_uses_under_two_cpu_seconds():
    """CPU time, not wall time: immune to a busy machine. A generous bound (about 0.3 s on
    the 2-core development machine); the speed itself is measured in
    benchmarks/bench_analysis.py."""
    cmd = [sys.executable, "-m", "inceptdsl.cli", "summary", "inception_v3"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, capture_output=True, check=True, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 2.0, f"summary used {cpu:.2f} CPU seconds"


def test_every_shipped_spec_checks():
    result = run_cli("check", *shipped_names())
    assert result.code == 0, result.err


def test_shipped_specs_have_a_header_naming_paper_and_reference():
    for name in shipped_names():
        path = next((ROOT / "specs").glob(f"{name}.yaml"))
        head = path.read_text().split("format:")[0]
        assert "Paper" in head and "Reference" in head, name
