// BackpropStepper: steps through a recorded backward pass over the graph drawing.
function render({ model, el }) {
  const root = h("div", { class: "clg-root clg-stepper" });
  addCss(root);
  root.append(h("style", {}, ".clg-done rect{opacity:.55}.clg-stepper .clg-math{background:#f3f4f6;border-radius:4px;padding:4px 6px;margin:4px 0}"));
  el.append(root);
  const steps = () => model.get("steps");
  let timer = null;
  const go = (i) => {
    const n = steps().length;
    model.set("index", Math.max(0, Math.min(n - 1, i)));
    model.save_changes();
  };
  const playBtn = h("button", { class: "clg-play", onclick: () => (timer ? stop() : play()) }, "▶ play");
  const play = () => {
    if (model.get("index") >= steps().length - 1) go(0);
    playBtn.textContent = "❚❚ pause";
    timer = setInterval(() => {
      const i = model.get("index");
      if (i >= steps().length - 1) return stop();
      go(i + 1);
    }, Math.max(50, model.get("interval") * 1000));
  };
  const stop = () => { clearInterval(timer); timer = null; playBtn.textContent = "▶ play"; };
  const slider = h("input", { type: "range", min: 0, max: Math.max(0, steps().length - 1), value: model.get("index"), style: "width:260px" });
  slider.addEventListener("input", () => go(Number(slider.value)));
  const label = h("span", { class: "clg-mono" });
  root.append(h("div", { class: "clg-bar" },
    h("button", { onclick: () => go(0) }, "⏮"), h("button", { class: "clg-back", onclick: () => go(model.get("index") - 1) }, "◀ back"),
    playBtn, h("button", { class: "clg-step", onclick: () => go(model.get("index") + 1) }, "step ▶"),
    h("button", { onclick: () => go(steps().length - 1) }, "⏭"), slider, label));
  // keyboard: ← / → step, Home / End, space plays (when the widget has focus)
  root.tabIndex = 0;
  root.addEventListener("keydown", (e) => {
    const i = model.get("index");
    const k = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: steps().length - 1 }[e.key];
    if (k !== undefined) { go(k); e.preventDefault(); }
    else if (e.key === " ") { timer ? stop() : play(); e.preventDefault(); }
  });
  const row = h("div", { style: "display:flex;gap:8px;align-items:flex-start" });
  const view = h("div", { class: "clg-view", style: "flex:1;min-width:0" });
  const tip = h("div", { class: "clg-tip" });
  view.append(tip);
  const panel = h("div", { class: "clg-panel", style: "width:380px" });
  row.append(view, panel);
  root.append(row);
  const drawing = drawGraph(view, model.get("graph"), { tip, height: model.get("height"),
    onClick: (n) => { const k = steps().findIndex((q) => q.node === n.id); if (k >= 0) go(k); } });

  function update() {
    const st = steps(), i = model.get("index"), cur = st[i];
    slider.max = Math.max(0, st.length - 1);
    slider.value = i;
    label.textContent = st.length ? `step ${i + 1}/${st.length}` : "no steps";
    const done = new Set(st.slice(0, i).map((q) => q.node));
    drawing.nodes.forEach((e, id) => {
      e.classList.toggle("clg-cur", cur && id === cur.node);
      e.classList.toggle("clg-done", done.has(id) && !(cur && id === cur.node));
    });
    panel.replaceChildren();
    if (!cur) return;
    drawing.centre(cur.node);
    panel.append(h("div", {}, h("b", {}, cur.name), ` ${cur.label}${cur.module ? " · " + cur.module : ""}`));
    if (cur.inputs.length) panel.append(h("div", { class: "clg-mono" }, "inputs: " + cur.inputs.map((x, k) => `${"abcdefgh"[k] || k}=${x}`).join(", ")));
    panel.append(h("div", { style: "margin-top:4px" }, cur.rule), h("div", { class: "clg-mono clg-math" }, cur.math));
    cur.grad_out.forEach((g, k) => panel.append(statsBlock(cur.grad_out.length > 1 ? `incoming grad_out[${k}]` : "incoming grad_out", g)));
    for (const o of cur.grad_in) panel.append(statsBlock(`outgoing → ${o.to}`, o.grad));
  }
  update();
  model.on("change:index", update);
  model.on("change:steps", update);
  return () => { stop(); root.remove(); };
}

export default { render };
