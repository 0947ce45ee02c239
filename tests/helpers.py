"""Helpers shared by the parity tests (torch, flax, optimizer)."""

from __future__ import annotations


def randomize_bn(model) -> None:
    """Non-trivial BN statistics and affine parameters, so BN mistakes show up."""
    import torch

    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            if m.track_running_stats:
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            if m.weight is not None:  # None for a shift-only BN (scale=false)
                m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            if m.bias is not None:
                m.bias.data.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)


def relative_diff(a, b) -> float:
    """Largest absolute difference relative to the largest magnitude of ``a``.

    Works for torch tensors, jax and numpy arrays alike (compared in float64).
    """
    import numpy as np

    a, b = (np.asarray(v.detach() if hasattr(v, "detach") else v, np.float64) for v in (a, b))
    return float(np.abs(a - b).max() / np.abs(a).max())


def ruff_report(source: str, path) -> str:
    """``ruff check --isolated`` on generated source: empty when clean, else its report."""
    import subprocess
    import sys
    from pathlib import Path

    path = Path(path)
    path.write_text(source)
    ruff = Path(sys.executable).parent / "ruff"
    proc = subprocess.run([str(ruff), "check", "--isolated", str(path)], capture_output=True,
                          text=True)
    return "" if proc.returncode == 0 else proc.stdout


def top_level_imports(source: str) -> set[str]:
    """The root packages a generated file imports."""
    return {line.split()[1].split(".")[0] for line in source.splitlines()
            if line.startswith(("import ", "from "))}


def compiled_with_hash_seeds(backend: str, tmp_path, seeds=("1", "2")) -> list[bytes]:
    """``inceptdsl compile inception_v3`` once per PYTHONHASHSEED: the bytes of each file."""
    import os
    import subprocess
    import sys

    outputs = []
    for seed in seeds:
        out = tmp_path / f"v3_{backend}_{seed}.py"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "inceptdsl.cli", "compile", "inception_v3",
                        "--backend", backend, "-o", str(out)], check=True, env=env)
        outputs.append(out.read_bytes())
    return outputs
