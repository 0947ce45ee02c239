// inceptdsl interactive architecture page (no dependencies, no network requests).
// The data (#page-data) is the scope tree as flat rows; this script lays out the nodes that
// are visible in the current open/closed state, draws them as absolutely positioned
// elements over an SVG of edges, and handles clicks, keys, hover and search.
"use strict";

const DATA = JSON.parse(document.getElementById("page-data").textContent);
const F = Object.fromEntries(DATA.fields.map((name, i) => [name, i]));
const NODES = DATA.nodes.map((row, id) => ({
  id, path: row[F.path], title: row[F.title], kind: row[F.kind], desc: row[F.desc],
  shape: row[F.shape], params: row[F.params], buffers: row[F.buffers], macs: row[F.macs],
  flops: row[F.flops], src: row[F.src], parent: row[F.parent], colour: row[F.colour],
  side: row[F.side] === 1, auto: row[F.auto] === 1, children: [], depth: 0,
}));
const ROOTS = [];
for (const n of NODES) {
  if (n.parent < 0) ROOTS.push(n.id);
  else { NODES[n.parent].children.push(n.id); n.depth = NODES[n.parent].depth + 1; }
}
const EDGES = [];
for (let i = 0; i < DATA.edges.length; i += 2) EDGES.push([DATA.edges[i], DATA.edges[i + 1]]);

// geometry (px)
const NODE_H = 52, GAP_X = 14, GAP_Y = 30, PAD = 10, HEADER = 30, GUTTER = 22, MIN_W = 104;
const FONT = "12px system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const BOLD = "bold " + FONT;

const open = new Set();
let colourMode = "kind";
let selected = -1;
let hits = [];        // node ids matching the search
let hitCursor = -1;

const $ = (id) => document.getElementById(id);
const canvas = $("canvas"), layer = $("nodes"), wires = $("edges");
const measureCtx = document.createElement("canvas").getContext("2d");

function compact(n) {
  const units = [["T", 1e12], ["G", 1e9], ["M", 1e6], ["K", 1e3]];
  for (const [u, size] of units) {
    if (Math.abs(n) >= size) {
      const v = n / size;
      return v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2) + u;
    }
  }
  return String(n);
}
const grouped = (n) => n.toLocaleString("en-US");
const expandable = (id) => NODES[id].children.length > 0;
const isOpen = (id) => open.has(id) && expandable(id);

function textWidth(text, font) {
  measureCtx.font = font;
  return measureCtx.measureText(text).width;
}

function costLine(n) {
  const parts = [n.shape];
  if (n.params) parts.push(compact(n.params) + " params");
  if (n.macs) parts.push(compact(n.macs) + " MACs");
  return parts.filter(Boolean).join(" · ");
}

function leafSize(n) {
  const w = Math.max(textWidth(n.title, BOLD) + 22, textWidth(n.desc, FONT),
                     textWidth(costLine(n), FONT) * 0.92) + 18;
  return [Math.max(MIN_W, Math.ceil(w)), NODE_H];
}

function headerText(n) {
  return `${n.desc} · ${costLine(n)}`;
}

// ------------------------------------------------------------------ visible graph

// visible node of every node: itself, or its outermost closed ancestor
function representatives() {
  const rep = new Int32Array(NODES.length);
  const visit = (id, above) => {
    const r = above >= 0 ? above : id;
    rep[id] = r;
    const closed = above >= 0 || !isOpen(id);
    for (const c of NODES[id].children) visit(c, closed ? r : -1);
  };
  for (const id of ROOTS) visit(id, -1);
  return rep;
}

// lift a visible edge to the two sibling items of their lowest common container
function lift(a, b) {
  while (NODES[a].depth > NODES[b].depth) a = NODES[a].parent;
  while (NODES[b].depth > NODES[a].depth) b = NODES[b].parent;
  while (NODES[a].parent !== NODES[b].parent) { a = NODES[a].parent; b = NODES[b].parent; }
  return [NODES[a].parent, a, b];
}

function visibleEdges(rep) {
  const seen = new Set(), out = [];
  for (const [s, d] of EDGES) {
    const a = rep[s], b = rep[d];
    if (a === b) continue;
    const key = a * NODES.length + b;
    if (seen.has(key)) continue;
    seen.add(key);
    const [box, ia, ib] = lift(a, b);
    out.push({ from: a, to: b, box, ia, ib, side: NODES[d].side });
  }
  return out;
}

