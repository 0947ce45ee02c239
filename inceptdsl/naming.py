"""Names that reach generated code: attribute names of a class body, one namespace each.

Explicit spec names are kept as they are (they are ``state_dict`` keys); layers that need a
module but carry no name get a readable, unique one derived from the op or block name.

>>> snake("InceptionResNetA"), snake("conv2d")
('inception_res_net_a', 'conv2d')
>>> ns = Namespace({"conv2d"})
>>> ns.fresh("conv2d"), ns.fresh("conv2d"), ns.fresh("class")
('conv2d_1', 'conv2d_2', 'class_')
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Callable

from .spec import MODULE_ATTRIBUTES, Add, Concat, Layer, Mul, Node, Repeat, Seq

__all__ = ["MODULE_ATTRIBUTES", "Namespace", "attr_names", "class_nodes", "docstring_text",
           "explicit_names", "snake"]



def docstring_text(text: str) -> str:
    r"""Spec text (a description, a comment) made safe inside a triple-quoted docstring.

    Backslashes, double quotes and unprintable characters are escaped, so the text can
    never close the docstring and run as code; the docstring's value is the text itself.

    >>> q = '"' * 3
    >>> attack = "x" + q + " + __import__('os').system('id') + " + q
    >>> eval(q + docstring_text(attack) + q) == attack
    True
    >>> docstring_text('say "hi"\x00')
    'say \\"hi\\"\\x00'
    """
    out = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char != "\n" and not char.isprintable():
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def snake(name: str) -> str:
    """CamelCase -> snake_case, for automatic attribute names."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name).lower()


class Namespace:
    """Hands out unique identifiers that are never keywords, builtins or taken names."""

    def __init__(self, taken: set[str] | frozenset[str] = frozenset()):
        self.taken = set(taken)
        self.last: dict[str, int] = {}  # base -> last suffix handed out (names only grow)

    def fresh(self, base: str) -> str:
        base = re.sub(r"\W", "_", base) or "x"
        if base[0].isdigit():
            base = "_" + base
        if keyword.iskeyword(base) or hasattr(builtins, base):
            base += "_"
        n = self.last.get(base, 0)
        name = f"{base}_{n}" if n else base
        while name in self.taken:  # resumes where the last call stopped: linear, not quadratic
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        self.last[base] = n
        return name

    def reserve(self, name: str) -> None:
        self.taken.add(name)


def explicit_names(body: Node) -> set[str]:
    """All names written in a class body (not inside named sequences or blocks)."""
    found: set[str] = set()
    for node in class_nodes(body):
        if node.name:
            found.add(node.name)
    return found


def class_nodes(body: Node):
    """The nodes of one class body, in order; named sequences count as one node."""
    yield body
    if isinstance(body, Seq) and body.name is None:
        for item in body.items:
            yield from class_nodes(item)
    elif isinstance(body, (Concat, Add, Mul)):
        for branch in body.branches:
            yield from class_nodes(branch)


def attr_names(body: Node, needs_module: Callable[[Layer], bool]) -> dict[int, str]:
    """Automatic attribute names for the unnamed nodes of a class body that need one.

    Keys are ``id(node)``; layers that need no module (functional ops) get none.
    """
    ns = Namespace(explicit_names(body))
    names: dict[int, str] = {}
    for node in class_nodes(body):
        if node.name is not None:
            continue
        if isinstance(node, Layer) and needs_module(node):
            names[id(node)] = ns.fresh(snake(node.callee))
        elif isinstance(node, Repeat):
            names[id(node)] = ns.fresh("layers")
    return names


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
