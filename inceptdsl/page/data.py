"""The data of an interactive page: the scope tree as flat rows, with exact costs.

Every page node is a scope of the IR (a block instance, a named sequence such as a
``repeat``, a layer) or an op that a scope holds directly (a block's concat, add or relu).
Each op belongs to exactly one leaf, so the costs of any set of siblings add up, and the
top-level nodes add up to the network's totals. Costs come from the same analysis as
``summary --json`` (:func:`inceptdsl.pipeline.analyze`), so they agree to the unit.

>>> from inceptdsl.loader import load
>>> page = page_data(load("inception_resnet_v2"))
>>> top = [n for n in page["nodes"] if n[FIELDS.index("parent")] < 0]
>>> sum(n[FIELDS.index("params")] for n in top) == page["totals"]["params"]
True
>>> [n[0] for n in top][9:11]
['repeat', 'mixed_6a']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..analysis import Report
from ..diagram import BLOCK_FILLS, KIND_STYLE, _args, fmt_shape, op_summary
from ..ir import Graph, Scope
from ..ops import OPS
from ..passes.cost import totals
from ..pipeline import analyze
from ..spec import Spec

# one row per node; the page's script reads them by these names
FIELDS = ("path", "title", "kind", "desc", "shape", "params", "buffers", "macs", "flops",
          "src", "parent", "colour", "side", "auto")


def page_data(spec: Spec) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready values (deterministic)."""
    report = analyze(spec)
    net = report.network
    assert net is not None
    rows = TreeRows(net.graph)
    rows.add_scope_items(net.root, -1)
    return {
        "name": report.name, "description": spec.description or "",
        "input": report.input, "output": report.output,
        "totals": {k: getattr(report, k) for k in ("params", "buffers", "macs", "flops")},
        "fields": list(FIELDS), "nodes": rows.nodes, "edges": rows.edges(),
        "blocks": block_rows(report, rows),
        "colours": rows.colours,
        "side_outputs": [s["name"] for s in report.side_outputs],
    }


def block_rows(report: Report, rows: TreeRows) -> list[int]:
    """The page nodes of summary's block rows (``summary --depth 1``), in its order."""
    index: dict[str, int] = {}
    for i, node in enumerate(rows.nodes):  # a layer may share its block's path: keep the block
        index.setdefault(node[0], i)
    return [index[b["path"]] for b in report.blocks]


