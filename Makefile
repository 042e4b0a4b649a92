# Everything runs in .venv at the repo root, created on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KVKIT := $(VENV)/bin/kvkit
STAMP := $(VENV)/.installed-stamp
OUT := out

.PHONY: setup demo check test selfcheck bundle goldens notebook bench bench-batch gradescope clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@# bubblewrap confines graded code when the grader is not root (see docs/security.md); best effort
	@if [ "$$(id -u)" = 0 ] && ! command -v bwrap >/dev/null && command -v apt-get >/dev/null; then \
	    echo "installing bubblewrap with apt-get"; \
	    { apt-get install -y -q bubblewrap || { apt-get update -q && apt-get install -y -q bubblewrap; }; } \
	        >/dev/null 2>&1 || echo "WARNING: could not install bubblewrap: non-root grading uses user namespaces or none"; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[nbgrader,bench,hf]"
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

# Build the skeleton, then grade the reference (full marks), the untouched skeleton (zero)
# and a partly correct example submission.
demo: setup
	$(KVKIT) build
	$(KVKIT) grade reference
	$(KVKIT) grade assignments
	rm -rf $(OUT)/examples/partial
	$(PY) -c "from kvkit.examples import write_example; write_example('partial', '$(OUT)/examples/partial')"
	$(KVKIT) grade $(OUT)/examples/partial

# The maintainers' fast loop: every public and hidden check against the reference, then the kit tests that are not
# marked slow (real nbgrader, Jupyter kernels, a grader per submission: those run in `make test`).
check: setup
	$(PY) -m pytest tests/kv_cache autograder/hidden/kv_cache --impl=reference -p no:cacheprovider -q
	$(PY) -m pytest autograder/kit_tests -m "not slow" -p no:cacheprovider -q

# The kit's own tests: reference full marks, skeleton zero, build/goldens/notebooks in sync, bundle clean,
# graders against hostile submissions, nbgrader end to end, GPT-2 cross-check.
test: setup
	$(PY) -m pytest autograder/kit_tests -p no:cacheprovider -q

# What a student runs: the public checks against assignments/ with a score per TODO.
selfcheck: setup
	$(PY) -m pytest

bundle: setup
	$(KVKIT) bundle $(OUT)/kv-cache-exercise.zip

# After changing a check or the reference: new goldens, then the notebooks that embed them.
goldens: setup
	$(KVKIT) goldens
	$(KVKIT) notebook

# Regenerate source/kv_cache (from reference/ and the checks) and release/kv_cache (nbgrader generate_assignment).
notebook: setup
	$(KVKIT) notebook

bench: setup
	$(KVKIT) bench --plot $(OUT)/bench.png --json $(OUT)/bench.json

# 40 submissions graded serially and in parallel in one run; prints both wall times and the ratio.
bench-batch: setup
	$(PY) autograder/benchmarks/batch_speedup.py --json $(OUT)/bench-batch.json

gradescope: setup
	$(KVKIT) gradescope $(OUT)/gradescope-autograder.zip

clean:
	rm -rf $(OUT) $(VENV)
