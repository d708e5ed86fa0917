"""The example notebooks run: every ``examples/*.ipynb`` executes from top to bottom without an error.

Each notebook runs in its own temporary working folder (its ``results/`` and files go there) with
one feature store shared by all of them (``$FEATURESTORE_CACHE``), so the demo data set is made
once. The kernel is this interpreter, whatever kernels the machine has installed elsewhere.

The tutorials of the documentation are the same notebooks in MyST Markdown
(``docs/tutorials/<name>.md``, paired by jupytext): a test checks that each pair says the same.
After editing either one, ``jupytext --sync docs/tutorials/<name>.md`` updates the other.
"""

import json
import sys
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TUTORIALS = ROOT / "docs" / "tutorials"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
#: Seconds a cell may take; a notebook is meant to finish within a minute on 2 cores.
CELL_TIMEOUT = 600


def paired_tutorials():
    """``(markdown, notebook)`` of each tutorial page that jupytext pairs with a notebook of examples/."""
    pairs = []
    for page in sorted(TUTORIALS.glob("*.md")):
        header = page.read_text().split("---", 2)[1] if page.read_text().startswith("---") else ""
        if "examples//ipynb" in header:
            pairs.append((page, EXAMPLES / f"{page.stem}.ipynb"))
    return pairs


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """``JUPYTER_PATH`` holding a ``python3`` kernel spec of this interpreter (it comes first in
    Jupyter's search path), and a feature store that the notebooks share."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(prefix=str(prefix), kernel_name="python3")
    spec = json.loads((prefix / "share" / "jupyter" / "kernels" / "python3" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    return {"JUPYTER_PATH": str(prefix / "share" / "jupyter"),
            "FEATURESTORE_CACHE": str(tmp_path_factory.mktemp("store")), "MPLBACKEND": "Agg"}


def test_there_are_notebooks():
    assert {"first_experiment", "own_dataset", "cluster"} <= {path.stem for path in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(path, kernel_env, tmp_path, monkeypatch):
    for name, value in kernel_env.items():
        monkeypatch.setenv(name, value)  # the kernel process inherits this environment
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # a cell error raises CellExecutionError, with the cell and its traceback
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code), "a code cell did not run"
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert errors == []


@pytest.mark.parametrize("page, notebook", paired_tutorials(), ids=lambda p: p.stem)
def test_tutorial_page_and_notebook_agree(page, notebook):
    jupytext = pytest.importorskip("jupytext")
    assert notebook.exists(), f"{page} is paired with {notebook}, which is missing: run jupytext --sync {page}"
    text = [(cell.cell_type, cell.source.strip()) for cell in jupytext.read(page).cells]
    stored = nbformat.read(notebook, as_version=4)
    assert [(cell.cell_type, cell.source.strip()) for cell in stored.cells] == text, \
        f"{page} and {notebook} differ: run `jupytext --sync {page.relative_to(ROOT)}`"
    assert not any(cell.get("outputs") for cell in stored.cells), f"{notebook} is committed with outputs"


def test_every_paired_page_is_found():
    assert {page.stem for page, _ in paired_tutorials()} >= {"first_experiment", "own_dataset", "cluster"}
