"""YAML loading that keeps the source position of every value.

Mappings become :class:`YMap`, sequences :class:`YList` and strings :class:`YStr`; each
knows its :class:`SourceSpan`, and containers know the spans of their keys and items, so
numbers and booleans are located through their container. Only safe YAML is accepted:
tags that would build Python objects, duplicate keys and alias bombs are spec errors.

>>> doc = load_yaml("name: v3\\ninput: [3, 299, 299]\\n", "s.yaml")
>>> doc["name"], doc["name"].span.line, doc.value_span("input").col
('v3', 1, 8)
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from .errors import SourceSpan, SpecError

# Limits that keep every input within ~1 s and ~100 MB (the largest shipped spec has 275
# YAML values in 15 kB): a bigger spec is almost surely generated or hostile.
MAX_NODES = 20_000  # values after aliases are expanded
MAX_BYTES = 256_000  # characters
_PLAIN_TAGS = {
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq")
}


class YStr(str):
    """A string that remembers where it was written."""

    span: SourceSpan

    def __new__(cls, value: str, span: SourceSpan) -> YStr:
        obj = super().__new__(cls, value)
        obj.span = span
        return obj

    def __deepcopy__(self, memo: dict) -> YStr:  # immutable, like str (edits copy bodies)
        return self


class YMap(dict):
    """A mapping with the spans of the mapping, its keys and its values."""

    span: SourceSpan
    key_spans: dict[str, SourceSpan]
    value_spans: dict[str, SourceSpan]

    def key_span(self, key: str) -> SourceSpan:
        return self.key_spans.get(key, self.span)

    def value_span(self, key: str) -> SourceSpan:
        return self.value_spans.get(key, self.span)


class YList(list):
    """A sequence with the spans of the sequence and of each item."""

    span: SourceSpan
    item_spans: list[SourceSpan]
    flow: bool = False  # written [a, b] (flow style) rather than as '- item' lines

    def item_span(self, index: int) -> SourceSpan:
        return self.item_spans[index] if index < len(self.item_spans) else self.span


def span_of(value: Any, default: SourceSpan) -> SourceSpan:
    """The span a located value carries, or ``default`` for plain scalars."""
    return getattr(value, "span", default)


def node_span(node: yaml.Node, path: str) -> SourceSpan:
    start, end = node.start_mark, node.end_mark
    return SourceSpan(path, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def load_yaml(text: str, path: str) -> Any:
    """Parse YAML text into located values; raise :class:`SpecError` on bad input."""
    if len(text) > MAX_BYTES:
        raise SpecError(
            f"file is too large ({len(text)} bytes; the limit is {MAX_BYTES})",
            SourceSpan(path, 1, 1, 1, 2),
        )
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = SourceSpan(path, mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 2)
        notes = []
        if exc.context_mark is not None and exc.context_mark is not mark and exc.context:
            ctx = exc.context_mark
            notes.append((exc.context, SourceSpan(path, ctx.line + 1, ctx.column + 1,
                                                  ctx.line + 1, ctx.column + 2)))
        raise SpecError(f"invalid YAML: {exc.problem or exc.context}", span,
                        notes=notes) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", SourceSpan(path, 1, 1, 1, 2)) from None
    except RecursionError:
        raise SpecError("YAML is nested too deeply", SourceSpan(path, 1, 1, 1, 2)) from None
    if root is None:
        raise SpecError("the spec is empty", SourceSpan(path, 1, 1, 1, 2))
    _check_size(root, path)
    return _Converter(path).convert(root, 0)


def _check_size(root: yaml.Node, path: str) -> None:
    """Reject alias bombs before expanding anything: count values as if aliases were copied.

    Sizes are memoised per node, so a bomb of nested aliases costs one pass over the
    distinct nodes, not over the billions of values it would expand to.
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if done or not children:
            sizes[id(node)] = 1 + sum(sizes.get(id(c), 0) for c in children)
            if sizes[id(node)] > MAX_NODES:
                raise SpecError(f"the spec has more than {MAX_NODES} YAML values (an alias "
                                "bomb?)", node_span(node, path))
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML, with numbers as YAML 1.2 reads them (see :data:`FLOAT_12`)."""


class PlainResolver(yaml.resolver.Resolver):
    """What a plain (unquoted) scalar reads as, exactly as :func:`load_yaml` reads it.

    >>> [plain_tag(t) for t in ("1e9", "1.5", "1e-5", "relu", "yes")]
    ['float', 'float', 'float', 'str', 'bool']
    """


# YAML 1.1 (PyYAML) reads "1e9" and "1e-5" as text; YAML 1.2 and every other reader take
# them as numbers, and so does a spec (the DSL and expressions do already).
FLOAT_12 = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$")
for _cls in (_Loader, PlainResolver):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_12, list("-+.0123456789"))
_PLAIN = PlainResolver()


def read_value(text: str) -> Any:
    """A YAML value (``--set`` values) read as spec files read their values.

    >>> read_value("1e9"), read_value("[3, 224, 224]"), read_value("relu")
    (1000000000.0, [3, 224, 224], 'relu')
    """
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader


def plain_tag(text: str) -> str:
    """The type a plain scalar ``text`` reads as: ``str``, ``int``, ``float``, ``bool`` ..."""
    return _PLAIN.resolve(yaml.ScalarNode, text, (True, False)).rsplit(":", 1)[-1]


class _Converter:
    def __init__(self, path: str):
        self.path = path
        self.count = 0
        self.scalars = yaml.SafeLoader("")

    def convert(self, node: yaml.Node, depth: int) -> Any:
        self.count += 1
        span = node_span(node, self.path)
        if self.count > MAX_NODES:
            raise SpecError(f"the spec has more than {MAX_NODES} YAML values (alias bomb?)", span)
        if depth > 100:
            raise SpecError("YAML is nested more than 100 levels deep", span)
        if node.tag.endswith(":timestamp"):
            raise SpecError(f"'{node.value}' reads as a date, which a spec cannot hold", span,
                            hint=f"quote it to make it a string: '{node.value}'")
        if node.tag not in _PLAIN_TAGS:
            raise SpecError(f"YAML tag '{node.tag}' is not allowed (only plain data)", span)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, span, depth)
        if isinstance(node, yaml.SequenceNode):
            out = YList(self.convert(item, depth + 1) for item in node.value)
            out.span, out.flow = span, bool(node.flow_style)
            out.item_spans = [node_span(item, self.path) for item in node.value]
            return out
        value = self.scalars.construct_object(node)
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"'{node.value}' is not a finite number", span)
        if not isinstance(value, str):
            return value
        if node.style in ('"', "'"):  # point inside the quotes, where expressions start
            span = SourceSpan(span.path, span.line, span.col + 1, span.end_line, span.end_col - 1)
        return YStr(value, span)

    def _mapping(self, node: yaml.MappingNode, span: SourceSpan, depth: int) -> YMap:
        out = YMap()
        out.span, out.key_spans, out.value_spans = span, {}, {}
        for key_node, value_node in node.value:
            key_span = node_span(key_node, self.path)
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                raise SpecError("mapping keys must be plain names", key_span)
            key = str(self.scalars.construct_object(key_node))
            if key in out:
                raise SpecError(
                    f"duplicate key '{key}'",
                    key_span,
                    notes=[(f"'{key}' was first defined here", out.key_spans[key])],
                )
            out[YStr(key, key_span)] = self.convert(value_node, depth + 1)
            out.key_spans[key] = key_span
            out.value_spans[key] = node_span(value_node, self.path)
        return out
