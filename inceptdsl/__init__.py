"""inceptdsl: a declarative architecture compiler for convolutional networks.

>>> import inceptdsl
>>> spec = inceptdsl.load("inception_v3", set={"num_classes": 10})
>>> inceptdsl.analyze(spec).output
[10]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"

__all__ = ["load", "analyze", "compile", "build", "render", "SpecError", "SpecErrors",
           "UsageError", "OutputError", "__version__"]

from .errors import OutputError, SpecError, SpecErrors, UsageError  # noqa: E402


def load(ref: str | Path, set: dict[str, Any] | None = None):  # noqa: A002
    """Load a spec by path or shipped name, with parameter overrides.

    Every error is an :class:`inceptdsl.SpecError`: a bad spec is one (``.span`` says
    where), a bad call is its subclass :class:`inceptdsl.UsageError`:

    >>> try:
    ...     load("inception_v3", set={"width": float("nan")})
    ... except SpecError as exc:
    ...     print(type(exc).__name__, exc)
    UsageError --set width=nan: not a finite number (nan)
    """
    from .loader import load as _load

    if not isinstance(ref, (str, Path)):
        raise UsageError(f"load: expected a path or a shipped spec name, found {_kind(ref)}")
    return _load(ref, {} if set is None else set)


def _kind(value: Any) -> str:
    return "None" if value is None else f"a {type(value).__name__}"


def _spec(spec: Any):
    """A :class:`~inceptdsl.spec.Spec`: loaded from a path or name, or given as one."""
    from .spec import Spec

    if isinstance(spec, (str, Path)):
        return load(spec)
    if not isinstance(spec, Spec):
        raise UsageError("expected a spec: a path, a shipped name or what inceptdsl.load() "
                         f"returns, found {_kind(spec)}")
    return spec


def _depth(depth: Any, allow_none: bool = False) -> Any:
    if depth is None and allow_none:
        return None
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise UsageError(f"depth: expected a whole number of at least 1, found {depth!r}")
    return depth


def analyze(spec: Any, depth: int = 1):
    """Shapes and exact costs: ``.params .buffers .macs .flops .shapes .blocks``.

    >>> try:
    ...     analyze(None)
    ... except SpecError as exc:
    ...     print(exc)
    expected a spec: a path, a shipped name or what inceptdsl.load() returns, found None
    """
    from .pipeline import analyze as _analyze

    return _analyze(_spec(spec), depth=_depth(depth))


def compile(spec: Any, backend: str = "torch", optimize: str | None = None,  # noqa: A001
            weights: str | None = None) -> str | bytes:
    """Generated source code for ``torch`` or ``flax``; the serialized model for ``onnx``
    (initializers from ``weights``, a ``.safetensors``/``.npz`` state_dict, if given)."""
    from .pipeline import compile_source

    return compile_source(_spec(spec), backend, optimize=optimize, weights=weights)


def build(spec: Any, backend: str = "torch", optimize: str | None = None, **overrides: Any):
    """The model, built by executing the generated source in memory."""
    from .codegen import build as _build

    return _build(_spec(spec), backend, optimize=optimize, **overrides)


def render(spec: Any, path: str | Path, depth: int | None = None) -> Path:
    """Draw the architecture to ``path`` (svg, png, pdf, dot or an interactive html page,
    from the suffix)."""
    from .page import render_any

    if not isinstance(path, (str, Path)):
        raise UsageError(f"render: expected an output path, found {_kind(path)}")
    return render_any(_spec(spec), Path(path), depth=_depth(depth, allow_none=True))


def __getattr__(name: str) -> Any:
    """``inceptdsl.weights`` (weight import) is loaded on first use."""
    if name == "weights":
        import importlib

        return importlib.import_module(".weights", __name__)
    raise AttributeError(f"module 'inceptdsl' has no attribute '{name}'")
