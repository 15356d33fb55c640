// KernelProfile: sortable per-kernel table and a launch timeline.
const PAL = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d", "#ca8a04", "#4f46e5", "#0d9488", "#be123c"];
const COLS = [["name", "kernel"], ["launches", "launches"], ["total_ms", "total ms"], ["mean_us", "mean µs"], ["share", "share"], ["gbps", "GB/s"]];

function render({ model, el }) {
  const root = h("div", { class: "clg-root clg-profile" });
  addCss(root);
  el.append(root);
  const tableBox = h("div", { style: "max-height:320px;overflow:auto;border:1px solid #e5e7eb;border-radius:6px" });
  const tl = h("div", { class: "clg-view", style: "margin-top:8px;cursor:default;overflow:auto" });
  const head = h("div", { class: "clg-bar" });
  root.append(head, tableBox, tl);

  function cell(r, k) {
    const v = r[k];
    if (k === "name") return v;
    if (v === null || v === undefined) return "-";
    if (k === "share") return (100 * v).toFixed(1) + "%";
    if (k === "launches") return String(v);
    if (k === "total_ms") return v.toFixed(3);
    if (k === "mean_us") return v.toFixed(1);
    return fmt(v, 3);
  }

  function table() {
    const by = model.get("sort_by"), desc = model.get("descending");
    // sort here too, so a header click answers at once (Python keeps .rows in the same order)
    const key = (v) => (v === null || v === undefined ? -Infinity : v);
    const rows = [...model.get("rows")].sort((a, b) => {
      const x = key(a[by]), y = key(b[by]);
      const c = x < y ? -1 : x > y ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
      return desc ? -c : c;
    });
    const tot = rows.reduce((a, r) => a + r.total_ms, 0), n = rows.reduce((a, r) => a + r.launches, 0);
    head.replaceChildren(h("b", {}, model.get("title")), h("span", { style: "color:#6b7280" },
      `${rows.length} kernels · ${n} launches · ${tot.toFixed(3)} ms device time`),
      h("button", { onclick: () => downloadText(tl.querySelector("svg") ? new XMLSerializer().serializeToString(tl.querySelector("svg")) : "", "timeline.svg", "image/svg+xml") }, "Export SVG"));
    const t = h("table", { class: "clg-table" });
    const tr = h("tr");
    for (const [k, lab] of COLS) {
      const th = h("th", { "data-col": k, onclick: () => {
        if (model.get("sort_by") === k) model.set("descending", !model.get("descending"));
        else { model.set("sort_by", k); model.set("descending", k !== "name"); }
        model.save_changes();
      } }, lab + (by === k ? (desc ? " ▼" : " ▲") : ""));
      tr.append(th);
    }
    t.append(h("thead", {}, tr));
    const body = h("tbody");
    for (const r of rows) {
      const row = h("tr");
      for (const [k] of COLS) {
        const td = h("td", {}, cell(r, k));
        if (k === "share") td.style.background = `linear-gradient(90deg, #dbeafe ${100 * r.share}%, transparent ${100 * r.share}%)`;
        row.append(td);
      }
      body.append(row);
    }
    t.append(body);
    tableBox.replaceChildren(t);
  }

  function timeline() {
    const ev = model.get("events"), span = model.get("span") || 1;
    const rows = [...model.get("rows")].sort((a, b) => b.total_ms - a.total_ms);
    const names = rows.slice(0, 16).map((r) => r.name);
    if (rows.length > 16) names.push("(other)");
    const laneH = 16, left = 180, W = Math.max(600, (tl.clientWidth || 900) - 4);
    const H = 24 + names.length * laneH + 8;
    const svg = s("svg", { width: W, height: H, "font-family": "ui-monospace, monospace", "font-size": 10 });
    const g = s("g");
    let k = (W - left - 10) / span, off = 0;
    names.forEach((nm, i) => svg.append(s("text", { x: 4, y: 20 + i * laneH + 11 }, nm.slice(0, 28))));
    const draw = () => {
      g.replaceChildren();
      for (const [lane, a, b, nm] of ev) {
        const x = left + (a - off) * k, w = Math.max((b - a) * k, 0.8);
        if (x + w < left || x > W) continue;
        g.append(s("rect", { x, y: 20 + lane * laneH + 2, width: w, height: laneH - 5, fill: PAL[lane % PAL.length] },
          s("title", {}, `${nm} ${(b - a).toFixed(1)} µs @ ${a.toFixed(1)} µs`)));
      }
      axis.textContent = `${(off / 1e3).toFixed(3)} – ${((off + (W - left - 10) / k) / 1e3).toFixed(3)} ms (wheel: zoom, drag: pan)`;
    };
    const axis = s("text", { x: left, y: 12, fill: "#6b7280" });
    svg.append(axis, g);
    svg.addEventListener("wheel", (e) => {
      e.preventDefault();
      const b = svg.getBoundingClientRect(), t = off + (e.clientX - b.left - left) / k;
      k = Math.max((W - left - 10) / span, k * Math.exp(-e.deltaY * 0.002));
      off = Math.max(0, t - (e.clientX - b.left - left) / k);
      draw();
    }, { passive: false });
    let drag = null;
    svg.addEventListener("pointerdown", (e) => { drag = [e.clientX, off]; });
    svg.addEventListener("pointermove", (e) => { if (drag) { off = Math.max(0, drag[1] - (e.clientX - drag[0]) / k); draw(); } });
    svg.addEventListener("pointerup", () => { drag = null; });
    svg.addEventListener("pointerleave", () => { drag = null; });
    draw();
    tl.replaceChildren(svg);
  }

  table();
  requestAnimationFrame(timeline);
  model.on("change:rows", table);
  model.on("change:sort_by", table);
  model.on("change:descending", table);
  model.on("change:events", timeline);
  return () => root.remove();
}

export default { render };
