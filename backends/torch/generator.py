"""PyTorch code generation: renders a :class:`~inceptdsl.plan.NetworkPlan` as one model file.

The file imports only ``torch`` and the standard library, and reads like a torchvision/timm
model file: one class per block definition, the network class, ``create_model`` and
``loss``. Each op has one lowering here: ``module_<op>`` (the ``nn`` module built in
``__init__``) and ``call_<op>`` (the functional form used in ``forward``).

>>> from inceptdsl.loader import load
>>> from inceptdsl.plan import plan_network
>>> code = TorchGenerator(plan_network(load("googlenet"))).render()
>>> "class Inception(nn.Module):" in code and "def create_model(" in code
True
"""

from __future__ import annotations

from typing import Any

from inceptdsl.backends.base import INDENT, BaseGenerator, call, code, non_default, pool_pads

from inceptdsl.expr import is_symbolic, to_code
from inceptdsl.ops import conv_padding, fmt_shape, same_at_stride_one
from inceptdsl.plan import ClassPlan, Functional, OpCtor

# op -> (module built in __init__, functional form in forward), see BaseGenerator
_ACTIVATIONS = {op: (f"nn.{cls}()", f"{fn}({{x}})") for op, cls, fn in (
    ("relu", "ReLU", "F.relu"), ("relu6", "ReLU6", "F.relu6"), ("gelu", "GELU", "F.gelu"),
    ("silu", "SiLU", "F.silu"), ("sigmoid", "Sigmoid", "torch.sigmoid"),
    ("tanh", "Tanh", "torch.tanh"), ("elu", "ELU", "F.elu"),
    ("hardswish", "Hardswish", "F.hardswish"), ("hardsigmoid", "Hardsigmoid", "F.hardsigmoid"))}
_ACTIVATIONS |= {  # the other lowerings of one line
    "softmax": ("nn.Softmax(dim=1)", "torch.softmax({x}, 1)"),
    "leaky_relu": ("nn.LeakyReLU({slope})", "F.leaky_relu({x}, {slope})"),
    "global_avgpool": ("nn.AdaptiveAvgPool2d(1)", "{x}.mean((2, 3), keepdim=True)"),
    "dropout": ("nn.Dropout(p={p})", "F.dropout({x}, p={p}, training=self.training)"),
    "flatten": ("nn.Flatten(1)", "torch.flatten({x}, 1)"),
    "identity": ("nn.Identity()", "{x}"),
    "adaptive_avgpool": ("nn.AdaptiveAvgPool2d({size})", "F.adaptive_avg_pool2d({x}, {size})"),
    "adaptive_maxpool": ("nn.AdaptiveMaxPool2d({size})", "F.adaptive_max_pool2d({x}, {size})"),
}

# Keras's BatchNormalization(scale=False), for maps (2d) and vectors (1d).
_NO_SCALE = '''
class BatchNorm{d}NoScale(nn.BatchNorm{d}):
    """``nn.BatchNorm{d}`` that learns a shift (``bias``) but no scale, like Keras's
    ``BatchNormalization(scale=False)``: its state_dict has no ``weight``."""

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        del self.weight
        self.register_parameter("weight", None)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.bias is not None:
            nn.init.zeros_(self.bias)
'''

