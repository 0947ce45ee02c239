"""``inceptdsl fmt``: print a spec document as canonical DSL or canonical YAML, losslessly.

Both printers work on the located document (the same for YAML and DSL input), so any spec
converts either way; comments are carried over by the source line they were on (full-line
comments before the statement that follows them, trailing comments after it), and single
blank lines between statements are kept. The result is checked: parsed back, it must give
the same spec structure, or ``fmt`` refuses rather than lose anything.

>>> print(format_text("name: t\\ninput: [3, 8, 8]\\nbody:\\n  - relu  # r\\n", "t.yaml",
...                   "dsl"), end="")
name: t
input: [3, 8, 8]
<BLANKLINE>
body:
    relu  # r
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import SourceSpan, SpecError
from .loader import parse_document
from .spec import FORM_KEYS, MODIFIER_KEYS, RESERVED

INDENT = 4
MAX_LINE = 100
HEADER_ORDER = ("format", "name", "description", "paper", "reference", "aliases", "extends",
                "input")
SECTIONS = ("params", "blocks", "body", "edits")
EDIT_VERBS = ("remove", "replace", "insert_before", "insert_after", "set")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_DSL_WORDS = {"true", "True", "false", "False", "null", "none", "None"}


def format_file(ref: str, to: str) -> str:
    """Read a spec (path or shipped name) and print it as ``to`` ("yaml" or "dsl")."""
    from .errors import remember_source
    from .loader import find, read_text

    path = find(ref)
    text = read_text(path)
    remember_source(str(path), text)
    return format_text(text, str(path), to)


def check_output_suffix(output: str, to: str) -> None:
    """Refuse an output file that would not read back: DSL in a ``.yaml`` file, YAML in a
    ``.incept`` file (a usage error, exit code 2). Other names (``-``, devices) are fine.

    >>> check_output_suffix("net.incept", "dsl")
    >>> from inceptdsl.errors import UsageError
    >>> try:
    ...     check_output_suffix("net.yaml", "dsl")
    ... except UsageError as exc:
    ...     print(*str(exc).split("; "), sep=chr(10))
    fmt --to dsl -o net.yaml: a .yaml file holds YAML
    write the DSL to a .incept file (or use --to yaml)
    """
    from pathlib import Path

    from .errors import UsageError

    suffix = Path(output).suffix.lower()
    wanted = (".incept",) if to == "dsl" else (".yaml", ".yml")
    if suffix in (".incept", ".yaml", ".yml") and suffix not in wanted:
        kind = "the DSL" if suffix == ".incept" else "YAML"
        raise UsageError(f"fmt --to {to} -o {output}: a {suffix} file holds {kind}; write "
                         f"the {'DSL' if to == 'dsl' else 'YAML'} to a {wanted[0]} file "
                         f"(or use --to {'yaml' if to == 'dsl' else 'dsl'})")


def format_text(text: str, path: str, to: str) -> str:
    """Print spec text (YAML, or DSL when ``path`` ends in ``.incept``) as ``to``."""
    doc = parse_document(text, path)
    comments = Comments(text, yaml=not path.endswith(".incept"))
    printer = DslPrinter(comments) if to == "dsl" else YamlPrinter(comments)
    if to == "yaml":
        refuse_surrogates(doc)
    out = printer.document(canonical(doc) if to == "yaml" else doc)
    try:
        again = parse_document(out, "<output>" + (".incept" if to == "dsl" else ".yaml"))
    except SpecError:
        again = None
    check_same(doc, again, path)
    return out


def canonical(doc: Any) -> Any:
    """A document with its bodies in the DSL printer's canonical form, spans kept: every
    expression in canonical text, a node's keys in the order form or name, then modifiers
    (as the DSL writes them), ``seq`` always a list, block signatures normalised. Then the
    YAML printer writes what the DSL printer writes, and YAML -> DSL -> YAML is a fixed
    point. Header and parameter values are data and stay as they are."""
    from .yamlsrc import YMap

    if not isinstance(doc, YMap):
        return doc
    out = _remap(doc, {k: v for k, v in doc.items()})
    if isinstance(doc.get("body"), list):
        out["body"] = _canon_node(doc["body"])
    blocks = doc.get("blocks")
    if isinstance(blocks, YMap):
        renamed = {k: norm_expr(k) for k in blocks}
        new = _remap(blocks, {_restr(k, renamed[k]): _canon_node(v) for k, v in blocks.items()})
        new.key_spans = {renamed[k]: blocks.key_span(k) for k in blocks}
        new.value_spans = {renamed[k]: blocks.value_span(k) for k in blocks}
        out["blocks"] = new
    return out


def _restr(value: Any, text: str) -> Any:
    """``text`` carrying ``value``'s span (when it had one)."""
    from .yamlsrc import YStr

    return YStr(text, value.span) if hasattr(value, "span") else text


def _remap(like: Any, items: dict) -> Any:
    from .yamlsrc import YMap

    out = YMap(items)
    out.span = like.span
    out.key_spans, out.value_spans = dict(like.key_spans), dict(like.value_spans)
    return out


def _relist(like: Any, items: list) -> Any:
    from .yamlsrc import YList

    if not isinstance(like, YList):
        return items
    out = YList(items)
    out.span, out.item_spans, out.flow = like.span, list(like.item_spans), like.flow
    return out


_EXPR_MODIFIERS = ("when", "loss_weight", "scale", "act")


