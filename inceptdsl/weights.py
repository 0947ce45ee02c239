"""Weights from other frameworks as a state_dict of a spec's generated PyTorch model.

:func:`from_keras` reads a Keras 3 model (an object, a ``.keras`` archive or a
``.weights.h5`` file written by ``model.save_weights``) and returns numpy arrays in
PyTorch layouts under the spec's ``state_dict`` keys, ready for the generated torch
model's ``load_state_dict(strict=True)`` or the Flax model's ``load_torch_state_dict``.

How layers are paired. A ``.weights.h5`` file keeps no layer names, only each layer's
class and its rank among the layers of that class in Keras's layer order (``model.layers``:
by depth from the output, ties by a depth-first walk that takes a layer's inputs in
order). The spec's stateful layers are put in that same order, computed on the IR the same
way, and each is paired with the Keras layer of the same class and rank:

- ``conv2d`` -> ``Conv2D``; a depthwise ``conv2d`` (groups = input channels) that feeds
  only a 1x1 ``conv2d`` -> one ``SeparableConv2D`` with it; a depthwise one on its own ->
  ``DepthwiseConv2D``;
- ``batchnorm`` -> ``BatchNormalization`` (gamma unless ``scale=false``, beta, moving mean
  and variance);
- ``linear`` -> ``Dense`` (after a flattened map, its rows are reordered from Keras's
  H x W x C flattening to PyTorch's C x H x W).

Strict and all-or-nothing: every Keras weight is used exactly once and every shape must
fit, or :class:`KerasImportError` names the first layer that does not.

>>> order = keras_order(_network("xception_keras"))
>>> [(s.keras_class, s.key) for s in order[:2]]
[('Conv2D', 'block1_conv1'), ('BatchNormalization', 'block1_conv1_bn')]
>>> [(s.keras_class, s.key) for s in order if s.key.startswith("block2.")][:2]
[('SeparableConv2D', 'block2.rep.0.pointwise'), ('BatchNormalization', 'block2.rep.1')]
>>> [k for k, _, _ in order[2 + 2 + 0].tensors]  # a separable conv fills two convs
['block2.rep.0.conv1.weight', 'block2.rep.0.pointwise.weight']
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .ir import Graph
from .state import STATE

KERAS_CLASSES = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "BatchNormalization",
                 "Dense")


class KerasImportError(ValueError):
    """The Keras weights do not fit the spec; the message names the first mismatch."""


@dataclass
class Slot:
    """One Keras layer's worth of the spec: its class, and the tensors it fills, in Keras's
    variable order, as (state_dict key, PyTorch shape, conversion)."""

    keras_class: str
    key: str  # the state_dict prefix shown in messages
    tensors: list[tuple[str, tuple, str]] = field(default_factory=list)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # num_batches_tracked


# ---------------------------------------------------------------------------- public API


def from_keras(source: Any, spec: Any) -> dict[str, np.ndarray]:
    """A state_dict (numpy, PyTorch layouts) of ``spec`` from Keras weights.

    ``source``: a Keras model, or the path of a ``.keras`` or ``.weights.h5`` file.
    ``spec``: a spec, a shipped name or a path. Raises :class:`KerasImportError` when the
    weights do not fit (naming the first layer that does not), ``ValueError`` for a file of
    another kind.
    """
    from . import load

    spec = load(spec) if isinstance(spec, (str, Path)) else spec
    slots = keras_order(_expanded(spec))
    layers = _keras_layers(source)
    return _assign(slots, layers)


def keras_order(graph: Graph) -> list[Slot]:
    """The spec's stateful layers as Keras layers, in Keras's layer order (see above)."""
    pairs = _separable_pairs(graph)
    merged = set(pairs.values())
    order = _keras_node_order(graph, skip=merged)
    slots = []
    for node in order:
        slot = _slot(graph, node, pairs)
        if slot is not None:
            slots.append(slot)
    return slots


def state_dict_bytes(state: dict[str, np.ndarray], suffix: str) -> bytes:
    """A state_dict as the bytes of a ``.safetensors`` or ``.npz`` file.

    >>> data = state_dict_bytes({"fc.bias": np.zeros(2, np.float32)}, ".npz")
    >>> import io; np.load(io.BytesIO(data))["fc.bias"].tolist()
    [0.0, 0.0]
    """
    if suffix == ".safetensors":
        from safetensors.numpy import save

        return save(state)
    if suffix != ".npz":
        raise ValueError(f"unknown state_dict format '{suffix}' (.safetensors or .npz)")
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **state)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- Keras side


def _keras_layers(source: Any) -> dict[str, list[list[np.ndarray]]]:
    """Each Keras class's layers in ``model.layers`` order, as lists of weight arrays."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"{path}: no such file")
        if path.name.endswith(".weights.h5"):
            return _h5_layers(path)
        if path.suffix == ".keras":
            return _model_layers(_load_keras_file(path))
        raise ValueError(f"{path}: expected a .keras or .weights.h5 file")
    if not hasattr(source, "layers"):
        raise ValueError(f"expected a Keras model or a file, got {type(source).__name__}")
    return _model_layers(source)