_HELPERS = {
    "make_divisible": '''
def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor`` (the width knob)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new
''',
    "L2Norm": '''
class L2Norm(nn.Module):
    """``F.normalize(x, p=2, dim=1)`` as a module."""

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, p=2.0, dim=1, eps=self.eps)
''',
    "PaddedConv2d": '''
class PaddedConv2d(nn.Conv2d):
    """A Conv2d that zero-pads its input first, by (left, right, top, bottom).

    Asymmetric padding (e.g. TensorFlow's 'same' at stride 2); the parameters are those of
    nn.Conv2d, so state_dicts are interchangeable.
    """

    def __init__(self, *args, pad: tuple[int, int, int, int] = (0, 0, 0, 0), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pad = list(pad)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(F.pad(x, self.pad), self.weight, self.bias)
''',
    "LayerNorm2d": '''
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (timm's LayerNorm2d)."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)
''',
    "drop_path": '''
def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth: zero whole samples with probability p in training (identity in eval)."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)
''',
    "DropPath": '''
class DropPath(nn.Module):
    """Stochastic depth as a module (timm's DropPath)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.p, self.training)
''',
    "ChannelSlice": '''
class ChannelSlice(nn.Module):
    """Channels start..stop-1 of the input."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: Tensor) -> Tensor:
        return x[:, self.start:self.stop]
''',
    "pool2d_padded": '''
def same_padding(size: list[int], kernel_size: list[int], stride: list[int],
                 dilation: list[int]) -> list[int]:
    """TensorFlow's 'same' padding for ``F.pad`` (left, right, top, bottom): the output
    size is ceil(size / stride) and the odd pixel of padding goes to the end."""
    pads: list[int] = []
    for i in [1, 0]:
        out = (size[i] + stride[i] - 1) // stride[i]
        total = max((out - 1) * stride[i] + (kernel_size[i] - 1) * dilation[i] + 1 - size[i], 0)
        pads += [total // 2, total - total // 2]
    return pads


def pool2d_padded(x: Tensor, kind: str, kernel_size: list[int], stride: list[int],
                  pad: list[int] | None = None, dilation: list[int] | None = None,
                  count_include_pad: bool = True) -> Tensor:
    """Max or average pooling after padding by ``pad`` (left, right, top, bottom), or by
    TensorFlow's 'same' padding for this input size when ``pad`` is None.

    Max pooling pads with -inf; the average leaves the padding out of its divisor unless
    ``count_include_pad`` (TensorFlow's 'same' average pooling leaves it out).
    """
    dil = [1, 1] if dilation is None else dilation
    pads = same_padding(list(x.shape[-2:]), kernel_size, stride, dil) if pad is None else pad
    if kind == "max":
        return F.max_pool2d(F.pad(x, pads, value=float("-inf")), kernel_size, stride, 0, dil)
    out = F.avg_pool2d(F.pad(x, pads), kernel_size, stride)
    if count_include_pad:
        return out
    counts = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pads), kernel_size, stride)
    return out / counts
''',
    "Pool2dPadded": '''
class Pool2dPadded(nn.Module):
    """``pool2d_padded`` as a module: pooling with asymmetric or TensorFlow 'same' padding."""

    def __init__(self, kind: str, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int], pad: tuple[int, int, int, int] | None = None,
                 dilation: tuple[int, int] = (1, 1), count_include_pad: bool = True) -> None:
        super().__init__()
        self.kind = kind
        self.kernel_size = [kernel_size] * 2 if isinstance(kernel_size, int) else list(kernel_size)
        self.stride = [stride] * 2 if isinstance(stride, int) else list(stride)
        self.pad: list[int] | None = None if pad is None else list(pad)
        self.dilation: list[int] = list(dilation)
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return pool2d_padded(x, self.kind, self.kernel_size, self.stride, self.pad,
                             self.dilation, self.count_include_pad)
''',
    "BatchNorm2dNoScale": _NO_SCALE.format(d="2d"),
    "BatchNorm1dNoScale": _NO_SCALE.format(d="1d"),
    "Scale": '''
class Scale(nn.Module):
    """Multiplies its input by a constant factor."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor
''',
}


