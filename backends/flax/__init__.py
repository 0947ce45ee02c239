"""The Flax (flax.nnx) backend: ``render(plan) -> source``; see :mod:`.generator`."""

from __future__ import annotations

from inceptdsl.plan import NetworkPlan


def render(plan: NetworkPlan) -> str:
    """Source of a standalone flax.nnx model file for a planned network."""
    from .generator import FlaxGenerator

    return FlaxGenerator(plan).render()