// ------------------------------------------------------------------ layout

// Lays out the items of a container (-1: the page) in rows: an item sits one row below
// the lowest item that feeds it; an open item is itself a box laid out the same way.
function layoutBox(box, items, deps, geo) {
  const rowOf = new Map();
  for (const id of items) rowOf.set(id, 0);
  for (const id of items) {
    for (const src of (deps.get(id) || [])) {
      if (src < id) rowOf.set(id, Math.max(rowOf.get(id), rowOf.get(src) + 1));
    }
  }
  const rows = [];
  for (const id of items) {
    const size = isOpen(id) ? layoutBox(id, NODES[id].children, deps, geo) : leafSize(NODES[id]);
    geo.size.set(id, size);
    const r = rowOf.get(id);
    while (rows.length <= r) rows.push([]);
    rows[r].push(id);
    geo.row.set(id, r);
  }
  const live = rows.filter((r) => r.length);
  live.forEach((r, i) => r.forEach((id) => geo.row.set(id, i)));
  const xs = placeRows(live, deps, geo);
  const heights = live.map((r) => Math.max(...r.map((id) => geo.size.get(id)[1])));
  const left = Math.min(...xs.values()), right = Math.max(...[...xs].map(
    ([id, x]) => x + geo.size.get(id)[0]));
  const head = box < 0 ? 0 : HEADER;
  const headW = box < 0 ? 0 : textWidth("▾ " + NODES[box].title, BOLD) +
    textWidth(headerText(NODES[box]), FONT) + 40;
  const inner = Math.max(right - left, headW - 2 * PAD - GUTTER, 0);
  const shift = PAD - left + (inner - (right - left)) / 2;
  let y = head + PAD;
  const rowBoxes = [];
  live.forEach((r, i) => {
    for (const id of r) geo.rel.set(id, [xs.get(id) + shift, y]);
    rowBoxes.push([y, y + heights[i]]);
    y += heights[i] + GAP_Y;
  });
  geo.rows.set(box, rowBoxes);
  geo.rowItems.set(box, live);
  return [inner + 2 * PAD + GUTTER, y - GAP_Y + PAD];
}

// x of every item: the first row packed; each later item centred under the items that
// feed it (so chains run straight down and branches keep their columns), then pushed
// right as little as needed to keep its row in order without overlaps
function placeRows(rows, deps, geo) {
  const xs = new Map(), centre = (id) => xs.get(id) + geo.size.get(id)[0] / 2;
  rows.forEach((row, r) => {
    const want = new Map(row.map((id, i) => {
      const feeds = (deps.get(id) || []).filter((src) => xs.has(src));
      const c = feeds.length ? feeds.reduce((s, src) => s + centre(src), 0) / feeds.length
                             : (r === 0 ? i * 1e-6 : null);
      return [id, c];
    }));
    const order = [...row].sort((a, b) => (want.get(a) ?? 0) - (want.get(b) ?? 0) || a - b);
    let edge = -Infinity;  // right end of the row so far
    for (const id of order) {
      const w = geo.size.get(id)[0];
      const next = edge + GAP_X;  // -Infinity for the first item of a row
      const x = r === 0 || want.get(id) == null ? Math.max(next, 0)
        : Math.max(want.get(id) - w / 2, next);
      xs.set(id, x);
      edge = x + w;
    }
  });
  return xs;
}

function place(items, x0, y0, geo) {
  for (const id of items) {
    const [rx, ry] = geo.rel.get(id);
    const [w, h] = geo.size.get(id);
    geo.abs.set(id, [x0 + rx, y0 + ry, w, h]);
    if (isOpen(id)) place(NODES[id].children, x0 + rx, y0 + ry, geo);
  }
}

function layout() {
  const rep = representatives();
  const edges = visibleEdges(rep);
  const deps = new Map();
  for (const e of edges) {
    if (!deps.has(e.ib)) deps.set(e.ib, []);
    deps.get(e.ib).push(e.ia);
  }
  const geo = { size: new Map(), rel: new Map(), abs: new Map(), row: new Map(),
                rows: new Map(), rowItems: new Map() };
  const [w, h] = layoutBox(-1, ROOTS, deps, geo);
  geo.abs.set(-1, [0, 0, w, h]);
  place(ROOTS, 0, 0, geo);
  return { geo, edges, width: w, height: h };
}

