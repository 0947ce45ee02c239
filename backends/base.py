"""The code generator every Python backend shares, and its text helpers.

:class:`BaseGenerator` renders the structure of a :class:`~inceptdsl.plan.NetworkPlan`
(classes, constructors, declarations, sequences, forward statements, outputs, the loss);
a backend subclass sets a few class constants, overrides the small hooks where its target
differs, and supplies one lowering per op: ``module_<op>`` (the module built in
``__init__``) and ``call_<op>`` (the functional form in ``forward``).

>>> code((3, 3)), assign("        self.fc", "nn.Linear(2048, num_classes)")
('3', ['        self.fc = nn.Linear(2048, num_classes)'])
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from inceptdsl.backends.linewrap import INDENT, fit, items

from inceptdsl.expr import is_symbolic, to_code
from inceptdsl.naming import docstring_text
from inceptdsl.ops import pool_padding, pool_stride
from inceptdsl.plan import (
    Alias,
    BlockCtor,
    Call,
    Cat,
    ClassPlan,
    Comment,
    Conditional,
    Functional,
    Guarded,
    Loop,
    NetworkPlan,
    OpCtor,
    Prod,
    Repeated,
    SeqCtor,
    SideCall,
    Split,
    Sum,
)

MAX_LINE = 96


# ---------------------------------------------------------------------------- preludes


@dataclass(frozen=True)
class Prelude:
    """A backend's prelude: a real module of helpers that generated files need, read as text
    (never imported), from which a generator copies the definitions a model uses.

    ``sources`` maps each top-level function, class and assignment to its source, in file
    order; ``uses`` maps each to the other definitions its source names.

    >>> prelude = read_prelude(Path(__file__).with_name("torch") / "prelude.py")
    >>> prelude.closure({"Pool2dPadded"})
    ['Pool2dPadded', 'same_padding', 'pool2d_padded']
    """

    sources: dict[str, str]
    uses: dict[str, set[str]]

    def closure(self, names: Iterable[str]) -> list[str]:
        """``names`` and the definitions they use, transitively, in file order."""
        todo, seen = list(names), set()
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo += self.uses[name]
        return [n for n in self.sources if n in seen]


@cache
def read_prelude(path: Path) -> Prelude:
    """The definitions of the prelude file at ``path`` (see :class:`Prelude`)."""
    return parse_prelude(path.read_text())


def parse_prelude(text: str) -> Prelude:
    r"""The definitions of the prelude source ``text``.

    >>> prelude = parse_prelude("N = 2\n\n\ndef f(x):\n    return g(x) * N\n\n\ndef g(x): ...\n")
    >>> list(prelude.sources), sorted(prelude.uses["f"]), prelude.closure({"g"})
    (['N', 'f', 'g'], ['N', 'g'], ['g'])
    """
    sources: dict[str, str] = {}
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            sources[node.name] = ast.get_source_segment(text, node)
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            sources[node.targets[0].id] = ast.get_source_segment(text, node)
    uses = {name: (set(re.findall(r"\b\w+\b", source)) & sources.keys()) - {name}
            for name, source in sources.items()}
    return Prelude(sources, uses)


def by_condition(decls: list) -> list[list]:
    """Consecutive declarations grouped by their condition (one ``if`` per group)."""
    groups: list[list] = []
    for decl in decls:
        if groups and decl.cond is not None and groups[-1][0].cond is not None and \
                to_code(groups[-1][0].cond) == to_code(decl.cond):
            groups[-1].append(decl)
        else:
            groups.append([decl])
    return groups


def needs_building(seq: SeqCtor) -> bool:
    return any(isinstance(e, (Conditional, Loop)) for e in seq.items)


def unrolled(c: Any) -> list[Any]:
    if isinstance(c, Repeated):
        if is_symbolic(c.count):
            raise ValueError("a repeat with a symbolic count cannot sit among named layers")
        return [c.ctor] * c.count
    return [c]


def assign(target: str, value: str) -> list[str]:
    line = f"{target} = {value}"
    if len(line) <= MAX_LINE or "\n" in value:
        return line.split("\n") if "\n" in value else [line]
    head, _, rest = value.partition("(")
    args = split_args(rest[:-1])
    indent = " " * (len(target) - len(target.lstrip()))
    return [f"{target} = {head}(", *(f"{indent}{INDENT}{a}," for a in args), f"{indent})"]


def split_args(text: str) -> list[str]:
    """The top-level comma-separated items of an argument list (commas inside brackets or
    strings do not split).

    >>> split_args('a, f(b, c), "d, e"')
    ['a', 'f(b, c)', '"d, e"']
    """
    return items(text)


def wrap_def(head: str) -> str:
    if len(head) <= MAX_LINE:
        return head
    inner = head[head.index("(") + 1: head.rindex(")")]
    args = split_args(inner)
    return (f"{INDENT}def __init__(\n" + "".join(f"{INDENT * 2}{a},\n" for a in args)
            + f"{INDENT}) -> None:")



def pool_pads(item: Any) -> tuple[int, int, int, int] | str | None:
    """How a pool pads: ``None`` when symmetric (the framework's own ``padding``), the
    explicit (top, bottom, left, right) when not, or ``'same'`` for TensorFlow's 'same' at
    a stride above 1 (or one set by a block parameter), which depends on the input size and
    so is computed in ``forward``.

    At stride 1, 'same' pads ``k - 1`` in all whatever the size, so it is resolved here.
    """
    a = item.attrs
    stride = pool_stride(a)
    if is_symbolic(a["pad"]):
        return None
    if a["pad"] == "same" and (is_symbolic(stride) or is_symbolic(a["kernel"])
                               or tuple(stride) != (1, 1)):
        return "same"
    pads = pool_padding(item.concrete, item.in_shape[1:])
    return None if pads[0] == pads[1] and pads[2] == pads[3] else pads


def call(func: str, args: list[str], kwargs: list[tuple[str, str]]) -> str:
    """``call("nn.Linear", ["8", "2"], [("bias", "False")])`` -> ``nn.Linear(8, 2, bias=False)``."""
    return f"{func}({', '.join(args + [f'{k}={v}' for k, v in kwargs])})"


def non_default(attrs: dict, defaults: dict[str, Any], names: dict[str, str] | None = None,
                render: Any = None) -> list[tuple[str, str]]:
    """Keyword arguments for the attributes that are symbolic or differ from their default,
    named as the target calls them (``names``), rendered with ``render`` (``code``).

    >>> non_default({"stride": (2, 2), "groups": 1}, {"stride": (1, 1), "groups": 1})
    [('stride', '2')]
    """
    names, render = names or {}, render or code
    return [(names.get(k, k), render(attrs[k])) for k, d in defaults.items()
            if is_symbolic(attrs[k]) or attrs[k] != d]


def code(value: Any) -> str:
    """Render an attribute value: pairs of equal numbers collapse, lists become tuples.

    >>> code((3, 3)), code([1, 7]), code(0.001)
    ('3', '(1, 7)', '0.001')
    """
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and not is_symbolic(value) and value[0] == value[1]:
            return code(value[0])
        return "(" + ", ".join(code(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return to_code(value)


class BaseGenerator:
    """Renders a plan's structure; a backend sets the constants and overrides the hooks.

    Constants: ``MODULE`` (base class of generated classes), ``ARRAY`` (tensor type),
    ``FORWARD`` (method name), ``TRAINING`` (when side outputs run), ``INIT_ARGS`` (extra
    ``__init__`` parameters), ``BLOCK_ARGS`` (extra block constructor arguments),
    ``CROSS_ENTROPY``, ``CONCAT``, ``SPLIT`` (call templates), ``SIZE`` (how an output
    size is written), ``ACTIVATIONS`` (op -> (module template, call
    template): the lowerings of one line, ``{x}`` the input and ``{attr}`` an attribute).
    Hooks: ``header_lines``, ``imports``, ``helper_sources``, ``factory``, ``absent``,
    ``seq_syntax``, ``concat``, ``comment``, ``side_init``, ``return_type``,
    ``forward_return``, ``init_tail``.
    """

    MODULE = "nn.Module"
    ARRAY = "Tensor"
    FORWARD = "forward"
    TRAINING = "self.training"
    INIT_ARGS: tuple[str, ...] = ()
    BLOCK_ARGS = ""
    SUPER_INIT = True
    CROSS_ENTROPY = "cross_entropy({}, target, label_smoothing)"
    LOG_PROBS = "jnp.log(jnp.maximum({}, 1e-12))"  # the log of probabilities, kept finite
    CONCAT = "torch.cat([{args}], 1)"
    SPLIT = "torch.split({arg}, {sizes}, dim=1)"
    SIZE = staticmethod(code)
    ACTIVATIONS: dict[str, tuple[str, str]] = {}

    def __init__(self, plan: NetworkPlan):
        self.plan = plan
        self.spec = plan.spec
        self.helpers: set[str] = set(plan.helpers)

    # -------------------------------------------------------------- file

    def render(self) -> str:
        """The file: docstring, imports, helpers, outputs, classes, factory, late helpers."""
        classes = [self.render_class(c) for c in self.plan.classes]
        factory = self.factory()
        before, after = self.helper_sources("\n".join(classes + factory))
        blocks = [*before, self.outputs_decl(), *classes, *factory, *after]
        body = "\n\n\n".join(b.strip("\n") for b in blocks if b.strip())
        gap = "\n\n\n" if body.startswith(("class ", "def ")) else "\n\n"  # as isort spaces
        return fit(f"{self.header()}\n\n{self.imports(body)}{gap}{body}\n")

    def helper_sources(self, used: str) -> tuple[list[str], list[str]]:
        """The sources of the helpers the file needs, (before the model, after it); ``used``
        is the code of the classes and the factory."""
        raise NotImplementedError

    def imports(self, body: str) -> str:
        """The import lines that ``body`` needs."""
        raise NotImplementedError

    def factory(self) -> list[str]:
        """The entry points after the classes (``create_model``, ``loss``)."""
        raise NotImplementedError

    def header(self) -> str:
        """The module docstring: description, paper, reference, then the backend's lines."""
        spec = self.spec
        lines = [f'"""{docstring_text(spec.description or spec.name)}', ""]
        if spec.paper:
            lines.append(f"Paper: {docstring_text(spec.paper)}.")
        if spec.reference:
            lines.append(f"Reference: {docstring_text(spec.reference)}.")
        return "\n".join([*lines, *self.header_lines(), '"""'])

    def header_lines(self) -> list[str]:
        raise NotImplementedError

    def outputs_decl(self) -> str:
        """The named tuple of main and side outputs, and the side outputs' loss weights."""
        net = self.plan.network
        if not net.sides:
            return ""
        fields = ["logits", *(s[0] for s in net.sides)]
        name = f"{net.name}Outputs"
        ann = ", ".join([f'"{f}": {self.ARRAY}' if i == 0 else f'"{f}": {self.ARRAY} | None'
                         for i, f in enumerate(fields)])
        weights = ", ".join(f'"{s[0]}": {s[1]!r}' for s in net.sides)
        return (f'{name} = namedtuple("{name}", {fields!r})\n'.replace("'", '"')
                + f"{name}.__annotations__ = {{{ann}}}\n\n"
                + "# loss weight of each side output (aux head), from the spec\n"
                + f"LOSS_WEIGHTS = {{{weights}}}")

    def loss(self, main_only: str) -> str:
        """``loss(outputs, target)``: cross-entropy of the main and weighted side outputs.

        A network whose main output is a softmax (the Keras applications) gives
        probabilities: the loss takes their log, which the cross-entropy's log-softmax
        leaves unchanged (the log of a distribution is its own log-softmax)."""
        ce = self.CROSS_ENTROPY
        probabilities = _ends_in_softmax(self.plan.network)
        main = (lambda v: ce.format(self.LOG_PROBS.format(v))) if probabilities else ce.format
        kind = "softmax probabilities, so of their log" if probabilities else "logits"
        doc = f"Cross-entropy of the outputs ({kind})."
        if self.plan.network.sides:
            doc = f"Cross-entropy of the main output ({kind}) plus the weighted side outputs."
            if len(doc) > MAX_LINE - 10:
                doc = doc.replace(") plus", ")\n" + INDENT + "plus") + "\n" + INDENT
        out = [f"def loss(outputs, target: {self.ARRAY}, label_smoothing: float = 0.0) -> "
               f"{self.ARRAY}:", f'{INDENT}"""{doc}"""']
        if not self.plan.network.sides:
            return "\n".join([*out, f"{INDENT}return {main('outputs')}"])
        out += [
            f"{INDENT}if {main_only}:",
            f"{INDENT * 2}return {main('outputs')}",
            f"{INDENT}total = {main('outputs.logits')}",
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
        return "\n".join([*lines, *self.render_init(plan), "", *self.render_forward(plan)])

    def base_class(self, plan: ClassPlan) -> str:
        """The base class of a generated class."""
        return self.MODULE

    def render_init(self, plan: ClassPlan) -> list[str]:
        params = []
        for p in plan.params:
            ann = p.type if p.default != "None" else f"{p.type} | None"
            params.append(f"{p.name}: {ann}" + (f" = {p.default}" if p.default is not None else ""))
        params += self.INIT_ARGS
        lines = [wrap_def(f"{INDENT}def __init__(self{''.join(', ' + p for p in params)}) "
                          "-> None:")]
        pad = INDENT * 2
        if self.SUPER_INIT:
            lines.append(f"{pad}super().__init__()")
        for name, default in plan.defaults_code:
            lines += [f"{pad}if {name} is None:", f"{INDENT * 3}{name} = {default}"]
        for group in by_condition(plan.decls):
            if group[0].cond is None or len(group) == 1:
                lines += self.render_decl(group[0])
                continue
            lines += [f"{pad}self.{d.attr} = {self.absent(d.ctor)}" for d in group]
            lines.append(f"{pad}if {to_code(group[0].cond)}:")
            for d in group:
                lines += [INDENT + line for line in self.render_decl(replace(d, cond=None))]
        return lines + self.init_tail(plan, len(lines))

    def init_tail(self, plan: ClassPlan, length: int) -> list[str]:
        """Lines after the declarations of ``__init__`` (``length`` lines so far)."""
        return []

    def absent(self, ctor: Any) -> str:
        """The value of an optional attribute that is not built."""
        return "None"

    def render_decl(self, decl: Any) -> list[str]:
        pad = INDENT * 2
        if not isinstance(decl.ctor, (OpCtor, BlockCtor, SeqCtor)):
            return [f"{pad}self.{decl.attr} = {code(decl.ctor)}"]
        if isinstance(decl.ctor, SeqCtor) and needs_building(decl.ctor):
            lines = self.built_sequential(decl.attr, decl.ctor)
            if decl.cond is None:
                return [pad + line for line in lines]
            return [f"{pad}self.{decl.attr} = {self.absent(decl.ctor)}",
                    f"{pad}if {to_code(decl.cond)}:", *(pad + INDENT + line for line in lines)]
        value = self.ctor(decl.ctor, 2 if decl.cond is None else 3)
        if decl.cond is None:
            return assign(f"{pad}self.{decl.attr}", value)
        return [f"{pad}self.{decl.attr} = {self.absent(decl.ctor)}",
                f"{pad}if {to_code(decl.cond)}:",
                *assign(f"{pad}{INDENT}self.{decl.attr}", value)]

    def ctor(self, ctor: Any, depth: int) -> str:
        """A constructor expression: an op's module, a block class, a sequence."""
        if isinstance(ctor, OpCtor):
            return getattr(self, f"module_{ctor.op.name}")(ctor)
        if isinstance(ctor, BlockCtor):
            args = [code(ctor.in_channels)]
            args += [f"{k}={code(v)}" if kw else code(v) for k, v, kw in ctor.args]
            return f"{ctor.cls}({', '.join(args)}{self.BLOCK_ARGS})"
        if isinstance(ctor, SeqCtor):
            return self.sequential(ctor, depth)
        raise TypeError(ctor)

    # -------------------------------------------------------------- sequences

    def seq_syntax(self, kind: str) -> tuple[str, str, str]:
        """(opening, item template, closing) of a sequence: ``kind`` is plain, named or
        built (from a list called ``layers``)."""
        return {"plain": ("nn.Sequential(", "{value},", ")"),
                "named": ("nn.Sequential(OrderedDict([", '("{key}", {value}),', "]))"),
                "built": ("nn.Sequential(*", "", ")")}[kind]

    def sequential(self, seq: SeqCtor, depth: int) -> str:
        pad = INDENT * (depth + 1)
        if all(name is None for name, _ in seq.items):
            head, item, tail = self.seq_syntax("plain")
            items = [self._seq_item(c, depth + 1) for _, c in seq.items]
            return head + "\n" + "".join(f"{pad}{item.format(value=i)}\n" for i in items) + \
                f"{INDENT * depth}{tail}"
        head, item, tail = self.seq_syntax("named")
        entries, index = [], 0
        for name, c in seq.items:
            for one in unrolled(c):
                key = name if name is not None else str(index)
                entries.append(pad + item.format(key=key, value=self.ctor(one, depth + 1)))
                index += 1
        return head + "\n" + "".join(e + "\n" for e in entries) + f"{INDENT * depth}{tail}"

    def _seq_item(self, c: Any, depth: int) -> str:
        if isinstance(c, Repeated):
            return f"*[{self.ctor(c.ctor, depth)} for _ in range({code(c.count)})]"
        return self.ctor(c, depth)

    def built_sequential(self, attr: str, seq: SeqCtor) -> list[str]:
        """A sequence whose items depend on block parameters, built as a list."""
        head, _, tail = self.seq_syntax("built")
        return ["layers = []", *self._build_entries(seq.items),
                f"self.{attr} = {head}layers{tail}"]

    def _build_entries(self, entries: list) -> list[str]:
        lines = []
        for entry in entries:
            if isinstance(entry, tuple):
                if entry[0] is not None:
                    raise ValueError("named items cannot sit in a conditional sequence")
                lines += self._append(entry[1])
            elif isinstance(entry, Conditional):
                lines.append(f"if {to_code(entry.cond)}:")
                lines += [INDENT + line for line in self._build_entries(entry.items)]
            elif isinstance(entry, Loop):
                lines.append(f"for {entry.index or '_'} in range({to_code(entry.count)}):")
                lines += [INDENT + line for line in self._build_entries(entry.items)]
        return lines

    def _append(self, ctor: Any) -> list[str]:
        if isinstance(ctor, Repeated):
            return [f"layers += [{self.ctor(ctor.ctor, 3)} for _ in range({code(ctor.count)})]"]
        line = f"layers.append({self.ctor(ctor, 3)})"
        if len(line) + 12 <= MAX_LINE:
            return [line]
        head, _, rest = self.ctor(ctor, 3).partition("(")
        return [f"layers.append({head}(", *(f"{INDENT}{a}," for a in split_args(rest[:-1])),
                "))"]

    # -------------------------------------------------------------- forward

    def render_forward(self, plan: ClassPlan) -> list[str]:
        sides = plan.is_network and plan.sides
        pad = INDENT * 2
        lines = [f"{INDENT}def {self.FORWARD}(self, x: {self.ARRAY}) -> "
                 f"{self.return_type(plan) if sides else self.ARRAY}:"]
        lines += [pad + self.side_init(var) for var, _, _ in plan.sides]
        for stmt in plan.stmts:
            if isinstance(stmt, Comment):
                if plan.is_network and not (lines[-1].strip().startswith("#")):
                    lines.append(f"{pad}# {self.comment(stmt.text)}")
                continue
            lines += [pad + line for line in self.statement(stmt)]
        return lines + self.forward_return(plan)

    def side_init(self, var: str) -> str:
        """A side output's variable before the body runs (set in training only)."""
        return f"{var}: {self.ARRAY} | None = None"

    def return_type(self, plan: ClassPlan) -> str:
        return f"{plan.name}Outputs"

    def comment(self, text: str) -> str:
        """A shape comment (``N x 64 x 112 x 112``) in the backend's layout."""
        return text

    def forward_return(self, plan: ClassPlan) -> list[str]:
        return [f"{INDENT * 2}return {plan.output}"]

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
            return assign(stmt.out, self.concat(stmt.args))
        if isinstance(stmt, Sum):
            first = stmt.args[0] if stmt.scale_attr is None else \
                f"{stmt.args[0]} * self.{stmt.scale_attr}"
            return [f"{stmt.out} = {' + '.join([first, *stmt.args[1:]])}"]
        if isinstance(stmt, Prod):
            return [f"{stmt.out} = {' * '.join(stmt.args)}"]
        if isinstance(stmt, Split):
            sizes = f"self.{stmt.attr}" if stmt.attr else code(list(stmt.sizes))
            return assign(", ".join(stmt.outs), self.split(stmt.arg, sizes))
        if isinstance(stmt, Alias):
            return [f"{stmt.out} = {stmt.arg}"]
        if isinstance(stmt, Comment):  # shape comments stand between top-level statements
            return []
        if isinstance(stmt, Guarded):
            lines = [f"{stmt.out} = {stmt.arg}"] if stmt.out != stmt.arg else []
            lines.append(f"if self.{stmt.guard}:" if stmt.flag else
                         f"if self.{stmt.guard} is not None:")
            for inner in stmt.body:
                lines += [INDENT + line for line in self.statement(inner)]
            return lines
        if isinstance(stmt, SideCall):
            guard = f"self.{stmt.attr} is not None and {self.TRAINING}" if stmt.optional \
                else self.TRAINING
            return [f"if {guard}:", f"{INDENT}{stmt.out} = self.{stmt.attr}({stmt.arg})"]
        raise TypeError(stmt)

    def tensor_call(self, stmt: Call) -> list[str]:
        """A learned tensor of the module (``op.module`` false) applied to the input."""
        apply = getattr(self, f"apply_{stmt.ctor.op.name}")
        if not stmt.optional:
            return [f"{stmt.out} = {apply(stmt.ctor, f'self.{stmt.attr}', stmt.arg)}"]
        lines = [f"{stmt.out} = {stmt.arg}"] if stmt.out != stmt.arg else []
        return lines + [f"if self.{stmt.attr} is not None:",
                        f"{INDENT}{stmt.out} = {apply(stmt.ctor, f'self.{stmt.attr}', stmt.out)}"]

    def concat(self, args: list[str]) -> str:
        return self.CONCAT.format(args=", ".join(args))

    def split(self, arg: str, sizes: str) -> str:
        """``arg`` split into runs of channels of ``sizes`` (a list)."""
        return self.SPLIT.format(arg=arg, sizes=sizes)

    # -------------------------------------------------------------- shared lowerings

    def _pool_kwargs(self, item: Any) -> list[tuple[str, str]]:
        a = item.attrs
        out = []
        stride = pool_stride(a)
        out.append(("stride", code(stride)))
        pad = a["pad"]
        if not is_symbolic(pad):
            top, _, left, _ = pool_padding(item.concrete, item.in_shape[1:])
            pad = (top, left)
        if is_symbolic(pad) or pad != (0, 0):
            out.append(("padding", code(pad)))
        if a.get("dilation", (1, 1)) != (1, 1):
            out.append(("dilation", code(a["dilation"])))
        if a["ceil"]:
            out.append(("ceil_mode", code(a["ceil"])))
        if "count_include_pad" in a and not a["count_include_pad"]:
            out.append(("count_include_pad", code(a["count_include_pad"])))
        return out

    def _lrn_kwargs(self, a: dict) -> list[tuple[str, str]]:
        return [("alpha", code(a["alpha"])), ("beta", code(a["beta"])), ("k", code(a["k"]))]

    def module_l2norm(self, c: OpCtor) -> str:
        self.helpers.add("L2Norm")
        eps = c.attrs["eps"]
        return "L2Norm()" if eps == 1e-12 else f"L2Norm(eps={code(eps)})"

    def call_identity(self, s: Functional, x: str) -> str:
        return x

    def module_scale(self, c: OpCtor) -> str:
        self.helpers.add("Scale")
        return f"Scale({code(c.attrs['factor'])})"

    def call_scale(self, s: Functional, x: str) -> str:
        return f"{x} * {code(s.attrs['factor'])}"

    def fields(self, attrs: dict) -> dict[str, str]:
        """An op's attributes as code, for the templates of one-line lowerings (an output
        size as the backend's pair: ``SIZE``)."""
        return {k: type(self).SIZE(v) if k == "size" else code(v) for k, v in attrs.items()}

    def __getattr__(self, name: str) -> Any:
        for prefix, index in (("module_", 0), ("call_", 1)):
            op = name.removeprefix(prefix)
            if name.startswith(prefix) and op in self.ACTIVATIONS:
                template = self.ACTIVATIONS[op][index]
                if index == 0:
                    return lambda c: template.format(**self.fields(c.attrs))
                return lambda s, x: template.format(x=x, **self.fields(s.attrs))
        raise AttributeError(name)


def _ends_in_softmax(network: ClassPlan) -> bool:
    """Whether the network's main output is written last by a softmax."""
    for stmt in reversed(network.stmts):
        if getattr(stmt, "out", None) != network.output:
            continue
        op = stmt.ctor.op if isinstance(stmt, Call) and isinstance(stmt.ctor, OpCtor) else \
            getattr(stmt, "op", None)
        return getattr(op, "name", None) == "softmax"
    return False
