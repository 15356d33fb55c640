// GraphView: the autograd graph, laid out in Python (model 'graph'), drawn here as SVG.
function legend(g) {
  const box = h("span", { class: "clg-legend", style: "display:inline-flex;align-items:center;gap:4px" });
  const r = g.stats && g.stats.grad_range;
  if (!r) return box;
  const bar = s("svg", { width: 90, height: 10 });
  const stops = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
  stops.forEach((c, i) => bar.append(s("rect", { x: i * 18, y: 0, width: 18, height: 10, fill: c })));
  box.append(h("span", {}, `|grad| ${fmt(r[0], 2)}`), bar, h("span", {}, fmt(r[1], 2) + " (log)"));
  return box;
}

function render({ model, el }) {
  const root = h("div", { class: "clg-root clg-graphview" });
  addCss(root);
  el.append(root);
  let view = null, drawing = null, lastG = null;

  function draw() {
    const g = model.get("graph");
    const keep = drawing && g === lastG ? drawing.view() : null;
    lastG = g;
    root.querySelectorAll(":scope > :not(style)").forEach((e) => e.remove());
    const bar = h("div", { class: "clg-bar" });
    const depth = model.get("depth");
    // find: highlights the nodes whose label, op or module contains the text, centres the first
    const search = h("input", { class: "clg-search", type: "search", placeholder: "find…", style: "width:120px;font-size:12px" });
    search.addEventListener("input", () => {
      const q = search.value.trim().toLowerCase();
      let first = null;
      for (const n of g.nodes) {
        const hit = q && (n.label + " " + n.name + " " + (n.module || "")).toLowerCase().includes(q);
        const e = drawing.nodes.get(n.id);
        if (e) e.classList.toggle("clg-hit", !!hit);
        if (hit && !first) first = n.id;
      }
      if (first) drawing.centre(first);
    });
    bar.append(
      h("button", { title: "fit to view", onclick: () => drawing && drawing.fit() }, "Fit"),
      h("button", { title: "fold one more level", onclick: () => model.send({ type: "depth", depth: Math.max(0, (depth === null ? g.stats.max_depth : depth) - 1) }) }, "−"),
      h("span", { class: "clg-depth" }, `depth ${depth === null ? "all" : depth}`),
      h("button", { title: "unfold one more level", onclick: () => model.send({ type: "depth", depth: depth === null ? null : depth + 1 }) }, "+"),
      h("button", { onclick: () => model.send({ type: "depth", depth: null }) }, "Expand all"),
      h("button", { class: "clg-export", onclick: () => downloadText(svgText(drawing.svg, g), "graph.svg", "image/svg+xml") }, "Export SVG"),
      search,
      h("span", { style: "color:#6b7280" }, `${g.stats.ops} ops, ${g.stats.leaves} leaves · ${g.stats.nodes} shown, ${g.stats.folded} folded`),
      legend(g));
    root.append(bar);
    const o = g.origin || {}, on = g.origin_names || {};
    if (o.forward || o.backward) {
      const parts = [];
      if (o.forward) parts.push(`forward: first non-finite value from ${on.forward}`);
      if (o.backward) parts.push(`backward: first non-finite gradient from ${on.backward}`);
      root.append(h("div", { class: "clg-banner" }, parts.join(" · ")));
    }
    const row = h("div", { style: "display:flex;gap:8px;align-items:flex-start" });
    view = h("div", { class: "clg-view", style: "flex:1;min-width:0" });
    const tip = h("div", { class: "clg-tip" });
    view.append(tip);
    row.append(view, panelSlot);
    root.append(row);
    showPanel();
    drawing = drawGraph(view, g, {
      tip, height: model.get("height"),
      onClick: (n) => model.send(n.kind === "group" ? { type: "toggle", module: n.module } : { type: "select", id: n.id }),
      onCollapse: (m) => model.send({ type: "toggle", module: m }),
    });
    showPanel();
    const hl = model.get("highlight");
    if (hl && drawing.nodes.get(hl)) drawing.nodes.get(hl).classList.add("clg-cur");
    if (keep) requestAnimationFrame(() => drawing.setView(keep));
  }

  // the detail panel is redrawn on its own (no re-render of the graph on a click)
  const panelSlot = h("div", {});
  function showPanel() {
    const d = model.get("detail");
    panelSlot.replaceChildren();
    if (d && d.id) panelSlot.append(panel(d));
    if (!drawing) return;
    const sel = model.get("selected");
    drawing.nodes.forEach((e, id) => e.classList.toggle("clg-sel", id === sel));
  }

  function panel(d) {
    const p = h("div", { class: "clg-panel" });
    p.append(h("div", { style: "display:flex;justify-content:space-between" },
      h("b", {}, `${d.label}`), h("button", { onclick: () => model.send({ type: "select", id: "" }) }, "×")));
    p.append(h("div", { class: "clg-mono" }, `${d.name}${d.shape ? " " + fmtShape(d.shape) : ""}${d.module ? "\nmodule: " + d.module : ""}`));
    if (d.kind === "group") {
      p.append(h("div", { class: "clg-mono" }, Object.entries(d.ops || {}).map(([k, v]) => `${k} ×${v}`).join(", ")));
      for (const q of d.params || []) p.append(h("div", { class: "clg-mono" }, `${q.name} ${fmtShape(q.shape)} grad rms=${fmt(q.grad && q.grad.rms)}`));
      return p;
    }
    if (d.inputs && d.inputs.length) p.append(h("div", { class: "clg-mono" }, "inputs: " + d.inputs.join(", ")));
    p.append(statsBlock("value", d.value), statsBlock("gradient", d.grad));
    return p;
  }

  draw();
  model.on("change:graph", draw);
  model.on("change:detail", showPanel);
  model.on("change:selected", showPanel);
  model.on("change:highlight", () => {
    if (!drawing) return;
    drawing.nodes.forEach((e) => e.classList.remove("clg-cur"));
    const id = model.get("highlight");
    if (id && drawing.nodes.get(id)) { drawing.nodes.get(id).classList.add("clg-cur"); drawing.centre(id); }
  });
  return () => root.remove();
}

export default { render };