def _canon_node(value: Any) -> Any:
    value = _bare_seq(value)
    if isinstance(value, str):
        return _restr(value, norm_expr(value))
    if isinstance(value, list):
        return _relist(value, [_canon_node(v) for v in value])
    if not isinstance(value, dict) or not hasattr(value, "key_spans"):
        return value
    heads = [k for k in value if k in FORM_KEYS or k not in RESERVED]
    if len(heads) != 1:
        return value  # not a node; the printers report it
    head = heads[0]
    order = [head, *(k for k in MODIFIER_KEYS if k in value and k != head)]
    order += [k for k in value if k not in order]
    items = {}
    for key in order:
        item = value[key]
        if key == "seq":
            item = _canon_node(item if isinstance(item, list) else _relist_one(item, value))
        elif key == "body" or key == head and key not in ("repeat", "ref"):
            item = _canon_node(item)
        elif key in ("repeat", *_EXPR_MODIFIERS) and isinstance(item, str):
            item = _restr(item, norm_expr(item))
        elif key == "split":
            item = _canon_list(item)
        items[key] = item
    return _remap(value, items)


def _canon_list(value: Any) -> Any:
    """A list of expressions, as YAML items: ``"[a, b]"`` and ``[a, b]`` both become the
    block list ``- a`` ``- b`` (the DSL writes either as ``[a, b]``)."""
    from .expr import ListExpr, parse, source_of
    from .yamlsrc import YList

    if isinstance(value, list):
        return _relist(value, [_restr(v, norm_expr(v)) if isinstance(v, str) else v
                               for v in value])
    if not isinstance(value, str):
        return value
    try:
        expr = parse(value)
    except SpecError:
        return value
    if not isinstance(expr, ListExpr):
        return _restr(value, norm_expr(value))
    span = getattr(value, "span", None)
    out = YList(_restr(value, source_of(item)) for item in expr.items)
    out.span = span or SourceSpan("<spec>", 1, 1, 1, 2)
    out.item_spans, out.flow = [out.span] * len(out), False
    return out


def _bare_seq(value: Any) -> Any:
    """A ``seq`` form without modifiers as its list, which is what the DSL reads ``seq:``
    as (``- seq: [a, b]`` is ``- - a`` ``- b``); the list's line is the ``seq:`` line.

    >>> from inceptdsl.yamlsrc import load_yaml
    >>> seq = _bare_seq(load_yaml("seq:\\n  - relu\\n", "s.yaml"))
    >>> seq, seq.span.line
    (['relu'], 1)
    """
    if not isinstance(value, dict) or not hasattr(value, "key_span") or list(value) != [
            "seq"]:
        return value
    items = value["seq"]
    out = _relist(items, list(items)) if isinstance(items, list) else \
        _relist_one(items, value)
    if hasattr(out, "span"):
        out.span = value.key_span("seq")
    return out


def _relist_one(item: Any, parent: Any) -> Any:
    from .yamlsrc import YList

    out = YList([item])
    out.span = parent.value_span("seq")
    out.item_spans, out.flow = [getattr(item, "span", out.span)], False
    return out


def refuse_surrogates(value: Any, span: SourceSpan | None = None) -> None:
    """YAML cannot hold a lone surrogate (a DSL string can, as ``"\\ud800"``): refuse."""
    if isinstance(value, str):
        bad = next((c for c in value if 0xD800 <= ord(c) <= 0xDFFF), None)
        if bad is not None:
            raise _cannot(f"the string holds a lone surrogate (\\u{ord(bad):04x}), which YAML "
                          "cannot hold", value, span)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            refuse_surrogates(item, _item_span(value, i, span))
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_surrogates(key, value.key_span(key) if hasattr(value, "key_span") else span)
            refuse_surrogates(item, value.value_span(key) if hasattr(value, "value_span")
                              else span)


# ---------------------------------------------------------------------------- comments


@dataclass
class Comment:
    line: int
    text: str
    full: bool


class Comments:
    """The comments and blank lines of a source, handed out by line as statements print.

    >>> c = Comments("# top\\nname: x  # n\\n", yaml=True)
    >>> [x.text for x in c.before(2)], c.trailing(2).text
    (['# top'], '# n')
    """

    def __init__(self, text: str, yaml: bool):
        self.items: list[Comment] = []
        self.blank: set[int] = set()
        self.lines = source_lines(text, yaml)
        cols = _yaml_comment_cols(text) if yaml else None
        for number, line in enumerate(self.lines, start=1):
            col = _dsl_comment_col(line) if cols is None else cols.get(number)
            if not line.strip(" \t\r"):
                self.blank.add(number)
            elif col is not None:
                full = not line[:col].strip(" \t")
                self.items.append(Comment(number, line[col:].rstrip(" \t\r"), full))
        self.used: set[int] = set()

    def before(self, line: int, keep: tuple[int, ...] = ()) -> list[Comment]:
        """Comments above ``line`` not yet printed (and trailing ones left behind, but for
        those of the lines in ``keep``, still to be placed)."""
        out = [c for c in self.items if c.line < line and id(c) not in self.used
               and (c.full or c.line not in keep)]
        self.used.update(id(c) for c in out)
        return out

    def has_trailing(self, line: int | None) -> bool:
        """Whether ``line`` ends in a comment not yet printed."""
        return any(c.line == line and not c.full and id(c) not in self.used
                   for c in self.items)

    def span_lines(self, span: SourceSpan | None) -> tuple[int, ...]:
        """The source lines a value's span covers: YAML ends a block value's span where
        the next token starts, so a last line reached only in its indentation is not one.

        >>> c = Comments("a:\\n  - 1\\n  - 2\\nb: 3\\n", yaml=True)
        >>> c.span_lines(SourceSpan("x", 2, 3, 4, 1))
        (2, 3)
        """
        if span is None:
            return ()
        last = span.end_line or span.line
        if last > span.line and last <= len(self.lines) and \
                not self.lines[last - 1][:max(span.end_col - 1, 0)].strip(" \t"):
            last -= 1
        return tuple(range(span.line, max(last, span.line) + 1))

    def trailing(self, line: int) -> Comment | None:
        for c in self.items:
            if c.line == line and not c.full and id(c) not in self.used:
                self.used.add(id(c))
                return c
        return None

    def rest(self) -> list[Comment]:
        return self.before(1 << 30)


