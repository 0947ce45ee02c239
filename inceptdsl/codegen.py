"""Code generation entry points: ``generate`` (source) and ``build`` (a live model).

``build`` executes exactly the source that ``generate`` returns, so there is one
implementation, not two.

>>> from inceptdsl.loader import load
>>> source = generate(load("googlenet_torchvision"), "torch")
>>> source.count("class "), "def create_model(" in source
(4, True)
"""

from __future__ import annotations

import linecache
import sys
import types
from typing import Any

from .errors import UsageError
from .pipeline import BACKENDS, OPTIMIZATIONS, compile_source
from .spec import Spec

__all__ = ["BACKENDS", "OPTIMIZATIONS", "build", "generate", "load_source"]


def generate(spec: Spec, backend: str, optimize: str | None = None,
             weights: str | None = None) -> str | bytes:
    """Validate the spec and render it for a backend (all the stages; see
    :func:`inceptdsl.pipeline.compile_source`)."""
    return compile_source(spec, backend, optimize=optimize, weights=weights)


def load_source(source: str, name: str) -> types.ModuleType:
    """Execute generated source as a fresh module (registered so pickling/scripting work)."""
    module = types.ModuleType(name)
    module.__file__ = f"<inceptdsl:{name}>"
    sys.modules[name] = module
    # inspect (and so torch.jit.script) reads source through linecache
    linecache.cache[module.__file__] = (len(source), None, source.splitlines(True),
                                        module.__file__)
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102
    return module


_COUNTER = [0]


def build(spec: Spec, backend: str = "torch", optimize: str | None = None,
          **overrides: Any) -> Any:
    """Generate, execute and instantiate: ``create_model(**overrides)``."""
    if backend == "onnx":
        raise UsageError("an ONNX model is not built in Python; run it with "
                         "inceptdsl.deploy.session(spec, runtime)")
    source = generate(spec, backend, optimize=optimize)
    _COUNTER[0] += 1
    module = load_source(source, f"inceptdsl_generated_{spec.name}_{_COUNTER[0]}")
    return module.create_model(**overrides)
