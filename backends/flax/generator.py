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
from functools import cache
from pathlib import Path
from typing import Any

from inceptdsl.backends.base import (
    INDENT,
    BaseGenerator,
    assign,
    call,
    code,
    non_default,
    pool_pads,
)

from inceptdsl.expr import is_symbolic, to_code
from inceptdsl.ops import conv_padding, fmt_shape, same_at_stride_one
from inceptdsl.plan import ClassPlan, Functional, Guarded, NetworkPlan, OpCtor

PRELUDE = Path(__file__).with_name("prelude.py")
# helpers that port weights go after the model, the others before it
PORTING = ("_initialize", "_TORCH_NAMES", "_to_numpy", "_flax_layout", "load_torch_state_dict")

# op -> (value stored as a module attribute, functional form)
_ACTIVATIONS = {op: (fn, f"{fn}({{x}})") for op, fn in (
    ("relu", "nnx.relu"), ("relu6", "nnx.relu6"), ("silu", "nnx.silu"), ("elu", "nnx.elu"),
    ("sigmoid", "nnx.sigmoid"), ("tanh", "jnp.tanh"), ("hardswish", "nnx.hard_swish"),
    ("hardsigmoid", "nnx.hard_sigmoid"))}
_ACTIVATIONS["softmax"] = ("partial(nnx.softmax, axis=-1)", "nnx.softmax({x}, axis=-1)")
_ONE_LINE = {  # the other lowerings of one line
    "leaky_relu": ("partial(nnx.leaky_relu, negative_slope={slope})",
                   "nnx.leaky_relu({x}, {slope})"),
    "global_avgpool": ("AdaptiveAvgPool2d((1, 1))", "{x}.mean((1, 2), keepdims=True)"),
    "adaptive_avgpool": ("AdaptiveAvgPool2d({size})", "adaptive_avg_pool2d({x}, {size})"),
    "adaptive_maxpool": ("AdaptiveMaxPool2d({size})", "adaptive_max_pool2d({x}, {size})"),
}
_ACTIVATIONS["gelu"] = ("partial(nnx.gelu, approximate=False)", "nnx.gelu({x}, approximate=False)")


