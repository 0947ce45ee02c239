"""Code planning: one backend-neutral :class:`ClassPlan` per block definition and network.

The planner walks each class body (a block definition, or the network body) twice at once:
with *symbolic* values (block parameters and ``in_channels`` are :class:`~inceptdsl.expr.Sym`,
so a constructor argument renders as ``pool_features`` or ``channels_7x7 * 2``) and with the
*concrete* values of one instance (so spatial sizes, needed e.g. by a linear layer after a
flatten, are known). It records module declarations (what ``__init__`` builds) and forward
statements; the backends in ``backends/`` only render plans.

A block definition is planned once per distinct instance; all instances must yield the same
class, otherwise the spec cannot be one class per block and the error says why.

>>> from inceptdsl.loader import load
>>> plan = plan_network(load("inception_v3"))
>>> [c.name for c in plan.classes][:3]
['BasicConv2d', 'InceptionA', 'InceptionB']
>>> [(p.name, p.type) for p in plan.classes[0].params]
[('in_channels', 'int'), ('out', 'int'), ('kernel', 'int | tuple'), ('stride', 'int'), \
('pad', 'int | tuple')]
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import SourceSpan, SpecError
from .expr import (
    Expr,
    Sym,
    SymbolicValueError,
    evaluate,
    is_symbolic,
    to_code,
)
from .naming import MODULE_ATTRIBUTES, Namespace, attr_names, class_nodes, snake
from .ops import OPS, OpDef, OpError, broadcast_shape, scale_width
from .spec import (
    GENERATED_NAMES,
    Add,
    BlockDef,
    Concat,
    Layer,
    Mul,
    Node,
    Ref,
    Repeat,
    Seq,
    Spec,
)

# ---------------------------------------------------------------------------- plan model


@dataclass
class Val:
    """A tensor in ``forward``: the variable holding it, symbolic channels, concrete shape."""

    var: str
    channels: Any
    shape: tuple


@dataclass
class OpCtor:
    """Construct an op's module: ``nn.Conv2d(in_channels, 64, kernel_size=1)``."""

    op: OpDef
    attrs: dict  # symbolic values (render these)
    concrete: dict  # this instance's values (for decisions that need numbers)
    in_channels: Any
    in_shape: tuple
    out_shape: tuple


@dataclass
class BlockCtor:
    """Construct a block's class: ``InceptionA(192, 32)``."""

    cls: str
    in_channels: Any
    args: list[tuple[str, Any, bool]]  # (param, symbolic value, passed by keyword)


@dataclass
class Repeated:
    """``count`` copies of one constructor inside a sequence."""

    ctor: Any
    count: Any


@dataclass
class Conditional:
    """Items of a sequence built only when a block parameter says so."""

    cond: Any
    items: list


@dataclass
class Loop:
    """Items of a sequence built ``count`` times (``count`` a block parameter); ``index``
    names the loop variable when the items depend on the copy's number."""

    count: Any
    items: list
    index: str | None = None


@dataclass
class SeqCtor:
    """A numbered container (``nn.Sequential``); items are (name or None, ctor)."""

    items: list[tuple[str | None, Any]]


@dataclass
class Decl:
    """``self.<attr> = <ctor>`` (only ``if cond`` when ``cond`` is given)."""

    attr: str
    ctor: Any  # OpCtor, BlockCtor, SeqCtor, or a plain value for constant attributes
    cond: Any = None
    span: SourceSpan | None = None


@dataclass
class Call:
    """``out = self.<attr>(arg)``."""

    out: str
    attr: str
    arg: str
    ctor: Any = None
    optional: bool = False


@dataclass
class Functional:
    """``out = <op>(arg)`` for ops without state."""

    out: str
    op: OpDef
    attrs: dict
    concrete: dict
    arg: str
    in_shape: tuple
    out_shape: tuple


@dataclass
class Cat:
    out: str
    args: list[str]


@dataclass
class Sum:
    """``out = args[0] * self.<scale> + args[1] + ...``."""

    out: str
    args: list[str]
    scale_attr: str | None = None


@dataclass
class Prod:
    """``out = args[0] * args[1] * ...`` (the ``mul`` form; shapes broadcast)."""

    out: str
    args: list[str]


@dataclass
class Split:
    """``outs = torch.split(arg, sizes, dim=1)``; ``attr`` holds symbolic sizes."""

    outs: list[str]
    arg: str
    sizes: tuple
    attr: str | None = None


@dataclass
class Guarded:
    """``out = arg``, then ``if self.<guard> is not None:`` the guarded statements."""

    guard: str
    body: list
    out: str
    arg: str


@dataclass
class Alias:
    out: str
    arg: str


@dataclass
class SideCall:
    """A side output (aux head): computed in training mode only."""

    out: str
    attr: str
    arg: str
    optional: bool