_YAML_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")


def source_lines(text: str, yaml: bool) -> list[str]:
    """The lines of a source as its parser counts them: YAML breaks lines at \\r, \\n,
    \\x85, \\u2028 and \\u2029 (so its spans do), the DSL at \\n and \\r only.

    >>> source_lines("a\\x85b\\rc\\n", yaml=True), source_lines("a\\x85b\\rc\\n", yaml=False)
    (['a', 'b', 'c'], ['a\\x85b', 'c'])
    """
    if not yaml:  # the DSL reads \r\n and \r as \n (dsl.parse_dsl)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    parts = _YAML_BREAK.split(text) if yaml else text.split("\n")
    return parts[:-1] if parts and parts[-1] == "" else parts


def _yaml_comment_cols(text: str) -> dict[int, int]:
    """Line -> column (1-based line, 0-based column) of each YAML comment: a ``#`` after a
    space, a tab or a line break, outside every scalar (quoted, plain or block) the YAML
    scanner finds, so ``'it''s # y'`` and ``"a \\" # b"`` hold no comment.

    >>> _yaml_comment_cols("a: 'x '' # y'  # z\\nb: c#d # e\\n")
    {1: 15, 2: 7}
    """
    import bisect

    import yaml

    scalars = [(t.start_mark.index, t.end_mark.index) for t in yaml.scan(
        text, Loader=yaml.SafeLoader) if isinstance(t, yaml.ScalarToken)]
    scalar_starts = [a for a, _ in scalars]
    breaks = [m.end() for m in _YAML_BREAK.finditer(text)]
    cols: dict[int, int] = {}
    for match in re.finditer("#", text):
        i = match.start()
        if i and text[i - 1] not in " \t\r\n\x85\u2028\u2029":
            continue
        k = bisect.bisect_right(scalar_starts, i) - 1
        if k >= 0 and i < scalars[k][1]:
            continue
        line = bisect.bisect_right(breaks, i)
        cols.setdefault(line + 1, i - (breaks[line - 1] if line else 0))
    return cols


_DSL_STRING_OR_HASH = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#')


def _dsl_comment_col(line: str) -> int | None:
    """Where a DSL line's comment starts: the first ``#`` outside a string, else None.

    >>> _dsl_comment_col('a: B("x # y\\\\" # z")  # c')
    21
    """
    for match in _DSL_STRING_OR_HASH.finditer(line):
        if match.group() == "#":
            return match.start()
    return None


# ---------------------------------------------------------------------------- printers


class Printer:
    """Line output with comments and blank lines placed by source line."""

    def __init__(self, comments: Comments):
        self.comments = comments
        self.out: list[str] = []
        # a printed line that opens a body: (output index, the source lines it stands for,
        # whether its comments go to the first line below in any case)
        self.pending: tuple[int, tuple[int, ...], bool] | None = None
        # the source lines a DSL head line also stands for: the form of a named form, the
        # modifiers (in YAML each may be on a line of its own)
        self.also: tuple[int | None, ...] = ()

    def stmt(self, indent: int, text: str, line: int | None, blank: bool = False,
             also: int | tuple[int | None, ...] | None = None, down: bool = False,
             opens: bool | None = None) -> None:
        """Print a line for the statement at source ``line``, after the comments above it;
        its trailing comment is the one of ``line``, else of a line in ``also`` (the source
        line of a value printed on the same line, such as ``body: U(3)`` under ``repeat``).

        A line that opens a body (ends in ``:``) leaves its trailing comment to the first
        statement below it if that one comes from the same source line (``U(c): conv(c, 1)
        # x`` in YAML is ``conv(c, 1)  # x`` in the DSL); with ``down``, it leaves it to
        that statement in any case (the other format writes the two as one line: a DSL
        ``seq:`` and its first item are YAML's ``- - item``). ``opens=False`` keeps the
        comments of a line ending in ``:`` on it (``sizes:`` over the items of a value the
        DSL writes on one line)."""
        extra = also if isinstance(also, tuple) else (also,)
        lines = tuple(n for n in (line, *extra) if n)
        if self.pending and not self.pending[2] and not set(lines) & set(self.pending[1]):
            self._flush_pending()
        carried = self.pending[1] if self.pending else ()
        self.pending = None
        candidates = lines + tuple(n for n in carried if n not in lines)
        if opens is None:
            opens = bool(line) and text.endswith(":")
        trail = None if opens else self._trailing(candidates)
        lead = self.comments.before(line, keep=candidates) if line else []
        first = lead[0].line if lead else line
        if (blank or (first and first - 1 in self.comments.blank)) and self.out and \
                self.out[-1] and not self.out[-1].endswith(":"):
            self.out.append("")
        pad = " " * (indent + len(text) - len(text.lstrip(" ")))
        self.out += [pad + c.text for c in lead]
        self.out.append(" " * indent + text + (f"  {trail.text}" if trail else ""))
        if opens:
            self.pending = (len(self.out) - 1, candidates, down)

    def mod_lines(self, node: Any, keys: tuple[str, ...] = ()) -> tuple[int, ...]:
        """The source lines the DSL writes on a node's head line: those of its modifiers
        (every line of a value, such as a ``split:`` list), of ``keys`` and, for a repeat,
        a ``body:`` line that holds nothing but the key. ``body: U(3)`` is a line of its
        own in YAML and the body's line in the DSL."""
        if not hasattr(node, "key_span"):
            return ()
        out = [node.key_span(key).line for key in keys if key in node]
        for key in MODIFIER_KEYS:
            if key in node and key != "body":
                out += [node.key_span(key).line, *self.comments.span_lines(
                    node.value_span(key))]
        if "repeat" in node and "body" in node and \
                node.value_span("body").line > node.key_span("body").line:
            out.append(node.key_span("body").line)
        return tuple(dict.fromkeys(out))

    def edit_lines(self, edit: Any) -> tuple[int, ...]:
        """The source lines the DSL writes on an edit's line: a ``with:`` line that holds
        nothing but the key, and every line of an operand the DSL writes on that line (the
        values of ``set``, a one-line node)."""
        if not hasattr(edit, "key_span") or "with" not in edit:
            return ()
        operand, span = edit["with"], edit.value_span("with")
        key_line = edit.key_span("with").line
        lines = [key_line] if key_line < span.line else []
        if "set" in edit or _one_line_operand(operand, span, self.comments):
            lines += [key_line, *self.comments.span_lines(span)]
        return tuple(lines)

    def _trailing(self, lines: tuple[int, ...]) -> Comment | None:
        """The trailing comments of these source lines, joined in source order: one output
        line stands for them all (a node and its modifier lines in YAML are one line in the
        DSL)."""
        found = sorted((c for c in (self.comments.trailing(n) for n in lines) if c),
                       key=lambda c: c.line)
        if not found:
            return None
        return Comment(found[0].line, "  ".join(c.text for c in found), False)

    def _flush_pending(self) -> None:
        index, lines, _ = self.pending
        self.pending = None
        trail = self._trailing(lines)
        if trail:
            self.out[index] += f"  {trail.text}"

    def finish(self) -> str:
        if self.pending:
            self._flush_pending()
        rest = self.comments.rest()
        if rest:
            self.out.append("")
            self.out += [c.text for c in rest]
        return "\n".join(self.out) + "\n"

    def header_keys(self, doc: dict) -> list[str]:
        keys = [k for k in HEADER_ORDER if k in doc]
        return keys + [k for k in doc if k not in HEADER_ORDER and k not in SECTIONS]


