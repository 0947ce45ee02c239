"""Analysis: a spec in, its shapes and exact costs out, as a table or as JSON.

The stages that produce it run in :func:`inceptdsl.pipeline.analyze`.

>>> from inceptdsl.pipeline import analyze, load
>>> report = analyze(load("inception_v3", {"aux_logits": False}))
>>> report.params, report.buffers, report.macs
(23834568, 34526, 5713216096)
>>> report.blocks[7]["path"], report.blocks[7]["kind"], report.blocks[7]["output"]
('Mixed_5b', 'InceptionA', [256, 35, 35])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .expand import Network
from .ir import Scope
from .ops import fmt_shape
from .passes.cost import totals


@dataclass
class Report:
    """Everything ``summary`` shows: totals, per-block rows and every node's shape."""

    name: str
    input: list[int]
    output: list[int]
    params: int
    buffers: int
    macs: int
    flops: int
    activations: int
    blocks: list[dict[str, Any]]
    shapes: dict[str, list[int]]
    side_outputs: list[dict[str, Any]] = field(default_factory=list)
    network: Network | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "input": self.input, "output": self.output,
            "params": self.params, "buffers": self.buffers, "macs": self.macs,
            "flops": self.flops, "activations": self.activations,
            "side_outputs": self.side_outputs, "blocks": self.blocks,
        }


def summarize(net: Network, depth: int = 1) -> Report:
    """The report of an elaborated, costed network; ``depth`` picks how deep rows go."""
    spec, graph = net.spec, net.graph
    total = totals(graph)
    rows = [_row(net, scope) for scope in net.root.rows(max(depth, 1))]
    sides = [{"name": s.name, "output": list(graph.shape(s.node)), "loss_weight": s.loss_weight}
             for s in graph.side_outputs]
    shapes = {n: list(graph.shape(n)) for n in graph.nodes()}
    return Report(spec.name, list(spec.input), list(graph.shape(graph.output)),
                  total["params"], total["buffers"], total["macs"], total["flops"],
                  total["activations"], rows, shapes, sides, net)


def _row(net: Network, scope: Scope) -> dict[str, Any]:
    cost = totals(net.graph, scope.all_nodes())
    output = list(net.graph.shape(scope.output)) if scope.output else []
    return {"path": scope.path, "kind": scope.type_name, "output": output,
            "params": cost["params"], "buffers": cost["buffers"], "macs": cost["macs"],
            "flops": cost["flops"], "side": scope.side}


def human(n: int) -> str:
    """``5713216096`` -> ``5.71 G``."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def table(report: Report) -> str:
    """The human summary: one row per block, then the totals, MACs and FLOPs labelled."""
    head = ("path", "kind", "output", "params", "MACs")
    rows = [(r["path"] + (" (side)" if r["side"] else ""), r["kind"],
             fmt_shape(r["output"]), f"{r['params']:,}", f"{r['macs']:,}")
            for r in report.blocks]
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i])
              for i in range(5)]

    def line(cells: tuple) -> str:
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    rule = "-" * len(line(head))
    out = [f"{report.name}: input {fmt_shape(report.input)} -> output "
           f"{fmt_shape(report.output)}", "", line(head), rule, *map(line, rows), rule]
    out += [
        f"params       {report.params:>16,}  ({human(report.params)})",
        f"buffers      {report.buffers:>16,}",
        f"MACs         {report.macs:>16,}  ({human(report.macs)} multiply-accumulates, "
        "conv + linear, one image, eval)",
        f"FLOPs        {report.flops:>16,}  ({human(report.flops)}: 2 x MACs + elementwise)",
        f"activations  {report.activations:>16,}  (output elements of all ops)",
    ]
    for side in report.side_outputs:
        out.append(f"side output  {side['name']}: {fmt_shape(side['output'])} "
                   f"(training only, loss weight {side['loss_weight']:g})")
    return "\n".join(out)


def analyze(spec: Any, depth: int = 1) -> Report:
    """The pipeline up to lint, under its first name: :func:`inceptdsl.pipeline.analyze`."""
    from .pipeline import analyze as run  # pipeline imports this module: import when called

    return run(spec, depth)
