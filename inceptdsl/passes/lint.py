"""Invariants of the IR, checked before and after every transforming pass.

Messages say what is wrong and how it could be fixed; a failure here is a bug in
inceptdsl, not in the spec, so it raises :class:`IRLintError`.

>>> from inceptdsl.loader import load
>>> from inceptdsl.expand import expand
>>> lint(expand(load("inception_v3")).graph)
"""

from __future__ import annotations

import networkx as nx

from ..ir import Graph
from ..ops import OPS


class IRLintError(AssertionError):
    """The IR broke an invariant."""


def lint(graph: Graph) -> None:
    """Check acyclicity, insertion order, input arity, edge order and shapes."""
    problems: list[str] = []
    if not nx.is_directed_acyclic_graph(graph.g):
        problems.append("the graph has a cycle")
    position = {n: i for i, n in enumerate(graph.nodes())}
    for node_id in graph.nodes():
        problems += _node_problems(graph, node_id, position)
    if graph.output is None or graph.output not in graph:
        problems.append("the graph has no output node")
    if problems:
        raise IRLintError("IR lint failed:\n  " + "\n  ".join(problems))


def _node_problems(graph: Graph, node_id: str, position: dict[str, int]) -> list[str]:
    data = graph.node(node_id)
    op = OPS.get(data["op"])
    if op is None:
        return [f"{node_id}: unknown op '{data['op']}' (register it in inceptdsl/ops.py)"]
    inputs = graph.inputs(node_id)
    out = []
    if op.arity and len(inputs) != op.arity:
        out.append(f"{node_id}: {op.name} takes {op.arity} input(s), has {len(inputs)}")
    if op.name != "input" and not inputs:
        out.append(f"{node_id}: has no input")
    edges = sorted(graph.g.in_edges(node_id, data="index"), key=lambda e: e[2])
    if len(set(inputs)) == len(inputs) and [e[0] for e in edges] != inputs:
        # (a DiGraph keeps one edge per pair, so only distinct inputs can be compared)
        out.append(f"{node_id}: edge indices disagree with the input order")
    for src in inputs:
        if position[src] >= position[node_id]:
            out.append(f"{node_id}: input {src} comes after it (nodes must be in "
                       "topological order)")
    if "shape" not in data["meta"]:
        out.append(f"{node_id}: no shape (run passes.shapes first)")
    return out
