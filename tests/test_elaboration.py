"""One elaboration: what ``check`` accepts compiles, knobs keep a network's structure.

Regression tests for the check-ok/compile-refused cases (a block whose instances differ in
a derived value, ``when`` on every form, an ``add`` in a part an instance lacks, a block
parameter kernel with 'same' padding, a parametric repeat whose body changes channels
once, padding chosen by a condition), the width knob, near-miss form keywords and variant
descriptions. None of them imports torch or jax, except where a test says so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from inceptdsl.backends.base import parse_prelude, read_prelude
from inceptdsl.backends.torch.optimize import InferenceGenerator

from inceptdsl import pipeline
from inceptdsl.errors import SpecError, SpecErrors
from inceptdsl.loader import load, shipped
from inceptdsl.spec import GENERATED_NAMES

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # before any test imports jax
SHIPPED = sorted({p.stem for p in shipped().values()})

BLOCKS = """\
format: 1
name: t
input: [3, 32, 32]
blocks:
  Head(n):
    - flatten
    - fc: linear(n)
  B(k):
    - conv(8, k, pad="same")
  R(s):
    - add:
        - conv(in_channels, 3, pad=1)
        - identity
      when: s == 1
    - seq:
        - maxpool(2)
        - relu
      when: s != 1
  D(stride):
    - seq:
        - add:
            - conv(in_channels, 3, stride=stride, pad=1)
            - identity
      when: stride == 1
  L(n):
    - repeat: n
      body: conv(8, 3, pad=1)
  P(s):
    - conv(8, 3, stride=s, pad="same" if s == 1 else 1)
  C(use):
    - concat:
        - conv(4, 1)
        - conv(4, 1)
      when: use
body:
  - a: B(1)
  - b: B(3)
  - r1: R(1)
  - r2: R(2)
  - d1: D(1)
  - d2: D(2)
  - l1: L(2)
  - l2: L(3)
  - c1: C(true)
  - c2: C(false)
  - p1: P(1)
  - p2: P(2)
  - h1: Head(10)
  - h2: Head(10)
    from: p1
"""


def compiled(tmp_path, text: str, name: str = "t.yaml") -> dict[str, str]:
    path = tmp_path / name
    path.write_text(text)
    spec = load(path)
    pipeline.check(spec)
    return {b: pipeline.compile_source(spec, b) for b in ("torch", "flax")}


def test_every_check_ok_case_compiles_to_both_backends(tmp_path):
    code = compiled(tmp_path, BLOCKS)
    for source in code.values():
        compile(source, "<generated>", "exec")
    torch = code["torch"]
    # B(1) and B(3): one class, the kernel a parameter, PyTorch's own 'same'
    assert "class B(" in torch and 'nn.Conv2d(in_channels, 8, kernel_size=k, padding="same")' \
        in torch
    assert 'padding="SAME"' in code["flax"]
    # a condition on an add, on a sequence of functional ops, on a concat
    assert "if self.conv is not None:" in torch and "self.use_seq = bool(s != 1)" in torch
    concat = torch.split("class C(")[1].split("class ")[0]
    assert "if use:" in concat and "if self.conv is not None:" in concat
    # L(n): the first copy changes the channels, the others keep them
    assert "if n > 0:" in torch and "for _ in range(n - 1):" in torch
    # the same head at two input sizes: one class per size, which says so
    assert "class Head(" in torch and "class Head_16x16(" in torch
    assert "as built for a 8x16x16 input" in torch
    # flax: padding chosen by a condition is resolved when the model is built
    assert "_padding('same' if s == 1 else 1)" in code["flax"]
    assert "if isinstance(pad, str):" in code["flax"]


def test_torch_and_flax_compute_the_same_for_every_case(tmp_path):
    """At run time too: the same outputs, flax ported from the torch weights."""
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    import numpy as np
    from helpers import randomize_bn, relative_diff

    from inceptdsl.codegen import build, load_source

    path = tmp_path / "t.yaml"
    path.write_text(BLOCKS)
    spec = load(path)
    ref = build(spec, "torch").eval()
    randomize_bn(ref)
    module = load_source(pipeline.compile_source(spec, "flax"), "flax_elaboration_cases")
    model = module.create_model()
    module.load_torch_state_dict(model, {k: v.numpy() for k, v in ref.state_dict().items()})
    model.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ref(x)
    got = model(jnp.asarray(x.permute(0, 2, 3, 1).numpy()))
    assert relative_diff(expected, np.asarray(got)) < 1e-5


def test_no_message_shows_internal_signature_text(tmp_path):
    text = BLOCKS.replace("  - h2: Head(10)\n    from: p1\n", "  - h2: Head(10)\n")
    code = compiled(tmp_path, text)
    assert " vs " not in code["torch"] and "; out=" not in code["torch"]


@pytest.mark.parametrize("form", ["add", "concat"])
def test_when_on_a_merge_form_compiles(tmp_path, form):
    text = f"""\
format: 1
name: t
input: [3, 8, 8]
blocks:
  X(use):
    - {form}:
        - relu
        - identity
      when: use
body:
  - stem: conv(8, 1)
  - x1: X(true)
  - x2: X(false)
