"""The PyTorch backend: ``render(plan) -> source``; see :mod:`.generator`."""

from __future__ import annotations

from inceptdsl.plan import NetworkPlan


def render(plan: NetworkPlan, optimize: str | None = None) -> str:
    """Source of a standalone PyTorch model file for a planned network."""
    if optimize == "inference":
        from .optimize import InferenceGenerator

        return InferenceGenerator(plan).render()
    from .generator import TorchGenerator

    return TorchGenerator(plan).render()
