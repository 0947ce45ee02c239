"""Compare two specs block by block: parameters, buffers, MACs and FLOPs deltas.

Rows are matched by block path (``Mixed_5b`` in both specs is the same row); a path only
in the first spec is ``removed``, one only in the second is ``added``. Nothing here imports
torch or jax.

>>> from inceptdsl.loader import load
>>> result = diff_reports(load("inception_v3"), load("inception_v3", {"num_classes": 10}))
>>> result["totals"]["params"]
{'a': 27161264, 'b': 24371444, 'delta': -2789820}
>>> [(r["path"], r["status"], r["params"]["delta"]) for r in result["blocks"]
...  if r["status"] != "same"]
[('AuxLogits', 'changed', -761310), ('fc', 'changed', -2028510)]
"""

from __future__ import annotations

from typing import Any

from .analysis import Report, human
from .ops import fmt_shape
from .pipeline import analyze
from .spec import Spec

TOTAL_KEYS = ("params", "buffers", "macs", "flops")
ROW_KEYS = ("params", "buffers", "macs", "flops")


def diff_reports(spec_a: Spec, spec_b: Spec, depth: int = 1) -> dict[str, Any]:
    """Per-block and total cost deltas from ``spec_a`` to ``spec_b`` (JSON-ready).

    >>> from inceptdsl.loader import load
    >>> r = diff_reports(load("googlenet_torchvision"), load("googlenet_torchvision"))
    >>> r["totals"]["macs"]["delta"], {row["status"] for row in r["blocks"]}
    (0, {'same'})
    """
    a, b = analyze(spec_a, depth=depth), analyze(spec_b, depth=depth)
    return {
        "a": _header(a), "b": _header(b),
        "totals": {key: _delta(getattr(a, key), getattr(b, key)) for key in TOTAL_KEYS},
        "blocks": [_row(ra, rb) for ra, rb in _match(a.blocks, b.blocks)],
        "edits": _edits(spec_a, spec_b),
    }


def _edits(spec_a: Spec, spec_b: Spec) -> list[str]:
    """B's edits of A's body, when B is a variant of A (``["remove Mixed_6e"]``), else []."""
    variant = spec_b.variant
    if variant is None or variant.parent not in (spec_a.name, spec_a.path) or \
            variant.body_items is not None:
        return []
    return [edit.describe() for edit in variant.edits]


def _header(report: Report) -> dict[str, Any]:
    return {"name": report.name, "input": report.input, "output": report.output}


def _delta(a: int | None, b: int | None) -> dict[str, int | None]:
    """``{'a': 3, 'b': 5, 'delta': 2}``; a missing side counts as 0 in the delta."""
    return {"a": a, "b": b, "delta": (b or 0) - (a or 0)}


def _match(rows_a: list[dict], rows_b: list[dict]) -> list[tuple[dict | None, dict | None]]:
    """Pair rows by path, in B's order; a removed A row stands right after the A row before
    it that B still has (or first, if none), as it stood in A.

    >>> A = [{"path": "x"}, {"path": "old"}, {"path": "y"}, {"path": "gone"}]
    >>> B = [{"path": "x"}, {"path": "y"}, {"path": "new"}]
    >>> [(p and p["path"], q and q["path"]) for p, q in _match(A, B)]
    [('x', 'x'), ('old', None), ('y', 'y'), ('gone', None), (None, 'new')]
    >>> [p["path"] for p, _ in _match([{"path": "old"}, {"path": "x"}], [{"path": "x"}])]
    ['old', 'x']
    """
    by_path_a = {r["path"]: r for r in rows_a}
    paths_b = {r["path"] for r in rows_b}
    after: dict[str | None, list[dict]] = {}  # kept A path (None: the start) -> removed rows
    anchor = None
    for ra in rows_a:
        if ra["path"] in paths_b:
            anchor = ra["path"]
        else:
            after.setdefault(anchor, []).append(ra)
    pairs: list[tuple[dict | None, dict | None]] = [(ra, None) for ra in after.get(None, [])]
    for rb in rows_b:
        pairs.append((by_path_a.get(rb["path"]), rb))
        pairs += [(ra, None) for ra in after.get(rb["path"], [])]
    return pairs


