"""Syntax errors of the text DSL: lark's exceptions turned into located, hinted messages.

Every message reads ``expected X, found Y`` at the offending ``line:col``, with a hint for
the usual mistakes: a missing colon, wrong indentation, unbalanced parentheses, unquoted
text, modifiers on an unnamed layer.

>>> from inceptdsl.dsl import parse_dsl
>>> try:
...     parse_dsl("name: x\\nbody\\n    relu\\n", "n.incept")
... except Exception as exc:
...     print(exc)
n.incept:2:5: error: expected ':', found end of line
"""

from __future__ import annotations

from typing import Any

from .errors import SourceSpan, SpecError

READABLE = {
    "COLON": "':'", "COMMA": "','", "EQUAL": "'='", "ARROW": "'->'",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'",
    "RBRACE": "'}'", "NAME": "a name", "NUMBER": "a number", "STRING": "a string",
    "OP": "an operator", "_NL": "end of line", "_INDENT": "an indented block",
    "_DEDENT": "the end of the block", "$END": "end of file",
}
_KEYWORDS = ("BLOCK", "PARAMS", "BODY", "NETWORK", "CONCAT", "ADD", "SEQ", "REPEAT", "REF")
_ORDER = ["COLON", "RPAR", "RSQB", "RBRACE", "ARROW", "_NL", "_INDENT", "NAME", "COMMA",
          "LBRACE", "NUMBER", "STRING", "LPAR", "LSQB", "EQUAL", "OP", "_DEDENT", "$END"]


