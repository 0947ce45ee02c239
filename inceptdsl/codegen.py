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

BACKENDS = ("torch", "flax", "onnx")
OPTIMIZATIONS = {"torch": ("inference",), "flax": (), "onnx": ("inference",)}


def generate(spec: Spec, backend: str, optimize: str | None = None,
             weights: str | None = None) -> str | bytes:
    """Validate the spec (shapes, costs) and render it for a backend.

    Source text for torch and flax; for onnx the serialized model (bytes), with the
    initializers from ``weights`` (a ``.safetensors`` or ``.npz`` state_dict) if given.
    """
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend '{backend}' (known: {', '.join(BACKENDS)})")
    if optimize is not None and optimize not in OPTIMIZATIONS[backend]:
        raise UsageError(f"--optimize {optimize} is not available for the {backend} backend")
    if weights is not None and backend != "onnx":
        raise UsageError("--weights applies to --backend onnx (the generated torch and flax "
                         "models load a state_dict themselves)")
    analyze(spec)  # every spec error is reported before any code is produced
    if backend == "onnx":
        return _onnx(spec, optimize, weights)
    module = importlib.import_module(f"inceptdsl.backends.{backend}")
    if optimize:
        return module.render(plan_network(spec), optimize=optimize)
    return module.render(plan_network(spec))


def _onnx(spec: Spec, optimize: str | None, weights: str | None) -> bytes:
    try:
        module = importlib.import_module("inceptdsl.backends.onnx")
        import onnx  # noqa: F401
    except ImportError:
        raise UsageError("the onnx backend needs the 'onnx' package "
                         "(pip install 'inceptdsl[deploy]')") from None
    from .state import read_state

    state = read_state(weights) if weights is not None else None
    return module.render(spec, state, optimize=optimize)


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
