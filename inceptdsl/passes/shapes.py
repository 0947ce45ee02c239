"""Shape inference with PyTorch's exact semantics (floor, ``ceil_mode``, padding, groups).

The expander calls :func:`infer_node` as each node is added (block bodies may read
``in_channels``); :func:`run` re-infers a whole graph, e.g. after a transforming pass.

>>> from inceptdsl.ir import Graph
>>> g = Graph()
>>> _ = g.add("x", "input", {}, [], meta={"shape": (3, 7, 7)})
>>> _ = g.add("p", "maxpool", {"kernel": (3, 3), "stride": (2, 2), "pad": (0, 0),
...                            "ceil": True, "dilation": (1, 1)}, ["x"])
>>> infer_node(g, "p")
(3, 3, 3)
"""

from __future__ import annotations

from ..errors import SpecError
from ..ir import Graph
from ..ops import OPS, OpError


def infer_node(graph: Graph, node_id: str) -> tuple:
    """Check a node against its inputs' shapes and store its output shape in ``meta``."""
    data = graph.node(node_id)
    op = OPS[data["op"]]
    ins = [graph.shape(i) for i in graph.inputs(node_id)]
    if op.name == "input":
        return data["meta"]["shape"]
    try:
        op.check(data["attrs"], ins)
        shape = tuple(op.shape(data["attrs"], ins))
    except OpError as exc:
        raise SpecError(str(exc), data["span"], hint=exc.hint) from None
    data["meta"]["shape"] = shape
    return shape


def run(graph: Graph) -> Graph:
    """Infer every node's shape in topological order."""
    for node_id in graph.nodes():
        infer_node(graph, node_id)
    return graph
