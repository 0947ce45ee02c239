"""The pipeline: every stage from a spec reference to generated code, in order.

=============  ==========================================================================
``load``       the file (YAML or DSL) -> a :class:`~inceptdsl.spec.Spec`: ``extends``
               merged, ``--set`` overrides applied, the top level validated
``elaborate``  the one walk (:mod:`inceptdsl.elaborate`) with concrete values -> the IR
               graph and scope tree; ``shapes`` are inferred node by node as it grows
``cost``       params, buffers, MACs, FLOPs, activations on every node
``lint``       the IR's invariants (acyclic, ordered, every node shaped)
``plan``       the same walk with symbolic values -> one class plan per block definition
``render``     a backend renders the plan as source
=============  ==========================================================================

The commands call these functions and nothing else: ``summary``, ``render`` and ``diff``
read :func:`analyze`; ``check`` runs :func:`check`, which is :func:`analyze` plus
:func:`plan`, so a spec that ``check`` accepts is one that ``compile`` renders for every
backend; ``compile`` runs :func:`compile_source`.

>>> spec = load("googlenet")
>>> report = check(spec)
>>> report.params, report.output
(13378280, [1000])
>>> "class Inception(nn.Module):" in compile_source(spec, "torch")
True
"""

from __future__ import annotations

import importlib
from typing import Any

from .analysis import Report, summarize
from .errors import UsageError
from .expand import Network, expand
from .loader import load as load_spec
from .passes.cost import annotate
from .passes.lint import lint
from .plan import NetworkPlan, plan_network
from .spec import Spec

STAGES = ("load", "elaborate", "shapes", "cost", "lint", "plan", "render")
BACKENDS = ("torch", "flax", "onnx")
OPTIMIZATIONS = {"torch": ("inference",), "flax": (), "onnx": ("inference",)}


def load(ref: Any, overrides: dict[str, Any] | None = None) -> Spec:
    """Stage ``load``: a path or shipped name, with ``--set`` overrides, as a Spec."""
    return load_spec(ref, overrides or {})


def elaborate(spec: Spec) -> Network:
    """Stages ``elaborate`` and ``shapes``: the IR with every node's shape."""
    return expand(spec)


def analyze(spec: Spec, depth: int = 1) -> Report:
    """Stages up to ``lint``: shapes and exact costs, rows ``depth`` blocks deep."""
    net = elaborate(spec)
    annotate(net.graph)
    lint(net.graph)
    return summarize(net, depth)


def plan(spec: Spec) -> NetworkPlan:
    """Stage ``plan``: one class per block definition, backend-neutral."""
    return plan_network(spec)


def check(spec: Spec) -> Report:
    """Everything ``compile`` does short of rendering text: analysis, then the plan."""
    report = analyze(spec)
    plan(spec)
    return report


def compile_source(spec: Spec, backend: str, optimize: str | None = None,
                   weights: str | None = None) -> str | bytes:
    """All stages: the generated source for torch or flax; for onnx the serialized model
    (bytes), with the initializers from ``weights`` (a ``.safetensors`` or ``.npz``
    state_dict) if given."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend '{backend}' (known: {', '.join(BACKENDS)})")
    if optimize is not None and optimize not in OPTIMIZATIONS[backend]:
        raise UsageError(f"--optimize {optimize} is not available for the {backend} backend")
    if weights is not None and backend != "onnx":
        raise UsageError("--weights applies to --backend onnx (the generated torch and flax "
                         "models load a state_dict themselves)")
    report = analyze(spec)  # every spec error is reported before any code is produced
    if backend == "onnx":
        return _onnx(spec, optimize, weights, report.network.graph)
    module = importlib.import_module(f"inceptdsl.backends.{backend}")
    if optimize:
        return module.render(plan(spec), optimize=optimize)
    return module.render(plan(spec))


def _onnx(spec: Spec, optimize: str | None, weights: str | None, graph: Any) -> bytes:
    """The onnx backend lowers the analysed IR itself (no plan): the serialized model."""
    try:
        module = importlib.import_module("inceptdsl.backends.onnx")
        import onnx  # noqa: F401
    except ImportError:
        raise UsageError("the onnx backend needs the 'onnx' package "
                         "(pip install 'inceptdsl[deploy]')") from None
    from .state import read_state

    state = read_state(weights) if weights is not None else None
    return module.render(spec, state, optimize=optimize, graph=graph)
