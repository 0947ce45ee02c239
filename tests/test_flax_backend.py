"""The Flax backend: numerical parity with the generated PyTorch model, training semantics,
weight porting, code quality."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from conftest import shipped_names, summary  # noqa: E402
from flax import nnx  # noqa: E402
from helpers import (  # noqa: E402
    assert_matches_golden,
    compiled_with_hash_seeds,
    randomize_bn,
    relative_diff,
    ruff_report,
    run_without_frameworks,
    top_level_imports,
)

import inceptdsl  # noqa: E402
from inceptdsl.codegen import load_source  # noqa: E402

TINY = str(Path(__file__).parent / "specs" / "tiny.yaml")
EVERY_OP = str(Path(__file__).parent / "specs" / "every_op.yaml")

# reduced input sizes that every spec still analyzes at (jit compile time dominates anyway)
SIZES = {"googlenet": 224, "bn_inception": 224, "googlenet_torchvision": 112}
SMALL = 139
# the shipped specs with side outputs, at the smallest input their aux heads analyze at
AUX_SIZES = {"googlenet": 224, "googlenet_torchvision": 112, "inception_v3": 299}


def load_spec(name: str, **values):
    spec = inceptdsl.load(name)
    if "aux_logits" in spec.params:
        values.setdefault("aux_logits", False)
    size = SIZES.get(name, SMALL)
    return inceptdsl.load(name, set={"input": [3, size, size], **values})


def flax_module(spec, tag: str):
    return load_source(inceptdsl.compile(spec, backend="flax"), f"flax_{spec.name}_{tag}")


def to_nhwc(x):
    return jax.numpy.asarray(x.permute(0, 2, 3, 1).numpy())


# ---------------------------------------------------------------------- parity


@pytest.mark.parametrize("name", shipped_names())
def test_eval_outputs_equal_the_torch_backend(name):
    spec = load_spec(name)
    torch.manual_seed(0)
    ref = inceptdsl.build(spec, "torch")
    randomize_bn(ref)
    ref.eval()
    module = flax_module(spec, "eval")
    model = module.load_torch_state_dict(module.create_model(), ref.state_dict())
    model.eval()
    x = torch.randn(2, *spec.input)
    with torch.no_grad():
        expected = ref(x).numpy()
    got = nnx.jit(lambda m, v: m(v))(model, to_nhwc(x))
    assert got.shape == expected.shape
    assert relative_diff(expected, got) <= 1e-4


def ported_pair(spec, tag: str):
    """The generated torch model (random weights, non-trivial BN) and its flax port."""
    torch.manual_seed(0)
    ref = inceptdsl.build(spec, "torch")
    randomize_bn(ref)
    module = flax_module(spec, tag)
    model = module.load_torch_state_dict(module.create_model(), ref.state_dict())
    return ref, module, model


def flax_array(tree, path: str):
    for part in path.split("."):
        if isinstance(tree, nnx.State):
            tree = tree[int(part) if int(part) in tree else part] if part.isdigit() else tree[part]
        else:
            tree = tree[int(part)] if isinstance(tree, nnx.List) else getattr(tree, part)
    return np.asarray(tree[...])


def assert_same_bn_statistics(ref, model) -> None:
    for key, value in ref.state_dict().items():
        if key.endswith(("running_mean", "running_var")):
            flax_key = key.replace("running_mean", "mean").replace("running_var", "var")
            assert relative_diff(value.numpy(), flax_array(model, flax_key)) <= 1e-4, key


def flax_param_path(key: str, paths: set[str]) -> str:
    """The nnx path of a torch parameter key (``weight`` is ``kernel`` or ``scale``)."""
    if key in paths:  # a bare parameter (a layer scale)
        return key
    prefix, _, leaf = key.rpartition(".")
    names = ["kernel", "scale"] if leaf == "weight" else [leaf]
    return next(f"{prefix}.{n}" for n in names if f"{prefix}.{n}" in paths)


def test_one_sgd_step_gives_the_same_loss_statistics_and_weights():
    """googlenet_torchvision, aux heads on, one SGD step in training mode (aux weight 0.3),
    in float64 (in float32, BN backward at random init is too ill-conditioned to compare
    updates tightly; the float32 forward, loss and statistics are checked by the aux-head
    test): the same loss, BN running statistics, and every weight after the step."""
    spec = inceptdsl.load("googlenet_torchvision", set={
        "input": [3, 112, 112], "aux_logits": True, "dropout": 0.0, "dropout_aux": 0.0,
        "num_classes": 10})
    ref, module, model = ported_pair(spec, "train")
    ref.double().train()
    before = {k: module._flax_layout(v.detach().numpy().copy())
              for k, v in ref.named_parameters()}
    x, target = torch.randn(4, *spec.input, dtype=torch.float64), torch.tensor([1, 2, 3, 4])
    opt = torch.optim.SGD(ref.parameters(), lr=0.01)
    ref_loss = sys.modules[type(ref).__module__].loss(ref(x), target)
    ref_loss.backward()
    opt.step()

    def step(model, x, target):
        def loss_fn(model):
            out = model(x)
            assert out._fields == ("logits", "aux1", "aux2")
            return module.loss(out, target)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        params = nnx.state(model, nnx.Param)
        nnx.update(model, jax.tree.map(lambda p, g: p - 0.01 * g, params, grads))
        return loss

    with jax.enable_x64(True):
        nnx.update(model, jax.tree.map(
            lambda v: v.astype("float64") if v.dtype == np.float32 else v, nnx.state(model)))
        model.train()
        loss = nnx.jit(step)(model, jax.numpy.asarray(x.permute(0, 2, 3, 1).numpy()),
                             jax.numpy.asarray(target.numpy()))
        assert abs(float(loss) - ref_loss.item()) <= 1e-10 * abs(ref_loss.item())
        assert_same_bn_statistics(ref, model)
        paths = {".".join(map(str, p)) for p, _ in
                 nnx.to_flat_state(nnx.state(model, nnx.Param))}
        moved = 0
        for key, param in ref.named_parameters():
            theirs = module._flax_layout(param.detach().numpy())
            ours = flax_array(model, flax_param_path(key, paths))
            assert relative_diff(theirs, ours) <= 1e-10, key
            update, our_update = theirs - before[key], ours - before[key]
            scale = max(np.abs(update).max(), 1e-12 * np.abs(before[key]).max())
            assert np.abs(update - our_update).max() <= 1e-6 * scale, key
            moved += bool(np.abs(update).max() > 0)
    assert moved > len(before) // 2  # the step changed most weights


@pytest.mark.parametrize("name", sorted(AUX_SIZES))
def test_aux_heads_in_training_mode_equal_torch(name):
    """Every shipped spec with side outputs, training mode, dropout 0: each output (main
    and aux heads), the loss and the BN running statistics after one forward pass."""
    size = AUX_SIZES[name]
    values = {k: 0.0 for k in ("dropout", "dropout_aux") if k in inceptdsl.load(name).params}
    spec = inceptdsl.load(name, set={"input": [3, size, size], **values})
    ref, module, model = ported_pair(spec, f"aux_{name}")
    x, target = torch.randn(2, *spec.input), torch.tensor([1, 2])
    with torch.no_grad():
        expected = ref.train()(x)
    model.train()
    got = nnx.jit(lambda m, v: m(v))(model, to_nhwc(x))
    assert got._fields == expected._fields and len(got._fields) > 1
    for field, ours, theirs in zip(got._fields, got, expected, strict=True):
        assert relative_diff(theirs.numpy(), ours) <= 1e-4, field
    ref_loss = sys.modules[type(ref).__module__].loss(expected, target).item()
    flax_loss = float(module.loss(got, jax.numpy.asarray(target.numpy())))
    assert abs(flax_loss - ref_loss) <= 1e-4 * abs(ref_loss)
    assert_same_bn_statistics(ref, model)


def test_aux_sizes_name_every_shipped_spec_with_side_outputs():
    assert sorted(AUX_SIZES) == [n for n in shipped_names() if summary(n)["side_outputs"]]


def test_every_op_in_eval_and_training_mode():
    """A small spec with every op: eval outputs; training outputs (main and aux), loss and
    BN statistics; the mode switch."""
    spec = inceptdsl.load(EVERY_OP, set={"dropout": 0.0})
    ref, module, model = ported_pair(spec, "every_op")
    forward = nnx.jit(lambda m, v: m(v))
    x = torch.randn(3, *spec.input)
    with torch.no_grad():
        expected = ref.eval()(x)
    model.eval()
    assert relative_diff(expected.numpy(), forward(model, to_nhwc(x))) <= 1e-5
    with torch.no_grad():
        expected = ref.train()(x)
    target = torch.tensor([0, 3, 4])
    model.train()
    got = forward(model, to_nhwc(x))
    assert got._fields == expected._fields == ("logits", "aux")
    assert module.LOSS_WEIGHTS == {"aux": 0.4}
    for ours, theirs in zip(got, expected, strict=True):
        assert relative_diff(theirs.numpy(), ours) <= 1e-5
    ref_loss = sys.modules[type(ref).__module__].loss(expected, target).item()
    assert abs(float(module.loss(got, jax.numpy.asarray(target.numpy()))) - ref_loss) <= 1e-5
    assert_same_bn_statistics(ref, model)


def test_tensorflow_style_pools_and_shift_only_bn_equal_torch():
    spec = inceptdsl.load(str(Path(__file__).parent / "specs" / "tf_pools.yaml"))
    ref, _, model = ported_pair(spec, "tf_pools")
    x = torch.randn(2, *spec.input)
    with torch.no_grad():
        expected = ref.eval()(x)
    model.eval()
    assert relative_diff(expected.numpy(), model(to_nhwc(x))) <= 1e-5
    with torch.no_grad():
        expected = ref.train()(x)
    model.train()
    assert relative_diff(expected.numpy(), model(to_nhwc(x))) <= 1e-5
    assert_same_bn_statistics(ref, model)


def test_gradients_equal_torch_in_float64():
    """Backward is exact too: in float64 every gradient agrees. (In float32, BN backward at
    random init is too ill-conditioned to compare gradients tightly.)"""
    spec = inceptdsl.load(EVERY_OP, set={"dropout": 0.0})
    ref, module, model = ported_pair(spec, "grad64")
    x, target = torch.randn(4, *spec.input, dtype=torch.float64), torch.tensor([1, 2, 3, 4])
    ref.double().train()
    loss = sys.modules[type(ref).__module__].loss(ref(x), target)
    loss.backward()
    with jax.enable_x64(True):
        state = nnx.state(model)
        nnx.update(model, jax.tree.map(
            lambda v: v.astype("float64") if v.dtype == np.float32 else v, state))
        x64 = jax.numpy.asarray(x.permute(0, 2, 3, 1).numpy())

        def loss_fn(model):
            return module.loss(model(x64), jax.numpy.asarray(target.numpy()))

        value, grads = nnx.jit(nnx.value_and_grad(loss_fn))(model)
        assert abs(float(value) - loss.item()) <= 1e-10
        paths = {".".join(map(str, p)) for p, _ in nnx.to_flat_state(grads)}
        for key, param in ref.named_parameters():
            path = flax_param_path(key, paths)
            theirs = module._flax_layout(param.grad.numpy())
            scale = max(np.abs(theirs).max(), 1e-4)  # a bias before BN has no gradient
            assert np.abs(theirs - flax_array(grads, path)).max() <= 1e-8 * scale, key


# ---------------------------------------------------------------------- porting


def test_load_is_strict_and_names_what_is_wrong():
    spec = inceptdsl.load(TINY)
    ref = inceptdsl.build(spec, "torch")
    module = flax_module(spec, "strict")
    state = {k: v.numpy() for k, v in ref.state_dict().items()}
    model = module.create_model()
    missing = dict(state)
    del missing["stem.bn.running_var"]
    with pytest.raises(ValueError, match=r"missing in the state_dict: stem\.bn\.var"):
        module.load_torch_state_dict(model, missing)
    with pytest.raises(ValueError, match=r"unexpected keys: extra\.weight"):
        module.load_torch_state_dict(model, {**state, "extra.weight": np.zeros(3)})
    bad = {**state, "fc.weight": np.zeros((3, 3), np.float32)}
    with pytest.raises(ValueError, match=r"shape mismatches: fc\.weight"):
        module.load_torch_state_dict(model, bad)
    module.load_torch_state_dict(model, state)  # numpy arrays work too
    assert np.array_equal(np.asarray(model.fc.kernel[...]), state["fc.weight"].T)


def test_nnx_paths_mirror_the_torch_state_dict_keys():
    spec = load_spec("xception")
    ref = inceptdsl.build(spec, "torch")
    model = flax_module(spec, "paths").create_model()
    names = {"weight": ("kernel", "scale"), "bias": ("bias",), "running_mean": ("mean",),
             "running_var": ("var",)}
    paths = {".".join(map(str, p)) for p, v in nnx.iter_graph(model)
             if isinstance(v, (nnx.Param, nnx.BatchStat))}
    for key in ref.state_dict():
        prefix, _, leaf = key.rpartition(".")
        if leaf != "num_batches_tracked":
            assert any(f"{prefix}.{n}" in paths for n in names[leaf]), key
    assert "block4.rep.1.conv1.kernel" in paths  # nn.Sequential numbering (ReLU at 0)


def test_build_with_no_arguments_and_random_init_with_rngs():
    model = inceptdsl.build(TINY, backend="flax")
    model.eval()
    assert model(jax.numpy.ones((1, 32, 32, 3))).shape == (1, 10)
    module = flax_module(inceptdsl.load(TINY), "rngs")
    eager = module.create_model(rngs=nnx.Rngs(0), num_classes=3)
    assert eager.fc.kernel[...].shape == (16, 3)


# ---------------------------------------------------------------------- code quality


@pytest.mark.parametrize("name", shipped_names())
def test_generated_code_is_ruff_clean_and_imports_only_jax_flax_numpy(name, tmp_path):
    source = inceptdsl.compile(inceptdsl.load(name), backend="flax")
    assert not ruff_report(source, tmp_path / f"{name}.py")
    assert top_level_imports(source) <= {"jax", "flax", "numpy", "collections", "functools", "math"}


def test_generated_code_is_deterministic_across_hash_seeds(tmp_path):
    first, second = compiled_with_hash_seeds("flax", tmp_path)
    assert first == second


def test_compiling_to_flax_imports_neither_jax_nor_flax():
    run_without_frameworks(
        code="import inceptdsl; inceptdsl.compile('inception_v3', backend='flax')")


def test_generated_code_matches_the_golden_file():
    assert_matches_golden(inceptdsl.compile(inceptdsl.load(TINY), backend="flax"),
                          "tiny_flax.py")


def test_loss_of_a_softmax_network_matches_torch_on_the_same_probabilities():
    spec = inceptdsl.load("inception_v3_keras")
    probs = torch.softmax(torch.randn(4, 7, generator=torch.Generator().manual_seed(3)), 1)
    target = torch.tensor([0, 3, 6, 2])
    got = flax_module(spec, "loss").loss(jax.numpy.asarray(probs.numpy()),
                                         jax.numpy.asarray(target.numpy()))
    expected = torch.nn.functional.nll_loss(torch.log(probs), target)
    assert abs(float(got) - float(expected)) < 1e-5
