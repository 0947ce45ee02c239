"""Variants written as edits of a parent (examples/variants/): each one equals its parent's
reference changed by module surgery: params, buffers, MACs, a strict state_dict load and
equal eval outputs; each compiles to both backends, and two match in Flax."""

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


SURGERY = {"inception_v3_pool64": _pool64, "inception_v3_no_6e": _no_6e,
           "inception_resnet_v2_half": _irv2_half, "googlenet_no_4e": _googlenet_no_4e}


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
