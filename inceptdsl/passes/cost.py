"""Exact costs: parameters, buffers, MACs, FLOPs and activation elements, per node.

Conventions (see docs/design.md):

- ``params`` / ``buffers``: what the generated torch model holds (``parameters()``,
  ``buffers()``; BN running mean/var plus ``num_batches_tracked``).
- ``macs``: multiply-accumulates of conv and linear layers in one eval-mode forward of one
  image, what ``torch.utils.flop_counter`` counts, halved. Side outputs (aux heads) are
  inactive in eval and add nothing.
- ``flops``: 2 x MACs plus elementwise work: bias adds 1, BN 2, activations 1, scale 1 per
  output element; pooling one op per window element per output; adaptive/global pooling
  one per input element; add one per extra operand element; LRN ``size + 3``, L2 norm 3.
- ``activations``: output elements of every op except views and no-ops (flatten,
  identity, dropout, concat).

>>> from inceptdsl.loader import load
>>> from inceptdsl.expand import expand
>>> totals(annotate(expand(load("googlenet", {"aux_logits": False})).graph))["params"]
6998552
"""

from __future__ import annotations

from ..ir import Graph
from ..ops import OPS, numel

_NO_ACTIVATION = {"flatten", "identity", "dropout", "concat", "input"}


def annotate(graph: Graph) -> Graph:
    """Store ``meta['cost']`` on every node."""
    for node_id in graph.nodes():
        data = graph.node(node_id)
        op = OPS[data["op"]]
        ins = [graph.shape(i) for i in graph.inputs(node_id)]
        out = data["meta"]["shape"]
        attrs = data["attrs"]
        live = not data["side"]
        data["meta"]["cost"] = {
            "params": op.params(attrs, ins),
            "buffers": op.buffers(attrs, ins),
            "macs": op.macs(attrs, ins, out) if live else 0,
            "flops": op.flops(attrs, ins, out) if live else 0,
            "activations": numel(out) if live and op.name not in _NO_ACTIVATION else 0,
        }
    return graph


KEYS = ("params", "buffers", "macs", "flops", "activations")


def totals(graph: Graph, nodes: list[str] | None = None) -> dict[str, int]:
    """Sum the costs of some nodes (all by default)."""
    out = dict.fromkeys(KEYS, 0)
    for node_id in graph.nodes() if nodes is None else nodes:
        cost = graph.node(node_id)["meta"]["cost"]
        for key in KEYS:
            out[key] += cost[key]
    return out
