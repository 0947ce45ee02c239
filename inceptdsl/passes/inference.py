"""Inference passes: IR graph + weights in, an equivalent faster graph + weights out.

Each pass is a plain function ``(graph, weights) -> (graph, weights)`` on the flat IR and a
state_dict of numpy arrays (:mod:`inceptdsl.state`); it leaves its input untouched and its
output passes the IR lint. Only the eval-mode part of the graph is rewritten (side outputs
such as aux heads are inactive at inference and keep their nodes).

- :func:`fold_batchnorm`: ``conv2d -> batchnorm`` (or ``linear -> batchnorm``) becomes one
  conv (linear) with the BN's affine map folded into its weight and bias.
- :func:`fuse_sibling_convs`: convs reading the same tensor with the same kernel, stride,
  padding and dilation (groups 1), each followed by the same activation or none, become one
  conv with concatenated output channels, the activation, and ``slice`` nodes that
  take over the members' node ids, so everything downstream reads them unchanged.

What may fold and what may fuse is defined once, by :func:`bn_folds_into` and
:func:`fusion_key`. These passes apply the rules to one flat graph with concrete weights.
The torch backend's ``--optimize inference`` (``backends/torch/optimize.py``) applies the
same rules to class code: its model must keep the plain model's state_dict, so it folds
when the weights are loaded, in generated code.

>>> from inceptdsl.loader import load
>>> from inceptdsl.expand import expand
>>> from inceptdsl.state import initial_state
>>> graph = expand(load("inception_v3")).graph
>>> fast, weights = optimize_for_inference(graph, initial_state(graph), ALL_PASSES)
>>> sum(fast.node(n)["op"] == "batchnorm" for n in fast.nodes()) < 10
True
>>> fast.node("Mixed_5b.branch1x1.relu:0")["op"], fast.inputs("Mixed_5b.branch1x1.relu:0")
('slice', ['Mixed_5b.branch1x1.conv:fused:relu'])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..expr import is_symbolic
from ..ir import Graph
from ..ops import OPS, conv_padding, pool_stride, same_at_stride_one
from .cost import annotate
from .lint import lint
from .shapes import run as infer_shapes

Pass = Callable[[Graph, dict], tuple[Graph, dict]]


def optimize_for_inference(graph: Graph, weights: dict,
                           passes: tuple[Pass, ...] | None = None) -> tuple[Graph, dict]:
    """The given passes (default :data:`PASSES`) in order, each checked by the IR lint."""
    for step in PASSES if passes is None else passes:
        graph, weights = step(graph, weights)
    return graph, weights


# ---------------------------------------------------------------------------- the rules

FOLDS_INTO = ("conv2d", "linear")  # the ops an eval-mode BatchNorm after them folds into


def bn_folds_into(producer: str, bn_attrs: dict) -> bool:
    """Whether an eval-mode BN that alone reads a ``producer`` op's output folds into it:
    the producer is a conv or linear layer and the BN uses running statistics (a
    symbolic ``track_running_stats``, unknown until the model is built, does not fold).

    >>> bn_folds_into("conv2d", {"track_running_stats": True})
    True
    >>> bn_folds_into("maxpool", {"track_running_stats": True})
    False
    """
    return producer in FOLDS_INTO and bn_attrs["track_running_stats"] is True


def fusion_key(conv: dict, in_size: tuple[int, int] | None,
               act: tuple[str, dict] | None) -> tuple | None:
    """What sibling convs reading one tensor must share to run as one conv: kernel, stride,
    explicit padding (top, bottom, left, right) and dilation, with groups 1, and the
    activation that alone reads each output (``(op, attrs)``, or ``None``).

    ``None`` means never fused: grouped, a value still symbolic, or a padding that depends
    on the input size (TensorFlow's 'same' at a stride > 1) when ``in_size`` is ``None``.

    >>> conv = {"kernel": (1, 1), "stride": (1, 1), "pad": "same", "dilation": (1, 1),
    ...         "groups": 1}
    >>> fusion_key(conv, None, ("relu", {}))
    ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1), ('relu', ()))
    >>> fusion_key({**conv, "groups": 2}, (8, 8), None) is None
    True
    """
    geometry = [conv[k] for k in ("kernel", "stride", "pad", "dilation", "groups")]
    if conv["groups"] != 1 or is_symbolic(geometry) or act is not None and \
            is_symbolic(list(act[1].values())):
        return None
    if in_size is None and conv["pad"] == "same" and not same_at_stride_one(conv):
        return None
    pads = conv_padding(conv, in_size or (1, 1))
    act_key = None if act is None else (act[0], tuple(sorted(act[1].items())))
    return (tuple(conv["kernel"]), tuple(conv["stride"]), pads, tuple(conv["dilation"]),
            act_key)


def conv_before_pool(pool: dict, conv_key: tuple | None) -> bool:
    """Whether a 1x1 conv that alone reads an average pool's output may run before the
    pool instead (then the pool averages the conv's output channels, usually far fewer:
    inception_v3's pool projections pool 192-2048 channels to feed 32-192).

    Exact: a 1x1 conv without bias maps each pixel's channels alike, an average pool maps
    each channel's pixels alike, and such maps commute. The pool must keep the size
    (stride 1, padding ``(k - 1) / 2``), or the conv would run on a larger map; the conv's
    ``conv_key`` is its :func:`fusion_key` (1x1, stride 1, no padding). Its bias then
    goes after the pool when padded zeros count in the average
    (:func:`bias_after_pool`), and its activation always does.

    >>> pool = {"kernel": (3, 3), "stride": (1, 1), "pad": (1, 1), "ceil": False,
    ...         "count_include_pad": True}
    >>> conv_before_pool(pool, ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1), ("relu", ())))
    True
    >>> conv_before_pool({**pool, "stride": (2, 2)}, ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1), None))
    False
    """
    if conv_key is None or conv_key[:3] != ((1, 1), (1, 1), (0, 0, 0, 0)):
        return False
    kernel, stride, pad = pool["kernel"], pool_stride(pool), pool["pad"]
    if is_symbolic([kernel, stride, pad]) or isinstance(pad, str):
        return False
    pad = tuple(pad) if len(pad) == 4 else (pad[0], pad[0], pad[1], pad[1])
    return tuple(stride) == (1, 1) and all(
        2 * p == k - 1 for p, k in zip(pad, (kernel[0], kernel[0], kernel[1], kernel[1]),
                                       strict=True))


def bias_after_pool(pool: dict) -> bool:
    """Whether a conv's bias must be added after an average pool it moved before: when the
    padded zeros count in the average, a constant is not averaged to itself at the border.

    >>> bias_after_pool({"pad": (1, 1), "count_include_pad": True})
    True
    >>> bias_after_pool({"pad": (1, 1), "count_include_pad": False})
    False
    """
    return bool(pool["count_include_pad"]) and any(pool["pad"])


# ---------------------------------------------------------------------------- rewriting


@dataclass
class Rewrite:
    """Edits to apply while copying a graph: dropped nodes, aliases, replacements."""

    alias: dict[str, str] = field(default_factory=dict)  # dropped node -> node that replaces it
    attrs: dict[str, dict] = field(default_factory=dict)  # node -> new attrs
    # node -> nodes emitted in its place: (id, op, attrs, inputs)
    instead: dict[str, list[tuple[str, str, dict, list[str]]]] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)

    def resolve(self, node_id: str) -> str:
        while node_id in self.alias:
            node_id = self.alias[node_id]
        return node_id


def apply(graph: Graph, edits: Rewrite) -> Graph:
    """A new graph with the edits applied, shapes and costs re-inferred, lint-checked."""
    out = Graph()
    for node_id in graph.nodes():
        data = graph.node(node_id)
        if node_id in edits.dropped:
            continue
        emitted = edits.instead.get(node_id)
        if emitted is None:
            emitted = [(node_id, data["op"], edits.attrs.get(node_id, data["attrs"]),
                        graph.inputs(node_id))]
        for new_id, op, attrs, inputs in emitted:
            meta = {"shape": data["meta"]["shape"]} if op == "input" else {}
            out.add(new_id, op, attrs, [edits.resolve(i) for i in inputs], data["span"],
                    data["scope"], data["side"], meta)
    out.output = edits.resolve(graph.output)
    out.side_outputs = [type(s)(s.name, edits.resolve(s.node), s.loss_weight, s.span)
                        for s in graph.side_outputs]
    annotate(infer_shapes(out))
    lint(out)
    return out


def consumers(graph: Graph, node_id: str) -> list[str]:
    return list(graph.g.successors(node_id))


def _sole_consumer(graph: Graph, node_id: str) -> str | None:
    users = consumers(graph, node_id)
    if len(users) != 1 or node_id == graph.output:
        return None
    return users[0]


# ---------------------------------------------------------------------------- BN folding


def batchnorm_folds(graph: Graph) -> dict[str, str]:
    """Each BN that folds (:func:`bn_folds_into`, and it alone reads its producer's
    output), with the conv or linear layer it folds into; decided on the graph alone.

    >>> from inceptdsl.loader import load
    >>> from inceptdsl.expand import expand
    >>> batchnorm_folds(expand(load("inception_v3")).graph)["Mixed_5b.branch1x1.bn"]
    'Mixed_5b.branch1x1.conv'
    """
    folds = {}
    for bn in graph.nodes():
        data = graph.node(bn)
        if data["op"] != "batchnorm":
            continue
        src = graph.inputs(bn)[0]
        if bn_folds_into(graph.node(src)["op"], data["attrs"]) and \
                _sole_consumer(graph, src) == bn:
            folds[bn] = src
    return folds


def fold_batchnorm(graph: Graph, weights: dict) -> tuple[Graph, dict]:
    """Fold each eval-mode BN into the conv or linear layer it alone follows."""
    import numpy as np

    edits, new = Rewrite(), dict(weights)
    for bn, src in batchnorm_folds(graph).items():
        if f"{bn}.running_mean" not in weights:  # not in this state (an inactive side head)
            continue
        data = graph.node(bn)
        scale = 1 / np.sqrt(weights[f"{bn}.running_var"].astype(np.float64) +
                            data["attrs"]["eps"])
        shift = -weights[f"{bn}.running_mean"].astype(np.float64) * scale
        if f"{bn}.weight" in weights:  # the learned scale (absent: affine=false, scale=false)
            gamma = weights[f"{bn}.weight"].astype(np.float64)
            scale, shift = scale * gamma, shift * gamma
        if f"{bn}.bias" in weights:
            shift = shift + weights[f"{bn}.bias"]
        w = weights[f"{src}.weight"].astype(np.float64)
        b = weights.get(f"{src}.bias", np.zeros(w.shape[0])).astype(np.float64)
        new[f"{src}.weight"] = (w * scale.reshape(-1, *[1] * (w.ndim - 1))).astype(np.float32)
        new[f"{src}.bias"] = (b * scale + shift).astype(np.float32)
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            new.pop(f"{bn}.{leaf}", None)
        edits.attrs[src] = {**graph.node(src)["attrs"], "bias": True}
        edits.alias[bn] = src
        edits.dropped.add(bn)
    return apply(graph, edits), new


# ---------------------------------------------------------------------------- sibling fusion


def _conv_key(graph: Graph, conv: str, weights: dict) -> tuple | None:
    """What sibling convs must share to run as one (``None``: never fused)."""
    data = graph.node(conv)
    if data["op"] != "conv2d" or f"{conv}.weight" not in weights:
        return None
    act = _fusable_activation(graph, conv)
    act_op = None if act is None else (graph.node(act)["op"], graph.node(act)["attrs"])
    return fusion_key(data["attrs"], graph.shape(graph.inputs(conv)[0])[1:], act_op)


def _fusable_activation(graph: Graph, conv: str) -> str | None:
    user = _sole_consumer(graph, conv)
    if user is None or OPS[graph.node(user)["op"]].kind != "act":
        return None
    return user


def fuse_sibling_convs(graph: Graph, weights: dict) -> tuple[Graph, dict]:
    """Convs of equal geometry on one tensor become one conv, its activation and slices."""
    edits, new = Rewrite(), dict(weights)
    order = {n: i for i, n in enumerate(graph.nodes())}
    for tensor in graph.nodes():
        groups: dict[tuple, list[str]] = {}
        for user in consumers(graph, tensor):
            key = _conv_key(graph, user, weights)
            if key is not None and graph.inputs(user) == [tensor]:
                groups.setdefault(key, []).append(user)
        for key, members in groups.items():
            if len(members) > 1:
                _fuse(graph, sorted(members, key=order.get), key, edits, new)
    return apply(graph, edits), new


def _fuse(graph: Graph, members: list[str], key: tuple, edits: Rewrite, new: dict) -> None:
    import numpy as np

    first = members[0]
    fused = f"{first}:fused"
    outs = [graph.node(m)["attrs"]["out"] for m in members]
    attrs = {**graph.node(first)["attrs"], "out": sum(outs), "bias": True}
    tensor = graph.inputs(first)[0]
    emitted = [(fused, "conv2d", attrs, [tensor])]
    head = fused
    if key[-1] is not None:
        act = _fusable_activation(graph, first)
        head = f"{fused}:{graph.node(act)['op']}"
        emitted.append((head, graph.node(act)["op"], graph.node(act)["attrs"], [fused]))
    start = 0
    for member, width in zip(members, outs, strict=True):
        out = _fusable_activation(graph, member) if key[-1] is not None else member
        emitted.append((out, "slice", {"start": start, "stop": start + width}, [head]))
        start += width
        edits.dropped |= {member, out}
    edits.dropped.discard(first)
    edits.instead[first] = emitted
    new[f"{fused}.weight"] = np.concatenate([new.pop(f"{m}.weight") for m in members])
    new[f"{fused}.bias"] = np.concatenate([
        new.pop(f"{m}.bias", np.zeros(w, np.float32)) for m, w in zip(members, outs,
                                                                       strict=True)])


# ---------------------------------------------------------------------------- concatenation


def flatten_concats(graph: Graph, weights: dict) -> tuple[Graph, dict]:
    """A concat that alone reads another concat's output takes that one's inputs in its
    place: one copy of the channels instead of two (InceptionE's inner concats;
    ``torch.onnx.export`` rewrites them the same way).

    >>> from inceptdsl.loader import load
    >>> from inceptdsl.expand import expand
    >>> graph = expand(load("inception_v3")).graph
    >>> flat, _ = flatten_concats(graph, {})
    >>> [len(g.inputs("Mixed_7c.concat:2")) for g in (graph, flat)]
    [4, 6]
    """
    edits = Rewrite()
    sides = {s.node for s in graph.side_outputs}
    for node in graph.nodes():
        if graph.node(node)["op"] != "concat":
            continue
        inputs = _flat_inputs(graph, node, sides, edits.dropped)
        if inputs != graph.inputs(node):
            edits.instead[node] = [(node, "concat", graph.node(node)["attrs"], inputs)]
    return apply(graph, edits), weights


def _flat_inputs(graph: Graph, node: str, sides: set[str], dropped: set[str]) -> list[str]:
    """The inputs of a concat with every inner concat that only it reads inlined."""
    out = []
    for src in graph.inputs(node):
        inner = graph.node(src)["op"] == "concat" and src not in sides and \
            _sole_consumer(graph, src) == node
        if inner:
            dropped.add(src)
        out += _flat_inputs(graph, src, sides, dropped) if inner else [src]
    return out


ALL_PASSES: tuple[Pass, ...] = (fold_batchnorm, flatten_concats, fuse_sibling_convs)
# What --optimize inference runs for ONNX: BN folding and flat concats. Sibling fusion
# measured no faster on ONNX Runtime and OpenVINO (their NCHWc/blocked layouts pay a
# reorder for the channel slices; see docs/benchmarks.md), so it is available but not on
# by default.
PASSES: tuple[Pass, ...] = (fold_batchnorm, flatten_concats)
