"""Elaboration: the one walk that gives a spec body its meaning.

:class:`Elaborator` owns everything a body *means*: dispatch on the form of each node,
conditions (``when``), references (``from``, ``ref``), side outputs, block binding (too
many, unknown, repeated and missing arguments), op lookup, repeat counts, the limits and
every semantic error, each located at its spec span. It is written once; two consumers
subclass it and only say what a visited node produces:

- :class:`inceptdsl.expand.Expander` (concrete values): the IR graph for analysis;
- :class:`inceptdsl.plan.Planner` (symbolic and concrete values): one generated class per
  block definition.

Because the semantic checks live here, a spec that expands (what ``check``, ``summary`` and
``render`` read) is refused or accepted for the same reasons when it is planned (what
``compile`` reads).

A consumer's context object has ``names`` (node name -> value), ``numbered`` (filling a
named sequence), ``top`` (the network body) and ``stack`` (the block calls around it); it
implements the ``on_*`` hooks, ``decide`` (a condition's value) and ``count`` (a repeat's).

>>> from inceptdsl.loader import load
>>> from inceptdsl.expand import expand
>>> expand(load("googlenet")).graph.shape("fc")
(1000,)
"""

from __future__ import annotations

from typing import Any

from .errors import SourceSpan, SpecError, did_you_mean
from .expr import Expr, names_in
from .naming import MODULE_ATTRIBUTES
from .ops import FORM_OPS, OPS, Attr, OpDef, OpError, channel_arg, scale_channels
from .spec import Add, BlockDef, Concat, Layer, Mul, Node, Ref, Repeat, Seq, Spec

MAX_REPEAT = 10_000
MAX_DEPTH = 64  # block calls inside block calls
NOT_CALLABLE = FORM_OPS  # ops that are forms, not layer calls