class TorchGenerator(BaseGenerator):
    """Renders a plan; subclasses (e.g. the inference optimizer) override lowerings."""

    ACTIVATIONS = _ACTIVATIONS
    HELPERS = _HELPERS  # name -> source of the helpers a file may need
    CROSS_ENTROPY = "F.cross_entropy({}, target, label_smoothing=label_smoothing)"
    SIZE = staticmethod(lambda value: _tuple(value))

    def render(self) -> str:
        classes = [self.render_class(c) for c in self.plan.classes]
        tail = self.factory()
        helpers = "".join(self.HELPERS[h] + "\n" for h in sorted(self.helpers))
        outputs = self.outputs_decl()
        parts = [self.header(), self.imports(helpers + outputs + "\n\n".join(classes) + tail)]
        parts += [h for h in helpers.split("\n\n\n") if h.strip()]
        parts += [outputs, *classes, *tail.split("\n\n\n")]
        rest = [p.strip("\n") for p in parts[2:] if p.strip()]
        gap = "\n\n\n" if rest[0].startswith(("class ", "def ")) else "\n\n"
        head = parts[0].strip("\n") + "\n\n" + parts[1].strip("\n") + gap + rest[0]
        return "\n\n\n".join([head, *rest[1:]]) + "\n"

    def header_lines(self) -> list[str]:
        return [f"Input: {fmt_shape(self.spec.input)} (NCHW).", "",
                f"Generated by inceptdsl from the spec '{self.spec.name}'. Build it with "
                "create_model(**overrides)."]

    def imports(self, text: str) -> str:
        lines = []
        if "namedtuple(" in text:
            lines.append("from collections import OrderedDict, namedtuple"
                         if "OrderedDict(" in text else "from collections import namedtuple")
        elif "OrderedDict(" in text:
            lines.append("from collections import OrderedDict")
        if "Optional[" in text:
            lines.append("from typing import Optional")
        lines += ["", "import torch"]
        if "F." in text:
            lines.append("import torch.nn.functional as F")
        lines.append("from torch import Tensor, nn")
        return "\n".join(lines).lstrip("\n")

    def factory(self) -> str:
        name = self.plan.network.name
        return "\n".join([
            f"def create_model(**overrides) -> {name}:",
            f'{INDENT}"""Build {name} with the spec\'s parameters, overriding any of them."""',
            f"{INDENT}return {name}(**overrides)", "", "",
            self.loss("isinstance(outputs, Tensor)")])

    def forward_return(self, plan: ClassPlan) -> list[str]:
        if not (plan.is_network and plan.sides):
            return super().forward_return(plan)
        pad = INDENT * 2
        names = [plan.output, *(s[0] for s in plan.sides)]
        outputs = f"{plan.name}Outputs({', '.join(names)})"
        any_side = " or ".join(f"{s[0]} is not None" for s in plan.sides)
        params = ", ".join(f"{n}: Tensor | None" for n in names[1:])
        return [
            f"{pad}if torch.jit.is_scripting():",
            f"{pad}{INDENT}return {outputs}",
            f"{pad}return self._eager_outputs({', '.join(names)})",
            "",
            f"{INDENT}@torch.jit.unused",
            f"{INDENT}def _eager_outputs(self, {names[0]}: Tensor, {params}) -> "
            f"{plan.name}Outputs:",
            f'{pad}"""Main and side outputs in training; the main output alone in eval."""',
            f"{pad}if self.training and ({any_side}):",
            f"{pad}{INDENT}return {outputs}",
            f"{pad}return {names[0]}  # type: ignore[return-value]",
        ]

    def call_input(self, item: Any, x: str) -> str:
        """Explicit padding in front of a functional conv whose padding is asymmetric."""
        if not isinstance(item, (OpCtor, Functional)) or item.op.name != "conv2d":
            return x
        pads = _explicit_padding(item)
        if pads is None:
            return x
        top, bottom, left, right = pads
        return f"F.pad({x}, ({left}, {right}, {top}, {bottom}))"

    # -------------------------------------------------------------- lowerings

    def module_conv2d(self, c: OpCtor) -> str:
        a = c.attrs
        kwargs = [("kernel_size", code(a["kernel"])), *non_default(a, {"stride": (1, 1)})]
        padding = _module_padding(c)
        kwargs += [("padding", padding)] if padding != "0" else []
        kwargs += non_default(a, {"dilation": (1, 1), "groups": 1, "bias": True})
        pads = _explicit_padding(c)
        if pads is None:
            return call("nn.Conv2d", [code(c.in_channels), code(a["out"])], kwargs)
        self.helpers.add("PaddedConv2d")
        top, bottom, left, right = pads
        kwargs.append(("pad", f"({left}, {right}, {top}, {bottom})"))
        return call("PaddedConv2d", [code(c.in_channels), code(a["out"])], kwargs)

    def module_batchnorm(self, c: OpCtor) -> str:
        a = c.attrs
        kind = "nn.BatchNorm1d" if len(c.in_shape) == 1 else "nn.BatchNorm2d"
        kwargs = non_default(a, {"eps": 1e-5, "momentum": 0.1, "affine": True,
                                  "track_running_stats": True})
        if a["scale"] is True:
            return call(kind, [code(c.in_channels)], kwargs)
        shift_only = kind.replace("nn.", "") + "NoScale"
        self.helpers.add(shift_only)
        if is_symbolic(a["scale"]):
            shift_only = f"({kind} if {to_code(a['scale'])} else {shift_only})"
        return call(shift_only, [code(c.in_channels)], kwargs)

    def module_lrn(self, c: OpCtor) -> str:
        a = c.attrs
        return call("nn.LocalResponseNorm", [code(a["size"])],
                    [("alpha", code(a["alpha"])), ("beta", code(a["beta"])), ("k", code(a["k"]))])

    def call_lrn(self, s: Functional, x: str) -> str:
        a = s.attrs
        return call("F.local_response_norm", [x, code(a["size"])],
                    [("alpha", code(a["alpha"])), ("beta", code(a["beta"])), ("k", code(a["k"]))])

    def module_maxpool(self, c: OpCtor) -> str:
        return self._padded_pool(c, "Pool2dPadded", []) or \
            call("nn.MaxPool2d", [code(c.attrs["kernel"])], self._pool_kwargs(c))

    def call_maxpool(self, s: Functional, x: str) -> str:
        kwargs = [("kernel_size", code(s.attrs["kernel"])), *self._pool_kwargs(s)]
        return self._padded_pool(s, "pool2d_padded", [x]) or call("F.max_pool2d", [x], kwargs)

    def module_avgpool(self, c: OpCtor) -> str:
        return self._padded_pool(c, "Pool2dPadded", []) or \
            call("nn.AvgPool2d", [code(c.attrs["kernel"])], self._pool_kwargs(c))

    def call_avgpool(self, s: Functional, x: str) -> str:
        kwargs = [("kernel_size", code(s.attrs["kernel"])), *self._pool_kwargs(s)]
        return self._padded_pool(s, "pool2d_padded", [x]) or call("F.avg_pool2d", [x], kwargs)

    def _padded_pool(self, item: Any, func: str, args: list[str]) -> str | None:
        """A pool with asymmetric or TensorFlow 'same' padding (``None`` if symmetric)."""
        pads = pool_pads(item)
        if pads is None:
            return None
        a = item.attrs
        self.helpers.update({"pool2d_padded", func})
        stride = a["stride"] if a["stride"] is not None else a["kernel"]
        seq = _list if func == "pool2d_padded" else _tuple
        kwargs = []
        if pads != "same":
            top, bottom, left, right = pads
            kwargs.append(("pad", seq((left, right, top, bottom))))
        if a.get("dilation", (1, 1)) != (1, 1):
            kwargs.append(("dilation", seq(a["dilation"])))
        if not a.get("count_include_pad", True):
            kwargs.append(("count_include_pad", "False"))
        kind = '"max"' if item.op.name == "maxpool" else '"avg"'
        return call(func, [*args, kind, seq(a["kernel"]), seq(stride)], kwargs)

    def module_linear(self, c: OpCtor) -> str:
        kwargs = [] if c.attrs["bias"] is True else [("bias", code(c.attrs["bias"]))]
        return call("nn.Linear", [code(c.in_channels), code(c.attrs["out"])], kwargs)

    def call_l2norm(self, s: Functional, x: str) -> str:
        eps = s.attrs["eps"]
        extra = "" if eps == 1e-12 else f", eps={code(eps)}"
        return f"F.normalize({x}, p=2.0, dim=1{extra})"

    def module_gelu(self, c: OpCtor) -> str:
        a = c.attrs["approximate"]
        return "nn.GELU()" if a == "none" else f"nn.GELU(approximate={code(a)})"

    def call_gelu(self, s: Functional, x: str) -> str:
        a = s.attrs["approximate"]
        return f"F.gelu({x})" if a == "none" else f"F.gelu({x}, approximate={code(a)})"

    def module_layernorm(self, c: OpCtor) -> str:
        kwargs = non_default(c.attrs, {"eps": 1e-5})
        if is_symbolic(c.attrs["affine"]) or not c.attrs["affine"]:
            kwargs.append(("elementwise_affine", code(c.attrs["affine"])))
        if len(c.in_shape) == 1:
            return call("nn.LayerNorm", [code(c.in_channels)], kwargs)
        self.helpers.add("LayerNorm2d")
        return call("LayerNorm2d", [code(c.in_channels)], kwargs)

    def module_groupnorm(self, c: OpCtor) -> str:
        kwargs = non_default(c.attrs, {"eps": 1e-5, "affine": True})
        return call("nn.GroupNorm", [code(c.attrs["groups"]), code(c.in_channels)], kwargs)

    def module_layer_scale(self, c: OpCtor) -> str:
        return f"nn.Parameter(torch.full(({code(c.in_channels)},), {code(c.attrs['init'])}))"

    def apply_layer_scale(self, c: OpCtor, value: str, x: str) -> str:
        if len(c.in_shape) == 1:
            return f"{x} * {value}"
        return f"{x} * {value}.reshape(1, -1, 1, 1)"

    def module_drop_path(self, c: OpCtor) -> str:
        self.helpers |= {"DropPath", "drop_path"}
        return f"DropPath({code(c.attrs['p'])})"

    def call_drop_path(self, s: Functional, x: str) -> str:
        self.helpers.add("drop_path")
        return f"drop_path({x}, {code(s.attrs['p'])}, self.training)"

    def module_slice(self, c: OpCtor) -> str:
        self.helpers.add("ChannelSlice")
        return f"ChannelSlice({code(c.attrs['start'])}, {code(c.attrs['stop'])})"

    def call_slice(self, s: Functional, x: str) -> str:
        return f"{x}[:, {code(s.attrs['start'])}:{code(s.attrs['stop'])}]"



