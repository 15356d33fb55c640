"""End to end in a real browser: JupyterLab (headless, 127.0.0.1) + Debian Chromium via Playwright.

For notebooks/02_autograd_and_graphs.ipynb, notebooks/04_training_an_mlp_live.ipynb and notebooks/07_speed.ipynb:
Run > Restart Kernel and Run All Cells, then check in the DOM that
  * nb 02: each GraphView drew as many nodes and edges as the notebook printed ("N nodes, M edges"),
    and the BackpropStepper moves forward and back when its buttons are clicked;
  * nb 04: each TrainingMonitor's plot gained points *while its cell was running* and ends with every
    step; the gradient-flow views drew their bars; no widget failed to render.
Screenshots go to $E2E_ARTIFACTS (default: test-artifacts/browser/ at the repo root).

The fixture starts `python -m jupyterlab` on a free port in a temp root holding output-free copies of
the notebooks, with its own runtime/config dirs, and stops exactly that process afterwards.
The browser is Debian's /usr/bin/chromium (or $CHROMIUM): `make test` installs it with apt when
missing. Never `playwright install`. Run alone, not under xdist: `pytest -p no:xdist tests/browser`.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
playwright_api = pytest.importorskip("playwright.sync_api")
sync_playwright, expect = playwright_api.sync_playwright, playwright_api.expect

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS", REPO / "test-artifacts" / "browser"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# No news/update checks or extension-manager PyPI queries; no autosave (the run must not write
# outputs back into the served copies).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}
NB_GRAPH = "02_autograd_and_graphs.ipynb"
NB_TRAIN = "04_training_an_mlp_live.ipynb"
NB_SPEED = "07_speed.ipynb"

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)),
    reason=f"no Chromium at {CHROMIUM}: install Debian's (apt-get install -y chromium; `make test` does it "
           "as root) or set CHROMIUM=/path/to/chromium")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url, timeout, proc):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not up after {timeout}s")


def _clean_copy(src, dst):
    nb = nbformat.read(src, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, dst)
    return sum(1 for c in nb.cells if c.cell_type == "code")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("jlab")
    root = base / "root"
    root.mkdir()
    for name in (NB_GRAPH, NB_TRAIN, NB_SPEED):
        _clean_copy(NOTEBOOKS / name, root / name)
    for rel, content in LAB_SETTINGS.items():
        f = base / "lab-settings" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(content))
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(base / "runtime"), JUPYTER_CONFIG_DIR=str(base / "config"),
               PYTHONUNBUFFERED="1")
    env.pop("JUPYTER_PATH", None)
    port = _free_port()
    log_path = base / "jupyterlab.log"
    log = open(log_path, "w")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
           "--ServerApp.ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=", "--allow-root",
           f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={base / 'lab-settings'}",
           f"--LabApp.workspaces_dir={base / 'workspaces'}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status", 120, proc)
        yield {"url": f"http://127.0.0.1:{port}", "root": root, "log": log_path}
    finally:
        proc.terminate()   # exactly the server we started; it shuts its kernels down
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log_path, ARTIFACTS / "jupyterlab.log")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Notebook:
    """One notebook open in a fresh page; helpers for running it and reading the DOM."""

    def __init__(self, browser, lab, name, tmp_path):
        self.name = name
        self.n_code = sum(1 for c in nbformat.read(lab["root"] / name, as_version=4).cells if c.cell_type == "code")
        self.ctx = browser.new_context(viewport={"width": 1400, "height": 2400})
        self.page = self.ctx.new_page()
        self.console = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.set_default_timeout(60_000)
        # ?reset: an empty workspace, so no tab restored from an earlier visit
        self.page.goto(f"{lab['url']}/lab/tree/{name}?reset", wait_until="domcontentloaded")
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
        # The status bar reads "Python 3 (ipykernel) | Idle" only once the kernel answered; the
        # toolbar's execution indicator says idle too early (a Run All clicked then is lost).
        self.idle = self.page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\(ipykernel\) \| Idle$"))
        expect(self.idle).to_have_count(1, timeout=120_000)

    def restart_and_run_all(self):
        self.page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        self.page.locator('.lm-Menu-item[data-command="runmenu:restart-and-run-all"]').click()
        self.page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()   # "Restart"

    def prompts(self):
        # textContent, not innerText: cells scrolled out of view (content-visibility) have no innerText
        return [p.strip() for p in self.page.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()]

    def wait_all_ran(self, timeout_s=240):
        want = [f"[{i}]:" for i in range(1, self.n_code + 1)]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.prompts() == want:
                break
            err = self.page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                    has_text=re.compile(r"Traceback|Error"))
            if err.count():
                raise AssertionError(f"{self.name}: a cell failed: {err.first.inner_text()[:2000]}")
            self.page.wait_for_timeout(250)
        else:
            raise AssertionError(f"{self.name}: not every cell ran in {timeout_s}s: {self.prompts()}")
        expect(self.idle).to_have_count(1, timeout=60_000)

    def no_broken_widgets(self):
        expect(self.page.locator("text=Error displaying widget")).to_have_count(0)
        expect(self.page.locator("text=Failed to load model class")).to_have_count(0)

    def shot(self, locator, stem):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        locator.scroll_into_view_if_needed()
        self.page.wait_for_timeout(300)
        locator.screenshot(path=str(ARTIFACTS / f"{stem}.png"))

    def page_shot(self, stem):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{stem}.png"))

    def close(self, failed):
        if failed:
            try:
                self.page_shot(Path(self.name).stem + "-failure")
            except Exception:
                pass
            print("\n".join(self.console[-60:]))
        self.ctx.close()


@pytest.fixture
def open_notebook(browser, lab, tmp_path, request):
    opened = []

    def _open(name):
        nb = Notebook(browser, lab, name, tmp_path)
        opened.append(nb)
        return nb
    yield _open
    failed = getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed
    for nb in opened:
        nb.close(failed)


def test_graph_and_stepper(open_notebook):
    nb = open_notebook(NB_GRAPH)
    page = nb.page
    t0 = time.monotonic()
    nb.restart_and_run_all()
    nb.wait_all_ran()
    print(f"{NB_GRAPH}: ran in {time.monotonic() - t0:.1f}s")
    nb.no_broken_widgets()
    nb.page_shot("02-notebook")

    # The notebook prints the GraphView's size ("7 nodes, 6 edges"); both graph views (the %%graph
    # cell and the GraphView(...) cell) draw the same graph.
    printed = page.locator(".jp-OutputArea-output", has_text=re.compile(r"\d+ nodes, \d+ edges"))
    expect(printed).to_have_count(1)
    n_nodes, n_edges = map(int, re.search(r"(\d+) nodes, (\d+) edges", printed.inner_text()).groups())
    assert n_nodes == 7 and n_edges == 6, (n_nodes, n_edges)   # loss = mean(tanh(x @ W + b)^2): 5 ops + W, b
    views = page.locator(".jp-OutputArea-output .clg-graphview")
    expect(views).to_have_count(2)
    for i in range(2):
        expect(views.nth(i).locator("svg.clgrad-graph g.clg-node")).to_have_count(n_nodes)
        expect(views.nth(i).locator("svg.clgrad-graph path.clg-edge")).to_have_count(n_edges)
    labels = views.nth(1).locator("g.clg-node text").all_text_contents()
    for want in ("mm", "tanh", "mean", "W", "bias"):
        assert want in labels, labels
    nb.shot(views.nth(0), "02-graphview")

    # The %%backprop stepper: 7 steps, starts at step 1; the buttons move it both ways and the
    # highlighted node follows.
    stepper = page.locator(".jp-OutputArea-output .clg-stepper")
    expect(stepper).to_have_count(1)
    label = stepper.locator(".clg-bar > span.clg-mono")
    expect(label).to_have_text("step 1/7")
    cur0 = stepper.locator("g.clg-node.clg-cur").get_attribute("data-id")
    stepper.locator("button.clg-step").click()
    expect(label).to_have_text("step 2/7")
    cur1 = stepper.locator("g.clg-node.clg-cur").get_attribute("data-id")
    assert cur0 != cur1, (cur0, cur1)
    expect(stepper.locator("g.clg-node.clg-done")).to_have_count(1)
    stepper.locator("button.clg-step").click()
    expect(label).to_have_text("step 3/7")
    expect(stepper.locator(".clg-panel")).to_contain_text("TanhBackward0")
    nb.shot(stepper, "02-stepper")
    stepper.locator("button.clg-back").click()
    expect(label).to_have_text("step 2/7")
    print(f"stepper moved: {cur0} -> {cur1}")


# A TrainingMonitor's raw-loss trace (plotly keeps the data on the div); -1 when not drawn yet.
_POINTS_JS = """(title) => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = gd.layout && gd.layout.title && (gd.layout.title.text || gd.layout.title);
    if (typeof t === 'string' && t.startsWith(title)) {
      const cell = gd.closest('.jp-CodeCell');
      const prompt = cell ? cell.querySelector('.jp-InputPrompt').textContent.trim() : '?';
      const tr = (gd.data || []).find((d) => d.name === 'loss (raw)');
      return [tr ? tr.x.length : 0, prompt];
    }
  }
  return [-1, ''];
}"""


def test_training_monitor_live(open_notebook):
    nb = open_notebook(NB_TRAIN)
    page = nb.page
    steps = 150   # STEPS in the notebook
    t0 = time.monotonic()
    # Sample the first monitor ("bad init") in the page (no round trips): after every redraw of any plot
    # (plotly_afterplot, hooked as plots appear) and every 50 ms.  The plot must gain points while its
    # cell is still running ([*]), and end with every step.  (A timer alone saw nothing in one run: on two
    # busy cores the page's main thread, drawing the updates, starved it for the whole cell.)
    page.evaluate("""(js) => { const f = eval(js); window.__clgSamples = [];
        const take = () => window.__clgSamples.push(f('bad init'));
        const hooked = new WeakSet();
        const hook = () => { for (const gd of document.querySelectorAll('.js-plotly-plot')) {
            if (!hooked.has(gd) && typeof gd.on === 'function') { hooked.add(gd); gd.on('plotly_afterplot', take); } } };
        window.__clgObs = new MutationObserver(hook);
        window.__clgObs.observe(document.body, {childList: true, subtree: true});
        window.__clgTimer = setInterval(() => { hook(); take(); }, 50); }""", _POINTS_JS)
    nb.restart_and_run_all()
    nb.wait_all_ran()
    samples = page.evaluate("""() => { clearInterval(window.__clgTimer); window.__clgObs.disconnect();
        return window.__clgSamples; }""")
    running = [n for n, prompt in samples if prompt == "[*]:" and n >= 0]
    print(f"{len(samples)} samples; points seen while the training cell ran: {sorted(set(running))}")
    # the monitor is displayed empty when its cell starts; a partial count seen while the cell is
    # still running means the live updates reached the browser during the run
    partial = sorted({n for n in running if 0 < n < steps})
    assert partial, f"the monitor did not gain points while its cell ran: {sorted(set(running))}"
    print(f"{NB_TRAIN}: ran in {time.monotonic() - t0:.1f}s")
    nb.no_broken_widgets()
    nb.page_shot("04-notebook")

    for title in ("bad init", "fixed"):
        n, prompt = page.evaluate(_POINTS_JS, title)
        assert n == steps, (title, n, prompt)
    # the monitors and the two gradient-flow views are plotly FigureWidgets
    plots = page.locator(".jp-OutputArea-output .js-plotly-plot")
    expect(plots).to_have_count(4)
    expect(page.locator(".jp-OutputArea-output .js-plotly-plot .gtitle", has_text="bad init")).to_have_count(1)
    # gradient-flow views: bars drawn for the 10 parameters
    bars = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .filter((gd) => (gd.data || []).some((d) => d.type === 'bar' && d.name === 'grad norm'))
        .map((gd) => gd.data.find((d) => d.name === 'grad norm').x.length)""")
    assert bars == [10, 10], bars
    expect(page.locator(".jp-OutputArea-output", has_text="fixed init: final loss")).to_have_count(1)
    monitor = page.locator(".jp-OutputArea-output", has=page.locator(".js-plotly-plot .gtitle", has_text="fixed"))
    expect(monitor).to_have_count(1)
    nb.shot(monitor, "04-training-monitor")
    flows = page.locator(".jp-OutputArea-output .js-plotly-plot", has=page.locator(".gtitle, .annotation-text",
                                                                                   has_text="gradient norm"))
    nb.shot(flows.first, "04-gradient-flow-bad-init")
    nb.shot(flows.last, "04-gradient-flow-fixed")


def test_kernel_profile(open_notebook):
    """Notebook 7's %%cl_profile draws the KernelProfile widget: a per-kernel table and a timeline."""
    nb = open_notebook(NB_SPEED)
    page = nb.page
    t0 = time.monotonic()
    nb.restart_and_run_all()
    nb.wait_all_ran()
    print(f"{NB_SPEED}: ran in {time.monotonic() - t0:.1f}s")
    nb.no_broken_widgets()
    profiles = page.locator(".jp-OutputArea-output .clg-profile")
    expect(profiles.first).to_be_visible(timeout=30_000)
    rows = profiles.first.locator("table.clg-table tr")
    assert rows.count() > 2, rows.count()   # a header and at least two kernels
    text = profiles.first.inner_text()
    assert "gemm" in text or "optim_adam" in text, text[:500]
    nb.shot(profiles.first, "07-kernel-profile")
