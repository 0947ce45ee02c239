"""Edits: a variant changes its parent's body by path, without restating it.

A spec that ``extends`` a parent may list ``edits``; each addresses body items by the
dotted paths that ``summary``, ``diff`` and the ``state_dict`` use (``Mixed_5b``,
``repeat.3``, ``Mixed_5b.branch_pool``) or by a glob over them (``Mixed_6*``, ``repeat.*``;
``*`` never crosses a dot), and applies one of five verbs:

- ``remove: PATH``
- ``replace: PATH`` + ``with: NODE`` (a list splices several items in)
- ``insert_before: PATH`` / ``insert_after: PATH`` + ``with: NODE``
- ``set: PATH`` + ``with: {arg: value}``: named arguments of a call, or ``{count: n}`` of a
  repeat

Edits apply in order, to the body after ``extends`` merging. An edit inside one block
instance (``Mixed_5b.branch_pool``) gives that instance a private copy of its block,
named after it (``InceptionA_Mixed_5b``); an edit of one copy of a repeat unrolls the
repeat (same paths, same ``state_dict``).

>>> from inceptdsl.loader import load
>>> spec = load("inception_resnet_v1_facenet")  # two edits of inception_resnet_v1
>>> [e.describe() for e in spec.variant.edits], spec.variant.describe()
(['insert_after repeat_3', 'replace logits'], '2 edits')
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from .elaborate import needs_module
from .errors import SourceSpan, SpecError
from .expr import Const, Expr, did_you_mean
from .naming import attr_names
from .ops import OPS
from .spec import Add, BlockDef, Concat, Layer, Mul, Node, Ref, Repeat, Seq, Spec, parse_node

VERBS = ("remove", "replace", "insert_before", "insert_after", "set")
NEEDS_WITH = ("replace", "insert_before", "insert_after", "set")
MAX_EDITS = 500  # edits in one spec (a real variant has a handful)
MAX_ADDRESSES = 20_000  # addressable items of a body (as many as MAX_GRAPH_NODES ops)


@dataclass
class Edit:
    """One edit of a parent's body: ``remove: Mixed_6e``."""

    verb: str
    target: str
    span: SourceSpan  # the target, where errors about the edit point
    node: Node | None = None  # replace / insert_*
    values: dict[str, Expr] = field(default_factory=dict)  # set

    def describe(self) -> str:
        """``remove Mixed_6e``"""
        return f"{self.verb} {self.target}"


@dataclass
class Address:
    """A body item that a path names, and what must become private before editing it."""

    path: str
    node: Node
    container: list[Node] | None  # the list holding ``node`` (None: shared repeat body)
    owners: list[Node]  # block calls and repeats whose shared body holds ``node``


# ---------------------------------------------------------------------------- parsing


def parse_edits(value: Any, span: SourceSpan) -> list[Edit]:
    """The ``edits`` list of a document -> :class:`Edit` objects (located errors)."""
    if not isinstance(value, list):
        raise SpecError("'edits' is a list of edits such as '- remove: Mixed_6e'", span)
    if len(value) > MAX_EDITS:
        raise SpecError(f"more than {MAX_EDITS} edits; write the body instead", span)
    return [_edit(item, value.item_span(i)) for i, item in enumerate(value)]


def _edit(item: Any, span: SourceSpan) -> Edit:
    if not isinstance(item, dict):
        raise SpecError("an edit is a mapping such as 'remove: Mixed_6e' or "
                        "'set: Mixed_5b' with 'with: {pool_features: 64}'",
                        getattr(item, "span", span))
    verbs = [k for k in item if k in VERBS]
    for key in item:
        if key not in VERBS and key != "with":
            raise SpecError(f"unknown edit key '{key}'", item.key_span(key),
                            hint=did_you_mean(key, [*VERBS, "with"])
                            or "an edit is one of " + ", ".join(VERBS))
    if len(verbs) != 1:
        raise SpecError("an edit has exactly one of " + ", ".join(VERBS),
                        item.key_span(verbs[1]) if verbs else item.span)
    verb = verbs[0]
    target, target_span = item[verb], item.value_span(verb)
    if not isinstance(target, str) or not target.strip() or " " in target.strip():
        raise SpecError(f"'{verb}' takes a path or pattern such as Mixed_5b or Mixed_6*",
                        target_span)
    edit = Edit(verb, str(target).strip(), target_span)
    if verb not in NEEDS_WITH:
        if "with" in item:
            raise SpecError("'remove' takes no 'with'", item.key_span("with"))
        return edit
    if "with" not in item:
        raise SpecError(f"'{verb}' needs 'with:' (" + (
            "the arguments to change, e.g. with: {pool_features: 64}" if verb == "set"
            else "the node to put there") + ")", item.key_span(verb))
    operand, operand_span = item["with"], item.value_span("with")
    if verb == "set":
        edit.values = _values(operand, operand_span)
    else:
        edit.node = parse_node(operand, operand_span)
    return edit


