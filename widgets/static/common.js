// clgrad widgets: shared helpers (prepended to each widget's ES module by Python).
const NS = "http://www.w3.org/2000/svg";

function h(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "style") e.style.cssText = v;
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

function s(tag, attrs = {}, ...kids) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

function fmt(x, d = 4) {
  if (x === null || x === undefined) return "-";
  if (typeof x !== "number") return String(x);
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e5) return String(Number(x.toPrecision(d)));
  return x.toExponential(Math.max(d - 1, 1));
}

function fmtShape(sh) {
  if (!sh) return "?";
  return sh.length === 1 ? `(${sh[0]},)` : `(${sh.join(", ")})`;
}

function describe(st) {
  if (!st) return "-";
  if (st.values && st.numel <= 6) return "[" + st.values.map((v) => (v === null ? "nan" : fmt(v))).join(", ") + "]";
  let t = `mean=${fmt(st.mean)} std=${fmt(st.std)} min=${fmt(st.min)} max=${fmt(st.max)}`;
  if (st.finite === false) t += ` nan=${st.nan} inf=${st.inf}`;
  return t;
}

// a small SVG histogram of summary.hist
function histSvg(st, w = 220, hgt = 70, colour = "#6366f1") {
  const out = s("svg", { width: w, height: hgt + 14, class: "clg-hist" });
  if (!st || !st.hist) return out;
  const c = st.hist.counts, m = Math.max(1, ...c), bw = w / c.length;
  c.forEach((v, i) => {
    const bh = (v / m) * hgt;
    out.append(s("rect", { x: i * bw + 0.5, y: hgt - bh, width: Math.max(bw - 1, 1), height: bh, fill: colour },
      s("title", {}, `${fmt(st.hist.lo + (i * (st.hist.hi - st.hist.lo)) / c.length)}: ${v}`)));
  });
  out.append(s("text", { x: 0, y: hgt + 12, "font-size": 9, fill: "#6b7280" }, fmt(st.hist.lo)));
  out.append(s("text", { x: w, y: hgt + 12, "font-size": 9, fill: "#6b7280", "text-anchor": "end" }, fmt(st.hist.hi)));
  return out;
}

// diverging blue-white-red heatmap of summary.heat (block means of the tensor as 2-D)
function heatSvg(st, cell = 10) {
  const out = s("svg", { class: "clg-heat" });
  if (!st || !st.heat || !st.heat.length) return out;
  const rows = st.heat;
  let m = 0;
  for (const r of rows) for (const v of r) if (v !== null) m = Math.max(m, Math.abs(v));
  m = m || 1;
  const nc = Math.max(...rows.map((r) => r.length));
  const size = Math.max(4, Math.min(cell, Math.floor(180 / nc)));
  out.setAttribute("width", nc * size);
  out.setAttribute("height", rows.length * size);
  rows.forEach((r, i) => r.forEach((v, j) => {
    let fill = "#e11d48";
    if (v !== null) {
      const t = v / m, k = Math.round(255 * (1 - Math.abs(t)));
      fill = t >= 0 ? `rgb(255,${k},${k})` : `rgb(${k},${k},255)`;
    }
    out.append(s("rect", { x: j * size, y: i * size, width: size, height: size, fill },
      s("title", {}, v === null ? "nan" : fmt(v))));
  }));
  return out;
}

function statsBlock(title, st) {
  const box = h("div", { class: "clg-stats" }, h("div", { class: "clg-stats-title" }, title));
  if (!st) { box.append(h("div", {}, "-")); return box; }
  box.append(h("div", { class: "clg-mono" }, `${fmtShape(st.shape)} ${describe(st)}`));
  if (st.rms !== undefined) box.append(h("div", { class: "clg-mono" }, `rms=${fmt(st.rms)} norm=${fmt(st.norm)}`));
  if (st.values && st.numel > 6 && st.numel <= 16)
    box.append(h("div", { class: "clg-mono" }, "[" + st.values.map((v) => (v === null ? "nan" : fmt(v, 3))).join(", ") + "]"));
  const row = h("div", { style: "display:flex;gap:10px;align-items:flex-end" });
  row.append(histSvg(st), heatSvg(st));
  box.append(row);
  return box;
}

