"""The expression language of spec arguments: parsed by hand, evaluated safely.

Arguments such as ``2 * c``, ``int(64 * width)`` or ``relu if use_relu`` are parsed into a
tiny AST and evaluated against a scope of parameters; no Python ``eval`` is involved, only
arithmetic, comparisons, conditionals, lists and a few whitelisted functions.

Values may be symbolic (:class:`Sym`): the code generators evaluate block bodies with the
block parameters bound to symbols, and the result renders back to Python source.

>>> evaluate(parse("2 * c + 1"), {"c": 32})
65
>>> evaluate(parse("relu if use_relu"), {"use_relu": False}) is None
True
>>> str(evaluate(parse("c * 2 + 64"), {"c": Sym("c")}))
'c * 2 + 64'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import UNKNOWN, SourceSpan, SpecError, did_you_mean

MAX_EXPR_LEN = 2000
MAX_EXPR_DEPTH = 64  # nesting of parentheses, lists, calls and operators
MAX_INT = 10**12

# ---------------------------------------------------------------------------- AST


@dataclass
class Expr:
    """An expression node; ``pos``/``length`` locate it inside its source string."""

    pos: int = field(default=0, kw_only=True)
    length: int = field(default=1, kw_only=True)
    base: SourceSpan = field(default=UNKNOWN, kw_only=True, repr=False, compare=False)

    @property
    def span(self) -> SourceSpan:
        return self.base.shifted(self.pos, self.length)


@dataclass
class Const(Expr):
    value: Any


@dataclass
class Name(Expr):
    id: str


@dataclass
class ListExpr(Expr):
    items: list[Expr]


@dataclass
class CallExpr(Expr):
    func: str
    args: list[Expr]
    kwargs: dict[str, Expr]
    func_length: int = 1


@dataclass
class BinOp(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass
class UnaryOp(Expr):
    op: str
    operand: Expr


@dataclass
class IfExp(Expr):
    body: Expr
    test: Expr
    orelse: Expr | None


# ---------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
    |(?P<str>'[^'\\]*'|"[^"\\]*")
    |(?P<name>[A-Za-z_][A-Za-z_0-9]*)
    |(?P<op>\*\*|//|<=|>=|==|!=|[-+*/%()\[\],=<>.:])
    """,
    re.VERBOSE | re.ASCII,  # only ASCII digits and spaces: '８' is not a number here
)
_KEYWORDS = {"and", "or", "not", "if", "else", "in"}
_CONSTANTS = {"true": True, "True": True, "false": False, "False": False,
              "none": None, "None": None, "null": None}


