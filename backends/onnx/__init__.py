"""The ONNX backend: a ``.onnx`` model lowered from the IR, without importing torch.

``export(spec)`` returns an ``onnx.ModelProto``: opset 17, input ``input`` (``batch x C x H
x W``, batch symbolic), output ``output``, nodes and initializers named by state_dict paths,
the spec's name and description in the metadata. Weights come from ``state`` (a state_dict
of numpy arrays, keys as the torch model's) or the seeded numpy initialisation of
:mod:`inceptdsl.state`. ``optimize="inference"`` runs the IR passes of
:mod:`inceptdsl.passes.inference` first (``PASSES``: BN folding).

>>> from inceptdsl.loader import load
>>> model = export(load("googlenet_torchvision"))
>>> model.opset_import[0].version, model.graph.input[0].name, model.graph.node[0].name
(17, 'input', 'conv1.conv')
"""

from __future__ import annotations

from typing import Any

OPSET = 17
PRODUCER = "inceptdsl"


def export(spec: Any, state: dict | None = None, optimize: str | None = None,
           seed: int = 0, graph: Any = None):
    """The ONNX model of a spec (see the module doc); ``graph``: its analysed IR, when the
    caller has it already (``compile`` analyses first, to report errors)."""
    from inceptdsl.pipeline import analyze
    from inceptdsl.state import fit_state, initial_state

    graph = graph if graph is not None else analyze(spec).network.graph
    weights = fit_state(graph, state) if state is not None else initial_state(graph, seed)
    if optimize == "inference":
        from inceptdsl.passes.inference import optimize_for_inference

        graph, weights = optimize_for_inference(graph, weights)
    return lower(graph, weights, spec)


def lower(graph, weights: dict, spec: Any):
    """Lower a (possibly optimized) IR graph with its weights to a ModelProto."""
    from onnx import TensorProto, helper

    from inceptdsl import __version__
    from inceptdsl.state import live_nodes

    from .lowering import LOWERINGS, Builder

    b = Builder(graph, weights)
    for node_id in live_nodes(graph):
        data = graph.node(node_id)
        b.tensor[node_id] = LOWERINGS[data["op"]](b, node_id, data["attrs"])
    _name_output(b, b.tensor[graph.output])
    shape_in = ["batch", *graph.shape("input")]
    shape_out = ["batch", *graph.shape(graph.output)]
    onnx_graph = helper.make_graph(
        b.nodes, spec.name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape_in)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape_out)])
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=PRODUCER, producer_version=__version__,
                              doc_string=spec.description or "")
    b.write_initializers(model.graph)
    model.ir_version = 8  # readable by every ONNX Runtime and OpenVINO of the last years
    helper.set_model_props(model, {"name": spec.name, "description": spec.description or "",
                                   "inceptdsl_version": __version__})
    return model


def _name_output(b: Any, out: str) -> None:
    """The graph output is called ``output``: the tensor of the node that computes it is
    renamed when nothing else reads it, else an ``Identity`` copies it (the input itself,
    or a tensor that other nodes read too)."""
    producer = next((n for n in reversed(b.nodes) if out in n.output), None)
    if producer is None or any(out in n.input for n in b.nodes):
        b.node("Identity", [out], "output", name="output")
        return
    producer.output[list(producer.output).index(out)] = "output"


def render(spec: Any, state: dict | None = None, optimize: str | None = None,
           graph: Any = None) -> bytes:
    """The serialized model (what ``compile --backend onnx`` writes), checked by
    ``onnx.checker`` with full shape inference (on the bytes: one serialization)."""
    import onnx

    data = export(spec, state, optimize, graph=graph).SerializeToString()
    onnx.checker.check_model(data, full_check=True)
    return data
