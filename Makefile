# `make demo` and `make test` do all set-up on a fresh machine: they create .venv and install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-lowest lint bench bench-quick docs reference notebook clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: reinstall only when the project's metadata changes.
$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,parity,plot,docs,bench]'
	touch $@ $(VENV)/.run-installed $(VENV)/.docs-installed

# The site needs the docs extra alone, not jaxcal (nor jax, nor torch): mkdocs-jupyter renders the
# committed notebook without executing it, and brings what it needs for that (nbconvert, ipykernel).
$(VENV)/.docs-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['docs'], sep='\n')" > $(VENV)/docs-requirements.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/docs-requirements.txt
	touch $@

demo: $(VENV)/.run-installed
	$(BIN)/jaxcal train

# Two pytest workers (pytest-xdist): most tests wait on processes of their own or on one core.
test: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2
	$(MAKE) docs
	$(MAKE) test-lowest

# The site, in strict mode (mkdocs.yml): a broken link, anchor or reference fails the build
# (not --quiet: mkdocs then drops the warnings that strict mode counts).
docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build

# The pages derived from the code and the benchmark record: the CLI reference, the API reference,
# the performance page with its plots and the README's headline figures (the tests fail if stale).
reference: $(VENV)/.test-installed
	$(BIN)/python docs/generate.py

# Execute the learner's notebook from its jupytext source and keep the outputs in the .ipynb.
notebook: $(VENV)/.test-installed
	$(BIN)/jupytext --sync --execute notebooks/learning_by_autograd.md

# The declared lower bounds are tested bounds: a second virtualenv with every dependency at the
# lowest version pyproject.toml allows (.ci/lowest.py) runs the tests of training, exact mode,
# fleets, sweeps, the CLI, converted logs, the report and the intervals (statsmodels their oracle).
LOWEST := .venv-lowest
LOWEST_TESTS := tests/test_core.py tests/test_training.py tests/test_exact_every_epoch.py tests/test_fleet.py \
	tests/test_onepass.py tests/test_book_runs.py tests/test_cli.py tests/test_trust.py tests/test_pieces.py \
	tests/test_io.py tests/test_cache.py tests/test_fused.py tests/test_placement.py tests/test_cli_predict_log.py \
	tests/test_html_report.py tests/test_intervals.py

$(LOWEST)/.installed: pyproject.toml .ci/lowest.py
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(PYTHON) .ci/lowest.py test plot > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip install --quiet -c $(LOWEST)/constraints.txt -e '.[test,plot]'
	touch $@

test-lowest: $(LOWEST)/.installed
	$(LOWEST)/bin/python -m pip list 2>/dev/null | grep -iE '^(jax|jaxlib|optax|numpy|matplotlib|pyarrow|platformdirs) '
	$(LOWEST)/bin/python -m pytest -p no:cacheprovider -n 2 $(LOWEST_TESTS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .

# Measures into benchmarks/results/bench.json (committed), then regenerates the pages built from it.
bench: $(VENV)/.test-installed
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/bench_calibrate.py
	$(BIN)/python benchmarks/bench_calibrate.py --x64
	$(BIN)/python docs/generate.py

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .ruff_cache .hypothesis .cache build *.egg-info

bench-quick: $(VENV)/.test-installed
	$(BIN)/python benchmarks/bench.py --quick
