"""Shared helpers of the benchmark scripts: machine description, timing, report sections.

>>> median([3.0, 1.0, 2.0])
2.0
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path


def median(values: list[float]) -> float:
    """The median of some timings."""
    return statistics.median(values)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def machine(torch_version: str | None = None) -> str:
    """One line describing where the numbers were taken.

    >>> "nproc" in machine("2.0")
    True
    """
    parts = [f"nproc {os.cpu_count()}", f"CPU {cpu_model()}",
             f"Python {platform.python_version()}"]
    if torch_version:
        parts.append(f"torch {torch_version}")
    return ", ".join(parts)


def interleaved(jobs: dict[str, Callable[[], object]], repeats: int,
                warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each job, the jobs taking turns (fair on a noisy machine).

    >>> times = interleaved({"a": lambda: None}, repeats=3, warmup=0)
    >>> len(times["a"])
    3
    """
    for _ in range(warmup):
        for job in jobs.values():
            job()
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    return times


def write_section(path: str, name: str, text: str) -> None:
    """Replace (or append) the section ``name`` of a markdown report, between markers.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "b.md"
    ...     write_section(str(p), "x", "alpha")
    ...     write_section(str(p), "x", "beta")
    ...     "beta" in p.read_text() and "alpha" not in p.read_text()
    True
    """
    start, end = f"<!-- {name}: start -->", f"<!-- {name}: end -->"
    file = Path(path)
    old = file.read_text() if file.exists() else HEADER
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in old and end in old:
        new = old[:old.index(start)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    file.write_text(new)
    print(f"wrote section '{name}' of {path}", file=sys.stderr)


HEADER = """# Benchmarks

Produced by the scripts in `benchmarks/` (`make bench`, or each script with
`--write docs/benchmarks.md`); nothing here is typed by hand. Every table comes from one
run of one script: the candidates take turns (interleaved), and the figures are medians,
so the ratios compare numbers taken under the same machine load. The machine is shared
and noisy: absolute times vary between runs, the ratios within one run are what counts.

`--optimize inference` (backends/torch/optimize.py) folds every conv -> BN chain into one
conv, fuses sibling conv chains that read the same tensor with the same geometry into one
conv followed by a split, runs activations and weights channels_last, and calls a oneDNN
conv+ReLU kernel on CPU (float32). The folded weights are non-persistent buffers computed
on `eval()` and after `load_state_dict`, so the model loads the plain model's (and
torchvision's) `state_dict` with `strict=True`.
"""