class Elaborator:
    """The walk over a body; subclasses implement the ``on_*`` hooks (see the module doc)."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.width = spec.param_values().get("width", 1.0)
        self.channel_params = channel_params(spec)

    # -------------------------------------------------------------- the walk

    def node(self, n: Node, x: Any, ctx: Any) -> Any:
        """Visit one node with input ``x``; returns its output (``x`` when it is absent)."""
        guard = None
        if n.when is not None:
            guard = self.decide(n.when, ctx)
            if guard is False:
                return x
            guard = None if guard is True else guard
        if n.source is not None:
            if ctx.numbered:
                raise SpecError("items of a named sequence cannot read another node "
                                "('from')", n.source_span or n.span,
                                hint="define a block for this part and call it")
            x = self.lookup(n.source, n.source_span or n.span, ctx)
        if n.side:
            self.check_side(n, ctx)
            return self.on_side(n, x, ctx, guard)
        out = self.on_form(n, x, ctx, guard)
        if n.name is not None:
            out = self.on_name(n, out, ctx)
        return out

    def form(self, n: Node, x: Any, ctx: Any, guard: Any = None) -> Any:
        """Dispatch on the form of ``n``: a layer (op or block), seq, repeat, concat, add, ref."""
        if isinstance(n, Layer):
            target = self.resolve(n, ctx)
            if isinstance(target, BlockDef):
                return self.on_block(n, target, x, ctx, guard)
            return self.on_op(n, target, x, ctx, guard)
        if isinstance(n, Seq):
            return self.on_seq(n, x, ctx, guard)
        if isinstance(n, Repeat):
            return self.on_repeat(n, x, ctx, guard)
        if ctx.numbered:
            raise SpecError(f"a named sequence holds layers only, not '{form_name(n)}'",
                            n.span, hint="define a block for this part and call it")
        if isinstance(n, Concat):
            return self.on_concat(n, x, ctx, guard)
        if isinstance(n, Add):
            return self.on_add(n, x, ctx, guard)
        if isinstance(n, Mul):
            return self.on_mul(n, x, ctx, guard)
        if isinstance(n, Ref):
            return self.on_ref(n, self.lookup(n.target, n.span, ctx), x, ctx, guard)
        raise SpecError(f"unsupported node {type(n).__name__}", n.span)

    # hooks: what a consumer produces for each form (defaults: plain walking)

    def on_form(self, n: Node, x: Any, ctx: Any, guard: Any) -> Any:
        return self.form(n, x, ctx, guard)

    def on_name(self, n: Node, out: Any, ctx: Any) -> Any:
        ctx.names[n.name] = out
        return out

    def on_ref(self, n: Ref, target: Any, x: Any, ctx: Any, guard: Any) -> Any:
        return target

    def on_seq(self, n: Seq, x: Any, ctx: Any, guard: Any) -> Any:
        for item in n.items:
            x = self.node(item, x, ctx)
        return x

    def on_side(self, n: Node, x: Any, ctx: Any, guard: Any) -> Any:
        raise NotImplementedError

    def on_op(self, n: Layer, op: OpDef, x: Any, ctx: Any, guard: Any) -> Any:
        raise NotImplementedError

    def on_block(self, n: Layer, bdef: BlockDef, x: Any, ctx: Any, guard: Any) -> Any:
        raise NotImplementedError

    def on_repeat(self, n: Repeat, x: Any, ctx: Any, guard: Any) -> Any:
        raise NotImplementedError

    def on_concat(self, n: Concat, x: Any, ctx: Any, guard: Any) -> Any:
        raise NotImplementedError

    def on_add(self, n: Add, x: Any, ctx: Any, guard: Any) -> Any:
        raise NotImplementedError

    def on_mul(self, n: Mul, x: Any, ctx: Any, guard: Any) -> Any:
        raise NotImplementedError

    def decide(self, expr: Expr, ctx: Any) -> Any:
        """A condition's value: True, False, or (planner) a guard known at build time."""
        raise NotImplementedError

    # -------------------------------------------------------------- semantics

    def resolve(self, n: Layer, ctx: Any) -> BlockDef | OpDef:
        """The block or op a layer calls; unknown names get a did-you-mean hint."""
        if n.callee in self.spec.blocks:
            bdef = self.spec.blocks[n.callee]
            stack = ctx.stack
            if n.callee in stack or len(stack) >= MAX_DEPTH:
                chain = " -> ".join([*stack, n.callee])
                raise SpecError(f"block '{n.callee}' calls itself ({chain})", n.span)
            if n.inline and (n.name is None or ctx.numbered):
                raise SpecError("an inline block call needs a name in a block or network "
                                "body (its layers are named after it)", n.span)
            return bdef
        op = OPS.get(n.callee)
        if op is None or op.name in NOT_CALLABLE:
            known = [*self.spec.blocks, *(k for k in OPS if k not in NOT_CALLABLE)]
            raise SpecError(f"unknown op or block '{n.callee}'",
                            n.call.base.shifted(n.call.pos, n.call.func_length),
                            hint=did_you_mean(n.callee, known))
        if n.inline:
            raise SpecError("'inline' applies to block calls, not ops", n.span)
        if not op.module and (ctx.numbered or n.name is None):
            raise SpecError(f"'{op.name}' is a learned tensor of its module, not a layer: it "
                            "needs a name in a block or network body, not a place in a named "
                            "sequence or repeat", n.span,
                            hint=f"name it, e.g. 'gamma: {op.example}'")
        return op

    def bind_block(self, n: Layer, bdef: BlockDef) -> dict[str, tuple[Expr, bool]]:
        """The argument expressions of a block call: parameter -> (expression, by keyword).

        Parameters left out have a default (evaluated by the consumer in the block's scope).
        """
        call = n.call
        note = [(f"'{bdef.name}' is defined here", bdef.span)]
        if len(call.args) > len(bdef.params):
            raise SpecError(f"block '{bdef.name}' takes {len(bdef.params)} arguments "
                            f"({len(call.args)} given)", call.args[len(bdef.params)].span,
                            notes=note)
        names = [p.name for p in bdef.params]
        given = {k: (v, False) for k, v in zip(names, call.args, strict=False)}
        for key, value in call.kwargs.items():
            if key not in names:
                raise SpecError(f"block '{bdef.name}' has no parameter '{key}'", value.span,
                                hint=did_you_mean(key, names), notes=note)
            if key in given:
                raise SpecError(f"parameter '{key}' given twice", value.span)
            given[key] = (value, True)
        for p in bdef.params:
            if p.name not in given and p.default is None:
                raise SpecError(f"block '{bdef.name}' is missing its argument '{p.name}'",
                                call.span, notes=note)
        return given

    def follows(self, ctx: Any) -> frozenset[str]:
        """Names whose channel counts are already scaled where ``ctx``'s body is written:
        ``in_channels`` and the parameters of the block being walked (scaled by its caller).
        """
        if not ctx.stack:
            return frozenset()
        bdef = self.spec.blocks[ctx.stack[-1]]
        return frozenset({"in_channels", *(p.name for p in bdef.params)})

    def scale_arg(self, bdef: BlockDef, name: str, value: Any, written: Expr,
                  follows: frozenset[str]) -> Any:
        """A block argument, scaled by the width knob when it is a channel count written
        here (a channel count scales once, where it is written)."""
        if name not in self.channel_params[bdef.name]:
            return value
        return scale_channels(value, written, follows, self.width,
                              limits=(bdef.name, Attr(name, "pos")))

    def own_follows(self, bdef: BlockDef) -> frozenset[str]:
        """What a block's parameter defaults may follow: its input and other parameters."""
        return frozenset({"in_channels", *(p.name for p in bdef.params)})

    def bind_op(self, op: OpDef, args: list, kwargs: dict, n: Layer) -> dict:
        """An op's attributes from argument values; errors point at the argument."""
        try:
            return op.bind(args, kwargs, n.span)
        except OpError as exc:
            raise SpecError(str(exc), arg_span(n, op, exc.attr), hint=exc.hint) from None

    def lookup(self, name: str, span: SourceSpan, ctx: Any) -> Any:
        """The value of an earlier named node of the same class body."""
        if name not in ctx.names:
            raise SpecError(f"'{name}' does not name an earlier node in this block", span,
                            hint=did_you_mean(name, ctx.names) or
                            "a reference sees named nodes defined before it, in the same block")
        return ctx.names[name]

    def check_side(self, n: Node, ctx: Any) -> None:
        """Side outputs are named layers, blocks or sequences of the network body."""
        if not ctx.top or ctx.numbered:
            raise SpecError("side outputs (aux heads) belong in the network body", n.span)
        if not isinstance(n, Layer) and n.name is None:
            raise SpecError("a side output is one named layer, block or sequence", n.span,
                            hint="define a block for the aux head and call it by name")
        if isinstance(n, (Concat, Add, Ref)):
            raise SpecError("a side output is one named layer, block or sequence", n.span,
                            hint="define a block for the aux head and call it by name")

    def check_attr(self, name: str, span: SourceSpan) -> str:
        """A layer name must not shadow a module method or attribute."""
        if name in MODULE_ATTRIBUTES:
            raise SpecError(f"'{name}' cannot name a layer: it is a method or attribute of "
                            "every module", span)
        return name

    def needs_module(self, n: Layer) -> bool:
        """Whether an unnamed layer still becomes a module attribute (see :func:`needs_module`)."""
        return needs_module(n, self.spec.blocks)


