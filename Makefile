# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test docs bench bench-techniques bench-recipes bench-fold-time bench-gpu clean-cache

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# The CPU build of torch first: an unpinned torch would pull several GB of CUDA packages.
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) cli.py demo

test: $(STAMP)
	$(PY) -m pytest -q

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -e ".[docs]"
	touch $(DOCS_STAMP)

# The documentation site, offline, into docs/_build/html: built afresh (-E: pages show the code as it
# is now), warnings are errors, the tutorials' notebooks run. SPHINXOPTS="-D nb_execution_mode=off"
# skips running them.
SPHINXOPTS ?=
docs: $(DOCS_STAMP)
	$(PY) -m sphinx -E -W --keep-going $(SPHINXOPTS) -b html docs docs/_build/html

bench: $(STAMP)
	$(PY) benchmarks/extract.py
	$(PY) benchmarks/train.py

bench-techniques: $(STAMP)
	$(PY) benchmarks/techniques.py

# Defaults (classical, nets, the default ensemble) against hand-written librosa + scikit-learn and plain-torch
# PiczakNet scripts (demo, FSDD, drum kits); limit a run with e.g. RECIPES_ARGS="--datasets demo --folds 1 2".
RECIPES_ARGS ?=
bench-recipes: $(STAMP)
	$(PY) benchmarks/recipes.py $(RECIPES_ARGS)

# One fold of each net of the default ensemble (defaults, 2,100 random four-second inputs) timed against the
# 10-minute target; a quick run: FOLD_TIME_ARGS="--max-epochs 3".
FOLD_TIME_ARGS ?=
bench-fold-time: $(STAMP)
	$(PY) benchmarks/fold_time.py $(FOLD_TIME_ARGS)

# samples/s of the CNN and PiczakNet on the CPU and, where present, CUDA, per precision ("32", "bf16-mixed",
# "16-mixed"), and each setting's accuracy on one demo fold; a quick run: BENCH_GPU_ARGS="--epochs 5".
BENCH_GPU_ARGS ?=
bench-gpu: $(STAMP)
	$(PY) benchmarks/gpu.py $(BENCH_GPU_ARGS)

clean-cache:
	rm -rf cache
