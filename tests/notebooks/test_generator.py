"""The committed notebooks are what notebooks/make_notebooks.py generates (same cells, same sources),
and they are committed executed: outputs stored for strict nbval, widget state not stored."""
import importlib.util
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _generator():
    spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS / "make_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GEN = _generator()


def test_every_notebook_is_generated():
    committed = sorted(p.stem for p in NOTEBOOKS.glob("[0-9]*.ipynb"))
    assert committed == sorted(GEN.NOTEBOOKS), "run `make notebooks` (or delete stray .ipynb files)"
    assert len(committed) == 7


@pytest.mark.parametrize("stem", sorted(GEN.NOTEBOOKS))
def test_committed_matches_generator(stem):
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    want = GEN.build(stem)
    got_cells = [(c.cell_type, c.source) for c in nb.cells]
    want_cells = [(c.cell_type, c.source) for c in want.cells]
    assert got_cells == want_cells, f"notebooks/{stem}.ipynb differs from make_notebooks.py: run `make notebooks NB={stem[:2]}`"
    # executed, with outputs, for strict nbval; no stored widget state (it would hold plotly.js, ~5 MB)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "commit the notebook executed (`make notebooks`)"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "executed top to bottom, once"
    assert "widgets" not in nb.metadata, "store_widget_state=False when executing"
    for c in code:
        for o in c.get("outputs", []):
            assert o.output_type != "error", f"{stem}: a cell failed when it was executed"
