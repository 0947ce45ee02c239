"""Code generation entry points: ``generate`` (source) and ``build`` (a live model).

``build`` executes exactly the source that ``generate`` returns, so there is one
implementation, not two.

>>> from inceptdsl.loader import load
>>> source = generate(load("googlenet_torchvision"), "torch")
>>> source.count("class "), "def create_model(" in source
(4, True)
"""

from __future__ import annotations

import importlib
import linecache
import sys
import types
from typing import Any

from .analysis import analyze
from .loader import UsageError
from .plan import plan_network
from .spec import Spec

BACKENDS = ("torch", "flax")
OPTIMIZATIONS = {"torch": ("inference",), "flax": ()}


def generate(spec: Spec, backend: str, optimize: str | None = None) -> str:
    """Validate the spec (shapes, costs) and render it for a backend."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend '{backend}' (known: {', '.join(BACKENDS)})")
    if optimize is not None and optimize not in OPTIMIZATIONS[backend]:
        raise UsageError(f"--optimize {optimize} is not available for the {backend} backend")
    analyze(spec)  # every spec error is reported before any code is produced
    module = importlib.import_module(f"inceptdsl.backends.{backend}")
    if optimize:
        return module.render(plan_network(spec), optimize=optimize)
    return module.render(plan_network(spec))


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
    source = generate(spec, backend, optimize=optimize)
    _COUNTER[0] += 1
    module = load_source(source, f"inceptdsl_generated_{spec.name}_{_COUNTER[0]}")
    return module.create_model(**overrides)
