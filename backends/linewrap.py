"""Fit generated Python source into the line limit, the way black splits lines.

The generators render each construct on one line where it fits and wrap the common long
forms themselves; this pass, run last on the whole file, catches every other line that is
still too long (long attribute names, long parameter lists, a long spec description):

- code: the last bracket pair of the line is split (black's "right-hand split"): first its
  contents on one indented line, else one element per line with a trailing comma (calls,
  definitions and literals only: never a subscript or a parenthesized expression, where a
  comma would change the meaning);
- comments and docstring prose: re-flowed at the same indentation.

>>> print(fit("x = self.a_rather_long_name(an_argument, another_one)", limit=30))
x = self.a_rather_long_name(
    an_argument, another_one
)
"""

from __future__ import annotations

import ast
import textwrap

LIMIT = 100  # the files' limit; renderers wrap their own forms earlier (base.MAX_LINE)
INDENT = "    "
_CLOSE = {")": "(", "]": "[", "}": "{"}


def fit(source: str, limit: int = LIMIT) -> str:
    r"""``source`` with every line longer than ``limit`` split or re-flowed (the source
    unchanged if splitting would not parse: a form this pass does not know).

    >>> fit('def f(a: int, b: int) -> int:\n    pass', limit=20).splitlines()[1]
    '    a: int, b: int'
    """
    fitted = "\n".join(_fit_lines(source, limit))
    try:
        ast.parse(fitted)
    except SyntaxError:
        return source
    return fitted


def _fit_lines(source: str, limit: int) -> list[str]:
    out: list[str] = []
    in_string = False
    for line in source.split("\n"):
        quotes = line.count('"""') + line.count("'''")
        prose = in_string or (quotes == 1 and line.strip()[:3] in ('"""', "'''"))
        if len(line) <= limit:
            out.append(line)
        elif prose and not line.lstrip().startswith(">>>"):
            out += _reflow(line, "", limit)
        elif line.lstrip().startswith("#"):
            out += _reflow(line, "# ", limit)
        elif not in_string and quotes == 0:
            out += split(line, limit)
        else:
            out.append(line)
        in_string ^= quotes % 2 == 1
    return out


def split(line: str, limit: int = LIMIT) -> list[str]:
    """One code line as several, splitting its last bracket pair (recursively).

    >>> split("y = torch.cat([a, b, c], 1)", limit=14)
    ['y = torch.cat(', '    [a, b, c],', '    1,', ')']
    >>> split("y = x[index_a, index_b]", limit=10)  # no comma added to a subscript
    ['y = x[', '    index_a, index_b', ']']
    """
    found = _last_pair(line)
    if found is None or len(line) <= limit:
        return [line]
    start, end = found
    head, body, tail = line[:start + 1], line[start + 1:end].strip(), line[end:]
    if not body:
        return [line]
    pad = " " * (len(line) - len(line.lstrip())) + INDENT
    comprehension = _comprehension(body)
    if len(pad + body) <= limit:
        inner = [pad + body]
    elif comprehension:
        inner = [pad + part for part in comprehension]
    elif _collection(line, start, body):
        inner = [pad + item + "," for item in items(body)]
    else:
        inner = [pad + body]
    closing = pad[:-len(INDENT)] + tail
    return [*split(head, limit), *(part for item in inner for part in split(item, limit)),
            closing]


def _reflow(line: str, marker: str, limit: int) -> list[str]:
    """A comment (``marker`` '# ') or docstring line re-flowed at its indentation."""
    indent = " " * (len(line) - len(line.lstrip()))
    text = line.strip()[len(marker):] if marker else line.strip()
    return textwrap.wrap(text, limit - len(indent), initial_indent=indent + marker,
                         subsequent_indent=indent + marker, break_long_words=False,
                         break_on_hyphens=False) or [line]


def _scan(line: str):
    """(index, character) of the line outside string literals."""
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return
        else:
            yield i, ch
        i += 1


def _last_pair(line: str) -> tuple[int, int] | None:
    """Indexes of the opening and closing bracket of the line's last top-level pair."""
    stack: list[tuple[str, int]] = []
    last = None
    for i, ch in _scan(line):
        if ch in "([{":
            stack.append((ch, i))
        elif ch in _CLOSE and stack and stack[-1][0] == _CLOSE[ch]:
            opener, j = stack.pop()
            if not stack:
                last = (j, i)
    return last


def items(body: str) -> list[str]:
    """The top-level comma-separated items of a bracket's contents (not split inside
    brackets or string literals)."""
    out, depth, start = [], 0, 0
    for i, ch in _scan(body):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            out.append(body[start:i].strip())
            start = i + 1
    rest = body[start:].strip()
    return out + [rest] if rest else out


def _comprehension(body: str) -> list[str] | None:
    """A comprehension's element and its ``for`` clause, or ``None``.

    >>> _comprehension("f(x) for x in range(2)")
    ['f(x)', 'for x in range(2)']
    """
    depth = 0
    for i, ch in _scan(body):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and body.startswith(" for ", i):
            return [body[:i].strip(), body[i:].strip()]
    return None


def _collection(line: str, start: int, body: str) -> bool:
    """Whether a trailing comma keeps the meaning: a call, a definition, a list, dict or
    set literal, or a tuple that has commas already (not a subscript, not ``(a + b)``)."""
    before = line[:start].rstrip()
    after_name = bool(before) and (before[-1].isalnum() or before[-1] in "_)]")
    if line[start] == "(":
        return after_name or len(items(body)) > 1
    return not after_name
