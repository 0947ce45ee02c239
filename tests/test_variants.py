"""Gates, channel splits, learned scales, stochastic depth: the language's newer variants.

One small spec (tests/specs/gates.yaml, also shown in docs/language.md) uses every new form
and op; both backends must agree with the analysis and with each other.
"""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT, run_cli
from helpers import randomize_bn, relative_diff

import inceptdsl
from inceptdsl.errors import SpecError

GATES = ROOT / "tests" / "specs" / "gates.yaml"


def _write(tmp_path, body: str, blocks: str = "") -> str:
    path = tmp_path / "v.yaml"
    path.write_text(f"name: v\ninput: [8, 8, 8]\n{blocks}body:\n{body}")
    return str(path)


def test_add_and_mul_broadcast_a_channel_gate_against_a_map(tmp_path):
    path = _write(tmp_path, "  - mul:\n      - []\n      - [global_avgpool, sigmoid]\n"
                            "  - add:\n      - []\n      - global_avgpool\n")
    report = inceptdsl.analyze(inceptdsl.load(path))
    assert list(report.output) == [8, 8, 8]


def test_mul_of_unequal_maps_is_a_located_error(tmp_path):
    path = _write(tmp_path, "  - mul:\n      - []\n      - conv(4, 1)\n")
    result = run_cli("check", path)
    assert result.code == 1
    assert "v.yaml:4:5: error: mul needs equal shapes, got 8x8x8, 4x8x8" in result.err


def test_split_sizes_must_add_up_to_the_input_channels(tmp_path):
    body = "  - concat:\n      - identity\n      - conv(2, 1)\n    split: [4, 2]\n"
    result = run_cli("check", _write(tmp_path, body))
    assert result.code == 1
    assert "'split' sizes [4, 2] add up to 6, but the input has 8 channels" in result.err


def test_layer_scale_in_a_named_sequence_is_a_located_error(tmp_path):
    body = "  - s:\n      - conv(8, 1)\n      - layer_scale(0.1)\n"
    result = run_cli("check", _write(tmp_path, body))
    assert result.code == 1
    assert "learned tensor of its module" in result.err


def test_repeat_index_gives_each_copy_its_own_value(tmp_path):
    blocks = "blocks:\n  B(p):\n    - drop: dropout(p)\n"
    body = "  - layers:\n      repeat: 3\n      index: i\n      body: B(0.1 * i)\n"
    code = inceptdsl.compile(inceptdsl.load(_write(tmp_path, body, blocks)), backend="torch")
    assert "B(8, 0.0)" in code and "B(8, 0.1)" in code and "B(8, 0.2)" in code


def test_gates_spec_counts_equal_the_generated_torch_model():
    spec = inceptdsl.load(str(GATES))
    report = inceptdsl.analyze(spec)
    model = inceptdsl.build(spec, backend="torch")
    assert report.params == sum(p.numel() for p in model.parameters())
    assert report.buffers == sum(b.numel() for b in model.buffers())
    keys = model.state_dict().keys()
    assert "blocks.0.gamma" in keys and "blocks.2.mixer.dw_h.weight" in keys