def _item_span(items: Any, index: int, default: SourceSpan | None) -> SourceSpan | None:
    return items.item_span(index) if hasattr(items, "item_span") else default


def _line(value: Any, default: SourceSpan | None) -> int | None:
    span = getattr(value, "span", default)
    return span.line if span else None


def _cannot(what: str, value: Any, default: SourceSpan | None) -> SpecError:
    return SpecError(f"cannot convert: {what}", getattr(value, "span", default) or
                     SourceSpan("<spec>", 1, 1, 1, 2))


def _float(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        raise SpecError(f"cannot convert the number {value!r}", SourceSpan("<spec>", 1, 1))
    return repr(value)


def dsl_expr(text: str, value: Any = None, span: SourceSpan | None = None) -> str:
    """An expression for a DSL line: canonical text, refused if a string in it holds a line
    break (the DSL has no escapes inside expressions; YAML can hold it)."""
    out = norm_expr(text)
    if "\n" in out or "\r" in out:
        raise _cannot("a string with a line break inside an expression has no DSL form "
                      "(keep this spec in YAML)", value if value is not None else text, span)
    return out


def norm_expr(text: str) -> str:
    """Canonical text of an expression (``conv( 64,1)`` -> ``conv(64, 1)``), else as is."""
    from .expr import parse, source_of

    try:
        return source_of(parse(text))
    except SpecError:
        return text


class DslPrinter(Printer):
    """Canonical DSL: 4-space indentation, one layer per line in sequences, branches of
    concat/add on one line each (``a -> b`` when it fits in 100 columns)."""

    def document(self, doc: dict) -> str:
        for key in self.header_keys(doc):  # a value is one line, its comments too
            span = doc.value_span(key)
            self.stmt(0, f"{key}: {self.value(doc[key], span)}", doc.key_span(key).line,
                      also=self.comments.span_lines(span))
        params = doc.get("params")
        if params:
            if not isinstance(params, dict):
                raise _cannot("'params' must be a mapping", params, doc.value_span("params"))
            self.stmt(0, "params:", doc.key_span("params").line, blank=True)
            for key, value in params.items():
                span = params.value_span(key)
                self.stmt(INDENT, f"{self.key(key, params)}: {self.value(value, span)}",
                          params.key_span(key).line, also=self.comments.span_lines(span))
        blocks = doc.get("blocks") or {}
        if not isinstance(blocks, dict):
            raise _cannot("'blocks' must be a mapping", blocks, doc.value_span("blocks"))
        blocks_line = doc.key_span("blocks").line if "blocks" in doc else None
        for i, (sig, body) in enumerate(blocks.items()):
            sig_span = blocks.key_span(sig)
            # a one-line body is on the block's line in YAML (W(c): conv(c, 3)): the
            # comments go down to it
            self.stmt(0, f"block {dsl_expr(sig, sig, sig_span)}:", _line(sig, sig_span),
                      blank=True, also=blocks_line if i == 0 else None,
                      down=not isinstance(body, (list, dict)) or not body)
            self.suite(body, INDENT, False, blocks.value_span(sig))
        if "body" in doc:
            self.stmt(0, "body:", doc.key_span("body").line, blank=True)
            self.suite(doc["body"], INDENT, True, doc.value_span("body"))
        edits = _edit_list(doc["edits"], doc.value_span("edits")) if "edits" in doc else []
        if edits:
            self.stmt(0, "edits:", doc.key_span("edits").line, blank=True)
            for i, edit in enumerate(edits):
                span = _item_span(edits, i, doc.value_span("edits"))
                head = self.edit(edit, span)
                self.also = self.edit_lines(edit)
                self.line(head, INDENT, _line(edit, span))
        return self.finish()

    def edit(self, edit: Any, span: SourceSpan | None) -> tuple[str, Any]:
        """``remove Mixed_6e``, ``set Mixed_5b {pool_features: 64}``, ``replace x: node``."""
        verb, target = _edit_verb(edit, span)
        where = target if _BARE_TARGET.match(target) else json.dumps(target)
        if verb == "remove":
            return f"remove {where}", None
        if "with" not in edit:
            raise _cannot(f"'{verb}' needs 'with'", edit, span)
        operand, operand_span = edit["with"], edit.value_span("with")
        if verb == "set":
            if not isinstance(operand, dict) or not operand:
                raise _cannot("'set' takes a mapping of arguments", operand, operand_span)
            values = ", ".join(f"{self.key(k, operand)}: {self.modifier(v)}"
                               for k, v in operand.items())
            return f"set {where} {{{values}}}", None
        if not isinstance(operand, (str, list, dict)):
            raise _cannot("'with' takes a node", operand, operand_span)
        head = f"{verb.replace('_', ' ')} {where}:"
        if isinstance(operand, list) and len(operand) != 1 and operand:
            return head, lambda ind: self.suite(operand, ind, False, operand_span)
        text, body = self.head(operand, operand_span)
        if body is None:
            return f"{head} {text}", None
        return head, lambda ind: self.suite(operand, ind, False, operand_span)

    def key(self, key: str, mapping: Any) -> str:
        if not _IDENT.match(key) or key in _DSL_WORDS:
            raise _cannot(f"the key '{key}' is not a name", key, mapping.key_span(key))
        return str(key)

    def value(self, value: Any, span: SourceSpan | None) -> str:
        """A header or parameter value: ``1000``, ``true``, ``"text"``, ``[3, 299, 299]``."""
        if isinstance(value, bool) or value is None:
            return {True: "true", False: "false", None: "null"}[value]
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return _float(value)
        if isinstance(value, str):
            bare = _IDENT.match(value) and value not in _DSL_WORDS
            return str(value) if bare else dsl_string(str(value))
        if isinstance(value, list):
            return "[" + ", ".join(self.value(v, span) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{self.key(k, value)}: {self.value(v, span)}"
                                   for k, v in value.items()) + "}"
        raise _cannot(f"unsupported value {value!r}", value, span)

    # ------------------------------------------------------------ bodies

    def suite(self, value: Any, indent: int, always_list: bool, span: SourceSpan | None,
              ) -> None:
        """An indented body: several items are a sequence, one item is itself. A
        ``seq:`` line has no line of its own in YAML (``- - item``): its comments go down
        to the first item, as does the trailing comment of the list's own line."""
        value = _bare_seq(value)
        if isinstance(value, list):
            if not value:
                raise _cannot("an empty body has no DSL form", value, span)
            if len(value) == 1 and not always_list:
                self.stmt(indent, "seq:", _line(value, span), down=True)
                self.suite(value, indent + INDENT, True, span)
                return
            for i, item in enumerate(value):
                head = self.head(item, _item_span(value, i, span))
                if i == 0:
                    self.also = (*self.also, _line(value, span))
                self.line(head, indent, _line(item, _item_span(value, i, span)))
            return
        self.line(self.head(value, span), indent, _line(value, span))

    def line(self, head: tuple[str, Callable[[int], None] | None], indent: int,
             line: int | None) -> None:
        text, body = head
        also, self.also = self.also, ()
        self.stmt(indent, text, line, also=also, down=text == "seq:")
        if body:
            body(indent + INDENT)

    def branches(self, items: Any, indent: int, span: SourceSpan | None) -> None:
        if not isinstance(items, list) or not items:
            raise _cannot("'concat', 'add' and 'mul' take a list of branches", items, span)
        for i, item in enumerate(items):
            item_span = _item_span(items, i, span)
            item = _bare_seq(item)
            chain = self.chain(item, indent) if isinstance(item, list) else None
            self.line(chain or self.head(item, item_span), indent, _line(item, item_span))

    def chain(self, items: Any, indent: int) -> tuple[str, Any] | None:
        """A sequence branch as ``a -> b -> c`` if every part fits on one line, and no part
        but the first has a trailing comment of its own (YAML gives each its line)."""
        if len(items) < 2:
            return None
        heads, lines = [], []
        for i, item in enumerate(items):
            self.also = ()
            heads.append(self.head(item, _item_span(items, i, None)))
            lines += [_line(item, _item_span(items, i, None)), *self.also]
        self.also = ()
        if any(body for _, body in heads[:-1]) or any(isinstance(i, list) for i in items):
            return None
        first = _line(items[0], _item_span(items, 0, None))
        if any(n != first and self.comments.has_trailing(n) for n in lines):
            return None
        text = " -> ".join(t for t, _ in heads)
        if indent + len(text) > MAX_LINE:
            return None
        self.also = tuple(lines)
        return text, heads[-1][1]

    def head(self, node: Any, span: SourceSpan | None) -> tuple[str, Any]:
        """The first line of an item and a printer for its indented body, if any."""
        node = _bare_seq(node)
        if isinstance(node, str):  # one DSL line, whatever lines YAML spread it over
            self.also = self.comments.span_lines(getattr(node, "span", span))
            return dsl_expr(node, node, span), None
        if isinstance(node, list):
            if not node:
                return "[]", None
            return "seq:", lambda ind: self.suite(node, ind, True, span)
        if isinstance(node, dict):
            return self.mapping(node, span)
        return self.scalar(node), None

    def scalar(self, value: Any) -> str:
        if isinstance(value, bool) or value is None:
            return {True: "true", False: "false", None: "null"}[value]
        if isinstance(value, float):
            return _float(value)
        if isinstance(value, str):
            return dsl_expr(value, value)
        if isinstance(value, int):
            return str(value)
        raise _cannot(f"expected an expression, found {value!r}", value, None)

    def mods(self, node: dict, skip: tuple[str, ...] = ()) -> str:
        keys = [k for k in MODIFIER_KEYS if k in node and k not in skip]
        if not keys:
            return ""
        return " {" + ", ".join(f"{k}: {self.modifier(node[k])}" for k in keys) + "}"

    def modifier(self, value: Any) -> str:
        """A modifier's value; a YAML list (``split``) prints as an expression list."""
        if isinstance(value, list):
            return "[" + ", ".join(self.scalar(v) for v in value) + "]"
        return self.scalar(value)

    def mapping(self, node: dict, span: SourceSpan | None) -> tuple[str, Any]:
        forms = [k for k in node if k in FORM_KEYS]
        names = [k for k in node if k not in RESERVED]
        if len(forms) + len(names) != 1:
            raise _cannot("a node needs exactly one layer name or form", node, span)
        self.also = self.mod_lines(node)
        if forms:
            return self.form(node, forms[0], span)
        name = names[0]
        value, mods = _bare_seq(node[name]), self.mods(node)
        self.key(name, node)
        if isinstance(value, dict) and [k for k in value if k in FORM_KEYS] == ["ref"]:
            text, _ = self.form(value, "ref", span)
            self.also = (*self.mod_lines(node), *self.mod_lines(value, ("ref",)))
            return f"{name}{mods}: {text}", None
        if isinstance(value, dict) and any(k in FORM_KEYS for k in value):
            form = next(k for k in value if k in FORM_KEYS)
            text, body = self.form(value, form, span)
            self.also = (*self.mod_lines(node), *self.mod_lines(value, (form,)))
            return f"{name}{mods}: {text}", body
        if isinstance(value, list) and not value:
            return f"{name}: []{mods}", None
        if isinstance(value, (list, dict)):
            if isinstance(value, dict):
                raise _cannot(f"'{name}' names a node that already has a name", value, span)
            return f"{name}{mods}:", lambda ind: self.suite(value, ind, False, span)
        self.also = (*self.also, *self.comments.span_lines(node.value_span(name)))
        return f"{name}: {self.scalar(value)}{mods}", None

    def form(self, node: dict, form: str, span: SourceSpan | None) -> tuple[str, Any]:
        arg, arg_span = node[form], node.value_span(form)
        if form == "ref":
            if not isinstance(arg, str) or not _IDENT.match(arg):
                raise _cannot("'ref' takes a node name", arg, arg_span)
            return f"ref {arg}{self.mods(node)}", None
        if form == "repeat":
            if "body" not in node:
                raise _cannot("'repeat' needs a 'body'", node, span)
            body, body_span = node["body"], node.value_span("body")
            return (f"repeat {self.scalar(arg)}{self.mods(node, ('body',))}:",
                    lambda ind: self.suite(body, ind, False, body_span))
        if form == "seq":
            items = arg if isinstance(arg, list) else [arg]
            return (f"seq{self.mods(node)}:",
                    lambda ind: self.suite(items, ind, True, arg_span))
        return (f"{form}{self.mods(node)}:",
                lambda ind: self.branches(arg, ind, arg_span))


class YamlPrinter(Printer):
    """Canonical YAML: block style for every body list (flow only for plain value lists
    such as ``input: [3, 299, 299]``), 2-space indentation, blank lines between blocks."""

    def document(self, doc: dict) -> str:
        for key in self.header_keys(doc):
            self.entry(key, doc[key], "", doc.key_span(key).line, doc.value_span(key), True)
        for key in ("params", "blocks"):
            if key in doc:
                value = doc[key] or {}
                line = doc.key_span(key).line
                first = [_line(k, value.key_span(k)) for k in value][:1]
                if first and first[0] is not None and first[0] <= line:
                    line = None  # DSL input has no 'blocks:' line; comments go below
                # 'blocks:' leaves its trailing comment to the first block, as in the DSL
                self.stmt(0, f"{key}:" if value else f"{key}: {{}}", line, blank=True)
                for i, (sub, item) in enumerate(value.items()):
                    self.entry(sub, item, "  ", _line(sub, value.key_span(sub)),
                               value.value_span(sub), key == "params",
                               blank=key == "blocks",
                               also=line if key == "blocks" and i == 0 else None)
        if "body" in doc:
            body = doc["body"]
            self.stmt(0, "body:", doc.key_span("body").line, blank=True)
            self.items(body, "  ", doc.value_span("body"))
        if "edits" in doc:
            self.edits(doc["edits"], doc.key_span("edits").line, doc.value_span("edits"))
        return self.finish()

    def edits(self, edits: Any, line: int, span: SourceSpan | None) -> None:
        """``- remove: x`` / ``- set: x`` + ``with: {k: v}`` (flow for plain values)."""
        edits = _edit_list(edits, span)
        self.stmt(0, "edits:" if edits else "edits: []", line, blank=True)
        for i, edit in enumerate(edits):
            item_span = _item_span(edits, i, span)
            verb, target = _edit_verb(edit, item_span)
            self.stmt(0, f"  - {verb}: {yaml_scalar(target)}", _line(target, item_span),
                      also=self.edit_lines(edit))
            if "with" not in edit:
                continue
            operand, line = edit["with"], edit.key_span("with").line
            flow = self._flow_values(operand) if verb == "set" else None
            if flow is not None:
                self.stmt(0, f"    with: {flow}", line)
            else:
                self.entry("with", operand, "    ", line, edit.value_span("with"), False)

    def _flow_values(self, values: Any) -> str | None:
        if not isinstance(values, dict) or any(isinstance(v, (list, dict))
                                               for v in values.values()):
            return None
        texts = [f"{yaml_flow_scalar(str(k))}: {yaml_flow_scalar(v)}"
                 for k, v in values.items()]
        if any("," in t or "{" in t or "}" in t for t in texts):
            return None
        return "{" + ", ".join(texts) + "}"

    def entry(self, key: str, value: Any, lead: str, line: int | None,
              span: SourceSpan | None, flow: bool, blank: bool = False,
              also: int | tuple[int, ...] | None = None, named_form: bool = False) -> None:
        """``key: value`` with ``lead`` before it; nested values go below, indented. A
        header or parameter value (``flow``) is one line in the DSL: the trailing comments
        of all its lines go on the key's line."""
        key_text = yaml_scalar(str(key))
        inline = self.inline(value, flow)
        extra = also if isinstance(also, tuple) else (also,)
        if flow:
            extra += self.comments.span_lines(span)
        if inline is not None:
            self.stmt(0, f"{lead}{key_text}: {inline}", line, blank=blank,
                      also=(*extra, _line(value, span), *self.comments.span_lines(
                          getattr(value, "span", span))))
            return
        # a named form (``- b:`` over ``concat:``) is one line in the DSL, ``b: concat:``:
        # its comments go down to the form's line
        self.stmt(0, f"{lead}{key_text}:", line, blank=blank, also=extra,
                  opens=False if flow else None, down=named_form)
        inner = " " * (len(lead) + 2)
        if isinstance(value, list):
            self.items(value, inner, span)
        else:
            self.mapping(value, inner, span, node=named_form)

    def inline(self, value: Any, flow: bool) -> str | None:
        if isinstance(value, (list, dict)) and not value:
            return "[]" if isinstance(value, list) else "{}"
        if isinstance(value, list) and flow and all(
                not isinstance(v, (list, dict)) and "," not in yaml_scalar(v) for v in value):
            return "[" + ", ".join(yaml_flow_scalar(v) for v in value) + "]"
        if isinstance(value, dict) and flow:  # a mapping of plain values, as the DSL
            return self._flow_values(value)
        if isinstance(value, (list, dict)):
            return None
        return yaml_scalar(value)

    def items(self, value: Any, lead: str, span: SourceSpan | None) -> None:
        """A list's items; the first also takes the comment of the list's own line (the
        DSL's ``seq:``, which YAML has no line for)."""
        if not isinstance(value, list):
            self.item(value, lead + "- ", _line(value, span), span)
            return
        for i, item in enumerate(value):
            item_span = _item_span(value, i, span)
            self.item(item, lead + "- ", _line(item, item_span), item_span,
                      also=(_line(value, span),) if i == 0 else ())

    def item(self, value: Any, lead: str, line: int | None, span: SourceSpan | None,
             also: tuple[int | None, ...] = ()) -> None:
        """One list item; nested lists and mappings start on the ``- `` line."""
        pad = " " * len(lead)
        if isinstance(value, list) and value:
            for i, sub in enumerate(value):
                self.item(sub, (lead if i == 0 else pad) + "- ",
                          _line(sub, _item_span(value, i, span)), _item_span(value, i, span),
                          also=(*also, _line(value, span)) if i == 0 else ())
        elif isinstance(value, dict) and value:
            self.mapping(value, pad, span, first_lead=lead, first_line=line, node=True,
                         first_also=also)
        else:  # one line, whatever lines the source spread the value over
            self.stmt(0, lead + self.inline(value, False), line, also=(
                *also, *self.comments.span_lines(getattr(value, "span", span))))

    def mapping(self, value: dict, pad: str, span: SourceSpan | None,
                first_lead: str | None = None, first_line: int | None = None,
                node: bool = False, first_also: tuple[int | None, ...] = ()) -> None:
        """A mapping's entries; for a body node, the first line (the layer or form) also
        takes the trailing comments of the modifier lines, as the DSL does (and those of
        ``first_also``)."""
        for i, (key, sub) in enumerate(value.items()):
            lead = first_lead if i == 0 and first_lead is not None else pad
            line = _line(key, value.key_span(key)) if i else (first_line or _line(key, span))
            also = (*first_also, *self.mod_lines(value)) if node and i == 0 else None
            named_form = node and i == 0 and _is_form(sub)
            self.entry(key, sub, lead, line, value.value_span(key), False, also=also,
                       named_form=named_form)


def _one_line_operand(operand: Any, span: SourceSpan | None, comments: Comments) -> bool:
    """Whether the DSL writes a replace/insert operand on the edit's line."""
    try:
        return DslPrinter(comments).head(operand, span)[1] is None
    except SpecError:
        return False


def _is_form(value: Any) -> bool:
    """Whether a value is a form mapping (``{concat: [...]}``, ``{ref: x}``)."""
    return isinstance(value, dict) and any(k in FORM_KEYS for k in value)


_BARE_TARGET = re.compile(r"[A-Za-z_*?][A-Za-z0-9_.*?]*\Z")


def _edit_list(edits: Any, span: SourceSpan | None) -> Any:
    if not isinstance(edits, list):
        raise _cannot("'edits' must be a list", edits, span)
    return edits


def _edit_verb(edit: Any, span: SourceSpan | None) -> tuple[str, str]:
    """The verb and target of one edit mapping (``("remove", "Mixed_6e")``)."""
    verbs = [k for k in edit if k in EDIT_VERBS] if isinstance(edit, dict) else []
    extra = [k for k in edit if k not in EDIT_VERBS and k != "with"] if verbs else []
    if len(verbs) != 1 or extra or not isinstance(edit[verbs[0]], str):
        raise _cannot("an edit is one of " + ", ".join(EDIT_VERBS) + " with a path",
                      edit, span)
    return str(verbs[0]), edit[verbs[0]]


_YAML_SPECIAL = set("!&*[]{}|>'\"%@`#,?")


def yaml_scalar(value: Any) -> str:
    """A scalar as YAML text that reads back as the same value.

    >>> yaml_scalar("conv(64, 1)"), yaml_scalar("yes"), yaml_scalar(1e-05)
    ('conv(64, 1)', "'yes'", '1.0e-05')
    """
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = _float(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exp = text.split("e")
            text = f"{mantissa}.0e{exp if exp[0] in '+-' else '+' + exp}"
        return text
    text = str(value)
    if _plain_ok(text):
        return text
    if "'" not in text and all(_yaml_raw_ok(c) for c in text):
        return f"'{text}'"
    return yaml_double_quoted(text)


def yaml_flow_scalar(value: Any) -> str:
    """A scalar as YAML text inside ``[...]`` or ``{...}``, where a plain scalar may not
    hold ``[ ] { } ,``: such a string is quoted.

    >>> yaml_flow_scalar("-{"), yaml_flow_scalar("relu")
    ("'-{'", 'relu')
    """
    text = yaml_scalar(value)
    if isinstance(value, str) and text == value and any(c in text for c in "[]{},"):
        return yaml_double_quoted(text) if "'" in text else f"'{text}'"
    return text


_YAML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r",
                 "\0": "\\0", "\b": "\\b"}


def _yaml_raw_ok(char: str) -> bool:
    """Whether a character may stand as itself inside a quoted YAML scalar: printable, and
    not one of the line breaks YAML folds (\\x85, \\u2028, \\u2029) or a BOM."""
    return char.isprintable() and char not in "\x85\u2028\u2029\ufeff"


def yaml_double_quoted(text: str) -> str:
    """A double-quoted YAML scalar: every character that is not plainly printable is an
    escape, so any string (control characters, line breaks) reads back exactly.

    >>> print(yaml_double_quoted('a"\\\\\\r\\x85\\u2028\\U0001F600é'))
    "a\\"\\\\\\r\\x85\\u2028😀é"
    """
    out = []
    for char in text:
        if char in _YAML_ESCAPES:
            out.append(_YAML_ESCAPES[char])
        elif _yaml_raw_ok(char):
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def dsl_string(text: str) -> str:
    """A double-quoted DSL string (JSON escapes): readable text stays as it is, anything
    unprintable (control characters, lone surrogates) is an escape.

    >>> print(dsl_string('say "hi"\\r\\ud800é'))
    "say \\"hi\\"\\r\\ud800é"
    """
    out = []
    for char in json.dumps(text, ensure_ascii=False)[1:-1]:
        if char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:  # an unprintable astral character: a surrogate pair, as JSON writes it
            code = ord(char) - 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return '"' + "".join(out) + '"'


def _plain_ok(text: str) -> bool:
    from .yamlsrc import plain_tag

    if not text or text != text.strip() or text[0] in _YAML_SPECIAL or not all(
            _yaml_raw_ok(c) for c in text):
        return False
    if text[0] in "-:" and (len(text) == 1 or text[1] == " "):
        return False
    if ": " in text or " #" in text or text.endswith(":") or "\t" in text:
        return False
    return plain_tag(text) == "str"


# ---------------------------------------------------------------------------- checking


def check_same(before: Any, after: Any, path: str) -> None:
    """Refuse a conversion whose output does not read back as the same spec."""
    if after is None or structure(before) != structure(after):
        raise SpecError("internal error: the converted spec does not read back the same "
                        "(please report this)", SourceSpan(path, 1, 1, 1, 2))


def structure(doc: Any) -> Any:
    """What a document means, without positions: header values, params, parsed blocks and
    body (expressions in canonical text), so that equal structures give equal models."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "body":
            out[key] = _node_structure(value)
        elif key == "edits" and isinstance(value, list):
            if value:
                out[key] = [_edit_structure(e) for e in value]
        elif key == "blocks" and isinstance(value, dict):
            out[key] = {norm_expr(k): _node_structure(v) for k, v in value.items()}
        elif key in ("params", "blocks") and not value:
            continue
        else:
            out[str(key)] = plain(value)
    return out


def _edit_structure(edit: Any) -> Any:
    """An edit without positions: its verb, target and operand (node or values)."""
    if not isinstance(edit, dict):
        return plain(edit)
    out = {}
    for key, value in edit.items():
        if key != "with":
            out[str(key)] = plain(value)
        elif "set" in edit and isinstance(value, dict):
            out["with"] = {str(k): norm_expr(v) if isinstance(v, str) else v
                           for k, v in value.items()}
        else:
            out["with"] = _node_structure(value)
    return out


def _node_structure(value: Any) -> Any:
    from .spec import parse_node

    try:
        return node_plain(parse_node(value, SourceSpan("<x>", 1, 1, 1, 2)))
    except SpecError:
        return plain(value)


def plain(value: Any) -> Any:
    """A located value as plain Python data (strings as expressions in canonical form)."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, str):
        return str(value)
    return value


def node_plain(node: Any) -> Any:
    """A body :class:`~inceptdsl.spec.Node` tree as plain data without spans.

    >>> from inceptdsl.yamlsrc import load_yaml
    >>> from inceptdsl.spec import parse_node
    >>> node_plain(parse_node(load_yaml("- a: conv(8,1)", "x.yaml"), None))
    ('Seq', {}, [('Layer', {'name': 'a'}, 'conv(8, 1)')])
    """
    from .expr import Expr, source_of
    from .spec import Add, Concat, Layer, Mul, Ref, Repeat, Seq

    common = {k: (source_of(v) if isinstance(v, Expr) else v) for k, v in (
        ("name", node.name), ("when", node.when), ("side", node.side or None),
        ("loss_weight", node.loss_weight), ("from", node.source),
        ("inline", node.inline or None)) if v is not None}
    if isinstance(node, Layer):
        return ("Layer", common, source_of(node.call))
    if isinstance(node, Seq):
        return ("Seq", common, [node_plain(n) for n in node.items])
    if isinstance(node, (Concat, Add, Mul)):
        extra = [source_of(e) if e is not None else None for e in (
            getattr(node, "scale", None), getattr(node, "act", None),
            getattr(node, "split", None))]
        return (type(node).__name__, common, [node_plain(b) for b in node.branches], extra)
    if isinstance(node, Repeat):
        return ("Repeat", common, source_of(node.count), node_plain(node.body), node.index)
    if isinstance(node, Ref):
        return ("Ref", common, node.target)
    raise TypeError(node)


def is_keyword(name: str) -> bool:
    return keyword.iskeyword(name)