// ------------------------------------------------------------------ edge routing

function rowSpan(geo, id) {
  const box = NODES[id].parent;
  const [, by] = geo.abs.get(box);
  const [top, bottom] = geo.rows.get(box)[geo.row.get(id)];
  return [by + top, by + bottom];
}

const gutterX = (geo, box, lane) => {
  const [bx, , bw] = geo.abs.get(box);
  return bx + bw - GUTTER / 2 - 4 * (lane % 3) + 4;
};
const lastRow = (geo, id) => geo.row.get(id) === geo.rows.get(NODES[id].parent).length - 1;

// from a node's bottom out to the bottom of its row in container `box`
function exitPath(geo, from, box, lane) {
  const [x0, y0, w, h] = geo.abs.get(from);
  let x = x0 + w / 2;
  const pts = [[x, y0 + h]];
  for (let id = from; ; id = NODES[id].parent) {
    const bottom = rowSpan(geo, id)[1];
    if (NODES[id].parent === box) { pts.push([x, bottom]); return pts; }
    const parent = NODES[id].parent, [, py, , ph] = geo.abs.get(parent);
    if (!lastRow(geo, id)) {
      x = gutterX(geo, parent, lane);
      pts.push([pts[pts.length - 1][0], bottom + GAP_Y / 2], [x, bottom + GAP_Y / 2]);
    }
    pts.push([x, py + ph]);
  }
}

// from the top of a row in container `box` into a node's top
function entryPath(geo, to, box, lane) {
  const [x0, y0, w] = geo.abs.get(to);
  let x = x0 + w / 2;
  const pts = [[x, y0]];
  for (let id = to; ; id = NODES[id].parent) {
    const top = rowSpan(geo, id)[0];
    if (NODES[id].parent === box) { pts.push([x, top]); return pts.reverse(); }
    const parent = NODES[id].parent, [, py] = geo.abs.get(parent);
    if (geo.row.get(id) !== 0) {
      x = gutterX(geo, parent, lane);
      pts.push([pts[pts.length - 1][0], top - GAP_Y / 2], [x, top - GAP_Y / 2]);
    }
    pts.push([x, py]);
  }
}

// whether a skip edge can run straight down at x past the rows between its ends
function columnFree(geo, e, x) {
  const rows = geo.rowItems.get(e.box);
  for (let r = geo.row.get(e.ia) + 1; r < geo.row.get(e.ib); r++) {
    for (const id of rows[r]) {
      const [ix, , iw] = geo.abs.get(id);
      if (x > ix - 8 && x < ix + iw + 8) return false;
    }
  }
  return true;
}

function edgePath(geo, e, lane) {
  const out = exitPath(geo, e.from, e.box, lane);
  const into = entryPath(geo, e.to, e.box, lane);
  const [px, py] = out[out.length - 1], [qx, qy] = into[0];
  const line = (pts) => pts.map(([x, y]) => `L${x.toFixed(1)},${y.toFixed(1)}`).join("");
  let d = `M${out[0][0].toFixed(1)},${out[0][1].toFixed(1)}` + line(out.slice(1));
  const adjacent = geo.row.get(e.ib) === geo.row.get(e.ia) + 1;
  if (adjacent || qy <= py) {
    const my = (py + qy) / 2;
    d += `C${px.toFixed(1)},${my.toFixed(1)} ${qx.toFixed(1)},${my.toFixed(1)} ` +
         `${qx.toFixed(1)},${qy.toFixed(1)}`;
  } else if (columnFree(geo, e, px)) {
    const my = qy - GAP_Y / 2;
    d += line([[px, qy - GAP_Y]]) + `C${px.toFixed(1)},${my.toFixed(1)} ` +
         `${qx.toFixed(1)},${my.toFixed(1)} ${qx.toFixed(1)},${qy.toFixed(1)}`;
  } else {
    const g = gutterX(geo, e.box, lane);
    d += line([[px, py + GAP_Y / 2], [g, py + GAP_Y / 2], [g, qy - GAP_Y / 2],
               [qx, qy - GAP_Y / 2], [qx, qy]]);
  }
  return d + line(into.slice(1));
}

