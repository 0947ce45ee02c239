"""Flax (``flax.nnx``) code generation: renders a :class:`~inceptdsl.plan.NetworkPlan`.

The generated file imports only ``jax``, ``flax``, ``numpy`` and the standard library. It has
the class structure and attribute names of the PyTorch file (so ``state_dict`` keys map 1:1
onto nnx paths), takes NHWC inputs, and reproduces PyTorch's semantics for every op. Each op
has one lowering here: ``module_<op>`` (what ``__init__`` builds) and ``call_<op>`` (the
functional form used in ``__call__``); the helpers they need are copied from
:mod:`.prelude`, which is read as text (this module never imports jax).

>>> from inceptdsl.loader import load
>>> from inceptdsl.plan import plan_network
>>> code = FlaxGenerator(plan_network(load("googlenet"))).render()
>>> "class Inception(nnx.Module):" in code and "def load_torch_state_dict(" in code
True
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from functools import cache
from pathlib import Path
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

from inceptdsl import naming
from inceptdsl.expr import is_symbolic, to_code
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

# spec text made safe inside a docstring (quotes and backslashes escaped)
_doc = getattr(naming, "docstring_text", lambda text: text.replace("\\", "\\\\")
               .replace('"', '\\"'))
PRELUDE = Path(__file__).with_name("prelude.py")
# helpers that port weights go after the model, the others before it
PORTING = ("_initialize", "_TORCH_NAMES", "_to_numpy", "_flax_layout", "load_torch_state_dict")

# op -> (value stored as a module attribute, functional form)
_ACTIVATIONS = {
    "relu": ("nnx.relu", "nnx.relu({x})"),
    "relu6": ("nnx.relu6", "nnx.relu6({x})"),
    "gelu": ("partial(nnx.gelu, approximate=False)", "nnx.gelu({x}, approximate=False)"),
    "silu": ("nnx.silu", "nnx.silu({x})"),
    "sigmoid": ("nnx.sigmoid", "nnx.sigmoid({x})"),
    "tanh": ("jnp.tanh", "jnp.tanh({x})"),
    "elu": ("nnx.elu", "nnx.elu({x})"),
    "hardswish": ("nnx.hard_swish", "nnx.hard_swish({x})"),
    "hardsigmoid": ("nnx.hard_sigmoid", "nnx.hard_sigmoid({x})"),
    "softmax": ("partial(nnx.softmax, axis=-1)", "nnx.softmax({x}, axis=-1)"),
}




def pair(value: Any) -> str:
    """A pair for flax arguments that need one (``kernel_size``, ``strides``).

    >>> pair((3, 3)), pair((1, 7))
    ('(3, 3)', '(1, 7)')
    """
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(to_code(v) for v in value) + ")"
    return f"_pair({to_code(value)})"


def call(func: str, args: list[str], kwargs: list[tuple[str, str]]) -> str:
    parts = args + [f"{k}={v}" for k, v in kwargs]
    return f"{func}({', '.join(parts)})"


# ---------------------------------------------------------------------------- prelude


@cache
def prelude() -> tuple[dict[str, str], dict[str, set[str]], list[str]]:
    """Definitions of prelude.py by name: source, the helpers each uses, file order."""
    text = PRELUDE.read_text()
    tree = ast.parse(text)
    sources: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            sources[node.name] = ast.get_source_segment(text, node)
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            sources[node.targets[0].id] = ast.get_source_segment(text, node)
    uses = {}
    for name, source in sources.items():
        words = set(re.findall(r"\b\w+\b", source))
        uses[name] = {w for w in words if w in sources and w != name}
    return sources, uses, list(sources)


def helper_closure(names: set[str]) -> list[str]:
    """The helpers needed for ``names``, in prelude order.

    >>> helper_closure({"MaxPool2d"})
    ['_pair', '_pool_window', 'max_pool2d', 'MaxPool2d']
    """
    _, uses, order = prelude()
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += uses[name]
    return [n for n in order if n in seen]


# ---------------------------------------------------------------------------- generator


class FlaxGenerator(BaseGenerator):
    """Renders a plan as one flax.nnx model file."""

    ACTIVATIONS = _ACTIVATIONS

    def __init__(self, plan: NetworkPlan):
        self.plan = plan
        self.spec = plan.spec
        self.helpers: set[str] = set(plan.helpers) | {"cross_entropy", *PORTING}
        self.dropouts: dict[int, str] = {}  # functional dropout statement -> its module

    # -------------------------------------------------------------- file

    def render(self) -> str:
        classes = [self.render_class(c) for c in self.plan.classes]
        factory = self.render_factory()
        sources, _, order = prelude()
        used = "\n".join(classes + factory)
        self.helpers |= {n for n in order if re.search(rf"(?<![\w.]){n}\(", used)}
        names = helper_closure(self.helpers)
        before = [sources[n] for n in names if n not in PORTING]
        after = [sources[n] for n in names if n in PORTING]
        outputs = self.outputs_decl()
        blocks = [*before, *([outputs] if outputs else []), *classes, *factory, *after]
        body = "\n\n\n".join(blocks)
        return f"{self.header()}\n\n{self.imports(body)}\n\n\n{body}\n"

    def header(self) -> str:
        spec = self.spec
        c, h, w = spec.input
        lines = [f'"""{_doc(spec.description or spec.name)}', ""]
        if spec.paper:
            lines.append(f"Paper: {_doc(spec.paper)}.")
        if spec.reference:
            lines.append(f"Reference: {_doc(spec.reference)}.")
        lines += [
            f"Input: N x {h} x {w} x {c} (NHWC; the spec's {fmt_shape(spec.input)} in PyTorch's "
            "NCHW).", "",
            f"Generated by inceptdsl from the spec '{spec.name}' for flax.nnx. Build it with",
            "create_model(rngs=None, **overrides); port PyTorch weights of the same spec with",
            "load_torch_state_dict(model, state_dict). The model starts in training mode, like",
            "PyTorch: model.eval() / model.train() set BatchNorm.use_running_average and",
            "Dropout.deterministic (and the side outputs) explicitly.",
            '"""',
        ]
        return "\n".join(lines)

    def imports(self, text: str) -> str:
        std = []
        if "math." in text:
            std.append("import math")
        if "namedtuple(" in text:
            std.append("from collections import namedtuple")
        if "partial(" in text:
            std.append("from functools import partial")
        third = ["import jax"]
        if "jnp." in text:
            third.append("import jax.numpy as jnp")
        if "np." in text.replace("jnp.", ""):
            third.append("import numpy as np")
        third.append("from flax import nnx")
        if "lax." in text:
            third.append("from jax import lax")
        return "\n".join([*std, *([""] if std else []), *third])

    def outputs_decl(self) -> str:
        net = self.plan.network
        if not net.sides:
            return ""
        fields = ["logits", *(s[0] for s in net.sides)]
        name = f"{net.name}Outputs"
        ann = ", ".join([f'"{f}": jax.Array' if i == 0 else f'"{f}": jax.Array | None'
                         for i, f in enumerate(fields)])
        weights = ", ".join(f'"{s[0]}": {s[1]!r}' for s in net.sides)
        return (f'{name} = namedtuple("{name}", {fields!r})\n'.replace("'", '"')
                + f"{name}.__annotations__ = {{{ann}}}\n\n"
                + "# loss weight of each side output (aux head), from the spec\n"
                + f"LOSS_WEIGHTS = {{{weights}}}")

    def render_factory(self) -> list[str]:
        net = self.plan.network
        create = [
            f"def create_model(rngs: nnx.Rngs | None = None, **overrides) -> {net.name}:",
            f'{INDENT}"""Build {net.name} with the spec\'s parameters, overriding any of them.',
            "",
            f"{INDENT}``rngs=None`` is the fast path (inference, ``load_torch_state_dict``): the "
            "model is",
            f"{INDENT}built abstractly with ``nnx.eval_shape`` (nothing is compiled), then filled "
            "with",
            f"{INDENT}PyTorch's default initialisation drawn with numpy. With ``rngs`` (e.g.",
            f"{INDENT}``nnx.Rngs(0)``) every layer runs flax's initialisers eagerly, which "
            "compiles once",
            f"{INDENT}per weight shape. Either way the model starts in training mode, like "
            "PyTorch.",
            "",
            f"{INDENT}>>> model = create_model()",
            f"{INDENT}>>> model.eval()  # running BatchNorm statistics, no dropout",
            f'{INDENT}"""',
            f"{INDENT}if rngs is not None:",
            f"{INDENT * 2}return {net.name}(**overrides, rngs=rngs)",
            f"{INDENT}model = nnx.eval_shape(lambda: {net.name}(**overrides, rngs=nnx.Rngs(0)))",
            f"{INDENT}_initialize(model)",
            f"{INDENT}return model",
        ]
        loss = [
            "def loss(outputs, target: jax.Array, label_smoothing: float = 0.0) -> jax.Array:",
            f'{INDENT}"""Cross-entropy of the main output plus the weighted side outputs."""',
        ]
        if not net.sides:
            loss.append(f"{INDENT}return cross_entropy(outputs, target, label_smoothing)")
        else:
            loss += [
                f"{INDENT}if not isinstance(outputs, tuple):",
                f"{INDENT * 2}return cross_entropy(outputs, target, label_smoothing)",
                f"{INDENT}total = cross_entropy(outputs.logits, target, label_smoothing)",
                f"{INDENT}for name, weight in LOSS_WEIGHTS.items():",
                f"{INDENT * 2}side = getattr(outputs, name)",
                f"{INDENT * 2}if side is not None:",
                f"{INDENT * 3}total = total + weight * cross_entropy(side, target, "
                "label_smoothing)",
                f"{INDENT}return total",
            ]
        return ["\n".join(create), "\n".join(loss)]

    # -------------------------------------------------------------- classes

    def render_class(self, plan: ClassPlan) -> str:
        doc = _doc(plan.doc or (f"The {plan.name} block." if not plan.is_network
                                else plan.name))
        doc_lines = doc.splitlines()
        if len(doc_lines) > 1:
            doc = "\n".join([doc_lines[0], *(f"{INDENT}{line}" if line else ""
                                             for line in doc_lines[1:]), INDENT])
        self.dropouts = _functional_dropouts(plan)
        lines = [f"class {plan.name}(nnx.Module):", f'{INDENT}"""{doc}"""', ""]
        lines += self.render_init(plan)
        lines.append("")
        lines += self.render_forward(plan)
        return "\n".join(lines)

    def render_init(self, plan: ClassPlan) -> list[str]:
        params = []
        for p in plan.params:
            ann = p.type if p.default != "None" else f"{p.type} | None"
            params.append(f"{p.name}: {ann}" + (f" = {p.default}" if p.default is not None else ""))
        params += ["*", "rngs: nnx.Rngs"]
        lines = [wrap_def(f"{INDENT}def __init__(self, {', '.join(params)}) -> None:")]
        for name, default in plan.defaults_code:
            lines += [f"{INDENT * 2}if {name} is None:", f"{INDENT * 3}{name} = {default}"]
        for group in by_condition(plan.decls):
            if group[0].cond is None or len(group) == 1:
                lines += self.render_decl(group[0])
                continue
            pad = INDENT * 2
            lines += [f"{pad}self.{d.attr} = {_absent(d.ctor)}" for d in group]
            lines.append(f"{pad}if {to_code(group[0].cond)}:")
            for d in group:
                lines += [INDENT + line for line in self.render_decl(replace(d, cond=None))]
        for stmt_id, attr in self.dropouts.items():
            stmt = _find(plan.stmts, stmt_id)
            random = self.dropout if stmt.op.name == "dropout" else self.drop_path
            lines += assign(f"{INDENT * 2}self.{attr}", random(stmt.attrs["p"]))
        if plan.is_network and plan.sides:
            lines += [f"{INDENT * 2}# side outputs are computed in training mode only; "
                      "model.eval() sets this",
                      f"{INDENT * 2}self.deterministic = False"]
        if len(lines) == 1:  # a class without layers (e.g. a lone pool): still valid Python
            lines.append(f"{INDENT * 2}pass")
        return lines

    def render_decl(self, decl: Any) -> list[str]:
        pad = INDENT * 2
        if not isinstance(decl.ctor, (OpCtor, BlockCtor, SeqCtor)):
            return [f"{pad}self.{decl.attr} = {code(decl.ctor)}"]
        if isinstance(decl.ctor, SeqCtor) and needs_building(decl.ctor):
            lines = self.built_sequential(decl.attr, decl.ctor)
            if decl.cond is None:
                return [pad + line for line in lines]
            return [f"{pad}self.{decl.attr} = nnx.data(None)", f"{pad}if {to_code(decl.cond)}:",
                    *(pad + INDENT + line for line in lines)]
        value = self.ctor(decl.ctor, 2 if decl.cond is None else 3)
        if decl.cond is None:
            return assign(f"{pad}self.{decl.attr}", value)
        return [f"{pad}self.{decl.attr} = {_absent(decl.ctor)}",
                f"{pad}if {to_code(decl.cond)}:",
                *assign(f"{pad}{INDENT}self.{decl.attr}", value)]

    def built_sequential(self, attr: str, seq: SeqCtor) -> list[str]:
        """A sequence whose items depend on block parameters, built as a list."""
        self.helpers.add("Sequential")
        lines = ["layers = []"]
        lines += self._build_entries(seq.items)
        return [*lines, f"self.{attr} = Sequential(layers)"]

    def ctor(self, ctor: Any, depth: int) -> str:
        if isinstance(ctor, OpCtor):
            return getattr(self, f"module_{ctor.op.name}")(ctor)
        if isinstance(ctor, BlockCtor):
            args = [code(ctor.in_channels)]
            args += [f"{k}={code(v)}" if kw else code(v) for k, v, kw in ctor.args]
            return f"{ctor.cls}({', '.join(args)}, rngs=rngs)"
        if isinstance(ctor, SeqCtor):
            return self.sequential(ctor, depth)
        raise TypeError(ctor)

    def sequential(self, seq: SeqCtor, depth: int) -> str:
        pad = INDENT * (depth + 1)
        named = any(name is not None for name, _ in seq.items)
        if not named:
            self.helpers.add("Sequential")
            items = [self._seq_item(c, depth + 1) for _, c in seq.items]
            return "Sequential([\n" + "".join(f"{pad}{i},\n" for i in items) + \
                f"{INDENT * depth}])"
        self.helpers.add("NamedSequential")
        entries, index = [], 0
        for name, c in seq.items:
            for one in unrolled(c):
                key = name if name is not None else str(index)
                entries.append(f'{pad}"{key}": {self.ctor(one, depth + 1)},\n')
                index += 1
        return "NamedSequential({\n" + "".join(entries) + f"{INDENT * depth}}})"

    def render_forward(self, plan: ClassPlan) -> list[str]:
        ret = f"{plan.name}Outputs | jax.Array" if plan.is_network and plan.sides \
            else "jax.Array"
        lines = [f"{INDENT}def __call__(self, x: jax.Array) -> {ret}:"]
        pad = INDENT * 2
        for var, _, _ in plan.sides:
            lines.append(f"{pad}{var} = None")
        for stmt in plan.stmts:
            if isinstance(stmt, Comment):
                if plan.is_network and not (lines[-1].strip().startswith("#")):
                    lines.append(f"{pad}# {_nhwc(stmt.text)}")
                continue
            lines += [pad + line for line in self.statement(stmt)]
        if plan.is_network and plan.sides:
            names = [plan.output, *(s[0] for s in plan.sides)]
            any_side = " or ".join(f"{s[0]} is not None" for s in plan.sides)
            lines += [f"{pad}if not self.deterministic and ({any_side}):",
                      f"{pad}{INDENT}return {plan.name}Outputs({', '.join(names)})"]
        lines.append(f"{pad}return {plan.output}")
        return lines

    # -------------------------------------------------------------- statements

    def statement(self, stmt: Any) -> list[str]:
        if isinstance(stmt, Call) and isinstance(stmt.ctor, OpCtor) and not stmt.ctor.op.module:
            arg = stmt.arg if not stmt.optional else stmt.out
            value = getattr(self, f"apply_{stmt.ctor.op.name}")(stmt.ctor, f"self.{stmt.attr}",
                                                                arg)
            if not stmt.optional:
                return [f"{stmt.out} = {value}"]
            lines = [f"{stmt.out} = {stmt.arg}"] if stmt.out != stmt.arg else []
            return lines + [f"if self.{stmt.attr} is not None:", f"{INDENT}{stmt.out} = {value}"]
        if isinstance(stmt, Call):
            if not stmt.optional:
                return [f"{stmt.out} = self.{stmt.attr}({stmt.arg})"]
            lines = [f"{stmt.out} = {stmt.arg}"] if stmt.out != stmt.arg else []
            return lines + [f"if self.{stmt.attr} is not None:",
                            f"{INDENT}{stmt.out} = self.{stmt.attr}({stmt.out})"]
        if isinstance(stmt, Functional):
            if id(stmt) in self.dropouts:
                return [f"{stmt.out} = self.{self.dropouts[id(stmt)]}({stmt.arg})"]
            return [f"{stmt.out} = {getattr(self, f'call_{stmt.op.name}')(stmt, stmt.arg)}"]
        if isinstance(stmt, Cat):
            return assign(stmt.out, f"jnp.concatenate([{', '.join(stmt.args)}], axis=-1)")
        if isinstance(stmt, Sum):
            first = stmt.args[0] if stmt.scale_attr is None else \
                f"{stmt.args[0]} * self.{stmt.scale_attr}"
            return [f"{stmt.out} = {' + '.join([first, *stmt.args[1:]])}"]
        if isinstance(stmt, Prod):
            return [f"{stmt.out} = {' * '.join(stmt.args)}"]
        if isinstance(stmt, Split):
            self.helpers.add("split_channels")
            sizes = f"self.{stmt.attr}" if stmt.attr else code(list(stmt.sizes))
            return assign(", ".join(stmt.outs), f"split_channels({stmt.arg}, {sizes})")
        if isinstance(stmt, Alias):
            return [f"{stmt.out} = {stmt.arg}"]
        if isinstance(stmt, Guarded):
            lines = [f"{stmt.out} = {stmt.arg}"] if stmt.out != stmt.arg else []
            lines.append(f"if self.{stmt.guard} is not None:")
            for inner in stmt.body:
                lines += [INDENT + line for line in self.statement(inner)]
            return lines
        if isinstance(stmt, SideCall):
            guard = f"self.{stmt.attr} is not None and not self.deterministic" \
                if stmt.optional else "not self.deterministic"
            return [f"if {guard}:", f"{INDENT}{stmt.out} = self.{stmt.attr}({stmt.arg})"]
        raise TypeError(stmt)

    # -------------------------------------------------------------- lowerings

    def module_conv2d(self, c: OpCtor) -> str:
        a = c.attrs
        kwargs = [("kernel_size", pair(a["kernel"]))]
        if is_symbolic(a["stride"]) or a["stride"] != (1, 1):
            kwargs.append(("strides", pair(a["stride"])))
        kwargs.append(("padding", self.conv_padding(c)))
        if is_symbolic(a["dilation"]) or a["dilation"] != (1, 1):
            kwargs.append(("kernel_dilation", pair(a["dilation"])))
        if is_symbolic(a["groups"]) or a["groups"] != 1:
            kwargs.append(("feature_group_count", code(a["groups"])))
        if is_symbolic(a["bias"]) or not a["bias"]:
            kwargs.append(("use_bias", code(a["bias"])))
        kwargs.append(("rngs", "rngs"))
        return call("nnx.Conv", [code(c.in_channels), code(a["out"])], kwargs)

    def conv_padding(self, c: OpCtor) -> str:
        """Always explicit ((top, bottom), (left, right)): nnx.Conv defaults to 'SAME'."""
        pad = c.attrs["pad"]
        if is_symbolic(pad):
            if isinstance(pad, (list, tuple)) and len(pad) == 2:
                return "(" + ", ".join(f"({to_code(p)}, {to_code(p)})" for p in pad) + ")"
            if isinstance(pad, (list, tuple)) and len(pad) == 4:
                t, b, left, right = (to_code(p) for p in pad)
                return f"(({t}, {b}), ({left}, {right}))"
            self.helpers.add("_padding")
            return f"_padding({to_code(pad)})"
        top, bottom, left, right = conv_padding(c.concrete, c.in_shape[1:])
        return f"(({top}, {bottom}), ({left}, {right}))"

    def module_batchnorm(self, c: OpCtor) -> str:
        self.helpers.add("BatchNorm")
        a = c.attrs
        momentum = a["momentum"]
        flax_momentum = f"1 - ({to_code(momentum)})" if is_symbolic(momentum) else \
            code(round(1.0 - momentum, 12))
        kwargs = [("epsilon", code(a["eps"])), ("momentum", flax_momentum)]
        if is_symbolic(a["affine"]) or not a["affine"]:
            kwargs += [("use_scale", code(a["affine"])), ("use_bias", code(a["affine"]))]
        elif is_symbolic(a["scale"]) or not a["scale"]:
            kwargs.append(("use_scale", code(a["scale"])))
        if is_symbolic(a["track_running_stats"]) or not a["track_running_stats"]:
            kwargs.append(("track_running_stats", code(a["track_running_stats"])))
        kwargs.append(("use_running_average", "False"))
        return call("BatchNorm", [code(c.in_channels)], kwargs)

    def module_lrn(self, c: OpCtor) -> str:
        self.helpers.add("LocalResponseNorm")
        return call("LocalResponseNorm", [code(c.attrs["size"])], self._lrn_kwargs(c.attrs))

    def call_lrn(self, s: Functional, x: str) -> str:
        self.helpers.add("local_response_norm")
        return call("local_response_norm", [x, code(s.attrs["size"])], self._lrn_kwargs(s.attrs))

    def _lrn_kwargs(self, a: dict) -> list[tuple[str, str]]:
        return [("alpha", code(a["alpha"])), ("beta", code(a["beta"])), ("k", code(a["k"]))]

    def module_maxpool(self, c: OpCtor) -> str:
        self.helpers.add("MaxPool2d")
        return call("MaxPool2d", [code(c.attrs["kernel"])], self._flax_pool_kwargs(c))

    def call_maxpool(self, s: Functional, x: str) -> str:
        self.helpers.add("max_pool2d")
        return call("max_pool2d", [x, code(s.attrs["kernel"])], self._flax_pool_kwargs(s))

    def module_avgpool(self, c: OpCtor) -> str:
        self.helpers.add("AvgPool2d")
        return call("AvgPool2d", [code(c.attrs["kernel"])], self._flax_pool_kwargs(c))

    def call_avgpool(self, s: Functional, x: str) -> str:
        self.helpers.add("avg_pool2d")
        return call("avg_pool2d", [x, code(s.attrs["kernel"])], self._flax_pool_kwargs(s))

    def _flax_pool_kwargs(self, item: Any) -> list[tuple[str, str]]:
        """PyTorch's pool arguments; asymmetric padding as ((top, bottom), (left, right)),
        TensorFlow's size-dependent 'same' as ``"same"``."""
        kwargs = self._pool_kwargs(item)
        pads = pool_pads(item)
        if pads is None:
            return kwargs
        padding = '"same"' if pads == "same" else \
            f"(({pads[0]}, {pads[1]}), ({pads[2]}, {pads[3]}))"
        rest = [(k, v) for k, v in kwargs if k != "padding"]
        return [rest[0], ("padding", padding), *rest[1:]]

    def module_adaptive_avgpool(self, c: OpCtor) -> str:
        self.helpers.add("AdaptiveAvgPool2d")
        return f"AdaptiveAvgPool2d({pair(c.attrs['size'])})"

    def call_adaptive_avgpool(self, s: Functional, x: str) -> str:
        self.helpers.add("adaptive_avg_pool2d")
        return f"adaptive_avg_pool2d({x}, {pair(s.attrs['size'])})"

    def module_adaptive_maxpool(self, c: OpCtor) -> str:
        self.helpers.add("AdaptiveMaxPool2d")
        return f"AdaptiveMaxPool2d({pair(c.attrs['size'])})"

    def call_adaptive_maxpool(self, s: Functional, x: str) -> str:
        self.helpers.add("adaptive_max_pool2d")
        return f"adaptive_max_pool2d({x}, {pair(s.attrs['size'])})"

    def module_global_avgpool(self, c: OpCtor) -> str:
        self.helpers.add("AdaptiveAvgPool2d")
        return "AdaptiveAvgPool2d((1, 1))"

    def call_global_avgpool(self, s: Functional, x: str) -> str:
        return f"{x}.mean((1, 2), keepdims=True)"

    def module_dropout(self, c: OpCtor) -> str:
        return self.dropout(c.attrs["p"])

    def dropout(self, p: Any) -> str:
        """Dropout holds its RNG stream; functional dropout gets a module too."""
        return f"nnx.Dropout({code(p)}, deterministic=False, rngs=rngs)"

    def drop_path(self, p: Any) -> str:
        """Functional drop path gets a module too (it draws random numbers in training)."""
        self.helpers.add("DropPath")
        return f"DropPath({code(p)}, rngs=rngs)"

    def module_flatten(self, c: OpCtor) -> str:
        self.helpers.add("flatten")
        return "flatten"

    def call_flatten(self, s: Functional, x: str) -> str:
        self.helpers.add("flatten")
        return f"flatten({x})"

    def module_linear(self, c: OpCtor) -> str:
        kwargs = [] if c.attrs["bias"] is True else [("use_bias", code(c.attrs["bias"]))]
        return call("nnx.Linear", [code(c.in_channels), code(c.attrs["out"])],
                    [*kwargs, ("rngs", "rngs")])

    def call_l2norm(self, s: Functional, x: str) -> str:
        self.helpers.add("l2_normalize")
        eps = s.attrs["eps"]
        return f"l2_normalize({x})" if eps == 1e-12 else f"l2_normalize({x}, eps={code(eps)})"

    def module_identity(self, c: OpCtor) -> str:
        self.helpers.add("identity")
        return "identity"

    def module_leaky_relu(self, c: OpCtor) -> str:
        return f"partial(nnx.leaky_relu, negative_slope={code(c.attrs['slope'])})"

    def call_leaky_relu(self, s: Functional, x: str) -> str:
        return f"nnx.leaky_relu({x}, {code(s.attrs['slope'])})"

    def module_gelu(self, c: OpCtor) -> str:
        return f"partial(nnx.gelu, approximate={_tanh(c.attrs['approximate'])})"

    def call_gelu(self, s: Functional, x: str) -> str:
        return f"nnx.gelu({x}, approximate={_tanh(s.attrs['approximate'])})"

    def module_layernorm(self, c: OpCtor) -> str:
        """Channels are the last axis in NHWC: one LayerNorm serves vectors and maps."""
        a = c.attrs
        kwargs = [("epsilon", code(a["eps"]))]
        if is_symbolic(a["affine"]) or not a["affine"]:
            kwargs += [("use_scale", code(a["affine"])), ("use_bias", code(a["affine"]))]
        return call("nnx.LayerNorm", [code(c.in_channels)], [*kwargs, ("rngs", "rngs")])

    def module_groupnorm(self, c: OpCtor) -> str:
        a = c.attrs
        kwargs = [("num_groups", code(a["groups"])), ("epsilon", code(a["eps"]))]
        if is_symbolic(a["affine"]) or not a["affine"]:
            kwargs += [("use_scale", code(a["affine"])), ("use_bias", code(a["affine"]))]
        return call("nnx.GroupNorm", [code(c.in_channels)], [*kwargs, ("rngs", "rngs")])

    def module_layer_scale(self, c: OpCtor) -> str:
        self.helpers.add("LayerScale")
        init = code(c.attrs["init"])
        return f"LayerScale(jnp.full(({code(c.in_channels)},), {init}), init={init})"

    def apply_layer_scale(self, c: OpCtor, value: str, x: str) -> str:
        return f"{x} * {value}[...]"

    def module_drop_path(self, c: OpCtor) -> str:
        self.helpers.add("DropPath")
        return f"DropPath({code(c.attrs['p'])}, rngs=rngs)"

    def module_slice(self, c: OpCtor) -> str:
        a = c.attrs
        return f"lambda x: x[..., {code(a['start'])}:{code(a['stop'])}]"

    def call_slice(self, s: Functional, x: str) -> str:
        return f"{x}[..., {code(s.attrs['start'])}:{code(s.attrs['stop'])}]"