def needs_module(n: Layer, blocks: dict) -> bool:
    """Whether an unnamed layer still becomes a module attribute: a block call or a
    stateful op (a conv has weights, a relu does not).

    >>> from inceptdsl.spec import parse_node
    >>> needs_module(parse_node("conv(8, 3)", None), {}), needs_module(parse_node("relu", None), {})
    (True, False)
    """
    if n.callee in blocks:
        return True
    op = OPS.get(n.callee)
    return bool(op and op.stateful)


# ---------------------------------------------------------------------------- width


def channel_params(spec: Spec) -> dict[str, frozenset[str]]:
    """The parameters of each block that are channel counts, by block name.

    A parameter is one when an op's channel argument (``conv(out, 1)``), a channel
    parameter of a block it calls, or the default of another of its channel parameters is
    written in terms of it (and not of ``in_channels``, which follows the input). The
    width knob scales such a parameter once, where the block is called, so that
    ``when: in_channels != out`` decides the same at every width.

    >>> from inceptdsl.loader import load
    >>> sorted(channel_params(load("inception_v3"))["InceptionA"])
    ['pool_features']
    """
    found: dict[str, set[str]] = {name: set() for name in spec.blocks}
    changed = True
    while changed:
        changed = False
        for name, bdef in spec.blocks.items():
            params = {p.name for p in bdef.params}
            written = [e for layer in layers_in(bdef.body)
                       for e in _channel_exprs(layer, spec, found)]
            written += [p.default for p in bdef.params
                        if p.name in found[name] and p.default is not None]
            for expr in written:
                names = names_in(expr)
                new = set() if "in_channels" in names else (names & params) - found[name]
                if new:
                    found[name] |= new
                    changed = True
    return {name: frozenset(v) for name, v in found.items()}


