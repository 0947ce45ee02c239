"""The shipped specs with their headline figures (``inceptdsl list``).

>>> entries = {e["name"]: e for e in catalog()}
>>> entries["inception_v3"]["params"]
27161264
"""

from __future__ import annotations

from typing import Any

from .loader import load, shipped
from .pipeline import analyze


def catalog() -> list[dict[str, Any]]:
    """One entry per shipped spec (aliases listed with their spec, not repeated)."""
    files = shipped()
    entries = []
    for name, path in sorted(files.items()):
        if path.stem != name:
            continue
        spec = load(path)
        report = analyze(spec)
        aliases = [a for a, p in files.items() if p == path and a != name]
        entries.append({
            "name": name, "file": path.name, "description": spec.description,
            "paper": spec.paper, "reference": spec.reference, "input": spec.input,
            "output": report.output, "params": report.params, "buffers": report.buffers,
            "macs": report.macs, "flops": report.flops, "aliases": aliases,
        })
    return entries