@dataclass
class Comment:
    text: str


@dataclass
class Param:
    name: str
    type: str
    default: str | None = None


@dataclass
class ClassPlan:
    """One generated class: constructor parameters, declarations and forward statements."""

    name: str
    params: list[Param]
    decls: list[Decl]
    stmts: list[Any]
    output: str
    doc: str = ""
    is_network: bool = False
    sides: list[tuple[str, float, bool]] = field(default_factory=list)  # name, weight, opt.
    defaults_code: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class NetworkPlan:
    spec: Spec
    classes: list[ClassPlan]  # blocks first (dependencies before users), network last
    network: ClassPlan
    helpers: set[str] = field(default_factory=set)


# ---------------------------------------------------------------------------- entry


def plan_network(spec: Spec) -> NetworkPlan:
    """Plan every class of a spec's generated model."""
    return Planner(spec).run()


@dataclass
class Builder:
    """What one class body collects while it is walked."""

    decls: list[Decl] = field(default_factory=list)
    stmts: list[Any] = field(default_factory=list)
    attrs: Namespace = field(default_factory=Namespace)
    vars: Namespace = field(default_factory=Namespace)
    autonames: dict[int, str] = field(default_factory=dict)
    names: dict[str, Val] = field(default_factory=dict)
    referenced: set[str] = field(default_factory=set)
    emit: bool = True
    sides: list[tuple[str, float, bool]] = field(default_factory=list)
    top: bool = False
    mangle: str | None = None  # walking an inline block: attribute names get this prefix

    def decl(self, d: Decl) -> None:
        if self.emit:
            self.decls.append(d)

    def stmt(self, s: Any) -> None:
        if self.emit:
            self.stmts.append(s)


@dataclass
class Env:
    sym: dict[str, Any]
    con: dict[str, Any]

    def both(self, expr: Expr) -> tuple[Any, Any]:
        return evaluate(expr, self.sym), evaluate(expr, self.con)


