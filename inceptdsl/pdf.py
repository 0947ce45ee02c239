"""A small vector PDF writer for graphviz layouts (``-Tjson`` xdot drawing operations).

``graphviz-pure`` (the pip-installable layout engine) writes svg and png but not pdf; this
module turns its laid-out JSON into a vector PDF with the standard Helvetica and Times
fonts, whose metrics match the Arimo and Tinos fonts the engine measures text with. The
system ``dot`` writes PDF itself and does not need this.

>>> doc = {"bb": "0,0,20,10", "objects": [], "edges": [],
...        "_draw_": [{"op": "C", "color": "#ff0000"},
...                   {"op": "P", "points": [[0, 0], [20, 0], [20, 10]]}]}
>>> pdf = xdot_to_pdf(doc)
>>> pdf[:8], pdf.rstrip().endswith(b"%%EOF")
(b'%PDF-1.4', True)
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

KAPPA = 0.5522847498
DRAW_KEYS = ("_draw_", "_ldraw_", "_hdraw_", "_tdraw_", "_hldraw_", "_tldraw_")
NAMED = {"black": (0, 0, 0), "white": (1, 1, 1), "red": (1, 0, 0), "green": (0, 0.5, 0),
         "blue": (0, 0, 1), "gray": (0.75, 0.75, 0.75), "grey": (0.75, 0.75, 0.75),
         "lightgrey": (0.827, 0.827, 0.827), "lightgray": (0.827, 0.827, 0.827)}
FONTS = {("sans", False): "Helvetica", ("sans", True): "Helvetica-Bold",
         ("serif", False): "Times-Roman", ("serif", True): "Times-Bold",
         ("mono", False): "Courier", ("mono", True): "Courier-Bold"}


def color(value: str) -> tuple[float, float, float] | None:
    """``'#ff8000'`` -> ``(1.0, 0.5, 0.0)``; fully transparent or ``none`` -> ``None``.

    >>> color("#ff000080"), color("#00000000"), color("white")
    ((1.0, 0.0, 0.0), None, (1, 1, 1))
    """
    value = value.strip().lower()
    if value in ("none", "transparent", "invis"):
        return None
    if value.startswith("#") and len(value) in (7, 9):
        if len(value) == 9 and value[7:] == "00":
            return None
        return tuple(int(value[i:i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore
    return NAMED.get(value, (0, 0, 0))


def font_name(face: str, bold: bool) -> str:
    low = face.lower()
    family = "mono" if "courier" in low or "mono" in low else (
        "serif" if "times" in low or "serif" in low and "sans" not in low else "sans")
    return FONTS[(family, bold or "bold" in low)]


def _n(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


@dataclass
class Pen:
    """The drawing state of the xdot operations."""

    stroke: tuple | None = (0, 0, 0)
    fill: tuple | None = (0, 0, 0)
    dash: str = "[] 0 d"
    width: float = 1.0
    size: float = 14.0
    face: str = "Times-Roman"
    bold: bool = False


class Canvas:
    """Collects PDF content-stream operators for xdot operations."""

    def __init__(self) -> None:
        self.ops: list[str] = []
        self.fonts: dict[str, str] = {}
        self.pen = Pen()

    def run(self, ops: list[dict]) -> None:
        self.pen = Pen()
        for op in ops:
            getattr(self, "op_" + ("upper_" if op["op"].isupper() else "") + op["op"].lower(),
                    lambda _op: None)(op)

    # state
    def op_c(self, op: dict) -> None:
        self.pen.stroke = color(op.get("color", "black"))

    def op_upper_c(self, op: dict) -> None:
        self.pen.fill = color(op.get("color", "black"))

    def op_s(self, op: dict) -> None:
        style = op.get("style", "")
        if style == "dashed":
            self.pen.dash = "[5 2] 0 d"
        elif style == "dotted":
            self.pen.dash = "[1 5] 0 d"
        elif style in ("solid", "rounded", "filled"):
            self.pen.dash = "[] 0 d"
        elif style == "bold":
            self.pen.width = 2.0
        elif style.startswith("setlinewidth("):
            self.pen.width = float(style[len("setlinewidth("):-1] or 1)

    def op_upper_f(self, op: dict) -> None:
        self.pen.size, self.pen.face = float(op.get("size", 14)), op.get("face", "Times-Roman")

    def op_t(self, op: dict) -> None:
        self.pen.bold = bool(int(op.get("fontchar", 0)) & 1)

    # shapes
    def _style(self) -> None:
        pen = self.pen
        if pen.stroke:
            self.ops.append("{} {} {} RG".format(*map(_n, pen.stroke)))
        if pen.fill:
            self.ops.append("{} {} {} rg".format(*map(_n, pen.fill)))
        self.ops.append(f"{_n(pen.width)} w {pen.dash}")

    def _paint(self, path: list[str], fill: bool, close: bool) -> None:
        stroke = self.pen.stroke is not None
        fill = fill and self.pen.fill is not None
        if not (stroke or fill):
            return
        self._style()
        self.ops += path
        self.ops.append(("b" if close else "B") if fill and stroke else "f" if fill else
                        ("s" if close else "S"))

    def _poly(self, points: list, fill: bool, close: bool) -> None:
        (x0, y0), rest = points[0], points[1:]
        self._paint([f"{_n(x0)} {_n(y0)} m"] + [f"{_n(x)} {_n(y)} l" for x, y in rest],
                    fill, close)

    def op_upper_p(self, op: dict) -> None:
        self._poly(op["points"], True, True)

    def op_p(self, op: dict) -> None:
        self._poly(op["points"], False, True)

    def op_l(self, op: dict) -> None:
        self._poly(op["points"], False, False)

    def _bezier(self, points: list, fill: bool) -> None:
        (x0, y0) = points[0]
        path = [f"{_n(x0)} {_n(y0)} m"]
        for i in range(1, len(points) - 2, 3):
            (a, b), (c, d), (e, f) = points[i:i + 3]
            path.append(f"{_n(a)} {_n(b)} {_n(c)} {_n(d)} {_n(e)} {_n(f)} c")
        self._paint(path, fill, fill)

    def op_upper_b(self, op: dict) -> None:
        self._bezier(op["points"], True)

    def op_b(self, op: dict) -> None:
        self._bezier(op["points"], False)

    def _ellipse(self, op: dict, fill: bool) -> None:
        (x, y), (rx, ry) = op["rect"][:2], op["rect"][2:]
        kx, ky = rx * KAPPA, ry * KAPPA
        pts = [(x + rx, y), (x + rx, y + ky), (x + kx, y + ry), (x, y + ry), (x - kx, y + ry),
               (x - rx, y + ky), (x - rx, y), (x - rx, y - ky), (x - kx, y - ry), (x, y - ry),
               (x + kx, y - ry), (x + rx, y - ky), (x + rx, y)]
        self._bezier([list(p) for p in pts], True) if fill else self._bezier(
            [list(p) for p in pts], False)

    def op_upper_e(self, op: dict) -> None:
        self._ellipse(op, True)

    def op_e(self, op: dict) -> None:
        self._ellipse(op, False)

    def op_upper_t(self, op: dict) -> None:
        if self.pen.stroke is None:
            return
        name = font_name(self.pen.face, self.pen.bold)
        ref = self.fonts.setdefault(name, f"F{len(self.fonts) + 1}")
        (x, y), width = op["pt"], float(op.get("width", 0))
        x -= {"c": width / 2, "r": width}.get(op.get("align", "l"), 0)
        text = op["text"].encode("cp1252", "replace")
        escaped = text.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
        self.ops.append("{} {} {} rg".format(*map(_n, self.pen.stroke)))
        self.ops.append(f"BT /{ref} {_n(self.pen.size)} Tf {_n(x)} {_n(y)} Td ("
                        + escaped.decode("latin-1") + ") Tj ET")


def draw_order(doc: dict) -> list[list[dict]]:
    """Drawing lists in painting order: graph, clusters, edges, then nodes on top."""
    objects = doc.get("objects", [])
    clusters = [o for o in objects if "nodes" in o or "edges" in o]
    nodes = [o for o in objects if o not in clusters]
    out = []
    for item in [doc, *clusters, *doc.get("edges", []), *nodes]:
        out += [item[k] for k in DRAW_KEYS if isinstance(item.get(k), list)]
    return out


def xdot_to_pdf(doc: dict) -> bytes:
    """A laid-out graph (graphviz ``-Tjson``, parsed) -> the bytes of a one-page PDF."""
    x0, y0, x1, y1 = (float(v) for v in doc["bb"].split(","))
    canvas = Canvas()
    for ops in draw_order(doc):
        canvas.run(ops)
    content = zlib.compress("\n".join(canvas.ops).encode("latin-1"), 9)
    fonts = " ".join(f"/{ref} {5 + i} 0 R" for i, ref in enumerate(canvas.fonts.values()))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (f"<< /Type /Page /Parent 2 0 R /MediaBox [{_n(x0)} {_n(y0)} {_n(x1)} {_n(y1)}] "
         f"/Resources << /Font << {fonts} >> >> /Contents 4 0 R >>").encode(),
        f"<< /Length {len(content)} /Filter /FlateDecode >>\nstream\n".encode()
        + content + b"\nendstream",
    ] + [f"<< /Type /Font /Subtype /Type1 /BaseFont /{name} /Encoding /WinAnsiEncoding >>"
         .encode() for name in canvas.fonts]
    return _assemble(objects)


def _assemble(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    return bytes(out)


def xdot_json_to_pdf(data: bytes) -> bytes:
    """Graphviz ``-Tjson`` output bytes -> PDF bytes."""
    return xdot_to_pdf(json.loads(data))
