"""Architecture diagrams: the block tree drawn with graphviz, collapsed and folded.

Every block instance is a cluster; blocks at or below ``depth`` are collapsed into one node
labelled with their path, block type and arguments, output shape, params and MACs; runs of
consecutive identical blocks (same type, same bound arguments, same shapes, each feeding
only the next) are folded into one node or cluster marked ``x N``. Edges carry the tensor
shape; nodes are coloured by op kind, with a legend; side outputs (aux heads) are dashed.

Depth counts block levels: ``depth=1`` draws the top-level blocks as single nodes,
``depth=2`` opens them and collapses the blocks inside, and so on. Without ``depth`` the
deepest level whose picture has at most :data:`READABLE_NODES` nodes is drawn (at least 1),
so small networks come out in full and large ones as one node per top-level block.

The DOT source depends only on the spec (no dict order or ``id()``), so it is byte-for-byte
deterministic. Layout uses the system ``dot`` if there is one, else ``graphviz-pure`` (a
pip-installed port), so ``pip install inceptdsl`` alone renders svg, png and pdf.

>>> from inceptdsl.loader import load
>>> pic = picture(load("googlenet"), depth=1)
>>> len(pic.units), pic.depth, pic.full_depth
(28, 1, 3)
>>> to_dot(pic).startswith("digraph")
True

Regenerate the gallery with ``python -m inceptdsl.diagram --gallery docs/gallery``.
"""

from __future__ import annotations

import argparse
import html
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .expand import Network
from .ir import Graph, Scope
from .ops import OPS
from .passes.cost import totals
from .pipeline import analyze
from .spec import Spec

FORMATS = ("svg", "png", "pdf", "dot")
READABLE_NODES = 60
LAYOUT_TIMEOUT_S = 300
FONT = "Helvetica"

# fill colours per op kind (ColorBrewer pastels), and the legend's wording
KIND_STYLE: dict[str, tuple[str, str]] = {
    "conv": ("#9ecae1", "convolution"),
    "norm": ("#c7e9c0", "normalisation"),
    "act": ("#fdd0a2", "activation"),
    "pool": ("#fcbba1", "pooling"),
    "merge": ("#fff3a0", "concat / add"),
    "linear": ("#bcbddc", "fully connected"),
    "reg": ("#e5e5e5", "dropout"),
    "reshape": ("#f2f2f2", "reshape / identity"),
    "io": ("#ffffff", "input / output"),
    "other": ("#ffffff", "other"),
}

# collapsed blocks: one fill per block type, in order of first appearance
BLOCK_FILLS = ("#dcdcf2", "#d3ebe4", "#f4dde8", "#e8e2cc", "#dbe7f5", "#e8f1cf", "#f1e0cf",
               "#e3d6ec")


def fill_of(pic: Picture, kind: str) -> str:
    """The fill colour of a unit kind (``block:NAME`` kinds take the block palette)."""
    if kind.startswith("block:"):
        return BLOCK_FILLS[pic.block_types.index(kind[6:]) % len(BLOCK_FILLS)]
    return KIND_STYLE.get(kind, KIND_STYLE["other"])[0]


@dataclass
class Unit:
    """One drawn node: an op, a collapsed block or a folded run of blocks."""

    key: str
    kind: str
    label: str
    order: int
    side: bool = False


@dataclass
class Cluster:
    """An opened block instance (or folded run of them) and what is drawn inside it."""

    key: str
    label: str
    side: bool = False
    units: list[str] = field(default_factory=list)
    children: list[Cluster] = field(default_factory=list)


@dataclass
class Picture:
    """What to draw: units, clusters and shape-labelled edges, all in a stable order."""

    name: str
    depth: int
    full_depth: int
    units: dict[str, Unit]
    root: Cluster
    edges: list[tuple[str, str, str, bool]]  # (from, to, shape label, side)
    block_types: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ the block tree