def _row(ra: dict | None, rb: dict | None) -> dict[str, Any]:
    some = rb if rb is not None else ra
    assert some is not None
    row: dict[str, Any] = {"path": some["path"], "status": _status(ra, rb)}
    row["kind"] = {"a": ra and ra["kind"], "b": rb and rb["kind"]}
    row["output"] = {"a": ra and ra["output"], "b": rb and rb["output"]}
    for key in ROW_KEYS:
        row[key] = _delta(ra and ra[key], rb and rb[key])
    return row


def _status(ra: dict | None, rb: dict | None) -> str:
    if ra is None:
        return "added"
    if rb is None:
        return "removed"
    same = all(ra[k] == rb[k] for k in ("kind", "output", *ROW_KEYS))
    return "same" if same else "changed"


_MARKS = {"same": " ", "changed": "~", "added": "+", "removed": "-"}


def diff_table(result: dict[str, Any]) -> str:
    """The human diff: one row per block (``~`` changed, ``+`` added, ``-`` removed).

    >>> from inceptdsl.loader import load
    >>> spec = load("googlenet_torchvision")
    >>> print(diff_table(diff_reports(spec, spec)).splitlines()[0])
    googlenet_torchvision (3x224x224 -> 1000)  vs  googlenet_torchvision (3x224x224 -> 1000)
    """
    head = ("", "path", "kind", "output", "params", "Δ params", "MACs", "Δ MACs")
    rows = [_cells(r) for r in result["blocks"]]
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(len(head))]
    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    out = [_title(result), *(["edits: " + ", ".join(result["edits"])] if result.get("edits")
                             else []),
           "", _line(head, widths), rule, *(_line(r, widths) for r in rows), rule]
    out += [_total_line(key, result["totals"][key]) for key in TOTAL_KEYS]
    counts = {s: sum(r["status"] == s for r in result["blocks"]) for s in _MARKS}
    out.append(f"blocks: {counts['changed']} changed, {counts['added']} added, "
               f"{counts['removed']} removed, {counts['same']} unchanged")
    return "\n".join(out)


def _title(result: dict[str, Any]) -> str:
    def side(h: dict) -> str:
        return f"{h['name']} ({fmt_shape(h['input'])} -> {fmt_shape(h['output'])})"

    return f"{side(result['a'])}  vs  {side(result['b'])}"


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    kind = _pair(row["kind"]["a"], row["kind"]["b"], str)
    output = _pair(row["output"]["a"], row["output"]["b"], fmt_shape)
    p, m = row["params"], row["macs"]
    return (_MARKS[row["status"]], row["path"], kind, output, f"{_current(p):,}",
            _signed(p["delta"]), f"{_current(m):,}", _signed(m["delta"]))


def _current(d: dict[str, int | None]) -> int:
    """B's value, or A's for a removed row."""
    return d["b"] if d["b"] is not None else d["a"] or 0


def _pair(a: Any, b: Any, show: Any) -> str:
    """One value when both sides agree (or one is missing), else ``a -> b``."""
    if a is None or b is None or a == b:
        return show(b if b is not None else a)
    return f"{show(a)} -> {show(b)}"


def _signed(n: int) -> str:
    return f"{n:+,}" if n else "0"


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) if i < 4 else c.rjust(w)
                     for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()


def _total_line(key: str, d: dict[str, int]) -> str:
    label = {"params": "params", "buffers": "buffers", "macs": "MACs", "flops": "FLOPs"}[key]
    pct = f"  ({d['delta'] / d['a']:+.1%})" if d["a"] else ""
    return (f"{label:<8} {d['a']:>16,} -> {d['b']:>16,}  {_signed(d['delta']):>15}"
            f"  ({human(d['b'])}){pct}")