class Planner:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.class_names = Namespace(GENERATED_NAMES)
        self.block_class: dict[str, str] = {}
        self.plans: dict[str, ClassPlan] = {}
        self.signatures: dict[str, tuple[str, SourceSpan]] = {}
        self.order: list[str] = []
        self.helpers: set[str] = set()
        self.stack: list[str] = []  # the block calls being planned, innermost last

    def run(self) -> NetworkPlan:
        spec = self.spec
        net_name = self.class_names.fresh(_camel(spec.name))
        for name in spec.blocks:
            self.block_class[name] = self.class_names.fresh(name)
        values = spec.param_values()
        width = values.get("width", 1.0)
        env = Env({k: Sym(k) for k in values} | {"width": width},
                  {**values, "width": width})
        b = self._builder(spec.body, top=True)
        b.vars.reserve("x")
        x = Val("x", spec.input[0], tuple(spec.input))
        b.stmt(Comment(_shape_comment(x.shape)))
        out = self.walk(spec.body, x, b, env, "x")
        params = [Param(k, _type_name(v), to_code(v)) for k, v in values.items()
                  if k != "width" or "width" in spec.params]
        network = ClassPlan(net_name, params, b.decls, b.stmts, out.var, spec.description,
                            is_network=True, sides=b.sides)
        classes = [self.plans[name] for name in self.order]
        return NetworkPlan(spec, [*classes, network], network, self.helpers)

    def _builder(self, body: Node, top: bool = False, emit: bool = True) -> Builder:
        b = Builder(emit=emit, top=top)
        b.autonames = attr_names(body, self._needs_module)
        for node in class_nodes(body):
            if node.name:
                b.attrs.reserve(node.name)
            if node.source:
                b.referenced.add(node.source)
            if isinstance(node, Ref):
                b.referenced.add(node.target)
        b.attrs.taken |= set(b.autonames.values())
        b.vars.taken |= GENERATED_NAMES
        return b

    def _needs_module(self, n: Layer) -> bool:
        if n.callee in self.spec.blocks:
            return True
        op = OPS.get(n.callee)
        return bool(op and op.stateful)

    # -------------------------------------------------------------- walking

    def walk(self, n: Node, x: Val, b: Builder, env: Env, lane: str) -> Val:
        cond = con = None
        if n.when is not None:
            sym, con = env.both(n.when)
            if not is_symbolic(sym):
                if not sym:
                    return x
            elif not isinstance(n, (Layer, Seq, Repeat)):
                raise SpecError("a condition on a block parameter can guard layers and "
                                "sequences, not this form", n.span)
            else:
                cond = sym
        if n.source is not None:
            x = self._ref(n.source, n.source_span or n.span, b)
        if n.side:
            return self._side(n, x, b, env, cond)
        if cond is not None and isinstance(n, Seq) and n.name is None:
            out = self._guarded(n, x, b, env, lane, cond)
        else:
            out = self._dispatch(n, x, b, env, lane, cond)
        if cond is not None:
            out = _guarded_flow(x, out, cond, bool(con))
        if b.top and lane == "x" and not isinstance(n, Seq):
            b.stmt(Comment(_shape_comment(out.shape)))
        if n.name is not None:
            if n.name in b.referenced and out.var != n.name:
                var = b.vars.fresh(n.name)
                b.stmt(Alias(var, out.var))
                out = Val(var, out.channels, out.shape)
            b.names[n.name] = out
        return out

    def _dispatch(self, n: Node, x: Val, b: Builder, env: Env, lane: str, cond: Any) -> Val:
        if isinstance(n, Layer):
            return self.layer(n, x, b, env, lane, cond)
        if isinstance(n, (Repeat, Seq)) and (n.name is not None or isinstance(n, Repeat)):
            return self.container(n, x, b, env, lane, cond)
        if isinstance(n, Seq):
            for item in n.items:
                x = self.walk(item, x, b, env, lane)
            return x
        if isinstance(n, Concat):
            return self.concat(n, x, b, env, lane)
        if isinstance(n, Add):
            return self.add(n, x, b, env, lane)
        if isinstance(n, Mul):
            return self.mul(n, x, b, env, lane)
        if isinstance(n, Ref):
            return self._ref(n.target, n.span, b)
        raise SpecError(f"unsupported node {type(n).__name__}", n.span)

    def _guarded(self, n: Seq, x: Val, b: Builder, env: Env, lane: str, cond: Any) -> Val:
        """An unnamed sequence that exists only when a block parameter says so."""
        first_decl, first_stmt = len(b.decls), len(b.stmts)
        out = self._dispatch(n, x, b, env, lane, None)
        if not b.emit:
            return out
        decls = b.decls[first_decl:]
        if not decls:
            raise SpecError("a condition on a block parameter must guard at least one "
                            "named or stateful layer", n.when.span if n.when else n.span)
        for decl in decls:
            decl.cond = cond
        body = b.stmts[first_stmt:]
        del b.stmts[first_stmt:]
        b.stmt(Guarded(decls[0].attr, body, out.var, x.var))
        return out

    def _side(self, n: Node, x: Val, b: Builder, env: Env, cond: Any) -> Val:
        if not b.top:
            raise SpecError("side outputs (aux heads) belong in the network body", n.span)
        if not isinstance(n, Layer) and n.name is None:
            raise SpecError("a side output is one named layer, block or sequence", n.span,
                            hint="define a block for the aux head and call it by name")
        name = n.name or f"aux{len(b.sides) + 1}"
        var = b.vars.fresh(snake(name))
        start = len(b.stmts)
        self._dispatch(n, x, b, env, var, cond)
        calls = [s for s in b.stmts[start:] if isinstance(s, Call)]
        del b.stmts[start:]
        if len(calls) != 1:
            raise SpecError("a side output is one named layer, block or sequence", n.span)
        weight = 1.0 if n.loss_weight is None else float(evaluate(n.loss_weight, env.con))
        b.stmt(SideCall(var, calls[0].attr, x.var, cond is not None))
        b.sides.append((var, weight, cond is not None))
        return x

    def _ref(self, name: str, span: SourceSpan, b: Builder) -> Val:
        if name not in b.names:
            raise SpecError(f"'{name}' does not name an earlier node in this block", span)
        return b.names[name]

    # -------------------------------------------------------------- layers

    def layer(self, n: Layer, x: Val, b: Builder, env: Env, lane: str, cond: Any) -> Val:
        if n.callee in self.spec.blocks:
            return self.block_call(n, x, b, env, lane, cond)
        op = OPS.get(n.callee)
        if op is None:
            raise SpecError(f"unknown op or block '{n.callee}'", n.span)
        ctor = self.op_ctor(n, op, x, env)
        out = Val(lane, self._op_channels(op, ctor, x), ctor.out_shape)
        if op.stateful or n.name is not None or cond is not None or is_symbolic(
                list(ctor.attrs.values())):  # forward cannot see constructor parameters
            attr = self._attr(n, b)
            b.decl(Decl(attr, ctor, cond, n.span))
            b.stmt(Call(lane, attr, x.var, ctor, cond is not None))
            return out
        if op.name == "identity":
            return x
        b.stmt(Functional(lane, op, ctor.attrs, ctor.concrete, x.var, x.shape, ctor.out_shape))
        return out

    def op_ctor(self, n: Layer, op: OpDef, x: Val, env: Env) -> OpCtor:
        args = [env.both(a) for a in n.call.args]
        kwargs = {k: env.both(v) for k, v in n.call.kwargs.items()}
        try:
            sym = op.bind([a[0] for a in args], {k: v[0] for k, v in kwargs.items()}, None)
            con = op.bind([a[1] for a in args], {k: v[1] for k, v in kwargs.items()}, None)
            width = env.con.get("width", 1.0)
            sym = scale_width(op, sym, n.call, width)
            con = scale_width(op, con, n.call, width)
            if op.width_attr and is_symbolic(sym[op.width_attr]) and width != 1.0:
                self.helpers.add("make_divisible")
            out_shape = tuple(op.shape(con, [x.shape]))
        except OpError as exc:
            raise SpecError(str(exc), n.span, hint=exc.hint) from None
        return OpCtor(op, sym, con, x.channels, x.shape, out_shape)

    def _op_channels(self, op: OpDef, ctor: OpCtor, x: Val) -> Any:
        sym_shape = (x.channels, *x.shape[1:])
        try:
            return op.shape(ctor.attrs, [sym_shape])[0]
        except (OpError, TypeError, SymbolicValueError):
            return ctor.out_shape[0]

    def block_call(self, n: Layer, x: Val, b: Builder, env: Env, lane: str, cond: Any) -> Val:
        bdef = self.spec.blocks[n.callee]
        with self._entering(n):
            return self._block_call(n, bdef, x, b, env, lane, cond)

    @contextmanager
    def _entering(self, n: Layer) -> Iterator[None]:
        """Plan inside a block call; a block that calls itself is an error, even one the
        expander never reached (behind a false condition), instead of endless recursion."""
        if n.callee in self.stack:
            chain = " -> ".join([*self.stack, n.callee])
            raise SpecError(f"block '{n.callee}' calls itself ({chain})", n.span)
        self.stack.append(n.callee)
        try:
            yield
        finally:
            self.stack.pop()

    def _block_call(self, n: Layer, bdef: BlockDef, x: Val, b: Builder, env: Env, lane: str,
                    cond: Any) -> Val:
        args, inner = self._bind(n, bdef, x, env)
        if n.inline:
            return self._inline(n, bdef, x, b, inner, lane)
        ctor, out = self._block_ctor(n, bdef, x, b, args, inner)
        attr = self._attr(n, b)
        b.decl(Decl(attr, ctor, cond, n.span))
        b.stmt(Call(lane, attr, x.var, ctor, cond is not None))
        return Val(lane, out.channels, out.shape)

    def _block_ctor(self, n: Layer, bdef: BlockDef, x: Val, b: Builder, args: list,
                    inner: Env) -> tuple[BlockCtor, Val]:
        """The constructor of a block call and its output; plans the block's class."""
        out = self._block_output(bdef, inner, x)
        if b.emit:
            self._plan_block(bdef, inner.con, x.shape, n.span)
        return BlockCtor(self.block_class[bdef.name], x.channels, args), out

    def _inline(self, n: Layer, bdef: BlockDef, x: Val, b: Builder, env: Env,
                lane: str) -> Val:
        """A macro: the block's layers become attributes of the caller, named after ``n``."""
        from .expand import mangle

        prefix = self._attr(n, b)
        inner = self._builder(bdef.body, emit=b.emit)
        inner = replace(inner, decls=b.decls, stmts=b.stmts, attrs=b.attrs, vars=b.vars,
                        mangle=prefix, top=False)
        inner.autonames = {k: mangle(prefix, v) for k, v in inner.autonames.items()}
        return self.walk(bdef.body, x, inner, env, lane)

    def _bind(self, n: Layer, bdef: BlockDef, x: Val, env: Env) -> tuple[list, Env]:
        names = [p.name for p in bdef.params]
        given = dict(zip(names, n.call.args, strict=False))
        for key, value in n.call.kwargs.items():
            if key not in names:
                raise SpecError(f"block '{bdef.name}' has no parameter '{key}'", value.span)
            given[key] = value
        inner = Env({"width": env.sym.get("width", 1.0), "in_channels": x.channels},
                    {"width": env.con.get("width", 1.0), "in_channels": x.shape[0]})
        args = []
        for i, p in enumerate(bdef.params):
            if p.name in given:
                sym, con = env.both(given[p.name])
                args.append((p.name, sym, i >= len(n.call.args)))
            elif p.default is not None:
                sym, con = inner.both(p.default)
            else:
                raise SpecError(f"block '{bdef.name}' is missing its argument '{p.name}'",
                                n.span)
            inner.sym[p.name], inner.con[p.name] = sym, con
        return args, inner

    def _block_output(self, bdef: BlockDef, inner: Env, x: Val) -> Val:
        probe = self._builder(bdef.body, emit=False)
        return self.walk(bdef.body, Val("x", x.channels, x.shape), probe, inner, "x")

    def _plan_block(self, bdef: BlockDef, con: dict, shape: tuple, span: SourceSpan) -> None:
        plan = self.plan_block(bdef, con, shape)
        signature = class_signature(plan)
        if bdef.name not in self.signatures:
            self.signatures[bdef.name] = (signature, span)
            self.plans[bdef.name] = plan
            self.order.append(bdef.name)
        elif self.signatures[bdef.name][0] == signature:
            _merge_types(self.plans[bdef.name], plan)
        else:
            first = self.signatures[bdef.name][1]
            raise SpecError(
                f"block '{bdef.name}' cannot be generated as one class: this instance "
                "differs from the first one "
                f"({_difference(self.signatures[bdef.name][0], signature)})",
                span, notes=[("first instance", first)],
                hint="make the differing value a block parameter")

    def plan_block(self, bdef: BlockDef, con: dict, shape: tuple) -> ClassPlan:
        sym = {p.name: Sym(p.name) for p in bdef.params}
        env = Env({"width": con.get("width", 1.0), "in_channels": Sym("in_channels"), **sym},
                  dict(con))
        b = self._builder(bdef.body)
        b.vars.reserve("x")
        b.vars.reserve("in_channels")
        for p in bdef.params:
            b.vars.reserve(p.name)
        x = Val("x", Sym("in_channels"), shape)
        out = self.walk(bdef.body, x, b, env, "x")
        params = [Param("in_channels", "int")]
        defaults = []
        for p in bdef.params:
            value = con.get(p.name)
            default = None
            if p.default is not None:
                dsym = evaluate(p.default, env.sym)
                if is_symbolic(dsym):
                    default = "None"
                    defaults.append((p.name, to_code(dsym)))
                else:
                    default = to_code(dsym)
            params.append(Param(p.name, _type_name(value), default))
        name = self.block_class[bdef.name]
        return ClassPlan(name, params, b.decls, b.stmts, out.var, doc=_block_doc(bdef),
                         defaults_code=defaults)

    # -------------------------------------------------------------- containers

    def container(self, n: Node, x: Val, b: Builder, env: Env, lane: str, cond: Any) -> Val:
        attr = self._attr(n, b)
        items: list[tuple[str | None, Any]] = []
        out = self._items(n, x, b, env, items)
        _check_listed(items, n)
        b.decl(Decl(attr, SeqCtor(items), cond, n.span))
        b.stmt(Call(lane, attr, x.var, None, cond is not None))
        return Val(lane, out.channels, out.shape)

    def _items(self, n: Node, x: Val, b: Builder, env: Env, items: list) -> Val:
        if isinstance(n, Seq):
            for item in n.items:
                x = self._item(item, x, b, env, items)
            return x
        if isinstance(n, Repeat):
            return self._repeat(n, x, b, env, items)
        raise SpecError("a named sequence holds layers only", n.span,
                        hint="define a block for this part and call it")

    def _item(self, n: Node, x: Val, b: Builder, env: Env, items: list) -> Val:
        if n.side or n.source is not None:
            raise SpecError("items of a named sequence cannot be side outputs or read "
                            "another node", n.span)
        if n.when is None:
            return self._item_body(n, x, b, env, items)
        sym, con = env.both(n.when)
        if not is_symbolic(sym):
            return self._item_body(n, x, b, env, items) if sym else x
        sub: list = []
        out = self._item_body(n, x, b, env, sub)
        items.append(Conditional(sym, sub))
        return _guarded_flow(x, out, sym, con)

    def _item_body(self, n: Node, x: Val, b: Builder, env: Env, items: list) -> Val:
        if isinstance(n, Seq) and n.name is None:
            return self._items(n, x, b, env, items)
        if isinstance(n, Repeat) and n.name is None:
            return self._repeat(n, x, b, env, items)
        if isinstance(n, (Seq, Repeat)):
            sub: list = []
            out = self._items(n, x, b, env, sub)
            _check_listed(sub, n)
            items.append((n.name, SeqCtor(sub)))
            return out
        if not isinstance(n, Layer):
            raise SpecError("a named sequence holds layers only", n.span,
                            hint="define a block for this part and call it")
        ctor, out = self._layer_ctor(n, x, b, env)
        items.append((n.name, ctor))
        return out

    def _layer_ctor(self, n: Layer, x: Val, b: Builder, env: Env) -> tuple[Any, Val]:
        if n.callee in self.spec.blocks:
            bdef = self.spec.blocks[n.callee]
            with self._entering(n):
                args, inner = self._bind(n, bdef, x, env)
                ctor, out = self._block_ctor(n, bdef, x, b, args, inner)
            return ctor, Val(x.var, out.channels, out.shape)
        op = OPS.get(n.callee)
        if op is None:
            raise SpecError(f"unknown op or block '{n.callee}'", n.span)
        if not op.module:
            raise SpecError(f"'{op.name}' is a learned tensor of its module, not a layer: it "
                            "needs a name in a block or network body, not a place in a named "
                            "sequence or repeat", n.span)
        ctor = self.op_ctor(n, op, x, env)
        return ctor, Val(x.var, self._op_channels(op, ctor, x), ctor.out_shape)

    def _repeat(self, n: Repeat, x: Val, b: Builder, env: Env, items: list) -> Val:
        sym, con = env.both(n.count)
        if not isinstance(con, int) or isinstance(con, bool) or con < 0:
            raise SpecError(f"repeat count must be a whole number, found {con!r}", n.count.span)
        if con == 0 and not is_symbolic(sym):
            return x
        if n.index is not None:
            return self._indexed_repeat(n, x, b, env, items, sym, con)
        if isinstance(n.body, Layer):
            ctor, out = self._layer_ctor(n.body, x, b, env)
            if _same(out.channels, x.channels) and (is_symbolic(sym) or con > 1):
                items.append((None, Repeated(ctor, sym)))
                return out if con else x
        if not is_symbolic(sym):
            for _ in range(con):
                x = self._item(n.body, x, b, env, items)
            return x
        sub: list = []
        out = self._item(n.body, x, b, env, sub)
        if not _same(out.channels, x.channels):
            raise SpecError("a repeat whose count is a parameter needs a body that keeps "
                            "the channel count", n.span)
        items.append(Loop(sym, sub))
        for _ in range(con - 1):
            out = self._item(n.body, out, b, env, [])
        return out if con else x

    def _indexed_repeat(self, n: Repeat, x: Val, b: Builder, env: Env, items: list,
                        sym: Any, con: int) -> Val:
        """A repeat whose body reads its copy's number (``index``), e.g. a drop-path rate."""
        if not is_symbolic(sym):
            for i in range(con):
                x = self._item(n.body, x, b, _indexed(env, n.index, i, i), items)
            return x
        sub: list = []
        out = self._item(n.body, x, b, _indexed(env, n.index, Sym(n.index), 0), sub)
        if not _same(out.channels, x.channels):
            raise SpecError("a repeat whose count is a parameter needs a body that keeps "
                            "the channel count", n.span)
        items.append(Loop(sym, sub, n.index))
        for i in range(1, con):
            out = self._item(n.body, out, b, _indexed(env, n.index, i, i), [])
        return out if con else x

    # -------------------------------------------------------------- merges

    def concat(self, n: Concat, x: Val, b: Builder, env: Env, lane: str) -> Val:
        inputs = self._split(n, x, b, env) if n.split is not None else [x] * len(n.branches)
        outs = self._branches(n.branches, inputs, b, env, "branch")
        shape = OPS["concat"].shape({}, [o.shape for o in outs])
        channels = _sum(o.channels for o in outs)
        if n.split is not None and all(_same(o.channels, i.channels)
                                       for o, i in zip(outs, inputs, strict=True)):
            channels = x.channels  # each branch keeps its slice: the input's channels
        b.stmt(Cat(lane, [o.var for o in outs]))
        return Val(lane, channels, shape)

    def _split(self, n: Concat, x: Val, b: Builder, env: Env) -> list[Val]:
        """``x_a, x_b, ... = torch.split(x, sizes, dim=1)``: one input per branch."""
        from .expand import split_sizes

        sym, con = env.both(n.split)
        sizes = split_sizes(con, len(n.branches), x.shape[0], n.split.span)
        sym = list(sym) if isinstance(sym, (list, tuple)) else sizes
        attr = None
        if is_symbolic(sym):  # forward cannot see constructor parameters
            attr = b.attrs.fresh("split_sizes")
            b.decl(Decl(attr, tuple(sym), None, n.split.span))
        names = [b.vars.fresh("x_" + _branch_name(br, f"branch{i}"))
                 for i, br in enumerate(n.branches)]
        b.stmt(Split(names, x.var, tuple(sym), attr))
        return [Val(v, c, (size, *x.shape[1:]))
                for v, c, size in zip(names, sym, sizes, strict=True)]

    def _branches(self, branches: list[Node], inputs: list[Val], b: Builder, env: Env,
                  default: str, leading_name_only: bool = False) -> list[Val]:
        outs = []
        for i, (branch, x) in enumerate(zip(branches, inputs, strict=True)):
            fallback = default if i == 0 and leading_name_only else f"{default}{i}"
            base = _branch_name(branch, fallback, leading_name_only)
            if b.mangle is not None and base.startswith("_"):
                from .expand import mangle

                base = mangle(b.mangle, base)
            var = b.vars.fresh(base)
            outs.append(self.walk(branch, x, b, env, var))
        return outs

    def add(self, n: Add, x: Val, b: Builder, env: Env, lane: str) -> Val:
        outs = self._branches(n.branches, [x] * len(n.branches), b, env, "out",
                              leading_name_only=True)
        shape = self._broadcast("add", outs, n)
        scale_attr = None
        if n.scale is not None:
            sym, _ = env.both(n.scale)
            scale_attr = b.attrs.fresh("scale")
            b.decl(Decl(scale_attr, sym, None, n.scale.span))
        b.stmt(Sum(lane, [o.var for o in outs], scale_attr))
        out = Val(lane, _channels_of(outs, shape), shape)
        if n.act is not None:
            out = self._activation(n, out, b, env, lane)
        return out

    def mul(self, n: Mul, x: Val, b: Builder, env: Env, lane: str) -> Val:
        outs = self._branches(n.branches, [x] * len(n.branches), b, env, "out",
                              leading_name_only=True)
        if len(outs) == 1:
            return outs[0]
        shape = self._broadcast("mul", outs, n)
        b.stmt(Prod(lane, [o.var for o in outs]))
        return Val(lane, _channels_of(outs, shape), shape)

    def _broadcast(self, op: str, outs: list[Val], n: Node) -> tuple:
        try:
            return broadcast_shape(op, [o.shape for o in outs])
        except OpError as exc:
            raise SpecError(str(exc), n.span, hint=exc.hint) from None

    def _activation(self, n: Add, x: Val, b: Builder, env: Env, lane: str) -> Val:
        sym, con = env.both(n.act)
        cond = None
        if isinstance(sym, Sym) and sym.parts and isinstance(sym.parts[0], str) \
                and sym.parts[2] is None:
            sym, cond = sym.parts[0], sym.parts[1]
        elif is_symbolic(sym):
            raise SpecError("'act' must be an activation name or 'name if condition'",
                            n.act.span)
        if sym is None:
            return x
        op = OPS.get(sym) if isinstance(sym, str) else None
        if op is None or op.kind != "act":
            raise SpecError(f"'act' must name an activation, found {sym!r}", n.act.span)
        attr = b.attrs.fresh(op.name)
        ctor = OpCtor(op, op.bind([], {}, None), op.bind([], {}, None), x.channels, x.shape,
                      x.shape)
        b.decl(Decl(attr, ctor, cond, n.act.span))
        b.stmt(Call(lane, attr, x.var, ctor, cond is not None))
        return x if (cond is not None and not con) else Val(lane, x.channels, x.shape)

    # -------------------------------------------------------------- names

    def _attr(self, n: Node, b: Builder) -> str:
        name = n.name or b.autonames.get(id(n))
        if n.name is not None and b.mangle is not None:
            from .expand import mangle

            name = mangle(b.mangle, n.name)
            b.attrs.reserve(name)
        if name is None:
            name = b.attrs.fresh(snake(getattr(n, "callee", "layers")))
        if name in MODULE_ATTRIBUTES:
            raise SpecError(f"'{name}' cannot name a layer: it is an attribute of every "
                            "module", n.span)
        return name