def block_levels(scope: Scope) -> int:
    """How many levels of blocks nest below ``scope`` (named sequences do not count).

    >>> from inceptdsl.loader import load
    >>> block_levels(analyze(load("inception_v3")).network.root)
    2
    """
    below = max((block_levels(c) for c in scope.children), default=0)
    return below + 1 if scope.kind == "block" else below


def items(scope: Scope) -> Iterator[str | Scope]:
    """The scope's own op nodes, then its children, looking through named sequences."""
    yield from scope.nodes
    for child in scope.children:
        if child.kind == "seq":
            yield from items(child)
        else:
            yield child


def consumers(graph: Graph, node_id: str) -> list[str]:
    return sorted(graph.g.successors(node_id))


def entry_sources(graph: Graph, scope: Scope) -> set[str]:
    """Nodes outside ``scope`` that feed it."""
    inside = set(scope.all_nodes())
    return {src for n in inside for src in graph.inputs(n) if src not in inside}


def same_block(graph: Graph, a: Scope, b: Scope) -> bool:
    """Whether ``b`` repeats ``a``: same type, arguments and shapes, fed only by ``a``."""
    if a.kind != "block" or b.kind != "block" or a.type_name != b.type_name:
        return False
    if a.meta.get("args") != b.meta.get("args") or a.side != b.side:
        return False
    if not a.output or not b.output or graph.shape(a.output) != graph.shape(b.output):
        return False
    inside_b = set(b.all_nodes())
    return entry_sources(graph, b) == {a.output} and all(
        c in inside_b for c in consumers(graph, a.output))


def fold(graph: Graph, scopes: list[str | Scope]) -> list[list[str | Scope]]:
    """Group consecutive identical blocks: ``[A, B, B, B, C] -> [[A], [B, B, B], [C]]``."""
    groups: list[list[str | Scope]] = []
    for item in scopes:
        last = groups[-1][-1] if groups else None
        if isinstance(item, Scope) and isinstance(last, Scope) and same_block(graph, last, item):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


# ------------------------------------------------------------------ labels


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def fmt_shape(shape: tuple | list) -> str:
    """``(768, 17, 17)`` -> ``768×17×17``."""
    return "×".join(str(d) for d in shape)


def _pair(value: object) -> str:
    if isinstance(value, (tuple, list)):
        return fmt_shape(value) if len(set(value)) > 1 else f"{value[0]}×{value[0]}"
    return f"{value}×{value}"


def _stride(value: object) -> str:
    if value is None or value in (1, (1, 1), [1, 1]):
        return ""
    if isinstance(value, (tuple, list)):
        return "/" + (str(value[0]) if len(set(value)) == 1 else fmt_shape(value))
    return f"/{value}"


def op_summary(op: str, attrs: dict) -> str:
    """A paper-style op label.

    >>> op_summary("conv2d", {"out": 64, "kernel": (1, 7), "stride": (2, 2), "groups": 1})
    'conv 1×7/2, 64'
    >>> op_summary("maxpool", {"kernel": (3, 3), "stride": (2, 2)})
    'maxpool 3×3/2'
    >>> op_summary("slice", {"start": 0, "stop": 48})
    'channels 0:48'
    """
    if op == "conv2d":
        groups = attrs.get("groups", 1)
        extra = f", groups {groups}" if groups != 1 else ""
        return f"conv {_pair(attrs['kernel'])}{_stride(attrs.get('stride'))}, " \
               f"{attrs['out']}{extra}"
    if op in ("maxpool", "avgpool"):
        return f"{op} {_pair(attrs['kernel'])}{_stride(attrs.get('stride'))}"
    if op == "linear":
        return f"fc {attrs['out']}"
    if op == "dropout":
        return f"dropout {attrs['p']:g}"
    if op == "scale":
        return f"scale {attrs['factor']:g}"
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        return f"{op.split('_')[1]} to {_pair(attrs['size'])}"
    if op == "slice":  # a branch of a split concat: which channels it reads
        return f"channels {attrs['start']}:{attrs['stop']}"
    if op == "drop_path" and attrs["p"]:
        return f"drop_path {attrs['p']:g}"
    if op == "layer_scale":
        return "× gamma"
    return op