class TreeRows:
    """Flattens the scope tree into rows, parents before children, in forward order."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.order = {n: i for i, n in enumerate(graph.nodes())}
        self.nodes: list[list[Any]] = []
        self.leaf_of: dict[str, int] = {}
        self.colours: dict[str, str] = {}

    def add_scope_items(self, scope: Scope, parent: int) -> None:
        """Add a scope's own ops and child scopes as children of row ``parent``."""
        items: list[str | Scope] = [*scope.nodes, *scope.children]
        for item in sorted(items, key=self.first_index):
            if isinstance(item, str):
                self.add_op(item, parent)
            elif not item.children:
                self.add_leaf_scope(item, parent)
            else:
                row = self.add_row(item.path, item.all_nodes(), self.scope_fields(item),
                                   parent, item.side, auto=self.opens_with_parent(item))
                self.add_scope_items(item, row)

    def first_index(self, item: str | Scope) -> int:
        nodes = [item] if isinstance(item, str) else item.all_nodes()
        return min((self.order[n] for n in nodes), default=len(self.order))

    def add_op(self, node_id: str, parent: int) -> None:
        data = self.graph.node(node_id)
        row = self.add_row(node_id, [node_id], self.op_fields(node_id), parent, data["side"])
        self.leaf_of[node_id] = row

    def add_leaf_scope(self, scope: Scope, parent: int) -> None:
        """A layer: one leaf for its ops (one op in every shipped spec)."""
        fields = self.op_fields(scope.nodes[0]) if len(scope.nodes) == 1 else \
            self.scope_fields(scope)
        row = self.add_row(scope.path, scope.nodes, fields, parent, scope.side)
        for node_id in scope.nodes:
            self.leaf_of[node_id] = row

    def add_row(self, path: str, nodes: list[str], fields: dict[str, str], parent: int,
                side: bool, auto: bool = False) -> int:
        cost = totals(self.graph, nodes)
        output = fields.pop("output")
        parent_path = self.nodes[parent][0] if parent >= 0 else ""
        self.nodes.append([
            path, title(path, parent_path), fields["kind"], fields["desc"],
            fmt_shape(self.graph.shape(output)) if output else "",
            cost["params"], cost["buffers"], cost["macs"], cost["flops"], fields["src"],
            parent, fields["colour"], int(side), int(auto)])
        return len(self.nodes) - 1

    def op_fields(self, node_id: str) -> dict[str, str]:
        data = self.graph.node(node_id)
        kind = OPS[data["op"]].kind
        self.colours[kind] = KIND_STYLE.get(kind, KIND_STYLE["other"])[0]
        desc = "input" if data["op"] == "input" else op_summary(data["op"], data["attrs"])
        return {"kind": data["op"], "desc": desc, "output": node_id, "colour": kind,
                "src": source_of(data["span"])}

    def scope_fields(self, scope: Scope) -> dict[str, str]:
        colour = "seq"
        if scope.kind == "block":
            colour = f"block:{scope.type_name}"
            if colour not in self.colours:
                blocks = sum(1 for k in self.colours if k.startswith("block:"))
                self.colours[colour] = BLOCK_FILLS[blocks % len(BLOCK_FILLS)]
        return {"kind": scope.type_name, "desc": self.describe(scope),
                "output": scope.output or "", "colour": colour, "src": source_of(scope.span)}

    def describe(self, scope: Scope) -> str:
        """``Block35 × 10`` for a repeat, ``BasicConv2d: conv 3×3/2, 32`` for a one-conv
        block, ``Block35(0.17)`` for others, ``3 layers`` for a plain sequence."""
        if scope.kind == "seq" and _is_repeat(scope):
            return f"{scope.children[0].type_name} × {len(scope.children)}"
        if scope.kind != "block":
            return f"{len(scope.children) + len(scope.nodes)} layers"
        weighted = [n for n in scope.all_nodes()
                    if OPS[self.graph.node(n)["op"]].kind in ("conv", "linear")]
        if len(weighted) == 1:
            data = self.graph.node(weighted[0])
            return f"{scope.type_name}: {op_summary(data['op'], data['attrs'])}"
        return f"{scope.type_name}{_args(scope)}"

    @staticmethod
    def opens_with_parent(scope: Scope) -> bool:
        """Plain sequences (a block's branches, a top-level ``features``) open with their
        parent, the page counting as open: the page looks through them as summary does."""
        return scope.kind == "seq" and not _is_repeat(scope)

    def edges(self) -> list[int]:
        """Leaf-to-leaf edges as a flat list ``[src, dst, src, dst, ...]``, no duplicates."""
        pairs: dict[tuple[int, int], None] = {}
        for dst in self.graph.nodes():
            for src in self.graph.inputs(dst):
                a, b = self.leaf_of[src], self.leaf_of[dst]
                if a != b:
                    pairs[(a, b)] = None
        return [i for pair in pairs for i in pair]


def _is_repeat(scope: Scope) -> bool:
    """Whether a sequence holds copies of one block with the same arguments (a repeat)."""
    kinds = {(c.kind, c.type_name, repr(c.meta.get("args"))) for c in scope.children}
    return len(scope.children) > 1 and len(kinds) == 1 and next(iter(kinds))[0] == "block"


def title(path: str, parent_path: str) -> str:
    """The name drawn on a node: its path inside the parent, without an op counter.

    >>> title("mixed_5b.branch1x1", "mixed_5b"), title("repeat.0.add:0", "repeat.0")
    ('branch1x1', 'add')
    >>> title("repeat.3", "repeat")
    'repeat.3'
    """
    name = path[len(parent_path) + 1:] if parent_path and path.startswith(parent_path + ".") \
        else path
    name = name.split(":")[0]
    if name.isdigit():
        return f"{parent_path.rsplit('.', 1)[-1]}.{name}"
    return name


def source_of(span: Any) -> str:
    """``inception_v3.yaml:42`` for a span, ``''`` without one."""
    return f"{Path(span.path).name}:{span.line}" if span is not None else ""
