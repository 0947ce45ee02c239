"""The ONNX backend and inceptdsl.deploy: lowered from the IR, equal to the torch model.

Every shipped spec against the generated torch model holding the same (randomized)
state_dict: the plain graph on ONNX Runtime, the optimized one (passes applied) on ONNX
Runtime and OpenVINO. The specs run at 128x128
(as in test_optimize) to keep the suite fast; one test runs inception_v3 at full size.
"""

from __future__ import annotations

from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
ov = pytest.importorskip("openvino")
torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

from conftest import run_cli, shipped_names  # noqa: E402
from helpers import relative_diff, run_without_frameworks  # noqa: E402
from inceptdsl.backends.onnx import export, lower, render  # noqa: E402
from inceptdsl.backends.onnx.lowering import LOWERINGS  # noqa: E402
from test_optimize import randomize_params, reduced  # noqa: E402

import inceptdsl  # noqa: E402
from inceptdsl import deploy  # noqa: E402
from inceptdsl.ops import OP_LIST  # noqa: E402
from inceptdsl.passes.inference import ALL_PASSES, optimize_for_inference  # noqa: E402
from inceptdsl.state import STATE, fit_state, initial_state  # noqa: E402

FP32 = 1e-4
SPECS = Path(__file__).parent / "specs"


def numpy_state(model) -> dict:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def every_pass(spec, state) -> bytes:
    """The ONNX model after every inference pass (sibling fusion included)."""
    graph = inceptdsl.analyze(spec).network.graph
    weights = initial_state(graph) if state is None else fit_state(graph, state)
    graph, weights = optimize_for_inference(graph, weights, ALL_PASSES)
    return lower(graph, weights, spec).SerializeToString()


def torch_reference(spec, batch: int = 2):
    """(state_dict as numpy, input, eval output) of the generated torch model."""
    torch.manual_seed(0)
    model = inceptdsl.build(spec)
    randomize_params(model)
    x = torch.randn(batch, *spec.input)
    with torch.no_grad():
        out = model.eval()(x).numpy()
    return numpy_state(model), x.numpy(), out


# ---------------------------------------------------------------------- completeness


def test_every_op_has_an_onnx_lowering():
    """An op added to ops.py without an ONNX lowering fails here (see docs/design.md)."""
    missing = [op.name for op in OP_LIST if op.name not in LOWERINGS]
    assert not missing, f"ops without an ONNX lowering in backends/onnx/lowering.py: {missing}"


def test_every_stateful_op_has_a_state_layout():
    missing = [op.name for op in OP_LIST if op.stateful and op.name not in STATE]
    assert not missing, f"stateful ops without a state layout in inceptdsl/state.py: {missing}"


# ---------------------------------------------------------------------- parity


@pytest.mark.parametrize("name", shipped_names())
def test_onnxruntime_and_openvino_match_the_torch_model(name):
    spec = reduced(name)
    state, x, expected = torch_reference(spec)
    plain = render(spec, state)
    assert relative_diff(expected, deploy.session(plain, "onnxruntime")(x)) <= FP32
    fast = render(spec, state, optimize="inference")
    assert relative_diff(expected, deploy.session(fast, "openvino")(x)) <= FP32
    fused = every_pass(spec, state)
    assert relative_diff(expected, deploy.session(fused, "onnxruntime")(x)) <= FP32


@pytest.mark.parametrize("name", ["every_op", "asymmetric", "onnx_edges", "gates", "tf_pools"])
def test_test_specs_with_every_lowering_match(name):
    """Even LRN windows, uneven adaptive windows, ceil-mode pools, batch-statistics BN,
    asymmetric and 'same' padding, every activation."""
    spec = inceptdsl.load(str(SPECS / f"{name}.yaml"))
    state, x, expected = torch_reference(spec, batch=3)
    for data in (render(spec, state), render(spec, state, optimize="inference"),
                 every_pass(spec, state)):
        for runtime in deploy.RUNTIMES:
            got = deploy.session(data, runtime)(x)
            assert relative_diff(expected, got) <= FP32, runtime


def test_inception_v3_full_size_matches():
    spec = inceptdsl.load("inception_v3")
    state, x, expected = torch_reference(spec, batch=1)
    data = render(spec, state, optimize="inference")
    assert relative_diff(expected, deploy.session(data, "openvino")(x)) <= FP32


