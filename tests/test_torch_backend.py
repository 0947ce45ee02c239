"""The PyTorch backend: parity with torchvision and the other references (eval and
training mode), with the IR interpreter on every op, cost agreement, code quality,
toolchain."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from conftest import run_cli, shipped_names
from helpers import (
    assert_matches_golden,
    compiled_with_hash_seeds,
    interpret,
    interpreted_ops,
    randomize_bn,
    randomized_state,
    reference,
    relative_diff,
    ruff_report,
    top_level_imports,
)

import inceptdsl
from inceptdsl.codegen import load_source
from inceptdsl.expand import expand
from inceptdsl.ops import OP_LIST

TINY = str(Path(__file__).parent / "specs" / "tiny.yaml")
EVERY_OP = str(Path(__file__).parent / "specs" / "every_op.yaml")


TORCHVISION = [
    ("googlenet_torchvision", "googlenet", 224, False),
    ("googlenet_torchvision", "googlenet", 224, True),
    ("inception_v3", "inception_v3", 299, False),
    ("inception_v3", "inception_v3", 299, True),
]


@pytest.mark.parametrize("spec,builder,size,aux", TORCHVISION)
def test_generated_model_is_interchangeable_with_torchvision(spec, builder, size, aux):
    """Eval outputs, and in training mode (dropout 0) every output and the BN running
    statistics after one forward pass."""
    torch.manual_seed(0)
    no_dropout = {"dropout": 0.0, **({"dropout_aux": 0.0} if builder == "googlenet" else {})}
    ref = getattr(torchvision.models, builder)(weights=None, init_weights=False,
                                               aux_logits=aux, **no_dropout)
    randomize_bn(ref)
    model = inceptdsl.build(inceptdsl.load(spec, set={"aux_logits": aux, **no_dropout}))
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert relative_diff(ref.eval()(x), model.eval()(x)) <= 1e-5
        ours, theirs = model.train()(x), ref.train()(x)
    if aux:  # torchvision's googlenet names its heads aux_logits1 and aux_logits2
        renamed = {"aux1": "aux_logits1", "aux2": "aux_logits2"}
        assert sorted(renamed.get(f, f) for f in ours._fields) == sorted(theirs._fields)
        for name in ours._fields:
            expected = getattr(theirs, renamed.get(name, name))
            assert relative_diff(expected, getattr(ours, name)) <= 1e-4, name
    else:
        assert isinstance(ours, torch.Tensor) and isinstance(theirs, torch.Tensor)
        assert relative_diff(theirs, ours) <= 1e-4
    ours_state, theirs_state = model.state_dict(), ref.state_dict()
    for key, value in theirs_state.items():
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert relative_diff(value, ours_state[key]) <= 1e-4, key


@pytest.mark.parametrize("name", shipped_names())
def test_summary_equals_the_generated_model(name):
    from torch.utils.flop_counter import FlopCounterMode

    spec = inceptdsl.load(name)
    report = inceptdsl.analyze(spec)
    model = inceptdsl.build(spec).eval()
    assert sum(p.numel() for p in model.parameters()) == report.params
    assert sum(b.numel() for b in model.buffers()) == report.buffers
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.randn(1, *spec.input))
    assert counter.get_total_flops() // 2 == report.macs
    assert list(out.shape[1:]) == report.output


def test_training_mode_returns_named_side_outputs_and_loss_weights_them():
    model = inceptdsl.build(inceptdsl.load("googlenet")).train()
    module = sys.modules[type(model).__module__]
    x, target = torch.randn(2, 3, 224, 224), torch.tensor([1, 2])
    out = model(x)
    assert out._fields == ("logits", "aux1", "aux2")
    assert module.LOSS_WEIGHTS == {"aux1": 0.3, "aux2": 0.3}
    ce = torch.nn.functional.cross_entropy
    expected = ce(out.logits, target) + 0.3 * ce(out.aux1, target) + 0.3 * ce(out.aux2, target)
    assert torch.allclose(module.loss(out, target), expected)
    model.eval()  # eval: a plain tensor, deterministic, and the loss is its cross-entropy
    with torch.no_grad():
        logits = model(x)
        assert isinstance(logits, torch.Tensor) and torch.equal(model(x), logits)
        assert torch.equal(module.loss(logits, target), ce(logits, target))


def test_export_works_on_inception_v3():
    model = inceptdsl.build(inceptdsl.load("inception_v3")).eval()
    exported = torch.export.export(model, (torch.randn(1, 3, 299, 299),))
    x = torch.randn(1, 3, 299, 299)
    assert torch.allclose(exported.module()(x), model(x), atol=1e-5)


@pytest.mark.parametrize("name", ["googlenet_torchvision", "inception_v3"])
def test_jit_script_works(name):
    model = inceptdsl.build(inceptdsl.load(name)).eval()
    scripted = torch.jit.script(model)
    size = inceptdsl.load(name).input[1]
    x = torch.randn(1, 3, size, size)
    assert torch.allclose(scripted(x).logits, model(x), atol=1e-6)


def test_torch_compile_works_on_a_small_spec():
    model = inceptdsl.build(inceptdsl.load(TINY)).eval()
    compiled = torch.compile(model)
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(compiled(x), model(x), atol=1e-5)


# ---------------------------------------------------------------------- code quality


@pytest.mark.parametrize("name", shipped_names())
def test_generated_code_is_ruff_clean_and_imports_only_torch(name, tmp_path):
    source = inceptdsl.compile(inceptdsl.load(name), backend="torch")
    assert not ruff_report(source, tmp_path / f"{name}.py")
    assert top_level_imports(source) <= {"torch", "collections", "typing", "math"}


def test_generated_code_is_deterministic_across_hash_seeds(tmp_path):
    first, second = compiled_with_hash_seeds("torch", tmp_path)
    assert first == second


def test_build_executes_exactly_the_compiled_source():
    spec = inceptdsl.load(TINY)
    module = load_source(inceptdsl.compile(spec), "golden_tiny_check")
    torch.manual_seed(0)
    a = module.create_model()
    torch.manual_seed(0)
    b = inceptdsl.build(spec)
    assert type(a).__name__ == type(b).__name__
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                  b.state_dict().values(), strict=True))


@pytest.mark.parametrize("name,spec", [("tiny", TINY), ("inception_v3", "inception_v3"),
                                       ("googlenet", "googlenet"),
                                       ("inception_next_atto", "inception_next_atto")])
def test_generated_code_matches_the_golden_file(name, spec):
    assert_matches_golden(inceptdsl.compile(inceptdsl.load(spec), backend="torch"), f"{name}.py")


def test_compile_output_file_is_written_atomically_and_never_over_the_spec(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text(Path(TINY).read_text())
    result = run_cli("compile", str(spec), "--backend", "torch", "-o", str(spec))
    assert result.code == 2 and "refusing to overwrite" in result.err
    assert spec.read_text() == Path(TINY).read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: 1\nname: x\ninput: [3, 8, 8]\nbody:\n  - conv(0, 1)\n")
    target = tmp_path / "out.py"
    assert run_cli("compile", str(bad), "--backend", "torch", "-o", str(target)).code == 1
    assert not target.exists() and list(tmp_path.iterdir()) == sorted(
        [spec, bad], key=lambda p: list(tmp_path.iterdir()).index(p))


def test_compile_to_stdout_prints_the_source():
    result = run_cli("compile", TINY, "--backend", "torch")
    assert result.code == 0 and result.out.startswith('"""')
    compile(result.out, "tiny.py", "exec")