// ------------------------------------------------------------------ drawing

function fill(n) {
  if (colourMode === "kind") return DATA.colours[n.colour] || "#ffffff";
  const value = colourMode === "params" ? n.params : n.macs;
  const max = colourMode === "params" ? maxVisible.params : maxVisible.macs;
  if (!value || !max) return "#ffffff";
  const t = Math.log1p(value) / Math.log1p(max);
  const light = Math.round(96 - 34 * t);
  return `hsl(${colourMode === "params" ? 28 : 205}, 85%, ${light}%)`;
}
const maxVisible = { params: 0, macs: 0 };

function nodeElement(n, rect, opened) {
  const el = document.createElement("div");
  el.className = "node" + (opened ? " open" : "") + (n.side ? " side" : "") +
    (expandable(n.id) ? " expandable" : "");
  el.dataset.path = n.path;
  el.dataset.kind = n.kind;
  el.dataset.params = String(n.params);
  el.dataset.buffers = String(n.buffers);
  el.dataset.macs = String(n.macs);
  el.dataset.depth = String(n.depth + 1);
  el.dataset.id = String(n.id);
  if (expandable(n.id)) {
    el.dataset.expandable = "true";
    el.setAttribute("aria-expanded", opened ? "true" : "false");
  }
  el.tabIndex = 0;
  el.setAttribute("role", "button");
  el.setAttribute("aria-label", `${n.path}: ${n.desc}, ${costLine(n)}`);
  const [x, y, w, h] = rect;
  el.style.left = x + "px"; el.style.top = y + "px";
  el.style.width = w + "px"; el.style.height = h + "px";
  const mark = expandable(n.id) ? `<span class="mark">${opened ? "▾" : "▸"}</span>` : "";
  if (opened) {
    el.innerHTML = `<div class="head">${mark}<b></b> <span class="d"></span></div>`;
    el.querySelector("b").textContent = n.title;
    el.querySelector(".d").textContent = headerText(n);
  } else {
    el.style.background = fill(n);
    el.innerHTML = `<div class="t">${mark}<b></b></div><div class="d"></div><div class="c"></div>`;
    el.querySelector("b").textContent = n.title;
    el.querySelector(".d").textContent = n.desc;
    el.querySelector(".c").textContent = costLine(n);
  }
  return el;
}

let current = null;

function draw(keep) {
  const before = keep != null ? screenPos(keep) : null;
  const t0 = performance.now();
  current = layout();
  const { geo, edges, width, height } = current;
  maxVisible.params = 0; maxVisible.macs = 0;
  for (const id of geo.abs.keys()) {
    if (id >= 0 && !isOpen(id)) {
      maxVisible.params = Math.max(maxVisible.params, NODES[id].params);
      maxVisible.macs = Math.max(maxVisible.macs, NODES[id].macs);
    }
  }
  const frag = document.createDocumentFragment();
  const order = [];
  const walk = (items) => items.forEach((id) => {
    order.push(id);
    if (isOpen(id)) walk(NODES[id].children);
  });
  walk(ROOTS);
  for (const id of order) frag.appendChild(nodeElement(NODES[id], geo.abs.get(id), isOpen(id)));
  layer.replaceChildren(frag);
  const paths = edges.map((e, i) => {
    const cls = e.side ? "edge side" : "edge";
    return `<path class="${cls}" d="${edgePath(geo, e, i)}"/>`;
  });
  wires.setAttribute("width", width + 20);
  wires.setAttribute("height", height + 20);
  wires.innerHTML = `<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" ` +
    `markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L8,4L0,8z"/></marker>` +
    `</defs>${paths.join("")}`;
  layer.style.width = width + "px";
  layer.style.height = height + "px";
  $("stage").style.width = width + 20 + "px";
  $("stage").style.height = height + 20 + "px";
  markHits();
  if (selected >= 0) markSelected();
  $("status").textContent = `${order.length} nodes drawn · ${open.size ? open.size + " open" :
    "all closed"} · layout ${(performance.now() - t0).toFixed(0)} ms`;
  if (before) restorePos(keep, before);
}