def test_bf16_is_opt_in_and_close_to_fp32():
    spec = inceptdsl.load("googlenet_torchvision")
    state, x, expected = torch_reference(spec, batch=4)
    fp32 = deploy.session(spec, "openvino", weights=state)
    bf16 = deploy.session(spec, "openvino", weights=state, precision="bf16")
    assert fp32.raw.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    assert relative_diff(expected, fp32(x)) <= FP32
    assert relative_diff(expected, bf16(x)) <= 5e-2
    with pytest.raises(inceptdsl.loader.UsageError, match="openvino"):
        deploy.session(spec, "onnxruntime", precision="bf16")


# ---------------------------------------------------------------------- the file


@pytest.fixture(scope="module")
def googlenet():
    spec = inceptdsl.load("googlenet_torchvision")
    return spec, onnx.load_from_string(render(spec))


def test_model_passes_the_checker_with_full_shape_inference(googlenet):
    _, model = googlenet
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    assert inferred.opset_import[0].version >= 17
    dims = inferred.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 1000]


def test_metadata_carries_name_and_description(googlenet):
    spec, model = googlenet
    props = {p.key: p.value for p in model.metadata_props}
    assert props["name"] == spec.name == model.graph.name
    assert props["description"] == spec.description != ""
    assert model.producer_name == "inceptdsl"


def test_nodes_and_initializers_are_named_by_state_dict_paths(googlenet):
    spec, model = googlenet
    plain = inceptdsl.build(spec)
    live = {k for k in plain.state_dict() if not k.startswith("aux")
            and not k.endswith("num_batches_tracked")}
    assert {t.name for t in model.graph.initializer} == live
    names = [n.name for n in model.graph.node]
    assert names[:3] == ["conv1.conv", "conv1.bn", "conv1.relu:0"]
    assert "inception3a.branch1.conv" in names


def test_optimized_graph_folds_every_bn():
    model = export(inceptdsl.load("inception_v3"), optimize="inference")
    ops = [n.op_type for n in model.graph.node]
    assert "BatchNormalization" not in ops and ops.count("Conv") == 94


def test_sibling_fusion_makes_one_conv_and_slices():
    spec = inceptdsl.load("inception_v3")
    model = onnx.load_from_string(every_pass(spec, None))
    ops = [n.op_type for n in model.graph.node]
    fused = [n for n in model.graph.node if n.name == "Mixed_5b.branch1x1.conv:fused"]
    assert fused and "Mixed_5b.branch1x1.conv:fused.weight" in fused[0].input
    assert ops.count("Conv") < 94 and "Slice" in ops
    onnx.checker.check_model(model, full_check=True)


def test_seeded_export_is_deterministic():
    spec = inceptdsl.load("googlenet")
    assert render(spec) == render(spec)


# ---------------------------------------------------------------------- CLI and weights


def test_compile_onnx_runs_without_torch_or_jax(tmp_path):
    out = tmp_path / "g.onnx"
    run_without_frameworks("compile", "googlenet", "--backend", "onnx", "--optimize",
                           "inference", "-o", str(out))
    onnx.checker.check_model(str(out), full_check=True)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_weights_file_sets_the_initializers(tmp_path, suffix):
    spec = inceptdsl.load("googlenet_torchvision", set={"input": [3, 96, 96]})
    state, x, expected = torch_reference(spec)
    weights = tmp_path / f"w{suffix}"
    if suffix == ".npz":
        np.savez(weights, **state)
    else:
        from safetensors.numpy import save_file

        save_file(state, str(weights))
    out = tmp_path / "g.onnx"
    result = run_cli("compile", "googlenet_torchvision", "--set", "input=[3,96,96]",
                     "--backend", "onnx", "--weights", str(weights), "-o", str(out))
    assert result.code == 0, result.err
    assert relative_diff(expected, deploy.session(str(out), "onnxruntime")(x)) <= FP32


def test_weights_that_do_not_fit_are_a_usage_error(tmp_path):
    spec = inceptdsl.load("googlenet_torchvision")
    state, _, _ = torch_reference(spec, batch=1)
    del state["conv1.conv.weight"]
    state["conv2.conv.weight"] = state["conv2.conv.weight"][:1]
    weights = tmp_path / "w.npz"
    np.savez(weights, **state, extra=np.zeros(1))
    out = tmp_path / "g.onnx"
    result = run_cli("compile", "googlenet_torchvision", "--backend", "onnx",
                     "--weights", str(weights), "-o", str(out))
    assert result.code == 2 and not out.exists()
    assert "missing: conv1.conv.weight" in result.err
    assert "unexpected: extra" in result.err
    assert "wrong shape: conv2.conv.weight (1, 64, 1, 1)" in result.err


def test_weights_only_apply_to_onnx(tmp_path):
    result = run_cli("compile", "googlenet", "--backend", "torch", "--weights", "w.npz")
    assert result.code == 2 and "--weights applies to --backend onnx" in result.err