def _values(value: Any, span: SourceSpan) -> dict[str, Expr]:
    from .spec import _expr

    if not isinstance(value, dict) or not value:
        raise SpecError("'set' takes the arguments to change: with: {pool_features: 64} "
                        "(or {count: 5} for a repeat)", span)
    return {str(k): _expr(_list_text(v), value.value_span(k)) for k, v in value.items()}


def _list_text(value: Any) -> Any:
    """A YAML list value (``[1, 5]``) as expression text; anything else as it is.

    >>> _list_text([1, [5, 2]])
    '[1, [5, 2]]'
    """
    if isinstance(value, list):
        return "[" + ", ".join(str(_list_text(v)) for v in value) + "]"
    return value


# ---------------------------------------------------------------------------- paths


def addresses(body: Node, blocks: dict[str, BlockDef]) -> list[Address]:
    """Every addressable item of a body, with its dotted path, in body order.

    >>> from inceptdsl.loader import load
    >>> spec = load("inception_resnet_v2")
    >>> paths = [a.path for a in addresses(spec.body, spec.blocks)]
    >>> "repeat.3" in paths, "mixed_5b.branch0.conv" in paths
    (True, True)
    """
    top = _Where("", False, [0], _autonames(body, blocks), [], None)
    return list(_Walker(blocks).walk(body, top))


@dataclass
class _Where:
    prefix: str
    numbered: bool
    counter: list[int]
    autonames: dict[int, str]
    owners: list[Node]
    container: list[Node] | None


class _Walker:
    """Emulates the expander's naming (``expand.Expander._path``) over the spec tree."""

    def __init__(self, blocks: dict[str, BlockDef]):
        self.blocks = blocks
        self.stack: list[str] = []
        self.count = 0

    def found(self, path: str, n: Node, at: _Where) -> Address:
        self.count += 1
        if self.count > MAX_ADDRESSES:
            raise SpecError(f"the network has more than {MAX_ADDRESSES} items to address",
                            n.span)
        return Address(path, n, at.container, at.owners)

    def walk(self, n: Node, at: _Where) -> Iterator[Address]:
        if isinstance(n, Seq):
            yield from self._seq(n, at)
        elif isinstance(n, Repeat):
            yield from self._repeat(n, at)
        elif isinstance(n, Layer):
            yield from self._layer(n, at)
        elif isinstance(n, (Concat, Add, Mul)):
            if n.name is not None:
                yield self.found(at.prefix + n.name, n, at)
            for branch in n.branches:
                yield from self.walk(branch, replace(at, container=n.branches))
        elif isinstance(n, Ref) and n.name is not None:
            yield self.found(at.prefix + n.name, n, at)

    def _local(self, n: Node, at: _Where) -> str:
        if at.numbered:
            index = at.counter[0]
            at.counter[0] += 1
            return at.prefix + (n.name if n.name is not None else str(index))
        return at.prefix + (n.name or at.autonames.get(id(n)) or f"_{id(n)}")

    def _seq(self, n: Seq, at: _Where) -> Iterator[Address]:
        if n.name is None:
            for item in n.items:
                yield from self.walk(item, replace(at, container=n.items))
            return
        path = self._local(n, at)
        yield self.found(path, n, at)
        inner = _Where(path + ".", True, [0], {}, at.owners, n.items)
        for item in n.items:
            yield from self.walk(item, replace(inner, container=n.items))

    def _repeat(self, n: Repeat, at: _Where) -> Iterator[Address]:
        inner = replace(at, owners=[*at.owners, n], container=None)
        if not at.numbered or n.name is not None:
            path = self._local(n, at)
            yield self.found(path, n, at)
            inner = _Where(path + ".", True, [0], {}, [*at.owners, n], None)
        count = n.count.value if isinstance(n.count, Const) else 0
        if not isinstance(count, int) or isinstance(count, bool):
            return
        for _ in range(min(count, MAX_ADDRESSES + 1)):
            yield from self.walk(n.body, inner)

    def _layer(self, n: Layer, at: _Where) -> Iterator[Address]:
        bdef = self.blocks.get(n.callee)
        if not (at.numbered or n.name is not None or needs_module(n, self.blocks)):
            return
        path = self._local(n, at)
        yield self.found(path, n, at)
        if bdef is None or n.inline or n.callee in self.stack or len(self.stack) > 64:
            return
        self.stack.append(n.callee)
        names = _autonames(bdef.body, self.blocks)
        yield from self.walk(bdef.body, _Where(path + ".", False, [0], names,
                                               [*at.owners, n], None))
        self.stack.pop()


