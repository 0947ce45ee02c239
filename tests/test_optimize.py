"""``--optimize inference``: same state_dict and outputs as the plain model, eval only.

Correctness only (no timing): every shipped spec's optimized model loads the plain model's
``state_dict`` with ``strict=True`` and matches its eval outputs; inception_v3 also matches
torchvision's.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import run_cli, shipped_names
from helpers import assert_matches_golden, randomize_bn, relative_diff, ruff_report

import inceptdsl
from inceptdsl.codegen import load_source
from inceptdsl.expand import expand
from inceptdsl.passes.inference import batchnorm_folds
from inceptdsl.state import live_nodes

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
def test_optimized_model_loads_the_plain_state_dict_matches_and_folds_what_the_ir_folds(name):
    spec = reduced(name)
    torch.manual_seed(0)
    plain = inceptdsl.build(spec)
    randomize_params(plain)
    fast = inceptdsl.build(spec, optimize="inference")
    fast.load_state_dict(plain.state_dict(), strict=True)
    assert fast.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(2, *spec.input)
    ran = set()
    for path, module in fast.named_modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.register_forward_hook(lambda *_, path=path: ran.add(path))
    with torch.no_grad():
        expected = plain.eval()(x)
        got = fast.eval()(x)
    assert relative_diff(expected, got) <= 1e-4
    graph = expand(spec).graph
    live = set(live_nodes(graph))  # aux heads do not run in eval mode
    rule = {bn: conv for bn, conv in ir_conv_folds(graph).items() if bn in live}
    folded = folded_in_eval(fast, ran) & live
    assert folded <= rule.keys()  # never a fold the shared rule does not allow
    assert not {bn for bn in rule.keys() - folded if not beyond_class_code(fast, bn, rule[bn])}


def folded_in_eval(model, ran: set[str]) -> set[str]:
    """The BatchNorm modules an eval forward did not run (folded into their conv)."""
    return {path for path, m in model.named_modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and path not in ran}


def ir_conv_folds(graph) -> dict[str, str]:
    """The BNs the shared IR rule folds into a conv, with their conv (the torch optimizer
    folds conv -> BN chains; a BN after a linear layer still runs)."""
    return {bn: src for bn, src in batchnorm_folds(graph).items()
            if graph.node(src)["op"] == "conv2d"}


def beyond_class_code(model, bn: str, conv: str) -> bool:
    """The documented limits of the torch optimizer, which folds conv -> BN chains of one
    class's forward (fixed sequences written out): not a BN inside an ``nn.Sequential``
    built by a loop or a condition, after a block's call (its conv in a child module), or
    of an optional branch (``self.skipbn = None`` when absent)."""
    parent, _, name = bn.rpartition(".")
    owner = model.get_submodule(parent)
    optional = f"self.{name} = None" in inspect.getsource(type(owner).__init__)
    return isinstance(owner, torch.nn.Sequential) or conv.rpartition(".")[0] != parent or \
        optional


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


@pytest.mark.parametrize("name", shipped_names())
def test_optimized_code_is_ruff_clean_and_its_fold_lines_fit(name, tmp_path):
    source = inceptdsl.compile(inceptdsl.load(name), optimize="inference")
    assert not ruff_report(source, tmp_path / f"{name}.py")
    bodies = [part.split("\n\n")[0] for part in source.split("    def fold(self)")[1:]]
    assert all(len(line) <= 100 for body in bodies for line in body.splitlines())


def test_optimized_googlenet_matches_the_golden_file():
    assert_matches_golden(inceptdsl.compile(inceptdsl.load("googlenet_torchvision"),
                                            optimize="inference"),
                          "googlenet_torchvision_optimized.py")


def test_a_conv_bn_pair_inside_a_fixed_sequence_is_folded():
    source = inceptdsl.compile(inceptdsl.load("inception_next_atto"), optimize="inference")
    assert "fold_conv_bn(self.stem[0], self.stem[1])" in source
    assert "x = self.stem(x)" not in source


POOLED = """\
format: 1
name: pooled
input: [3, 16, 16]
blocks:
  Unit(out, k=1):
    - conv: conv(out, k, pad=k // 2, bias=false)
    - bn: batchnorm
    - relu
body:
  - stem: Unit(32, 3)
  - concat:
      - a: Unit(8)
      - - avgpool(3, stride=1, pad=1)
        - pa: Unit(8)
      - - avgpool(3, stride=1, pad=1, count_include_pad=false)
        - pb: conv(8, 1)
        - pbn: batchnorm
        - relu
      - - avgpool(3, stride=1, pad=1)
        - pc: Unit(8, 3)
      - pd:
          - avgpool(3, stride=1, pad=1)
          - Unit(8)
  - avgpool(2)
  - tail: Unit(16)
  - global_avgpool
  - flatten
  - fc: linear(10)
"""


def test_a_1x1_conv_after_a_same_size_average_pool_runs_before_it(tmp_path):
    """pa, pb and pd move before their pools (pa's bias after the pool: padded zeros count
    in its average; pb's pool excludes them; pd is the second item of a sequence); a 3x3
    conv stays, and so does a strided pool (stride omitted: the kernel's)."""
    path = tmp_path / "pooled.yaml"
    path.write_text(POOLED)
    spec = inceptdsl.load(path)
    source = inceptdsl.compile(spec, optimize="inference")
    assert source.count("the 1x1 conv first, then the average pool") == 3
    assert "pa = conv2d_plain(x, self.pa.conv_w, None)" in source
    assert "pd = conv2d_plain(x, self.pd[1].conv_w, None)" in source  # an nn.Sequential
    assert source.count("+= self.pa.conv_b.view(-1, 1, 1)") == 1
    assert "+= self.pb_b" not in source
    torch.manual_seed(0)
    plain = inceptdsl.build(spec)
    randomize_params(plain)
    fast = inceptdsl.build(spec, optimize="inference")
    fast.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert relative_diff(plain.eval()(x), fast.eval()(x)) <= 1e-5
