"""Expansion: a :class:`~inceptdsl.spec.Spec` with concrete parameters -> the IR.

Block calls are bound and inlined, repeats unrolled, conditions decided and expressions
evaluated; every op becomes a graph node whose id is its attribute path in the generated
model (``Mixed_5b.branch1x1.conv``), so the IR and the ``state_dict`` speak the same names.
Shapes are inferred node by node as the graph grows, because block bodies may refer to
``in_channels``.

>>> from inceptdsl.loader import load
>>> net = expand(load("googlenet_torchvision"))
>>> net.graph.shape(net.graph.output)
(1000,)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .errors import SourceSpan, SpecError
from .expr import Expr, evaluate
from .ir import Graph, Scope, SideOutput
from .naming import MODULE_ATTRIBUTES, attr_names
from .ops import FORM_OPS, OPS, OpError, scale_width
from .passes.shapes import infer_node
from .spec import Add, BlockDef, Concat, Layer, Mul, Node, Ref, Repeat, Seq, Spec

MAX_GRAPH_NODES = 20_000  # ops (the largest shipped spec has ~800)
MAX_REPEAT = 10_000
MAX_DEPTH = 64


@dataclass
class Network:
    """The expanded network: the op graph and the scope tree over it."""

    spec: Spec
    graph: Graph
    root: Scope
    instances: dict[str, list[Scope]] = field(default_factory=dict)


@dataclass
class Ctx:
    """Where expansion stands: the class body being filled and its expression scope."""

    prefix: str
    env: dict[str, Any]
    scope: Scope
    autonames: dict[int, str]
    names: dict[str, str] = field(default_factory=dict)
    numbered: bool = False
    counter: list[int] = field(default_factory=lambda: [0])
    top: bool = False
    side: bool = False
    stack: tuple[str, ...] = ()
    functional: dict[str, int] = field(default_factory=dict)
    mangle: str | None = None  # inside an inline block: attribute names get this prefix


def expand(spec: Spec) -> Network:
    """Expand a spec into its IR network (raises :class:`SpecError` on any problem).

    An error that a variant's edit caused in its parent's text is reported at the edit.
    """
    try:
        return Expander(spec).run()
    except SpecError as exc:
        from .edits import blame

        raise blame(spec, exc, lambda s: Expander(s).run()) from None


class Expander:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.graph = Graph()
        self.instances: dict[str, list[Scope]] = {}

    # -------------------------------------------------------------- entry

    def run(self) -> Network:
        spec = self.spec
        root = Scope("", "network", spec.name, span=spec.body.span)
        env = {**_knobs(), **spec.param_values()}
        ctx = Ctx("", env, root, self._autonames(spec.body), top=True)
        x = self.graph.add("input", "input", {}, [], spec.input_span, meta={
            "shape": tuple(spec.input)})
        root.nodes.append(x)
        out = self.node(spec.body, x, ctx)
        self.graph.output = out
        root.output = out
        return Network(spec, self.graph, root, self.instances)

    # -------------------------------------------------------------- nodes

    def node(self, n: Node, x: str, ctx: Ctx) -> str:
        if n.when is not None and not self._condition(n.when, ctx):
            return x
        if n.source is not None:
            x = self._lookup(n.source, n.source_span or n.span, ctx)
        if n.side:
            return self._side(n, x, ctx)
        out = self._dispatch(n, x, ctx)
        if n.name is not None:
            ctx.names[n.name] = out
        return out

    def _dispatch(self, n: Node, x: str, ctx: Ctx) -> str:
        if isinstance(n, Layer):
            return self.layer(n, x, ctx)
        if isinstance(n, Seq):
            return self.seq(n, x, ctx)
        if isinstance(n, Repeat):
            return self.repeat(n, x, ctx)
        if ctx.numbered:
            raise SpecError(f"a named sequence holds layers only, not '{_form(n)}'", n.span,
                            hint="define a block for this part and call it")
        if isinstance(n, Concat):
            inputs = self.split(n, x, ctx) if n.split is not None else [x] * len(n.branches)
            outs = [self.node(b, i, ctx) for b, i in zip(n.branches, inputs, strict=True)]
            return self.merge("concat", n, outs, ctx)
        if isinstance(n, Add):
            return self.add(n, x, ctx)
        if isinstance(n, Mul):
            outs = [self.node(b, x, ctx) for b in n.branches]
            return self.merge("mul", n, outs, ctx) if len(outs) > 1 else outs[0]
        if isinstance(n, Ref):
            return self._lookup(n.target, n.span, ctx)
        raise SpecError(f"unsupported node {type(n).__name__}", n.span)

    def _side(self, n: Node, x: str, ctx: Ctx) -> str:
        if not ctx.top or ctx.numbered:
            raise SpecError("side outputs (aux heads) belong in the network body", n.span)
        out = self._dispatch(n, x, replace(ctx, side=True))
        weight = 1.0 if n.loss_weight is None else self._number(n.loss_weight, ctx)
        name = n.name or f"aux{len(self.graph.side_outputs) + 1}"
        self.graph.side_outputs.append(SideOutput(name, out, weight, n.span))
        return x

    def seq(self, n: Seq, x: str, ctx: Ctx) -> str:
        if n.name is None:
            for item in n.items:
                x = self.node(item, x, ctx)
            return x
        path = self._path(n, ctx)
        scope = self._child_scope(path, "seq", "Sequential", n.span, ctx)
        inner = replace(ctx, prefix=path + ".", scope=scope, numbered=True, counter=[0])
        for item in n.items:
            x = self.node(item, x, inner)
        scope.output = x
        return x

    def repeat(self, n: Repeat, x: str, ctx: Ctx) -> str:
        count = self._number(n.count, ctx)
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_REPEAT:
            raise SpecError(f"repeat count must be a whole number from 0 to {MAX_REPEAT}, "
                            f"found {count!r}", n.count.span)
        inner = ctx
        if not ctx.numbered or n.name is not None:
            path = self._path(n, ctx)
            scope = self._child_scope(path, "seq", "Sequential", n.span, ctx)
            inner = replace(ctx, prefix=path + ".", scope=scope, numbered=True, counter=[0])
        for i in range(count):
            body_ctx = inner if n.index is None else replace(inner, env={**inner.env,
                                                                          n.index: i})
            x = self.node(n.body, x, body_ctx)
        if inner is not ctx:
            inner.scope.output = x
        return x

    def split(self, n: Concat, x: str, ctx: Ctx) -> list[str]:
        """The inputs of a split concat: one channel slice of ``x`` per branch."""
        sizes = split_sizes(evaluate(n.split, ctx.env), len(n.branches),
                            self.graph.shape(x)[0], n.split.span)
        inputs, start = [], 0
        for size in sizes:
            sid = self._functional_id("slice", replace(n, name=None), ctx)
            attrs = OPS["slice"].bind([start, start + size], {}, None)
            inputs.append(self._emit(sid, "slice", attrs, [x], n.split.span, ctx))
            start += size
        return inputs

    def merge(self, op: str, n: Node, inputs: list[str], ctx: Ctx) -> str:
        node_id = self._functional_id(op, n, ctx)
        return self._emit(node_id, op, {}, inputs, n.span, ctx)

    def add(self, n: Add, x: str, ctx: Ctx) -> str:
        outs = [self.node(b, x, ctx) for b in n.branches]
        if n.scale is not None:
            factor = self._number(n.scale, ctx)
            sid = self._functional_id("scale", n, ctx)
            outs[0] = self._emit(sid, "scale", {"factor": float(factor)}, [outs[0]],
                                 n.scale.span, ctx)
        out = self.merge("add", replace(n, name=None), outs, ctx) if len(outs) > 1 else outs[0]
        act = evaluate(n.act, ctx.env) if n.act is not None else None
        if act is not None:
            if not isinstance(act, str) or act not in OPS or OPS[act].kind != "act":
                raise SpecError(f"'act' must name an activation, found {act!r}", n.act.span)
            aid = self._functional_id(act, n, ctx)
            out = self._emit(aid, OPS[act].name, OPS[act].bind([], {}, None), [out],
                             n.act.span, ctx)
        return out

    # -------------------------------------------------------------- layers

    def layer(self, n: Layer, x: str, ctx: Ctx) -> str:
        if n.callee in self.spec.blocks:
            return self.block(n, self.spec.blocks[n.callee], x, ctx)
        op = OPS.get(n.callee)
        if op is not None and n.inline:
            raise SpecError("'inline' applies to block calls, not ops", n.span)
        if op is None or op.name in FORM_OPS:
            from .expr import did_you_mean

            known = [*self.spec.blocks, *(k for k in OPS if k not in ("input",))]
            raise SpecError(f"unknown op or block '{n.callee}'",
                            n.call.base.shifted(n.call.pos, n.call.func_length),
                            hint=did_you_mean(n.callee, known))
        if not op.module and (ctx.numbered or n.name is None):
            raise SpecError(f"'{op.name}' is a learned tensor of its module, not a layer: it "
                            "needs a name in a block or network body, not a place in a named "
                            "sequence or repeat", n.span,
                            hint=f"name it, e.g. 'gamma: {op.example}'")
        args = [evaluate(a, ctx.env) for a in n.call.args]
        kwargs = {k: evaluate(v, ctx.env) for k, v in n.call.kwargs.items()}
        attrs = self._bind(op, args, kwargs, n)
        attrs = scale_width(op, attrs, n.call, ctx.env.get("width", 1.0))
        stateful = op.stateful or n.name is not None
        node_id = self._path(n, ctx) if stateful or ctx.numbered else self._functional_id(
            op.name, n, ctx)
        out = self._emit(node_id, op.name, attrs, [x], n.span, ctx)
        if stateful or ctx.numbered:
            scope = self._child_scope(node_id, "layer", op.name, n.span, ctx)
            scope.nodes.append(out)
            scope.output = out
            if ctx.scope.nodes[-1] == out:  # the usual case, O(1) (remove() is O(n))
                ctx.scope.nodes.pop()
            else:
                ctx.scope.nodes.remove(out)
        return out

    def _bind(self, op: Any, args: list, kwargs: dict, n: Layer) -> dict:
        try:
            return op.bind(args, kwargs, n.span)
        except OpError as exc:
            span = n.span
            if exc.attr in n.call.kwargs:
                span = n.call.kwargs[exc.attr].span
            else:
                names = [a.name for a in op.attrs]
                if exc.attr in names and names.index(exc.attr) < len(n.call.args):
                    span = n.call.args[names.index(exc.attr)].span
            raise SpecError(str(exc), span, hint=exc.hint) from None

    def block(self, n: Layer, bdef: BlockDef, x: str, ctx: Ctx) -> str:
        if n.callee in ctx.stack or len(ctx.stack) >= MAX_DEPTH:
            chain = " -> ".join([*ctx.stack, n.callee])
            raise SpecError(f"block '{n.callee}' calls itself ({chain})", n.span)
        env = self._bind_block(n, bdef, x, ctx)
        path = self._path(n, ctx)
        scope = self._child_scope(path, "block", bdef.name, n.span, ctx)
        scope.meta["args"] = {k: v for k, v in env.items() if k not in ("width",)}
        self.instances.setdefault(bdef.name, []).append(scope)
        inner = Ctx(path + ".", env, scope, self._autonames(bdef.body),
                    side=ctx.side, stack=(*ctx.stack, n.callee))
        if n.inline:
            inner = self._inline_ctx(n, path, inner, ctx)
        try:
            out = self.node(bdef.body, x, inner)
        except SpecError as exc:
            shape = "x".join(map(str, self.graph.shape(x)))
            exc.notes.append((f"in '{path}' ({bdef.name}, input {shape})", n.span))
            raise
        scope.output = out
        return out

    def _inline_ctx(self, n: Layer, path: str, inner: Ctx, ctx: Ctx) -> Ctx:
        """An inline block fills the caller's module: its names get the call's name."""
        if n.name is None or ctx.numbered:
            raise SpecError("an inline block call needs a name in a block or network body "
                            "(its layers are named after it)", n.span)
        inner.prefix, inner.mangle = ctx.prefix, path[len(ctx.prefix):]
        return inner

    def _bind_block(self, n: Layer, bdef: BlockDef, x: str, ctx: Ctx) -> dict[str, Any]:
        call = n.call
        if len(call.args) > len(bdef.params):
            raise SpecError(f"block '{bdef.name}' takes {len(bdef.params)} arguments "
                            f"({len(call.args)} given)", call.args[len(bdef.params)].span,
                            notes=[(f"'{bdef.name}' is defined here", bdef.span)])
        names = [p.name for p in bdef.params]
        for key, value in call.kwargs.items():
            if key not in names:
                from .expr import did_you_mean

                raise SpecError(f"block '{bdef.name}' has no parameter '{key}'", value.span,
                                hint=did_you_mean(key, names),
                                notes=[(f"'{bdef.name}' is defined here", bdef.span)])
        given = dict(zip(names, call.args, strict=False))
        for key, value in call.kwargs.items():
            if key in given:
                raise SpecError(f"parameter '{key}' given twice", value.span)
            given[key] = value
        env: dict[str, Any] = {"width": ctx.env.get("width", 1.0),
                               "in_channels": self.graph.shape(x)[0]}
        for p in bdef.params:
            if p.name in given:
                env[p.name] = evaluate(given[p.name], ctx.env)
            elif p.default is not None:
                env[p.name] = evaluate(p.default, env)
            else:
                raise SpecError(f"block '{bdef.name}' is missing its argument '{p.name}'",
                                n.call.span, notes=[(f"'{bdef.name}' is defined here", bdef.span)])
        return env

    # -------------------------------------------------------------- helpers

    def _emit(self, node_id: str, op: str, attrs: dict, inputs: list[str],
              span: SourceSpan, ctx: Ctx) -> str:
        if len(self.graph) >= MAX_GRAPH_NODES:
            raise SpecError(f"the network has more than {MAX_GRAPH_NODES} ops", span)
        if node_id in self.graph:
            raise SpecError(f"'{node_id}' is defined twice", span)
        self.graph.add(node_id, op, attrs, inputs, span, ctx.scope.path, ctx.side)
        infer_node(self.graph, node_id)
        ctx.scope.nodes.append(node_id)
        return node_id

    def _path(self, n: Node, ctx: Ctx) -> str:
        if ctx.numbered:
            index = ctx.counter[0]
            ctx.counter[0] += 1
            local = n.name if n.name is not None else str(index)
        else:
            local = n.name if n.name is not None else ctx.autonames.get(id(n))
            if local is None:
                local = f"{type(n).__name__.lower()}_{len(ctx.scope.children)}"
        if ctx.mangle is not None and not ctx.numbered:
            local = mangle(ctx.mangle, local)
        if local in MODULE_ATTRIBUTES:
            raise SpecError(f"'{local}' cannot name a layer: it is a method or attribute of "
                            "every module", n.span)
        return ctx.prefix + local

    def _functional_id(self, op: str, n: Node, ctx: Ctx) -> str:
        if n.name is not None and not ctx.numbered and ctx.mangle is None \
                and ctx.prefix + n.name not in self.graph:
            return ctx.prefix + n.name
        count = ctx.functional.get(op, 0)
        ctx.functional[op] = count + 1
        return f"{ctx.prefix}{ctx.mangle or ''}{op}:{count}"

    def _child_scope(self, path: str, kind: str, type_name: str, span: SourceSpan,
                     ctx: Ctx) -> Scope:
        scope = Scope(path, kind, type_name, span, side=ctx.side)
        ctx.scope.children.append(scope)
        return scope

    def _lookup(self, name: str, span: SourceSpan, ctx: Ctx) -> str:
        if name not in ctx.names:
            from .expr import did_you_mean

            raise SpecError(f"'{name}' does not name an earlier node in this block", span,
                            hint=did_you_mean(name, ctx.names) or
                            "a reference sees named nodes defined before it, in the same block")
        return ctx.names[name]

    def _condition(self, expr: Expr, ctx: Ctx) -> bool:
        value = evaluate(expr, ctx.env)
        if not isinstance(value, (bool, int)) and value is not None:
            raise SpecError(f"a condition must be true or false, found {value!r}", expr.span)
        return bool(value)

    def _number(self, expr: Expr, ctx: Ctx) -> Any:
        value = evaluate(expr, ctx.env)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"expected a number, found {value!r}", expr.span)
        return value

    def _autonames(self, body: Node) -> dict[int, str]:
        return attr_names(body, self._needs_module)

    def _needs_module(self, n: Layer) -> bool:
        if n.callee in self.spec.blocks:
            return True
        op = OPS.get(n.callee)
        return bool(op and op.stateful)


def mangle(prefix: str, member: str) -> str:
    """The caller's attribute for a member of an inline block called ``prefix``.

    >>> mangle("inception_3a_1x1", "_"), mangle("inception_3a_1x1", "_bn")
    ('inception_3a_1x1', 'inception_3a_1x1_bn')
    >>> mangle("stem", "conv")
    'stem_conv'
    """
    if member == "_":
        return prefix
    return prefix + member if member.startswith("_") else f"{prefix}_{member}"


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


def _knobs() -> dict[str, Any]:
    from .spec import KNOBS

    return dict(KNOBS)



def _form(n: Node) -> str:
    return {"Concat": "concat", "Add": "add", "Mul": "mul", "Ref": "ref"}.get(type(n).__name__, "?")
