// Renders a widget's ES module in jsdom with a fake anywidget model and reports the DOM.
// usage: node js_harness.mjs <module.mjs> <state.json> <actions.json>
// Needs the 'jsdom' package resolvable from NODE_PATH (tests skip when it is not).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(process.env.NODE_PATH ? process.env.NODE_PATH + "/" : import.meta.url);
const { JSDOM } = require("jsdom");
const dom = new JSDOM("<!doctype html><html><body><div id=out></div></body></html>", { pretendToBeVisual: true });
const g = globalThis;
for (const k of ["window", "document", "XMLSerializer", "Blob", "Event", "MouseEvent", "WheelEvent", "HTMLElement"])
  g[k] = dom.window[k];
g.requestAnimationFrame = (f) => f();
g.URL.createObjectURL = () => "blob:x";
g.URL.revokeObjectURL = () => {};

const [modPath, statePath, actionsPath] = process.argv.slice(2);
const state = JSON.parse(readFileSync(statePath, "utf8"));
const actions = JSON.parse(readFileSync(actionsPath, "utf8"));
const sent = [];
const handlers = {};
const model = {
  get: (k) => state[k],
  set: (k, v) => { state[k] = v; (handlers["change:" + k] || []).forEach((f) => f()); },
  save_changes: () => sent.push({ save: true }),
  send: (m) => sent.push(m),
  on: (ev, f) => { (handlers[ev] = handlers[ev] || []).push(f); },
  off: () => {},
};
const mod = (await import(pathToFileURL(modPath).href)).default;
const el = document.getElementById("out");
const errors = [];
dom.window.addEventListener("error", (e) => errors.push(String(e.error || e.message)));
mod.render({ model, el });
const report = [];
const q = (sel) => el.querySelectorAll(sel).length;
for (const a of actions) {
  try {
    if (a.click) {
      const t = el.querySelectorAll(a.click)[a.index || 0];
      if (!t) throw new Error("no element " + a.click);
      t.dispatchEvent(new dom.window.MouseEvent("click", { bubbles: true }));
    } else if (a.hover) {
      const t = el.querySelectorAll(a.hover)[a.index || 0];
      t.dispatchEvent(new dom.window.MouseEvent("mousemove", { bubbles: true, clientX: 10, clientY: 10 }));
    } else if (a.wheel) {
      el.querySelector(a.wheel).dispatchEvent(new dom.window.WheelEvent("wheel", { bubbles: true, deltaY: -100, cancelable: true }));
    } else if (a.type) {
      const t = el.querySelector(a.type);
      t.value = a.value;
      t.dispatchEvent(new dom.window.Event("input", { bubbles: true }));
    } else if (a.key) {
      el.querySelector(a.target || ".clg-root").dispatchEvent(new dom.window.KeyboardEvent("keydown", { key: a.key, bubbles: true }));
    } else if (a.set) {
      model.set(a.set, a.value);
    } else if (a.count) {
      report.push({ count: a.count, n: q(a.count) });
    } else if (a.text) {
      const t = el.querySelector(a.text);
      report.push({ text: a.text, value: t ? t.textContent : null });
    } else if (a.attr) {
      const t = el.querySelector(a.attr[0]);
      report.push({ attr: a.attr, value: t ? t.getAttribute(a.attr[1]) : null });
    }
  } catch (e) {
    errors.push(String(e && e.stack || e));
  }
}
process.stdout.write(JSON.stringify({ report, sent, errors }));