def _channel_exprs(layer: Layer, spec: Spec, found: dict[str, set[str]]) -> list[Expr]:
    call = layer.call
    if layer.callee in spec.blocks:
        params = [p.name for p in spec.blocks[layer.callee].params]
        given = {**dict(zip(params, call.args, strict=False)), **call.kwargs}
        return [e for k, e in given.items() if k in found[layer.callee]]
    op = OPS.get(layer.callee)
    if op is None or op.width_attr is None:
        return []
    expr = channel_arg(op, call)
    return [] if expr is None else [expr]


def layers_in(body: Node):
    """Every layer call of a body, at any depth (branches, sequences, repeat bodies)."""
    if isinstance(body, Layer):
        yield body
    elif isinstance(body, Seq):
        for item in body.items:
            yield from layers_in(item)
    elif isinstance(body, (Concat, Add, Mul)):
        for branch in body.branches:
            yield from layers_in(branch)
    elif isinstance(body, Repeat):
        yield from layers_in(body.body)


# ---------------------------------------------------------------------------- values


def truth(value: Any, span: SourceSpan) -> bool:
    """A condition's concrete value: true or false (a number counts, none is false)."""
    if not isinstance(value, (bool, int)) and value is not None:
        raise SpecError(f"a condition must be true or false, found {value!r}", span)
    return bool(value)


def number(value: Any, span: SourceSpan) -> Any:
    """A concrete number (``scale``, ``loss_weight``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"expected a number, found {value!r}", span)
    return value


def repeat_count(value: Any, span: SourceSpan) -> int:
    """A concrete repeat count, within the limit."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_REPEAT:
        raise SpecError(f"repeat count must be a whole number from 0 to {MAX_REPEAT}, "
                        f"found {value!r}", span)
    return value


def activation(value: Any, span: SourceSpan) -> OpDef | None:
    """The activation an ``add`` applies after the sum (``act: relu``), or none."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in OPS or OPS[value].kind != "act":
        raise SpecError(f"'act' must name an activation, found {value!r}", span)
    return OPS[value]


def split_sizes(value: Any, branches: int, channels: Any, span: SourceSpan) -> list:
    """Check a concat's ``split``: one channel count per branch, adding up to the input.

    >>> split_sizes([40, 8, 8, 8], 4, 64, None)
    [40, 8, 8, 8]
    """
    if not isinstance(value, (list, tuple)) or len(value) != branches:
        raise SpecError(f"'split' needs a list of {branches} channel counts (one per "
                        f"branch), found {value!r}", span)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise SpecError(f"'split' sizes must be whole numbers >= 1, found {list(value)!r}",
                        span)
    if sum(value) != channels:
        raise SpecError(f"'split' sizes {list(value)!r} add up to {sum(value)}, but the "
                        f"input has {channels} channels", span)
    return list(value)


def arg_span(n: Layer, op: OpDef, attr: str | None) -> SourceSpan:
    """The span of the argument that set ``attr`` in a layer call (or the call's)."""
    if attr in n.call.kwargs:
        return n.call.kwargs[attr].span
    names = [a.name for a in op.attrs]
    if attr in names and names.index(attr) < len(n.call.args):
        return n.call.args[names.index(attr)].span
    return n.span


def form_name(n: Node) -> str:
    """The keyword of a node's form, for messages."""
    return {"Concat": "concat", "Add": "add", "Mul": "mul", "Ref": "ref", "Seq": "seq",
            "Repeat": "repeat"}.get(type(n).__name__, "layer")