def test_generated_file_runs_standalone(tmp_path):
    path = tmp_path / "tiny_model.py"
    assert run_cli("compile", TINY, "--backend", "torch", "-o", str(path)).code == 0
    code = ("import sys, torch, tiny_model; m = tiny_model.create_model(num_classes=3).eval(); "
            "print(tuple(m(torch.randn(1, 3, 32, 32)).shape), 'inceptdsl' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.stdout.strip() == "(1, 3) False", proc.stderr


LIBRARIES = [
    ("inception_v3", "timm_inception_v3", 299, {"aux_logits": False}),
    ("inception_v4", "timm_inception_v4", 299, {}),
    ("inception_resnet_v2", "timm_inception_resnet_v2", 299, {}),
    ("xception", "timm_legacy_xception", 299, {}),
    ("bn_inception", "pretrainedmodels_bninception", 224, {}),
    ("inception_resnet_v1_facenet", "facenet_inception_resnet_v1", 160, {}),
    ("googlenet", "caffe_googlenet", 224, {"aux_logits": False}),
    ("inception_resnet_v1", "paper_inception_resnet_v1", 299, {}),
]


@pytest.mark.parametrize("spec,builder,size,overrides", LIBRARIES,
                         ids=[entry[0] for entry in LIBRARIES])
def test_generated_model_is_interchangeable_with_its_library(spec, builder, size, overrides):
    ref = reference(builder)
    randomize_bn(ref)
    model = inceptdsl.build(inceptdsl.load(spec, set=overrides))
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert relative_diff(ref.eval()(x), model.eval()(x)) <= 1e-5


def test_every_op_spec_uses_every_op_of_the_language():
    net = expand(inceptdsl.load(EVERY_OP))
    used = {net.graph.node(n)["op"] for n in net.graph.nodes()}
    assert {op.name for op in OP_LIST} <= used
    assert interpreted_ops() == {op.name for op in OP_LIST}


@pytest.mark.parametrize("path", [EVERY_OP, *(str(Path(__file__).parent / "specs" / name)
                                             for name in ("gates.yaml", "tf_pools.yaml"))],
                         ids=lambda p: Path(p).stem)
def test_generated_model_equals_the_ir_interpreter(path):
    """Each lowering of the torch backend, run against torch functionals applied node by
    node to the expanded IR (random weights and BN statistics): every op (every_op.yaml),
    gates and splits, TensorFlow-style pools."""
    spec = inceptdsl.load(path)
    torch.manual_seed(0)
    model = inceptdsl.build(spec).eval()
    model.load_state_dict(randomized_state(model, seed=3))
    x = torch.randn(3, *spec.input, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = interpret(expand(spec), model.state_dict(), x)
        assert relative_diff(expected, model(x)) <= 1e-5


def test_asymmetric_padding_works_everywhere_including_named_sequences():
    from torch.utils.flop_counter import FlopCounterMode

    spec = inceptdsl.load(str(Path(__file__).parent / "specs" / "asymmetric.yaml"))
    report = inceptdsl.analyze(spec)
    model = inceptdsl.build(spec).eval()
    x = torch.randn(1, *spec.input)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(x)
    assert list(out.shape[1:]) == report.output
    assert counter.get_total_flops() // 2 == report.macs
    assert torch.allclose(torch.jit.script(model)(x), out, atol=1e-6)
    # the padding is part of the module, so the numbered container keeps its indices
    assert "layers.2.weight" in model.state_dict()


def test_tensorflow_style_pools_and_shift_only_bn_script_export_and_count():
    from torch.utils.flop_counter import FlopCounterMode

    spec = inceptdsl.load(str(Path(__file__).parent / "specs" / "tf_pools.yaml"))
    report = inceptdsl.analyze(spec)
    model = inceptdsl.build(spec).eval()
    randomize_bn(model)
    x = torch.randn(2, *spec.input)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(x)
    assert list(out.shape[1:]) == report.output
    assert counter.get_total_flops() // 4 == report.macs  # batch of 2
    assert sum(p.numel() for p in model.parameters()) == report.params
    assert sum(b.numel() for b in model.buffers()) == report.buffers
    assert "down1.bn.weight" not in model.state_dict() and "down1.bn.bias" in model.state_dict()
    assert torch.allclose(out.sum(1), torch.ones(2))  # the softmax
    assert torch.allclose(torch.jit.script(model)(x), out, atol=1e-6)
    exported = torch.export.export(model, (x,))
    assert torch.allclose(exported.module()(x), out, atol=1e-6)


@pytest.mark.parametrize("name", ["googlenet_torchvision", "inception_resnet_v2"])
def test_width_knob_scales_the_generated_model_like_the_summary(name):
    spec = inceptdsl.load(name, set={"width": 0.5})
    report = inceptdsl.analyze(spec)
    model = inceptdsl.build(spec).eval()
    assert sum(p.numel() for p in model.parameters()) == report.params
    with torch.no_grad():
        assert list(model(torch.randn(1, *spec.input)).shape[1:]) == report.output


@pytest.mark.parametrize("name", shipped_names())
def test_generated_lines_fit_in_100_columns_in_every_backend(name):
    spec = inceptdsl.load(name)
    for source in (inceptdsl.compile(spec), inceptdsl.compile(spec, backend="flax"),
                   inceptdsl.compile(spec, optimize="inference")):
        assert max(len(line) for line in source.splitlines()) <= 100


def test_loss_of_a_softmax_network_is_the_cross_entropy_of_its_probabilities():
    spec = inceptdsl.load("inception_v3_keras", set={"input": [3, 75, 75], "num_classes": 5})
    module = load_source(inceptdsl.compile(spec), "keras_loss_check")
    model = module.create_model().eval()
    x, target = torch.randn(3, 3, 75, 75), torch.tensor([0, 3, 4])
    with torch.no_grad():
        probs = model(x)
        expected = F.nll_loss(torch.log(probs), target)
        assert torch.allclose(probs.sum(1), torch.ones(3))
        assert torch.allclose(module.loss(probs, target), expected, atol=1e-6)


def test_loss_of_a_logits_network_is_the_plain_cross_entropy():
    module = load_source(inceptdsl.compile(inceptdsl.load(TINY)), "tiny_loss_check")
    logits, target = torch.randn(4, 10), torch.tensor([1, 2, 3, 4])
    assert torch.equal(module.loss(logits, target), F.cross_entropy(logits, target))


PAD_BY_PARAMETER = """\
format: 1
name: padded
input: [3, 16, 16]
blocks:
  C(p, s=1):
    - conv: conv(8, 3, stride=s, pad=p)
    - avgpool(3, stride=1, pad=p)
body:
  - a: C('same', 2)
  - b: C(1)
  - c: C('valid')
"""
PAD_WRITTEN = """\
format: 1
name: padded
input: [3, 16, 16]
body:
  - a:
      - conv: conv(8, 3, stride=2, pad='same')
      - avgpool(3, stride=1, pad='same')
  - b:
      - conv: conv(8, 3, pad=1)
      - avgpool(3, stride=1, pad=1)
  - c:
      - conv: conv(8, 3, pad='valid')
      - avgpool(3, stride=1, pad='valid')
"""


def test_a_padding_given_by_a_block_parameter_builds_as_if_written_in_the_call(tmp_path):
    """'same' for a pool or a strided conv, and 'valid' for a pool, have no PyTorch module
    argument: through a block parameter they are written out per instance."""
    models = []
    for name, text in (("param.yaml", PAD_BY_PARAMETER), ("written.yaml", PAD_WRITTEN)):
        (tmp_path / name).write_text(text)
        spec = inceptdsl.load(tmp_path / name)
        assert list(inceptdsl.analyze(spec).output) == [8, 4, 4]
        models.append(inceptdsl.build(spec).eval())
    by_parameter, written = models
    by_parameter.load_state_dict(written.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert relative_diff(written(x), by_parameter(x)) <= 1e-6


def test_a_repeat_index_named_like_a_block_parameter_does_not_shadow_it(tmp_path):
    """The loop over a parametric repeat count gets its own variable (``i_1``): before,
    ``for i in range(n)`` rebound the block parameter ``i`` for the layers after it."""
    path = tmp_path / "shadow.yaml"
    path.write_text("""\
format: 1
name: shadow
input: [3, 16, 16]
blocks:
  B(n=2, i=4):
    - repeat: n
      index: i
      body: conv(in_channels, 1)
    - conv(i, 1)
body:
  - B()
  - B(n=3, i=5)
""")
    spec = inceptdsl.load(path)
    report = inceptdsl.analyze(spec)
    model = inceptdsl.build(spec).eval()
    assert sum(p.numel() for p in model.parameters()) == report.params
    with torch.no_grad():
        assert list(model(torch.zeros(1, 3, 16, 16)).shape[1:]) == report.output == [5, 16, 16]