def _autonames(body: Node, blocks: dict[str, BlockDef]) -> dict[int, str]:
    """The attribute names the expander gives unnamed layers of ``body`` (same rule)."""
    return attr_names(body, lambda n: needs_module(n, blocks))


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A glob over dotted paths: ``*`` and ``?`` never cross a dot.

    >>> bool(pattern_regex("Mixed_6*").fullmatch("Mixed_6b"))
    True
    >>> bool(pattern_regex("Mixed_6*").fullmatch("Mixed_6b.branch1x1"))
    False
    """
    parts = re.split(r"(\*|\?)", pattern)
    table = {"*": "[^.]*", "?": "[^.]"}
    return re.compile("".join(table.get(p, re.escape(p)) for p in parts))


# ---------------------------------------------------------------------------- applying


def apply_edits(body: Seq, blocks: dict[str, BlockDef], edits: list[Edit]) -> tuple[
        Seq, dict[str, BlockDef]]:
    """The body (and blocks, with private copies) after the edits, in order.

    Nothing given is changed: the body and any block an edit reaches into are copied.
    """
    body, blocks = copy.deepcopy(body), dict(blocks)
    private: set[int] = set()  # block calls that already own their block
    for edit in edits:
        _apply(edit, body, blocks, private)
    return body, blocks


def _apply(edit: Edit, body: Seq, blocks: dict[str, BlockDef], private: set[int]) -> None:
    regex = pattern_regex(edit.target)
    while True:
        found = [a for a in addresses(body, blocks) if regex.fullmatch(a.path)]
        if not found:
            raise _nothing_matches(edit, body, blocks)
        shared = next((o for a in found for o in a.owners if id(o) not in private), None)
        if shared is None:
            break
        try:
            _make_private(shared, body, blocks)
        except SpecError as exc:  # about the parent's node: said at the edit that asked
            raise SpecError(exc.message, edit.span, [("what it would have to copy or unroll",
                                                      exc.span), *exc.notes],
                            exc.hint) from None
        private.add(id(shared))
    if edit.node is not None and edit.node.name is not None and len(
            {id(a.container) for a in found}) < len(found):
        raise SpecError(f"'{edit.target}' matches {len(found)} places in one body, and the "
                        f"node put there is named '{edit.node.name}': the name would be "
                        "defined twice", edit.span, hint="leave the node unnamed, or address one "
                        "place")
    for address in found:
        _apply_one(edit, address, blocks)


def _nothing_matches(edit: Edit, body: Seq, blocks: dict[str, BlockDef]) -> SpecError:
    paths = [a.path for a in addresses(body, blocks)]
    what = "pattern" if any(c in edit.target for c in "*?") else "path"
    hint = did_you_mean(edit.target, paths) if what == "path" else _near_pattern(
        edit.target, paths)
    if hint is None:
        top = [p for p in paths if "." not in p]
        hint = "paths of the body: " + ", ".join(top[:12]) + (", ..." if len(top) > 12 else "")
    return SpecError(f"the {what} '{edit.target}' matches nothing in the body", edit.span,
                     hint=hint)


def _near_pattern(pattern: str, paths: list[str]) -> str | None:
    """A hint for a pattern that matches nothing: its literal start, corrected.

    >>> _near_pattern("Mixd_*", ["Mixed_5b", "Mixed_6a", "fc"])
    "did you mean 'Mixed_*'?"
    """
    start = re.split(r"[*?]", pattern, maxsplit=1)[0]
    rest = pattern[len(start):]
    close = did_you_mean(start, {p[:len(start) + 1] for p in paths} | {
        p[:len(start)] for p in paths} | {p[:max(len(start) - 1, 1)] for p in paths})
    if close is None:
        return None
    fixed = close.split("'")[1] + rest
    return f"did you mean '{fixed}'?" if any(
        pattern_regex(fixed).fullmatch(p) for p in paths) else None


def _make_private(owner: Node, body: Seq, blocks: dict[str, BlockDef]) -> None:
    """Give one block call its own copy of the block, or unroll a repeat, in place."""
    if isinstance(owner, Layer):
        _private_block(owner, body, blocks)
        return
    assert isinstance(owner, Repeat)
    count = owner.count.value if isinstance(owner.count, Const) else None
    if not isinstance(count, int) or isinstance(count, bool):
        raise SpecError("a repeat whose count is an expression cannot be edited copy by "
                        "copy", owner.count.span,
                        hint="edit the repeat's count, or its whole body")
    if owner.index is not None:
        raise SpecError(f"a repeat with an index ('{owner.index}') cannot be edited copy by "
                        "copy", owner.span, hint="edit the repeat's count, or its body")
    container = _container_of(owner, body, blocks)
    if container is None:
        raise SpecError("one copy of a repeat that is a whole block body cannot be edited "
                        "alone", owner.span, hint="edit the repeat's count, or redefine "
                        "the block")
    items = [copy.deepcopy(owner.body) for _ in range(count)]
    seq = Seq(owner.span, items, name=owner.name, when=owner.when, side=owner.side,
              loss_weight=owner.loss_weight, source=owner.source,
              source_span=owner.source_span)
    # an unnamed repeat has a path (its auto name) unless a numbered sequence holds it: its
    # copies then go on numbering in place (features.11 ... features.17)
    path = next((a.path for a in addresses(body, blocks) if a.node is owner), None)
    if seq.name is None and path is not None and not path.rsplit(".", 1)[-1].isdigit():
        seq.name = path.rsplit(".", 1)[-1]
    container[_index(container, owner)] = seq


def _private_block(call: Layer, body: Seq, blocks: dict[str, BlockDef]) -> None:
    """Copy the block for this call, unless this is its only instance."""
    calls = [a for a in addresses(body, blocks) if isinstance(a.node, Layer)
             and a.node.callee == call.callee]
    if len(calls) == 1:
        return
    path = _path_of(call, body, blocks)
    old = blocks[call.callee]
    name = base = f"{old.name}_{path.replace('.', '_')}"
    n = 1
    while name in blocks:
        n += 1
        name = f"{base}_{n}"
    blocks[name] = replace(old, name=name, body=copy.deepcopy(old.body))
    call.call = replace(call.call, func=name)


def _path_of(node: Node, body: Seq, blocks: dict[str, BlockDef]) -> str:
    return next(a.path for a in addresses(body, blocks) if a.node is node)


def _container_of(node: Node, body: Seq, blocks: dict[str, BlockDef]) -> list[Node] | None:
    """The list that holds ``node`` (a sequence's items or a merge's branches), in the body
    or a block; ``None`` when it is the whole body of a block or repeat."""
    for root in [body, *(b.body for b in blocks.values())]:
        stack: list[Node] = [root]
        while stack:
            n = stack.pop()
            held = n.items if isinstance(n, Seq) else n.branches if isinstance(
                n, (Concat, Add, Mul)) else [n.body] if isinstance(n, Repeat) else []
            if any(item is node for item in held) and not isinstance(n, Repeat):
                return held
            stack += held
    return None


def _index(container: list[Node], node: Node) -> int:
    return next(i for i, item in enumerate(container) if item is node)


def _apply_one(edit: Edit, a: Address, blocks: dict[str, BlockDef]) -> None:
    if edit.verb == "set":
        _set(edit, a, blocks)
        return
    container = a.container
    if container is None:
        raise SpecError(f"'{a.path}' is the whole body of a block or repeat and cannot be "
                        f"{edit.verb.split('_')[0]}d alone", edit.span,
                        hint="edit the call of the block or the repeat instead")
    at = _index(container, a.node)
    new = _items(edit, container) if edit.node is not None else []
    if edit.verb == "remove":
        del container[at]
    elif edit.verb == "replace":
        container[at:at + 1] = new
    elif edit.verb == "insert_before":
        container[at:at] = new
    else:
        container[at + 1:at + 1] = new


def _items(edit: Edit, container: list[Node]) -> list[Node]:
    """The edit's node, fresh for each place; a sequence splices into a sequence."""
    node = copy.deepcopy(edit.node)
    assert node is not None
    if isinstance(node, Seq) and node.name is None and node.when is None and not node.side:
        return node.items
    return [node]