@dataclass
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str, base: SourceSpan) -> list[Token]:
    """Split an expression into tokens; an unknown character is a located error."""
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise SpecError(f"unexpected character {text[pos]!r}", base.shifted(pos, 1))
        kind = match.lastgroup or "op"
        if kind != "ws":
            word = match.group()
            if kind == "name" and word in _KEYWORDS:
                kind = "op"
            tokens.append(Token(kind, word, pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# ---------------------------------------------------------------------------- parser

_BINARY = {"or": 1, "and": 2, "<": 4, "<=": 4, ">": 4, ">=": 4, "==": 4, "!=": 4,
           "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6, "**": 8}


class _Parser:
    def __init__(self, text: str, base: SourceSpan):
        self.text, self.base = text, base
        self.tokens = tokenize(text, base)
        self.i = 0
        self.depth = 0

    def descend(self) -> None:
        """Count one more level of nesting; too many is an error, not a RecursionError."""
        self.depth += 1
        if self.depth > MAX_EXPR_DEPTH:
            raise self.error(f"expression is too deeply nested (more than {MAX_EXPR_DEPTH} "
                             "levels of brackets, calls or operators)")

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, tok: Token | None = None) -> SpecError:
        tok = tok or self.tok
        return SpecError(message, self.base.shifted(tok.pos, max(len(tok.text), 1)))

    def expect(self, text: str) -> Token:
        if self.tok.text != text or self.tok.kind == "str":
            found = repr(self.tok.text) if self.tok.text else "end of expression"
            raise self.error(f"expected '{text}', found {found}")
        self.i += 1
        return self.tokens[self.i - 1]

    def node(self, cls: type, start: int, *args: Any) -> Any:
        end = self.tokens[self.i - 1]
        return cls(*args, pos=start, length=end.pos + len(end.text) - start, base=self.base)

    def parse(self) -> Expr:
        expr = self.ternary()
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.tok.text!r} after the expression")
        return expr

    def ternary(self) -> Expr:
        start = self.tok.pos
        body = self.binary(1)
        if self.tok.text != "if" or self.tok.kind != "op":
            return body
        self.i += 1
        test = self.binary(1)
        orelse = None
        if self.tok.text == "else" and self.tok.kind == "op":
            self.i += 1
            orelse = self.ternary()
        return self.node(IfExp, start, body, test, orelse)

    def binary(self, min_prec: int) -> Expr:
        start, depth = self.tok.pos, self.depth
        self.descend()
        left = self.unary()
        while self.tok.kind == "op" and _BINARY.get(self.tok.text, 0) >= min_prec:
            op = self.tok.text
            prec = _BINARY[op]
            self.i += 1
            right = self.binary(prec if op == "**" else prec + 1)
            left = self.node(BinOp, start, op, left, right)
            self.descend()  # a chain 'a + b + c' nests to the left
        self.depth = depth
        return left

    def unary(self) -> Expr:
        tok = self.tok
        if tok.kind == "op" and tok.text in ("-", "+", "not"):
            self.i += 1
            self.descend()
            operand = self.binary(3) if tok.text == "not" else self.unary()
            self.depth -= 1
            return self.node(UnaryOp, tok.pos, tok.text, operand)
        return self.atom()

    def atom(self) -> Expr:
        tok = self.tok
        self.i += 1
        if tok.kind == "num":
            value = float(tok.text) if re.search(r"[.eE]", tok.text) else int(tok.text)
            if abs(value) > MAX_INT:
                raise self.error(f"number too large (the limit is {MAX_INT:.0e})", tok)
            return self.node(Const, tok.pos, value)
        if tok.kind == "str":
            return self.node(Const, tok.pos, tok.text[1:-1])
        if tok.kind == "name":
            if tok.text in _CONSTANTS:
                return self.node(Const, tok.pos, _CONSTANTS[tok.text])
            if self.tok.text == "(" and self.tok.kind == "op":
                return self.call(tok)
            return self.node(Name, tok.pos, tok.text)
        if tok.text == "(":
            inner = self.ternary()
            self.expect(")")
            return inner
        if tok.text == "[":
            items = self.sequence("]")
            return self.node(ListExpr, tok.pos, items)
        self.i -= 1
        found = repr(tok.text) if tok.text else "end of expression"
        raise self.error(f"expected a value, found {found}")

    def sequence(self, close: str) -> list[Expr]:
        items: list[Expr] = []
        while self.tok.text != close or self.tok.kind == "str":
            if self.tok.kind == "end":
                raise self.error(f"unbalanced brackets: expected '{close}'")
            items.append(self.ternary())
            if self.tok.kind == "end":
                raise self.error(f"unbalanced brackets: expected '{close}'")
            if self.tok.text != close:
                self.expect(",")
        self.i += 1
        return items

    def call(self, func: Token) -> CallExpr:
        self.expect("(")
        args: list[Expr] = []
        kwargs: dict[str, Expr] = {}
        while self.tok.text != ")" or self.tok.kind == "str":
            if self.tok.kind == "end":
                raise self.error("unbalanced parentheses: expected ')'")
            if self.tok.kind == "name" and self.tokens[self.i + 1].text == "=":
                key = self.tok
                if key.text in kwargs:
                    raise self.error(f"argument '{key.text}' given twice", key)
                self.i += 2
                kwargs[key.text] = self.ternary()
            elif kwargs:
                raise self.error("positional argument after keyword arguments")
            else:
                args.append(self.ternary())
            if self.tok.kind == "end":
                raise self.error("unbalanced parentheses: expected ')'")
            if self.tok.text != ")":
                self.expect(",")
        self.i += 1
        node = self.node(CallExpr, func.pos, func.text, args, kwargs)
        node.func_length = len(func.text)
        return node


def parse(text: str, base: SourceSpan = UNKNOWN) -> Expr:
    """Parse an expression string; positions in errors are relative to ``base``.

    >>> parse("conv(64, 1, pad=[0, 3])").kwargs["pad"].items[1].value
    3
    """
    if len(text) > MAX_EXPR_LEN:
        raise SpecError(f"expression is longer than {MAX_EXPR_LEN} characters", base)
    return _Parser(text, base).parse()


def names_in(expr: Expr) -> set[str]:
    """Every free name an expression refers to."""
    if isinstance(expr, Name):
        return {expr.id}
    found: set[str] = set()
    for child in _children(expr):
        found |= names_in(child)
    return found


def _children(expr: Expr) -> list[Expr]:
    if isinstance(expr, ListExpr):
        return expr.items
    if isinstance(expr, CallExpr):
        return [*expr.args, *expr.kwargs.values()]
    if isinstance(expr, BinOp):
        return [expr.left, expr.right]
    if isinstance(expr, UnaryOp):
        return [expr.operand]
    if isinstance(expr, IfExp):
        return [e for e in (expr.body, expr.test, expr.orelse) if e is not None]
    return []


# ---------------------------------------------------------------------------- symbols

_PREC = {"if": 0, "or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6,
         "//": 6, "%": 6, "neg": 7, "**": 8, "atom": 9}


class Sym:
    """A value known only at run time of the generated code, kept as Python source.

    >>> c = Sym("c")
    >>> str((c + 8) * 2), str(c * 1), str(0 + c)
    ('(c + 8) * 2', 'c', 'c')
    """

    def __init__(self, code: str, prec: int = 9, parts: tuple = ()):
        self.code, self.prec, self.parts = code, prec, parts

    def __str__(self) -> str:
        return self.code

    def __repr__(self) -> str:
        return f"Sym({self.code!r})"

    def __bool__(self) -> bool:
        raise SymbolicValueError(self)

    def __index__(self) -> int:
        raise SymbolicValueError(self)

    def __eq__(self, other: object) -> bool:  # identity of source, for dedup only
        return isinstance(other, Sym) and other.code == self.code

    def __hash__(self) -> int:
        return hash(self.code)

    def _bin(self, op: str, other: Any, reflected: bool = False) -> Any:
        if not reflected and _is_identity(op, other):
            return self
        if reflected and op in ("+", "*") and _is_identity(op, other):
            return self
        left, right = (other, self) if reflected else (self, other)
        return binary_sym(op, left, right)

    def __add__(self, o): return self._bin("+", o)
    def __radd__(self, o): return self._bin("+", o, True)
    def __sub__(self, o): return self._bin("-", o)
    def __rsub__(self, o): return self._bin("-", o, True)
    def __mul__(self, o): return self._bin("*", o)
    def __rmul__(self, o): return self._bin("*", o, True)
    def __truediv__(self, o): return self._bin("/", o)
    def __rtruediv__(self, o): return self._bin("/", o, True)
    def __floordiv__(self, o): return self._bin("//", o)
    def __rfloordiv__(self, o): return self._bin("//", o, True)
    def __mod__(self, o): return self._bin("%", o)
    def __rmod__(self, o): return self._bin("%", o, True)
    def __pow__(self, o): return self._bin("**", o)
    def __rpow__(self, o): return self._bin("**", o, True)
    def __neg__(self): return Sym(f"-{wrap(self, 7)}", 7)
    def __pos__(self): return self


class SymbolicValueError(Exception):
    """Raised when a decision needs the value of a symbol (e.g. ``if c > 3``)."""

    def __init__(self, sym: Sym):
        super().__init__(f"'{sym}' is only known when the model is built")
        self.sym = sym


def _is_identity(op: str, other: Any) -> bool:
    return (op in ("+", "-") and other == 0 and not isinstance(other, bool)) or (
        op in ("*", "/", "//") and other == 1 and not isinstance(other, bool)
    )


def to_code(value: Any) -> str:
    """Python source for a value (a symbol's own code, or the literal's repr)."""
    if isinstance(value, Sym):
        return value.code
    if isinstance(value, (list, tuple)):
        inner = ", ".join(to_code(v) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)
    return repr(value)


def wrap(value: Any, prec: int, right: bool = False) -> str:
    own = value.prec if isinstance(value, Sym) else (7 if _negative(value) else 9)
    code = to_code(value)
    return f"({code})" if own < prec or (right and own == prec) else code


def _negative(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0


def binary_sym(op: str, left: Any, right: Any) -> Sym:
    prec = _PREC.get(op, 4)
    right_assoc = op == "**"
    code = f"{wrap(left, prec, right_assoc)} {op} {wrap(right, prec, not right_assoc)}"
    return Sym(code, prec)


def is_symbolic(value: Any) -> bool:
    if isinstance(value, Sym):
        return True
    if isinstance(value, (list, tuple)):
        return any(is_symbolic(v) for v in value)
    return False


# ---------------------------------------------------------------------------- evaluation


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing over 10%.

    >>> make_divisible(64 * 0.5), make_divisible(100 * 0.75), make_divisible(20)
    (32, 72, 24)
    """
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def _builtin(name: str, fn: Any) -> Any:
    def call(*args: Any) -> Any:
        if any(is_symbolic(a) for a in args):
            return Sym(f"{name}({', '.join(to_code(a) for a in args)})")
        return fn(*args)

    return call


BUILTINS = {
    name: _builtin(name, fn)
    for name, fn in {
        "int": int, "float": float, "round": round, "min": min, "max": max, "abs": abs,
        "ceil": math.ceil, "floor": math.floor, "make_divisible": make_divisible,
    }.items()
}

# Activation names evaluate to themselves, so ``act: relu`` and ``relu if x`` read naturally.
ACTIVATIONS = ("relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "elu", "leaky_relu",
               "hardswish", "mish", "softplus", "identity")


def evaluate(expr: Expr, env: dict[str, Any]) -> Any:
    """Evaluate an expression in a scope; symbols propagate, errors are located."""
    try:
        return _eval(expr, env)
    except SymbolicValueError as exc:
        raise SpecError(
            f"this needs the value of '{exc.sym}', which is only known when the model "
            "is built", expr.span) from None


def _eval(expr: Expr, env: dict[str, Any]) -> Any:
    if isinstance(expr, Const):
        return expr.value
    if isinstance(expr, Name):
        return _lookup(expr, env)
    if isinstance(expr, ListExpr):
        return [_eval(item, env) for item in expr.items]
    if isinstance(expr, UnaryOp):
        return _unary(expr, _eval(expr.operand, env))
    if isinstance(expr, BinOp):
        return _binary(expr, env)
    if isinstance(expr, IfExp):
        return _ifexp(expr, env)
    if isinstance(expr, CallExpr):
        return _call(expr, env)
    raise SpecError("unsupported expression", expr.span)


def _lookup(expr: Name, env: dict[str, Any]) -> Any:
    if expr.id in env:
        return env[expr.id]
    if expr.id in ACTIVATIONS:
        return expr.id
    raise SpecError(f"unknown name '{expr.id}'", expr.span, hint=did_you_mean(expr.id, env))


def _unary(expr: UnaryOp, value: Any) -> Any:
    if expr.op == "not":
        return Sym(f"not {wrap(value, 3)}", 3) if is_symbolic(value) else not value
    _check_number(value, expr.operand)
    return -value if expr.op == "-" else value


def _binary(expr: BinOp, env: dict[str, Any]) -> Any:
    left = _eval(expr.left, env)
    if expr.op in ("and", "or"):
        if not is_symbolic(left):
            if (expr.op == "and") != bool(left):
                return left
            return _eval(expr.right, env)
        right = _eval(expr.right, env)
        return binary_sym(expr.op, left, right)
    right = _eval(expr.right, env)
    if expr.op in ("<", "<=", ">", ">=", "==", "!="):
        if is_symbolic(left) or is_symbolic(right):
            return binary_sym(expr.op, left, right)
        return _compare(expr, left, right)
    _check_number(left, expr.left)
    _check_number(right, expr.right)
    return _arith(expr, left, right)


def _compare(expr: BinOp, left: Any, right: Any) -> bool:
    import operator

    fn = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
          "==": operator.eq, "!=": operator.ne}[expr.op]
    try:
        return bool(fn(left, right))
    except TypeError:
        raise SpecError(f"cannot compare {_kind(left)} and {_kind(right)}", expr.span) from None


def _arith(expr: BinOp, left: Any, right: Any) -> Any:
    op = expr.op
    if op in ("/", "//", "%") and not is_symbolic(right) and right == 0:
        raise SpecError("division by zero", expr.span)
    if op == "**" and not is_symbolic(right) and (abs(right) > 64 or (
            not is_symbolic(left) and abs(left) > MAX_INT)):
        raise SpecError("exponent too large", expr.span)
    try:
        result = {"+": lambda: left + right, "-": lambda: left - right,
                  "*": lambda: left * right, "/": lambda: left / right,
                  "//": lambda: left // right, "%": lambda: left % right,
                  "**": lambda: left**right}[op]()
    except ZeroDivisionError:
        raise SpecError("division by zero", expr.span) from None
    except OverflowError:
        raise SpecError("number too large", expr.span) from None
    return checked_number(result, expr.span)


def checked_number(value: Any, span: SourceSpan) -> Any:
    """A computed number, if it is real, finite and at most ``MAX_INT``; else an error.

    >>> checked_number(3, UNKNOWN)
    3
    """
    if isinstance(value, complex):
        raise SpecError("the result is not a real number", span)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"the result is not a finite number ({value})", span)
        if abs(value) > MAX_INT:
            raise SpecError(f"number too large ({value:.3g})", span)
    return value


def _check_number(value: Any, expr: Expr) -> None:
    if isinstance(value, Sym):
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"expected a number, found {_kind(value)}", expr.span)


def _kind(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string '{value}'"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _ifexp(expr: IfExp, env: dict[str, Any]) -> Any:
    test = _eval(expr.test, env)
    if is_symbolic(test):
        body = _eval(expr.body, env)
        orelse = _eval(expr.orelse, env) if expr.orelse is not None else None
        code = f"{wrap(body, 1)} if {wrap(test, 1)} else {wrap(orelse, 0)}"
        return Sym(code, 0, parts=(body, test, orelse))
    if test:
        return _eval(expr.body, env)
    return _eval(expr.orelse, env) if expr.orelse is not None else None


def _call(expr: CallExpr, env: dict[str, Any]) -> Any:
    fn = BUILTINS.get(expr.func)
    if fn is None:
        raise SpecError(f"unknown function '{expr.func}'", expr.span,
                        hint=did_you_mean(expr.func, BUILTINS))
    if expr.kwargs:
        raise SpecError(f"'{expr.func}' takes no keyword arguments", expr.span)
    args = [_eval(a, env) for a in expr.args]
    try:
        result = fn(*args)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
        raise SpecError(f"{expr.func}(): {exc}", expr.span) from None
    if isinstance(result, str):
        raise SpecError(f"{expr.func}() takes numbers, not strings", expr.span)
    return checked_number(result, expr.span)


def source_of(expr: Expr) -> str:
    """Canonical source text of an expression (used by the formatters).

    >>> source_of(parse("conv( 64 ,1, pad = [0,3])"))
    'conv(64, 1, pad=[0, 3])'
    """
    return _src(expr, 0)


def _src(expr: Expr, prec: int) -> str:
    if isinstance(expr, Const):
        return _const_src(expr.value)
    if isinstance(expr, Name):
        return expr.id
    if isinstance(expr, ListExpr):
        return "[" + ", ".join(_src(i, 0) for i in expr.items) + "]"
    if isinstance(expr, CallExpr):
        parts = [_src(a, 0) for a in expr.args]
        parts += [f"{k}={_src(v, 0)}" for k, v in expr.kwargs.items()]
        return f"{expr.func}({', '.join(parts)})"
    if isinstance(expr, UnaryOp):
        own = 3 if expr.op == "not" else 7
        sep = " " if expr.op == "not" else ""
        text = f"{expr.op}{sep}{_src(expr.operand, own)}"
    elif isinstance(expr, BinOp):
        own = _PREC.get(expr.op, 4)
        left = _src(expr.left, own + (1 if expr.op == "**" else 0))
        right = _src(expr.right, own if expr.op == "**" else own + 1)
        text = f"{left} {expr.op} {right}"
    elif isinstance(expr, IfExp):
        own = 0
        text = f"{_src(expr.body, 1)} if {_src(expr.test, 1)}"
        if expr.orelse is not None:
            text += f" else {_src(expr.orelse, 0)}"
    else:
        raise TypeError(expr)
    return f"({text})" if own < prec else text


def _const_src(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # a string holds no backslash and not both quotes
        return f'"{value}"' if "'" in value else f"'{value}'"
    return repr(value)
