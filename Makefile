# `make test` and `make lab` install what they need into .venv first; a fresh
# machine needs only python3, pip, make and gcc (and, for the browser test, Debian's
# chromium, which `make test` installs with apt-get when run as root).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# two workers: PoCL already spreads each kernel over the cores, the second hides compile latency
PYTEST_WORKERS ?= 2
# the browser for tests/browser (Debian's package; never `playwright install`)
CHROMIUM ?= /usr/bin/chromium
NBVAL_CFG := notebooks/nbval_sanitize.cfg
# `make notebooks NB="02 04"` re-executes only those
NB ?=

.PHONY: install install-lab test test-unit test-notebooks test-browser chromium notebooks lab bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

$(VENV)/.lab: pyproject.toml $(VENV)/.dev
	$(BIN)/python -m pip install -q -e ".[dev,lab]"
	touch $@

install: $(VENV)/.dev

install-lab: $(VENV)/.lab

# Everything: the unit tests (parallel), then strict nbval on every notebook, then the
# notebooks in a real browser (serial: one JupyterLab server, one Chromium).  All three run
# even when one fails; the exit status is non-zero if any failed.
test: $(VENV)/.dev chromium
	@status=0; \
	$(MAKE) --no-print-directory test-unit || status=1; \
	$(MAKE) --no-print-directory test-notebooks || status=1; \
	$(MAKE) --no-print-directory test-browser || status=1; \
	if [ $$status != 0 ]; then echo "make test: FAILED (see above)"; fi; \
	exit $$status

test-unit: $(VENV)/.dev
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --ignore=tests/browser $(PYTEST_ARGS)

# Strict nbval: every stored output must match a fresh run (sanitized: random ids, temp paths);
# cells marked `# NBVAL_IGNORE_OUTPUT` (timings, device tables) only have to run.
test-notebooks: $(VENV)/.dev
	$(BIN)/python -m pytest -q -p no:xdist -p no:cacheprovider --nbval --nbval-current-env \
		--nbval-sanitize-with $(NBVAL_CFG) notebooks/[0-9]*.ipynb

test-browser: $(VENV)/.dev chromium
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 CHROMIUM=$(CHROMIUM) \
		$(BIN)/python -m pytest -q -s -p no:xdist -p no:cacheprovider tests/browser

# Debian's chromium for the browser test, when missing (needs root and apt-get; otherwise the
# browser test skips and says why).
chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian chromium with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "warning: $(CHROMIUM) is missing and cannot be installed here (needs root + apt-get);" \
			     "tests/browser will be skipped"; \
		fi; \
	fi

# Regenerate the notebooks from notebooks/make_notebooks.py, execute them and store the outputs
# (not the widget state), as CI will compare them.
notebooks: $(VENV)/.dev
	$(BIN)/python notebooks/make_notebooks.py $(NB)
	@set -e; for nb in notebooks/[0-9]*.ipynb; do \
		stem=$$(basename $$nb); \
		if [ -n "$(NB)" ] && ! echo " $(NB) " | grep -q " $${stem%%_*} "; then continue; fi; \
		start=$$(date +%s); \
		$(BIN)/jupyter nbconvert --to notebook --execute --inplace --log-level=WARN \
			--ExecutePreprocessor.store_widget_state=False --ExecutePreprocessor.timeout=600 $$nb; \
		echo "$$nb: $$(( $$(date +%s) - start )) s"; \
	done

lab: $(VENV)/.lab
	$(BIN)/python -m kernel_ext install --sys-prefix
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
