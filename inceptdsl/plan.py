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
import textwrap
from dataclasses import dataclass, field, replace
from typing import Any

from .elaborate import (
    Elaborator,
    activation,
    form_name,
    number,
    repeat_count,
    split_sizes,
    truth,
)
from .errors import SourceSpan, SpecError
from .expr import (
    Expr,
    Sym,
    SymbolicValueError,
    binary_sym,
    evaluate,
    is_symbolic,
    to_code,
)
from .naming import Namespace, attr_names, class_nodes, mangle, snake
from .ops import (
    OPS,
    OpDef,
    OpError,
    broadcast_shape,
    conv_padding,
    fmt_shape,
    same_at_stride_one,
    scale_width,
)
from .spec import (
    GENERATED_NAMES,
    KNOBS,
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
    """``out = arg``, then ``if self.<guard> is not None:`` the guarded statements.

    With ``flag``, ``guard`` is a boolean attribute: ``if self.<guard>:``.
    """

    guard: str
    body: list
    out: str
    arg: str
    flag: bool = False


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
    input_shape: tuple = ()


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


@dataclass
class Guard:
    """A condition on a block parameter: its source (``sym``) and this instance's value."""

    sym: Any
    con: bool


@dataclass
class PCtx:
    """Where planning stands: the class body being filled, its values and forward variable.

    ``items`` is set while filling a numbered container (its constructors go there, not to
    declarations); ``dead`` while walking a part that this instance does not have (its
    condition is false here), whose concrete shapes are then not checked.
    """

    b: Builder
    env: Env
    lane: str
    items: list | None = None
    stack: tuple[str, ...] = ()
    dead: bool = False

    @property
    def names(self) -> dict[str, Val]:
        return self.b.names

    @property
    def numbered(self) -> bool:
        return self.items is not None

    @property
    def top(self) -> bool:
        return self.b.top


class Planner(Elaborator):
    """The code-plan consumer of the walk: declarations and forward statements per class."""

    def __init__(self, spec: Spec):
        super().__init__(spec)
        self.class_names = Namespace(GENERATED_NAMES)
        self.block_class: dict[str, str] = {}
        self.plans: dict[str, ClassPlan] = {}
        self.variants: dict[str, list[tuple[str, str, SourceSpan]]] = {}
        # block instances with equal values plan alike: their class and output, once
        self.planned: dict[tuple, str] = {}
        self.probed: dict[tuple, Val] = {}
        self.order: list[str] = []
        self.helpers: set[str] = set()

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
        out = self.node(spec.body, x, PCtx(b, env, "x"))
        params = [Param(k, _type_name(v), to_code(v)) for k, v in values.items()
                  if k not in KNOBS]  # knobs are built into the generated code
        network = ClassPlan(net_name, params, b.decls, b.stmts, out.var, spec.description,
                            is_network=True, sides=b.sides)
        classes = [self.plans[name] for name in self.order]
        return NetworkPlan(spec, [*classes, network], network, self.helpers)

    def _builder(self, body: Node, top: bool = False, emit: bool = True) -> Builder:
        b = Builder(emit=emit, top=top)
        b.autonames = attr_names(body, self.needs_module)
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

    # -------------------------------------------------------------- conditions, names

    def decide(self, expr: Expr, ctx: PCtx) -> Any:
        sym, con = ctx.env.both(expr)
        present = truth(con, expr.span)
        return Guard(sym, present) if is_symbolic(sym) else present

    def on_form(self, n: Node, x: Val, ctx: PCtx, guard: Guard | None) -> Val:
        if guard is None:
            out = self.form(n, x, ctx)
        else:
            inner = replace(ctx, dead=ctx.dead or not guard.con)
            if ctx.numbered:
                sub: list = []
                out = self.form(n, x, replace(inner, items=sub))
                ctx.items.append(Conditional(guard.sym, sub))
            elif _guards_itself(n):
                out = self.form(n, x, inner, guard)
            else:
                out = self._guarded(n, x, inner, guard)
            out = _guarded_flow(x, out, guard.sym, guard.con)
        if ctx.top and ctx.lane == "x" and not ctx.numbered and not isinstance(n, Seq):
            ctx.b.stmt(Comment(_shape_comment(out.shape)))
        return out

    def _guarded(self, n: Node, x: Val, ctx: PCtx, guard: Guard) -> Val:
        """A part that exists only when a block parameter says so, under one ``if``."""
        b = ctx.b
        first_decl, first_stmt = len(b.decls), len(b.stmts)
        out = self.form(n, x, ctx)
        if out.var != ctx.lane:  # a bare reference: give the part's result its variable
            b.stmt(Alias(ctx.lane, out.var))
            out = Val(ctx.lane, out.channels, out.shape)
        if not b.emit:
            return out
        modules = [d for d in b.decls[first_decl:] if _is_module(d.ctor)]
        for decl in modules:
            decl.cond = guard.sym if decl.cond is None else binary_sym("and", guard.sym,
                                                                      decl.cond)
        body = b.stmts[first_stmt:]
        del b.stmts[first_stmt:]
        exact = [d for d in modules if d.cond is guard.sym]
        if exact:
            b.stmt(Guarded(exact[0].attr, body, out.var, x.var))
            return out
        flag = b.attrs.fresh(f"use_{n.name or form_name(n)}")
        b.decl(Decl(flag, Sym(f"bool({to_code(guard.sym)})"), None, n.span))
        b.stmt(Guarded(flag, body, out.var, x.var, flag=True))
        return out

    def on_name(self, n: Node, out: Val, ctx: PCtx) -> Val:
        if ctx.numbered:
            return out
        b = ctx.b
        if n.name in b.referenced and out.var != n.name:
            var = b.vars.fresh(n.name)
            b.stmt(Alias(var, out.var))
            out = Val(var, out.channels, out.shape)
        b.names[n.name] = out
        return out

    def on_side(self, n: Node, x: Val, ctx: PCtx, guard: Guard | None) -> Val:
        b = ctx.b
        name = n.name or f"aux{len(b.sides) + 1}"
        var = b.vars.fresh(snake(name))
        start = len(b.stmts)
        self.form(n, x, replace(ctx, lane=var), guard)
        calls = [s for s in b.stmts[start:] if isinstance(s, Call)]
        del b.stmts[start:]
        if len(calls) != 1:
            raise SpecError("a side output is one named layer, block or sequence", n.span)
        weight = 1.0 if n.loss_weight is None else float(
            number(evaluate(n.loss_weight, ctx.env.con), n.loss_weight.span))
        b.stmt(SideCall(var, calls[0].attr, x.var, guard is not None))
        b.sides.append((var, weight, guard is not None))
        return x

    # -------------------------------------------------------------- layers

    def on_op(self, n: Layer, op: OpDef, x: Val, ctx: PCtx, guard: Guard | None) -> Val:
        b = ctx.b
        ctor = self.op_ctor(n, op, x, ctx)
        channels = self._op_channels(op, ctor, x)
        if ctx.numbered:
            ctx.items.append((n.name, ctor))
            return Val(x.var, channels, ctor.out_shape)
        out = Val(ctx.lane, channels, ctor.out_shape)
        if op.stateful or n.name is not None or guard is not None or is_symbolic(
                list(ctor.attrs.values())):  # forward cannot see constructor parameters
            attr = self._attr(n, b)
            b.decl(Decl(attr, ctor, _cond(guard), n.span))
            b.stmt(Call(ctx.lane, attr, x.var, ctor, guard is not None))
            return out
        if op.name == "identity":
            return x
        b.stmt(Functional(ctx.lane, op, ctor.attrs, ctor.concrete, x.var, x.shape,
                          ctor.out_shape))
        return out

    def op_ctor(self, n: Layer, op: OpDef, x: Val, ctx: PCtx) -> OpCtor:
        env = ctx.env
        args = [env.both(a) for a in n.call.args]
        kwargs = {k: env.both(v) for k, v in n.call.kwargs.items()}
        con = self.bind_op(op, [a[1] for a in args], {k: v[1] for k, v in kwargs.items()}, n)
        sym = self.bind_op(op, [a[0] for a in args], {k: v[0] for k, v in kwargs.items()}, n)
        follows = self.follows(ctx)
        sym = scale_width(op, sym, n.call, self.width, follows)
        con = scale_width(op, con, n.call, self.width, follows)
        if op.width_attr and is_symbolic(sym[op.width_attr]) and "make_divisible" in str(
                sym[op.width_attr]):
            self.helpers.add("make_divisible")
        if _pad_by_instance(op, sym, con):
            sym = {**sym, "pad": con["pad"]}
        try:
            out_shape = tuple(op.shape(con, [x.shape]))
        except OpError as exc:
            if not ctx.dead:
                raise SpecError(str(exc), n.span, hint=exc.hint) from None
            out_shape = x.shape  # a part this instance lacks: its shapes are never used
        return OpCtor(op, sym, con, x.channels, x.shape, out_shape)

    def _op_channels(self, op: OpDef, ctor: OpCtor, x: Val) -> Any:
        sym_shape = (x.channels, *x.shape[1:])
        try:
            return op.shape(ctor.attrs, [sym_shape])[0]
        except (OpError, TypeError, SymbolicValueError):
            return ctor.out_shape[0]

    def on_block(self, n: Layer, bdef: BlockDef, x: Val, ctx: PCtx,
                 guard: Guard | None) -> Val:
        b = ctx.b
        args, inner = self._bind(n, bdef, x, ctx)
        stack = (*ctx.stack, bdef.name)
        if n.inline:
            return self._inline(n, bdef, x, replace(ctx, env=inner, stack=stack))
        ctor, out = self._block_ctor(n, bdef, x, replace(ctx, stack=stack), args, inner)
        if ctx.numbered:
            ctx.items.append((n.name, ctor))
            return Val(x.var, out.channels, out.shape)
        attr = self._attr(n, b)
        b.decl(Decl(attr, ctor, _cond(guard), n.span))
        b.stmt(Call(ctx.lane, attr, x.var, ctor, guard is not None))
        return Val(ctx.lane, out.channels, out.shape)

    def _block_ctor(self, n: Layer, bdef: BlockDef, x: Val, ctx: PCtx, args: list,
                    inner: Env) -> tuple[BlockCtor, Val]:
        """The constructor of a block call and its output; plans the block's class."""
        key = (bdef.name, repr(sorted(inner.sym.items())), repr(sorted(inner.con.items())),
               repr(x.channels), x.shape, ctx.stack, ctx.dead)
        out = self.probed.get(key)
        if out is None:  # the output of the first instance with these values
            probe = PCtx(self._builder(bdef.body, emit=False), inner, "x", stack=ctx.stack,
                         dead=ctx.dead)
            out = self.probed[key] = self.node(bdef.body, Val("x", x.channels, x.shape), probe)
        cls = self.block_class[bdef.name]
        if ctx.b.emit:
            cls = self._plan_block(bdef, inner.con, x.shape, n.span, ctx)
        return BlockCtor(cls, x.channels, args), out

    def _inline(self, n: Layer, bdef: BlockDef, x: Val, ctx: PCtx) -> Val:
        """A macro: the block's layers become attributes of the caller, named after ``n``."""
        b = ctx.b
        prefix = self._attr(n, b)
        inner = self._builder(bdef.body, emit=b.emit)
        inner = replace(inner, decls=b.decls, stmts=b.stmts, attrs=b.attrs, vars=b.vars,
                        mangle=prefix, top=False)
        inner.autonames = {k: mangle(prefix, v) for k, v in inner.autonames.items()}
        return self.node(bdef.body, x, replace(ctx, b=inner))

    def _bind(self, n: Layer, bdef: BlockDef, x: Val, ctx: PCtx) -> tuple[list, Env]:
        given = self.bind_block(n, bdef)
        env, follows, own = ctx.env, self.follows(ctx), self.own_follows(bdef)
        inner = Env({"width": env.sym.get("width", 1.0), "in_channels": x.channels},
                    {"width": env.con.get("width", 1.0), "in_channels": x.shape[0]})
        args = []
        for p in bdef.params:
            expr, by_keyword = given.get(p.name, (p.default, False))
            sym, con = (env if p.name in given else inner).both(expr)
            scope = follows if p.name in given else own
            sym = self.scale_arg(bdef, p.name, sym, expr, scope)
            con = self.scale_arg(bdef, p.name, con, expr, scope)
            if is_symbolic(sym) and "make_divisible" in str(sym):
                self.helpers.add("make_divisible")
            if p.name in given:
                args.append((p.name, sym, by_keyword))
            inner.sym[p.name], inner.con[p.name] = sym, con
        return args, inner

    def _plan_block(self, bdef: BlockDef, con: dict, shape: tuple, span: SourceSpan,
                    ctx: PCtx) -> str:
        """Plan one instance's class; the class name its call constructs.

        Instances that need different code (a ``linear`` after a ``flatten`` at two input
        sizes) get one class each, named after their input size.
        """
        key = (bdef.name, repr(sorted(con.items())), shape, ctx.stack, ctx.dead)
        if key in self.planned:  # an instance like an earlier one: same class, same plan
            return self.planned[key]
        plan = self.plan_block(bdef, con, shape, ctx)
        signature = class_signature(plan)
        variants = self.variants.setdefault(bdef.name, [])
        for known, cls, _ in variants:
            if known == signature:
                _merge_types(self.plans[cls], plan)
                self.planned[key] = cls
                return cls
        cls = self.block_class[bdef.name]
        if variants:
            sizes = {fmt_shape(self.plans[c].input_shape[1:]) for _, c, _ in variants}
            size = fmt_shape(shape[1:])
            cls = self.class_names.fresh(f"{cls}_{size}" if size not in sizes else cls)
            plan.doc += "\n\n" + textwrap.fill(
                f"The {bdef.name} block as built for a {fmt_shape(shape)} input: its "
                f"instances need different code (a linear layer after a flatten at "
                f"another size, or a padding written out), so each kind has its own "
                f"class.", 88)
        plan.input_shape = shape
        plan.name = cls
        variants.append((signature, cls, span))
        self.plans[cls] = plan
        self.planned[key] = cls
        self.order.append(cls)
        return cls

    def plan_block(self, bdef: BlockDef, con: dict, shape: tuple, ctx: PCtx) -> ClassPlan:
        sym = {p.name: Sym(p.name) for p in bdef.params}
        env = Env({"width": con.get("width", 1.0), "in_channels": Sym("in_channels"), **sym},
                  dict(con))
        b = self._builder(bdef.body)
        b.vars.reserve("x")
        b.vars.reserve("in_channels")
        for p in bdef.params:
            b.vars.reserve(p.name)
        x = Val("x", Sym("in_channels"), shape)
        out = self.node(bdef.body, x, PCtx(b, env, "x", stack=ctx.stack, dead=ctx.dead))
        params = [Param("in_channels", "int")]
        defaults = []
        for p in bdef.params:
            value = con.get(p.name)
            default, ptype = None, _type_name(value)
            if p.default is not None:
                dsym = self.scale_arg(bdef, p.name, evaluate(p.default, env.sym), p.default,
                                      self.own_follows(bdef))
                if is_symbolic(dsym):
                    default = "None"
                    defaults.append((p.name, to_code(dsym)))
                else:
                    default = to_code(dsym)
                    ptype = _with_default_type(ptype, dsym)
            params.append(Param(p.name, ptype, default))
        name = self.block_class[bdef.name]
        return ClassPlan(name, params, b.decls, b.stmts, out.var, doc=_block_doc(bdef),
                         defaults_code=defaults)

    # -------------------------------------------------------------- containers

    def on_seq(self, n: Seq, x: Val, ctx: PCtx, guard: Guard | None) -> Val:
        if n.name is None:
            return super().on_seq(n, x, ctx, guard)
        if not ctx.numbered:
            return self.container(n, x, ctx, guard)
        sub: list = []
        out = super().on_seq(n, x, replace(ctx, items=sub), None)
        _check_listed(sub, n)
        ctx.items.append((n.name, SeqCtor(sub)))
        return out

    def on_repeat(self, n: Repeat, x: Val, ctx: PCtx, guard: Guard | None) -> Val:
        if not ctx.numbered:
            return self.container(n, x, ctx, guard)
        if n.name is None:
            return self._repeat(n, x, ctx)
        sub: list = []
        out = self._repeat(n, x, replace(ctx, items=sub))
        _check_listed(sub, n)
        ctx.items.append((n.name, SeqCtor(sub)))
        return out

    def container(self, n: Seq | Repeat, x: Val, ctx: PCtx, guard: Guard | None) -> Val:
        """A named sequence or a repeat: one numbered container attribute."""
        b = ctx.b
        attr = self._attr(n, b)
        items: list = []
        inner = replace(ctx, items=items)
        out = super().on_seq(n, x, inner, None) if isinstance(n, Seq) else \
            self._repeat(n, x, inner)
        _check_listed(items, n)
        b.decl(Decl(attr, SeqCtor(items), _cond(guard), n.span))
        b.stmt(Call(ctx.lane, attr, x.var, None, guard is not None))
        return Val(ctx.lane, out.channels, out.shape)

    def _repeat(self, n: Repeat, x: Val, ctx: PCtx) -> Val:
        """The copies of a repeat's body, spliced into the container being filled."""
        sym, con = ctx.env.both(n.count)
        con = repeat_count(con, n.count.span)
        if con == 0 and not is_symbolic(sym):
            return x
        if n.index is not None:
            return self._indexed_repeat(n, x, ctx, sym, con)
        if isinstance(n.body, Layer) and n.body.when is None and n.body.name is None:
            first: list = []
            out = self.node(n.body, x, replace(ctx, items=first, dead=ctx.dead or not con))
            if _same(out.channels, x.channels) and (is_symbolic(sym) or con > 1):
                ctx.items.append((None, Repeated(first[0][1], sym)))
                return out if con else x
        if not is_symbolic(sym):
            for _ in range(con):
                x = self.node(n.body, x, ctx)
            return x
        return self._loop(n, x, ctx, sym, con)

    def _indexed_repeat(self, n: Repeat, x: Val, ctx: PCtx, sym: Any, con: int) -> Val:
        """A repeat whose body reads its copy's number (``index``), e.g. a drop-path rate."""
        if not is_symbolic(sym):
            for i in range(con):
                x = self.node(n.body, x, replace(ctx, env=_indexed(ctx.env, n.index, i, i)))
            return x
        sub: list = []
        var = ctx.b.vars.fresh(n.index)  # 'i_1' where a block parameter is named 'i'
        out = self.node(n.body, x, replace(ctx, items=sub, dead=ctx.dead or not con,
                                           env=_indexed(ctx.env, n.index, Sym(var), 0)))
        if not _same(out.channels, x.channels):
            raise SpecError("a repeat whose count is a parameter needs a body that keeps "
                            "the channel count", n.span)
        ctx.items.append(Loop(sym, sub, var))
        for i in range(1, con):
            out = self.node(n.body, out, replace(ctx, items=[],
                                                 env=_indexed(ctx.env, n.index, i, i)))
        return out if con else x

    def _loop(self, n: Repeat, x: Val, ctx: PCtx, sym: Any, con: int) -> Val:
        """A repeat whose count is a block parameter: a loop in the constructor.

        A body that changes the channel count once (``conv(8, 3)`` on any input) becomes
        its first copy, built when the count is positive, then a loop over the rest.
        """
        first: list = []
        out = self.node(n.body, x, replace(ctx, items=first, dead=ctx.dead or con < 1))
        if _same(out.channels, x.channels):
            ctx.items.append(Loop(sym, first))
            for _ in range(con - 1):
                out = self.node(n.body, out, replace(ctx, items=[]))
            return out if con else x
        rest: list = []
        out2 = self.node(n.body, out, replace(ctx, items=rest, dead=ctx.dead or con < 2))
        if not _same(out2.channels, out.channels):
            raise SpecError("a repeat whose count is a block parameter needs a body whose "
                            "output channels do not depend on its input", n.span,
                            hint="write the channel count of the body's last layer without "
                                 "in_channels, or make the count a number")
        positive = binary_sym(">", sym, 0)
        ctx.items += [Conditional(positive, first), Loop(binary_sym("-", sym, 1), rest)]
        for _ in range(con - 2):
            out2 = self.node(n.body, out2, replace(ctx, items=[]))
        result = x if con == 0 else (out if con == 1 else out2)
        return _guarded_flow(x, Val(result.var, out.channels, result.shape), positive, con > 0)

    # -------------------------------------------------------------- merges

    def on_concat(self, n: Concat, x: Val, ctx: PCtx, guard: Guard | None) -> Val:
        inputs = self._split(n, x, ctx) if n.split is not None else [x] * len(n.branches)
        outs = self._branches(n.branches, inputs, ctx, "branch")
        try:
            shape = OPS["concat"].shape({}, [o.shape for o in outs])
        except OpError as exc:
            if not ctx.dead:
                raise SpecError(str(exc), n.span, hint=exc.hint) from None
            shape = outs[0].shape
        channels = _sum(o.channels for o in outs)
        if n.split is not None and all(_same(o.channels, i.channels)
                                       for o, i in zip(outs, inputs, strict=True)):
            channels = x.channels  # each branch keeps its slice: the input's channels
        ctx.b.stmt(Cat(ctx.lane, [o.var for o in outs]))
        return Val(ctx.lane, channels, shape)

    def _split(self, n: Concat, x: Val, ctx: PCtx) -> list[Val]:
        """``x_a, x_b, ... = torch.split(x, sizes, dim=1)``: one input per branch."""
        b = ctx.b
        sym, con = ctx.env.both(n.split)
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

    def _branches(self, branches: list[Node], inputs: list[Val], ctx: PCtx, default: str,
                  leading_name_only: bool = False) -> list[Val]:
        b = ctx.b
        outs = []
        for i, (branch, x) in enumerate(zip(branches, inputs, strict=True)):
            fallback = default if i == 0 and leading_name_only else f"{default}{i}"
            base = _branch_name(branch, fallback, leading_name_only)
            if b.mangle is not None and base.startswith("_"):
                base = mangle(b.mangle, base)
            var = b.vars.fresh(base)
            outs.append(self.node(branch, x, replace(ctx, lane=var)))
        return outs

    def on_add(self, n: Add, x: Val, ctx: PCtx, guard: Guard | None) -> Val:
        b, lane = ctx.b, ctx.lane
        outs = self._branches(n.branches, [x] * len(n.branches), ctx, "out",
                              leading_name_only=True)
        shape = self._broadcast("add", outs, n, ctx)
        scale_attr = None
        if n.scale is not None:
            sym, _ = ctx.env.both(n.scale)
            scale_attr = b.attrs.fresh("scale")
            b.decl(Decl(scale_attr, sym, None, n.scale.span))
        b.stmt(Sum(lane, [o.var for o in outs], scale_attr))
        out = Val(lane, _channels_of(outs, shape), shape)
        if n.act is not None:
            out = self._activation(n, out, ctx)
        return out

    def on_mul(self, n: Mul, x: Val, ctx: PCtx, guard: Guard | None) -> Val:
        outs = self._branches(n.branches, [x] * len(n.branches), ctx, "out",
                              leading_name_only=True)
        if len(outs) == 1:
            return outs[0]
        shape = self._broadcast("mul", outs, n, ctx)
        ctx.b.stmt(Prod(ctx.lane, [o.var for o in outs]))
        return Val(ctx.lane, _channels_of(outs, shape), shape)

    def _broadcast(self, op: str, outs: list[Val], n: Node, ctx: PCtx) -> tuple:
        """The shape of an elementwise merge; unchecked in a part this instance lacks."""
        try:
            return broadcast_shape(op, [o.shape for o in outs])
        except OpError as exc:
            if ctx.dead:
                return outs[0].shape
            raise SpecError(str(exc), n.span, hint=exc.hint) from None

    def _activation(self, n: Add, x: Val, ctx: PCtx) -> Val:
        b, lane = ctx.b, ctx.lane
        sym, con = ctx.env.both(n.act)
        cond = None
        if isinstance(sym, Sym) and sym.parts and isinstance(sym.parts[0], str) \
                and sym.parts[2] is None:
            sym, cond = sym.parts[0], sym.parts[1]
        elif is_symbolic(sym):
            raise SpecError("'act' must be an activation name or 'name if condition'",
                            n.act.span)
        op = activation(sym, n.act.span)
        if op is None:
            return x
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
            name = mangle(b.mangle, n.name)
            b.attrs.reserve(name)
        if name is None:
            name = b.attrs.fresh(snake(getattr(n, "callee", "layers")))
        return self.check_attr(name, n.span)


# ---------------------------------------------------------------------------- helpers



def _pad_by_instance(op: OpDef, sym: dict, con: dict) -> bool:
    """Whether a padding given by a block parameter must be written as this instance's
    value: 'same' or 'valid' for a pool, and 'same' for a conv at a stride other than 1,
    have no PyTorch module argument (the class then writes the padding out, and instances
    with other values get a class of their own).

    >>> from inceptdsl.ops import OPS
    >>> _pad_by_instance(OPS["avgpool"], {"pad": Sym("p")}, {"pad": "same"})
    True
    >>> _pad_by_instance(OPS["conv2d"], {"pad": Sym("p")}, {"pad": "same", "stride": (1, 1)})
    False
    """
    if "pad" not in sym or not is_symbolic(sym["pad"]) or not isinstance(con["pad"], str):
        return False
    return op.name in ("maxpool", "avgpool") or \
        op.name == "conv2d" and con["pad"] == "same" and tuple(con["stride"]) != (1, 1)


def _cond(guard: Guard | None) -> Any:
    return None if guard is None else guard.sym


def _is_module(ctor: Any) -> bool:
    return isinstance(ctor, (OpCtor, BlockCtor, SeqCtor))


def _guards_itself(n: Node) -> bool:
    """Layers and containers become one optional attribute (``self.skip = None``)."""
    if isinstance(n, Layer):
        return not n.inline
    return isinstance(n, Repeat) or (isinstance(n, Seq) and n.name is not None)


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


def _indexed(env: Env, name: str, sym: Any, con: Any) -> Env:
    """``env`` with a repeat's index bound (symbolic and concrete)."""
    return Env({**env.sym, name: sym}, {**env.con, name: con})


def _channels_of(outs: list[Val], shape: tuple) -> Any:
    """The (symbolic) channels of a broadcast merge: a branch that has all of them."""
    return next((o.channels for o in outs if o.shape[0] == shape[0]), outs[0].channels)


def _guarded_flow(x: Val, out: Val, cond: Any, present: bool) -> Val:
    """The value after a part that only exists when ``cond`` holds."""
    channels = out.channels if _same(out.channels, x.channels) else Sym(
        f"{to_code(out.channels)} if {to_code(cond)} else {to_code(x.channels)}", 0)
    return Val(out.var, channels, out.shape if present else x.shape)


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


def _with_default_type(ptype: str, default: Any) -> str:
    """A parameter's type with its default's (``p: int | str = 'same'``); an int default
    of a float parameter needs nothing (an int is a float there).

    >>> _with_default_type("int", "same"), _with_default_type("float", 1)
    ('int | str', 'float')
    """
    types = set(ptype.split(" | "))
    dtype = _type_name(default)
    if dtype in types or dtype == "int" and "float" in types:
        return ptype
    return " | ".join(sorted({*types, dtype}))


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
    if same_at_stride_one(item.attrs) and is_symbolic([item.attrs["kernel"],
                                                      item.attrs["dilation"]]):
        return " pad=same"
    return f" pad{conv_padding(item.concrete, item.in_shape[1:])}"