def _load_keras_file(path: Path) -> Any:
    import keras  # noqa: F401  (only here: keras is optional)
    from keras.saving import load_model

    return load_model(path, compile=False)


def _model_layers(model: Any) -> dict[str, list[list[np.ndarray]]]:
    out: dict[str, list[list[np.ndarray]]] = defaultdict(list)
    for layer in model.layers:
        weights = [np.asarray(w.numpy() if hasattr(w, "numpy") else w) for w in layer.weights]
        name = type(layer).__name__
        if not weights:
            continue
        if name not in KERAS_CLASSES:
            raise KerasImportError(f"Keras layer '{layer.name}' ({name}) has weights, but "
                                   f"only {', '.join(KERAS_CLASSES)} can be imported")
        out[name].append(weights)
    return out


def _h5_layers(path: Path) -> dict[str, list[list[np.ndarray]]]:
    """``layers/<snake_class>[_<rank>]/vars/<i>`` of a Keras 3 ``.weights.h5`` file."""
    import h5py

    snake = {_snake(c): c for c in KERAS_CLASSES}
    ranked: dict[str, dict[int, list[np.ndarray]]] = defaultdict(dict)
    with h5py.File(path, "r") as f:
        if "layers" not in f:
            raise ValueError(f"{path}: not a Keras 3 weights file (no 'layers' group)")
        for name, group in f["layers"].items():
            base, rank = _split_rank(name)
            arrays = _h5_vars(group)
            if not arrays:
                continue
            if base not in snake:
                raise KerasImportError(f"{path}: layer '{name}' has weights, but only "
                                       f"{', '.join(KERAS_CLASSES)} can be imported")
            ranked[snake[base]][rank] = arrays
    out = {}
    for cls, by_rank in ranked.items():
        if sorted(by_rank) != list(range(len(by_rank))):
            raise KerasImportError(f"{path}: the {cls} layers are not numbered 0..n-1")
        out[cls] = [by_rank[i] for i in range(len(by_rank))]
    return out


def _h5_vars(group: Any) -> list[np.ndarray]:
    if "vars" not in group:
        return []
    values = group["vars"]
    return [np.asarray(values[str(i)]) for i in range(len(values))]


