"""examples/: the digits training script on both backends, single process and data parallel."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT, run_cli

SCRIPT = ROOT / "examples" / "train_digits.py"
SPEC = ROOT / "examples" / "mini_inception.yaml"


def run(*args: str, timeout: int = 240) -> str:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def accuracy(out: str) -> float:
    return float(re.search(r"^test accuracy: (\d\.\d+)$", out, re.M).group(1))


def checksums(out: str) -> list[str]:
    return re.findall(r"^(?:rank|device) \d+ param checksum: (\S+)$", out, re.M)


def test_example_spec_checks_and_is_small():
    res = run_cli("check", str(SPEC))
    assert res.code == 0, res.err
    assert "output 10" in res.out


def test_torch_example_end_to_end_reaches_95_percent():
    out = run(str(SCRIPT), "--backend", "torch")
    assert re.search(r"^epoch 1/12 ", out, re.M)
    assert accuracy(out) >= 0.95


def test_torch_ddp_replicas_stay_identical():
    out = run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
              str(SCRIPT), "--backend", "torch", "--steps", "5")
    sums = checksums(out)
    assert len(sums) == 2 and sums[0] == sums[1], out
    assert "replicas identical: True (2 ranks)" in out
    assert out.count("test accuracy:") == 1  # printed by rank 0 only


def test_flax_example_trains():
    out = run(str(SCRIPT), "--backend", "flax", "--epochs", "1")
    assert accuracy(out) > 0.3


def test_flax_sharded_replicas_stay_identical():
    out = run(str(SCRIPT), "--backend", "flax", "--devices", "2", "--steps", "5")
    sums = checksums(out)
    assert len(sums) == 2 and sums[0] == sums[1], out
    assert "replicas identical: True (2 devices)" in out
