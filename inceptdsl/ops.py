"""The op set: each op defined once, with its attributes, shape rule and cost rule.

An :class:`OpDef` holds everything the analysis needs; each backend registers one lowering
per op name (see ``backends/torch/lowering.py``). Adding an op means adding one definition
here and one lowering per backend.

Shapes exclude the batch: ``(C, H, W)`` for feature maps, ``(F,)`` for vectors. Shape rules
only do arithmetic on the channel count, so they also run on symbolic channels
(:class:`~inceptdsl.expr.Sym`) when the code generators derive constructor arguments.

>>> conv = OPS["conv2d"]
>>> attrs = conv.bind([64, 3], {"stride": 2}, None)
>>> conv.shape(attrs, [(3, 224, 224)])
(64, 111, 111)
>>> conv.macs(attrs, [(3, 224, 224)], (64, 111, 111))
21290688
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import SpecError, did_you_mean
from .expr import BUILTINS, is_symbolic, names_in

Shape = tuple
REQUIRED = object()


class OpError(Exception):
    """A problem with an op's arguments or inputs; the caller adds the location."""

    def __init__(self, message: str, attr: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.attr, self.hint = attr, hint


@dataclass
class Attr:
    """One attribute: its name, kind (for validation and normalisation) and default."""

    name: str
    kind: str = "any"
    default: Any = REQUIRED
    doc: str = ""


def _zero(*_: Any) -> int:
    return 0


@dataclass
class OpDef:
    """An op: attribute schema, shape rule and cost rules side by side."""

    name: str
    attrs: list[Attr]
    shape: Callable[[dict, list[Shape]], Shape]
    doc: str
    params: Callable[[dict, list[Shape]], int] = _zero
    buffers: Callable[[dict, list[Shape]], int] = _zero
    macs: Callable[[dict, list[Shape], Shape], int] = _zero
    flops: Callable[[dict, list[Shape], Shape], int] = _zero
    check: Callable[[dict, list[Shape]], None] = _zero
    arity: int = 1  # 0 means any number (>= 1) of inputs
    kind: str = "other"  # for colours and legends: conv, norm, act, pool, linear, merge...
    aliases: tuple[str, ...] = ()
    example: str = ""
    width_attr: str | None = None  # the channel count the global width knob scales
    module: bool = True  # False: a learned tensor held by the enclosing module, not a layer

    def bind(self, args: list, kwargs: dict, _span: Any) -> dict:
        """Bind call arguments to attributes, filling defaults and normalising kinds."""
        if len(args) > len(self.attrs):
            raise OpError(f"{self.name}() takes at most {len(self.attrs)} positional "
                          f"arguments ({len(args)} given)")
        bound = {a.name: v for a, v in zip(self.attrs, args, strict=False)}
        known = {a.name for a in self.attrs}
        for key, value in kwargs.items():
            if key not in known:
                raise OpError(f"{self.name}() has no argument '{key}'", key,
                              hint=did_you_mean(key, known) or
                              f"its arguments are: {', '.join(a.name for a in self.attrs)}")
            if key in bound:
                raise OpError(f"{self.name}() got '{key}' twice", key)
            bound[key] = value
        for a in self.attrs:
            if a.name not in bound:
                if a.default is REQUIRED:
                    raise OpError(f"{self.name}() is missing its argument '{a.name}'")
                bound[a.name] = a.default
            bound[a.name] = _coerce(self.name, a, bound[a.name])
        return bound

    @property
    def stateful(self) -> bool:
        """Whether the op holds parameters or buffers (and so needs a module)."""
        return self.params is not _zero or self.buffers is not _zero


def scale_width(op: OpDef, attrs: dict, call: Any, width: float,
                follows: frozenset[str] = frozenset({"in_channels"})) -> dict:
    """Apply the width knob to an op's channel attribute (rounded to a multiple of 8).

    A channel count scales once, where it is written: counts written in terms of a name in
    ``follows`` (``in_channels``, or a block parameter, scaled where the block is called)
    are already scaled and are left alone. Works on symbolic values too.

    >>> from inceptdsl.expr import parse
    >>> conv = OPS["conv2d"]
    >>> scale_width(conv, {"out": 64}, parse("conv(64, 3)"), 0.5)["out"]
    32
    >>> scale_width(conv, {"out": 48}, parse("conv(in_channels, 1)"), 0.5)["out"]
    48

    The scaled count meets the same limits as a written one:

    >>> try:
    ...     scale_width(conv, {"out": 64}, parse("conv(64, 3)"), 1e5)
    ... except Exception as exc:
    ...     print(exc.message)
    conv2d() argument 'out': 6400000 is out of range (1..1000000) (64 scaled by width=100000)
    """
    if op.width_attr is None or width == 1.0:
        return attrs
    name = op.width_attr
    written = channel_arg(op, call)
    attr = op.attrs[[a.name for a in op.attrs].index(name)]
    return {**attrs, name: scale_channels(attrs[name], written, follows, width,
                                          limits=(op.name, attr))}


def channel_arg(op: OpDef, call: Any) -> Any:
    """The expression a call writes for an op's channel attribute (or None)."""
    index = [a.name for a in op.attrs].index(op.width_attr)
    if op.width_attr in call.kwargs:
        return call.kwargs[op.width_attr]
    return call.args[index] if index < len(call.args) else None


def scale_channels(value: Any, written: Any, follows: frozenset[str], width: float,
                   limits: tuple[str, Attr] | None = None) -> Any:
    """A channel count written as ``written``, scaled by ``width`` unless it follows a name
    that is already scaled, or scales itself (it names ``width``).

    With ``limits`` (an op's name and attribute), the scaled count meets the same limits
    as a written one, and an error points at what was written.

    >>> from inceptdsl.expr import parse
    >>> scale_channels(96, parse("96"), frozenset(), 0.5)
    48
    >>> scale_channels(96, parse("c * 2"), frozenset({"c"}), 0.5)
    96
    """
    if width == 1.0 or written is None or names_in(written) & (follows | {"width"}):
        return value
    scaled = BUILTINS["make_divisible"](value * width)
    if limits is None:
        return scaled
    owner, attr = limits
    try:
        return _coerce(owner, attr, scaled)
    except OpError as exc:
        raise SpecError(f"{exc} ({value} scaled by width={width:g})", written.span) from None


# ---------------------------------------------------------------------------- kinds


def _coerce(op: str, attr: Attr, value: Any) -> Any:
    if is_symbolic(value) or attr.kind == "any":
        return value
    fn = _KINDS[attr.kind]
    try:
        return fn(value)
    except (TypeError, ValueError) as exc:
        raise OpError(f"{op}() argument '{attr.name}': {exc}", attr.name) from None


def _int(value: Any, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value != int(value):
        raise ValueError(f"expected a whole number, found {_short(value)}")
    if not low <= int(value) <= 1_000_000:
        raise ValueError(f"{int(value)} is out of range ({low}..1000000)")
    return int(value)


def _short(value: Any) -> str:
    """A value for an error message, cut short if its text is long.

    >>> _short(list(range(100)))[-5:]
    '... ]'
    """
    text = repr(value)
    return text if len(text) <= 60 else text[:55] + " ... " + text[-1]


def _pos(value: Any) -> int:
    return _int(value, 1)


def _pair(value: Any, low: int = 1) -> tuple:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"expected a number or [h, w], found {list(value)!r}")
        return tuple(v if is_symbolic(v) else _int(v, low) for v in value)
    v = _int(value, low)
    return (v, v)


def _pair0(value: Any) -> tuple:
    return _pair(value, 0)


def _opt_pair(value: Any) -> tuple | None:
    return None if value is None else _pair(value)


def _padding(value: Any) -> Any:
    if isinstance(value, str):
        if value not in ("same", "valid"):
            raise ValueError(f"padding is a number, [h, w], [top, bottom, left, right], "
                             f"'same' or 'valid', found '{value}'")
        return str(value)
    if isinstance(value, (list, tuple)) and len(value) == 4:
        return tuple(v if is_symbolic(v) else _int(v) for v in value)
    return _pair(value, 0)


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, found {value!r}")
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return float(value)


def _prob(value: Any) -> float:
    value = _float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a probability in [0, 1], found {value}")
    return value


def _gelu_approx(value: Any) -> str:
    if value not in ("none", "tanh"):
        raise ValueError(f"approximate is 'none' or 'tanh', found {value!r}")
    return str(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, found {value!r}")
    return value


_KINDS: dict[str, Callable[[Any], Any]] = {
    "int": _int, "pos": _pos, "pair": _pair, "pair0": _pair0, "opt_pair": _opt_pair,
    "padding": _padding, "float": _float, "prob": _prob, "bool": _bool,
    "gelu_approx": _gelu_approx,
}


# ---------------------------------------------------------------------------- helpers


def numel(shape: Shape) -> int:
    return math.prod(shape)


def _spatial(shape: Shape, op: str) -> tuple[Any, int, int]:
    if len(shape) != 3:
        raise OpError(f"{op} expects a C x H x W feature map, got a vector of {shape[0]}",
                      hint="put it before 'flatten'")
    return shape


def _flat(shape: Shape, op: str) -> Any:
    if len(shape) != 1:
        raise OpError(f"{op} expects a flat vector, got {fmt_shape(shape)}",
                      hint="add 'flatten' (or a global pool and 'flatten') before it")
    return shape[0]


def fmt_shape(shape: Shape) -> str:
    """``(768, 17, 17)`` -> ``768x17x17``."""
    return "x".join(str(d) for d in shape)


def conv_padding(attrs: dict, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Explicit (top, bottom, left, right) padding, resolving 'same' like TensorFlow.

    'same' pads ``max((ceil(L / s) - 1) * s + (k - 1) * d + 1 - L, 0)`` in all, the odd
    one at the end (bottom, right), so the output length is ``ceil(L / s)``.

    >>> conv_padding({"pad": "same", "kernel": (3, 3), "stride": (2, 2),
    ...               "dilation": (1, 1)}, (8, 8))
    (0, 1, 0, 1)
    """
    pad = attrs["pad"]
    if pad == "valid":
        return (0, 0, 0, 0)
    if pad == "same":
        out = []
        for length, k, s, d in zip(size, attrs["kernel"], attrs["stride"], attrs["dilation"],
                                   strict=True):
            total = max((math.ceil(length / s) - 1) * s + (k - 1) * d + 1 - length, 0)
            out += [total // 2, total - total // 2]
        return tuple(out)
    if len(pad) == 4:
        return tuple(pad)
    return (pad[0], pad[0], pad[1], pad[1])


def pool_padding(attrs: dict, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A pool's explicit (top, bottom, left, right) padding; 'same' as in TensorFlow.

    >>> pool_padding({"pad": "same", "kernel": (3, 3), "stride": (2, 2)}, (74, 74))
    (0, 1, 0, 1)
    >>> pool_padding({"pad": (1, 1), "kernel": (3, 3), "stride": None}, (74, 74))
    (1, 1, 1, 1)
    """
    kernel, stride, _, dilation = _pool_geometry(attrs)
    return conv_padding({"pad": attrs["pad"], "kernel": kernel, "stride": stride,
                         "dilation": dilation}, size)


def same_at_stride_one(attrs: dict) -> bool:
    """Whether a conv's 'same' padding is PyTorch's own ``padding='same'``: at stride 1 it
    does not depend on the input size, so it holds for any kernel, even a symbolic one.

    >>> same_at_stride_one({"pad": "same", "stride": (1, 1)})
    True
    """
    return attrs["pad"] == "same" and not is_symbolic(attrs["stride"]) \
        and tuple(attrs["stride"]) == (1, 1)


def conv_out(length: int, k: int, s: int, d: int, before: int, after: int,
             ceil: bool = False) -> int:
    """PyTorch's output length for a conv or pool window (floor, or ``ceil_mode``).

    >>> conv_out(112, 3, 2, 1, 0, 0, ceil=True), conv_out(112, 3, 2, 1, 0, 0)
    (56, 55)
    """
    span = length + before + after - d * (k - 1) - 1
    if ceil:
        out = -(-span // s) + 1
        if (out - 1) * s >= length + before:  # the last window must start inside
            out -= 1
        return out
    return span // s + 1


# ---------------------------------------------------------------------------- conv


def _conv_check(a: dict, ins: list[Shape]) -> None:
    c, h, w = _spatial(ins[0], "conv2d")
    if c % a["groups"] or a["out"] % a["groups"]:
        raise OpError(f"conv2d groups={a['groups']} must divide both input channels ({c}) "
                      f"and output channels ({a['out']})", "groups")
    pads = conv_padding(a, (h, w))
    for length, k, s, d, p0, p1, axis in _axes(a, (h, w), pads):
        if conv_out(length, k, s, d, p0, p1) < 1:
            raise OpError(f"conv2d kernel {k} (dilation {d}) does not fit the input "
                          f"{axis} {length} with padding {p0}+{p1}", "kernel")


def _axes(a: dict, size: tuple, pads: tuple) -> list:
    return [(size[0], a["kernel"][0], a["stride"][0], a["dilation"][0], pads[0], pads[1], "height"),
            (size[1], a["kernel"][1], a["stride"][1], a["dilation"][1], pads[2], pads[3], "width")]


def _conv_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = _spatial(ins[0], "conv2d")
    if is_symbolic((h, w)) or is_symbolic(a["kernel"]) or is_symbolic(a["stride"]) \
            or is_symbolic(a["pad"]) or is_symbolic(a["dilation"]):
        return (a["out"], None, None)
    pads = conv_padding(a, (h, w))
    dims = [conv_out(length, k, s, d, p0, p1)
            for length, k, s, d, p0, p1, _ in _axes(a, (h, w), pads)]
    return (a["out"], *dims)


def _conv_params(a: dict, ins: list[Shape]) -> int:
    k = a["kernel"][0] * a["kernel"][1]
    return a["out"] * (ins[0][0] // a["groups"]) * k + (a["out"] if a["bias"] else 0)


def _conv_macs(a: dict, ins: list[Shape], out: Shape) -> int:
    k = a["kernel"][0] * a["kernel"][1]
    return numel(out) * (ins[0][0] // a["groups"]) * k


def _conv_flops(a: dict, ins: list[Shape], out: Shape) -> int:
    return 2 * _conv_macs(a, ins, out) + (numel(out) if a["bias"] else 0)


# ---------------------------------------------------------------------------- pools


def _pool_attrs(avg: bool) -> list[Attr]:
    attrs = [Attr("kernel", "pair"), Attr("stride", "opt_pair", None),
             Attr("pad", "padding", 0, "int, [h, w], [top, bottom, left, right], "
                  "'same' or 'valid'"), Attr("ceil", "bool", False)]
    if avg:
        attrs.append(Attr("count_include_pad", "bool", True))
    else:
        attrs.append(Attr("dilation", "pair", 1))
    return attrs


def pool_stride(a: dict) -> Any:
    """A pool's stride: as written, else its kernel (PyTorch's default).

    >>> pool_stride({"kernel": (3, 3), "stride": None}), pool_stride({"kernel": 3, "stride": 1})
    ((3, 3), 1)
    """
    return a["stride"] if a["stride"] is not None else a["kernel"]


def _pool_geometry(a: dict) -> tuple:
    stride = pool_stride(a)
    dilation = a.get("dilation", (1, 1))
    return a["kernel"], stride, a["pad"], dilation


def _pool_shape(a: dict, ins: list[Shape]) -> Shape:
    c, h, w = _spatial(ins[0], "pool")
    kernel, stride, pad, dil = _pool_geometry(a)
    if is_symbolic((h, w, kernel, stride, pad, dil)):
        return (c, None, None)
    pads = pool_padding(a, (h, w))
    dims = [conv_out(length, k, s, d, p0, p1, a["ceil"])
            for length, k, s, d, p0, p1 in zip((h, w), kernel, stride, dil, pads[0::2],
                                                pads[1::2], strict=True)]
    return (c, *dims)


def _pool_check(a: dict, ins: list[Shape]) -> None:
    _, h, w = _spatial(ins[0], "pool")
    kernel = a["kernel"]
    pads = pool_padding(a, (h, w))
    for k, p in zip(kernel * 2, pads[0::2] + pads[1::2], strict=True):
        if p > k // 2:
            raise OpError(f"pool padding {p} must be at most half the kernel ({k})", "pad")
    if a["ceil"] and (a["pad"] == "same" or pads[0] != pads[1] or pads[2] != pads[3]):
        raise OpError("pool 'ceil' works with symmetric padding only", "ceil",
                      hint="'same' padding already rounds the output size up")
    out = _pool_shape(a, ins)
    if out[1] < 1 or out[2] < 1:
        raise OpError(f"pool kernel {fmt_shape(kernel)} does not fit the input {h}x{w}",
                      "kernel")


def _pool_flops(a: dict, ins: list[Shape], out: Shape) -> int:
    return numel(out) * a["kernel"][0] * a["kernel"][1]


def _adaptive_shape(a: dict, ins: list[Shape]) -> Shape:
    c, _, _ = _spatial(ins[0], "adaptive pool")
    return (c, *a["size"])


def _global_shape(a: dict, ins: list[Shape]) -> Shape:
    c, _, _ = _spatial(ins[0], "global_avgpool")
    return (c, 1, 1)


# ---------------------------------------------------------------------------- others


def _same(a: dict, ins: list[Shape]) -> Shape:
    return ins[0]


def _per_element(n: int) -> Callable:
    return lambda a, ins, out: n * numel(out)


def _bn_params(a: dict, ins: list[Shape]) -> int:
    """The shift (beta) per channel, and the scale (gamma) unless ``scale=false``."""
    if not a["affine"]:
        return 0
    return (2 if a["scale"] else 1) * ins[0][0]


def _bn_buffers(a: dict, ins: list[Shape]) -> int:
    return 2 * ins[0][0] + 1 if a["track_running_stats"] else 0


def _linear_shape(a: dict, ins: list[Shape]) -> Shape:
    _flat(ins[0], "linear")
    return (a["out"],)


def _linear_params(a: dict, ins: list[Shape]) -> int:
    return ins[0][0] * a["out"] + (a["out"] if a["bias"] else 0)


def _linear_macs(a: dict, ins: list[Shape], out: Shape) -> int:
    return ins[0][0] * a["out"]


def _flatten_shape(a: dict, ins: list[Shape]) -> Shape:
    shape = ins[0]
    if len(shape) == 1:
        return shape
    c, h, w = shape
    return (c * h * w,)


def _concat_check(a: dict, ins: list[Shape]) -> None:
    first = ins[0]
    for shape in ins[1:]:
        if len(shape) != len(first) or tuple(shape[1:]) != tuple(first[1:]):
            sizes = ", ".join(fmt_shape(s) for s in ins)
            raise OpError(f"concat needs equal spatial sizes, got {sizes}",
                          hint="check the strides and padding of the branches")


def _concat_shape(a: dict, ins: list[Shape]) -> Shape:
    return (sum(s[0] for s in ins), *ins[0][1:])


def broadcast_shape(op: str, ins: list[Shape]) -> Shape:
    """The shape of an elementwise merge: equal shapes, or sizes of 1 broadcast (NumPy rule).

    An SE gate (``C x 1 x 1``) scales a ``C x H x W`` map:

    >>> broadcast_shape("mul", [(256, 35, 35), (256, 1, 1)])
    (256, 35, 35)
    """
    out = list(ins[0])
    for shape in ins[1:]:
        if len(shape) != len(out) or any(
                a != b and 1 not in (a, b) for a, b in zip(out, shape, strict=True)):
            sizes = ", ".join(fmt_shape(s) for s in ins)
            raise OpError(f"{op} needs equal shapes, got {sizes}",
                          hint="sizes of 1 broadcast (C x 1 x 1 against C x H x W); make the "
                               "branch output channels match the input (e.g. "
                               "conv(in_channels, 1))")
        out = [b if a == 1 else a for a, b in zip(out, shape, strict=True)]
    return tuple(out)


def _merge_check(op: str) -> Callable:
    return lambda a, ins: broadcast_shape(op, ins) and None


def _merge_shape(op: str) -> Callable:
    return lambda a, ins: broadcast_shape(op, ins)


def _merge_flops(a: dict, ins: list[Shape], out: Shape) -> int:
    """One operation per output element for each input after the first (FLOPs, not MACs)."""
    return (len(ins) - 1) * numel(out)


def _norm_params(a: dict, ins: list[Shape]) -> int:
    return 2 * ins[0][0] if a["affine"] else 0


def _group_check(a: dict, ins: list[Shape]) -> None:
    _spatial(ins[0], "groupnorm")
    if ins[0][0] % a["groups"]:
        raise OpError(f"groupnorm groups={a['groups']} must divide the channels "
                      f"({ins[0][0]})", "groups")


def _slice_shape(a: dict, ins: list[Shape]) -> Shape:
    return (a["stop"] - a["start"], *ins[0][1:])


def _slice_check(a: dict, ins: list[Shape]) -> None:
    if not 0 <= a["start"] < a["stop"] <= ins[0][0]:
        raise OpError(f"slice({a['start']}, {a['stop']}) must pick a non-empty range of the "
                      f"{ins[0][0]} input channels", "stop")


def _layer_scale_params(a: dict, ins: list[Shape]) -> int:
    return ins[0][0]


def _lrn_flops(a: dict, ins: list[Shape], out: Shape) -> int:
    return (a["size"] + 3) * numel(out)


_ACT_DOC = "elementwise activation"


def _activation(name: str, torch_doc: str, attrs: list[Attr] | None = None) -> OpDef:
    return OpDef(name, attrs or [], _same, f"{_ACT_DOC}: {torch_doc}", flops=_per_element(1),
                 kind="act", example=name)


OP_LIST: list[OpDef] = [
    OpDef("conv2d", [
        Attr("out", "pos", doc="output channels"), Attr("kernel", "pair"),
        Attr("stride", "pair", 1), Attr("pad", "padding", 0, "int, [h, w], "
             "[top, bottom, left, right], 'same' or 'valid'"),
        Attr("dilation", "pair", 1), Attr("groups", "pos", 1), Attr("bias", "bool", True)],
        _conv_shape, "2-D convolution (PyTorch semantics: floor output size).",
        params=_conv_params, macs=_conv_macs, flops=_conv_flops, check=_conv_check,
        kind="conv", aliases=("conv",), example="conv(192, [1, 7], pad=[0, 3])",
        width_attr="out"),
    OpDef("batchnorm", [Attr("eps", "float", 1e-5), Attr("momentum", "float", 0.1),
                        Attr("affine", "bool", True), Attr("track_running_stats", "bool", True),
                        Attr("scale", "bool", True, "learn a scale (gamma); false: the "
                             "affine part is a shift (beta) only, as Keras scale=False")],
          _same, "Batch normalisation over channels (2-d on maps, 1-d on vectors); "
          "`scale=false` keeps only the learned shift.",
          params=_bn_params, buffers=_bn_buffers, flops=_per_element(2), kind="norm",
          aliases=("bn",), example="batchnorm(eps=0.001)"),
    OpDef("lrn", [Attr("size", "pos"), Attr("alpha", "float", 1e-4),
                  Attr("beta", "float", 0.75), Attr("k", "float", 1.0)],
          _same, "Local response normalisation across channels.", flops=_lrn_flops,
          kind="norm", example="lrn(5, alpha=0.0001, beta=0.75)"),
    _activation("relu", "max(x, 0)"),
    _activation("relu6", "min(max(x, 0), 6)"),
    _activation("gelu", "Gaussian error linear unit (exact, or approximate='tanh')",
                [Attr("approximate", "gelu_approx", "none")]),
    OpDef("silu", [], _same, f"{_ACT_DOC}: x * sigmoid(x)", flops=_per_element(1),
          kind="act", aliases=("swish",), example="silu"),
    _activation("sigmoid", "1 / (1 + exp(-x))"),
    _activation("hardsigmoid", "relu6(x + 3) / 6"),
    _activation("tanh", "hyperbolic tangent"),
    _activation("elu", "exponential linear unit"),
    _activation("hardswish", "x * relu6(x + 3) / 6"),
    _activation("leaky_relu", "max(x, slope * x)", [Attr("slope", "float", 0.01)]),
    OpDef("softmax", [], _same, "Softmax over channels (dim 1 of NCHW, or of a vector).",
          flops=_per_element(3), kind="act", example="softmax"),
    OpDef("layernorm", [Attr("eps", "float", 1e-5), Attr("affine", "bool", True)], _same,
          "Layer normalisation over channels: nn.LayerNorm on vectors, timm's LayerNorm2d "
          "on C x H x W maps (each position normalised over its C channels).",
          params=_norm_params, flops=_per_element(5), kind="norm",
          example="layernorm(eps=1e-6)"),
    OpDef("groupnorm", [Attr("groups", "pos"), Attr("eps", "float", 1e-5),
                        Attr("affine", "bool", True)], _same,
          "Group normalisation of a C x H x W map (groups must divide C).",
          params=_norm_params, check=_group_check, flops=_per_element(5), kind="norm",
          example="groupnorm(8)"),
    OpDef("layer_scale", [Attr("init", "float", 1e-6)], _same,
          "A learned per-channel scale (ConvNeXt's layer scale): a parameter of C values "
          "starting at `init`, held by the enclosing module under the layer's name "
          "(timm's `gamma`).", params=_layer_scale_params, flops=_per_element(1),
          kind="act", example="layer_scale(1e-6)", module=False),
    OpDef("drop_path", [Attr("p", "prob", 0.0)], _same,
          "Stochastic depth: in training, zeroes whole samples with probability p and "
          "scales the others by 1 / (1 - p); identity in eval.", kind="reg",
          example="drop_path(0.1)"),
    OpDef("slice", [Attr("start", "int"), Attr("stop", "pos")], _slice_shape,
          "Channels start..stop-1 of the input (x[:, start:stop]).", check=_slice_check,
          kind="reshape", example="slice(0, 16)"),
    OpDef("maxpool", _pool_attrs(False), _pool_shape,
          "Max pooling; stride defaults to the kernel; `ceil` is PyTorch's ceil_mode; "
          "`pad='same'` pads like TensorFlow (the odd pixel at the end).",
          flops=_pool_flops, check=_pool_check, kind="pool",
          example="maxpool(3, stride=2, ceil=true)"),
    OpDef("avgpool", _pool_attrs(True), _pool_shape,
          "Average pooling; `count_include_pad` as in PyTorch (default true); "
          "TensorFlow's 'same' pooling is `pad='same', count_include_pad=false`.",
          flops=_pool_flops, check=_pool_check, kind="pool",
          example="avgpool(3, stride=1, pad=1, count_include_pad=false)"),
    OpDef("adaptive_avgpool", [Attr("size", "pair")], _adaptive_shape,
          "Adaptive average pooling to a fixed output size.",
          flops=lambda a, ins, out: numel(ins[0]), kind="pool",
          example="adaptive_avgpool([4, 4])"),
    OpDef("adaptive_maxpool", [Attr("size", "pair")], _adaptive_shape,
          "Adaptive max pooling to a fixed output size.",
          flops=lambda a, ins, out: numel(ins[0]), kind="pool"),
    OpDef("global_avgpool", [], _global_shape, "Average over the whole map (C x 1 x 1).",
          flops=lambda a, ins, out: numel(ins[0]), kind="pool", example="global_avgpool"),
    OpDef("dropout", [Attr("p", "prob", 0.5)], _same,
          "Dropout (identity in eval mode).", kind="reg", example="dropout(0.4)"),
    OpDef("flatten", [], _flatten_shape, "Flatten C x H x W to a vector (NCHW order).",
          kind="reshape", example="flatten"),
    OpDef("linear", [Attr("out", "pos"), Attr("bias", "bool", True)], _linear_shape,
          "Fully connected layer on a flat vector.", params=_linear_params,
          macs=_linear_macs, flops=lambda a, ins, out: 2 * _linear_macs(a, ins, out) + (
              a["out"] if a["bias"] else 0), kind="linear", aliases=("fc",),
          example="linear(num_classes)"),
    OpDef("l2norm", [Attr("eps", "float", 1e-12)], _same,
          "L2 normalisation over channels (F.normalize(x, p=2, dim=1)).",
          flops=_per_element(3), kind="norm", example="l2norm"),
    OpDef("identity", [], _same, "Passes its input through.", kind="reshape",
          example="identity"),
    OpDef("scale", [Attr("factor", "float")], _same, "Multiplies by a constant.",
          flops=_per_element(1), kind="act", example="scale(0.17)"),
    OpDef("concat", [], _concat_shape, "Concatenation on channels (the `concat` form).",
          check=_concat_check, arity=0, kind="merge"),
    OpDef("add", [], _merge_shape("add"), "Elementwise sum (the `add` form); shapes "
          "broadcast.", check=_merge_check("add"), flops=_merge_flops, arity=0, kind="merge"),
    OpDef("mul", [], _merge_shape("mul"), "Elementwise product (the `mul` form), e.g. a "
          "gate: C x 1 x 1 broadcasts against C x H x W.", check=_merge_check("mul"),
          flops=_merge_flops, arity=0, kind="merge"),
    OpDef("input", [], _same, "The network input.", arity=0, kind="io"),
]

OPS: dict[str, OpDef] = {}
for _op in OP_LIST:
    OPS[_op.name] = _op
    for _alias in _op.aliases:
        OPS[_alias] = _op

FORM_OPS = ("concat", "add", "mul", "input")
USER_OPS = sorted(k for k, v in OPS.items() if v.name not in FORM_OPS)