"""
    for source in compiled(tmp_path, text).values():
        compile(source, "<generated>", "exec")


def test_side_output_that_is_not_one_layer_is_refused_by_check(tmp_path):
    text = ("format: 1\nname: t\ninput: [3, 8, 8]\nbody:\n  - conv(8, 1)\n"
            "  - concat:\n      - relu\n      - identity\n    side: true\n")
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="a side output is one named layer"):
        pipeline.check(load(path))


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("width", [0.25, 0.5, 0.75, 1.5])
def test_width_keeps_every_layer_of_the_network(name, width):
    """Same state_dict keys: the same stateful IR nodes, only narrower."""
    def stateful(spec):
        graph = pipeline.analyze(spec).network.graph
        return {n: graph.node(n)["op"] for n in graph.nodes()}

    assert stateful(load(name, {"width": width})) == stateful(load(name))


def test_width_scales_a_block_parameter_once_where_it_is_written(tmp_path):
    text = """\
format: 1
name: t
input: [3, 16, 16]
blocks:
  Res(out):
    - add:
        - conv(out, 3, pad=1)
        - skip: conv(out, 1)
          when: in_channels != out
body:
  - stem: conv(64, 3, pad=1)
  - r1: Res(64)
  - r2: Res(128)
"""
    path = tmp_path / "t.yaml"
    path.write_text(text)
    for width in (0.25, 0.5, 1.5):
        graph = pipeline.analyze(load(path, {"width": width})).network.graph
        assert "r1.skip" not in graph and "r2.skip" in graph
        assert graph.shape("r2.conv")[0] == graph.shape("r2.skip")[0]
    code = pipeline.compile_source(load(path, {"width": 0.5}), "torch")
    assert "self.r2 = Res(32, 64)" in code and "make_divisible" not in code


def test_width_in_params_is_a_located_error(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("format: 1\nname: t\ninput: [3, 8, 8]\nparams:\n  width: 0.5\n"
                    "body:\n  - conv(8, 1)\n")
    with pytest.raises(SpecError) as exc:
        load(path)
    assert str(exc.value).startswith(f"{path}:5:3: error: 'width' is a global knob")


def test_width_set_on_the_command_line_is_built_in_not_a_constructor_parameter():
    spec = load("googlenet", {"width": 0.5})
    network = pipeline.plan(spec).network
    assert "width" not in [p.name for p in network.params]
    assert "width" not in pipeline.compile_source(spec, "torch").split(
        f"class {network.name}(")[1].split("super()")[0]


@pytest.mark.parametrize("key,word", [("concatt", "concat"), ("repeats", "repeat"),
                                      ("when_", "when"), ("sdie", "side")])
def test_a_near_miss_form_keyword_is_located_with_a_hint(tmp_path, key, word):
    path = tmp_path / "t.yaml"
    path.write_text(f"format: 1\nname: t\ninput: [3, 8, 8]\nbody:\n  - {key}:\n"
                    "      - conv(8, 1)\n")
    with pytest.raises((SpecError, SpecErrors)) as exc:
        load(path)
    assert "5:5: error:" in str(exc.value) and f"did you mean '{word}'?" in exc.value.render()


@pytest.mark.parametrize("key", ["se", "fc", "act1", "add_1", "same", "body_2"])
def test_ordinary_layer_names_are_not_mistaken_for_keywords(tmp_path, key):
    path = tmp_path / "t.yaml"
    path.write_text(f"format: 1\nname: t\ninput: [3, 8, 8]\nbody:\n  - {key}: conv(8, 1)\n")
    pipeline.check(load(path))


def test_a_variant_without_a_description_names_its_parent(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text("format: 1\nname: v\nextends: inception_v3\ninput: [3, 224, 224]\n"
                    "params:\n  num_classes: 10\n  aux_logits: false\n")
    spec = load(path)
    assert spec.description == ("Variant of inception_v3: num_classes=10; aux_logits=false; "
                                "input 3x224x224.")
    assert load("inception_v3").description not in pipeline.compile_source(spec, "torch")


def test_the_pipeline_names_its_stages_in_order():
    assert pipeline.STAGES == ("load", "elaborate", "shapes", "cost", "lint", "plan",
                               "render")


def test_every_helper_of_a_generated_file_is_a_reserved_name():
    """A block or layer named like a helper would redefine it (a block ``Pool2dPadded``
    replaced the padded pool's class): every definition the backends copy is reserved."""
    backends = Path(__file__).resolve().parents[1] / "backends"
    defined = set(InferenceGenerator.HELPERS)  # the torch prelude's and the optimizer's
    for source in InferenceGenerator.HELPERS.values():
        defined |= parse_prelude(source).sources.keys()
    for name in ("torch", "flax"):
        defined |= read_prelude(backends / name / "prelude.py").sources.keys()
    assert not defined - GENERATED_NAMES


def test_a_block_named_like_a_helper_gets_a_class_name_of_its_own(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("format: 1\nname: t\ninput: [3, 16, 16]\nblocks:\n  Pool2dPadded(out):\n"
                    "    - conv: conv(out, 3, pad=1)\n"
                    "    - pool: maxpool(3, stride=2, pad='same')\n"
                    "body:\n  - Pool2dPadded(8)\n")
    source = pipeline.compile_source(load(path), "torch")
    assert source.count("class Pool2dPadded(") == 1 and "class Pool2dPadded_1(" in source