# ---------------------------------------------------------------------------- helpers


def _merge_types(into: ClassPlan, other: ClassPlan) -> None:
    for mine, theirs in zip(into.params, other.params, strict=True):
        types = set(mine.type.split(" | ")) | set(theirs.type.split(" | "))
        mine.type = " | ".join(sorted(types))


def _check_listed(items: list, n: Node) -> None:
    """A sequence with optional or repeated parts is built as a list: it numbers its items.

    Its items cannot carry names then (the generated code could not keep them).
    """
    if not any(isinstance(e, (Conditional, Loop)) for e in items):
        return
    named, stack = [], list(items)
    while stack:
        entry = stack.pop(0)
        if isinstance(entry, (Conditional, Loop)):
            stack.extend(entry.items)
        elif isinstance(entry, tuple) and entry[0] is not None:
            named.append(entry[0])
    if named:
        raise SpecError(f"'{named[0]}' cannot be named here: this sequence has parts that "
                        "depend on block parameters, so its items are numbered", n.span,
                        hint="drop the names, or move the optional part into its own block")


def _block_doc(bdef: BlockDef) -> str:
    """The comment written above a block's definition in the spec, as its docstring."""
    from .errors import comment_above

    text = comment_above(bdef.span)
    if not text:
        return f"The {bdef.name} block of the spec."
    text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _guarded_flow(x: Val, out: Val, cond: Any, present: bool) -> Val:
    """The value after a part that only exists when ``cond`` holds."""
    channels = out.channels if _same(out.channels, x.channels) else Sym(
        f"{to_code(out.channels)} if {to_code(cond)} else {to_code(x.channels)}", 0)
    return Val(out.var, channels, out.shape if present else x.shape)


