"""The text DSL front end: ``.incept`` files parsed (lark, LALR) into the located document.

The result is the same :class:`~inceptdsl.yamlsrc.YMap` / ``YList`` / ``YStr`` tree that the
YAML loader builds, with spans into the ``.incept`` file, so everything downstream (spec
parsing, ``extends``, expansion, error messages) works unchanged. Layer calls and
expressions stay strings, located at their text in the DSL file.

>>> doc = parse_dsl("name: tiny\\ninput: [3, 8, 8]\\nbody:\\n    stem: conv(8, 3) -> relu\\n",
...                 "t.incept")
>>> doc["body"], doc["body"][1].span.col
([{'stem': 'conv(8, 3)'}, 'relu'], 25)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import SourceSpan, SpecError
from .yamlsrc import YList, YMap, YStr

FORMS = ("concat", "add", "mul", "seq", "repeat")
_PARSER: Any = None
_CONSTANTS = {"true": True, "True": True, "false": False, "False": False,
              "null": None, "none": None, "None": None}
_NUMBER = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?\Z")


# ---------------------------------------------------------------------------- parser


def _parser() -> Any:
    """The LALR parser, built once on first use (building it costs ~50 ms)."""
    global _PARSER
    if _PARSER is None:
        from lark import Lark

        grammar = (Path(__file__).with_name("dsl.lark")).read_text(encoding="utf-8")
        _PARSER = Lark(grammar, parser="lalr", lexer="contextual", postlex=_indenter(),
                       propagate_positions=True, maybe_placeholders=False,
                       cache=False)
    return _PARSER


def _indenter() -> Any:
    from lark.indenter import Indenter
    from lark.lexer import Token

    class DslIndenter(Indenter):
        """Python-style INDENT/DEDENT with located errors for bad indentation."""

        NL_type = "_NL"
        OPEN_PAREN_types: list[str] = []
        CLOSE_PAREN_types: list[str] = []
        INDENT_type = "_INDENT"
        DEDENT_type = "_DEDENT"
        tab_len = 8

        def handle_NL(self, token: Token) -> Iterator[Token]:
            yield token
            indent_str = token.rsplit("\n", 1)[1]
            if "\t" in indent_str:
                raise SpecError("tab in indentation", _end_span(token),
                                hint="indent with spaces only (4 per level)")
            indent = len(indent_str)
            if indent > self.indent_level[-1]:
                self.indent_level.append(indent)
                yield Token.new_borrow_pos(self.INDENT_type, indent_str, token)
                return
            while indent < self.indent_level[-1]:
                self.indent_level.pop()
                yield Token.new_borrow_pos(self.DEDENT_type, indent_str, token)
            if indent != self.indent_level[-1]:
                levels = " or ".join(str(n + 1) for n in reversed(self.indent_level))
                raise SpecError(
                    f"wrong indentation: this line starts at column {indent + 1}, which "
                    f"matches no enclosing block (expected column {levels})",
                    _end_span(token),
                    hint="indent each line of a block by the same number of spaces")

    return DslIndenter()


def _end_span(token: Any) -> SourceSpan:
    return SourceSpan(_PATH[0], token.end_line, token.end_column, token.end_line,
                      token.end_column + 1)


_PATH = ["<dsl>"]


def parse_dsl(text: str, path: str) -> YMap:
    """Parse DSL text into a located document; syntax errors are :class:`SpecError`."""
    from lark.exceptions import UnexpectedInput

    from .dsl_errors import syntax_error

    text = text.replace("\r\n", "\n").replace("\r", "\n")  # columns stay the same
    if not text.endswith("\n"):
        text += "\n"
    check_limits(text, path)
    _PATH[0] = path
    try:
        tree = _parser().parse(text)
        return _Builder(text, path).document(tree)
    except UnexpectedInput as exc:
        raise syntax_error(exc, text, path) from None
    except RecursionError:
        raise SpecError("the spec is nested too deeply", SourceSpan(path, 1, 1, 1, 2)) from None


MAX_TOKENS = 20_000  # the largest shipped spec has ~1,200; parsing costs ~30 us a token
MAX_NESTING = 50  # brackets inside brackets, or indented blocks inside blocks
_SCAN = re.compile("|".join([
    r"#[^\n]*", r'"(?:[^"\\\n]|\\.)*"', r"'[^'\n]*'",  # comments and strings
    r"\n[ ]*(?=[^ \n#])",  # a line break and the next line's indentation
    r"->", r"[A-Za-z_0-9.]+", r"\S",  # tokens (brackets are one-character tokens)
]))


def check_limits(text: str, path: str) -> None:
    """Reject, before parsing, DSL text too large or too deeply nested to parse quickly.

    >>> check_limits("body:\\n    conv(" + "(" * 60 + "1" + ")" * 60 + ")\\n", "x.incept")
    Traceback (most recent call last):
    inceptdsl.errors.SpecError: x.incept:2:59: error: nested more than 50 levels deep
    """
    from .yamlsrc import MAX_BYTES

    if len(text) > MAX_BYTES:
        raise SpecError(f"file is too large ({len(text)} characters; the limit is "
                        f"{MAX_BYTES})", SourceSpan(path, 1, 1, 1, 2))
    tokens, depth, indents = 0, 0, [0]
    for match in _SCAN.finditer(text):
        tok = match.group()
        tokens += tok[0] not in "#\n"
        if tok[0] == "\n":
            width = len(tok) - 1
            while width < indents[-1]:
                indents.pop()
            if width > indents[-1]:
                indents.append(width)
        depth += (tok in "([{") - (tok in ")]}")
        if tokens > MAX_TOKENS:
            raise SpecError(f"the spec has more than {MAX_TOKENS} tokens",
                            _at(text, path, match.start()))
        if depth > MAX_NESTING or len(indents) > MAX_NESTING + 1:
            raise SpecError(f"nested more than {MAX_NESTING} levels deep",
                            _at(text, path, match.end() - 1))


def _at(text: str, path: str, offset: int) -> SourceSpan:
    """The span of the character at ``offset`` (line and column counted from 1)."""
    line = text.count("\n", 0, offset) + 1
    col = offset - text.rfind("\n", 0, offset)
    return SourceSpan(path, line, col, line, col + 1)


# ---------------------------------------------------------------------------- builder


def _span(path: str, first: Any, last: Any | None = None) -> SourceSpan:
    last = last or first
    return SourceSpan(path, first.line, first.column, last.end_line, last.end_column)


def _tokens(tree: Any) -> Iterator[Any]:
    """All tokens under a tree, in order."""
    from lark import Token

    for child in tree.children:
        if isinstance(child, Token):
            yield child
        else:
            yield from _tokens(child)


def _new_map(span: SourceSpan) -> YMap:
    out = YMap()
    out.span, out.key_spans, out.value_spans = span, {}, {}
    return out


def _new_list(items: list[Any], spans: list[SourceSpan], span: SourceSpan) -> YList:
    out = YList(items)
    out.span, out.item_spans = span, spans
    return out


def scalar(text: str, span: SourceSpan) -> Any:
    """A token's value the way YAML would read it: number, bool, null or located string.

    >>> scalar("0.4", None), scalar("true", None), scalar("aux_logits", None)
    (0.4, True, 'aux_logits')
    """
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    if _NUMBER.match(text):
        value = float(text) if re.search(r"[.eE]", text) else int(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"'{text}' is not a finite number", span)
        return value
    return YStr(text, span)


def _list_items(text: str) -> list[tuple[int, int]] | None:
    """The (start, end) offsets of the items of a one-level ``[a, b]`` list, else None.

    >>> _list_items("[n - 3 * g, g]"), _list_items("2 * [1]"), _list_items("[]")
    ([(1, 10), (12, 13)], None, [])
    """
    if not (text.startswith("[") and text.endswith("]")):
        return None
    if not text[1:-1].strip():
        return []
    items, depth, start = [], 0, 1
    for i, ch in enumerate(text[1:-1], 1):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth < 0 or ch in "[]" and depth == 0 or ch in "'\"":
            return None
        if ch == "," and depth == 0:
            items.append((start, i))
            start = i + 1
    items.append((start, len(text) - 1))
    items = [(a + len(text[a:b]) - len(text[a:b].lstrip()),
              b - len(text[a:b]) + len(text[a:b].rstrip())) for a, b in items]
    return None if any(a >= b for a, b in items) else items


class _Builder:
    """Turns the lark tree into the located document (YMap / YList / YStr)."""

    def __init__(self, text: str, path: str):
        self.text, self.path = text, path

    def span(self, tree_or_token: Any) -> SourceSpan:
        from lark import Token

        if isinstance(tree_or_token, Token):
            return _span(self.path, tree_or_token)
        toks = list(_tokens(tree_or_token))
        return _span(self.path, toks[0], toks[-1])

    def put(self, mapping: YMap, key_tok: Any, value: Any, value_span: SourceSpan,
            key: str | None = None) -> None:
        """Add ``key: value`` to a mapping, reporting duplicate keys like the YAML loader."""
        key = key or str(key_tok)
        key_span = self.span(key_tok)
        if key in mapping:
            raise SpecError(f"duplicate key '{key}'", key_span,
                            notes=[(f"'{key}' was first defined here", mapping.key_spans[key])])
        mapping[YStr(key, key_span)] = value
        mapping.key_spans[key] = key_span
        mapping.value_spans[key] = value_span

    # ------------------------------------------------------------ top level

    def document(self, tree: Any) -> YMap:
        doc = _new_map(SourceSpan(self.path, 1, 1, 1, 2))
        blocks: YMap | None = None
        for item in tree.children:
            kind = item.data
            if kind == "header":
                key, _, value = item.children
                self.put(doc, key, self.value(value), self.span(value))
            elif kind == "params":
                params = self.params(item)
                self.put(doc, item.children[0], params, params.span)
            elif kind == "block":
                if blocks is None:
                    blocks = _new_map(self.span(item.children[0]))
                    self.put(doc, item.children[0], blocks, blocks.span, key="blocks")
                self.block(blocks, item)
            elif kind == "edits":
                edits = self.edits(item)
                self.put(doc, item.children[0], edits, edits.span)
            else:
                body = self.suite(item.children[2], always_list=True)
                self.put(doc, item.children[0], body, body.span, key="body")
        if doc and not doc.key_spans:
            return doc
        first = min(doc.key_spans.values(), default=doc.span)
        doc.span = SourceSpan(self.path, first.line, first.col, first.end_line, first.end_col)
        return doc

    def params(self, item: Any) -> YMap:
        entries = item.children[2:]
        out = _new_map(self.span(entries[0]) if entries else self.span(item.children[0]))
        for entry in entries:
            key, _, value = entry.children
            self.put(out, key, self.value(value), self.span(value))
        return out

    def block(self, blocks: YMap, item: Any) -> None:
        _, sig, _, suite = item.children
        toks = list(_tokens(sig))
        text = self.text[toks[0].start_pos:toks[-1].end_pos]
        sig_span = self.span(sig)
        name = str(toks[0])
        for existing in blocks:
            if re.match(rf"\s*{name}\b", existing):
                raise SpecError(f"block '{name}' is defined twice", sig_span,
                                notes=[("first defined here", existing.span)])
        body = self.suite(suite, always_list=False)
        key = YStr(text, sig_span)
        blocks[key] = body
        blocks.key_spans[text] = sig_span
        blocks.value_spans[text] = getattr(body, "span", sig_span)

    # ------------------------------------------------------------ edits

    def edits(self, item: Any) -> YList:
        """``edits:`` lines -> the list of edit mappings YAML writes (``- remove: x``)."""
        entries = [c for c in item.children if getattr(c, "data", "").startswith("edit_")]
        values = [self.edit(e) for e in entries]
        spans = [v.span for v in values]
        return _new_list(values, spans, _join(spans[0], spans[-1]))

    def edit(self, tree: Any) -> YMap:
        out = _new_map(self.span(tree))
        verb = tree.children[0]
        target = next(c for c in tree.children if getattr(c, "data", None) == "target")
        key = str(verb)
        if tree.data == "edit_insert":
            key = f"insert_{tree.children[1]}"
        self.put(out, verb, self.target(target), self.span(target), key=key)
        if tree.data == "edit_set":
            values = _new_map(self.span(tree.children[-1]))
            self.mods(values, _subtrees(tree, "mods"))
            self.put(out, tree.children[-1], values, values.span, key="with")
        elif tree.data != "edit_remove":
            operand = tree.children[-1]
            value = self.operand(operand)
            self.put(out, operand, value, getattr(value, "span", self.span(operand)),
                     key="with")
        return out

    def target(self, tree: Any) -> YStr:
        """A path or pattern, written without spaces (``Mixed_6*``) or quoted."""
        toks = list(_tokens(tree))
        span = _span(self.path, toks[0], toks[-1])
        if len(toks) == 1 and toks[0].type == "STRING":
            return self.scalar_token(toks[0])
        text = self.text[toks[0].start_pos:toks[-1].end_pos]
        if any(c.isspace() for c in text):
            raise SpecError("a path or pattern is written without spaces", span,
                            hint="quote it if it must hold unusual characters")
        return YStr(text, span)

    def operand(self, tree: Any) -> Any:
        """What replace/insert put in: an indented suite, or the rest of the line."""
        inner = tree.children[0]
        if inner.data == "suite":
            return self.suite(inner, always_list=False)
        chain = self.chain(inner)
        if len(chain) == 1:
            return chain[0][0]
        span = _join(chain[0][1], chain[-1][1])
        return _new_list([n for n, _ in chain], [s for _, s in chain], span)

    # ------------------------------------------------------------ values

    def value(self, tree: Any) -> Any:
        kind = tree.data
        if kind == "scalar":
            tok = tree.children[0]
            return self.scalar_token(tok)
        if kind == "vlist":
            values = [c for c in tree.children if not _is_punct(c)]
            return _new_list([self.value(v) for v in values], [self.span(v) for v in values],
                             self.span(tree))
        out = _new_map(self.span(tree))
        for pair in (c for c in tree.children if not _is_punct(c)):
            key, _, value = pair.children
            self.put(out, key, self.value(value), self.span(value))
        return out

    def scalar_token(self, tok: Any) -> Any:
        span = self.span(tok)
        if tok.type == "STRING":
            inner = SourceSpan(span.path, span.line, span.col + 1, span.end_line,
                               span.end_col - 1)
            try:
                return YStr(_unquote(str(tok)), inner)
            except ValueError as exc:  # a bad escape such as "\\x" in double quotes
                raise SpecError(f"invalid string: {exc}", span) from None
        return scalar(str(tok), span)

    def expr(self, tree: Any) -> YStr:
        """The verbatim text of a loosely scanned expression, located in the file."""
        toks = list(_tokens(tree))
        text = self.text[toks[0].start_pos:toks[-1].end_pos]
        span = _span(self.path, toks[0], toks[-1])
        _check_missing_colon(text, span)
        return YStr(text, span)

    def layer(self, tree: Any) -> Any:
        """A layer's text, or ``[]``: the empty sequence (an identity shortcut)."""
        text = self.expr(tree)
        if text.replace(" ", "") == "[]":
            return _new_list([], [], text.span)
        return text

    def expr_value(self, tree: Any) -> Any:
        """A modifier value or repeat count: a plain scalar if it is one, a list if it is
        written as ``[a, b]`` (as YAML reads it), else the text."""
        text = self.expr(tree)
        if len(tree.children) == 1:
            return scalar(str(text), text.span)
        items = _list_items(str(text))
        if items is None or text.span.end_line != text.span.line:
            return text
        spans = [SourceSpan(text.span.path, text.span.line, text.span.col + start,
                            text.span.line, text.span.col + end) for start, end in items]
        values = [scalar(str(text)[a:b], sp) for (a, b), sp in zip(items, spans, strict=True)]
        return _new_list(values, spans, text.span)

    # ------------------------------------------------------------ bodies

    def suite(self, tree: Any, always_list: bool) -> Any:
        """Lines of items: one item alone is that item, several are a sequence."""
        items: list[Any] = []
        spans: list[SourceSpan] = []
        for line in tree.children:
            for node, span in self.chain(line):
                items.append(node)
                spans.append(span)
        if len(items) == 1 and not always_list:
            return items[0]
        return _new_list(items, spans, _join(spans[0], spans[-1]))

    def chain(self, line: Any) -> list[tuple[Any, SourceSpan]]:
        out = []
        for part in line.children:
            target = part.children[0]
            out.append((self.item(target), self.span(target)))
        return out

    def branches(self, tree: Any) -> YList:
        """concat/add branches: one per line; a chain on a line is a sequence."""
        items, spans = [], []
        for line in tree.children:
            chain = self.chain(line)
            if len(chain) == 1:
                node, span = chain[0]
            else:
                span = _join(chain[0][1], chain[-1][1])
                node = _new_list([n for n, _ in chain], [s for _, s in chain], span)
            items.append(node)
            spans.append(span)
        return _new_list(items, spans, _join(spans[0], spans[-1]))

    def item(self, tree: Any) -> Any:
        kind = tree.data
        if kind == "layer":
            return self.layer(tree.children[0])
        return getattr(self, "item_" + kind)(tree)

    def mods(self, mapping: YMap, trees: list[Any]) -> None:
        for tree in trees:
            for mod in (c for c in tree.children if not _is_punct(c)):
                key, _, value = mod.children
                self.put(mapping, key, self.expr_value(value), self.span(value))

    def item_named_layer(self, tree: Any) -> YMap:
        name = tree.children[0]
        expr = next(c for c in tree.children if getattr(c, "data", None) == "expr")
        out = _new_map(self.span(tree))
        value = self.layer(expr)
        self.put(out, name, value, value.span)
        self.mods(out, _subtrees(tree, "mods"))
        return out

    def item_ref(self, tree: Any) -> YMap:
        ref, target = tree.children[:2]
        out = _new_map(self.span(tree))
        self.put(out, ref, YStr(str(target), self.span(target)), self.span(target))
        self.mods(out, _subtrees(tree, "mods"))
        return out

    def item_named_ref(self, tree: Any) -> YMap:
        """``name: ref target {mods}``: the inner ref is a mapping of its own."""
        ref_at = next(i for i, c in enumerate(tree.children) if getattr(c, "type", "") == "REF")
        outer_mods = _subtrees(tree.children[:ref_at], "mods")
        inner = _new_map(_join(self.span(tree.children[ref_at]), self.span(tree)))
        target = tree.children[ref_at + 1]
        self.put(inner, tree.children[ref_at], YStr(str(target), self.span(target)),
                 self.span(target))
        self.mods(inner, _subtrees(tree.children[ref_at:], "mods"))
        out = _new_map(self.span(tree))
        self.put(out, tree.children[0], inner, inner.span)
        self.mods(out, outer_mods)
        return out

    def item_named_suite(self, tree: Any) -> YMap:
        out = _new_map(self.span(tree))
        body = self.suite(tree.children[-1], always_list=False)
        self.put(out, tree.children[0], body, getattr(body, "span", out.span))
        self.mods(out, _subtrees(tree, "mods"))
        return out

    def item_named_form(self, tree: Any) -> YMap:
        out = _new_map(self.span(tree))
        form = tree.children[-1]
        value = self.item(form)
        self.put(out, tree.children[0], value, getattr(value, "span", out.span))
        self.mods(out, _subtrees(tree, "mods"))
        return out

    def item_seq(self, tree: Any) -> Any:
        body = self.suite(tree.children[-1], always_list=True)
        mods = _subtrees(tree, "mods")
        if not mods:  # the list itself, located from its 'seq' (its comments' line)
            body.span = _join(self.span(tree.children[0]), body.span)
            return body
        out = _new_map(self.span(tree))
        self.put(out, tree.children[0], body, body.span)
        self.mods(out, mods)
        return out

    def item_concat(self, tree: Any) -> YMap:
        out = _new_map(self.span(tree))
        branches = self.branches(tree.children[-1])
        self.put(out, tree.children[0], branches, branches.span)
        self.mods(out, _subtrees(tree, "mods"))
        return out

    item_add = item_concat
    item_mul = item_concat

    def item_repeat(self, tree: Any) -> YMap:
        out = _new_map(self.span(tree))
        keyword, count = tree.children[:2]
        self.put(out, keyword, self.expr_value(count), self.span(count))
        self.mods(out, _subtrees(tree, "mods"))
        body = self.suite(tree.children[-1], always_list=False)
        colon = next(c for c in tree.children if getattr(c, "type", None) == "COLON")
        self.put(out, colon, body, getattr(body, "span", out.span), key="body")
        return out


