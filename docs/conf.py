"""Sphinx configuration: ``make docs`` builds the site into ``docs/_build/html``, offline.

Pages are Markdown (MyST) or reStructuredText; the tutorials are notebooks in MyST Markdown
(``docs/tutorials/*.md``, paired by jupytext with ``examples/*.ipynb``), which myst-nb runs
while building, so the pages show real outputs. The API reference comes from the docstrings
(autosummary + napoleon, numpydoc style) and the command-line reference from ``cli.build_parser()``
(``_ext/cli_reference.py``). Nothing is fetched at build time: no intersphinx inventories, and the
theme (alabaster, shipped with Sphinx) loads no fonts or scripts from the network.
"""

import os
import re
import sys
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT), str(DOCS / "_ext")]  # the project (also when it is not installed), the extension

project = "audio-featurestore"
author = "audio-featurestore contributors"
copyright = "the audio-featurestore contributors"  # noqa: A001 (Sphinx's name)

extensions = [
    "myst_nb",                  # Markdown pages and notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",      # numpydoc-style sections
    "cli_reference",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# API reference: a page per module of featurestore, estimators and pipelines (api/generated, not committed).
autosummary_generate = True
# ignore-module-all: a package's page shows its own docstring, and each class or function is documented
# once, in the module that defines it (featurestore.store.FeatureStore), not also where it is re-exported.
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the docstrings state types and shapes
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_custom_sections = ["Shapes"]

# Notebooks: run at every build ("force", not "cache": a cached output would survive a change of the
# code it shows), each in a temporary folder, on a feature store under _build; a cell error fails the
# build. ``-D nb_execution_mode=off`` builds without running them (tests/test_docs.py;
# ``make docs SPHINXOPTS="-D nb_execution_mode=off"``).
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "force"
nb_execution_in_temp = True
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
os.environ["FEATURESTORE_CACHE"] = str(DOCS / "_build" / "store")
os.environ.setdefault("MPLBACKEND", "Agg")


def this_interpreter_kernel(app, config):
    """Run the notebooks' ``python3`` kernel with this interpreter: a kernel spec of it, first in
    Jupyter's search path, so that a ``python3`` kernel of another environment (in the user's
    Jupyter folder) is not picked. Not when the notebooks are not run."""
    if config.nb_execution_mode == "off":
        return
    from ipykernel.kernelspec import install

    prefix = DOCS / "_build" / "jupyter"
    install(prefix=str(prefix), kernel_name="python3")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(prefix / "share" / "jupyter"),
                                                               os.environ.get("JUPYTER_PATH")]))


html_theme = "alabaster"
html_title = "audio-featurestore"
html_theme_options = {"description": "A feature store and a classical/deep hybrid toolkit for audio "
                                     "classification research", "fixed_sidebar": True, "page_width": "1180px"}
html_static_path = []


def skip_metadata_request_methods(app, what, name, obj, skip, options):
    """Leave out the ``set_fit_request``-style methods that scikit-learn generates on every estimator:
    their docstrings are scikit-learn's (and point into its own documentation)."""
    return True if re.fullmatch(r"set_\w+_request", name) else None


#: Tutorials that may be absent from a checkout: docname -> what it is.
OPTIONAL_TUTORIALS = {"transfer": "the transfer-learning tutorial"}


def drop_absent_tutorials(app, docname, source):
    """Remove the toctree entries of :data:`OPTIONAL_TUTORIALS` that this checkout does not have,
    so that the build (with -W) passes before they are added, and lists them once they are."""
    if docname != "tutorials/index":
        return
    for name, what in OPTIONAL_TUTORIALS.items():
        if not any((DOCS / "tutorials" / f"{name}{suffix}").exists() for suffix in (".md", ".ipynb", ".rst")):
            logger.info(f"tutorials/{name}: {what} is not in this checkout; left out of the contents")
            source[0] = re.sub(rf"(?m)^{name}\n", "", source[0])


def setup(app):
    app.connect("config-inited", this_interpreter_kernel)
    app.connect("autodoc-skip-member", skip_metadata_request_methods)
    app.connect("source-read", drop_absent_tutorials)