def _set(edit: Edit, a: Address, blocks: dict[str, BlockDef]) -> None:
    node = a.node
    if isinstance(node, Repeat):
        if set(edit.values) != {"count"}:
            extra = next(k for k in edit.values if k != "count")
            raise SpecError(f"'set' on the repeat '{a.path}' changes its count only, not "
                            f"'{extra}'", edit.values[extra].span)
        node.count = edit.values["count"]
        return
    if not isinstance(node, Layer):
        raise SpecError(f"'set' changes the arguments of a call or the count of a repeat; "
                        f"'{a.path}' is neither", edit.span)
    names = _param_names(node, blocks)
    args, kwargs = list(node.call.args), dict(node.call.kwargs)
    for key, value in edit.values.items():
        if key in names and names.index(key) < len(args):
            args[names.index(key)] = value
        else:
            kwargs[key] = value
    node.call = replace(node.call, args=args, kwargs=kwargs)


def _param_names(n: Layer, blocks: dict[str, BlockDef]) -> list[str]:
    if n.callee in blocks:
        return [p.name for p in blocks[n.callee].params]
    op = OPS.get(n.callee)
    return [attr.name for attr in op.attrs] if op else []


# ---------------------------------------------------------------------------- variants


@dataclass
class Variant:
    """What a variant does to its parent's body, for ``check`` and error locations."""

    parent: str
    parent_items: int
    body_items: int | None = None  # the variant's own body (it replaces the parent's)
    edits: list[Edit] = field(default_factory=list)
    base_body: Seq | None = None  # the body the edits apply to
    base_blocks: dict[str, BlockDef] = field(default_factory=dict)
    own_edits: int = 0  # edits written in the variant itself (a chain adds up all)

    def describe(self) -> str:
        """One line: ``3 edits``, ``replaces the body: 22 items -> 1``, ``keeps the body``.

        >>> Variant("inception_v3", 22, 1).describe()
        'replaces the body: 22 items -> 1'
        """
        parts = []
        if self.body_items is not None:
            parts.append(f"replaces the body: {self.parent_items} items -> {self.body_items}")
        if self.own_edits:
            parts.append(f"{self.own_edits} edit" + ("s" if self.own_edits > 1 else ""))
        return ", then ".join(parts) or "keeps the body"


