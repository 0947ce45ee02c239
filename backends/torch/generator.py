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

from dataclasses import replace
from typing import Any

from inceptdsl.backends.base import (
    INDENT,
    BaseGenerator,
    assign,
    by_condition,
    code,
    needs_building,
    pool_pads,
    unrolled,
    wrap_def,
)

from inceptdsl.expr import is_symbolic, to_code
from inceptdsl.naming import docstring_text
from inceptdsl.ops import conv_padding, fmt_shape
from inceptdsl.plan import (
    Alias,
    BlockCtor,
    Call,
    Cat,
    ClassPlan,
    Comment,
    Functional,
    Guarded,
    NetworkPlan,
    OpCtor,
    Prod,
    SeqCtor,
    SideCall,
    Split,
    Sum,
)

_ACTIVATIONS = {
    "relu": ("nn.ReLU()", "F.relu({x})"),
    "relu6": ("nn.ReLU6()", "F.relu6({x})"),
    "gelu": ("nn.GELU()", "F.gelu({x})"),
    "silu": ("nn.SiLU()", "F.silu({x})"),
    "sigmoid": ("nn.Sigmoid()", "torch.sigmoid({x})"),
    "tanh": ("nn.Tanh()", "torch.tanh({x})"),
    "elu": ("nn.ELU()", "F.elu({x})"),
    "hardswish": ("nn.Hardswish()", "F.hardswish({x})"),
    "hardsigmoid": ("nn.Hardsigmoid()", "F.hardsigmoid({x})"),
    "softmax": ("nn.Softmax(dim=1)", "torch.softmax({x}, 1)"),
}

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
    "BatchNorm2dNoScale": '''
class BatchNorm2dNoScale(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that learns a shift (``bias``) but no scale, like Keras's
    ``BatchNormalization(scale=False)``: its state_dict has no ``weight``."""

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        del self.weight
        self.register_parameter("weight", None)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.bias is not None:
            nn.init.zeros_(self.bias)
''',
    "BatchNorm1dNoScale": '''
class BatchNorm1dNoScale(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that learns a shift (``bias``) but no scale, like Keras's
    ``BatchNormalization(scale=False)``: its state_dict has no ``weight``."""

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        del self.weight
        self.register_parameter("weight", None)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.bias is not None:
            nn.init.zeros_(self.bias)
''',
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




def call(func: str, args: list[str], kwargs: list[tuple[str, str]]) -> str:
    parts = args + [f"{k}={v}" for k, v in kwargs]
    return f"{func}({', '.join(parts)})"


