"""Text helpers shared by the code generators: literals, calls, line wrapping, grouping.

Each backend renders a :class:`~inceptdsl.plan.NetworkPlan` its own way; what is the same
for every Python target lives here, once.

>>> code((3, 3)), assign("        self.fc", "nn.Linear(2048, num_classes)")
('3', ['        self.fc = nn.Linear(2048, num_classes)'])
"""

from __future__ import annotations

from typing import Any

from inceptdsl.expr import is_symbolic, to_code
from inceptdsl.plan import Conditional, Loop, Repeated, SeqCtor

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