def blame(spec: Spec, exc: SpecError, run: Any) -> SpecError:
    """Move an error that edits caused in the parent's text to the edit that caused it.

    ``run(spec)`` expands a spec; the edits are replayed one by one on the parent's body
    until the network stops expanding: that edit is reported, the parent's place as a note.
    """
    variant = spec.variant
    if variant is None or not variant.edits or exc.span.path == spec.path \
            or variant.base_body is None:
        return exc
    def fails(k: int) -> SpecError | None:
        body, blocks = apply_edits(variant.base_body, variant.base_blocks, variant.edits[:k])
        try:
            run(replace(spec, body=body, blocks=blocks, variant=None))
        except SpecError as inner:
            return inner
        return None

    if fails(0) is not None:
        return exc  # the parent itself does not expand (e.g. --set input too small)
    good, bad = 0, len(variant.edits)  # bisect: the first prefix of edits that fails
    while bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (good, mid) if fails(mid) is not None else (mid, bad)
    inner = fails(bad) or exc
    edit = variant.edits[bad - 1]
    return SpecError(f"after this edit ({edit.describe()}): {inner.message}", edit.span,
                     notes=[("in the parent, here", inner.span), *inner.notes],
                     hint=inner.hint)


def item_count(body: Any) -> int:
    """How many items a body has (a list's length; 1 for a single node, 0 for none)."""
    if body is None:
        return 0
    return len(body) if isinstance(body, list) else 1
