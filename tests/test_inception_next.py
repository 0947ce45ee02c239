"""InceptionNeXt against timm: the generated models load timm's state_dict (strict) and
compute the same eval outputs, with non-trivial BN statistics and layer scales.

Figures (params, buffers, MACs), state_dict keys and the IR's computation of all four sizes
are checked in test_reference_figures.py; here the generated code: torch outputs for atto
and tiny, flax outputs for atto, a strict load for small and base (their forward passes
would cost the suite tens of seconds and run the same classes as tiny).
"""

from __future__ import annotations

import sys

import pytest
import timm
import torch
from helpers import randomize_bn, relative_diff

import inceptdsl


def _timm_model(name: str):
    """timm's model with random weights, BN statistics and layer scales (nothing trivial)."""
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    randomize_bn(model)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for key, value in model.named_parameters():
            if key.endswith(("gamma", "head.norm.weight")):
                value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
    return model


def _generated(name: str):
    return inceptdsl.build(inceptdsl.load(name), backend="torch").eval()


@pytest.mark.parametrize("name", ["inception_next_atto", "inception_next_tiny"])
def test_torch_model_loads_timms_weights_and_matches_its_outputs(name):
    ref = _timm_model(name)
    model = _generated(name)
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected, got = ref(x), model(x)
    assert relative_diff(expected, got) <= 1e-5


def test_without_layer_scale_there_is_no_gamma_as_in_timm():
    """timm's ls_init_value=0 builds no gamma; so does the spec's ls_init_value=0."""
    torch.manual_seed(0)
    ref = timm.create_model("inception_next_atto", pretrained=False, ls_init_value=0).eval()
    spec = inceptdsl.load("inception_next_atto", set={"ls_init_value": 0.0})
    model = inceptdsl.build(spec, backend="torch").eval()
    model.load_state_dict(ref.state_dict(), strict=True)
    assert inceptdsl.analyze(spec).params == sum(p.numel() for p in ref.parameters())
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert relative_diff(ref(x), model(x)) <= 1e-5


@pytest.mark.parametrize("name", ["inception_next_small", "inception_next_base"])
def test_larger_torch_models_load_timms_state_dict_strictly(name):
    _generated(name).load_state_dict(_timm_model(name).state_dict(), strict=True)


def test_flax_model_matches_timm_in_eval():
    import numpy as np

    ref = _timm_model("inception_next_atto")
    model = inceptdsl.build(inceptdsl.load("inception_next_atto"), backend="flax")
    sys.modules[type(model).__module__].load_torch_state_dict(model, ref.state_dict())
    model.eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = ref(x)
    got = model(x.numpy().transpose(0, 2, 3, 1))
    assert relative_diff(expected, np.asarray(got)) <= 1e-4


def test_drop_path_schedule_is_timms_linear_one():
    """drop_path_rate grows linearly over all blocks, as timm's calculate_drop_path_rates."""
    spec = inceptdsl.load("inception_next_atto", set={"drop_path_rate": 0.1})
    model = inceptdsl.build(spec, backend="torch")
    ref = timm.create_model("inception_next_atto", pretrained=False, drop_path_rate=0.1)
    ours = [m.p for m in model.modules() if type(m).__name__ == "DropPath"]
    theirs = [getattr(m, "drop_prob", 0.0) for s in ref.stages for b in s.blocks
              for m in [b.drop_path]]
    assert ours == pytest.approx(theirs)