def _args(scope: Scope, limit: int = 40) -> str:
    values = [v for k, v in scope.meta.get("args", {}).items() if k != "in_channels"]
    text = ", ".join(_value(v) for v in values)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"({text})" if text else ""


def _value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def local(path: str, prefix: str) -> str:
    """``Mixed_5b.branch1x1`` inside cluster ``Mixed_5b`` -> ``branch1x1``."""
    return path[len(prefix) + 1:] if prefix and path.startswith(prefix + ".") else path


def html_label(title: str, *lines: str, sub: str = "") -> str:
    """An HTML-like graphviz label: a bold title, plain lines and a small grey footer."""
    rows = [f"<b>{_e(title)}</b>"] + [_e(line) for line in lines if line]
    if sub:
        rows.append(f'<font point-size="9" color="#444444">{_e(sub)}</font>')
    return "<" + "<br/>".join(rows) + ">"


def compact(n: int) -> str:
    """Three significant digits with a unit: ``5713216096`` -> ``5.71G``.

    >>> compact(118013952), compact(9472), compact(1000)
    ('118M', '9.47K', '1.00K')
    """
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            value = n / size
            digits = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{digits}f}{unit}"
    return str(n)


def cost_line(graph: Graph, nodes: list[str]) -> str:
    """``'1.04M params, 51.1M MACs'`` for a set of nodes (zero parts left out)."""
    cost = totals(graph, nodes)
    parts = [f"{compact(cost['params'])} params" if cost["params"] else "",
             f"{compact(cost['macs'])} MACs" if cost["macs"] else ""]
    return ", ".join(p for p in parts if p)


# ------------------------------------------------------------------ building the picture


