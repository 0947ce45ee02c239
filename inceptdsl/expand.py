"""Expansion: a :class:`~inceptdsl.spec.Spec` with concrete parameters -> the IR.

The concrete consumer of :class:`~inceptdsl.elaborate.Elaborator` (which owns the meaning
of the spec and every semantic error): block calls are inlined, repeats unrolled,
conditions decided and expressions evaluated; every op becomes a graph node whose id is
its attribute path in the generated model (``Mixed_5b.branch1x1.conv``), so the IR and
the ``state_dict`` speak the same names.
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

from .elaborate import (
    Elaborator,
    activation,
    number,
    repeat_count,
    split_sizes,
    truth,
)
from .errors import SourceSpan, SpecError
from .expr import Expr, evaluate
from .ir import Graph, Scope, SideOutput
from .naming import attr_names, mangle
from .ops import OPS, OpDef, fmt_shape, scale_width
from .passes.shapes import infer_node
from .spec import KNOBS, Add, BlockDef, Concat, Layer, Mul, Node, Repeat, Seq, Spec

MAX_GRAPH_NODES = 20_000  # ops (the largest shipped spec has ~800)
__all__ = ["MAX_GRAPH_NODES", "Network", "expand", "split_sizes"]


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


class Expander(Elaborator):
    """The concrete consumer of the walk: every visited op becomes a graph node."""

    def __init__(self, spec: Spec):
        super().__init__(spec)
        self.graph = Graph()
        self.instances: dict[str, list[Scope]] = {}

    def run(self) -> Network:
        spec = self.spec
        root = Scope("", "network", spec.name, span=spec.body.span)
        env = {**KNOBS, **spec.param_values()}
        ctx = Ctx("", env, root, self._autonames(spec.body), top=True)
        x = self.graph.add("input", "input", {}, [], spec.input_span, meta={
            "shape": tuple(spec.input)})
        root.nodes.append(x)
        out = self.node(spec.body, x, ctx)
        self.graph.output = out
        root.output = out
        return Network(spec, self.graph, root, self.instances)

    # -------------------------------------------------------------- forms

    def decide(self, expr: Expr, ctx: Ctx) -> bool:
        return truth(evaluate(expr, ctx.env), expr.span)

    def on_side(self, n: Node, x: str, ctx: Ctx, guard: Any) -> str:
        out = self.form(n, x, replace(ctx, side=True))
        weight = 1.0 if n.loss_weight is None else self._number(n.loss_weight, ctx)
        name = n.name or f"aux{len(self.graph.side_outputs) + 1}"
        self.graph.side_outputs.append(SideOutput(name, out, weight, n.span))
        return x

    def on_seq(self, n: Seq, x: str, ctx: Ctx, guard: Any) -> str:
        if n.name is None:
            return super().on_seq(n, x, ctx, guard)
        inner = self._container(n, ctx)
        x = super().on_seq(n, x, inner, guard)
        inner.scope.output = x
        return x

    def on_repeat(self, n: Repeat, x: str, ctx: Ctx, guard: Any) -> str:
        count = repeat_count(evaluate(n.count, ctx.env), n.count.span)
        inner = ctx if ctx.numbered and n.name is None else self._container(n, ctx)
        for i in range(count):
            body_ctx = inner if n.index is None else replace(inner, env={**inner.env,
                                                                          n.index: i})
            x = self.node(n.body, x, body_ctx)
        if inner is not ctx:
            inner.scope.output = x
        return x

    def _container(self, n: Node, ctx: Ctx) -> Ctx:
        path = self._path(n, ctx)
        scope = self._child_scope(path, "seq", "Sequential", n.span, ctx)
        return replace(ctx, prefix=path + ".", scope=scope, numbered=True, counter=[0])

    def on_concat(self, n: Concat, x: str, ctx: Ctx, guard: Any) -> str:
        inputs = self.split(n, x, ctx) if n.split is not None else [x] * len(n.branches)
        outs = [self.node(b, i, ctx) for b, i in zip(n.branches, inputs, strict=True)]
        return self.merge("concat", n, outs, ctx)

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

    def on_mul(self, n: Mul, x: str, ctx: Ctx, guard: Any) -> str:
        outs = [self.node(b, x, ctx) for b in n.branches]
        return self.merge("mul", n, outs, ctx) if len(outs) > 1 else outs[0]

    def merge(self, op: str, n: Node, inputs: list[str], ctx: Ctx) -> str:
        node_id = self._functional_id(op, n, ctx)
        return self._emit(node_id, op, {}, inputs, n.span, ctx)

    def on_add(self, n: Add, x: str, ctx: Ctx, guard: Any) -> str:
        outs = [self.node(b, x, ctx) for b in n.branches]
        if n.scale is not None:
            factor = self._number(n.scale, ctx)
            sid = self._functional_id("scale", n, ctx)
            outs[0] = self._emit(sid, "scale", {"factor": float(factor)}, [outs[0]],
                                 n.scale.span, ctx)
        out = self.merge("add", replace(n, name=None), outs, ctx) if len(outs) > 1 else outs[0]
        act = activation(evaluate(n.act, ctx.env), n.act.span) if n.act is not None else None
        if act is not None:
            aid = self._functional_id(act.name, n, ctx)
            out = self._emit(aid, act.name, act.bind([], {}, None), [out], n.act.span, ctx)
        return out

    # -------------------------------------------------------------- layers

    def on_op(self, n: Layer, op: OpDef, x: str, ctx: Ctx, guard: Any) -> str:
        args = [evaluate(a, ctx.env) for a in n.call.args]
        kwargs = {k: evaluate(v, ctx.env) for k, v in n.call.kwargs.items()}
        attrs = self.bind_op(op, args, kwargs, n)
        attrs = scale_width(op, attrs, n.call, self.width, self.follows(ctx))
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

    def on_block(self, n: Layer, bdef: BlockDef, x: str, ctx: Ctx, guard: Any) -> str:
        env = self._bind_block(n, bdef, x, ctx)
        path = self._path(n, ctx)
        scope = self._child_scope(path, "block", bdef.name, n.span, ctx)
        scope.meta["args"] = {k: v for k, v in env.items() if k not in ("width",)}
        self.instances.setdefault(bdef.name, []).append(scope)
        inner = Ctx(path + ".", env, scope, self._autonames(bdef.body),
                    side=ctx.side, stack=(*ctx.stack, n.callee))
        if n.inline:
            inner.prefix, inner.mangle = ctx.prefix, path[len(ctx.prefix):]
        try:
            out = self.node(bdef.body, x, inner)
        except SpecError as exc:
            shape = fmt_shape(self.graph.shape(x))
            exc.notes.append((f"in '{path}' ({bdef.name}, input {shape})", n.span))
            raise
        scope.output = out
        return out

    def _bind_block(self, n: Layer, bdef: BlockDef, x: str, ctx: Ctx) -> dict[str, Any]:
        given = self.bind_block(n, bdef)
        env: dict[str, Any] = {"width": ctx.env.get("width", 1.0),
                               "in_channels": self.graph.shape(x)[0]}
        follows, own = self.follows(ctx), self.own_follows(bdef)
        for p in bdef.params:
            if p.name in given:
                expr = given[p.name][0]
                value = self.scale_arg(bdef, p.name, evaluate(expr, ctx.env), expr, follows)
            else:
                value = self.scale_arg(bdef, p.name, evaluate(p.default, env), p.default, own)
            env[p.name] = value
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
        return ctx.prefix + self.check_attr(local, n.span)

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

    def _number(self, expr: Expr, ctx: Ctx) -> Any:
        return number(evaluate(expr, ctx.env), expr.span)

    def _autonames(self, body: Node) -> dict[int, str]:
        return attr_names(body, self.needs_module)
