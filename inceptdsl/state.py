"""Weights for the IR: the torch ``state_dict`` layout of a graph, a seeded numpy
initialisation, and loading a state_dict from ``.safetensors`` or ``.npz``.

Keys are the generated torch model's: a stateful node's id is its module path, so a conv
``Mixed_5b.branch1x1.conv`` holds ``Mixed_5b.branch1x1.conv.weight``. Arrays are numpy,
float32, in PyTorch layout (conv ``OIHW``, linear ``(out, in)``). Only the eval-mode graph
counts (side outputs such as aux heads are inactive at inference and are left out).

The seeded initialisation is numpy's, not torch's (no framework is imported): conv and
linear weights and biases uniform in ``±1/sqrt(fan_in)`` (PyTorch's default distribution),
BatchNorm scale 1, bias 0, mean 0, var 1, LayerNorm/GroupNorm scale 1 and bias 0, a layer
scale at its ``init``, drawn from ``numpy.random.default_rng(seed)`` in
graph order. It gives the same distribution as the torch model's init, not the same numbers;
to compare backends, load the same state_dict into both.

>>> from inceptdsl.loader import load
>>> from inceptdsl.expand import expand
>>> graph = expand(load("googlenet_torchvision")).graph
>>> shapes = state_shapes(graph)
>>> shapes["conv1.conv.weight"], shapes["conv1.bn.running_var"]
((64, 3, 7, 7), (64,))
>>> state = initial_state(graph)
>>> float(state["conv1.bn.running_var"][0]), state["fc.weight"].dtype.name
(1.0, 'float32')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .ir import Graph
from .loader import UsageError

# op name -> (node attrs, input shape) -> {local name: shape}; one entry per stateful op.
# The key of a weight is ``<node id>.<local name>``, or the node id itself for the name ""
# (a parameter the enclosing module holds under the layer's name, like timm's ``gamma``).
STATE: dict[str, Callable[[dict, tuple], dict[str, tuple]]] = {
    "conv2d": lambda a, s: {"weight": (a["out"], s[0] // a["groups"], *a["kernel"]),
                            **({"bias": (a["out"],)} if a["bias"] else {})},
    "linear": lambda a, s: {"weight": (a["out"], s[0]),
                            **({"bias": (a["out"],)} if a["bias"] else {})},
    "layernorm": lambda a, s: {"weight": (s[0],), "bias": (s[0],)} if a["affine"] else {},
    "groupnorm": lambda a, s: {"weight": (s[0],), "bias": (s[0],)} if a["affine"] else {},
    "layer_scale": lambda a, s: {"": (s[0],)},  # held by the enclosing module: key = node id
    "batchnorm": lambda a, s: {
        **({"weight": (s[0],)} if a["affine"] and a.get("scale", True) else {}),
        **({"bias": (s[0],)} if a["affine"] else {}),
        **({"running_mean": (s[0],), "running_var": (s[0],)}
           if a["track_running_stats"] else {})},
}

# keys a torch state_dict holds that inference does not use
IGNORED_LEAVES = ("num_batches_tracked",)


def live_nodes(graph: Graph) -> list[str]:
    """The nodes the eval-mode output depends on, in graph order (side outputs left out).

    >>> from inceptdsl.loader import load
    >>> from inceptdsl.expand import expand
    >>> graph = expand(load("inception_v3")).graph
    >>> any(n.startswith("AuxLogits") for n in live_nodes(graph))
    False
    """
    import networkx as nx

    needed = nx.ancestors(graph.g, graph.output) | {graph.output}
    return [n for n in graph.nodes() if n in needed]


def node_state(graph: Graph, node_id: str) -> dict[str, tuple]:
    """``{local name: shape}`` of one node's weights (empty for stateless ops)."""
    data = graph.node(node_id)
    rule = STATE.get(data["op"])
    if rule is None:
        return {}
    ins = graph.inputs(node_id)
    return rule(data["attrs"], graph.shape(ins[0]) if ins else ())


def state_shapes(graph: Graph) -> dict[str, tuple]:
    """Every weight the eval-mode graph reads: ``{state_dict key: shape}``."""
    out: dict[str, tuple] = {}
    for node_id in live_nodes(graph):
        for name, shape in node_state(graph, node_id).items():
            out[state_key(node_id, name)] = tuple(int(d) for d in shape)
    return out


def state_key(node_id: str, name: str) -> str:
    """``conv.weight`` for a module's weight, the node id for a parameter named ``""``."""
    return f"{node_id}.{name}" if name else node_id


def initial_state(graph: Graph, seed: int = 0) -> dict[str, Any]:
    """Seeded numpy weights with PyTorch's default distributions (see the module doc)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for node_id in live_nodes(graph):
        shapes = node_state(graph, node_id)
        op = graph.node(node_id)["op"]
        for name, shape in shapes.items():
            if op in ("conv2d", "linear"):
                fan_in = math.prod(shapes["weight"][1:])
                bound = 1 / math.sqrt(fan_in)
                value = rng.uniform(-bound, bound, shape)
            elif op == "layer_scale":
                value = np.full(shape, graph.node(node_id)["attrs"]["init"])
            else:
                fill = 1.0 if name in ("weight", "running_var") else 0.0
                value = np.full(shape, fill)
            out[state_key(node_id, name)] = value.astype(np.float32)
    return out


def read_state(path: str | Path) -> dict[str, Any]:
    """A state_dict from ``.safetensors`` or ``.npz`` (keys as the torch model's)."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such weights file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {k: np.asarray(data[k]) for k in data.files}
        if suffix == ".safetensors":
            from safetensors.numpy import load_file

            return dict(load_file(str(path)))
    except ImportError:
        raise UsageError("reading .safetensors needs the 'safetensors' package "
                         "(pip install 'inceptdsl[deploy]')") from None
    except Exception as exc:  # a corrupt or foreign file: say which, no traceback
        raise UsageError(f"{path}: cannot read weights: {exc}") from None
    raise UsageError(f"{path}: weights must be .safetensors or .npz, not '{suffix}'")


def fit_state(graph: Graph, state: dict[str, Any]) -> dict[str, Any]:
    """The weights of ``state`` the graph reads, as float32; strict about keys and shapes.

    Keys of inactive parts (aux heads) and ``num_batches_tracked`` may be present; any
    other unknown key, a missing key or a shape mismatch raises :class:`UsageError`.
    """
    import numpy as np

    shapes = state_shapes(graph)
    known = _all_keys(graph)
    missing = [k for k in shapes if k not in state]
    unexpected = [k for k in state if k not in known
                  and k.rpartition(".")[2] not in IGNORED_LEAVES]
    wrong = [f"{k} {tuple(np.shape(state[k]))} (expected {shapes[k]})" for k in shapes
             if k in state and tuple(np.shape(state[k])) != shapes[k]]
    problems = [f"{title}: {_listed(items)}" for title, items in (
        ("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if items]
    if problems:
        raise UsageError("the weights do not fit the spec; " + "; ".join(problems))
    return {k: np.asarray(state[k], dtype=np.float32) for k in shapes}


def _all_keys(graph: Graph) -> set[str]:
    """Keys of every stateful node, side outputs included (a full checkpoint has them)."""
    return {state_key(n, name) for n in graph.nodes() for name in node_state(graph, n)}


def _listed(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
