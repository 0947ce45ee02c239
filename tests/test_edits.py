"""Edits, and the variants written with them (examples/variants/): each variant equals its
parent's reference changed by module surgery (params, buffers, MACs, a strict state_dict
load and equal eval outputs); each compiles to both backends, and two match in Flax."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

VARIANTS = ROOT / "examples" / "variants"
EXAMPLES = sorted(VARIANTS.glob("*.yaml"))

# measured with aux heads on, batch 1, at each spec's input size (issue 15)
FIGURES = {
    "inception_v3_pool64": (27_175_152, 36_384, 5_730_150_496),
    "inception_v3_no_6e": (25_019_312, 32_470, 5_095_301_728),
    "inception_resnet_v2_half": (43_959_784, 44_838, 9_156_912_736),
}


# ---------------------------------------------------------------------- surgery


def _inception_v3():
    import torchvision

    return torchvision.models.inception_v3(weights=None, init_weights=False, aux_logits=True)


def _pool64():
    from torchvision.models.inception import InceptionA

    model = _inception_v3()
    model.Mixed_5b, model.Mixed_5c = InceptionA(192, 64), InceptionA(288, 64)
    return model


def _no_6e():
    import torch

    model = _inception_v3()
    model.Mixed_6e = torch.nn.Identity()
    return model


def _irv2_half():
    import timm

    model = timm.create_model("inception_resnet_v2", pretrained=False)
    model.repeat, model.repeat_1 = model.repeat[:5], model.repeat_1[:10]
    return model


def _googlenet_no_4e():
    import torch
    import torchvision
    from torchvision.models.googlenet import Inception

    model = torchvision.models.googlenet(weights=None, init_weights=False, aux_logits=True)
    model.inception4e = torch.nn.Identity()
    model.inception5a = Inception(528, 256, 160, 320, 32, 128, 128)  # reads 4d now
    return model


def _se():
    """torchvision's Inception v3 with an SE module after each Mixed_* block: the modules
    are attributes ``se``, ``se_1``, ... of the model, and a forward hook on each block
    feeds the block's output through its gate (a hook's result replaces the output)."""
    import torch

    class SE(torch.nn.Module):
        def __init__(self, channels: int, r: int = 16):
            super().__init__()
            self.fc1 = torch.nn.Conv2d(channels, channels // r, 1)
            self.fc2 = torch.nn.Conv2d(channels // r, channels, 1)

        def forward(self, x):
            s = torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))
            return x * torch.sigmoid(self.fc2(s))

    model = _inception_v3()
    widths = {"5b": 256, "5c": 288, "5d": 288, "6a": 768, "6b": 768, "6c": 768, "6d": 768,
              "6e": 768, "7a": 1280, "7b": 2048, "7c": 2048}
    for i, (block, channels) in enumerate(widths.items()):
        gate = SE(channels)
        setattr(model, f"se_{i}" if i else "se", gate)
        getattr(model, f"Mixed_{block}").register_forward_hook(
            lambda _module, _inputs, out, gate=gate: gate(out))
    return model


SURGERY = {"inception_v3_pool64": _pool64, "inception_v3_no_6e": _no_6e,
           "inception_resnet_v2_half": _irv2_half, "googlenet_no_4e": _googlenet_no_4e,
           "inception_v3_se": _se}


def reference(name: str):
    import torch
    from helpers import randomize_bn

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SURGERY[name]()
    randomize_bn(model)
    return model.eval()


def summary(path: Path) -> dict:
    result = run_cli("summary", str(path), "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


# ---------------------------------------------------------------------- tests


def test_every_example_has_a_reference_and_at_most_12_lines():
    assert {p.stem for p in EXAMPLES} >= set(SURGERY)
    for path in EXAMPLES:
        lines = [ln for ln in path.read_text().splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]
        assert len(lines) <= 12, path.name


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figures_of_the_issue(name):
    got = summary(VARIANTS / f"{name}.yaml")
    assert (got["params"], got["buffers"], got["macs"]) == FIGURES[name]


@pytest.mark.parametrize("name", sorted(SURGERY))
def test_variant_equals_its_reference_after_surgery(name):
    torch = pytest.importorskip("torch")
    from helpers import relative_diff
    from torch.utils.flop_counter import FlopCounterMode

    import inceptdsl

    path = VARIANTS / f"{name}.yaml"
    got, ref = summary(path), reference(name)
    assert got["params"] == sum(p.numel() for p in ref.parameters())
    assert got["buffers"] == sum(b.numel() for b in ref.buffers())
    x = torch.randn(1, *got["input"])
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        expected = ref(x)
    assert got["macs"] == counter.get_total_flops() // 2
    model = inceptdsl.build(inceptdsl.load(path)).eval()
    model.load_state_dict(ref.state_dict(), strict=True)
    with torch.no_grad():
        assert relative_diff(expected, model(x)) <= 1e-5


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_compiles_to_both_backends(path):
    import inceptdsl

    spec = inceptdsl.load(path)
    for backend in ("torch", "flax"):
        compile(inceptdsl.compile(spec, backend=backend), f"{path.stem}_{backend}", "exec")


@pytest.mark.parametrize("name,size", [("googlenet_no_4e", 112), ("inception_v3_no_6e", 139)])
def test_flax_equals_torch_on_two_variants(name, size):
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    nnx = pytest.importorskip("flax.nnx")
    from helpers import randomize_bn, relative_diff

    import inceptdsl
    from inceptdsl.codegen import load_source

    spec = inceptdsl.load(VARIANTS / f"{name}.yaml",
                          set={"aux_logits": False, "input": [3, size, size]})
    torch.manual_seed(0)
    ref = inceptdsl.build(spec, "torch")
    randomize_bn(ref)
    module = load_source(inceptdsl.compile(spec, backend="flax"), f"flax_variant_{name}")
    model = module.load_torch_state_dict(module.create_model(), ref.eval().state_dict())
    model.eval()
    x = torch.randn(2, *spec.input)
    with torch.no_grad():
        expected = ref(x).numpy()
    got = nnx.jit(lambda m, v: m(v))(model, jax.numpy.asarray(x.permute(0, 2, 3, 1).numpy()))
    assert relative_diff(expected, got) <= 1e-4


# ---------------------------------------------------------------------- check, diff, fmt


def test_check_says_what_a_variant_changes(tmp_path):
    whole = tmp_path / "whole.yaml"
    whole.write_text("extends: inception_v3\nname: whole\nbody:\n  - relu\n")
    result = run_cli("check", str(VARIANTS / "inception_v3_no_6e.yaml"), str(whole),
                     "inception_v3", "inception_resnet_v1_facenet")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[1] == "  extends inception_v3: 1 edit"
    assert lines[3] == "  extends inception_v3: replaces the body: 23 items -> 1"
    assert lines[4].startswith("inception_v3: ok (") and lines[5].startswith(
        "inception_resnet_v1_facenet: ok")
    assert lines[6] == "  extends inception_resnet_v1: 2 edits"


def test_diff_marks_removed_and_inserted_items_and_lists_the_edits():
    from inceptdsl.diff import diff_reports
    from inceptdsl.loader import load

    result = diff_reports(load("inception_resnet_v1"), load("inception_resnet_v1_facenet"))
    status = {row["path"]: row["status"] for row in result["blocks"]}
    assert status["logits"] == "removed" and status["block8"] == "added"
    assert status["last_linear"] == status["last_bn"] == "added"
    assert result["edits"] == ["insert_after repeat_3", "replace logits"]
    no_6e = diff_reports(load("inception_v3"), load(VARIANTS / "inception_v3_no_6e.yaml"))
    assert [r["path"] for r in no_6e["blocks"] if r["status"] != "same"] == ["Mixed_6e"]


def test_summary_of_a_variant_takes_set_as_before():
    result = run_cli("summary", str(VARIANTS / "inception_v3_pool64.yaml"), "--json",
                     "--set", "num_classes=10", "--set", "aux_logits=false")
    assert result.code == 0, result.err
    got = json.loads(result.out)
    assert got["output"] == [10]
    mixed_5c = next(b for b in got["blocks"] if b["path"] == "Mixed_5c")
    assert mixed_5c["params"] == 285_152  # reads 288 channels, not 256


def test_edit_inside_one_instance_copies_its_block_only():
    from inceptdsl.edits import Edit, addresses, apply_edits
    from inceptdsl.expr import Const
    from inceptdsl.loader import load

    edited = load("inception_v3")

    edit = Edit("set", "Mixed_5c.branch_pool", edited.body.span, values={
        "out": Const(16)})
    body, blocks = apply_edits(edited.body, edited.blocks, [edit])
    assert "InceptionA_Mixed_5c" in blocks and "InceptionA" in blocks
    calls = {a.path: a.node.callee for a in addresses(body, blocks)
             if a.path.startswith("Mixed_5")}
    assert calls["Mixed_5c"] == "InceptionA_Mixed_5c" and calls["Mixed_5b"] == "InceptionA"
    assert edited.body.items[8].callee == "InceptionA"  # the original is untouched


def test_one_repeat_copy_is_edited_by_unrolling_with_the_same_paths(tmp_path):
    from inceptdsl.analysis import analyze
    from inceptdsl.loader import load

    path = tmp_path / "unroll.yaml"
    path.write_text("extends: inception_resnet_v2\nname: x\nedits:\n  - remove: repeat.9\n"
                    "  - set: repeat_1.*\n    with: {scale: 0.2}\n")
    report = analyze(load(path), depth=1)
    paths = [b["path"] for b in report.blocks]
    assert "repeat.8" in paths and "repeat.9" not in paths and "repeat_1.19" in paths


def test_dsl_and_yaml_variants_are_the_same_spec(tmp_path):
    dsl = tmp_path / "v.incept"
    dsl.write_text("extends: inception_v3\nname: v\n\nedits:\n"
                   "    set Mixed_5b {pool_features: 64}\n    remove Mixed_6e\n")
    yaml_text = run_cli("fmt", str(dsl), "--to", "yaml")
    assert yaml_text.code == 0, yaml_text.err
    assert "  - set: Mixed_5b\n    with: {pool_features: 64}\n" in yaml_text.out
    (tmp_path / "v.yaml").write_text(yaml_text.out)
    a, b = (summary(tmp_path / n) for n in ("v.incept", "v.yaml"))
    assert (a["params"], a["macs"]) == (b["params"], b["macs"]) == (25_033_200, 5_112_236_128)


def test_an_unnamed_top_level_block_call_is_addressed_by_the_name_the_model_gives_it(tmp_path):
    parent = tmp_path / "parent.yaml"
    parent.write_text("name: p\ninput: [3, 8, 8]\nblocks:\n  B(c):\n    - conv(c, 3, pad=1)\n"
                      "    - relu\nbody:\n  - B(8)\n  - conv(4, 1)\n")
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {parent}\nname: c\nedits:\n  - set: b\n    with: {{c: 16}}\n"
                     "  - remove: conv\n")
    result = run_cli("check", str(child))
    assert result.code == 0, result.err
    assert "2 edits" in result.out


def test_one_copy_of_a_repeat_inside_a_numbered_sequence_is_removed(tmp_path):
    """inception_v4's ``features`` numbers the copies of its repeats (features.11 to .17
    are InceptionB): removing one unrolls that repeat in place, and the rest renumber."""
    path = tmp_path / "v4.yaml"
    path.write_text("extends: inception_v4\nname: v\nedits:\n  - remove: features.13\n")
    result = run_cli("check", str(path))
    assert result.code == 0, result.err
    blocks = summary(path)["blocks"]
    kinds = [b["kind"] for b in blocks if b["path"].startswith("features.")]
    assert kinds.count("InceptionB") == 6 and kinds[17] == "ReductionB"
    whole = summary(ROOT / "specs" / "inception_v4.yaml")
    inception_b = next(b["params"] for b in whole["blocks"] if b["kind"] == "InceptionB")
    assert summary(path)["params"] == whole["params"] - inception_b


def test_an_edit_the_parent_cannot_take_is_reported_at_the_edit(tmp_path):
    """One copy of a repeat that is a whole block body cannot be removed alone: the error
    is at the variant's edit, with a note at the parent's repeat."""
    parent = tmp_path / "parent.yaml"
    parent.write_text("name: p\ninput: [3, 8, 8]\nblocks:\n  Stack:\n    repeat: 3\n"
                      "    body: conv(8, 3, pad=1)\nbody:\n  - s: Stack\n")
    path = tmp_path / "child.yaml"
    path.write_text(f"extends: {parent}\nname: c\nedits:\n  - remove: s.layers.1\n")
    result = run_cli("check", str(path))
    assert result.code == 1
    assert result.err.startswith(f"{path}:4:13: error: one copy of a repeat")
    assert f"{parent}:5:5: note: what it would have to copy or unroll" in result.err
    assert result.err.count("error:") == 1