// keep the toggled node where it was on screen
function screenPos(id) {
  const el = elementOf(id);
  if (!el) return null;
  const r = el.getBoundingClientRect();
  return [r.left, r.top];
}
function restorePos(id, [left, top]) {
  const el = elementOf(id);
  if (!el) return;
  const r = el.getBoundingClientRect();
  canvas.scrollLeft += r.left - left;
  canvas.scrollTop += r.top - top;
}
const elementOf = (id) => layer.querySelector(`[data-id="${id}"]`);

// ------------------------------------------------------------------ state changes

function toggle(id) {
  if (!expandable(id)) return;
  if (open.has(id)) {
    closeAll(id);
  } else {
    openWithBranches(id);
  }
  draw(id);
  const el = elementOf(id);
  if (el) el.focus({ preventScroll: true });
}

// a block opens with its plain sequences (its branches), as summary looks through them
function openWithBranches(id) {
  open.add(id);
  for (const c of NODES[id].children) if (NODES[c].auto) openWithBranches(c);
}

function closeAll(id) {
  open.delete(id);
  for (const c of NODES[id].children) closeAll(c);
}

function reveal(id) {
  for (let p = NODES[id].parent; p >= 0; p = NODES[p].parent) open.add(p);
  select(id, false);
  draw(null);
  const el = elementOf(id);
  if (el) el.scrollIntoView({ block: "center", inline: "center" });
}

function select(id, redraw) {
  selected = id;
  showDetails(id);
  if (redraw !== false) markSelected();
}

function markSelected() {
  layer.querySelectorAll(".selected").forEach((el) => el.classList.remove("selected"));
  const el = elementOf(selected);
  if (el) el.classList.add("selected");
  document.querySelectorAll("#blocks tr.selected").forEach((tr) => tr.classList.remove("selected"));
  const row = document.querySelector(`#blocks tr[data-id="${selected}"]`);
  if (row) row.classList.add("selected");
}

function showDetails(id) {
  const n = NODES[id];
  const rows = [["path", n.path], ["kind", n.kind], ["summary", n.desc], ["output", n.shape],
    ["params", grouped(n.params)], ["buffers", grouped(n.buffers)],
    ["MACs", grouped(n.macs)], ["FLOPs", grouped(n.flops)], ["source", n.src]];
  if (n.side) rows.push(["side", "side output (training only)"]);
  if (expandable(n.id)) rows.push(["contains", `${n.children.length} items`]);
  const table = $("details");
  table.replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th"), td = document.createElement("td");
    th.textContent = k; td.textContent = v;
    tr.append(th, td);
    return tr;
  }));
}

// ------------------------------------------------------------------ search

function search(query) {
  const q = query.trim().toLowerCase();
  hits = q ? NODES.filter((n) => n.path.toLowerCase().includes(q) ||
    n.kind.toLowerCase().includes(q)).map((n) => n.id) : [];
  hitCursor = -1;
  const list = $("results");
  list.replaceChildren(...hits.slice(0, 50).map((id) => {
    const li = document.createElement("li");
    li.textContent = `${NODES[id].path} (${NODES[id].kind})`;
    li.dataset.id = String(id);
    li.tabIndex = 0;
    return li;
  }));
  $("hit-count").textContent = q ? `${hits.length} match${hits.length === 1 ? "" : "es"}` +
    (hits.length ? " · Enter reveals the next" : "") : "";
  markHits();
}

function markHits() {
  const set = new Set(hits);
  const within = new Set();
  for (const id of hits) for (let p = NODES[id].parent; p >= 0; p = NODES[p].parent) within.add(p);
  layer.querySelectorAll(".node").forEach((el) => {
    const id = Number(el.dataset.id);
    el.classList.toggle("hit", set.has(id));
    el.classList.toggle("has-hit", !set.has(id) && within.has(id) && !isOpen(id));
  });
}

function nextHit() {
  if (!hits.length) return;
  hitCursor = (hitCursor + 1) % hits.length;
  reveal(hits[hitCursor]);
}

// ------------------------------------------------------------------ side table and header

