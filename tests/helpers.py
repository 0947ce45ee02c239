"""Helpers shared by the parity tests (torch, flax, optimizer)."""

from __future__ import annotations


def randomize_bn(model) -> None:
    """Non-trivial BN statistics and affine parameters, so BN mistakes show up."""
    import torch

    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.data.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)


def relative_diff(a, b) -> float:
    """Largest absolute difference relative to the largest magnitude of ``a``.

    Works for torch tensors, jax and numpy arrays alike (compared in float64).
    """
    import numpy as np

    a, b = (np.asarray(v.detach() if hasattr(v, "detach") else v, np.float64) for v in (a, b))
    return float(np.abs(a - b).max() / np.abs(a).max())