function downloadText(text, name, mime) {
  const url = URL.createObjectURL(new Blob([text], { type: mime }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

const CSS = `
.clg-root{font-family:ui-sans-serif,system-ui,sans-serif;font-size:12px;color:#111827}
.clg-bar{display:flex;gap:6px;align-items:center;flex-wrap:wrap;margin:2px 0 6px}
.clg-bar button{font-size:12px;padding:2px 8px;border:1px solid #d1d5db;border-radius:4px;background:#f9fafb;cursor:pointer}
.clg-bar button:hover{background:#eef2ff}
.clg-mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:11px;white-space:pre-wrap}
.clg-view{border:1px solid #e5e7eb;border-radius:6px;overflow:hidden;position:relative;background:#fff;cursor:grab}
.clg-tip{position:absolute;pointer-events:none;background:rgba(17,24,39,.92);color:#f9fafb;padding:6px 8px;border-radius:4px;font-family:ui-monospace,monospace;font-size:11px;white-space:pre;display:none;z-index:10;max-width:520px}
.clg-panel{border:1px solid #e5e7eb;border-radius:6px;padding:8px;background:#fafafa;min-width:260px;max-width:420px;overflow:auto}
.clg-stats{margin:6px 0}.clg-stats-title{font-weight:600;margin-bottom:2px}
.clg-banner{background:#fef2f2;color:#991b1b;border:1px solid #fecaca;border-radius:4px;padding:4px 8px;margin:4px 0}
.clg-node{cursor:pointer}.clg-node:hover rect{filter:brightness(.95)}
.clg-cur rect{stroke:#f59e0b !important;stroke-width:4 !important}
.clg-hit rect{fill:#fde68a !important}
.clg-sel rect{stroke:#111827 !important;stroke-width:3 !important}
.clg-table{border-collapse:collapse;font-size:12px}.clg-table th,.clg-table td{padding:2px 8px;border-bottom:1px solid #e5e7eb;text-align:right}
.clg-table th{cursor:pointer;background:#f3f4f6;position:sticky;top:0}.clg-table td:first-child,.clg-table th:first-child{text-align:left}
`;

function addCss(el) {
  el.append(h("style", {}, CSS));
}

// ---- graph drawing shared by GraphView and BackpropStepper --------------------------------
const FILL = { op: "#eef2ff", param: "#fef3c7", input: "#e0f2fe", output: "#dcfce7", group: "#f3f4f6" };
const STROKE = { op: "#6366f1", param: "#d97706", input: "#0284c7", output: "#16a34a", group: "#4b5563" };

function edgePath(pts) {
  let [x, y] = pts[0];
  let d = `M${x},${y}`;
  for (const [nx, ny] of pts.slice(1)) {
    const dy = ny > y ? (ny - y) / 2 : 40;
    d += ` C${x},${y + dy} ${nx},${ny - dy} ${nx},${ny}`;
    x = nx; y = ny;
  }
  return d;
}

function tipText(n) {
  const lines = [`${n.name} ${n.sub}`];
  if (n.module) lines.push(`module: ${n.module}`);
  if (n.value) lines.push("value: " + describe(n.value));
  if (n.grad) lines.push("grad:  " + describe(n.grad) + ` rms=${fmt(n.grad.rms)}`);
  if (n.nonfinite) lines.push(n.origin ? "NON-FINITE (first op that produced it)" : "non-finite");
  if (n.kind === "group") lines.push("click to expand");
  return lines.join("\n");
}

// Draws `g` (graph_data) into a zoomable SVG; returns {svg, nodes: Map(id -> <g>), fit()}.
function drawGraph(container, g, opts = {}) {
  const svg = s("svg", { class: "clgrad-graph", width: "100%", height: opts.height || 520,
    "font-family": "ui-monospace, SFMono-Regular, Menlo, monospace", "font-size": 11 });
  svg.append(s("defs", {}, s("marker", { id: "clg-arrow-live", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", fill: "#6b7280" }))));
  const vp = s("g", { class: "clg-viewport" });
  svg.append(vp);
  const tip = opts.tip;
  for (const c of g.clusters || []) {
    const cg = s("g", { class: "clg-cluster", "data-module": c.module });
    cg.append(s("rect", { x: c.x, y: c.y, width: c.w, height: c.h, rx: 8, fill: "#6366f1", "fill-opacity": 0.04,
      stroke: "#a5b4fc", "stroke-dasharray": "4 3" }));
    const lab = s("text", { x: c.x + 6, y: c.y + 11, fill: "#4f46e5", "font-size": 10, style: "cursor:pointer" },
      `${c.module}: ${c.type} [−]`);
    if (opts.onCollapse) lab.addEventListener("click", (ev) => { ev.stopPropagation(); opts.onCollapse(c.module); });
    cg.append(lab);
    vp.append(cg);
  }
  for (const e of g.edges) {
    const w = 1.2 + Math.min(e.count - 1, 4) * 0.5;
    const p = s("path", { class: "clg-edge", d: edgePath(e.points), fill: "none", stroke: e.color || "#9ca3af",
      "stroke-width": w, "marker-end": "url(#clg-arrow-live)" });
    if (e.back) p.setAttribute("stroke-dasharray", "3 3");
    if (e.grad_rms !== null && e.grad_rms !== undefined) p.append(s("title", {}, `grad rms ${fmt(e.grad_rms)}`));
    vp.append(p);
  }
  const nodes = new Map();
  for (const n of g.nodes) {
    const x0 = n.x - n.w / 2;
    const stroke = n.nonfinite ? "#e11d48" : n.color || STROKE[n.kind];
    const ng = s("g", { class: `clg-node clg-${n.kind}`, "data-id": n.id });
    const r = s("rect", { x: x0, y: n.y, width: n.w, height: n.h,
      rx: n.kind === "group" ? 4 : n.kind === "param" || n.kind === "input" ? 10 : 6,
      fill: FILL[n.kind], stroke, "stroke-width": n.origin ? 3 : n.color ? 2.2 : 1.2 });
    if (n.kind === "group") r.setAttribute("stroke-dasharray", "5 2");
    ng.append(r,
      s("text", { x: n.x, y: n.y + 14, "text-anchor": "middle", "font-weight": "bold" }, n.label),
      s("text", { x: n.x, y: n.y + 27, "text-anchor": "middle", fill: "#4b5563", "font-size": 10 }, n.sub));
    if (tip) {
      ng.addEventListener("mousemove", (ev) => {
        const b = container.getBoundingClientRect();
        tip.textContent = tipText(n);
        tip.style.display = "block";
        tip.style.left = ev.clientX - b.left + 14 + "px";
        tip.style.top = ev.clientY - b.top + 14 + "px";
      });
      ng.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    }
    if (opts.onClick) ng.addEventListener("click", (ev) => { ev.stopPropagation(); opts.onClick(n); });
    nodes.set(n.id, ng);
    vp.append(ng);
  }
  container.append(svg);
  // zoom and pan
  let k = 1, tx = 0, ty = 0;
  const apply = () => vp.setAttribute("transform", `translate(${tx},${ty}) scale(${k})`);
  const fit = () => {
    const W = svg.clientWidth || 800, H = svg.clientHeight || opts.height || 520;
    k = Math.min(1.5, W / (g.width || 1), H / (g.height || 1));
    tx = (W - g.width * k) / 2; ty = Math.max(0, (H - g.height * k) / 2);
    apply();
  };
  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const b = svg.getBoundingClientRect(), mx = ev.clientX - b.left, my = ev.clientY - b.top;
    const f = Math.exp(-ev.deltaY * 0.0015), nk = Math.min(8, Math.max(0.02, k * f));
    tx = mx - ((mx - tx) * nk) / k; ty = my - ((my - ty) * nk) / k; k = nk;
    apply();
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (ev) => { drag = [ev.clientX, ev.clientY, tx, ty]; });
  svg.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    tx = drag[2] + ev.clientX - drag[0]; ty = drag[3] + ev.clientY - drag[1];
    apply();
  });
  const stop = () => { drag = null; };
  svg.addEventListener("pointerup", stop);
  svg.addEventListener("pointerleave", stop);
  const centre = (id) => {
    const n = g.nodes.find((q) => q.id === id);
    if (!n) return;
    const W = svg.clientWidth || 800, H = svg.clientHeight || 520;
    const px = n.x * k + tx, py = (n.y + n.h / 2) * k + ty;
    if (px < 40 || px > W - 40 || py < 30 || py > H - 30) {
      tx = W / 2 - n.x * k; ty = H / 2 - (n.y + n.h / 2) * k;
      apply();
    }
  };
  requestAnimationFrame(fit);
  return { svg, nodes, fit, centre, view: () => [k, tx, ty], setView: (v) => { [k, tx, ty] = v; apply(); } };
}

// SVG text of the current drawing, for the export button
function svgText(svg, g) {
  const c = svg.cloneNode(true);
  c.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  c.setAttribute("width", g.width); c.setAttribute("height", g.height);
  c.setAttribute("viewBox", `0 0 ${g.width} ${g.height}`);
  const vp = c.querySelector(".clg-viewport");
  if (vp) vp.removeAttribute("transform");
  return new XMLSerializer().serializeToString(c);
}
