# Two entry points: `make demo` (the main job on the embedded default) and `make test`.
# Both create .venv when it is missing and install the package into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --constraint constraints.txt
DEMO_DIR ?= demo_output

.PHONY: demo test docs lint bench install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps re-run the install when the dependency declarations change.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt setup.py \
		$(wildcard src/epic_ar/data/_*.c src/epic_ar/data/_*.h)
	$(PIP) --editable .
	touch $@

# gulpio2 (the original project's storage library, used to test compatibility) declares
# Pillow-SIMD, which would replace Pillow: install it without its declared dependencies.
$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) --editable '.[test,docs,export]'
	$(PIP) --no-deps gulpio2==0.0.4
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/epic-ar demo $(DEMO_DIR)

# The documentation site, into site/ (git-ignored). Strict: a broken link or anchor, a page
# missing from nav or a command without its --help block fails the build. Not --quiet: it
# hides warnings from strict mode, which then passes them.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The suite runs in TEST_WORKERS processes (pytest-xdist): most tests wait on subprocesses,
# files or single-threaded Python, so two processes keep both cores of a laptop busy.
TEST_WORKERS ?= 2

test: install-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal
	$(MKDOCS)

docs: install-test
	$(MKDOCS)

lint: install-test
	$(BIN)/ruff check src tests benchmarks docs/hooks
	$(BIN)/ruff format --check src tests benchmarks docs/hooks
	$(BIN)/mypy

# The benchmarks also need the test extra (gulpio2 is the baseline of bench_gulp and
# bench_loader) and the bench extra (scikit-image's photographs for bench_loader).
$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(PIP) --editable '.[bench]'
	touch $@

# bench_training runs its CPU mode (batch 4, 1 worker: a few minutes on 2 cores). The
# README's GPU rows need a CUDA machine: the command is in the script's docstring.
bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_results_toolkit.py
	$(BIN)/python benchmarks/bench_gulp.py
	$(BIN)/python benchmarks/bench_loader.py
	$(BIN)/python benchmarks/bench_video.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/video_vs_frames.py
	$(BIN)/python benchmarks/photo_frames.py
	$(BIN)/python benchmarks/bench_models.py
	$(BIN)/python benchmarks/bench_export.py
	$(BIN)/python benchmarks/bench_training.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