# ---------------------------------------------------------------------------- helpers


def _explicit_padding(item: Any) -> tuple[int, int, int, int] | None:
    pad = item.attrs["pad"]
    if is_symbolic(pad) or _symbolic_same(item):
        return None
    pads = conv_padding(item.concrete, item.in_shape[1:])
    if pads[0] == pads[1] and pads[2] == pads[3]:
        return None
    return pads


def _module_padding(c: OpCtor) -> str:
    pad = c.attrs["pad"]
    if is_symbolic(pad):
        return code(pad)
    if _symbolic_same(c):
        return '"same"'
    pads = conv_padding(c.concrete, c.in_shape[1:])
    if pads[0] != pads[1] or pads[2] != pads[3]:
        return "0"  # applied with F.pad in forward
    return code((pads[0], pads[2]))


def _symbolic_same(item: Any) -> bool:
    """'same' padding of a kernel known only when the model is built: PyTorch's own."""
    a = item.attrs
    return same_at_stride_one(a) and is_symbolic([a["kernel"], a["dilation"]])


def _list(value: Any) -> str:
    """``(3, 3)`` -> ``[3, 3]``, ``s`` -> ``[s, s]`` (TorchScript wants the lists that a helper
    takes as ``list[int]``)."""
    if not isinstance(value, (list, tuple)):
        value = (value, value)
    return "[" + ", ".join(code(v) for v in value) + "]"


def _tuple(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"({code(value[0])}, {code(value[1])})"
    return code(value)