def _indexed(env: Env, name: str, sym: Any, con: Any) -> Env:
    """``env`` with a repeat's index bound (symbolic and concrete)."""
    return Env({**env.sym, name: sym}, {**env.con, name: con})


def _channels_of(outs: list[Val], shape: tuple) -> Any:
    """The (symbolic) channels of a broadcast merge: a branch that has all of them."""
    return next((o.channels for o in outs if o.shape[0] == shape[0]), outs[0].channels)


def _camel(name: str) -> str:
    """``inception_v3`` -> ``InceptionV3``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "tuple"
    return "object"


def _same(a: Any, b: Any) -> bool:
    if is_symbolic(a) or is_symbolic(b):
        return to_code(a) == to_code(b)
    return a == b


def _sum(values) -> Any:
    numbers = 0
    symbols = []
    for v in values:
        if is_symbolic(v):
            symbols.append(v)
        else:
            numbers += v
    total: Any = numbers
    for s in symbols:
        total = s + total if total == 0 else total + s
    return total


def _branch_name(n: Node, default: str, leading_name_only: bool = False) -> str:
    """A forward variable name for a branch: its name, or its first named layer's stem.

    Residual branches (``leading_name_only``) only take the name of their leading layer, so
    a branch that starts with an unnamed concat reads ``out``, as in timm.
    """
    if n.name is not None:
        return n.name
    if leading_name_only and isinstance(n, Seq) and n.items and n.items[0].name is None:
        return default
    first = _first_name(n)
    if first is None:
        if isinstance(n, Layer) and n.callee in OPS and OPS[n.callee].kind == "pool":
            return "branch_pool"
        return default
    return re.sub(r"_(\d+[a-z]?|[a-z])$", "", first) or default


def _first_name(n: Node) -> str | None:
    if n.name is not None:
        return n.name
    if isinstance(n, Seq):
        for item in n.items:
            found = _first_name(item)
            if found:
                return found
    return None


def _shape_comment(shape: tuple) -> str:
    return "N x " + " x ".join(str(d) for d in shape)


def _difference(a: str, b: str) -> str:
    for la, lb in zip(a.splitlines(), b.splitlines(), strict=False):
        if la != lb:
            return f"'{la.strip()}' vs '{lb.strip()}'"
    return "different structure"


def class_signature(plan: ClassPlan) -> str:
    """A text that is equal for two plans exactly when they generate the same class."""
    lines = [f"{p.name} = {p.default}" for p in plan.params]
    lines += [f"{d.attr} = {_ctor_text(d.ctor)} if {to_code(d.cond)}" for d in plan.decls]
    lines += [_stmt_text(s) for s in plan.stmts]
    return "\n".join(lines)


def _ctor_text(ctor: Any) -> str:
    if isinstance(ctor, OpCtor):
        attrs = ", ".join(f"{k}={to_code(v)}" for k, v in ctor.attrs.items())
        return f"{ctor.op.name}({to_code(ctor.in_channels)}; {attrs}){_padding_text(ctor)}"
    if isinstance(ctor, BlockCtor):
        args = ", ".join(f"{k}={to_code(v)}" for k, v, _ in ctor.args)
        return f"{ctor.cls}({to_code(ctor.in_channels)}; {args})"
    if isinstance(ctor, SeqCtor):
        return "seq[" + ", ".join(_entry_text(e) for e in ctor.items) + "]"
    if isinstance(ctor, Repeated):
        return f"{_ctor_text(ctor.ctor)} x {to_code(ctor.count)}"
    if isinstance(ctor, (Conditional, Loop)):
        head = to_code(ctor.cond) if isinstance(ctor, Conditional) else \
            f"{to_code(ctor.count)}, {ctor.index}"
        return f"{type(ctor).__name__}({head})[" + ", ".join(
            _entry_text(e) for e in ctor.items) + "]"
    return to_code(ctor)


def _entry_text(entry: Any) -> str:
    if isinstance(entry, tuple):
        return f"{entry[0]}:{_ctor_text(entry[1])}"
    return _ctor_text(entry)


def _stmt_text(stmt: Any) -> str:
    if isinstance(stmt, Functional):
        attrs = ", ".join(f"{k}={to_code(v)}" for k, v in stmt.attrs.items())
        return f"{stmt.out} = {stmt.op.name}({stmt.arg}; {attrs}){_padding_text(stmt)}"
    if isinstance(stmt, Call):
        return f"{stmt.out} = {stmt.attr}({stmt.arg}){_padding_text(stmt.ctor)}"
    if isinstance(stmt, Comment):
        return ""
    if isinstance(stmt, Guarded):
        inner = "; ".join(_stmt_text(s) for s in stmt.body)
        return f"{stmt.out} = {stmt.arg} if {stmt.guard} [{inner}]"
    return repr(stmt)


def _padding_text(item: Any) -> str:
    """Concrete padding decides between a symmetric conv and an explicit pad."""
    if not isinstance(item, (OpCtor, Functional)) or item.op.name != "conv2d":
        return ""
    if is_symbolic(item.attrs["pad"]):
        return ""
    from .ops import conv_padding

    return f" pad{conv_padding(item.concrete, item.in_shape[1:])}"