# ---------------------------------------------------------------------------- helpers


def _nhwc(text: str) -> str:
    """``N x 64 x 112 x 112`` -> ``N x 112 x 112 x 64``."""
    parts = text.split(" x ")
    if len(parts) == 4:
        parts = [parts[0], parts[2], parts[3], parts[1]]
    return " x ".join(parts)


def _tanh(approximate: Any) -> str:
    """flax's ``approximate`` flag for torch's ``approximate='none' | 'tanh'``."""
    if is_symbolic(approximate):
        return f"{to_code(approximate)} == 'tanh'"
    return str(approximate == "tanh")


def _absent(ctor: Any) -> str:
    """The value of a layer that is not built: a data slot for modules (nnx must know that
    the attribute may hold one), a static ``None`` for stateless functions."""
    stateless = isinstance(ctor, OpCtor) and (
        ctor.op.name in _ACTIVATIONS or ctor.op.name in ("leaky_relu", "flatten", "identity",
                                                         "slice"))
    return "None" if stateless else "nnx.data(None)"


def _walk(stmts: list):
    for stmt in stmts:
        yield stmt
        if isinstance(stmt, Guarded):
            yield from _walk(stmt.body)


def _find(stmts: list, stmt_id: int) -> Any:
    return next(s for s in _walk(stmts) if id(s) == stmt_id)


def _functional_dropouts(plan: ClassPlan) -> dict[int, str]:
    """Module attributes for dropouts PyTorch applies functionally (they need RNG state)."""

    taken = {d.attr for d in plan.decls}
    out = {}
    for stmt in _walk(plan.stmts):
        if isinstance(stmt, Functional) and stmt.op.name in ("dropout", "drop_path"):
            name, i = stmt.op.name, 1
            while name in taken:
                name, i = f"{stmt.op.name}_{i}", i + 1
            taken.add(name)
            out[id(stmt)] = name
    return out











