"""Text helpers shared by the code generators: literals, calls, line wrapping, grouping.

Each backend renders a :class:`~inceptdsl.plan.NetworkPlan` its own way; what is the same
for every Python target lives here, once.

>>> code((3, 3)), assign("        self.fc", "nn.Linear(2048, num_classes)")
('3', ['        self.fc = nn.Linear(2048, num_classes)'])
"""

from __future__ import annotations

from typing import Any

from inceptdsl.expr import is_symbolic, to_code
from inceptdsl.ops import pool_padding
from inceptdsl.plan import Conditional, Functional, Loop, OpCtor, Repeated, SeqCtor

INDENT = "    "
MAX_LINE = 96


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
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


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
    stride = a["stride"] if a["stride"] is not None else a["kernel"]
    if is_symbolic(a["pad"]):
        return None
    if a["pad"] == "same" and (is_symbolic(stride) or is_symbolic(a["kernel"])
                               or tuple(stride) != (1, 1)):
        return "same"
    pads = pool_padding(item.concrete, item.in_shape[1:])
    return None if pads[0] == pads[1] and pads[2] == pads[3] else pads


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
    """What every Python backend renders the same way; backends override the rest.

    A subclass provides ``ctor`` (a constructor expression), ``ACTIVATIONS`` (op name ->
    (module template, call template with ``{x}``)) and ``HELPERS`` (helper name -> source),
    plus ``module_<op>``/``call_<op>`` lowerings for the ops that differ.
    """

    ACTIVATIONS: dict[str, tuple[str, str]] = {}
    helpers: set[str]

    def ctor(self, ctor: Any, depth: int) -> str:
        raise NotImplementedError

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

    def _seq_item(self, c: Any, depth: int) -> str:
        if isinstance(c, Repeated):
            return f"*[{self.ctor(c.ctor, depth)} for _ in range({code(c.count)})]"
        return self.ctor(c, depth)

    def _pool_kwargs(self, item: Any) -> list[tuple[str, str]]:
        a = item.attrs
        out = []
        stride = a["stride"] if a["stride"] is not None else a["kernel"]
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

    def __getattr__(self, name: str) -> Any:
        for prefix, index in (("module_", 0), ("call_", 1)):
            op = name.removeprefix(prefix)
            if name.startswith(prefix) and op in self.ACTIVATIONS:
                template = self.ACTIVATIONS[op][index]
                if index == 0:
                    return lambda c: template
                return lambda s, x: template.format(x=x)
        raise AttributeError(name)