class Builder:
    """Walks the scope tree once and decides, for every op node, which unit draws it."""

    def __init__(self, net: Network, depth: int):
        self.net, self.graph, self.depth = net, net.graph, depth
        self.index = {n: i for i, n in enumerate(self.graph.nodes())}
        self.owner: dict[str, str] = {}
        self.alias: dict[str, str] = {}
        self.units: dict[str, Unit] = {}
        self.clusters = 0

    def build(self) -> Picture:
        root = Cluster("root", "")
        self.walk(self.net.root, 1, root, "")
        units = dict(sorted(self.units.items(), key=lambda kv: kv[1].order))
        full = block_levels(self.net.root) + 1
        types = [u.kind[6:] for u in units.values() if u.kind.startswith("block:")]
        return Picture(self.net.spec.name, self.depth, full, units, root, self.edges(),
                       list(dict.fromkeys(types)))

    def walk(self, scope: Scope, level: int, cluster: Cluster, prefix: str) -> None:
        for group in fold(self.graph, list(items(scope))):
            first = group[0]
            if isinstance(first, str):
                self.op_unit(first, cluster, prefix)
            elif first.kind != "block":
                for node_id in first.all_nodes():
                    self.op_unit(node_id, cluster, prefix)
            elif level >= self.depth:
                self.block_unit(group, cluster, prefix)
            else:
                self.open_block(group, level, cluster, prefix)

    def op_unit(self, node_id: str, cluster: Cluster, prefix: str) -> None:
        data = self.graph.node(node_id)
        kind = OPS[data["op"]].kind
        name = local(node_id, prefix)
        if data["op"] == "input":
            label = html_label("input", fmt_shape(self.graph.shape(node_id)))
        else:
            summary = op_summary(data["op"], data["attrs"])
            plain = ":" in name or name in (data["op"], summary.split(" ")[0])
            label = html_label(summary,
                               sub="" if plain else name)
        self.add_unit(node_id, [node_id], kind, label, data["side"], cluster)

    def block_unit(self, group: list, cluster: Cluster, prefix: str) -> None:
        first, last = group[0], group[-1]
        nodes = [n for s in group for n in s.all_nodes()]
        name = local(first.path, prefix)
        if len(group) > 1:
            name += f" … {local(last.path, prefix)}"
        kind_line = self.describe(first) + (f"  × {len(group)}" if len(group) > 1 else "")
        sub = ", ".join(p for p in (fmt_shape(self.graph.shape(last.output)),
                                    cost_line(self.graph, nodes)) if p)
        label = html_label(name, kind_line, sub=sub)
        self.add_unit(first.path, nodes, f"block:{first.type_name}", label, first.side, cluster)

    def describe(self, block: Scope) -> str:
        """``BasicConv2d: conv 1×7, 128`` for a one-conv block, else ``InceptionC(128)``."""
        weighted = [n for n in block.all_nodes()
                    if OPS[self.graph.node(n)["op"]].kind in ("conv", "linear")]
        if len(weighted) == 1:
            data = self.graph.node(weighted[0])
            return f"{block.type_name}: {op_summary(data['op'], data['attrs'])}"
        return f"{block.type_name}{_args(block)}"

    def open_block(self, group: list, level: int, cluster: Cluster, prefix: str) -> None:
        first, last = group[0], group[-1]
        name = local(first.path, prefix)
        if len(group) > 1:
            name += f" … {local(last.path, prefix)}"
        nodes = [n for s in group for n in s.all_nodes()]
        times = f"  × {len(group)}" if len(group) > 1 else ""
        sub = cost_line(self.graph, nodes)
        self.clusters += 1
        inner = Cluster(f"cluster_{self.clusters}", html_label(
            f"{name}: {first.type_name}{_args(first)}{times}", sub=sub), first.side)
        cluster.children.append(inner)
        self.walk(first, level + 1, inner, first.path)
        for other in group[1:]:
            for node_id in other.all_nodes():
                self.alias[node_id] = first.path + node_id[len(other.path):]

    def add_unit(self, key: str, nodes: list[str], kind: str, label: str, side: bool,
                 cluster: Cluster) -> None:
        ref = f"n{min(self.index[n] for n in nodes)}"
        self.units[ref] = Unit(ref, kind, label, min(self.index[n] for n in nodes), side)
        cluster.units.append(ref)
        for node_id in nodes:
            self.owner[node_id] = ref

    def unit_of(self, node_id: str) -> str | None:
        seen = 0
        while node_id not in self.owner and node_id in self.alias and seen < 64:
            node_id, seen = self.alias[node_id], seen + 1
        return self.owner.get(node_id)

    def edges(self) -> list[tuple[str, str, str, bool]]:
        """Edges between units, deduplicated, back edges of folded runs dropped."""
        out: dict[tuple[str, str], tuple[str, str, str, bool]] = {}
        for dst in self.graph.nodes():
            for src in self.graph.inputs(dst):
                a, b = self.unit_of(src), self.unit_of(dst)
                if a is None or b is None or self.units[a].order >= self.units[b].order:
                    continue
                side = self.graph.node(dst)["side"]
                out.setdefault((a, b), (a, b, fmt_shape(self.graph.shape(src)), side))
        order = {k: u.order for k, u in self.units.items()}
        return sorted(out.values(), key=lambda e: (order[e[0]], order[e[1]]))


def resolve_depth(net: Network, depth: int | None) -> int:
    """The depth to draw: the given one (clamped to full) or the readable default."""
    full = block_levels(net.root) + 1
    if depth is not None:
        if depth < 1:
            raise UsageError(f"--depth {depth}: the depth must be at least 1")
        return min(depth, full)
    best = 1
    for d in range(2, full + 1):
        if len(Builder(net, d).build().units) <= READABLE_NODES:
            best = d
    return best


