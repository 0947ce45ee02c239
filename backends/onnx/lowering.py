"""ONNX lowering of the IR: one function per op, building nodes with ``onnx.helper``.

Every IR node's output is the tensor named after the node id (its state_dict path); its
weights are initializers named by their state_dict keys. Lowerings read static shapes from
the IR (``meta['shape']``), so PyTorch's exact semantics (``ceil_mode``,
``count_include_pad``, adaptive windows) are rendered with explicit pads and slices rather
than relying on each runtime's reading of the same attribute.

>>> sorted(LOWERINGS)[:4]
['adaptive_avgpool', 'adaptive_maxpool', 'add', 'avgpool']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from onnx import helper

from inceptdsl.ir import Graph
from inceptdsl.ops import conv_padding, pool_padding, pool_stride
from inceptdsl.state import STATE, state_key


class Builder:
    """Collects nodes and initializers; ``tensor[node_id]`` is each IR node's output name."""

    def __init__(self, graph: Graph, state: dict[str, np.ndarray]):
        self.graph, self.state = graph, state
        self.nodes: list = []
        self.initializers: dict[str, Any] = {}
        self.tensor: dict[str, str] = {}

    def node(self, op_type: str, inputs: list[str], output: str, name: str | None = None,
             **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=name or output,
                                           **attrs))
        return output

    def const(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        """An initializer holding ``value`` (once per name)."""
        if name not in self.initializers:
            self.initializers[name] = np.ascontiguousarray(value, dtype)
        return name

    def write_initializers(self, graph: Any) -> None:
        """Fill ``graph.initializer`` in place (no proto copies: the weights are large)."""
        for name, array in self.initializers.items():
            tensor = graph.initializer.add()
            tensor.name = name
            tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
            tensor.dims.extend(array.shape)
            tensor.raw_data = array.tobytes()

    def weight(self, node_id: str, leaf: str) -> str:
        """The initializer of one state_dict entry of a node (``Mixed_5b.conv.weight``;
        ``leaf=""``: the node's own parameter, keyed by the node id)."""
        key = state_key(node_id, leaf)
        return self.const(key, self.state[key])

    def per_channel(self, nid: str, tensor: str, rank: int, tag: str) -> str:
        """A ``(C,)`` tensor viewed as ``C x 1 x 1`` (maps) to broadcast against NCHW."""
        if rank == 1:
            return tensor
        shape = self.const("per_channel.view", [-1, 1, 1], np.int64)
        return self.node("Reshape", [tensor, shape], f"{nid}:{tag}")

    def input_of(self, node_id: str, index: int = 0) -> str:
        return self.tensor[self.graph.inputs(node_id)[index]]

    def shape_of(self, node_id: str, index: int = 0) -> tuple:
        return self.graph.shape(self.graph.inputs(node_id)[index])


Lowering = Callable[[Builder, str, dict], str]
LOWERINGS: dict[str, Lowering] = {}


def lowers(*names: str) -> Callable[[Lowering], Lowering]:
    def register(fn: Lowering) -> Lowering:
        for name in names:
            LOWERINGS[name] = fn
        return fn
    return register


# ---------------------------------------------------------------------------- conv, linear


@lowers("conv2d")
def conv2d(b: Builder, nid: str, a: dict) -> str:
    _, h, w = b.shape_of(nid)
    top, bottom, left, right = conv_padding(a, (h, w))
    inputs = [b.input_of(nid), b.weight(nid, "weight")]
    if a["bias"]:
        inputs.append(b.weight(nid, "bias"))
    return b.node("Conv", inputs, nid, kernel_shape=list(a["kernel"]),
                  strides=list(a["stride"]), pads=[top, left, bottom, right],
                  dilations=list(a["dilation"]), group=a["groups"])


@lowers("linear")
def linear(b: Builder, nid: str, a: dict) -> str:
    inputs = [b.input_of(nid), b.weight(nid, "weight")]
    if a["bias"]:
        inputs.append(b.weight(nid, "bias"))
    return b.node("Gemm", inputs, nid, transB=1)


@lowers("batchnorm")
def batchnorm(b: Builder, nid: str, a: dict) -> str:
    channels = b.shape_of(nid)[0]
    held = STATE["batchnorm"](a, (channels,))  # scale=false: a shift only
    scale = b.weight(nid, "weight") if "weight" in held else \
        b.const(f"{nid}.ones", [1] * channels)
    bias = b.weight(nid, "bias") if "bias" in held else b.const(f"{nid}.zeros", [0] * channels)
    x = b.input_of(nid)
    if "running_mean" not in held:  # PyTorch then normalises with batch statistics
        return _batch_statistics_norm(b, nid, x, scale, bias, a["eps"])
    return b.node("BatchNormalization",
                  [x, scale, bias, b.weight(nid, "running_mean"), b.weight(nid, "running_var")],
                  nid, epsilon=a["eps"])


def _batch_statistics_norm(b: Builder, nid: str, x: str, scale: str, bias: str,
                           eps: float) -> str:
    rank = len(b.shape_of(nid)) + 1
    axes = [0, *range(2, rank)]
    view = [1, -1] + [1] * (rank - 2)
    normed = _normalise(b, nid, x, axes, eps)
    shape = b.const(f"{nid}.view", view, np.int64)
    gamma = b.node("Reshape", [scale, shape], f"{nid}:gamma")
    beta = b.node("Reshape", [bias, shape], f"{nid}:beta")
    return b.node("Add", [b.node("Mul", [normed, gamma], f"{nid}:scaled"), beta], nid)


@lowers("lrn")
def lrn(b: Builder, nid: str, a: dict) -> str:
    size, x = a["size"], b.input_of(nid)
    if size % 2:  # ONNX's window is PyTorch's for odd sizes
        return b.node("LRN", [x], nid, size=size, alpha=a["alpha"], beta=a["beta"], bias=a["k"])
    # even sizes: PyTorch pads size//2 before and (size-1)//2 after; spell it out
    sq = b.node("Mul", [x, x], f"{nid}:sq")
    axis = b.const(f"{nid}.axis1", [1], np.int64)
    sq5 = b.node("Unsqueeze", [sq, axis], f"{nid}:sq5")
    pads = b.const(f"{nid}.pads", [0, 0, size // 2, 0, 0, 0, 0, (size - 1) // 2, 0, 0], np.int64)
    padded = b.node("Pad", [sq5, pads], f"{nid}:padded")
    avg = b.node("AveragePool", [padded], f"{nid}:avg", kernel_shape=[size, 1, 1])
    avg = b.node("Squeeze", [avg, axis], f"{nid}:window")
    scaled = b.node("Mul", [avg, b.const(f"{nid}.alpha", a["alpha"])], f"{nid}:scaled")
    shifted = b.node("Add", [scaled, b.const(f"{nid}.k", a["k"])], f"{nid}:shifted")
    div = b.node("Pow", [shifted, b.const(f"{nid}.beta", a["beta"])], f"{nid}:div")
    return b.node("Div", [x, div], nid)


# ---------------------------------------------------------------------------- activations


def _unary(op_type: str, **attrs: Any) -> Lowering:
    return lambda b, nid, a: b.node(op_type, [b.input_of(nid)], nid, **attrs)


for _name, _op in (("relu", "Relu"), ("sigmoid", "Sigmoid"), ("tanh", "Tanh"),
                   ("hardswish", "HardSwish")):
    LOWERINGS[_name] = _unary(_op)
LOWERINGS["elu"] = _unary("Elu", alpha=1.0)
LOWERINGS["hardsigmoid"] = _unary("HardSigmoid", alpha=1 / 6, beta=0.5)  # relu6(x + 3) / 6
LOWERINGS["softmax"] = _unary("Softmax", axis=1)


@lowers("leaky_relu")
def leaky_relu(b: Builder, nid: str, a: dict) -> str:
    return b.node("LeakyRelu", [b.input_of(nid)], nid, alpha=a["slope"])


@lowers("relu6")
def relu6(b: Builder, nid: str, a: dict) -> str:
    return b.node("Clip", [b.input_of(nid), b.const("relu6.min", 0.0),
                           b.const("relu6.max", 6.0)], nid)


@lowers("silu")
def silu(b: Builder, nid: str, a: dict) -> str:
    x = b.input_of(nid)
    return b.node("Mul", [x, b.node("Sigmoid", [x], f"{nid}:sigmoid")], nid)


@lowers("gelu")
def gelu(b: Builder, nid: str, a: dict) -> str:
    """``0.5 x (1 + erf(x / sqrt 2))``, PyTorch's exact GELU (ONNX Gelu needs opset 20), or
    with ``approximate='tanh'`` ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``."""
    x = b.input_of(nid)
    if a.get("approximate", "none") == "tanh":
        cube = b.node("Mul", [b.node("Mul", [x, x], f"{nid}:sq"), x], f"{nid}:cube")
        inner = b.node("Add", [x, b.node("Mul", [cube, b.const("gelu.c", 0.044715)],
                                         f"{nid}:cube_c")], f"{nid}:inner")
        scaled = b.node("Mul", [inner, b.const("gelu.k", math.sqrt(2 / math.pi))],
                        f"{nid}:scaled")
        erf = b.node("Tanh", [scaled], f"{nid}:tanh")
    else:
        scaled = b.node("Mul", [x, b.const("gelu.rsqrt2", 1 / math.sqrt(2))], f"{nid}:scaled")
        erf = b.node("Erf", [scaled], f"{nid}:erf")
    one = b.node("Add", [erf, b.const("gelu.one", 1.0)], f"{nid}:one_plus")
    half = b.node("Mul", [x, b.const("gelu.half", 0.5)], f"{nid}:half")
    return b.node("Mul", [half, one], nid)


# ---------------------------------------------------------------------------- pools


def _pool_geometry(b: Builder, nid: str, a: dict) -> tuple:
    """Stride, dilation and ONNX pads ``[top, left, bottom, right]``: the spec's padding
    (symmetric, asymmetric or TensorFlow 'same'), plus end padding so that a floor-mode
    window count gives the IR's output size (PyTorch's ``ceil_mode``)."""
    stride = pool_stride(a)
    dilation = a.get("dilation", (1, 1))
    size, out = b.shape_of(nid)[1:], b.graph.shape(nid)[1:]
    top, bottom, left, right = pool_padding(a, tuple(size))
    extra = [max(0, (o - 1) * s + d * (k - 1) + 1 - (n + p0 + p1))
             for n, o, k, s, d, p0, p1 in zip(size, out, a["kernel"], stride, dilation,
                                               (top, left), (bottom, right), strict=True)]
    return stride, dilation, [top, left, bottom, right], extra


@lowers("maxpool")
def maxpool(b: Builder, nid: str, a: dict) -> str:
    stride, dilation, (top, left, bottom, right), extra = _pool_geometry(b, nid, a)
    return b.node("MaxPool", [b.input_of(nid)], nid, kernel_shape=list(a["kernel"]),
                  strides=list(stride), pads=[top, left, bottom + extra[0], right + extra[1]],
                  dilations=list(dilation))


@lowers("avgpool")
def avgpool(b: Builder, nid: str, a: dict) -> str:
    """PyTorch's divisor: padding counts (if ``count_include_pad``), the ceil overhang never."""
    stride, _, pads, extra = _pool_geometry(b, nid, a)
    top, left, bottom, right = pads
    x = b.input_of(nid)
    common = {"kernel_shape": list(a["kernel"]), "strides": list(stride)}
    if a["count_include_pad"] and any(pads) and any(extra):
        pad = b.const(f"{nid}.pads", [0, 0, top, left, 0, 0, bottom, right], np.int64)
        x = b.node("Pad", [x, pad], f"{nid}:padded")
        return b.node("AveragePool", [x], nid, pads=[0, 0, *extra], count_include_pad=0,
                      **common)
    include = int(a["count_include_pad"] and not any(extra))
    return b.node("AveragePool", [x], nid,
                  pads=[top, left, bottom + extra[0], right + extra[1]],
                  count_include_pad=include, **common)


@lowers("global_avgpool")
def global_avgpool(b: Builder, nid: str, a: dict) -> str:
    return b.node("GlobalAveragePool", [b.input_of(nid)], nid)


def _adaptive(kind: str) -> Lowering:
    """PyTorch's adaptive windows: uniform ones as one pool, others axis by axis."""
    pool, global_pool, reduce = {"avg": ("AveragePool", "GlobalAveragePool", "ReduceMean"),
                                 "max": ("MaxPool", "GlobalMaxPool", "ReduceMax")}[kind]

    def lower(b: Builder, nid: str, a: dict) -> str:
        size, out = b.shape_of(nid)[1:], tuple(a["size"])
        x = b.input_of(nid)
        if out == (1, 1):
            return b.node(global_pool, [x], nid)
        if all(n % o == 0 for n, o in zip(size, out, strict=True)):
            kernel = [n // o for n, o in zip(size, out, strict=True)]
            return b.node(pool, [x], nid, kernel_shape=kernel, strides=kernel)
        for axis, (n, o) in enumerate(zip(size, out, strict=True), start=2):
            x = _adaptive_axis(b, nid, x, axis, n, o, reduce, last=axis == 3)
        return x
    return lower


def _adaptive_axis(b: Builder, nid: str, x: str, axis: int, n: int, o: int, reduce: str,
                   last: bool) -> str:
    parts = []
    for i in range(o):
        start, end = (i * n) // o, -(-((i + 1) * n) // o)
        piece = b.node("Slice", [x, b.const(f"{nid}.start{axis}_{i}", [start], np.int64),
                                 b.const(f"{nid}.end{axis}_{i}", [end], np.int64),
                                 b.const(f"{nid}.axis{axis}", [axis], np.int64)],
                       f"{nid}:slice{axis}_{i}")
        parts.append(b.node(reduce, [piece], f"{nid}:{reduce.lower()}{axis}_{i}", axes=[axis],
                            keepdims=1))
    return b.node("Concat", parts, nid if last else f"{nid}:axis{axis}", axis=axis)


LOWERINGS["adaptive_avgpool"] = _adaptive("avg")
LOWERINGS["adaptive_maxpool"] = _adaptive("max")


# ---------------------------------------------------------------------------- the rest


def _alias(b: Builder, nid: str, a: dict) -> str:
    """No node: the output is the input tensor (eval-mode dropout, identity)."""
    return b.input_of(nid)


LOWERINGS["dropout"] = _alias
LOWERINGS["identity"] = _alias
LOWERINGS["drop_path"] = _alias


# ---------------------------------------------------------------------------- norms, scales


def _normalise(b: Builder, nid: str, x: str, axes: list[int], eps: float) -> str:
    """``(x - mean) / sqrt(var + eps)`` over ``axes`` (biased variance, as PyTorch)."""
    mean = b.node("ReduceMean", [x], f"{nid}:mean", axes=axes, keepdims=1)
    centred = b.node("Sub", [x, mean], f"{nid}:centred")
    var = b.node("ReduceMean", [b.node("Mul", [centred, centred], f"{nid}:sq")], f"{nid}:var",
                 axes=axes, keepdims=1)
    std = b.node("Sqrt", [b.node("Add", [var, b.const(f"{nid}.eps", eps)], f"{nid}:var_eps")],
                 f"{nid}:std")
    return b.node("Div", [centred, std], f"{nid}:normed")


def _affine(b: Builder, nid: str, x: str, a: dict, rank: int) -> str:
    if not a["affine"]:
        return b.node("Identity", [x], nid)
    w = b.per_channel(nid, b.weight(nid, "weight"), rank, "w")
    bias = b.per_channel(nid, b.weight(nid, "bias"), rank, "b")
    return b.node("Add", [b.node("Mul", [x, w], f"{nid}:scaled"), bias], nid)


@lowers("layernorm")
def layernorm(b: Builder, nid: str, a: dict) -> str:
    """nn.LayerNorm on vectors; timm's LayerNorm2d on maps (over C at each position)."""
    rank = len(b.shape_of(nid))
    return _affine(b, nid, _normalise(b, nid, b.input_of(nid), [1], a["eps"]), a, rank)


@lowers("groupnorm")
def groupnorm(b: Builder, nid: str, a: dict) -> str:
    c, h, w = b.shape_of(nid)
    grouped = b.node("Reshape", [b.input_of(nid),
                                 b.const(f"{nid}.grouped", [0, a["groups"], -1], np.int64)],
                     f"{nid}:grouped")
    normed = _normalise(b, nid, grouped, [2], a["eps"])
    back = b.node("Reshape", [normed, b.const(f"{nid}.map", [0, c, h, w], np.int64)],
                  f"{nid}:map")
    return _affine(b, nid, back, a, 3)


@lowers("layer_scale")
def layer_scale(b: Builder, nid: str, a: dict) -> str:
    rank = len(b.shape_of(nid))
    gamma = b.per_channel(nid, b.weight(nid, ""), rank, "gamma")
    # the initializer holds the node id (timm's ``gamma`` key), so the output is renamed
    return b.node("Mul", [b.input_of(nid), gamma], f"{nid}:out", name=nid)


@lowers("mul")
def mul(b: Builder, nid: str, a: dict) -> str:
    """Elementwise product with NumPy broadcasting (a C x 1 x 1 gate), pairwise."""
    inputs = [b.tensor[i] for i in b.graph.inputs(nid)]
    out = inputs[0]
    for k, other in enumerate(inputs[1:], start=1):
        out = b.node("Mul", [out, other], nid if k == len(inputs) - 1 else f"{nid}:{k}")
    return out


@lowers("flatten")
def flatten(b: Builder, nid: str, a: dict) -> str:
    return b.node("Flatten", [b.input_of(nid)], nid, axis=1)


@lowers("l2norm")
def l2norm(b: Builder, nid: str, a: dict) -> str:
    """``F.normalize(x, dim=1)``: ``x / max(||x||, eps)``."""
    x = b.input_of(nid)
    norm = b.node("ReduceL2", [x], f"{nid}:norm", axes=[1], keepdims=1)
    clamped = b.node("Max", [norm, b.const(f"{nid}.eps", a["eps"])], f"{nid}:clamped")
    return b.node("Div", [x, clamped], nid)


@lowers("scale")
def scale(b: Builder, nid: str, a: dict) -> str:
    return b.node("Mul", [b.input_of(nid), b.const(f"{nid}.factor", a["factor"])], nid)


@lowers("concat")
def concat(b: Builder, nid: str, a: dict) -> str:
    inputs = [b.tensor[i] for i in b.graph.inputs(nid)]
    return b.node("Concat", inputs, nid, axis=1)


@lowers("add")
def add(b: Builder, nid: str, a: dict) -> str:
    inputs = [b.tensor[i] for i in b.graph.inputs(nid)]
    return b.node("Add" if len(inputs) == 2 else "Sum", inputs, nid)


@lowers("slice")
def slice_(b: Builder, nid: str, a: dict) -> str:
    return b.node("Slice", [b.input_of(nid), b.const(f"{nid}.start", [a["start"]], np.int64),
                            b.const(f"{nid}.stop", [a["stop"]], np.int64),
                            b.const("channels.axis", [1], np.int64)], nid)


@lowers("input")
def input_(b: Builder, nid: str, a: dict) -> str:
    return nid


