"""``--optimize inference``: a PyTorch lowering for fast eval-mode inference.

It renders the same classes, attribute names and ``state_dict`` as :mod:`.generator`, so a
checkpoint of the plain model (or of torchvision/timm) loads with ``strict=True``, and
changes what ``forward`` computes:

- **BN folding**: every chain ``conv -> batchnorm [-> activation]`` of a class body runs as
  one convolution whose weights have the BN folded in;
- **horizontal fusion**: sibling conv chains (or calls of blocks that are one such chain,
  like ``BasicConv2d``) reading the same tensor with the same kernel, stride, padding and
  dilation (groups 1) and the same activation run as one convolution with concatenated
  output channels, split afterwards;
- **channels_last** activations and weights, and in-place ReLU on fresh conv outputs.

The folded and fused weights are non-persistent buffers computed by ``fold()`` when the
model enters eval mode and after ``load_state_dict`` in eval mode. ``forward`` in training
mode raises: the optimized model is for inference only.

>>> from inceptdsl.loader import load
>>> from inceptdsl.plan import plan_network
>>> code = InferenceGenerator(plan_network(load("inception_v3"))).render()
>>> "class InceptionA(InferenceModule):" in code and "fused0_w" in code
True
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, replace
from typing import Any

from inceptdsl.backends.base import INDENT, MAX_LINE, assign, split_args

from inceptdsl.errors import SpecError
from inceptdsl.expr import Sym, evaluate, is_symbolic, parse, to_code
from inceptdsl.passes.inference import (
    bias_after_pool,
    bn_folds_into,
    conv_before_pool,
    fusion_key,
)
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
    Repeated,
    SeqCtor,
    SideCall,
    Sum,
)

from .generator import _HELPERS, TorchGenerator, _module_padding

TRAINING_ERROR = ("this model was compiled with --optimize inference; use the plain model "
                  "for training")

_INFERENCE_HELPERS = {
    "InferenceModule": f'''
TRAINING_ERROR = (
    "{TRAINING_ERROR[:51]}"
    "{TRAINING_ERROR[51:]}"
)


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None) -> tuple[Tensor, Tensor]:
    """Weight and bias of one conv computing ``bn(conv(x))`` in eval mode (channels_last)."""
    weight = conv.weight.double()
    bias = conv.bias.double() if conv.bias is not None else weight.new_zeros(weight.shape[0])
    if bn is not None:
        scale = torch.rsqrt(bn.running_var.double() + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight.double()
        bias = (bias - bn.running_mean.double()) * scale
        if bn.bias is not None:
            bias = bias + bn.bias.double()
        weight = weight * scale.reshape(-1, 1, 1, 1)
    weight = weight.to(conv.weight.dtype).contiguous(memory_format=torch.channels_last)
    return weight, bias.to(conv.weight.dtype)


_ONEDNN_CONV = hasattr(torch.ops.mkldnn, "_convolution_pointwise") and hasattr(
    torch.ops.mkldnn, "_reorder_convolution_weight")


def conv2d_relu(x: Tensor, weight: Tensor, bias: Tensor, stride=1, padding=0,
                dilation=1, groups: int = 1) -> Tensor:
    """``relu(conv2d(x))``: one oneDNN kernel for float32 on CPU, else conv then relu_."""
    if _use_onednn(x, padding):
        return _onednn_conv(x, weight, bias, stride, padding, dilation, groups, "relu")
    return torch.relu_(F.conv2d(x, weight, bias, stride, padding, dilation, groups))


def conv2d_plain(x: Tensor, weight: Tensor, bias: Tensor | None, stride=1, padding=0,
                 dilation=1, groups: int = 1) -> Tensor:
    """``conv2d(x)`` with the same oneDNN fast path as :func:`conv2d_relu`."""
    if _use_onednn(x, padding):
        return _onednn_conv(x, weight, bias, stride, padding, dilation, groups, "none")
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


def _use_onednn(x: Tensor, padding) -> bool:
    """Eager CPU float32 only: torch.compile/export trace the plain ops (and fuse themselves)."""
    return (_ONEDNN_CONV and x.device.type == "cpu" and x.dtype == torch.float32
            and not isinstance(padding, str) and torch.backends.mkldnn.is_available()
            and not torch.compiler.is_compiling())


def _onednn_conv(x: Tensor, weight: Tensor, bias: Tensor | None, stride, padding, dilation,
                 groups: int, attr: str) -> Tensor:
    """oneDNN conv with the weight packed once per input shape (blocked layout).

    Packing is what oneDNN otherwise redoes on every call: 10-40% of a conv at batch 1.
    The packed copies hang off the weight tensor, so a re-fold starts a fresh cache.
    """
    padding, stride, dilation = _pair(padding), _pair(stride), _pair(dilation)
    cache = weight.__dict__.setdefault("_packed", {{}})
    key = tuple(x.shape)
    packed = cache.get(key)
    if packed is None:
        packed = torch.ops.mkldnn._reorder_convolution_weight(
            weight, padding, stride, dilation, groups, list(x.shape))
        cache[key] = packed
    return torch.ops.mkldnn._convolution_pointwise(
        x, packed, bias, padding, stride, dilation, groups, attr, [], "")


def _pair(value) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)


def fuse(*folded: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, list[int]]:
    """Sibling convs as one: concatenated weights and biases, and the split sizes."""
    weight = torch.cat([w for w, _ in folded]).contiguous(memory_format=torch.channels_last)
    return weight, torch.cat([b for _, b in folded]), [w.shape[0] for w, _ in folded]


def _fold_after_load(module: nn.Module, incompatible_keys) -> None:
    if not module.training:
        with torch.no_grad():
            module.fold()


class InferenceModule(nn.Module):
    """Base of the generated classes: eval mode only; weights folded on eval() and load."""

    def __init__(self) -> None:
        super().__init__()
        self.register_load_state_dict_post_hook(_fold_after_load)

    def train(self, mode: bool = True) -> "InferenceModule":
        super().train(mode)
        if not mode:
            with torch.no_grad():
                self.fold()
        return self

    def fold(self) -> None:
        """Compute the folded weights of this module (its children fold themselves)."""


def predict(model: nn.Module, x: Tensor) -> Tensor:
    """Eval-mode output under ``torch.inference_mode`` (no autograd bookkeeping)."""
    with torch.inference_mode():
        return model.eval()(x)
''',
}


# ---------------------------------------------------------------------------- plan analysis


@dataclass
class Chain:
    """``conv -> [bn] -> [act]`` on one variable: ``stmts[start:end]`` of a class body."""

    start: int
    end: int
    conv: Call
    bn: Call | None
    act: Functional | None


@dataclass
class Producer:
    """A conv chain of this class, or a call of a block that is one chain (a unit)."""

    start: int
    end: int
    out: str
    arg: str
    label: str
    folded: str  # "self.<x>_w, self.<x>_b" source of the folded pair
    key: tuple | None  # geometry and activation; None: cannot be fused
    act: Functional | None = None
    rest: list[str] | None = None  # a sequence's later items, applied after the head


@dataclass
class FoldedConv:
    """Render a :class:`Chain` with its folded weights."""

    chain: Chain
    names: tuple[str, str]


@dataclass
class FusedConvs:
    """Render fused sibling producers: one conv, activation, split."""

    members: list[Producer]
    geometry: tuple
    var: str


@dataclass
class PooledConv:
    """Render a 1x1 conv producer that moved before the average pool it followed."""

    pool: Functional
    producer: Producer


@dataclass
class SeqRest:
    """The items of a sequence after its (fused) head: ``out = self.seq[1](out)``..."""

    out: str
    rest: list[str]


@dataclass
class Raw:
    lines: list[str]


def _act_of(stmt: Any) -> Functional | None:
    """An activation statement as a :class:`Functional` (module calls included)."""
    return _functional(stmt, lambda op: op.kind == "act")


def _avgpool_of(stmt: Any) -> Functional | None:
    """An average pool statement as a :class:`Functional` (module calls included)."""
    return _functional(stmt, lambda op: op.name == "avgpool")


def _functional(stmt: Any, wanted: Any) -> Functional | None:
    if isinstance(stmt, Functional) and wanted(stmt.op):
        return stmt
    if isinstance(stmt, Call) and isinstance(stmt.ctor, OpCtor) and wanted(stmt.ctor.op) \
            and not stmt.optional:
        c = stmt.ctor
        return Functional(stmt.out, c.op, c.attrs, c.concrete, stmt.arg, c.in_shape,
                          c.out_shape)
    return None


def _is_op_call(stmt: Any, op: str) -> bool:
    return isinstance(stmt, Call) and not stmt.optional and _is_op(stmt.ctor, op)


def _is_op(ctor: Any, op: str) -> bool:
    return isinstance(ctor, OpCtor) and ctor.op.name == op


def _folds(bn: OpCtor) -> bool:
    """A BN (on a map: ``F.conv2d`` output) that the shared rule folds into a conv."""
    return bn_folds_into("conv2d", bn.attrs) and len(bn.in_shape) == 3


def find_chains(stmts: list) -> list[Chain]:
    """The ``conv [-> bn] [-> act]`` runs of a statement list, all on one variable (shape
    comments between them are part of the run).

    >>> from inceptdsl.loader import load
    >>> from inceptdsl.plan import plan_network
    >>> unit = plan_network(load("inception_v3")).classes[0]
    >>> [(c.start, c.end, c.conv.attr, c.bn.attr) for c in find_chains(unit.stmts)]
    [(0, 3, 'conv', 'bn')]
    """
    chains, i = [], 0
    while i < len(stmts):
        s = stmts[i]
        if not _is_op_call(s, "conv2d"):
            i += 1
            continue
        end, bn, act = i + 1, None, None
        nxt, j = _next_statement(stmts, end)
        if _is_op_call(nxt, "batchnorm") and nxt.arg == s.out == nxt.out and _folds(nxt.ctor):
            bn, end = nxt, j + 1
        nxt, j = _next_statement(stmts, end)
        if nxt is not None and (a := _act_of(nxt)) is not None and a.arg == s.out == a.out:
            act, end = a, j + 1
        chains.append(Chain(i, end, s, bn, act))
        i = end
    return chains


def _next_statement(stmts: list, i: int) -> tuple[Any, int]:
    """The first statement at or after ``i`` that is not a comment, and its index."""
    while i < len(stmts) and isinstance(stmts[i], Comment):
        i += 1
    return (stmts[i], i) if i < len(stmts) else (None, i)


def unit_chain(plan: ClassPlan) -> Chain | None:
    """The chain a class consists of, when its forward is exactly one chain on ``x``."""
    if plan.is_network:
        return None
    stmts = [s for s in plan.stmts if not isinstance(s, Comment)]
    chains = find_chains(stmts)
    if len(chains) != 1 or chains[0].end - chains[0].start != len(stmts):
        return None
    chain = chains[0]
    return chain if chain.conv.arg == "x" and chain.conv.out == plan.output else None


def _literal(value: Any, bindings: dict[str, Any]) -> Any:
    """A value with block parameters substituted, expressions evaluated; ``None`` when it
    stays symbolic.

    >>> _literal(Sym("k // 2"), {"k": 3}), _literal((Sym("p"), 0), {"p": 1})
    (1, (1, 0))
    >>> _literal(Sym("c"), {"c": Sym("c")}) is None
    True
    """
    if isinstance(value, (list, tuple)):
        items = [_literal(v, bindings) for v in value]
        return None if None in items else type(value)(items)
    if not isinstance(value, Sym):
        return value
    try:
        bound = evaluate(parse(str(value)), bindings)
    except (SpecError, ArithmeticError, TypeError, ValueError):
        return None
    return None if is_symbolic(bound) else bound


def chain_key(chain: Chain, bindings: dict[str, Any]) -> tuple | None:
    """The shared :func:`~inceptdsl.passes.inference.fusion_key` of a chain, its block
    parameters bound: what sibling chains must share to be fused.

    ``None`` when a value is symbolic (unknown when the file is generated), the padding
    depends on the input size, or it is asymmetric (``F.conv2d`` pads symmetrically).
    """
    attrs = chain.conv.ctor.attrs
    conv = {k: _literal(attrs[k], bindings) for k in ("kernel", "stride", "pad", "dilation")}
    if None in conv.values():
        return None
    conv = {k: (v, v) if isinstance(v, int) else v for k, v in conv.items()}
    act = None if chain.act is None else (chain.act.op.name, chain.act.attrs)
    key = fusion_key({**conv, "groups": _literal(attrs["groups"], bindings)}, None, act)
    if key is None or key[2][0] != key[2][1] or key[2][2] != key[2][3]:
        return None
    return key


def _bindings(ctor: BlockCtor, plan: ClassPlan) -> dict[str, Any]:
    """Parameter values of one block call: its arguments over the class defaults."""
    values: dict[str, Any] = {}
    for p in plan.params:
        if p.default is not None:
            try:
                values[p.name] = ast.literal_eval(p.default)
            except (ValueError, SyntaxError):
                values[p.name] = Sym(p.default)
    for name, value, _ in ctor.args:
        values[name] = value
    return values


def reads(stmt: Any) -> set[str]:
    """Variables a forward statement reads."""
    if isinstance(stmt, (Call, Functional, Alias, SideCall)):
        return {stmt.arg}
    if isinstance(stmt, (Cat, Sum)):
        return set(stmt.args)
    if isinstance(stmt, Guarded):
        return {stmt.arg, stmt.out}.union(*(reads(s) for s in stmt.body))
    return set()


def writes(stmt: Any) -> set[str]:
    """Variables a forward statement assigns."""
    if isinstance(stmt, Guarded):
        return {stmt.out}.union(*(writes(s) for s in stmt.body))
    out = getattr(stmt, "out", None)
    return {out} if out else set()


# ---------------------------------------------------------------------------- generator


class InferenceGenerator(TorchGenerator):
    """The torch lowering with BN folding, sibling-conv fusion and channels_last.

    >>> from inceptdsl.loader import load
    >>> from inceptdsl.plan import plan_network
    >>> code = InferenceGenerator(plan_network(load("googlenet_torchvision"))).render()
    >>> "def fold(self) -> None:" in code
    True
    """

    HELPERS = {**_HELPERS, **_INFERENCE_HELPERS}

    def __init__(self, plan: NetworkPlan):
        super().__init__(plan)
        self.helpers.add("InferenceModule")
        self.plans = {c.name: c for c in plan.classes}
        self.units = {c.name: ch for c in plan.classes if (ch := unit_chain(c)) is not None}
        self.rewrites = {c.name: self.rewrite(c) for c in plan.classes}

    def base_class(self, plan: ClassPlan) -> str:
        return "InferenceModule"

    # -------------------------------------------------------------- analysis

    def rewrite(self, plan: ClassPlan) -> tuple[list, list[str], list[str]]:
        """(new statements, extra __init__ lines, fold() lines) of one class."""
        taken = {d.attr for d in plan.decls} | {v for s in plan.stmts for v in writes(s)}
        body = _unrolled(plan)
        chains = find_chains(body)
        names = {c.start: self._names(c.conv.attr, taken) for c in chains}
        producers = [self._local(c, names[c.start]) for c in chains]
        decls = {d.attr: d.ctor for d in plan.decls if d.cond is None}
        producers += [p for i, s in enumerate(body)
                      if (p := self._unit_call(i, s) or self._seq_head(i, s, decls))]
        producers.sort(key=lambda p: p.start)
        pooled = _pooled(body, producers)
        pooled.update((i, (None, *sp)) for i, s in enumerate(body)
                      if (sp := self._seq_pool(i, s, decls)))
        groups = _group([p for p in producers if p.start not in pooled], body)
        init, fold = [], []
        for c in chains:
            w, b = names[c.start]
            init += [_buffer(w), _buffer(b)]
            bn = f", self.{c.bn.attr}" if c.bn else ""
            fold.append(f"self.{w}, self.{b} = fold_conv_bn(self.{c.conv.attr}{bn})")
        stmts: list[Any] = list(body)
        for c in chains:
            stmts[c.start] = FoldedConv(c, names[c.start])
            stmts[c.start + 1:c.end] = [None] * (c.end - c.start - 1)
        for i, members in enumerate(groups):
            stem = f"fused{i}"
            while {stem, f"{stem}_w"} & taken:
                stem += "_"
            init += [_buffer(f"{stem}_w"), _buffer(f"{stem}_b"),
                     f"self.{stem}_sizes: list[int] = []"]
            fold += [f"self.{stem}_w, self.{stem}_b, self.{stem}_sizes = fuse(",
                     *(f"{INDENT}({m.folded})," for m in members), ")"]
            stmts[members[0].start] = FusedConvs(members, members[0].key, stem)
            for m in members[1:]:
                stmts[m.start:m.end] = [None] * (m.end - m.start)
                if m.rest:
                    stmts[m.start] = SeqRest(m.out, m.rest)
        for start, (pool_at, pool, p) in pooled.items():
            if pool_at is not None:
                stmts[pool_at] = None
            stmts[start:p.end] = [PooledConv(pool, p)] + [None] * (p.end - start - 1)
        return [s for s in stmts if s is not None], init, fold

    def _names(self, attr: str, taken: set[str]) -> tuple[str, str]:
        base = re.sub(r"\W+", "_", attr).strip("_")  # stem[0] -> stem_0
        while {f"{base}_w", f"{base}_b"} & taken:
            base += "_"
        taken |= {f"{base}_w", f"{base}_b"}
        return f"{base}_w", f"{base}_b"

    def _local(self, c: Chain, names: tuple[str, str]) -> Producer:
        return Producer(c.start, c.end, c.conv.out, c.conv.arg, c.conv.attr,
                        f"self.{names[0]}, self.{names[1]}", chain_key(c, {}), c.act)

    def _unit_call(self, i: int, s: Any) -> Producer | None:
        """A call of a block that is one conv chain (``self.branch1x1(x)``)."""
        if not (isinstance(s, Call) and isinstance(s.ctor, BlockCtor) and not s.optional):
            return None
        return self._unit(i, s.out, s.arg, f"self.{s.attr}", s.ctor)

    def _seq_head(self, i: int, s: Any, decls: dict) -> Producer | None:
        """A sequence whose first item is such a block: the head may be fused."""
        if (refs := _fixed_seq_refs(s, decls)) is None:
            return None
        head = decls[s.attr].items[0][1]
        unit = self._unit(i, s.out, s.arg, refs[0], head) if isinstance(head, BlockCtor) \
            else None
        if unit is not None:
            unit.rest = refs[1:]
        return unit

    def _seq_pool(self, i: int, s: Any, decls: dict) -> tuple[Functional, Producer] | None:
        """A sequence of an average pool then a block that is one 1x1 conv chain (timm's
        ``branch3``): the conv may run before the pool."""
        if (refs := _fixed_seq_refs(s, decls)) is None:
            return None
        (_, pool), (_, head) = decls[s.attr].items[:2]
        pool = _avgpool_of(Call(s.out, refs[0], s.arg, pool))
        unit = self._unit(i, s.out, s.out, refs[1], head) if isinstance(head, BlockCtor) \
            else None
        if pool is None or unit is None or not conv_before_pool(pool.attrs, unit.key):
            return None
        unit.rest = refs[2:]
        return pool, unit

    def _unit(self, i: int, out: str, arg: str, ref: str, ctor: BlockCtor) -> Producer | None:
        chain = self.units.get(ctor.cls)
        if chain is None:
            return None
        w, b = self._names(chain.conv.attr, {d.attr for d in self.plans[ctor.cls].decls})
        key = chain_key(chain, _bindings(ctor, self.plans[ctor.cls]))
        return Producer(i, i + 1, out, arg, ref.removeprefix("self."), f"{ref}.{w}, {ref}.{b}",
                        key, chain.act)

    # -------------------------------------------------------------- rendering

    def render_init(self, plan: ClassPlan) -> list[str]:
        lines = super().render_init(plan)
        return lines + [INDENT * 2 + line for line in self.rewrites[plan.name][1]]

    def render_forward(self, plan: ClassPlan) -> list[str]:
        stmts, _, fold = self.rewrites[plan.name]
        head = ["if self.training:", f"{INDENT}raise RuntimeError(TRAINING_ERROR)"]
        if plan.is_network:
            head.append("x = x.contiguous(memory_format=torch.channels_last)")
        lines = super().render_forward(replace(plan, stmts=[Raw(head), *stmts]))
        if not fold:
            return lines
        doc = '"""Fold BN into the convs and fuse sibling convs (on eval() and on load)."""'
        return [f"{INDENT}def fold(self) -> None:", f"{INDENT * 2}{doc}",
                *(out for line in fold for out in _wrapped(line, INDENT * 2)), "", *lines]

    def statement(self, stmt: Any) -> list[str]:
        if isinstance(stmt, Raw):
            return stmt.lines
        if isinstance(stmt, FoldedConv):
            return self.folded_conv(stmt)
        if isinstance(stmt, FusedConvs):
            return self.fused_convs(stmt)
        if isinstance(stmt, SeqRest):
            return [f"{stmt.out} = {ref}({stmt.out})" for ref in stmt.rest]
        if isinstance(stmt, PooledConv):
            return self.pooled_conv(stmt)
        return super().statement(stmt)

    def folded_conv(self, s: FoldedConv) -> list[str]:
        """``x = F.conv2d(x, self.conv_w, self.conv_b, ...)``, then the activation."""
        conv = s.chain.conv
        c, attrs = conv.ctor, conv.ctor.attrs
        args = [self.call_input(c, conv.arg), f"self.{s.names[0]}", f"self.{s.names[1]}"]
        for key, name, default in (("stride", "stride", (1, 1)), ("pad", "padding", None),
                                   ("dilation", "dilation", (1, 1)),
                                   ("groups", "groups", 1)):
            if is_symbolic(attrs[key]):
                args.append(f"{name}=self.{conv.attr}.{name}")
            elif key == "pad" and _module_padding(c) != "0":
                args.append(f"padding={_module_padding(c)}")
            elif key != "pad" and attrs[key] != default:
                args.append(f"{name}={_code(attrs[key])}")
        return self._conv(conv.out, args, s.chain.act)

    def fused_convs(self, s: FusedConvs) -> list[str]:
        """One conv for sibling producers, its activation, and the split."""
        kernel, stride, pads, dilation, act = s.geometry
        args = [s.members[0].arg, f"self.{s.var}_w", f"self.{s.var}_b"]
        for name, value in (("stride", stride), ("padding", (pads[0], pads[2])),
                            ("dilation", dilation)):
            if value != ((0, 0) if name == "padding" else (1, 1)):
                args.append(f"{name}={_code(value)}")
        labels = ", ".join(m.label for m in s.members)
        k = "x".join(str(v) for v in kernel)
        width = MAX_LINE - 2 * len(INDENT) - 2
        lines = [f"# {text}" for text in textwrap.wrap(f"{labels}: one {k} conv, then split",
                                                        width)]
        lines += self._conv(s.var, args, s.members[0].act)
        outs = ", ".join(m.out for m in s.members)
        split = _wrapped(f"{outs} = {s.var}.split(self.{s.var}_sizes, 1)", INDENT * 2)
        lines += [line.removeprefix(INDENT * 2) for line in split]
        head = s.members[0]
        return lines + (self.statement(SeqRest(head.out, head.rest)) if head.rest else [])

    def pooled_conv(self, s: PooledConv) -> list[str]:
        """The 1x1 conv on the pool's input, the pool, then the bias (where padded zeros
        count in the average) and the activation."""
        p, pool = s.producer, s.pool
        weight, bias = p.folded.split(", ")
        late = bias_after_pool(pool.attrs)
        lines = [f"# {p.label}: the 1x1 conv first, then the average pool (they commute)"]
        lines += self._conv(p.out, [pool.arg, weight, "None" if late else bias], None)
        lines += self.statement(replace(pool, out=p.out, arg=p.out))
        if late:
            lines.append(f"{p.out} += {bias}.view(-1, 1, 1)")
        if p.act is not None and p.act.op.name == "relu":  # the pool's output is fresh
            lines.append(f"{p.out} = torch.relu_({p.out})")
        elif p.act is not None:
            lines += self.statement(replace(p.act, out=p.out, arg=p.out))
        return lines + (self.statement(SeqRest(p.out, p.rest)) if p.rest else [])

    def _conv(self, out: str, args: list[str], act: Functional | None) -> list[str]:
        """``out = conv(args)`` then the activation; ReLU fused into the conv kernel."""
        func = "conv2d_relu" if act is not None and act.op.name == "relu" else "conv2d_plain"
        lines = [f"{out} = {func}({', '.join(args)})"]
        if len(lines[0]) + 2 * len(INDENT) > MAX_LINE:
            one = f"{INDENT}{', '.join(args)},"
            lines = [f"{out} = {func}(", one, ")"] if len(one) + 2 * len(INDENT) <= MAX_LINE \
                else [f"{out} = {func}(", *(f"{INDENT}{arg}," for arg in args), ")"]
        if act is not None and func == "conv2d_plain":
            lines.append(f"{out} = {getattr(self, f'call_{act.op.name}')(act, out)}")
        return lines


# ---------------------------------------------------------------------------- helpers


def _unrolled(plan: ClassPlan) -> list:
    """The class body with each call of a fixed sequence that holds a foldable conv -> BN
    pair written out item by item (``self.stem[0]``, ``self.stem[1]``), so the pair folds.

    >>> from inceptdsl.loader import load
    >>> from inceptdsl.plan import plan_network
    >>> net = plan_network(load("inception_next_atto")).network
    >>> [s.attr for s in _unrolled(net) if isinstance(s, Call)][:2]
    ['stem[0]', 'stem[1]']
    """
    decls = {d.attr: d.ctor for d in plan.decls if d.cond is None}
    out: list[Any] = []
    for s in plan.stmts:
        seq = decls.get(s.attr) if isinstance(s, Call) and not s.optional else None
        if not (isinstance(seq, SeqCtor) and _holds_conv_bn(seq)):
            out.append(s)
            continue
        arg = s.arg
        for k, (name, ctor) in enumerate(seq.items):
            out.append(Call(s.out, f"{s.attr}.{name}" if name else f"{s.attr}[{k}]", arg, ctor))
            arg = s.out
    return out


def _holds_conv_bn(seq: SeqCtor) -> bool:
    """A sequence of fixed items (no repeats or conditions) with a conv then a BN that
    folds into it."""
    if any(not isinstance(e, tuple) or not isinstance(e[1], (OpCtor, BlockCtor))
           for e in seq.items):
        return False
    ctors = [c for _, c in seq.items]
    return any(_is_op(conv, "conv2d") and _is_op(bn, "batchnorm") and _folds(bn)
               for conv, bn in zip(ctors, ctors[1:], strict=False))


def _fixed_seq_refs(s: Any, decls: dict) -> list[str] | None:
    """The item references of a called sequence of fixed items (``self.branch3[0]``...)."""
    seq = decls.get(s.attr) if isinstance(s, Call) and not s.optional else None
    if not isinstance(seq, SeqCtor) or len(seq.items) < 2 or any(
            not isinstance(e, tuple) or isinstance(e[1], Repeated) for e in seq.items):
        return None
    return [f"self.{s.attr}.{name}" if name else f"self.{s.attr}[{k}]"
            for k, (name, _) in enumerate(seq.items)]


def _pooled(stmts: list, producers: list[Producer]) -> dict[int, tuple]:
    """The 1x1 conv producers that may move before the average pool whose output they
    alone read (:func:`~inceptdsl.passes.inference.conv_before_pool`), by their start:
    ``(the pool's index, the pool, the producer)``."""
    by_start = {p.start: p for p in producers}
    out = {}
    for i, stmt in enumerate(stmts):
        if (s := _avgpool_of(stmt)) is None:
            continue
        p = by_start.get(_next_statement(stmts, i + 1)[1])
        if p is None or p.arg != s.out or p.rest or not conv_before_pool(s.attrs, p.key):
            continue
        if p.out == s.out or all(s.out not in reads(t) for t in stmts[p.end:]):
            out[p.start] = (i, s, p)
    return out


def _group(producers: list[Producer], stmts: list) -> list[list[Producer]]:
    """Fusable siblings: same input and key, and safe to compute at the first one's place."""
    groups: list[list[Producer]] = []
    for p in producers:
        if p.key is None or p.out == p.arg:
            continue
        for g in groups:
            if (g[0].arg, g[0].key) == (p.arg, p.key) and _can_join(g, p, stmts):
                g.append(p)
                break
        else:
            groups.append([p])
    return [g for g in groups if len(g) > 1]


def _can_join(group: list[Producer], p: Producer, stmts: list) -> bool:
    """``p`` may move up to ``group[0]``: nothing in between rebinds its input or output."""
    if p.out in {m.out for m in group}:
        return False
    inside = {i for m in group for i in range(m.start, m.end)}
    for i in range(group[0].start, p.start):
        if i in inside:
            continue
        if p.arg in writes(stmts[i]) or p.out in reads(stmts[i]) | writes(stmts[i]):
            return False
    return True


def _wrapped(line: str, pad: str) -> list[str]:
    """An assignment ``pad + line``, wrapped like black when it is too long: the call's
    arguments one per line, and a long target as a parenthesized tuple.

    >>> _wrapped("a, b = f(x)", "")
    ['a, b = f(x)']
    >>> _wrapped("alpha, beta = fold_conv_bn(self.alpha)", " " * 70)[0].strip()
    '('
    """
    target, sep, value = line.partition(" = ")
    if len(pad + line) <= MAX_LINE or not sep or not value.endswith(")"):
        return [pad + line]
    if len(f"{pad}{target} = {value.partition('(')[0]}(") <= MAX_LINE:
        return assign(pad + target, value)
    names = [f"{pad}{INDENT}{name}," for name in split_args(target)]
    return [f"{pad}(", *names, *assign(f"{pad})", value)]


def _buffer(name: str) -> str:
    return f'self.register_buffer("{name}", torch.empty(0), persistent=False)'


def _code(value: Any) -> str:
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        return to_code(value[0])
    return to_code(value) if not isinstance(value, tuple) else \
        "(" + ", ".join(to_code(v) for v in value) + ")"