def test_gates_spec_torch_and_flax_agree_in_eval():
    import numpy as np
    import torch

    spec = inceptdsl.load(str(GATES))
    model = inceptdsl.build(spec, backend="torch").eval()
    randomize_bn(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma") or ".norm." in name or name.startswith("norm."):
                p.copy_(torch.rand(p.shape) + 0.5)
    x = torch.randn(2, *spec.input)
    with torch.no_grad():
        expected = model(x)
    flax_model = inceptdsl.build(spec, backend="flax")
    sys.modules[type(flax_model).__module__].load_torch_state_dict(flax_model,
                                                                  model.state_dict())
    flax_model.eval()
    got = flax_model(x.numpy().transpose(0, 2, 3, 1))
    assert relative_diff(expected, np.asarray(got)) <= 1e-5


def test_drop_path_is_identity_in_eval_and_drops_whole_samples_in_training(tmp_path):
    import torch

    path = _write(tmp_path, "  - drop_path(0.5)\n")
    model = inceptdsl.build(inceptdsl.load(path), backend="torch")
    x = torch.ones(64, 8, 8, 8)
    assert torch.equal(model.eval()(x), x)
    torch.manual_seed(0)
    y = model.train()(x)
    per_sample = y.flatten(1)
    kept = per_sample[:, 0] != 0
    assert 0 < kept.sum() < 64  # some samples dropped, some kept
    assert torch.all(per_sample[kept] == 2.0) and torch.all(per_sample[~kept] == 0.0)


@pytest.mark.parametrize("act,reference", [
    ("gelu(approximate='tanh')", "torch.nn.functional.gelu(x, approximate='tanh')"),
    ("hardsigmoid", "torch.nn.functional.hardsigmoid(x)"),
    ("softmax", "torch.softmax(x, 1)"),
    ("swish", "torch.nn.functional.silu(x)"),
])
def test_new_activations_match_torch_in_both_backends(tmp_path, act, reference):
    import numpy as np
    import torch

    spec = inceptdsl.load(_write(tmp_path, f"  - {act}\n"))
    x = torch.randn(2, 8, 8, 8)
    expected = eval(reference, {"torch": torch, "x": x})  # noqa: S307 (test's own text)
    assert relative_diff(expected, inceptdsl.build(spec, backend="torch")(x)) <= 1e-6
    flax_model = inceptdsl.build(spec, backend="flax")
    got = np.asarray(flax_model(x.numpy().transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    assert relative_diff(expected, got) <= 1e-5


def test_slices_and_layernorm_on_maps_agree_in_both_backends(tmp_path):
    import numpy as np
    import torch

    body = ("  - concat:\n      - - slice(0, 4)\n        - hardswish\n"
            "      - - slice(4, 8)\n        - tanh\n  - ln: layernorm\n")
    spec = inceptdsl.load(_write(tmp_path, body))
    model = inceptdsl.build(spec, backend="torch")
    with torch.no_grad():
        model.ln.weight.copy_(torch.rand(8) + 0.5)
        model.ln.bias.copy_(torch.rand(8) - 0.5)
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        expected = model(x)
    flax_model = inceptdsl.build(spec, backend="flax")
    sys.modules[type(flax_model).__module__].load_torch_state_dict(flax_model,
                                                                  model.state_dict())
    got = np.asarray(flax_model(x.numpy().transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    assert relative_diff(expected, got) <= 1e-5


def test_layernorm_on_maps_is_timms_layernorm2d(tmp_path):
    import torch

    spec = inceptdsl.load(_write(tmp_path, "  - norm: layernorm(eps=1e-6)\n"))
    model = inceptdsl.build(spec, backend="torch")
    x = torch.randn(2, 8, 8, 8)
    expected = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (8,), eps=1e-6)
    assert relative_diff(expected.permute(0, 3, 1, 2), model(x)) <= 1e-6


def test_split_concat_compiles_to_torch_split(tmp_path):
    spec = inceptdsl.load(str(GATES))
    code = inceptdsl.compile(spec, backend="torch")
    assert "torch.split(x, self.split_sizes, dim=1)" in code
    with pytest.raises(SpecError):
        inceptdsl.load(_write(tmp_path, "  - concat: [identity]\n    index: i\n"))


SE_V3 = ROOT / "examples" / "se_inception_v3.yaml"


def test_se_inception_v3_counts_equal_the_generated_torch_model():
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    spec = inceptdsl.load(str(SE_V3))
    report = inceptdsl.analyze(spec)
    model = inceptdsl.build(spec, backend="torch").eval()
    assert report.params == sum(p.numel() for p in model.parameters())
    assert report.buffers == sum(b.numel() for b in model.buffers())
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(1, *spec.input))
    assert report.macs == counter.get_total_flops() // 2


def test_se_inception_v3_compiles_ruff_clean_to_both_backends(tmp_path):
    from helpers import ruff_report

    spec = inceptdsl.load(str(SE_V3))
    for backend in ("torch", "flax"):
        source = inceptdsl.compile(spec, backend=backend)
        assert "self.se_5b = SE(256, reduction" in source
        assert ruff_report(source, tmp_path / f"se_{backend}.py") == ""


def test_flax_drop_path_drops_whole_samples_until_eval(tmp_path):
    import numpy as np

    spec = inceptdsl.load(_write(tmp_path, "  - drop_path(0.5)\n"))
    model = inceptdsl.build(spec, backend="flax")
    x = np.ones((64, 8, 8, 8), np.float32)
    per_sample = np.asarray(model(x)).reshape(64, -1)
    kept = per_sample[:, 0] != 0
    assert 0 < kept.sum() < 64
    assert np.all(per_sample[kept] == 2.0) and np.all(per_sample[~kept] == 0.0)
    model.eval()
    assert np.array_equal(np.asarray(model(x)), x)
