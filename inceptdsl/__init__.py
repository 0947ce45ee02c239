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

__all__ = ["load", "analyze", "compile", "build", "render", "SpecError", "__version__"]

from .errors import SpecError  # noqa: E402


def load(ref: str | Path, set: dict[str, Any] | None = None):  # noqa: A002
    """Load a spec by path or shipped name, with parameter overrides."""
    from .loader import load as _load

    return _load(ref, set or {})


def _spec(spec: Any):
    return load(spec) if isinstance(spec, (str, Path)) else spec


def analyze(spec: Any, depth: int = 1):
    """Shapes and exact costs: ``.params .buffers .macs .flops .shapes .blocks``."""
    from .analysis import analyze as _analyze

    return _analyze(_spec(spec), depth=depth)


def compile(spec: Any, backend: str = "torch", optimize: str | None = None,  # noqa: A001
            weights: str | None = None) -> str | bytes:
    """Generated source code for ``torch`` or ``flax``; the serialized model for ``onnx``
    (initializers from ``weights``, a ``.safetensors``/``.npz`` state_dict, if given)."""
    from .codegen import generate

    return generate(_spec(spec), backend, optimize=optimize, weights=weights)


def build(spec: Any, backend: str = "torch", optimize: str | None = None, **overrides: Any):
    """The model, built by executing the generated source in memory."""
    from .codegen import build as _build

    return _build(_spec(spec), backend, optimize=optimize, **overrides)


def render(spec: Any, path: str | Path, depth: int | None = None) -> Path:
    """Draw the architecture to ``path`` (svg, png, pdf, dot or an interactive html page,
    from the suffix)."""
    from .page import render_any

    return render_any(_spec(spec), Path(path), depth=depth)


def __getattr__(name: str) -> Any:
    """``inceptdsl.weights`` (weight import) is loaded on first use."""
    if name == "weights":
        import importlib

        return importlib.import_module(".weights", __name__)
    raise AttributeError(f"module 'inceptdsl' has no attribute '{name}'")
