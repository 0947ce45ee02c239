"""``--optimize inference``: same state_dict and outputs as the plain model, eval only.

Correctness only (no timing): every shipped spec's optimized model loads the plain model's
``state_dict`` with ``strict=True`` and matches its eval outputs; inception_v3 also matches
torchvision's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from conftest import run_cli, shipped_names
from helpers import randomize_bn, relative_diff

import inceptdsl
from inceptdsl.codegen import load_source

TRAINING_ERROR = "compiled with --optimize inference"


def reduced(name: str):
    """The spec at 128x128 input (aux heads off where they need more), else as shipped."""
    values = inceptdsl.load(name).param_values()
    for extra in ({}, {"aux_logits": False} if "aux_logits" in values else None):
        if extra is not None:
            try:
                spec = inceptdsl.load(name, set={"input": [3, 128, 128], **extra})
                inceptdsl.analyze(spec)
                return spec
            except inceptdsl.SpecError:
                pass
    return inceptdsl.load(name)


def randomize_params(model) -> None:
    """Weights and biases far from their init, so a wrong fold or split shows up."""
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    randomize_bn(model)


@pytest.mark.parametrize("name", shipped_names())
def test_optimized_model_loads_the_plain_state_dict_and_matches(name):
    spec = reduced(name)
    torch.manual_seed(0)
    plain = inceptdsl.build(spec)
    randomize_params(plain)
    fast = inceptdsl.build(spec, optimize="inference")
    fast.load_state_dict(plain.state_dict(), strict=True)
    assert fast.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(2, *spec.input)
    with torch.no_grad():
        expected = plain.eval()(x)
        got = fast.eval()(x)
    assert relative_diff(expected, got) <= 1e-4


def test_inception_v3_matches_torchvision_strictly_loaded():
    torch.manual_seed(0)
    ref = torchvision.models.inception_v3(weights=None, init_weights=False, aux_logits=True)
    randomize_bn(ref)
    model = inceptdsl.build("inception_v3", optimize="inference").eval()
    model.load_state_dict(ref.state_dict(), strict=True)  # refolds: loaded in eval mode
    x = torch.randn(2, 3, 299, 299)
    with torch.inference_mode():
        assert relative_diff(ref.eval()(x), model(x)) <= 1e-4


def test_loading_in_eval_mode_refolds_the_weights():
    spec = inceptdsl.load("googlenet_torchvision")
    fast = inceptdsl.build(spec, optimize="inference").eval()
    plain = inceptdsl.build(spec)
    randomize_params(plain)
    x = torch.randn(1, *spec.input)
    before = fast(x)
    fast.load_state_dict(plain.state_dict(), strict=True)
    with torch.no_grad():
        after, expected = fast(x), plain.eval()(x)
    assert relative_diff(expected, after) <= 1e-4
    assert relative_diff(expected, before) > 1e-2


def test_training_mode_forward_raises_a_clear_error():
    model = inceptdsl.build("googlenet_torchvision", optimize="inference")
    with pytest.raises(RuntimeError, match=TRAINING_ERROR):
        model(torch.randn(1, 3, 224, 224))
    model.eval()
    model.train()
    with pytest.raises(RuntimeError, match="use the plain model for training"):
        model(torch.randn(1, 3, 224, 224))


def test_optimized_model_exports_and_compiles():
    spec = inceptdsl.load(str(Path(__file__).parent / "specs" / "tiny.yaml"))
    model = inceptdsl.build(spec, optimize="inference").eval()
    x = torch.randn(1, 3, 32, 32)
    expected = model(x)
    exported = torch.export.export(model, (x,))
    assert torch.allclose(exported.module()(x), expected, atol=1e-5)
    assert torch.allclose(torch.compile(model)(x), expected, atol=1e-5)


def test_cli_compile_optimize_inference_writes_the_optimized_model(tmp_path):
    tiny = str(Path(__file__).parent / "specs" / "tiny.yaml")
    out = tmp_path / "tiny_fast.py"
    result = run_cli("compile", tiny, "--backend", "torch", "--optimize", "inference",
                     "-o", str(out))
    assert result.code == 0, result.err
    source = out.read_text()
    assert source == inceptdsl.compile(inceptdsl.load(tiny), optimize="inference")
    assert source != inceptdsl.compile(inceptdsl.load(tiny))
    fast = load_source(source, "tiny_fast_cli").create_model().eval()
    plain = inceptdsl.build(tiny)
    randomize_params(plain)
    fast.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert relative_diff(plain.eval()(x), fast(x)) <= 1e-4


def test_cli_optimize_with_the_flax_backend_is_a_usage_error(tmp_path):
    out = tmp_path / "x.py"
    result = run_cli("compile", "googlenet", "--backend", "flax", "--optimize", "inference",
                     "-o", str(out))
    assert result.code == 2 and not out.exists()
    assert result.err.startswith("inceptdsl: error: ") and "Traceback" not in result.err
    assert "flax" in result.err