function buildTables() {
  $("title").textContent = DATA.name;
  $("subtitle").textContent = DATA.description;
  const t = DATA.totals;
  $("totals").textContent = `input ${DATA.input.join("×")} → output ${DATA.output.join("×")}` +
    ` · ${grouped(t.params)} params · ${grouped(t.buffers)} buffers · ${grouped(t.macs)} MACs` +
    ` · ${grouped(t.flops)} FLOPs`;
  const body = $("blocks").querySelector("tbody");
  body.replaceChildren(...DATA.blocks.map((id) => {
    const n = NODES[id], tr = document.createElement("tr");
    tr.dataset.id = String(id);
    tr.tabIndex = 0;
    for (const v of [n.path + (n.side ? " (side)" : ""), n.kind, n.shape, grouped(n.params),
      grouped(n.macs)]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.appendChild(td);
    }
    return tr;
  }));
  const legend = $("legend");
  legend.replaceChildren(...Object.entries(DATA.colours).map(([k, c]) => {
    const span = document.createElement("span");
    span.className = "chip";
    span.style.background = c;
    span.textContent = k.startsWith("block:") ? k.slice(6) : k;
    return span;
  }));
}

// ------------------------------------------------------------------ events

const idOf = (el) => (el && el.dataset.id != null ? Number(el.dataset.id) : -1);

layer.addEventListener("click", (ev) => {
  const el = ev.target.closest(".node");
  if (!el) return;
  const id = idOf(el);
  const onHead = !el.classList.contains("open") || ev.target.closest(".head");
  if (!onHead) return;
  select(id);
  toggle(id);
});
layer.addEventListener("keydown", (ev) => {
  const el = ev.target.closest(".node");
  if (!el) return;
  const id = idOf(el);
  if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(id); toggle(id); }
  else if (ev.key === "ArrowLeft" && isOpen(id)) { ev.preventDefault(); toggle(id); }
  else if (ev.key === "ArrowRight" && expandable(id) && !isOpen(id)) {
    ev.preventDefault(); toggle(id);
  } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    const all = [...layer.querySelectorAll(".node")];
    const next = all[all.indexOf(el) + (ev.key === "ArrowDown" ? 1 : -1)];
    if (next) { next.focus(); next.scrollIntoView({ block: "nearest", inline: "nearest" }); }
  }
});
layer.addEventListener("focusin", (ev) => {
  const el = ev.target.closest(".node");
  if (el) select(idOf(el));
});
layer.addEventListener("mouseover", (ev) => {
  const el = ev.target.closest(".node");
  if (el) showDetails(idOf(el));
});
layer.addEventListener("mouseleave", () => { if (selected >= 0) showDetails(selected); });

const box = $("search");
box.addEventListener("input", () => search(box.value));
box.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter") { ev.preventDefault(); nextHit(); }
  else if (ev.key === "Escape") { box.value = ""; search(""); }
});
$("results").addEventListener("click", (ev) => {
  const li = ev.target.closest("li");
  if (li) reveal(idOf(li));
});
$("results").addEventListener("keydown", (ev) => {
  const li = ev.target.closest("li");
  if (li && ev.key === "Enter") reveal(idOf(li));
});
for (const input of document.querySelectorAll("input[name=colour]")) {
  input.addEventListener("change", () => { colourMode = input.value; draw(null); });
}
$("blocks").addEventListener("click", (ev) => {
  const tr = ev.target.closest("tr[data-id]");
  if (tr) reveal(idOf(tr));
});
$("blocks").addEventListener("keydown", (ev) => {
  const tr = ev.target.closest("tr[data-id]");
  if (tr && ev.key === "Enter") reveal(idOf(tr));
});
$("collapse").addEventListener("click", () => { initialOpen(); draw(null); });
$("expand").addEventListener("click", () => expandAll());

function expandAll() {
  for (const n of NODES) if (expandable(n.id)) open.add(n.id);
  draw(null);
  const first = elementOf(ROOTS[0]);
  if (first) first.scrollIntoView({ block: "start", inline: "center" });
}
document.addEventListener("keydown", (ev) => {
  if (ev.key === "/" && document.activeElement !== box) { ev.preventDefault(); box.focus(); }
});

// ------------------------------------------------------------------ start

// the opening state: blocks closed below --depth, plain top-level sequences looked through
function initialOpen() {
  open.clear();
  for (const id of ROOTS) if (NODES[id].auto && expandable(id)) openWithBranches(id);
  for (const n of NODES) {
    if (n.depth + 1 < DATA.open_depth && expandable(n.id)) openWithBranches(n.id);
  }
}

initialOpen();
buildTables();
draw(null);
window.inceptdslPage = { nodes: NODES, toggle, reveal, search, layout, expandAll, draw };
