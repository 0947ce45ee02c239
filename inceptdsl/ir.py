"""The IR: a flat networkx graph of ops for analysis, and a scope tree for code generation.

Each graph node is an op instance: ``op`` (an :class:`~inceptdsl.ops.OpDef` name),
``attrs``, ``span`` (the spec text it came from), ``scope`` (the path of its enclosing
block instance) and a free ``meta`` dict where passes store results (``shape``, ``cost``),
as in torch.fx. Edges carry ``index`` so that concat inputs keep their order.

The :class:`Scope` tree mirrors the module hierarchy of the generated code: one scope per
block instance, named sequence or stateful layer, with the attribute path as its name.

>>> g = Graph()
>>> g.add("input", "input", {}, [], meta={"shape": (3, 8, 8)})
'input'
>>> g.add("conv", "conv2d", {}, ["input"])
'conv'
>>> g.inputs("conv")
['input']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .errors import SourceSpan


class Graph:
    """A DAG of op nodes with ordered inputs."""

    def __init__(self) -> None:
        self.g = nx.DiGraph()
        self.output: str | None = None
        self.side_outputs: list[SideOutput] = []
        self._inputs: dict[str, list[str]] = {}

    def add(self, node_id: str, op: str, attrs: dict, inputs: list[str],
            span: SourceSpan | None = None, scope: str = "", side: bool = False,
            meta: dict | None = None) -> str:
        self.g.add_node(node_id, op=op, attrs=attrs, span=span, scope=scope, side=side,
                        meta=meta or {})
        for index, src in enumerate(inputs):
            self.g.add_edge(src, node_id, index=index)
        self._inputs[node_id] = list(inputs)
        return node_id

    def __contains__(self, node_id: str) -> bool:
        return node_id in self.g

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    def node(self, node_id: str) -> dict:
        return self.g.nodes[node_id]

    def inputs(self, node_id: str) -> list[str]:
        """The node's inputs in order (the order of concat branches)."""
        return self._inputs[node_id]

    def shape(self, node_id: str) -> tuple:
        return self.g.nodes[node_id]["meta"]["shape"]

    def nodes(self) -> list[str]:
        """Node ids in insertion order, which is a topological order."""
        return list(self.g.nodes)


@dataclass
class SideOutput:
    name: str
    node: str
    loss_weight: float
    span: SourceSpan | None = None


@dataclass
class Scope:
    """A module of the generated model: a block instance, a named sequence or a layer."""

    path: str
    kind: str  # "network", "block", "seq", "layer"
    type_name: str  # the block or op name
    span: SourceSpan | None = None
    children: list[Scope] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    output: str | None = None
    side: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def walk(self):
        """This scope and every scope below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def all_nodes(self) -> list[str]:
        out = list(self.nodes)
        for child in self.children:
            out += child.all_nodes()
        return out

    def rows(self, depth: int) -> list[Scope]:
        """The scopes ``depth`` levels down, looking through named sequences."""
        if depth == 0:
            return [self]
        out: list[Scope] = []
        for child in self.children:
            if child.kind == "seq":
                out += child.rows(depth)
            else:
                out += child.rows(depth - 1) if child.children and depth > 1 else [child]
        return out