def pair(value: Any) -> str:
    """A pair for flax arguments that need one (``kernel_size``, ``strides``).

    >>> pair((3, 3)), pair((1, 7))
    ('(3, 3)', '(1, 7)')
    """
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(to_code(v) for v in value) + ")"
    return f"_pair({to_code(value)})"


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
    ['_pair', '_pool_pads', '_pool_window', 'max_pool2d', 'MaxPool2d']
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

    ACTIVATIONS = {**_ACTIVATIONS, **_ONE_LINE}
    MODULE = "nnx.Module"
    ARRAY = "jax.Array"
    FORWARD = "__call__"
    TRAINING = "not self.deterministic"
    INIT_ARGS = ("*", "rngs: nnx.Rngs")
    BLOCK_ARGS = ", rngs=rngs"
    SUPER_INIT = False
    CONCAT = "jnp.concatenate([{args}], axis=-1)"
    SPLIT = "split_channels({arg}, {sizes})"
    SIZE = staticmethod(lambda value: pair(value))

    def __init__(self, plan: NetworkPlan):
        super().__init__(plan)
        self.helpers |= {"cross_entropy", *PORTING}
        self.dropouts: dict[int, str] = {}  # functional dropout statement -> its module

    def render(self) -> str:
        classes = [self.render_class(c) for c in self.plan.classes]
        factory = self.factory()
        sources, _, order = prelude()
        used = "\n".join(classes + factory)
        self.helpers |= set(re.findall(r"(?<![\w.])(\w+)\(", used)) & set(order)
        names = helper_closure(self.helpers)
        before = [sources[n] for n in names if n not in PORTING]
        after = [sources[n] for n in names if n in PORTING]
        outputs = self.outputs_decl()
        blocks = [*before, *([outputs] if outputs else []), *classes, *factory, *after]
        body = "\n\n\n".join(blocks)
        return f"{self.header()}\n\n{self.imports(body)}\n\n\n{body}\n"

    def header_lines(self) -> list[str]:
        c, h, w = self.spec.input
        return [
            f"Input: N x {h} x {w} x {c} (NHWC; the spec's {fmt_shape(self.spec.input)} in "
            "PyTorch's NCHW).", "",
            f"Generated by inceptdsl from the spec '{self.spec.name}' for flax.nnx. Build it with",
            "create_model(rngs=None, **overrides); port PyTorch weights of the same spec with",
            "load_torch_state_dict(model, state_dict). The model starts in training mode, like",
            "PyTorch: model.eval() / model.train() set BatchNorm.use_running_average and",
            "Dropout.deterministic (and the side outputs) explicitly."]

    def imports(self, text: str) -> str:
        std = [line for needle, line in (("math.", "import math"),
                                         ("namedtuple(", "from collections import namedtuple"),
                                         ("partial(", "from functools import partial"))
               if needle in text]
        third = ["import jax"]
        if "jnp." in text:
            third.append("import jax.numpy as jnp")
        if "np." in text.replace("jnp.", ""):
            third.append("import numpy as np")
        third.append("from flax import nnx")
        if "lax." in text:
            third.append("from jax import lax")
        return "\n".join([*std, *([""] if std else []), *third])

    def factory(self) -> list[str]:
        name = self.plan.network.name
        create = [
            f"def create_model(rngs: nnx.Rngs | None = None, **overrides) -> {name}:",
            f'{INDENT}"""Build {name} with the spec\'s parameters, overriding any of them.',
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
            f"{INDENT * 2}return {name}(**overrides, rngs=rngs)",
            f"{INDENT}model = nnx.eval_shape(lambda: {name}(**overrides, rngs=nnx.Rngs(0)))",
            f"{INDENT}_initialize(model)",
            f"{INDENT}return model",
        ]
        return ["\n".join(create), self.loss("not isinstance(outputs, tuple)")]

    # -------------------------------------------------------------- hooks

    def render_class(self, plan: ClassPlan) -> str:
        self.dropouts = _functional_dropouts(plan)
        return super().render_class(plan)

    def init_tail(self, plan: ClassPlan, length: int) -> list[str]:
        lines = []
        for stmt_id, attr in self.dropouts.items():
            stmt = _find(plan.stmts, stmt_id)
            random = self.dropout if stmt.op.name == "dropout" else self.drop_path
            lines += assign(f"{INDENT * 2}self.{attr}", random(stmt.attrs["p"]))
        if plan.is_network and plan.sides:
            lines += [f"{INDENT * 2}# side outputs are computed in training mode only; "
                      "model.eval() sets this",
                      f"{INDENT * 2}self.deterministic = False"]
        if length + len(lines) == 1:  # a class without layers (e.g. a lone pool)
            lines.append(f"{INDENT * 2}pass")
        return lines

    def absent(self, ctor: Any) -> str:
        """A data slot for modules (nnx must know that the attribute may hold one), a
        static ``None`` for stateless functions."""
        stateless = isinstance(ctor, OpCtor) and (
            ctor.op.name in _ACTIVATIONS or ctor.op.name in ("leaky_relu", "flatten", "identity",
                                                             "slice"))
        return "None" if stateless else "nnx.data(None)"

    def seq_syntax(self, kind: str) -> tuple[str, str, str]:
        self.helpers.add("NamedSequential" if kind == "named" else "Sequential")
        return {"plain": ("Sequential([", "{value},", "])"),
                "named": ("NamedSequential({", '"{key}": {value},', "})"),
                "built": ("Sequential(", "", ")")}[kind]

    def comment(self, text: str) -> str:
        """``N x 64 x 112 x 112`` -> ``N x 112 x 112 x 64``."""
        parts = text.split(" x ")
        if len(parts) == 4:
            parts = [parts[0], parts[2], parts[3], parts[1]]
        return " x ".join(parts)

    def side_init(self, var: str) -> str:
        return f"{var} = None"

    def return_type(self, plan: ClassPlan) -> str:
        return f"{plan.name}Outputs | jax.Array"

    def forward_return(self, plan: ClassPlan) -> list[str]:
        lines = []
        if plan.is_network and plan.sides:
            pad = INDENT * 2
            names = [plan.output, *(s[0] for s in plan.sides)]
            any_side = " or ".join(f"{s[0]} is not None" for s in plan.sides)
            lines = [f"{pad}if not self.deterministic and ({any_side}):",
                     f"{pad}{INDENT}return {plan.name}Outputs({', '.join(names)})"]
        return lines + super().forward_return(plan)

    # -------------------------------------------------------------- lowerings

    def module_conv2d(self, c: OpCtor) -> str:
        a = c.attrs
        kwargs = [("kernel_size", pair(a["kernel"])),
                  *non_default(a, {"stride": (1, 1)}, {"stride": "strides"}, pair),
                  ("padding", self.conv_padding(c)),
                  *non_default(a, {"dilation": (1, 1)}, {"dilation": "kernel_dilation"}, pair),
                  *non_default(a, {"groups": 1, "bias": True},
                               {"groups": "feature_group_count", "bias": "use_bias"}),
                  ("rngs", "rngs")]
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
            return f"_padding({to_code(pad)})"
        if same_at_stride_one(c.attrs) and is_symbolic([c.attrs["kernel"],
                                                        c.attrs["dilation"]]):
            return '"SAME"'
        top, bottom, left, right = conv_padding(c.concrete, c.in_shape[1:])
        return f"(({top}, {bottom}), ({left}, {right}))"

    def module_batchnorm(self, c: OpCtor) -> str:
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
        return call("LocalResponseNorm", [code(c.attrs["size"])], self._lrn_kwargs(c.attrs))

    def call_lrn(self, s: Functional, x: str) -> str:
        return call("local_response_norm", [x, code(s.attrs["size"])], self._lrn_kwargs(s.attrs))

    def _lrn_kwargs(self, a: dict) -> list[tuple[str, str]]:
        return [("alpha", code(a["alpha"])), ("beta", code(a["beta"])), ("k", code(a["k"]))]

    def module_maxpool(self, c: OpCtor) -> str:
        return call("MaxPool2d", [code(c.attrs["kernel"])], self._flax_pool_kwargs(c))

    def call_maxpool(self, s: Functional, x: str) -> str:
        return call("max_pool2d", [x, code(s.attrs["kernel"])], self._flax_pool_kwargs(s))

    def module_avgpool(self, c: OpCtor) -> str:
        return call("AvgPool2d", [code(c.attrs["kernel"])], self._flax_pool_kwargs(c))

    def call_avgpool(self, s: Functional, x: str) -> str:
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

    def module_dropout(self, c: OpCtor) -> str:
        return self.dropout(c.attrs["p"])

    def dropout(self, p: Any) -> str:
        """Dropout holds its RNG stream; functional dropout gets a module too."""
        return f"nnx.Dropout({code(p)}, deterministic=False, rngs=rngs)"

    def call_dropout(self, s: Functional, x: str) -> str:
        return f"self.{self.dropouts[id(s)]}({x})"

    call_drop_path = call_dropout  # a module too: it draws random numbers in training

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
        eps = s.attrs["eps"]
        return f"l2_normalize({x})" if eps == 1e-12 else f"l2_normalize({x}, eps={code(eps)})"

    def module_identity(self, c: OpCtor) -> str:
        self.helpers.add("identity")
        return "identity"

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


def _tanh(approximate: Any) -> str:
    """flax's ``approximate`` flag for torch's ``approximate='none' | 'tanh'``."""
    if is_symbolic(approximate):
        return f"{to_code(approximate)} == 'tanh'"
    return str(approximate == "tanh")



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
