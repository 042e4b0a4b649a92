# Everything runs in .venv at the repo root, created on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KVKIT := $(VENV)/bin/kvkit
STAMP := $(VENV)/.installed-stamp
OUT := out

.PHONY: setup lint demo check test selfcheck bundle goldens notebook bench bench-batch gradescope clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@# bubblewrap confines graded code when the grader is not root (see docs/security.md); best effort
	@if [ "$$(id -u)" = 0 ] && ! command -v bwrap >/dev/null && command -v apt-get >/dev/null; then \
	    echo "installing bubblewrap with apt-get"; \
	    { apt-get install -y -q bubblewrap || { apt-get update -q && apt-get install -y -q bubblewrap; }; } \
	        >/dev/null 2>&1 || echo "WARNING: could not install bubblewrap: non-root grading uses user namespaces or none"; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[nbgrader,bench,hf,cluster,dev]"
	@# rfc3987-syntax (jupyter-events asks for jsonschema[format-nongpl]) builds 38 parsers when jsonschema is imported:
	@# 2 CPU-seconds in every process that imports nbformat (each nbgrader command, each worker). Nothing here checks
	@# the "iri" formats it serves; jsonschema goes without them when it is absent.
	$(PY) -m pip uninstall --quiet --yes rfc3987-syntax
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

# Build the skeleton, then grade the reference (full marks), the untouched skeleton (zero)
# and a partly correct example submission.
demo: setup
	$(KVKIT) build
	$(KVKIT) grade reference
	$(KVKIT) grade assignments/kv_cache
	rm -rf $(OUT)/examples/partial
	$(PY) -c "from kvkit.examples import write_example; from kvkit.paths import Layout; \
	    write_example(Layout.named('kv_cache'), 'partial', '$(OUT)/examples/partial')"
	$(KVKIT) grade $(OUT)/examples/partial

# The assignments (each tests/NAME/ holds a manifest; its hidden checks are autograder/material/NAME/hidden/), part 1 first.
# One kit-test session checks them all: a test every assignment must pass runs once per assignment.
NAMES := $(patsubst tests/%/assignment.toml,%,$(wildcard tests/*/assignment.toml))
# `make goldens NAME=kv_serving` (and bundle, notebook, bench, gradescope) works on that assignment only.
CHOSEN := $(or $(NAME),$(NAMES))
PYTEST := $(PY) -m pytest -p no:cacheprovider -q
# The kit's own tests, and each assignment's tests of its own tools (autograder/material/NAME/kit_tests/).
KIT_TESTS := autograder/kit_tests $(wildcard autograder/material/*/kit_tests)

# ruff, as pyproject.toml configures it (the dev extra installs it).
lint: setup
	$(VENV)/bin/ruff check .

# The maintainers' fast loop: every public and hidden check against the reference (one pytest run per assignment, all
# at once: a run checks one assignment), then the kit tests that are not marked slow (real nbgrader, Jupyter kernels,
# a grader per submission: those run in `make test`); every pure-data check is among them.
check: setup lint
	@$(MAKE) --no-print-directory --output-sync=target -j $(words $(NAMES)) $(addprefix reference-checks-,$(NAMES))
	$(PYTEST) -n 2 --dist loadgroup $(KIT_TESTS) -m "not slow"

reference-checks-%: setup
	@echo "== $*: its checks on the reference"
	@$(PYTEST) tests/$* autograder/material/$*/hidden --impl=reference

# The kit's own tests, for every assignment in one session: reference full marks, skeleton zero,
# build/goldens/notebooks in sync, bundle clean, graders against hostile submissions, nbgrader end to end, GPT-2
# cross-check.
# --dist loadgroup: the tests that share a built course (xdist_group) run on one worker while the other does the rest.
test: setup lint
	$(PYTEST) -n 2 --dist loadgroup $(KIT_TESTS)

# What a student runs: the public checks against assignments/ with a score per TODO (part 1; NAME=kv_serving for part 2).
selfcheck: setup
	$(PY) -m pytest tests/$(or $(NAME),kv_cache)

# The student bundle of every assignment.
bundle: setup
	@for name in $(CHOSEN); do $(KVKIT) --assignment $$name bundle $(OUT)/$$name-exercise.zip || exit 1; done

# After changing a check or the reference: the skeleton and counts (build), new goldens, then the notebooks that embed
# them (every assignment, or NAME=...).
goldens: setup
	@for name in $(CHOSEN); do $(KVKIT) --assignment $$name build && $(KVKIT) --assignment $$name goldens && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	    $(KVKIT) --assignment $$name notebook || exit 1; done

# Regenerate source/NAME (from reference/ and the checks) and release/NAME (nbgrader generate_assignment).
notebook: setup
	@for name in $(CHOSEN); do PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(KVKIT) --assignment $$name notebook || exit 1; done

# What each assignment's techniques buy, measured (part 1: cache vs no cache vs transformers; part 2: GQA memory,
# the bounded cache, batching, speculative decoding).
bench: setup
	@for name in $(CHOSEN); do $(KVKIT) --assignment $$name bench --plot $(OUT)/bench-$$name.png \
	    --json $(OUT)/bench-$$name.json || exit 1; done

# 40 submissions graded serially and in parallel in one run; prints both wall times and the ratio.
bench-batch: setup
	$(PY) autograder/benchmarks/batch_speedup.py --json $(OUT)/bench-batch.json

gradescope: setup
	@for name in $(CHOSEN); do $(KVKIT) --assignment $$name gradescope $(OUT)/gradescope-$$name.zip || exit 1; done

clean:
	rm -rf $(OUT) $(VENV)