def _subtrees(tree: Any, kind: str) -> list[Any]:
    children = tree if isinstance(tree, list) else tree.children
    return [c for c in children if getattr(c, "data", None) == kind]


def _is_punct(child: Any) -> bool:
    return getattr(child, "type", None) in ("LSQB", "RSQB", "LBRACE", "RBRACE", "COMMA")


def _join(a: SourceSpan, b: SourceSpan) -> SourceSpan:
    return SourceSpan(a.path, a.line, a.col, b.end_line, b.end_col)


def _unquote(text: str) -> str:
    """The value of a quoted string token (JSON escapes in double quotes)."""
    if text.startswith('"'):
        import json

        return json.loads(text)
    return text[1:-1]


_MISSING_COLON = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\s+)[A-Za-z_][A-Za-z0-9_]*\s*\(")


def _check_missing_colon(text: str, span: SourceSpan) -> None:
    """``branch1 conv(64, 1)`` is a forgotten colon, not an expression: say so."""
    match = _MISSING_COLON.match(text)
    if match and match.group(1) not in ("not", "if", "else", "and", "or", "in"):
        at = span.shifted(match.end(1), len(match.group(2)))
        raise SpecError(f"expected ':' after the name '{match.group(1)}', found "
                        f"'{text[match.end(2):].split('(')[0]}'", at,
                        hint=f"a named layer is written '{match.group(1)}: layer'")
