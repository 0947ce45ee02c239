"""Source spans and spec errors, reported as ``PATH:LINE:COL: error: MESSAGE`` with a caret.

Every error inceptdsl raises on purpose is a :class:`SpecError` (exported as
``inceptdsl.SpecError``)::

    SpecError        a spec is wrong, at .span (CLI: PATH:LINE:COL: error: ..., exit 1)
    ├── SpecErrors   several independent ones (.errors), in source order
    └── UsageError   the call is wrong: missing file, bad --set, bad argument (exit 2)
        └── OutputError   an output cannot be written: "cannot write PATH: reason"

Every spec node carries a :class:`SourceSpan`; every error a user can cause is a
:class:`SpecError` pointing at one, so that a mistake found deep in the IR is still
reported at the spec line that caused it.

>>> span = SourceSpan("net.yaml", 3, 5, 3, 9)
>>> str(SpecError("unknown op 'cnv'", span)).splitlines()[0]
"net.yaml:3:5: error: unknown op 'cnv'"
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class SourceSpan:
    """A 1-based line/column range in a source file (end column exclusive)."""

    path: str
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0

    def shifted(self, offset: int, length: int) -> SourceSpan:
        """The span ``length`` columns long starting ``offset`` columns into this one.

        >>> SourceSpan("a", 2, 10, 2, 30).shifted(4, 3)
        SourceSpan(path='a', line=2, col=14, end_line=2, end_col=17)
        """
        col = self.col + offset
        return SourceSpan(self.path, self.line, col, self.line, col + max(length, 1))

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


UNKNOWN = SourceSpan("<spec>", 1, 1, 1, 2)


def did_you_mean(word: str, choices: Any) -> str | None:
    """A hint naming the closest known word, if one is close.

    >>> did_you_mean("cnov", ["conv", "linear"])
    "did you mean 'conv'?"
    """
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


@dataclass
class SpecError(Exception):
    """An error in a spec, at a place in its source."""

    message: str
    span: SourceSpan = UNKNOWN
    notes: list[tuple[str, SourceSpan]] = field(default_factory=list)
    hint: str | None = None

    def __str__(self) -> str:
        return f"{self.span}: error: {self.message}"

    def render(self, sources: dict[str, str] | None = None) -> str:
        """The message with the offending source line and a caret run under the span."""
        lines = [str(self), *_excerpt(self.span, sources)]
        for text, span in self.notes:
            lines += [f"{span}: note: {text}", *_excerpt(span, sources)]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class SpecErrors(SpecError):
    """Several independent errors of one spec, reported together in source order.

    ``.errors`` lists them; ``.span`` and ``.message`` are the first one's.
    """

    def __init__(self, errors: list[SpecError]):
        self.errors = sorted(errors, key=lambda e: (e.span.path, e.span.line, e.span.col))
        first = self.errors[0]
        super().__init__(first.message, first.span, list(first.notes), first.hint)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    def render(self, sources: dict[str, str] | None = None) -> str:
        return "\n".join(e.render(sources) for e in self.errors)


class UsageError(SpecError):
    """Bad usage rather than a bad spec: a missing file, an unknown ``--set`` name or a
    value of the wrong type, an unknown backend, an argument of the wrong type in the
    Python API. The CLI prints ``inceptdsl: error: MESSAGE`` and exits 2.

    >>> str(UsageError("'nope' is neither a file nor a shipped spec"))
    "'nope' is neither a file nor a shipped spec"
    """

    def __str__(self) -> str:
        return self.message

    def render(self, sources: dict[str, str] | None = None) -> str:
        return f"inceptdsl: error: {self.message}"


class OutputError(UsageError):
    """An output cannot be written: ``cannot write PATH: REASON`` (exit code 2)."""


class ErrorCollector:
    """Collects errors so a pass can report all of them instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[SpecError] = []

    def add(self, error: SpecError) -> None:
        if isinstance(error, SpecErrors):
            for one in error.errors:
                self.add(one)
            return
        if all(str(error) != str(e) for e in self.errors):
            self.errors.append(error)

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise SpecErrors(self.errors)


_SOURCES: dict[str, str] = {}


def remember_source(path: str, text: str) -> None:
    """Keep a file's text so that errors about it can quote the offending line."""
    _SOURCES[path] = text


def _excerpt(span: SourceSpan, sources: dict[str, str] | None) -> list[str]:
    text = (sources or {}).get(span.path, _SOURCES.get(span.path))
    if text is None:
        return []
    lines = text.splitlines()
    if not 1 <= span.line <= len(lines):
        return []
    line = lines[span.line - 1].replace("\t", " ")
    if len(line) > 200:
        return []
    end = span.end_col if span.end_line == span.line and span.end_col > span.col else span.col + 1
    width = max(1, min(end, len(line) + 1) - span.col)
    return [f"  {line}", "  " + " " * (span.col - 1) + "^" * width]


def comment_above(span: SourceSpan) -> str:
    """The ``#`` comment lines right above a span's line, joined (for docstrings).

    >>> remember_source("c.yaml", "# conv then BN\\n# then ReLU\\nBlock:\\n")
    >>> comment_above(SourceSpan("c.yaml", 3, 1))
    'conv then BN\\nthen ReLU'
    """
    lines = _SOURCES.get(span.path, "").splitlines()
    found: list[str] = []
    index = span.line - 2
    while 0 <= index < len(lines) and lines[index].strip().startswith("#"):
        found.insert(0, lines[index].strip().lstrip("#").strip())
        index -= 1
    return "\n".join(found)