class TorchGenerator(BaseGenerator):
    """Renders a plan; subclasses (e.g. the inference optimizer) override lowerings."""

    ACTIVATIONS = _ACTIVATIONS
    HELPERS = _HELPERS  # name -> source of the helpers a file may need

    def __init__(self, plan: NetworkPlan):
        self.plan = plan
        self.helpers: set[str] = set(plan.helpers)
        self.spec = plan.spec

    # -------------------------------------------------------------- file

    def render(self) -> str:
        classes = [self.render_class(c) for c in self.plan.classes]
        body = "\n\n".join(classes)
        tail = self.render_factory()
        helpers = "".join(self.HELPERS[h] + "\n" for h in sorted(self.helpers))
        outputs = self.outputs_decl()
        parts = [self.header(), self.imports(helpers + outputs + body + tail)]
        parts += [h for h in helpers.split("\n\n\n") if h.strip()]
        parts += [outputs, *classes, *tail.split("\n\n\n")]
        rest = [p.strip("\n") for p in parts[2:] if p.strip()]
        gap = "\n\n\n" if rest[0].startswith(("class ", "def ")) else "\n\n"
        head = parts[0].strip("\n") + "\n\n" + parts[1].strip("\n") + gap + rest[0]
        return "\n\n\n".join([head, *rest[1:]]) + "\n"

    def header(self) -> str:
        spec = self.spec
        lines = [f'"""{docstring_text(spec.description or spec.name)}', ""]
        if spec.paper:
            lines.append(f"Paper: {docstring_text(spec.paper)}.")
        if spec.reference:
            lines.append(f"Reference: {docstring_text(spec.reference)}.")
        lines += [f"Input: {fmt_shape(spec.input)} (NCHW).", "",
                  f"Generated by inceptdsl from the spec '{spec.name}'. Build it with "
                  "create_model(**overrides).", '"""']
        return "\n".join(lines)

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

    def outputs_decl(self) -> str:
        net = self.plan.network
        if not net.sides:
            return ""
        fields = ["logits", *(s[0] for s in net.sides)]
        name = f"{net.name}Outputs"
        ann = ", ".join([f'"{f}": Tensor' if i == 0 else f'"{f}": Tensor | None'
                         for i, f in enumerate(fields)])
        weights = ", ".join(f'"{s[0]}": {s[1]!r}' for s in net.sides)
        return (f'{name} = namedtuple("{name}", {fields!r})\n'.replace("'", '"')
                + f"{name}.__annotations__ = {{{ann}}}\n\n"
                + "# loss weight of each side output (aux head), from the spec\n"
                + f"LOSS_WEIGHTS = {{{weights}}}")

    def render_factory(self) -> str:
        net = self.plan.network
        sides = bool(net.sides)
        out = [
            f"def create_model(**overrides) -> {net.name}:",
            f'{INDENT}"""Build {net.name} with the spec\'s parameters, overriding any of them."""',
            f"{INDENT}return {net.name}(**overrides)",
            "", "",
            "def loss(outputs, target: Tensor, label_smoothing: float = 0.0) -> Tensor:",
            f'{INDENT}"""Cross-entropy of the main output plus the weighted side outputs."""',
        ]
        ce = "F.cross_entropy({}, target, label_smoothing=label_smoothing)"
        if not sides:
            out.append(f"{INDENT}return {ce.format('outputs')}")
            return "\n".join(out)
        out += [
            f"{INDENT}if isinstance(outputs, Tensor):",
            f"{INDENT * 2}return {ce.format('outputs')}",
            f"{INDENT}total = {ce.format('outputs.logits')}",
            f"{INDENT}for name, weight in LOSS_WEIGHTS.items():",
            f"{INDENT * 2}side = getattr(outputs, name)",
            f"{INDENT * 2}if side is not None:",
            f"{INDENT * 3}total = total + weight * {ce.format('side')}",
            f"{INDENT}return total",
        ]
        return "\n".join(out)

    # -------------------------------------------------------------- classes

    def render_class(self, plan: ClassPlan) -> str:
        doc = docstring_text(plan.doc or (f"The {plan.name} block." if not plan.is_network
                                          else plan.name))
        doc_lines = doc.splitlines()
        if len(doc_lines) > 1:
            doc = "\n".join([doc_lines[0], *(f"{INDENT}{line}" if line else ""
                                             for line in doc_lines[1:]), INDENT])
        lines = [f"class {plan.name}({self.base_class(plan)}):", f'{INDENT}"""{doc}"""', ""]
        lines += self.render_init(plan)
        lines.append("")
        lines += self.render_forward(plan)
        return "\n".join(lines)

    def base_class(self, plan: ClassPlan) -> str:
        """The base class of a generated class."""
        return "nn.Module"

    def render_init(self, plan: ClassPlan) -> list[str]:
        params = []
        for p in plan.params:
            ann = p.type if p.default != "None" else f"{p.type} | None"
            params.append(f"{p.name}: {ann}" + (f" = {p.default}" if p.default is not None else ""))
        head = f"{INDENT}def __init__(self, {', '.join(params)}) -> None:" if params else \
            f"{INDENT}def __init__(self) -> None:"
        lines = [wrap_def(head)]
        lines.append(f"{INDENT * 2}super().__init__()")
        for name, default in plan.defaults_code:
            lines += [f"{INDENT * 2}if {name} is None:", f"{INDENT * 3}{name} = {default}"]
        for group in by_condition(plan.decls):
            if group[0].cond is None or len(group) == 1:
                lines += self.render_decl(group[0])
                continue
            pad = INDENT * 2
            lines += [f"{pad}self.{d.attr} = None" for d in group]
            lines.append(f"{pad}if {to_code(group[0].cond)}:")
            for d in group:
                lines += [INDENT + line for line in self.render_decl(replace(d, cond=None))]
        return lines

    def render_decl(self, decl: Any) -> list[str]:
        pad = INDENT * 2
        if not isinstance(decl.ctor, (OpCtor, BlockCtor, SeqCtor)):
            return [f"{pad}self.{decl.attr} = {code(decl.ctor)}"]
        if isinstance(decl.ctor, SeqCtor) and needs_building(decl.ctor):
            lines = self.built_sequential(decl.attr, decl.ctor)
            if decl.cond is None:
                return [pad + line for line in lines]
            return [f"{pad}self.{decl.attr} = None", f"{pad}if {to_code(decl.cond)}:",
                    *(pad + INDENT + line for line in lines)]
        value = self.ctor(decl.ctor, 2 if decl.cond is None else 3)
        if decl.cond is None:
            return assign(f"{pad}self.{decl.attr}", value)
        return [f"{pad}self.{decl.attr} = None",
                f"{pad}if {to_code(decl.cond)}:",
                *assign(f"{pad}{INDENT}self.{decl.attr}", value)]

    def built_sequential(self, attr: str, seq: SeqCtor) -> list[str]:
        """A sequence whose items depend on block parameters, built as a list."""
        lines = ["layers = []"]
        lines += self._build_entries(seq.items)
        return [*lines, f"self.{attr} = nn.Sequential(*layers)"]

    def ctor(self, ctor: Any, depth: int) -> str:
        if isinstance(ctor, OpCtor):
            return getattr(self, f"module_{ctor.op.name}")(ctor)
        if isinstance(ctor, BlockCtor):
            args = [code(ctor.in_channels)]
            args += [f"{k}={code(v)}" if kw else code(v) for k, v, kw in ctor.args]
            return f"{ctor.cls}({', '.join(args)})"
        if isinstance(ctor, SeqCtor):
            return self.sequential(ctor, depth)
        raise TypeError(ctor)

    def sequential(self, seq: SeqCtor, depth: int) -> str:
        pad = INDENT * (depth + 1)
        named = any(name is not None for name, _ in seq.items)
        if not named:
            items = [self._seq_item(c, depth + 1) for _, c in seq.items]
            return "nn.Sequential(\n" + "".join(f"{pad}{i},\n" for i in items) + \
                f"{INDENT * depth})"
        entries, index = [], 0
        for name, c in seq.items:
            for one in unrolled(c):
                key = name if name is not None else str(index)
                entries.append(f'{pad}("{key}", {self.ctor(one, depth + 1)}),\n')
                index += 1
        return "nn.Sequential(OrderedDict([\n" + "".join(entries) + f"{INDENT * depth}]))"

    def render_forward(self, plan: ClassPlan) -> list[str]:
        ret = f"{plan.name}Outputs" if plan.is_network and plan.sides else "Tensor"
        lines = [f"{INDENT}def forward(self, x: Tensor) -> {ret}:"]
        pad = INDENT * 2
        for var, _, _ in plan.sides:
            lines.append(f"{pad}{var}: Tensor | None = None")
        for stmt in plan.stmts:
            if isinstance(stmt, Comment):
                if plan.is_network and not (lines[-1].strip().startswith("#")):
                    lines.append(f"{pad}# {stmt.text}")
                continue
            lines += [pad + line for line in self.statement(stmt)]
        if plan.is_network and plan.sides:
            lines += self.outputs_return(plan)
        else:
            lines.append(f"{pad}return {plan.output}")
        return lines

    def outputs_return(self, plan: ClassPlan) -> list[str]:
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

    # -------------------------------------------------------------- statements

    def statement(self, stmt: Any) -> list[str]:
        if isinstance(stmt, Call) and isinstance(stmt.ctor, OpCtor) and not stmt.ctor.op.module:
            return self.tensor_call(stmt)
        if isinstance(stmt, Call):
            if not stmt.optional:
                return [f"{stmt.out} = self.{stmt.attr}({stmt.arg})"]
            lines = [f"{stmt.out} = {stmt.arg}"] if stmt.out != stmt.arg else []
            return lines + [f"if self.{stmt.attr} is not None:",
                            f"{INDENT}{stmt.out} = self.{stmt.attr}({stmt.out})"]
        if isinstance(stmt, Functional):
            return [f"{stmt.out} = {getattr(self, f'call_{stmt.op.name}')(stmt, stmt.arg)}"]
        if isinstance(stmt, Cat):
            return assign(stmt.out, f"torch.cat([{', '.join(stmt.args)}], 1)")
        if isinstance(stmt, Sum):
            first = stmt.args[0] if stmt.scale_attr is None else \
                f"{stmt.args[0]} * self.{stmt.scale_attr}"
            return [f"{stmt.out} = {' + '.join([first, *stmt.args[1:]])}"]
        if isinstance(stmt, Prod):
            return [f"{stmt.out} = {' * '.join(stmt.args)}"]
        if isinstance(stmt, Split):
            sizes = f"self.{stmt.attr}" if stmt.attr else code(list(stmt.sizes))
            return assign(", ".join(stmt.outs), f"torch.split({stmt.arg}, {sizes}, dim=1)")
        if isinstance(stmt, Alias):
            return [f"{stmt.out} = {stmt.arg}"]
        if isinstance(stmt, Guarded):
            lines = [f"{stmt.out} = {stmt.arg}"] if stmt.out != stmt.arg else []
            lines.append(f"if self.{stmt.guard} is not None:")
            for inner in stmt.body:
                lines += [INDENT + line for line in self.statement(inner)]
            return lines
        if isinstance(stmt, SideCall):
            guard = f"self.{stmt.attr} is not None and self.training" if stmt.optional \
                else "self.training"
            return [f"if {guard}:", f"{INDENT}{stmt.out} = self.{stmt.attr}({stmt.arg})"]
        raise TypeError(stmt)

    def tensor_call(self, stmt: Call) -> list[str]:
        """A learned tensor of the module (``op.module`` false) applied to the input."""
        value = getattr(self, f"apply_{stmt.ctor.op.name}")(stmt.ctor, f"self.{stmt.attr}",
                                                            stmt.arg)
        if not stmt.optional:
            return [f"{stmt.out} = {value}"]
        lines = [f"{stmt.out} = {stmt.arg}"] if stmt.out != stmt.arg else []
        value = getattr(self, f"apply_{stmt.ctor.op.name}")(stmt.ctor, f"self.{stmt.attr}",
                                                            stmt.out)
        return lines + [f"if self.{stmt.attr} is not None:", f"{INDENT}{stmt.out} = {value}"]

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
        kwargs = [("kernel_size", code(a["kernel"]))]
        if is_symbolic(a["stride"]) or a["stride"] != (1, 1):
            kwargs.append(("stride", code(a["stride"])))
        padding = _module_padding(c)
        if padding != "0":
            kwargs.append(("padding", padding))
        if is_symbolic(a["dilation"]) or a["dilation"] != (1, 1):
            kwargs.append(("dilation", code(a["dilation"])))
        if is_symbolic(a["groups"]) or a["groups"] != 1:
            kwargs.append(("groups", code(a["groups"])))
        if is_symbolic(a["bias"]) or not a["bias"]:
            kwargs.append(("bias", code(a["bias"])))
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
        kwargs = _non_default(a, {"eps": 1e-5, "momentum": 0.1, "affine": True,
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

    def module_adaptive_avgpool(self, c: OpCtor) -> str:
        return f"nn.AdaptiveAvgPool2d({_tuple(c.attrs['size'])})"

    def call_adaptive_avgpool(self, s: Functional, x: str) -> str:
        return f"F.adaptive_avg_pool2d({x}, {_tuple(s.attrs['size'])})"

    def module_adaptive_maxpool(self, c: OpCtor) -> str:
        return f"nn.AdaptiveMaxPool2d({_tuple(c.attrs['size'])})"

    def call_adaptive_maxpool(self, s: Functional, x: str) -> str:
        return f"F.adaptive_max_pool2d({x}, {_tuple(s.attrs['size'])})"

    def module_global_avgpool(self, c: OpCtor) -> str:
        return "nn.AdaptiveAvgPool2d(1)"

    def call_global_avgpool(self, s: Functional, x: str) -> str:
        return f"{x}.mean((2, 3), keepdim=True)"

    def module_dropout(self, c: OpCtor) -> str:
        return f"nn.Dropout(p={code(c.attrs['p'])})"

    def call_dropout(self, s: Functional, x: str) -> str:
        return f"F.dropout({x}, p={code(s.attrs['p'])}, training=self.training)"

    def module_flatten(self, c: OpCtor) -> str:
        return "nn.Flatten(1)"

    def call_flatten(self, s: Functional, x: str) -> str:
        return f"torch.flatten({x}, 1)"

    def module_linear(self, c: OpCtor) -> str:
        kwargs = [] if c.attrs["bias"] is True else [("bias", code(c.attrs["bias"]))]
        return call("nn.Linear", [code(c.in_channels), code(c.attrs["out"])], kwargs)

    def call_l2norm(self, s: Functional, x: str) -> str:
        eps = s.attrs["eps"]
        extra = "" if eps == 1e-12 else f", eps={code(eps)}"
        return f"F.normalize({x}, p=2.0, dim=1{extra})"

    def module_identity(self, c: OpCtor) -> str:
        return "nn.Identity()"

    def module_leaky_relu(self, c: OpCtor) -> str:
        return f"nn.LeakyReLU({code(c.attrs['slope'])})"

    def module_gelu(self, c: OpCtor) -> str:
        a = c.attrs["approximate"]
        return "nn.GELU()" if a == "none" else f"nn.GELU(approximate={code(a)})"

    def call_gelu(self, s: Functional, x: str) -> str:
        a = s.attrs["approximate"]
        return f"F.gelu({x})" if a == "none" else f"F.gelu({x}, approximate={code(a)})"

    def module_layernorm(self, c: OpCtor) -> str:
        kwargs = _non_default(c.attrs, {"eps": 1e-5})
        if is_symbolic(c.attrs["affine"]) or not c.attrs["affine"]:
            kwargs.append(("elementwise_affine", code(c.attrs["affine"])))
        if len(c.in_shape) == 1:
            return call("nn.LayerNorm", [code(c.in_channels)], kwargs)
        self.helpers.add("LayerNorm2d")
        return call("LayerNorm2d", [code(c.in_channels)], kwargs)

    def module_groupnorm(self, c: OpCtor) -> str:
        kwargs = _non_default(c.attrs, {"eps": 1e-5, "affine": True})
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

    def call_leaky_relu(self, s: Functional, x: str) -> str:
        return f"F.leaky_relu({x}, {code(s.attrs['slope'])})"



# ---------------------------------------------------------------------------- helpers


def _explicit_padding(item: Any) -> tuple[int, int, int, int] | None:
    pad = item.attrs["pad"]
    if is_symbolic(pad):
        return None
    pads = conv_padding(item.concrete, item.in_shape[1:])
    if pads[0] == pads[1] and pads[2] == pads[3]:
        return None
    return pads


def _module_padding(c: OpCtor) -> str:
    pad = c.attrs["pad"]
    if is_symbolic(pad):
        return code(pad)
    pads = conv_padding(c.concrete, c.in_shape[1:])
    if pads[0] != pads[1] or pads[2] != pads[3]:
        return "0"  # applied with F.pad in forward
    return code((pads[0], pads[2]))


def _non_default(attrs: dict, defaults: dict) -> list[tuple[str, str]]:
    return [(k, code(attrs[k])) for k, d in defaults.items()
            if is_symbolic(attrs[k]) or attrs[k] != d]


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