def _snake(name: str) -> str:
    """``SeparableConv2D`` -> ``separable_conv2d`` (Keras's file naming)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _split_rank(name: str) -> tuple[str, int]:
    """``conv2d_12`` -> ``("conv2d", 12)``; ``conv2d`` -> ``("conv2d", 0)``."""
    match = re.fullmatch(r"(.+?)_(\d+)", name)
    if match and match.group(1) in {_snake(c) for c in KERAS_CLASSES}:
        return match.group(1), int(match.group(2))
    return name, 0


# ---------------------------------------------------------------------------- spec side


def _expanded(spec: Any) -> Graph:
    from .expand import expand
    from .passes.cost import annotate

    return annotate(expand(spec).graph)


def _network(name: str) -> Graph:
    from .loader import load

    return _expanded(load(name))


def _separable_pairs(graph: Graph) -> dict[str, str]:
    """pointwise node -> its depthwise input, for each depthwise conv that feeds only a
    1x1 conv (a Keras SeparableConv2D)."""
    pairs = {}
    for node in graph.nodes():
        if not _is_depthwise(graph, node):
            continue
        users = list(graph.g.successors(node))
        if len(users) == 1 and _is_pointwise(graph, users[0]) and \
                graph.inputs(users[0]) == [node]:
            pairs[users[0]] = node
    return pairs


def _is_depthwise(graph: Graph, node: str) -> bool:
    data = graph.node(node)
    if data["op"] != "conv2d":
        return False
    channels = graph.shape(graph.inputs(node)[0])[0]
    return channels > 1 and data["attrs"]["groups"] == channels


def _is_pointwise(graph: Graph, node: str) -> bool:
    data = graph.node(node)
    return data["op"] == "conv2d" and data["attrs"]["kernel"] == (1, 1) and \
        data["attrs"]["groups"] == 1


def _keras_node_order(graph: Graph, skip: set[str]) -> list[str]:
    """Keras's ``Functional`` layer order on the IR: by depth (longest path to the
    output, largest first), ties by first visit in a depth-first walk from the output that
    takes each node's inputs in order. ``skip`` nodes are merged into their consumer."""
    index: dict[str, int] = {}
    post: list[str] = []

    def inputs(node: str) -> list[str]:
        out = []
        for src in graph.inputs(node):
            out += inputs(src) if src in skip else [src]
        return out

    def visit(node: str) -> None:
        if node in index:
            return
        index[node] = len(index)
        for src in inputs(node):
            visit(src)
        post.append(node)

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * len(graph) + 100))
    try:
        visit(graph.output)
    finally:
        sys.setrecursionlimit(limit)
    depth: dict[str, int] = {}
    for node in reversed(post):
        d = depth.setdefault(node, 0)
        for src in inputs(node):
            depth[src] = max(depth.get(src, 0), d + 1)
    return sorted(post, key=lambda n: (-depth[n], index[n]))


def _slot(graph: Graph, node: str, pairs: dict[str, str]) -> Slot | None:
    data = graph.node(node)
    op, attrs = data["op"], data["attrs"]
    if op not in ("conv2d", "batchnorm", "linear"):
        return _stateless(node, op)
    in_shape = graph.shape(graph.inputs(node)[0])
    if op == "conv2d":
        return _conv_slot(graph, node, pairs)
    if op == "batchnorm":
        return _bn_slot(node, attrs, in_shape[0])
    layout = "dense"
    flattened = _flattened_map(graph, node)
    if flattened is not None:  # Keras flattens H x W x C, PyTorch C x H x W
        layout = "dense_hwc:" + ",".join(map(str, flattened))
    slot = Slot("Dense", node, [(f"{node}.weight", (attrs["out"], in_shape[0]), layout)])
    if attrs["bias"]:
        slot.tensors.append((f"{node}.bias", (attrs["out"],), "same"))
    return slot


def _flattened_map(graph: Graph, node: str) -> tuple[int, int, int] | None:
    """(C, H, W) when ``node`` reads a flattened map larger than 1 x 1, else None."""
    src = graph.inputs(node)[0]
    while graph.node(src)["op"] in ("dropout", "identity"):
        src = graph.inputs(src)[0]
    if graph.node(src)["op"] != "flatten":
        return None
    shape = tuple(graph.shape(graph.inputs(src)[0]))
    return shape if len(shape) == 3 and shape[1] * shape[2] > 1 else None


def _stateless(node: str, op: str) -> None:
    from .ops import OPS

    if OPS[op].stateful:
        raise KerasImportError(f"'{node}' ({op}) has weights that no Keras layer maps to")