def picture(spec: Spec, depth: int | None = None) -> Picture:
    """Analyze a spec (the pipeline up to lint), and decide what to draw at ``depth``."""
    net = analyze(spec).network
    builder = Builder(net, resolve_depth(net, depth))
    pic = builder.build()
    add_outputs(pic, builder)
    return pic


def add_outputs(pic: Picture, builder: Builder) -> None:
    """Output pseudo-nodes for the main output and each side output (dashed)."""
    graph = builder.graph
    outs = [("output", graph.output, False)] + [
        (f"{s.name} (training)", s.node, True) for s in graph.side_outputs]
    for i, (name, node_id, side) in enumerate(outs):
        key = f"out{i}"
        shape = fmt_shape(graph.shape(node_id))
        pic.units[key] = Unit(key, "io", html_label(name, shape), len(graph) + i, side)
        pic.root.units.append(key)
        owner = builder.unit_of(node_id)
        if owner is not None:
            pic.edges.append((owner, key, shape, side))


# ------------------------------------------------------------------ DOT


def _attrs(**kw: str) -> str:
    return " ".join(f'{k}={_quote(v)}' for k, v in kw.items())


def _quote(value: str) -> str:
    if value.startswith("<") and value.endswith(">"):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(pic: Picture) -> str:
    """The DOT source of a picture (deterministic: same picture, same bytes)."""
    out = [f"digraph {_quote(pic.name)} {{",
           "  " + "graph [" + _attrs(rankdir="TB", newrank="true", remincross="false",
                                    nodesep="0.25", ranksep="0.35", fontname=FONT,
                                    fontsize="12", labeljust="l", compound="true",
                                    label=legend_label(pic),
                                    labelloc="t") + "];",
           "  node [" + _attrs(shape="box", style="rounded,filled", fontname=FONT,
                               fontsize="11", margin="0.12,0.05", penwidth="0.8") + "];",
           "  edge [" + _attrs(fontname=FONT, fontsize="8", fontcolor="#555555",
                               color="#666666", arrowsize="0.6") + "];"]
    out += _cluster_lines(pic, pic.root, "  ")
    for a, b, shape, side in pic.edges:
        extra = {"style": "dashed"} if side else {}
        out.append(f"  {a} -> {b} [{_attrs(label=' ' + shape, **extra)}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _cluster_lines(pic: Picture, cluster: Cluster, pad: str) -> list[str]:
    lines: list[str] = []
    for key in cluster.units:
        unit = pic.units[key]
        fill = fill_of(pic, unit.kind)
        style = "rounded,filled,dashed" if unit.side else "rounded,filled"
        extra = {"shape": "oval"} if unit.kind == "io" else {}
        attrs = _attrs(label=unit.label, fillcolor=fill, style=style, **extra)
        lines.append(f"{pad}{key} [{attrs}];")
    for child in cluster.children:
        style = "rounded,dashed" if child.side else "rounded"
        lines.append(f"{pad}subgraph {child.key} {{")
        attrs = _attrs(label=child.label, style=style, color="#8c8c8c", bgcolor="#fafafa",
                       fontsize="11")
        lines.append(f"{pad}  graph [{attrs}];")
        lines += _cluster_lines(pic, child, pad + "  ")
        for row in fork_rows(pic, child):
            lines.append(f"{pad}  {{rank=same; {' -> '.join(row)} [style=invis]}}")
        lines.append(f"{pad}}}")
    return lines


def cluster_units(cluster: Cluster) -> list[str]:
    """Every unit drawn in a cluster, nested clusters included."""
    return cluster.units + [u for c in cluster.children for u in cluster_units(c)]


def fork_rows(pic: Picture, cluster: Cluster) -> list[list[str]]:
    """Groups of the cluster's own units fed by one same unit (the starts of parallel
    branches), in branch order: each is drawn as one row, left to right, like the
    papers' figures."""
    own = set(cluster.units)
    rows: dict[str, list[str]] = {}
    for a, b, _, side in pic.edges:
        if b in own and not side:
            rows.setdefault(a, []).append(b)
    out = []
    for row in rows.values():
        row = sorted(set(row), key=lambda u: pic.units[u].order)
        if len(row) > 1:
            out.append(row)
    return out


def legend_label(pic: Picture, per_row: int = 4) -> str:
    """The graph's label: the title, then the colour legend in rows of ``per_row`` cells
    (a label rather than a node, so that it does not stretch the first rank)."""
    kinds = {u.kind for u in pic.units.values()}
    rows = [(fill_of(pic, f"block:{t}"), t, "") for t in pic.block_types]
    rows += [(style[0], style[1], "") for k, style in KIND_STYLE.items() if k in kinds]
    if any(u.side for u in pic.units.values()):
        rows.append(("#ffffff", "side output (training only)", ' style="dashed"'))
    cells = [f'<td bgcolor="{fill}"{extra}><font point-size="8">{_e(text)}</font></td>'
             for fill, text, extra in rows]
    lines = ["<tr>" + "".join(cells[i:i + per_row]) + "</tr>"
             for i in range(0, len(cells), per_row)]
    title = (f'<tr><td border="0" colspan="{per_row}" align="left"><b>{_e(pic.name)}</b>'
             f'  <font point-size="10">depth {pic.depth} of {pic.full_depth}</font></td></tr>')
    return ('<<table border="0" cellborder="1" cellspacing="1" cellpadding="2">'
            f'{title}{"".join(lines)}</table>>')


# ------------------------------------------------------------------ layout and files


def layout_engine() -> str:
    """The layout binary: the system ``dot``, else ``graphviz-pure`` (pip-installed)."""
    found = shutil.which("dot") or shutil.which("graphviz-pure")
    if found:
        return found
    local_bin = Path(sys.executable).parent / "graphviz-pure"
    if local_bin.is_file():
        return str(local_bin)
    raise UsageError("no graphviz layout engine found: install graphviz (the 'dot' "
                     "command) or the 'graphviz-pure' package")


def run_layout(source: str, fmt: str, engine: str | None = None) -> bytes:
    """Lay out DOT source and return the output bytes in ``fmt`` (svg, png, ...)."""
    cmd = [engine or layout_engine(), f"-T{fmt}"]
    try:
        proc = subprocess.run(cmd, input=source.encode("utf-8"), capture_output=True,
                              timeout=LAYOUT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"layout engine {cmd[0]} failed: {exc}") from None
    if proc.returncode != 0 or not proc.stdout:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise UsageError(f"layout engine {cmd[0]} failed (exit {proc.returncode}): "
                         + " ".join(err))
    return proc.stdout


def output_format(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"{path}: unknown output format '{path.suffix or '(none)'}'; "
                         f"use one of {', '.join('.' + f for f in FORMATS)} or .html")
    return fmt


def render_bytes(source: str, fmt: str) -> bytes:
    """DOT source -> file bytes in one of :data:`FORMATS`."""
    if fmt == "dot":
        return source.encode("utf-8")
    engine = layout_engine()
    if fmt == "pdf" and Path(engine).name != "dot":
        from .pdf import xdot_json_to_pdf

        return xdot_json_to_pdf(run_layout(source, "json", engine))
    return run_layout(source, fmt, engine)


def render_file(spec: Spec, path: str | Path, depth: int | None = None) -> Path:
    """Draw ``spec`` to ``path`` (format from the suffix), written atomically.

    >>> import tempfile
    >>> from inceptdsl.loader import load
    >>> out = render_file(load("googlenet"), Path(tempfile.mkdtemp()) / "g.dot", depth=1)
    >>> out.read_text().startswith('digraph "googlenet"')
    True
    """
    from .fileio import write_output

    fmt = output_format(Path(path))
    source = to_dot(picture(spec, depth))
    write_output(path, render_bytes(source, fmt), protect=[spec.path] if spec.path else [])
    return Path(path)


# ------------------------------------------------------------------ gallery

GALLERY_DEPTH = 1


def gallery_specs() -> list[str]:
    """Shipped spec names (not aliases), sorted."""
    from .loader import shipped

    return sorted(name for name, path in shipped().items() if path.stem == name)


def gallery_sources(depth: int = GALLERY_DEPTH) -> dict[str, str]:
    """Name -> DOT source of every shipped spec at the gallery depth."""
    from .loader import load

    return {name: to_dot(picture(load(name), depth)) for name in gallery_specs()}


def gallery_markdown(names: list[str], depth: int = GALLERY_DEPTH) -> str:
    lines = ["# Gallery", "",
             f"Every shipped spec drawn by `inceptdsl render NAME -o NAME.svg --depth {depth}`:",
             "one node per top-level block (identical consecutive blocks folded into one "
             "node marked `× N`), edges labelled with tensor shapes, colours by op kind, "
             "side outputs (aux heads, training only) dashed.", "",
             "Regenerate after changing a spec or the renderer with:", "",
             "```", "python -m inceptdsl.diagram --gallery docs/gallery", "```", "",
             "`tests/test_render.py` checks that the committed `.dot` sources are up to date "
             "(the DOT is deterministic; the SVG bytes depend on the layout engine).",
             "Without `--depth`, `inceptdsl render` draws the deepest level whose picture "
             f"has at most {READABLE_NODES} nodes (at least depth 1).", ""]
    lines += ["Each spec also has an interactive page, `inceptdsl render NAME -o NAME.html`: "
              "click a block to open it down to single layers, hover for exact costs and the "
              "spec line, search paths and kinds (see [cli.md](cli.md#render)). The pages are "
              "generated by the same command and checked up to date by `tests/test_page.py`.",
              ""]
    for name in names:
        lines += [f"## {name}", "", f"![{name}](gallery/{name}.svg)", "",
                  f"[Interactive page](gallery/{name}.html) · "
                  f"[DOT source](gallery/{name}.dot)", ""]
    return "\n".join(lines)


def gallery_svg(source: str) -> bytes:
    """The gallery's SVG of DOT ``source``, always laid out by ``graphviz-pure`` so that the
    committed pictures do not depend on whether a system ``dot`` is installed."""
    engine = shutil.which("graphviz-pure") or str(Path(sys.executable).parent / "graphviz-pure")
    return run_layout(source, "svg", engine)


def write_gallery(folder: Path) -> list[Path]:
    """Write ``NAME.dot``, ``NAME.svg`` and the interactive ``NAME.html`` per shipped spec,
    and ``../gallery.md``."""
    from .fileio import write_output
    from .loader import load
    from .page import page_html

    folder.mkdir(parents=True, exist_ok=True)
    sources = gallery_sources()
    written = []
    for stale in sorted(folder.glob("*.dot")) + sorted(folder.glob("*.svg")) + \
            sorted(folder.glob("*.html")):
        if stale.stem not in sources:
            stale.unlink()
    for name, source in sources.items():
        write_output(folder / f"{name}.dot", source.encode("utf-8"))
        write_output(folder / f"{name}.svg", gallery_svg(source))
        written += [folder / f"{name}.dot", folder / f"{name}.svg"]
        target = folder / f"{name}.html"
        write_output(target, page_html(load(name)))
        written.append(target)
    index = folder.parent / f"{folder.name}.md"
    write_output(index, gallery_markdown(list(sources)))
    return [*written, index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inceptdsl.diagram",
                                     description="Regenerate the diagram gallery.")
    parser.add_argument("--gallery", required=True, metavar="FOLDER")
    args = parser.parse_args(argv)
    for path in write_gallery(Path(args.gallery)):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