def syntax_error(exc: Any, text: str, path: str) -> SpecError:
    """A lark ``UnexpectedInput`` as a :class:`SpecError` with a caret and a hint."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(exc, text, path)
    if isinstance(exc, UnexpectedToken):
        return _bad_token(exc, text, path)
    line, col = getattr(exc, "line", 1), getattr(exc, "column", 1)
    return SpecError("unexpected end of file", SourceSpan(path, line, col, line, col + 1))


def _bad_character(exc: Any, text: str, path: str) -> SpecError:
    char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
    span = SourceSpan(path, exc.line, exc.column, exc.line, exc.column + 1)
    if char in "\"'":
        return SpecError("unterminated string: expected a closing " + repr(char) +
                         ", found end of line", span,
                         hint="close the string on the same line")
    if char == "\t":
        return SpecError("tab in indentation", span, hint="indent with spaces only")
    expected = describe(exc.allowed or set())
    return SpecError(f"expected {expected}, found {char!r}", span,
                     hint=_char_hint(char))


def _char_hint(char: str) -> str | None:
    if char == "-":
        return "sequences are written 'a -> b'"
    if char in "}])":
        return "unbalanced brackets: this closes nothing"
    if char == "=":
        return "write 'key: value', not 'key = value'"
    return None


def _bad_token(exc: Any, text: str, path: str) -> SpecError:
    tok = exc.token
    expected = set(exc.expected) - {"$END"} if tok.type != "$END" else set(exc.expected)
    found = _found(tok)
    span = _token_span(tok, path, text)
    message = f"expected {describe(expected)}, found {found}"
    line = _source_line(text, tok)
    if tok.type == "_INDENT":
        message = f"unexpected indentation: expected {describe(expected - {'_INDENT'})}"
    elif tok.type == "_NL" and _unbalanced(line):
        closer = ")" if _unbalanced(line).startswith("'('") else "]"
        message = f"expected '{closer}', found end of line"
    elif tok.type in ("RPAR", "RSQB"):
        message = f"unbalanced parentheses: found an extra {found}"
    elif _opens_block(text, tok):
        message = f"expected an indented block, found {found}"
        return SpecError(message, span, hint="indent the lines of a block under the line "
                         "ending with ':' that opens it")
    return SpecError(message, span, hint=_hint(tok, expected, text))


def _opens_block(text: str, tok: Any) -> bool:
    """Whether the code line before ``tok`` ends with ':' (so an indented block must follow)."""
    number = getattr(tok, "line", 0) or 0
    if tok.type in ("_NL", "_INDENT", "_DEDENT", "$END") or number < 2:
        return False
    for line in reversed(text.splitlines()[:number - 1]):
        code = line.split("#", 1)[0].rstrip()
        if code:
            return code.endswith(":") and len(line) - len(line.lstrip()) >= tok.column - 1
    return False


def _token_span(tok: Any, path: str, text: str) -> SourceSpan:
    if tok.type in ("_NL", "$END"):
        line, col = _line_end(text, tok)
        return SourceSpan(path, line, col, line, col + 1)
    if tok.type in ("_INDENT", "_DEDENT"):
        return SourceSpan(path, tok.end_line, tok.end_column, tok.end_line, tok.end_column + 1)
    return SourceSpan(path, tok.line, tok.column, tok.end_line, tok.end_column)


def _line_end(text: str, tok: Any) -> tuple[int, int]:
    """Where a newline token really starts: after the code, before any trailing comment."""
    line = getattr(tok, "line", None) or text.count("\n")
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return max(line, 1), 1
    code = lines[line - 1].split("#", 1)[0].rstrip()
    return line, len(code) + 1


def _found(tok: Any) -> str:
    if tok.type in READABLE and tok.type not in ("NAME", "NUMBER", "STRING", "OP"):
        return READABLE[tok.type] if tok.type != "_DEDENT" else "a line indented less"
    return repr(str(tok))


def describe(expected: set[str]) -> str:
    """Readable alternatives, most useful first: ``':' or end of line``."""
    if "_INDENT" in expected and len(expected) <= 2:
        return READABLE["_INDENT"]
    keywords = sorted(k.lower() for k in expected if k in _KEYWORDS)
    named = [READABLE[k] for k in _ORDER if k in expected]
    if "NAME" in expected and keywords:
        named[named.index("a name")] = "a layer" if "CONCAT" in expected else "a key"
        keywords = []
    items = named + [f"'{k}'" for k in keywords]
    if not items:
        return "something else"
    if len(items) > 4:
        items = items[:4]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _hint(tok: Any, expected: set[str], text: str) -> str | None:
    line = _source_line(text, tok)
    if tok.type == "_NL" and _unbalanced(line):
        return f"unbalanced parentheses: {_unbalanced(line)}"
    if tok.type == "_NL" and "COLON" in expected and line.split("#")[0].rstrip().endswith("}"):
        return "modifiers belong to a named node: write 'name: layer {when: ...}'"
    if tok.type == "_NL" and "COLON" in expected:
        return "add ':' at the end of the line (block headers, forms and named groups " \
               "end with ':')"
    if tok.type == "RPAR" or tok.type == "RSQB":
        return "unbalanced parentheses: this closes nothing"
    if tok.type == "_INDENT":
        return "indent only the lines inside a block, after a line ending with ':'"
    if tok.type == "_NL" and "_INDENT" in expected:
        return "the lines of a block are indented more than the line that opens it"
    if tok.type == "LBRACE":
        return "modifiers belong to a named node: write 'name: layer {when: ...}'"
    if tok.type == "_NL" and "NAME" in expected and line.rstrip().endswith("->"):
        return "a '->' chain needs a layer after each arrow"
    if tok.type in ("NAME", "NUMBER", "STRING") and "_NL" in expected and "COLON" not in \
            expected and ":" in line and "(" not in line.split(":", 1)[1]:
        return 'quote text that contains spaces: "like this"'
    if tok.type == "EQUAL":
        return "write 'key: value', not 'key = value'"
    return None


def _source_line(text: str, tok: Any) -> str:
    lines = text.splitlines()
    line = getattr(tok, "line", 0) or 0
    return lines[line - 1] if 1 <= line <= len(lines) else ""


def _unbalanced(line: str) -> str | None:
    """Which bracket of a line is left open, if any: ``'(' at column 5 is not closed``."""
    stack: list[tuple[str, int]] = []
    pairs = {")": "(", "]": "["}
    for col, char in enumerate(line.split("#", 1)[0], start=1):
        if char in "([":
            stack.append((char, col))
        elif char in pairs and stack and stack[-1][0] == pairs[char]:
            stack.pop()
    return f"'{stack[-1][0]}' at column {stack[-1][1]} is not closed" if stack else None