def _conv_tensors(node: str, attrs: dict, channels: int, layout: str) -> list:
    kh, kw = attrs["kernel"]
    shape = (attrs["out"], channels // attrs["groups"], kh, kw)
    return [(f"{node}.weight", shape, layout)]


def _conv_slot(graph: Graph, node: str, pairs: dict[str, str]) -> Slot:
    attrs = graph.node(node)["attrs"]
    if node in pairs:
        dw = pairs[node]
        dw_channels = graph.shape(graph.inputs(dw)[0])[0]
        slot = Slot("SeparableConv2D", node, _conv_tensors(
            dw, graph.node(dw)["attrs"], dw_channels, "depthwise"))
        if graph.node(dw)["attrs"]["bias"]:
            raise KerasImportError(f"'{dw}': a separable conv's depthwise part has no bias "
                                   "in Keras")
        slot.tensors += _conv_tensors(node, attrs, graph.shape(dw)[0], "conv")
    elif _is_depthwise(graph, node):
        slot = Slot("DepthwiseConv2D", node, _conv_tensors(
            node, attrs, graph.shape(graph.inputs(node)[0])[0], "depthwise"))
    else:
        slot = Slot("Conv2D", node, _conv_tensors(
            node, attrs, graph.shape(graph.inputs(node)[0])[0], "conv"))
    if attrs["bias"]:
        slot.tensors.append((f"{node}.bias", (attrs["out"],), "same"))
    return slot


def _bn_slot(node: str, attrs: dict, channels: int) -> Slot:
    """Keras's BN weights in its order (gamma, beta, moving mean, moving variance), which is
    also the order of the op's state (:data:`~inceptdsl.state.STATE`)."""
    slot = Slot("BatchNormalization", node)
    if attrs["track_running_stats"]:
        slot.extra[f"{node}.num_batches_tracked"] = np.array(0, dtype=np.int64)
    slot.tensors = [(f"{node}.{name}", shape, "same")
                    for name, shape in STATE["batchnorm"](attrs, (channels,)).items()]
    return slot


# ---------------------------------------------------------------------------- pairing


def _assign(slots: list[Slot], layers: dict[str, list[list[np.ndarray]]]) -> dict:
    state: dict[str, np.ndarray] = {}
    rank: dict[str, int] = defaultdict(int)
    for slot in slots:
        cls = slot.keras_class
        available = layers.get(cls, [])
        if rank[cls] >= len(available):
            raise KerasImportError(f"'{slot.key}' needs {cls} number {rank[cls] + 1}, but "
                                   f"the Keras model has {len(available)}")
        arrays = available[rank[cls]]
        _fill(state, slot, arrays, rank[cls])
        rank[cls] += 1
    for cls, found in layers.items():
        if rank[cls] != len(found):
            raise KerasImportError(f"the Keras model has {len(found)} {cls} layers, the "
                                   f"spec {rank[cls]}: {cls} number {rank[cls] + 1} is unused")
    return state


def _fill(state: dict, slot: Slot, arrays: list[np.ndarray], rank: int) -> None:
    where = f"'{slot.key}' <- {slot.keras_class} number {rank + 1}"
    if len(arrays) != len(slot.tensors):
        raise KerasImportError(f"{where}: the Keras layer has {len(arrays)} weights, the "
                               f"spec expects {len(slot.tensors)} "
                               f"({', '.join(k.rsplit('.', 1)[1] for k, _, _ in slot.tensors)})")
    for (key, shape, layout), array in zip(slot.tensors, arrays, strict=True):
        value = _torch_layout(array, layout, shape)
        if value is None or value.shape != shape:
            raise KerasImportError(f"{where}: Keras weight of shape {tuple(array.shape)} "
                                   f"does not fit {key} {shape}")
        state[key] = np.ascontiguousarray(value, dtype=np.float32)
    state.update(slot.extra)


def _torch_layout(array: np.ndarray, layout: str, shape: tuple) -> np.ndarray | None:
    """Keras (channels-last) to PyTorch layout: conv HWIO -> OIHW, depthwise
    (kh, kw, in, multiplier) -> (in * multiplier, 1, kh, kw), dense (in, out) -> (out, in),
    with the rows of a dense layer after a flattened map put from H x W x C order into
    PyTorch's C x H x W."""
    if layout == "conv" and array.ndim == 4:
        return array.transpose(3, 2, 0, 1)
    if layout == "depthwise" and array.ndim == 4:
        kh, kw, cin, mult = array.shape
        return array.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
    if layout == "dense" and array.ndim == 2:
        return array.T
    if layout.startswith("dense_hwc:") and array.ndim == 2:
        c, h, w = (int(v) for v in layout.split(":")[1].split(","))
        if array.shape[0] != c * h * w:
            return None
        return array.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(c * h * w, -1).T
    if layout == "same":
        return array
    return None
